"""The nightly gate fails on a real regression, names exactly its cases, and nothing else.

The slowdown is real, not simulated: ``COPYBENCH_SLOW_DOWN=clone:8`` makes the clone cases
do their copy eight times (copybench.bench), in the night's own processes; the baseline's
processes run the same interpreter without it (``--baseline-env COPYBENCH_SLOW_DOWN=``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = ["--method", "clone", "--method", "detach_clone", "--size", "1024", "--dtype", "float32"]


def _night(tmp: Path, slow: str, *extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "GITHUB_STEP_SUMMARY"}
    env["COPYBENCH_SLOW_DOWN"] = slow
    args = [
        *CASES,
        "--results",
        str(tmp / "results"),
        "--archive",
        str(tmp / "nightly"),
        "--html",
        str(tmp / "html"),
        "--summary",
        str(tmp / "summary.md"),
        "--no-publish",
        *extra,
    ]
    return subprocess.run(
        [sys.executable, "-m", "copybench.nightly", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_a_regression_fails_the_night_and_names_only_its_cases(tmp_path):
    # Four gate cases (clone and detach_clone at 4 KiB, with and without grad), 14 rounds,
    # alpha 0.0005.  False failure, two ways:
    # - detach_clone (untouched) named: both sides run identical code, the rounds' order
    #   alternates, so under the sign test's exchangeability the chance that any case is
    #   significant is at most alpha = 0.0005 (Holm over 4 cases);
    # - a clone case missed: "regressed" needs every one of the 14 rounds' ratios above
    #   1.05, and the slowed side copies 8x.  In an A/A gate here (16 rounds, 8 cases at
    #   4 KiB and 128 KiB, `copybench gate --processes 16`), the log of a round's ratio had
    #   a standard deviation of 0.27-0.40 and its extremes were 0.50 and 2.17; with 2x
    #   copying at 4 KiB the rounds' median ratio was 2.1.  At 8x a round falls under 1.05
    #   only if one process of a pair ran some 6x slower than the other: over 4 standard
    #   deviations of log ratio, three times the widest A/A spread measured.
    night = _night(
        tmp_path,
        "clone:8",
        "--baseline-python",
        sys.executable,
        "--baseline-env",
        "COPYBENCH_SLOW_DOWN=",
        "--processes",
        "14",
        "--alpha",
        "0.0005",
    )
    assert night.returncode == 1, night.stdout[-3000:] + night.stderr[-3000:]
    named = sorted(ln for ln in night.stderr.splitlines() if "regressed:" in ln)
    assert named == [
        "copybench nightly: regressed: clone-1024-float32-grad-contiguous-cpu-t1",
        "copybench nightly: regressed: clone-1024-float32-nograd-contiguous-cpu-t1",
    ], night.stderr[-3000:]
    summary = (tmp_path / "summary.md").read_text()
    assert "first night" in summary and "14 rounds of one fresh process per side" in summary
    assert len(list((tmp_path / "nightly").glob("*-torch*.json"))) == 1
