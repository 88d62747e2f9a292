"""``copybench gpu-check OUTPUT_DIR``: the GPU check's steps, each bounded in time.

``scripts/gpu_check.sh`` prepares the interpreter (offline installs) and calls this.  The
steps run one after another, each in its own process group with a time limit, the whole
within ``--deadline`` seconds; whatever a step wrote stays, and ``steps.json`` (rewritten
after every step) says what ran, for how long, and how it ended.  So a check that a lease
cuts short still leaves what it measured so far.

Under OUTPUT_DIR:

- ``versions.txt`` (given ``--installed``): Python and torch, and what came from where;
- ``device.json``: GPU, driver, torch, CUDA, peak rates (:func:`copybench.measure.gpu.device_info`);
- ``cuda-tests.txt``, ``cuda-tests.xml``: the CUDA tests and the registry, semantics and
  tutorial tests, on this machine's torch;
- ``semantics-cuda.txt``, ``semantics-cuda.json``: the semantics table observed on CUDA;
- ``figures.md``, ``figures.json``: the README's GPU figures (``copybench gpu-figures``);
- ``results/``: asv results of the CUDA subset, run by :func:`copybench.measure.asvrun.run_asv`
  as ``copybench run`` runs them (raw samples recorded, copybench's environment sidecar
  beside the results file); ``report/``: the HTML report of those results;
- ``logs/STEP.log``: each step's output; ``steps.json``.

Exit status: 0 every step ended well; 1 a step failed or ran out of time; 2 no CUDA GPU (or
bad input), one line on stderr.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from copybench.formats import atomic_write_text
from copybench.measure.asvrun import (
    CUDA_MODULE_BENCH,
    CUDA_TENSOR_BENCH,
    TENSOR_BENCH,
    TRANSFER_BENCH,
    Selection,
)
from copybench.measure.progress import note
from copybench.suite import cases

DEFAULT_DEADLINE = 480.0
# A step is not started with less than this left: it could not finish anything useful.
MIN_STEP_SECONDS = 15.0


def _tensor_chunk(bench: str, sizes: tuple[int, ...]) -> Selection:
    return Selection(
        methods=list(cases.GPU_CHECK_TENSOR_METHODS),
        sizes=list(sizes),
        dtypes=[cases.UNSTATED_DTYPE],
        layouts=[cases.LAYOUTS[0]],
        devices=["cuda"],
        benchmarks=[bench],
    )


# The asv subset (cases.GPU_CHECK_*), most valuable first; each chunk is one `asv run` (asv
# saves results only when a run ends, so a chunk cut short loses only itself).
ASV_CHUNKS: dict[str, Selection] = {
    "cuda-tensor": _tensor_chunk(CUDA_TENSOR_BENCH, cases.GPU_CHECK_EVENT_SIZES),
    "cuda-module": Selection(
        methods=list(cases.GPU_CHECK_MODULE_METHODS),
        models=list(cases.GPU_CHECK_MODELS),
        devices=["cuda"],
        benchmarks=[CUDA_MODULE_BENCH],
    ),
    "transfer": Selection(
        methods=list(cases.GPU_CHECK_TRANSFER_METHODS),
        sizes=[cases.TRANSFER_NUMEL],
        devices=["cuda"],
        benchmarks=[TRANSFER_BENCH],
    ),
    "tensor-sync": _tensor_chunk(TENSOR_BENCH, cases.GPU_CHECK_SYNC_SIZES),
}
# asv's own rounds (2 for TensorCopy) would double the subset's processes.
ASV_EXTRA = ["--attribute", "rounds=1"]
ASV_STEP_LIMIT = 120.0


@dataclass
class Step:
    name: str
    limit: float
    status: str = "not run"
    seconds: float = 0.0
    detail: str = ""


class Check:
    """The steps' bookkeeping: deadlines, logs, ``steps.json``."""

    def __init__(self, out: Path, deadline: float, min_step: float = MIN_STEP_SECONDS) -> None:
        self.out = out
        self.min_step = min_step
        self.end = time.monotonic() + deadline
        self.steps: list[Step] = []
        (out / "logs").mkdir(parents=True, exist_ok=True)

    def left(self) -> float:
        return self.end - time.monotonic()

    def save(self) -> None:
        data = {"steps": [asdict(s) for s in self.steps], "ok": self.ok}
        atomic_write_text(self.out / "steps.json", json.dumps(data, indent=2))

    @property
    def ok(self) -> bool:
        return all(s.status == "ok" for s in self.steps)

    def step(self, name: str, limit: float, body: Callable[[Step, float], None]) -> Step:
        step = Step(name, limit)
        self.steps.append(step)
        budget = min(limit, self.left())
        if budget < self.min_step:
            step.status = "skipped"
            step.detail = f"{max(self.left(), 0):.0f} s left of the deadline"
        else:
            note(f"gpu-check: {name}: started (at most {budget:.0f} s)", sys.stderr)
            t0 = time.monotonic()
            try:
                body(step, budget)
                if step.status == "not run":
                    step.status = "ok"
            except subprocess.TimeoutExpired:
                step.status = "timed out"
                step.detail = f"stopped after {budget:.0f} s"
            except Exception as e:  # a step's failure must not lose the others' results
                step.status = "failed"
                step.detail = f"{type(e).__name__}: {e}"[:500]
            step.seconds = round(time.monotonic() - t0, 1)
        note(
            f"gpu-check: {name}: {step.status} ({step.seconds:.0f} s){' - ' if step.detail else ''}"
            f"{step.detail}",
            sys.stderr,
        )
        self.save()
        return step

    def log(self, step: Step) -> Path:
        return self.out / "logs" / f"{step.name}.log"

    def failed(self, step: Step, returncode: int) -> None:
        step.status = "failed"
        step.detail = f"exit status {returncode}; see logs/{step.name}.log"

    def run(self, step: Step, cmd: list[str], timeout: float, stdout: Path | None = None) -> int:
        """Run ``cmd`` (bounded), its output to ``logs/STEP.log`` (stdout to ``stdout`` if
        given, written under a temporary name and renamed when the command succeeds)."""
        from copybench.measure.workers import run_bounded

        with open(self.log(step), "a") as err:
            err.write(f"$ {' '.join(cmd)}\n")
            err.flush()
            if stdout is None:
                done = run_bounded(cmd, timeout, stdout=err, stderr=subprocess.STDOUT, text=True)
            else:
                done = run_bounded(cmd, timeout, stdout=subprocess.PIPE, stderr=err, text=True)
                err.write(done.stdout)
                if done.returncode == 0:
                    atomic_write_text(stdout, done.stdout)
        if done.returncode:
            self.failed(step, done.returncode)
        return done.returncode


