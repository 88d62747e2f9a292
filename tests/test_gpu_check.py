"""The GPU check as it must run on an offline CUDA machine (scripts/gpu_check.sh), tried
here without a GPU: the wheel folder is built for this Python, the network is shut off for
the check, and it must install everything from the folder and the tree, then stop at "no
CUDA GPU" with exit status 2.  The step bookkeeping and the figures' formatting are tested
on their own."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import torch

from copybench.formats import ENV_SUFFIX
from copybench.jobs import gpucheck
from copybench.measure.asvrun import (
    MACHINE_VAR,
    TENSOR_BENCH,
    Selection,
    asv_command,
    bench_regexes,
)
from copybench.measure.workers import run_bounded
from copybench.report.gpu_figures import format_figures
from copybench.results.tidy import load_asv

ROOT = Path(__file__).resolve().parents[1]
PY_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> Path:
    # The real script, for this interpreter's Python version (the GPU machine's is 3.12):
    # it needs the package index, as it does wherever the folder is prepared.
    d = tmp_path_factory.mktemp("wheels")
    done = subprocess.run(
        ["bash", "scripts/gpu_wheels.sh", str(d), "--python-version", PY_VERSION],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHON": sys.executable},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return d


def _offline_env(**extra: str) -> dict[str, str]:
    """No package index, and every proxy pointing at a closed port: any download fails."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    closed = "http://127.0.0.1:9"
    env.update(
        PIP_NO_INDEX="1",
        http_proxy=closed,
        https_proxy=closed,
        HTTP_PROXY=closed,
        HTTPS_PROXY=closed,
        PYTHON=sys.executable,
        **extra,
    )
    return env


