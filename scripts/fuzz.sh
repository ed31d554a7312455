#!/bin/bash
# Build the libFuzzer targets with clang (ASan+UBSan) into build-fuzz/ and run each for
# a bounded time: bash scripts/fuzz.sh [SECONDS]. Exits non-zero on the first crash.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
out=build-fuzz
mkdir -p "$out"
cc=${CLANG:-clang}
flags=(-g -O1 -std=c17 -D_GNU_SOURCE -I. -fsanitize=fuzzer,address,undefined
	-fno-sanitize-recover=undefined)
pki=(pki/err.c pki/serial.c pki/timefmt.c pki/reason.c pki/cert.c)

"$cc" "${flags[@]}" -o "$out/fuzz_index_line" tests/fuzz/fuzz_index_line.c store/import.c \
	"${pki[@]}" -lcrypto

"$cc" "${flags[@]}" -o "$out/fuzz_ocsp_request" tests/fuzz/fuzz_ocsp_request.c ocsp/request.c \
	pki/der.c "${pki[@]}" -lcrypto
"$cc" "${flags[@]}" -o "$out/fuzz_http_head" tests/fuzz/fuzz_http_head.c ocsp/http.c

for t in index_line ocsp_request http_head; do
	mkdir -p "$out/corpus-$t"
	"$out/fuzz_$t" -max_total_time="$secs" -timeout=5 -print_final_stats=1 \
		"$out/corpus-$t" "tests/fuzz/corpus/$t"
done
