#!/usr/bin/env bash
# The main job: set up, run the default CPU suite with asv against the installed torch,
# publish asv's own site of the results, then write the HTML report.  Extra arguments go to
# `copybench run`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/copybench run "$@"
.venv/bin/copybench publish
.venv/bin/copybench report --name latest
