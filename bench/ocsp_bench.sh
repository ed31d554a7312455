#!/bin/bash
# OCSP responder benchmark (issue #4): builds revo and bench/ocsp_latency.c (cc -O2), installs
# the peers (wrk, nginx, cfssl, gnuplot) when missing, then runs bench/ocsp_bench.py, which
# writes the latency plot to bench/ocsp_latency.png. Needs root (unshare -n for openssl ocsp).
# Usage: bash bench/ocsp_bench.sh [--duration 10] [--runs 3] [--big 1000000] ...
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
bash scripts/build.sh

# golang-cfssl gives `cfssl ocspserve`; any nginx will do (nginx-light serves a static file)
peers=(wrk golang-cfssl gnuplot-nox curl util-linux iproute2 linux-perf)
command -v nginx >/dev/null || peers+=(nginx-light)
missing=()
for p in "${peers[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "ocsp_bench: missing packages: ${missing[*]} (run as root, or install them)" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "ocsp_bench: must run as root (openssl ocsp runs in a private network namespace)" >&2
	exit 1
fi

mkdir -p build/bench
cc -O2 -Wall -o build/bench/ocsp_latency bench/ocsp_latency.c -lm
exec /usr/bin/python3 bench/ocsp_bench.py --revo build/revo \
	--latency-tool build/bench/ocsp_latency --plot bench/ocsp_latency.png "$@"
