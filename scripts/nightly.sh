#!/usr/bin/env bash
# The nightly regression run, locally: the steps .github/workflows/nightly.yml runs.
#
#   bash scripts/nightly.sh                       # the whole CPU suite, into .asv/
#   bash scripts/nightly.sh --method clone --size 1024 \
#       --results /tmp/n/results --archive /tmp/n/archive --html /tmp/n/html
#
# Runs asv against the installed torch with raw samples recorded, archives the night's
# results (torch version, git hash, date), publishes asv's HTML, sets the previous night
# beside it and, with --baseline-python PYTHON, gates: the gate selection timed in both
# interpreters, interleaved in fresh processes, and its small copies' instructions counted
# in both where valgrind is available (--instructions insists, --no-instructions skips);
# the gate's results are archived beside the night's; exits 1 when a copy regressed there
# (2 on bad input).
# Options: python -m copybench.jobs.nightly --help.  GITHUB_STEP_SUMMARY, when set, receives the
# markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || bash scripts/setup.sh
exec .venv/bin/python -m copybench.jobs.nightly "$@"
