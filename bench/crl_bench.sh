#!/bin/bash
# CRL benchmark (issue #3): builds revo, installs the peers (strongSwan pki, GNU time) when
# missing, then runs bench/crl_bench.py.
# Usage: bash bench/crl_bench.sh [--sizes 10000,100000,1000000] [--runs K] ...
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
bash scripts/build.sh

# strongSwan's ECDSA support is its openssl plugin, in libstrongswan-standard-plugins
peers=(strongswan-pki libstrongswan-standard-plugins time)
missing=()
for p in "${peers[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "crl_bench: missing packages: ${missing[*]} (run as root, or install them)" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
exec /usr/bin/python3 bench/crl_bench.py --revo build/revo "$@"
