#!/usr/bin/env bash
# The noise study of issue 5, rerunnable: the tracked-clone overhead estimated 8 times per
# method, each in fresh processes, at most 0.5 s of measurement per size each time:
# `copybench overhead` as shipped (paired, spread over 16 worker processes), the same paired
# measurement in one process, and independent medians; then the instruction-count overhead
# from 3 Valgrind runs.  About 5.5 minutes.  Run it on an otherwise idle machine;
# extra arguments go to `copybench noise-study` (e.g. --affinity 1, --threads all).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p reports
.venv/bin/copybench noise-study --processes 8 --budget 0.5 --instruction-repeats 3 --json "$@" \
    > reports/noise-study.json
.venv/bin/python - <<'PY'
import json

d = json.load(open("reports/noise-study.json"))
print(f"{'numel':>10}  {'method':<19} {'min %':>7} {'median %':>9} {'max %':>7} {'spread':>7}")
for r in d["overhead"]:
    for m in ("paired", "paired_one_process", "independent"):
        x = r[m]
        print(f"{r['numel']:>10,}  {m:<19} {x['min_pct']:>7.1f} {x['median_pct']:>9.1f} "
              f"{x['max_pct']:>7.1f} {x['spread_pts']:>7.1f}")
longest = max(r["paired"]["max_measured_s"] for r in d["overhead"])
print(f"copybench overhead (paired): at most {longest:.3f} s of measurement per size")
for numel, x in (d["instructions"] or {}).get("by_size", {}).items():
    print(f"{int(numel):>10,}  instructions overhead {x['overhead']} spread {x['spread_pct']:.3f}%")
PY
echo "full results: reports/noise-study.json"
