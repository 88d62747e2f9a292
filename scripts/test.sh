#!/usr/bin/env bash
# Set up, then run the tests.  Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/install-system-deps.sh
# pytest exits 5 when it collected nothing; that is a failure here, like any non-zero status.
exec .venv/bin/python -m pytest "$@"
