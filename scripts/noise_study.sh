#!/usr/bin/env bash
# The noise study of issue 5, rerunnable: the tracked-clone overhead estimated 8 times per
# method, each in fresh processes, at most 0.5 s of measurement per size each time:
# `copybench overhead` as shipped (paired, spread over 16 worker processes), the same paired
# measurement in one process, and independent medians; then the instruction-count overhead
# from 3 Valgrind runs.  About 5.5 minutes.  Run it on an otherwise idle machine;
# extra arguments go to `copybench noise-study` (e.g. --affinity 1, --threads all).
# The table is the command's; the full results land in reports/noise-study.json.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p reports
.venv/bin/copybench noise-study --processes 8 --budget 0.5 --instruction-repeats 3 \
    --out reports/noise-study.json "$@"