def _py(*args: str) -> list[str]:
    return [sys.executable, *args]


# The tests the check runs on the GPU machine's torch: CUDA's own, and those of the registry,
# the semantics and the tutorial.
CUDA_TESTS = (
    "tests/test_cuda.py",
    "tests/test_semantics.py",
    "tests/test_registry.py",
    "tests/test_tutorial.py",
)
# What the device step runs: the GPU, driver, torch and CUDA, as JSON.
DEVICE_INFO = (
    "import json; from copybench.measure.gpu import device_info as d; "
    "print(json.dumps(d(), indent=2))"
)


def _command(check: Check, args: list[str], stdout: Path | None = None) -> Callable:
    """A step's body: this interpreter with ``args``, bounded, stdout to ``stdout``."""
    return lambda s, t: check.run(s, _py(*args), t, stdout)


def _semantics(check: Check) -> Callable:
    """The semantics step's body: the table and the JSON, half the step's time each."""

    def run(s: Step, t: float) -> None:
        cmd = ["-m", "copybench", "semantics", "--device", "cuda"]
        check.run(s, _py(*cmd), t / 2, check.out / "semantics-cuda.txt")
        check.run(s, _py(*cmd, "--json"), t / 2, check.out / "semantics-cuda.json")

    return run


def run_check(
    out: Path,
    deadline: float,
    processes: int,
    installed: Path | None = None,
    wheels: Path | None = None,
) -> int:
    """The GPU check (see the module's docstring): 0 every step ended well, 1 not; CaseError
    (bad input) without a CUDA GPU or for a machine name asv cannot use."""
    from copybench.measure.asvrun import machine_name, project_root
    from copybench.suite.cases import check_device

    if installed is not None:  # first: it says what the check ran on even when it stops here
        out.mkdir(parents=True, exist_ok=True)
        write_versions(out / "versions.txt", installed, wheels)
    check_device("cuda")  # CaseError: exit 2 with one line
    machine_name()  # a name asv cannot file results under is bad input too
    root = project_root()
    out.mkdir(parents=True, exist_ok=True)
    out = out.resolve()
    check = Check(out, deadline)
    check.step("device", 30, _command(check, ["-c", DEVICE_INFO], out / "device.json"))
    tests = ["-m", "pytest", "-q", "-p", "no:cacheprovider", *CUDA_TESTS]
    tests.append(f"--junitxml={out / 'cuda-tests.xml'}")
    check.step("tests", 120, _command(check, tests, out / "cuda-tests.txt"))
    check.step("semantics", 45, _semantics(check))
    figures = ["-m", "copybench", "gpu-figures", "--processes", str(processes)]
    figures += ["--json", str(out / "figures.json")]
    check.step("figures", 150, _command(check, figures, out / "figures.md"))
    asv_steps(check, root, ASV_CHUNKS)
    report = ["-m", "copybench", "report", str(out / "results"), "--out", str(out)]
    check.step("report", 60, _command(check, [*report, "--name", "report"]))
    check.save()
    return 0 if check.ok else 1


