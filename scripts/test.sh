#!/usr/bin/env bash
# Set up, then run the tests.  Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/install-system-deps.sh
# Two workers (COPYBENCH_TEST_WORKERS), a whole test file each at a time: most of the run is
# fresh processes importing torch, asv runs and Valgrind, one core each.  The tests that
# judge timings rest on paired, interleaved or exact measures, which hold on a busy
# machine (as on a shared runner); nothing is timed by pytest-benchmark in this run.
# pytest exits 5 when it collected nothing; that is a failure here, like any non-zero status.
exec .venv/bin/python -m pytest -n "${COPYBENCH_TEST_WORKERS:-2}" --dist loadfile "$@"
