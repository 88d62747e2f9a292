#!/usr/bin/env bash
# The nightly regression run, locally: the steps .github/workflows/nightly.yml runs.
#
#   bash scripts/nightly.sh                       # the whole CPU suite, into .asv/
#   bash scripts/nightly.sh --method clone --size 1024 \
#       --results /tmp/n/results --archive /tmp/n/archive --html /tmp/n/html
#   bash scripts/nightly.sh merge runner-a/ runner-b/ --results m/results --archive m/nightly
#
# Runs asv against the installed torch with raw samples recorded, archives the night's
# results (torch version, git hash, date), publishes asv's HTML, sets the previous night
# beside it and, with --baseline-python PYTHON, gates: the gate selection timed in both
# interpreters, interleaved in fresh processes, and its small copies' instructions counted
# in both where valgrind is available (--instructions insists, --no-instructions skips);
# the gate's results are archived beside the night's; exits 1 when a copy regressed there
# (2 on bad input).  `merge` merges several machines' nights into one asv site and one
# report (the workflow's last job).
# Options: copybench nightly --help, copybench nightly merge --help.  GITHUB_STEP_SUMMARY,
# when set, receives the markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || bash scripts/setup.sh
exec .venv/bin/python -m copybench nightly "$@"
