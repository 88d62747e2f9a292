"""``copybench power-study``: its design (each variant's gate is the gate's), what it
observes about which cases call the wrapped method, and a real, tiny study end to end.

The study's detection rates are measurements, quoted in the README from its own output;
nothing here asserts a rate.  The tiny study has two rounds, too few for any wall-time
verdict ("too few processes" whatever the clocks did), so its assertions are about the
bookkeeping: deterministic."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from copybench.jobs.power import AA, calls_into, round_order, variants
from copybench.measure.gate import Side, balanced_orders, gate_cases

ROOT = Path(__file__).resolve().parents[1]


def test_variants_put_a_a_first_and_refuse_bad_input():
    from copybench.suite.cases import UsageError

    got = variants(["clone", "copy_"], [1.1])
    assert [v.name for v in got] == [AA, "clone x1.1", "copy_ x1.1"]
    assert got[1].side({}).env["INJECT_SLOWDOWN"] == "Tensor.clone:1.1"
    assert got[0].side({}).env == {}
    with pytest.raises(UsageError, match="at least 1"):
        variants(["clone"], [0.9])
    with pytest.raises(UsageError, match="unknown target"):
        variants(["nope"], [1.1])
    from copybench.jobs.power import PowerStudy, _heads

    with pytest.raises(UsageError, match="--aa-only slows none"):
        _heads(PowerStudy(aa_only=True, placebo=True))


def test_a_placebo_wraps_every_target_in_every_process():
    from copybench.jobs.power import injected

    both = ("clone", "copy_")
    aa, slowed = variants(["copy_"], [1.1])
    head = slowed.side({}, both).env
    assert head["INJECT_SLOWDOWN"] == "Tensor.clone:1.0,Tensor.copy_:1.1"
    assert head["INJECT_PLACEBO"] == "1"
    base = injected(None, 1.0, both)
    assert base["INJECT_SLOWDOWN"] == "Tensor.clone:1.0,Tensor.copy_:1.0"
    assert aa.side({}, both).env == base
    assert base["PYTHONPATH"] == head["PYTHONPATH"]
    # No placebo: the base and the A/A head carry nothing, the slowed head no placebo.
    assert injected(None, 1.0) == {} and aa.side({}).env == {}
    assert "INJECT_PLACEBO" not in slowed.side({}).env


def test_the_counts_see_what_a_shared_sitecustomize_reads(monkeypatch):
    # A placebo study's sides share the wrapper's PYTHONPATH and differ in its factor; a
    # night's may inherit a shared PYTHONPATH and differ in a variable its sitecustomize
    # reads.  The counting child starts from a fixed environment, so without the shared
    # PYTHONPATH neither side's count would see the wrapper.
    from copybench.jobs.power import injected
    from copybench.measure.gate import instruction_env

    aa, slowed = variants(["copy_"], [1.1])
    base = Side("base", env=injected(None, 1.0, ("copy_",)))
    b, h = instruction_env(base, slowed.side({}, ("copy_",)))
    assert b["PYTHONPATH"] == h["PYTHONPATH"] == base.env["PYTHONPATH"]
    assert (b["INJECT_SLOWDOWN"], h["INJECT_SLOWDOWN"]) == ("Tensor.copy_:1.0", "Tensor.copy_:1.1")
    assert b["INJECT_PLACEBO"] == h["INJECT_PLACEBO"] == "1"
    assert (
        instruction_env(base, aa.side({}, ("copy_",)))[1]["INJECT_SLOWDOWN"] == "Tensor.copy_:1.0"
    )
    # Inherited by both: the loader's variables go to both counts, other shared ones not.
    monkeypatch.setenv("PYTHONPATH", "/shared/site")
    monkeypatch.setenv("LD_PRELOAD", "libshared.so")
    monkeypatch.setenv("COPYBENCH_TEST_SHARED", "1")
    monkeypatch.delenv("LD_LIBRARY_PATH", raising=False)
    b, h = instruction_env(Side("base", env={"SWITCH": ""}), Side("head", env={"SWITCH": "on"}))
    assert b == {"LD_PRELOAD": "libshared.so", "PYTHONPATH": "/shared/site", "SWITCH": ""}
    assert h == {**b, "SWITCH": "on"}


def test_the_gate_processes_run_glibc_with_fixed_thresholds_unless_told(monkeypatch):
    from copybench.measure.gate import allocator_of
    from copybench.suite.cases import GATE_ALLOCATOR

    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    assert GATE_ALLOCATOR.items() <= Side("base").environ().items()
    assert allocator_of("fixed") == GATE_ALLOCATOR and allocator_of("dynamic") == {}
    dynamic = Side("base", allocator=allocator_of("dynamic")).environ()
    assert not set(GATE_ALLOCATOR) & set(dynamic)
    # What the side is given wins, then what the gate inherited, then the gate's setting.
    mine = Side("head", env={"MALLOC_TRIM_THRESHOLD_": "1"}).environ()
    assert mine["MALLOC_TRIM_THRESHOLD_"] == "1"
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "2")
    assert Side("base").environ()["MALLOC_MMAP_THRESHOLD_"] == "2"
    assert (
        Side("head", env={"MALLOC_MMAP_THRESHOLD_": ""}).environ().get("MALLOC_MMAP_THRESHOLD_")
        is None
    )


def test_every_variant_keeps_its_own_balanced_order_in_a_shared_round():
    rng = random.Random(3)
    base = Side("base")
    heads = [Side(f"h{i}") for i in range(5)]
    orders = [balanced_orders(24, rng) for _ in heads]
    for r in range(24):
        order = round_order(base, heads, [o[r] for o in orders], rng)
        assert sorted(s.name for s in order) == sorted(["base", *(h.name for h in heads)])
        at = order.index(base)
        for h, o in zip(heads, orders, strict=True):
            assert (order.index(h) > at) == o[r]
    assert all(sum(o) == 12 for o in orders)


def test_which_cases_call_the_wrapped_method_is_observed():
    cases = gate_cases(sizes=[1024])
    clone = set(calls_into(cases, "clone"))
    copy = set(calls_into(cases, "copy_"))
    assert "clone-1024-float32-grad-contiguous-cpu-t1" in clone
    assert "deepcopy_module-1e6x8-cpu-t1" in clone  # Parameter.__deepcopy__ clones .data
    assert "copy_into-1024-float32-grad-contiguous-cpu-t1" in copy
    assert not clone & copy
    # The wrapper is gone afterwards.
    import torch

    assert torch.Tensor.clone.__qualname__ == "TensorBase.clone"


def _study(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "copybench", "power-study", "--method", "clone"]
    cmd += ["--size", "1024", "--processes", "2", "--budget", "0.01", "--no-instructions"]
    return subprocess.run([*cmd, *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_a_tiny_study_end_to_end(tmp_path: Path):
    out = tmp_path / "study.json"
    first = _study("--gates", "1", "--target", "clone", "--factor", "1.5", "--out", str(out))
    assert first.returncode == 0, first.stderr[-2000:]
    assert "power study: 1 gates of 2 rounds per variant, quiet" in first.stdout
    assert "A/A" in first.stdout and "clone x1.5" in first.stdout
    saved = json.loads(out.read_text())
    assert [v["name"] for v in saved["variants"]] == [AA, "clone x1.5"]
    from copybench.suite.cases import GATE_ALLOCATOR

    assert saved["allocator"] == GATE_ALLOCATOR
    assert "fixed allocator" in first.stdout
    gate = saved["gates"][0]["clone x1.5"]
    assert gate["sides"]["head"]["env"]["INJECT_SLOWDOWN"] == "Tensor.clone:1.5"
    # One base process a round, shared: the A/A gate and the slowed one hold the same.
    aa = saved["gates"][0][AA]
    assert [r["base"]["pid"] for r in aa["rounds"]] == [r["base"]["pid"] for r in gate["rounds"]]
    assert len({r["head"]["pid"] for r in gate["rounds"]}) == 2
    again = _study(
        "--gates", "1", "--target", "clone", "--factor", "1.5", "--out", str(out), "--append"
    )
    assert again.returncode == 0, again.stderr[-2000:]
    assert len(json.loads(out.read_text())["gates"]) == 2
    rows = json.loads(
        subprocess.run(
            [sys.executable, "-m", "copybench", "power-study", "--from", str(out), "--json"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    slowed = [r for r in rows if r["variant"] == "clone x1.5"]
    assert {r["case"] for r in slowed} == {
        "clone-1024-float32-grad-contiguous-cpu-t1",
        "clone-1024-float32-nograd-contiguous-cpu-t1",
    }
    # Two rounds: no wall-time verdict either way, in both gates.
    assert all(r["gates"] == 2 and r["wall"] == 0 and r["calls"] for r in slowed)
    # Another study is not appended: other variants, a placebo, another allocator.
    appending = ("--gates", "1", "--factor", "1.5", "--out", str(out), "--append")
    for other, why in (
        (("--target", "copy_"), "another variants"),
        (("--target", "clone", "--placebo"), "another placebo"),
        (("--target", "clone", "--allocator", "dynamic"), "another allocator"),
    ):
        refused = _study(*appending, *other)
        assert refused.returncode == 2 and why in refused.stderr, (other, refused.stderr)
    alone = tmp_path / "placebo.json"
    placebo = _study(
        "--gates", "1", "--target", "clone", "--factor", "1.5", "--out", str(alone), "--placebo"
    )
    assert placebo.returncode == 0, placebo.stderr[-2000:]
    assert "placebo base (clone wrapped at 1.0 in every process)" in placebo.stdout
    gate = json.loads(alone.read_text())["gates"][0]
    sides = gate["clone x1.5"]["sides"]
    assert sides["base"]["env"]["INJECT_SLOWDOWN"] == "Tensor.clone:1.0"
    assert sides["head"]["env"]["INJECT_SLOWDOWN"] == "Tensor.clone:1.5"
    assert gate[AA]["sides"]["head"]["env"] == sides["base"]["env"]