def _commit_for(root: Path, tmp: Path) -> tuple[str, Path | None]:
    """The commit asv files the results under: the checkout's HEAD where the tree is that
    commit, else (no git history, as in a copied working tree, or changes not committed) a
    one-commit snapshot of the tree made in ``tmp``: results must not claim a commit whose
    code they did not run."""
    from copybench.measure.asvrun import head_commit, read_config

    try:
        head = head_commit(root)
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=root, check=True, capture_output=True, text=True
        ).stdout.strip()
        if not dirty:
            return head, None
    except (OSError, subprocess.CalledProcessError):
        pass
    if shutil.which("git") is None:
        raise RuntimeError("the tree has no git history and git is not installed")
    repo = tmp / "snapshot"
    git = ["git", f"--git-dir={repo}/.git", f"--work-tree={root}"]
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "copybench",
        "GIT_AUTHOR_EMAIL": "copybench@localhost",
        "GIT_COMMITTER_NAME": "copybench",
        "GIT_COMMITTER_EMAIL": "copybench@localhost",
    }
    subprocess.run(["git", "init", "-q", str(repo)], check=True, env=env)
    # On the branch asv.conf.json names (asv refuses a results commit on an unknown one).
    conf = read_config(root / "asv.conf.json")
    branch = (conf.get("branches") or ["main"])[0]
    subprocess.run([*git, "symbolic-ref", "HEAD", f"refs/heads/{branch}"], check=True, env=env)
    subprocess.run([*git, "add", "-A", "."], check=True, env=env, cwd=root)
    subprocess.run(
        [*git, "commit", "-q", "-m", "gpu-check: snapshot of a working tree without history"],
        check=True,
        env=env,
        cwd=root,
    )
    return head_commit(repo), repo


def asv_steps(check: Check, root: Path, chunks: dict[str, Selection]) -> None:
    """One step ``asv-CHUNK`` per chunk (a selection of the suite's cases), each an
    ``asv run`` by :func:`copybench.measure.asvrun.run_asv` - the command line, the sidecar
    beside the results file, the kill of everything asv started when the step's time is
    up - into ``results/``, its output in ``logs/asv-CHUNK.log``; filed under the commit
    :func:`_commit_for` gives."""
    from copybench.measure.asvrun import config_copy, run_asv

    out = check.out
    (out / "asv").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="copybench-gpu-check-") as tmp:
        commit, repo = _commit_for(root, Path(tmp))
        config = config_copy(root, out / "results", out / "asv" / "html", out / "asv", repo=repo)

        def asv(step: Step, timeout: float, sel: Selection) -> None:
            try:
                run_asv(
                    sel,
                    config=config,
                    extra=ASV_EXTRA,
                    commit=commit,
                    timeout=timeout,
                    log=check.log(step),
                )
            except subprocess.CalledProcessError as e:
                check.failed(step, e.returncode)

        for chunk, sel in chunks.items():
            check.step(f"asv-{chunk}", ASV_STEP_LIMIT, lambda s, t, c=sel: asv(s, t, c))


def write_versions(target: Path, installed: Path, wheels: Path | None) -> None:
    """``versions.txt`` (also printed): this Python and torch, then each package in the
    folder ``installed`` (what scripts/gpu_check.sh installed): copybench from this tree,
    the others from ``wheels``."""
    import torch

    lines = [f"python {sys.version.split()[0]} at {sys.executable}; torch {torch.__version__}"]
    for name in sorted(p.name.removesuffix(".dist-info") for p in installed.glob("*.dist-info")):
        source = "this tree" if name.startswith("copybench-") else wheels or "the wheel folder"
        lines.append(f"installed from {source}: {name}")
    text = "\n".join(lines) + "\n"
    print(text, end="", flush=True)
    atomic_write_text(target, text)


def gpu_figures(
    processes: int, budget: float, json_path: Path | None = None, log: Any = None
) -> str:
    """What ``copybench gpu-figures`` prints: the README's GPU figures measured in
    ``processes`` fresh processes (:func:`copybench.measure.gpu.measure`), as markdown; the
    figures themselves also written to ``json_path`` where given."""
    from copybench.formats import write_gpu_figures
    from copybench.measure.gpu import measure
    from copybench.report.gpu_figures import format_figures
    from copybench.suite.cases import UsageError, check_device

    if processes < 1:
        raise UsageError("--processes must be at least 1")
    check_device("cuda")
    fig = measure(processes, budget, log=log)
    if json_path is not None:
        write_gpu_figures(json_path, fig)
    return format_figures(fig)
