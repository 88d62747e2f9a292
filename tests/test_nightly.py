"""The nightly, as ``scripts/nightly.sh`` runs it: two nights of a narrow selection.

Night 1 is gated and carries a real regression: ``COPYBENCH_SLOW_DOWN=clone:8`` makes the
clone cases do their copy eight times (copybench.suite.prepare), in the night's own processes; the
baseline's processes run the same interpreter without it (``--baseline-env
COPYBENCH_SLOW_DOWN=``).  It must fail and name exactly the clone cases.  Night 2 is
recorded and set beside night 1, not gated: two runs hours apart get no verdict on wall
time, so no night fails by chance.  One pair of nights serves every test here (each
fresh process costs a 3 s ``import torch``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from copybench.formats import nights as nights_of

ROOT = Path(__file__).resolve().parents[1]
CASES = ["--method", "clone", "--method", "detach_clone", "--size", "1024", "--dtype", "float32"]
# 18 rounds, alpha 0.001 (see test_a_regression_fails_the_night_and_names_only_its_cases).
ROUNDS = "18"
ALPHA = "0.001"
SLOWED = [
    "clone-1024-float32-grad-contiguous-cpu-t1",
    "clone-1024-float32-nograd-contiguous-cpu-t1",
]


GITHUB = ("GITHUB_STEP_SUMMARY", "GITHUB_ACTIONS", "GITHUB_EVENT_NAME")


def _night(
    tmp: Path, slow: str, *extra: str, cases=CASES, env: dict | None = None
) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k not in GITHUB}
    full.update(COPYBENCH_SLOW_DOWN=slow, **(env or {}))
    args = [*cases, "--results", str(tmp / "results"), "--archive", str(tmp / "nightly")]
    args += ["--html", str(tmp / "html"), "--summary", str(tmp / "summary.md"), *extra]
    return subprocess.run(
        ["bash", "scripts/nightly.sh", *args],
        cwd=ROOT,
        env=full,
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory):
    """Night 1 (gated, a scheduled run under GitHub Actions, history empty) and night 2
    (recorded) on machine "alpha", both kept in a history branch of a local bare
    repository; between them the archive and results folders are deleted, as on a fresh
    runner, so night 2 finds night 1 only through the history."""
    tmp = tmp_path_factory.mktemp("nights")
    history = tmp / "history.git"
    subprocess.run(["git", "init", "--quiet", "--bare", str(history)], check=True)
    keep = ["--machine", "alpha", "--history", str(history)]
    gated = _night(
        tmp,
        "clone:8",
        *keep,
        "--baseline-python",
        sys.executable,
        "--baseline-env",
        "COPYBENCH_SLOW_DOWN=",
        "--processes",
        ROUNDS,
        "--alpha",
        ALPHA,
        # 20 ms of blocks per case and process (default 100 ms): an 8x slowdown needs no
        # more, and the fresh processes' `import torch` is most of the gate's time anyway.
        "--budget",
        "0.02",
        # The wall-time gate is what this tests; instruction counts (two Valgrind runs) are
        # tested in test_gate.py, and the slowdown is copybench's own, which they do not see.
        "--no-instructions",
        "--no-publish",
        env={"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "schedule"},
    )
    first_summary = (tmp / "summary.md").read_text() if (tmp / "summary.md").exists() else ""
    for d in ("nightly", "results", "summary.md"):
        p = tmp / d
        shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
    recorded = _night(tmp, "", *keep, cases=CASES[2:])  # detach_clone only
    return tmp, gated, recorded, first_summary


def test_a_regression_fails_the_night_and_names_only_its_cases(nights):
    # Four gate cases (clone and detach_clone at 4 KiB, with and without grad), each judged
    # by its raw time and by its time relative to its in-process reference: 8 tests, one
    # Holm family, 18 rounds, alpha 0.001.  False failure, two ways:
    # - detach_clone (untouched) named.  Both sides run identical code and which process of
    #   a round is labelled head was drawn at random (balanced), so the rank-sum test is
    #   exact: the family names anything with probability at most alpha, 0.1%, whatever the
    #   machine does (copybench.suite.stats.order_balanced_change).
    # - a clone test missed.  The slowed side copies 8x.  If every head-second round's log
    #   ratio exceeds every head-first round's, the two-sided p is 2 / C(18, 9) = 4.1e-5,
    #   Holm-adjusted at most 8 x that = 3.3e-4 <= 0.001; one crossed pair still gives
    #   6.6e-4.  A crossed pair needs a head process to run 64x faster, relative to its
    #   base, than another round's: in A/A gates here the log of a round's ratio had a
    #   standard deviation of 0.13-0.40 and its extremes were 0.50 and 2.17.
    tmp, night, _, summary = nights
    assert night.returncode == 1, night.stdout[-3000:] + night.stderr[-3000:]
    named = sorted(ln for ln in night.stderr.splitlines() if "regressed:" in ln)
    assert named == [f"copybench nightly: regressed: {c}" for c in SLOWED], night.stderr[-3000:]
    assert "first night" in summary and f"{ROUNDS} rounds of one fresh process per side" in summary
    # The summary shows what changed, each with its confirmation, then a count of the rest;
    # under GitHub Actions each regression is also an ::error:: annotation naming its case.
    changed = [ln for ln in summary.splitlines() if ln.startswith("| `")]
    assert sorted(ln.split("`")[1] for ln in changed) == sorted(SLOWED * 2)  # raw, relative
    assert all("**regressed**" in ln and f"{ROUNDS} interleaved rounds" in ln for ln in changed)
    (rest,) = [ln for ln in summary.splitlines() if ln.startswith("The other cases: ")]
    counts = re.findall(r"(\d+) (not significant|unchanged)", rest)
    assert sum(int(n) for n, _ in counts) == 4 and rest.count(",") == len(counts) - 1
    errors = [ln for ln in night.stdout.splitlines() if ln.startswith("::error")]
    assert sorted({ln.split("::")[2].split()[0] for ln in errors}) == SLOWED


def test_an_empty_history_on_a_schedule_is_a_warning(nights):
    _, night, _, summary = nights
    assert "holds no earlier night" in night.stderr
    assert "> **Warning**: branch copybench-results of the history holds no earlier night" in (
        summary
    )
    assert any(ln.startswith("::warning") for ln in night.stdout.splitlines())


def test_the_history_branch_keeps_every_night(nights):
    tmp, _, night, _ = nights
    assert "1 nights restored from copybench-results" in night.stdout, night.stdout[-2000:]
    listing = subprocess.run(
        ["git", "--git-dir", str(tmp / "history.git"), "ls-tree", "-r", "--name-only"]
        + ["copybench-results"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    archived = sorted(p.name for p in (tmp / "nightly").iterdir())
    nights_alpha = [a for a in archived if "-alpha-torch" in a and a.endswith(".json")]
    assert len([a for a in nights_alpha if not a.endswith(".gate.json")]) == 2
    assert sorted(f"nightly/{a}" for a in archived) == sorted(
        f for f in listing if f.startswith("nightly/")
    )
    assert any(f.startswith("results/alpha/") for f in listing)


def test_the_gate_results_are_archived_and_compare_reads_them(nights, run_cli):
    tmp, _, _, _ = nights
    (gate_file,) = (tmp / "nightly").glob("*.gate.json")
    saved = json.loads(gate_file.read_text())
    assert saved["format"] == "copybench-gate/1" and len(saved["rounds"]) == int(ROUNDS)
    # The order of each round was drawn at random, balanced: half the rounds each way.
    orders = [tuple(r["order"]) for r in saved["rounds"]]
    assert orders.count(("base", "head")) == orders.count(("head", "base")) == int(ROUNDS) // 2
    assert len({r["base"]["pid"] for r in saved["rounds"]}) == int(ROUNDS)
    assert saved["sides"]["base"]["env"] == {"COPYBENCH_SLOW_DOWN": ""}
    assert "instructions" not in saved  # --no-instructions
    # `copybench compare` of the archived file gives the night's verdicts.
    proc = run_cli("compare", str(gate_file), "--alpha", ALPHA, "--format", "json")
    assert proc.returncode == 1, proc.stderr  # 1: a regression
    rows = json.loads(proc.stdout)["benchmarks"]
    assert sorted({b["case"] for b in rows if b["verdict"] == "regressed"}) == SLOWED
    text = run_cli("compare", str(gate_file), "--alpha", ALPHA).stdout
    assert "rounds needed for a verdict on 8 tests" in text
    # Without enough rounds for this alpha, the answer is "too few processes".
    strict = run_cli("compare", str(gate_file), "--alpha", "0.00001", "--format", "json")
    verdicts = {b["verdict"] for b in json.loads(strict.stdout)["benchmarks"]}
    assert strict.returncode == 0 and verdicts == {"too few processes"}
    both = run_cli("compare", str(gate_file), str(gate_file))
    assert both.returncode == 2 and "holds both sides" in both.stderr


def test_a_recorded_night_is_set_beside_the_last_one(nights):
    tmp, _, night, _ = nights
    assert night.returncode == 0, night.stdout[-4000:] + night.stderr[-4000:]
    archived = sorted(p.name for p in (tmp / "nightly").glob("*-torch*.json"))
    assert len([a for a in archived if not a.endswith(".gate.json")]) == 2
    assert (tmp / "html" / "index.html").is_file()  # published by night 2
    text = (tmp / "summary.md").read_text()
    assert "### Tonight beside" in text and "recorded, not gated" in text
    # Night 2 (detach_clone) beside night 1, across runs: no wall time is judged, so
    # nothing changed and the rest is counted, not listed.
    assert "No case changed" in text and "too few processes" in text
    assert "| `" not in text
    assert "compared across runs" in night.stdout  # the whole table is in the log
    # Each archived night holds only the cases it measured (asv merges a run into the file
    # of the same commit; the history's copy of night 1 must not pass for night 2's).
    from copybench.results.tidy import load_asv

    first, second = [load_asv(p) for p in nights_of(tmp / "nightly")]
    assert set(first[first.status == "ok"].method) == {"clone", "detach_clone"}
    assert set(second[second.status == "ok"].method) == {"detach_clone"}
    assert "regressed" not in night.stderr


def test_two_machines_merge_into_one_site_and_report(nights, tmp_path):
    # A night of a second machine, "beta", on this box, then the merge the nightly
    # workflow's last job runs: one asv site and one report holding both machines.
    tmp, _, _, _ = nights
    beta = tmp_path / "beta"
    night = _night(beta, "", "--machine", "beta", "--no-publish", cases=CASES[2:])
    assert night.returncode == 0, night.stderr[-3000:]
    out = tmp_path / "merged"
    merge = subprocess.run(
        ["bash", "scripts/nightly.sh", "merge", str(tmp), str(beta)]
        + ["--results", str(out / "results"), "--archive", str(out / "nightly")]
        + ["--html", str(out / "html"), "--report-out", str(out / "reports")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert merge.returncode == 0, merge.stderr[-3000:]
    assert "merged 2 machines: alpha, beta" in merge.stdout
    assert sorted(d.name for d in (out / "results").iterdir() if d.is_dir()) == ["alpha", "beta"]
    index = json.loads((out / "html" / "index.json").read_text())
    assert set(index["params"]["machine"]) == {"alpha", "beta"}
    page = (out / "reports" / "nightly" / "index.html").read_text()
    assert '<h2 id="machines">Across machines</h2>' in page
    assert "alpha" in page and "beta" in page and '<h2 id="trends">Trends</h2>' in page
    bad = subprocess.run(
        ["bash", "scripts/nightly.sh", "merge", str(tmp_path / "nothing")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1


def test_the_report_draws_the_archived_nights_as_trends(nights, run_cli, tmp_path):
    from copybench.report.build import _find_nights

    tmp = nights[0]
    out = tmp_path / "reports"
    r = run_cli(
        "report", str(tmp / "results"), "--nights", str(tmp / "nightly"),
        "--out", str(out), "--name", "trends",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    page = (out / "trends" / "index.html").read_text()
    assert '<h2 id="trends">Trends</h2>' in page
    # Both nights measured detach_clone at 4 KiB: the headline family's trend, its PNG
    # inlined, its caption naming each night's date and torch (from the nights' sidecars).
    fig = page[page.index('<figure id="plot-trend-tensor-4KiB">') :]
    fig = fig[: fig.index("</figure>")]
    assert '<img src="data:image/png;base64,' in fig
    sides = sorted((tmp / "nightly").glob("*.json.copybench-env"))
    assert len(sides) == 2
    for side in sides:
        env = json.loads(side.read_text())
        assert f"torch {env['torch_version']}" in fig
        day = env["night"]
        assert f"{day[:4]}-{day[4:6]}-{day[6:8]}" in fig
    assert "2 nights" in fig
    # Without --nights, the archive beside the results folder is the one drawn.
    assert _find_nights([tmp / "results"]) == tmp / "nightly"
