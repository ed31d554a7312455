#!/bin/bash
# The whole test suite: installs what is missing, builds revo plainly and with
# ASan+UBSan, and runs the unit tests (cmocka) and the integration tests (pytest,
# driving both binaries against real peers). Ends with pytest's summary line.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh test
bash scripts/build.sh asan

export REVO_BINS="$PWD/build/revo:$PWD/build-asan/revo"
exec /usr/bin/python3 -m pytest -q -p no:cacheprovider tests "$@"
