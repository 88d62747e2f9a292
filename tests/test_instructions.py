"""Callgrind instruction counts, and the gate that judges them; skipped without valgrind.

Three Valgrind runs in all (about 40 s each, most of it ``import torch``): the counts of
the gate's cases at 1,024 elements here, and both sides of one ``copybench gate`` started
from other surroundings, whose head side carries a regression copybench does not cooperate
with: the project's ``inject/sitecustomize.py`` on its ``PYTHONPATH`` wraps
``torch.Tensor.clone`` so that every call takes 30% longer (it spins for 0.3x the time the
real clone took), the way a slower torch build, a debugging hook or a monkeypatching library
would.  The slowdown comes as a nightly's would, through the environment the gate inherits,
with the baseline told to drop it (``--base-env PYTHONPATH=``): the counts must see it on
the head side as the wall time does.  Which copy methods call ``Tensor.clone`` is observed
(``copybench.jobs.power.calls_into``), not typed here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from copybench.measure.gate import (
    DEFAULT_INSTRUCTION_THRESHOLD,
    INSTRUCTION_FLOOR,
    INSTRUCTION_NOISE,
    gate_cases,
    instruction_cases,
)
from copybench.measure.injection import INJECT_DIR
from copybench.measure.instructions import count_cases, count_instructions, valgrind_available
from copybench.suite.cases import tensors_of_case_id
from copybench.suite.stats import count_threshold

pytestmark = pytest.mark.skipif(not valgrind_available(), reason="valgrind not available")

ROOT = Path(__file__).resolve().parents[1]
# What the gate counts at 1,024 elements: its cases there, both ways of requires_grad, and
# its tensor methods at the instruction sizes (the same statements in the same order, so
# the same counts).
COUNTED = instruction_cases(gate_cases(sizes=[1024]))
CASE = "{}-{}-float32-grad-contiguous-cpu-t1"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory):
    """This process's counts, and ``copybench gate`` (two rounds, the head side slowed by
    the injected sitecustomize) started from other surroundings than this process: another
    working directory, ``PATH``, ``$TMPDIR`` and a 3,000-character variable, none of
    which may reach the Valgrind child (the counts moved by up to 6% between shells when
    they did).  The gate runs while this process counts: a count does not depend on what
    runs beside it."""
    tmp = tmp_path_factory.mktemp("gate")
    env = dict(os.environ)
    env["PATH"] = f"{tmp}/not/a/real/dir:{env['PATH']}"
    env["COPYBENCH_TEST_PADDING"] = "x" * 3000
    env["TMPDIR"] = str(tmp)
    # Inherited by the gate, as a night inherits its job's environment; by a relative path,
    # which the counting child (run in another folder) must still find.
    env["PYTHONPATH"] = os.path.relpath(INJECT_DIR, tmp)
    env["INJECT_SLOWDOWN"] = "Tensor.clone:1.3"
    out = tmp / "gate.json"
    args = ["--size", "1024", "--processes", "2", "--budget", "0.02", "--instructions"]
    args += ["--base-env", "PYTHONPATH=", "--base-env", "INJECT_SLOWDOWN="]
    args += ["--out", str(out), "--format", "json"]
    # The base interpreter by a relative path, as the nightly workflow names its baseline.
    args += ["--base-python", os.path.relpath(sys.executable, tmp)]
    with subprocess.Popen(
        [sys.executable, "-m", "copybench", "gate", *args],
        cwd=tmp,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            got = count_cases([c for _, c in COUNTED])
            stdout, stderr = proc.communicate(timeout=900)
        except BaseException:
            proc.kill()
            raise
    assert proc.returncode == 1, stdout[-3000:] + stderr[-3000:]
    counts = {key: r for (key, _), r in zip(COUNTED, got, strict=True)}
    return counts, (json.loads(stdout)["benchmarks"], json.loads(out.read_text()))


@pytest.fixture(scope="module")
def counts(runs):
    return runs[0]


@pytest.fixture(scope="module")
def gate(runs):
    return runs[1]


def test_tracked_clone_costs_thousands_more_instructions(counts):
    from copybench.suite.stats import median

    tracked = median(counts[CASE.format("clone_detach", 1024)])
    untracked = median(counts[CASE.format("detach_clone", 1024)])
    assert untracked > 1000
    assert 1000 < tracked - untracked < untracked


def test_every_gate_case_is_counted_module_copies_included(counts):
    assert set(counts) == {key for key, _ in COUNTED}
    assert any(c["kind"] == "module" for _, c in COUNTED)
    assert {c["requires_grad"] for _, c in COUNTED if c["kind"] == "tensor"} == {True, False}
    assert all(min(r) > 1000 for r in counts.values())


def test_rounds_spread_less_than_the_instruction_threshold(counts):
    # The rounds of one run differ a little: each loop starts from the heap the loops
    # before it left (up to 225 instructions at 32 elements, 2.1%).  The count is their
    # median, and the gate judges counts by its rule alone (the instruction threshold,
    # down to half of it above the floor, never below the noise: stats.count_threshold),
    # so the spread must stay inside what the rule accepts for that case; a change to the
    # counting that widened it would let heap history pass for a regression.
    # Deterministic, not a timing check.
    for key, r in counts.items():
        tensors = tensors_of_case_id(key)
        level = count_threshold(
            min(r),
            DEFAULT_INSTRUCTION_THRESHOLD,
            INSTRUCTION_FLOOR * tensors,
            INSTRUCTION_NOISE * tensors,
        )
        assert max(r) - min(r) < level * min(r), (key, r, level)


def test_separate_invocations_agree(counts, gate):
    # The gate's base side is a plain count made from another process, working directory,
    # PATH and $TMPDIR.  Deterministic, not a timing check.
    from copybench.suite.stats import median

    _, saved = gate
    again = saved["instructions"]["base"]
    assert set(again) == set(counts)
    for key, r in counts.items():
        assert abs(again[key] - median(r)) <= 0.001 * median(r), key
    tracked, untracked = CASE.format("clone_detach", 1024), CASE.format("detach_clone", 1024)
    first = median(counts[tracked]) - median(counts[untracked])
    second = again[tracked] - again[untracked]
    assert abs(second - first) <= 0.001 * first


def test_an_inherited_slowdown_reaches_the_counts_of_its_side_only(gate):
    from copybench.jobs.power import calls_into

    rows, saved = gate
    # Two rounds: wall time gets "too few processes" whatever the clocks did, so the
    # verdicts asserted are the instruction counts', which repeat exactly: not a
    # statistical outcome.
    timed = [b for b in rows if b["benchmark"] == "gate"]
    assert timed and {b["verdict"] for b in timed} == {"too few processes"}
    counted = {b["case"]: b for b in rows if b["benchmark"] == "gate-instructions"}
    assert set(counted) == {key for key, _ in COUNTED}
    calls = set(calls_into(gate_cases(sizes=[1024]), "clone"))
    assert calls and calls != set(counted)
    for case, b in counted.items():
        if case in calls:  # the spin, plus the wrapper's frame
            assert b["verdict"] == "regressed", b
        else:
            assert b["verdict"] == "unchanged", b
    # What told the sides apart reached both counts, and the record says so.
    assert saved["instructions"]["env"] == ["INJECT_SLOWDOWN", "PYTHONPATH"]
    assert saved["sides"]["base"]["env"] == {"PYTHONPATH": "", "INJECT_SLOWDOWN": ""}


def test_bad_method_is_rejected_before_valgrind_starts():
    from copybench.suite.methods import UnknownMethodError

    with pytest.raises(UnknownMethodError):
        count_instructions(["no_such_method"], [1024])