def test_wheel_folder_holds_asv_and_its_dependencies(wheels):
    names = {p.name.split("-")[0].lower() for p in wheels.glob("*.whl")}
    assert {"asv", "asv_runner", "virtualenv", "setuptools"} <= names


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU behaviour")
def test_check_installs_offline_then_stops_at_no_cuda_gpu(wheels, tmp_path):
    out, tmp = tmp_path / "out", tmp_path / "tmp"
    tmp.mkdir()
    done = subprocess.run(
        ["bash", "scripts/gpu_check.sh", str(out), str(wheels)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env=_offline_env(TMPDIR=str(tmp)),
    )
    assert done.returncode == 2, (done.stdout[-2000:], done.stderr[-2000:])
    assert done.stderr.strip().splitlines() == [
        "copybench: device 'cuda' requested but no CUDA GPU is available here"
    ]
    versions = (out / "versions.txt").read_text()
    # asv and its dependencies came from the folder, copybench from this tree; nothing was
    # left behind in the interpreter (the private folder is removed on exit).
    assert f"installed from {wheels}: asv-" in versions
    assert f"installed from {wheels}: virtualenv-" in versions
    assert "installed from this tree: copybench-0.1.0" in versions
    assert not list(tmp.iterdir())


def test_bad_usage_and_a_missing_wheel_folder_exit_2(tmp_path):
    for args, message in (
        ([], "usage: bash scripts/gpu_check.sh [--machine NAME] OUTPUT_DIR [WHEEL_DIR]"),
        (["--machine"], "usage: bash scripts/gpu_check.sh [--machine NAME]"),
        ([str(tmp_path / "out"), str(tmp_path / "nowhere")], "no asv wheel in"),
    ):
        done = subprocess.run(
            ["bash", "scripts/gpu_check.sh", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            env=_offline_env(),
        )
        assert done.returncode == 2
        assert len(done.stderr.strip().splitlines()) == 1 and message in done.stderr


def test_a_step_past_its_limit_is_stopped_and_the_rest_still_run(tmp_path):
    check = gpucheck.Check(tmp_path, deadline=60, min_step=0.5)
    slow = check.step(
        "slow",
        1,
        lambda s, t: check.run(s, [sys.executable, "-c", "import time; time.sleep(30)"], t),
    )
    quick = check.step(
        "quick",
        20,
        lambda s, t: check.run(s, [sys.executable, "-c", "print('hi')"], t, tmp_path / "hi.txt"),
    )
    failing = check.step(
        "failing", 20, lambda s, t: check.run(s, [sys.executable, "-c", "raise SystemExit(3)"], t)
    )
    assert (slow.status, quick.status, failing.status) == ("timed out", "ok", "failed")
    assert slow.seconds < 10
    assert (tmp_path / "hi.txt").read_text() == "hi\n"
    steps = json.loads((tmp_path / "steps.json").read_text())
    assert [s["status"] for s in steps["steps"]] == ["timed out", "ok", "failed"]
    assert steps["ok"] is False


def test_steps_past_the_deadline_are_skipped_not_started(tmp_path):
    check = gpucheck.Check(tmp_path, deadline=gpucheck.MIN_STEP_SECONDS - 1)
    started = []
    step = check.step("late", 60, lambda s, t: started.append(t))
    assert step.status == "skipped" and not started


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_results_are_filed_under_a_snapshot_of_a_tree_without_history(tmp_path):
    tree = tmp_path / "tree"
    shutil.copytree(ROOT / "src", tree / "src")
    shutil.copy(ROOT / "asv.conf.json", tree)
    commit, repo = gpucheck._commit_for(tree, tmp_path)
    assert repo is not None and len(commit) == 40
    shown = subprocess.run(
        ["git", "-C", str(repo), "show", "--stat", "--format=%s", commit],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "snapshot" in shown and "src/copybench/measure/gpu.py" in shown


# One CPU case: the asv step's code path, without a GPU.
CPU_CASE = Selection(
    methods=["clone"],
    sizes=[1024],
    dtypes=["float32"],
    requires_grad=[False],
    layouts=["contiguous"],
    devices=["cpu"],
    benchmarks=[TENSOR_BENCH],
)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_the_asv_step_runs_what_copybench_run_runs_and_writes_the_sidecar(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv(MACHINE_VAR, "gpu-check-box")
    check = gpucheck.Check(tmp_path, deadline=600)
    gpucheck.asv_steps(check, ROOT, {"cpu": CPU_CASE})
    (step,) = check.steps
    log = check.log(step).read_text()
    assert (step.name, step.status) == ("asv-cpu", "ok"), (step.detail, log[-3000:])
    machine = tmp_path / "results" / "gpu-check-box"
    (results,) = (p for p in machine.glob("*.json") if p.name != "machine.json")
    side = json.loads(results.with_name(results.name + ENV_SUFFIX).read_text())
    assert side["torch_version"] == torch.__version__ and side["machine"] == "gpu-check-box"
    assert side["cores"] == os.cpu_count() and side["cpu"]
    # The command line in the step's log is asvrun's, the one `copybench run` runs
    # (tests/test_asv_suite.py): raw samples recorded, the chunk's regex, rounds=1.
    commit = json.loads(results.read_text())["commit_hash"]
    config = (tmp_path / "asv" / "asv.conf.json").resolve()
    regexes = bench_regexes(CPU_CASE)
    cmd = asv_command(config, "gpu-check-box", commit, regexes, extra=gpucheck.ASV_EXTRA)
    assert f"$ {shlex.join(cmd)}" in log.splitlines()
    ok = load_asv(tmp_path / "results").query("status == 'ok'")
    assert len(ok) == 1 and ok.n_samples.iloc[0] > 1


def _processes_with(mark: str) -> list[int]:
    found = []
    for p in Path("/proc").glob("[0-9]*"):
        try:
            if mark.encode() in (p / "cmdline").read_bytes():
                found.append(int(p.name))
        except OSError:
            continue
    return found


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds processes in /proc")
def test_an_asv_step_out_of_time_leaves_nothing_asv_started_behind():
    # asv starts its benchmark server as asv.util.check_output starts this sleeper: in a
    # process group of its own, which killing asv's group does not reach; run_bounded (which
    # runs every asv step) must kill it all the same.
    mark = f"copybench-test-{uuid.uuid4().hex}"
    sleeper = f"import time; time.sleep(120)  # {mark}"
    asv_like = [
        sys.executable,
        "-c",
        f"import sys; from asv import util; util.check_output([sys.executable, '-c', {sleeper!r}])",
    ]
    outcome: list[BaseException] = []

    def bounded() -> None:
        try:
            run_bounded(asv_like, 10)
        except BaseException as e:  # noqa: BLE001 - handed to the test's thread
            outcome.append(e)

    runner = threading.Thread(target=bounded)
    runner.start()
    try:
        deadline = time.monotonic() + 9
        while not (started := _processes_with(mark)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert started, "the sleeper did not start"
        # Its own group: the case the group kill alone misses.
        assert os.getpgid(started[0]) == started[0]
    finally:
        runner.join()
        left = _processes_with(mark)
        for pid in left:  # so that a failure leaves nothing behind either
            os.kill(pid, signal.SIGKILL)
    assert [type(e) for e in outcome] == [subprocess.TimeoutExpired]
    assert left == []


def test_figures_format_from_a_real_run():
    # figures.json as `copybench gpu-figures --json` wrote it on an H100 (README's GPU section).
    fig = json.loads((ROOT / "tests/data/gpu-figures-h100.json").read_text())
    text = format_figures(fig)
    assert "NVIDIA H100 80GB HBM3" in text and "peak 3,352 GB/s" in text
    for needle in ("CUDA events over a batch", "sync after every call", "| pinned |", "1e7x8"):
        assert needle in text
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert all(line.count("|") == rows[0].count("|") for line in rows[:3])
