#!/bin/bash
# Store benchmark (issue #2): builds revo, then runs bench/store_bench.py.
# Usage: bash bench/store_bench.sh [--certs N] [--import-runs K] ...
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
bash scripts/build.sh
exec /usr/bin/python3 bench/store_bench.py --revo build/revo "$@"
