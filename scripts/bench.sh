#!/usr/bin/env bash
# The main job: set up, run the default CPU suite with asv against the installed torch,
# and say where the results are.  Extra arguments go to `copybench run`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/copybench run "$@"
