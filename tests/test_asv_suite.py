"""The asv suite, run for real: asv check, and a small run through ``copybench run``."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from copybench.formats import ENV_SUFFIX
from copybench.measure.asvrun import Selection, asv_command, bench_regexes, config_copy
from copybench.results.tidy import load_asv


def _asv(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "asv", *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )


def test_asv_check_is_clean(root):
    r = _asv("check", "--python=same", cwd=root)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "No problems found" in r.stdout


def test_selection_regexes_pick_exactly_the_asked_cases():
    import re

    (tensor,) = bench_regexes(Selection(methods=["clone"], sizes=[1024]))
    name = "bench_tensor_copy.TensorCopy.time_tensor_copy"
    hit = f"{name}('clone', 1024, 'float32', True, 'contiguous', 'cpu', 1)"
    assert re.search(tensor, hit)
    assert not re.search(tensor, hit.replace("'cpu'", "'cuda'"))
    assert not re.search(tensor, hit.replace("1024", "32"))
    assert not re.search(tensor, hit.replace("'clone'", "'clone_detach'"))
    default = bench_regexes(Selection())
    picked = [
        n
        for n in (
            "bench_tensor_copy.TensorCopy.time_tensor_copy('clone', 1, 'float32', "
            "False, 'contiguous', 'cpu', 1)",
            "bench_module_copy.ModuleCopy.time_module_copy('meta_assign', '1e4x8', 'cpu', 1)",
            "bench_instructions.InstructionCounts.track_instructions_tracked_clone(1024)",
            "bench_cuda.CudaTensorCopy.track_event_seconds('clone', 1024, "
            "'float32', False, 'contiguous', 'cuda', 1)",
            "bench_transfer.Transfer.time_transfer('copy_h2d', 1024, 'pinned', 1)",
        )
        if any(re.search(r, n) for r in default)
    ]
    # No selection: every CPU benchmark, nothing GPU-only.
    assert len(picked) == 3 and not any("cuda" in n or "transfer" in n for n in picked)


@pytest.fixture(scope="module")
def small_run(root, tmp_path_factory):
    """A real asv run of a few cases into a temporary results folder."""
    tmp = tmp_path_factory.mktemp("asv")
    config = config_copy(root, tmp / "results", tmp / "html", tmp)
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "copybench",
            "run",
            "--config",
            str(config),
            "--quick",
            "--method",
            "clone_detach",
            "--method",
            "detach_clone",
            "--size",
            "1024",
            "--method",
            "state_dict_snapshot",
            "--method",
            "deepcopy_module",
            "--model",
            "1e4x8",
            "--machine",
            "bench-box-1",
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return tmp / "results", r


def test_run_writes_results_and_says_where(small_run):
    results, r = small_run
    line = r.stdout.strip().splitlines()[-1]
    assert line.startswith("copybench: results written to ") and str(results) in line
    path = line.rsplit(" ", 1)[-1]
    assert results.exists() and path.endswith(".json")
    side = json.loads(Path(path + ENV_SUFFIX).read_text())
    assert side["torch_version"] == torch.__version__
    # Filed under the name given, not the hostname, with what the machine is.
    assert Path(path).parent == results / "bench-box-1"
    machine = json.loads((results / "bench-box-1" / "machine.json").read_text())
    assert machine["machine"] == "bench-box-1" and machine["num_cpu"] == str(os.cpu_count())
    assert side["machine"] == "bench-box-1" and side["cores"] == os.cpu_count() and side["cpu"]


def test_run_runs_the_command_line_asvrun_builds(small_run):
    # The one builder of `asv run` command lines, which the GPU check's asv steps use too
    # (tests/test_gpu_check.py): the line is echoed before asv's output.
    results, r = small_run
    path = Path(r.stdout.strip().splitlines()[-1].rsplit(" ", 1)[-1])
    sel = Selection(
        methods=["clone_detach", "detach_clone", "state_dict_snapshot", "deepcopy_module"],
        sizes=[1024],
        models=["1e4x8"],
    )
    commit = json.loads(path.read_text())["commit_hash"]
    config = (results.parent / "asv.conf.json").resolve()
    cmd = asv_command(config, "bench-box-1", commit, bench_regexes(sel), quick=True)
    assert f"$ {shlex.join(cmd)}" in r.stdout.splitlines()


@pytest.mark.parametrize("name", ["a/b", ".hidden", " "])
def test_a_machine_name_that_cannot_name_a_folder_is_bad_input(run_cli, name):
    r = run_cli("run", "--method", "clone", "--size", "1024", "--machine", name)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "cannot name a results folder" in r.stderr


def test_results_hold_every_selected_case_and_nothing_else(small_run):
    results, _ = small_run
    df = load_asv(results)
    ok = df[df.status == "ok"]
    tensor = ok[ok.metric == "time_tensor_copy"]
    assert set(tensor.method) == {"clone_detach", "detach_clone"}
    assert set(tensor.numel) == {1024} and set(tensor.device) == {"cpu"}
    # 2 methods x 2 dtypes x 2 requires_grad x 2 layouts
    assert len(tensor) == 16 and (tensor["median"] > 0).all()
    module = ok[ok.benchmark.str.contains("ModuleCopy")]
    assert set(module.method) == {"state_dict_snapshot", "deepcopy_module"}
    assert set(module.model) == {"1e4x8"}
    assert {"time_module_copy", "peakmem_module_copy", "track_peak_rss_growth"} <= set(
        module.metric
    )
    assert set(ok.torch_version) == {torch.__version__}
    assert set(df.threads) == {1}


def test_show_prints_a_summary_a_person_reads(small_run, run_cli):
    results, _ = small_run
    r = run_cli("show", str(results))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "torch" in lines[0] and "measurements" in lines[0] and "unstable" in lines[0]
    # One line per case family: clone_detach's time at 1,024 elements is 2 dtypes x 2
    # requires_grad x 2 layouts = 8 families, each with its one size in units (4 KiB of
    # float32, 2 KiB of bfloat16).
    family = [ln for ln in lines if "time_tensor_copy" in ln and "clone_detach" in ln]
    assert len(family) == 8
    for ln in family:
        size = "4 KiB " if "float32" in ln else "2 KiB "
        assert size in ln and ln.rstrip().rstrip("~").endswith("s"), ln
    assert "state_dict_snapshot" in r.stdout and "1e4x8" in r.stdout
    assert "NaN" not in r.stdout and "1024.0" not in r.stdout and "e-0" not in r.stdout
    # The whole table behind a flag: a header and one row per measurement that ran.
    table = run_cli("show", "--table", str(results))
    assert table.returncode == 0, table.stderr
    csv = run_cli("show", "--csv", str(results)).stdout.splitlines()
    ran = sum(1 for ln in csv[1:] if ",ok," in ln)
    assert len(table.stdout.splitlines()) == 1 + ran


def test_show_into_a_closed_pipe_ends_quietly(small_run):
    """``copybench show ... | head``: the reader is gone before the table is written."""
    results, _ = small_run
    copybench = Path(sys.executable).with_name("copybench")
    proc = subprocess.Popen(
        [str(copybench), "show", "--csv", str(results)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    proc.stdout.close()  # long before the child, still importing torch, writes
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 141
    assert err == ""


def test_show_headline_is_computed_from_the_results(small_run, run_cli):
    results, _ = small_run
    r = run_cli("show", "--headline", str(results))
    assert r.returncode == 0, r.stderr
    rows = [ln for ln in r.stdout.splitlines() if ln.startswith("| ") and "---" not in ln][1:]
    assert len(rows) == 2  # 1,024 elements; model 1e4x8 (the only cases in this run)
    assert rows[0].startswith("| 1,024 float32 (4 KiB)") and "1e4x8" in rows[1]
    ratio = float(rows[0].rstrip(" |").rsplit("|", 1)[-1])
    assert ratio > 0
