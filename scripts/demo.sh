#!/bin/bash
# revo's main job on the embedded default: a throwaway demo CA made with openssl, its
# certificates registered in a local store, one host revoked, the status shown.
# Everything lives in ./demo (deleted and made anew on every run).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh
bash scripts/build.sh

revo=$PWD/build/revo
rm -rf demo
mkdir -p demo
cd demo
export REVO_STORE=$PWD/store

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "a throwaway CA (ECDSA P-256) and three host certificates, made with openssl"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key \
	-out ca.pem -subj "/O=revo demo/CN=Demo Issuing CA" -days 365 \
	-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
	2>/dev/null
chmod 600 ca.key
for host in ci-runner-1 build-server-1 signing-1; do
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$host.key" \
		-out "$host.csr" -subj "/O=revo demo/CN=$host" 2>/dev/null
	openssl x509 -req -in "$host.csr" -CA ca.pem -CAkey ca.key -CAcreateserial \
		-out "$host.pem" -days 30 -extfile <(printf 'basicConstraints=CA:FALSE\nauthorityKeyIdentifier=keyid\n') 2>/dev/null
	echo "  $host.pem  serial $(openssl x509 -in "$host.pem" -noout -serial | cut -d= -f2)"
done

step "revo init"
"$revo" init
step "revo issuer add demo --cert ca.pem --key ca.key"
"$revo" issuer add demo --cert ca.pem --key ca.key
step "revo cert add *.pem (issuer found by name, key identifier and signature)"
"$revo" cert add ci-runner-1.pem build-server-1.pem signing-1.pem
step "revo revoke --cn ci-runner-1 --reason keyCompromise (the host was compromised)"
"$revo" revoke --cn ci-runner-1 --reason keyCompromise
step "revo status of the revoked host and of a good one"
"$revo" status --serial "$(openssl x509 -in ci-runner-1.pem -noout -serial | cut -d= -f2)"
"$revo" status --serial "$(openssl x509 -in build-server-1.pem -noout -serial | cut -d= -f2)"
step "revo list"
"$revo" list
step "revo log (who did what, when)"
"$revo" log

step "revo crl build: a signed CRL, checked by openssl"
"$revo" crl build --issuer demo --out demo.crl --pem
cat ca.pem demo.crl > ca-and-crl.pem
echo "openssl verify -crl_check of the revoked host (must fail):"
if openssl verify -crl_check -CAfile ca-and-crl.pem ci-runner-1.pem; then
	echo "demo: the revoked certificate was accepted" >&2
	exit 1
fi
echo "openssl verify -crl_check of a good host:"
openssl verify -crl_check -CAfile ca-and-crl.pem build-server-1.pem

step "revo ocsp presign, then revo ocsp serve on 127.0.0.1, asked by openssl ocsp"
"$revo" ocsp presign
"$revo" ocsp serve --listen 127.0.0.1:0 --threads 2 >serve.out 2>serve.err &
serve_pid=$!
trap 'kill "$serve_pid" 2>/dev/null || true' EXIT
for _ in $(seq 50); do
	grep -q "listening on" serve.out 2>/dev/null && break
	sleep 0.1
done
url="http://$(sed -n 's/^listening on //p' serve.out | head -1)/ocsp"
echo "responder at $url"
for host in ci-runner-1 build-server-1; do
	openssl ocsp -issuer ca.pem -cert "$host.pem" -url "$url" -CAfile ca.pem -no_nonce 2>&1 |
		grep -E "^(Response verify|$host)"
done
kill -TERM "$serve_pid"
wait "$serve_pid"
trap - EXIT

step "emergency: a local file:// target, then revoke --publish --wait (the whole path, timed)"
mkdir -p published
"$revo" target add local "file://$PWD/published/demo.crl" --issuer demo
"$revo" publish --once
"$revo" revoke --cn signing-1 --reason keyCompromise --publish --wait 30
echo "the published CRL now lists:"
openssl crl -inform DER -in published/demo.crl -noout -text | grep -E "CRL Number|Serial Number" -A1 |
	grep -vE "^--$"
"$revo" target list
printf '\nthe demo store is in %s\n' "$REVO_STORE"
