#!/bin/bash
# Emergency-revocation benchmark (issue #5): revoke --publish --wait to radosgw and a file
# with 100k revoked entries in the store. Needs the test packages (radosgw, botocore).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh test
bash scripts/build.sh
exec /usr/bin/python3 bench/publish_bench.py --revo build/revo "$@"
