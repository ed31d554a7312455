# Convenience wrapper around scripts/ and meson; the scripts are what README.md names.
.PHONY: all demo check unit asan bench clean format

all:
	bash scripts/build.sh

asan:
	bash scripts/build.sh asan

demo:
	bash scripts/demo.sh

check:
	bash scripts/check.sh

unit: asan
	meson test -C build --print-errorlogs
	meson test -C build-asan --print-errorlogs

bench:
	bash bench/store_bench.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-asan demo
