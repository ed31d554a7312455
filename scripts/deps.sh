#!/bin/bash
# Install what revo needs to build (and, with "test", to run its test suite) on Debian 12.
# Installs only what is missing; runs apt-get update first when it installs anything.
set -euo pipefail

build_pkgs=(gcc meson ninja-build pkg-config openssl libssl-dev liblmdb-dev libevent-dev
	libcurl4-openssl-dev libjansson-dev libcmocka-dev libinih-dev scdoc)
test_pkgs=(python3 python3-pytest python3-cryptography lmdb-utils util-linux procps clang
	libclang-rt-14-dev
	gnutls-bin libnss3-tools softhsm2 libengine-pkcs11-openssl opensc p11-kit nginx-light
	radosgw ceph-mon ceph-osd ceph-common python3-botocore nodejs)

want=("${build_pkgs[@]}")
if [ "${1:-}" = test ]; then
	want+=("${test_pkgs[@]}")
	# npm (tests/js: pkijs): Debian's package, unless the nodejs installed brings its own
	# npm (NodeSource's does, and conflicts with Debian's npm package)
	if ! command -v npm >/dev/null 2>&1; then
		want+=(npm)
	fi
fi

missing=()
for p in "${want[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "revo: missing packages: ${missing[*]} (run as root, or install them)" >&2
		exit 1
	fi
	echo "installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
