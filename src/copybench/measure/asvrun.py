"""Run the asv suite against the installed torch: ``copybench run``.

This is ``asv run --python=same`` with the commit hash set (so results are saved), the
selection translated from copybench's vocabulary (methods, sizes, devices ...) into asv's
``--bench`` regular expressions, and the results file located afterwards.  Plain ``asv run``
(the torch-version matrix) needs none of this; it is documented in the README.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from copybench.formats import INSTALLED_ENV, atomic_write_text, write_env_sidecar
from copybench.measure.workers import run_bounded
from copybench.suite.cases import (
    CUDA_TENSOR_AXES,
    MODULE_AXES,
    SUITE_SIZES,
    TENSOR_AXES,
    TRANSFER_AXES,
    CaseError,
    check_device,
    check_layout,
    check_model,
    dtype_of,
    parse_size,
)
from copybench.suite.methods import METHODS, get_method
from copybench.suite.prepare import slowed_down_methods

TENSOR_BENCH = "bench_tensor_copy.TensorCopy"
MODULE_BENCH = "bench_module_copy.ModuleCopy"
CUDA_TENSOR_BENCH = "bench_cuda.CudaTensorCopy"
CUDA_MODULE_BENCH = "bench_cuda.CudaModuleCopy"
TRANSFER_BENCH = "bench_transfer.Transfer"
# The benchmark classes a Selection narrows, each with its axes after the method.
ASV_BENCHES: dict[str, dict[str, tuple]] = {
    TENSOR_BENCH: TENSOR_AXES,
    CUDA_TENSOR_BENCH: CUDA_TENSOR_AXES,
    MODULE_BENCH: MODULE_AXES,
    CUDA_MODULE_BENCH: MODULE_AXES,
    TRANSFER_BENCH: TRANSFER_AXES,
}
# Benchmark modules that Selection does not narrow (overhead pairs, allocator study,
# instruction counts): CPU-only, run whole when nothing narrows the selection.
OTHER_CPU_BENCH = r"^(?!bench_tensor_copy\.|bench_module_copy\.|bench_cuda\.|bench_transfer\.)"


@dataclass
class Selection:
    """What to run; an empty list means every value of that axis.  ``benchmarks``: only
    these of asv's benchmark classes (ASV_BENCHES; empty: every one the axes reach)."""

    methods: list[str] = field(default_factory=list, metadata={"axis": "method"})
    sizes: list[int] = field(default_factory=list, metadata={"axis": "numel"})
    dtypes: list[str] = field(default_factory=list, metadata={"axis": "dtype"})
    requires_grad: list[bool] = field(default_factory=list, metadata={"axis": "requires_grad"})
    layouts: list[str] = field(default_factory=list, metadata={"axis": "layout"})
    models: list[str] = field(default_factory=list, metadata={"axis": "model"})
    devices: list[str] = field(default_factory=lambda: ["cpu"], metadata={"axis": "device"})
    benchmarks: list[str] = field(default_factory=list)

    def by_axis(self) -> dict[str, list]:
        """The chosen values keyed by the case axis (cases.CASE_AXES) each field narrows."""
        return {f.metadata["axis"]: getattr(self, f.name) for f in fields(self) if f.metadata}

    def validate(self) -> None:
        """Raise CaseError / UnknownMethodError for anything outside the grid or machine."""
        for m in self.methods:
            if get_method(m).kind == "transfer":
                check_device("cuda")
        for s in self.sizes:
            parse_suite_size(str(s), self.devices)
        for d in self.dtypes:
            dtype_of(d)
        for layout in self.layouts:
            check_layout(layout)
        for m in self.models:
            check_model(m)
        for d in self.devices:
            check_device(d)
        for b in self.benchmarks:
            if b not in ASV_BENCHES:
                raise CaseError(f"unknown benchmark {b!r}; known: {', '.join(ASV_BENCHES)}")

    @property
    def narrowed(self) -> bool:
        return bool(
            self.methods
            or self.sizes
            or self.dtypes
            or self.requires_grad
            or self.layouts
            or self.models
            or self.benchmarks
        )


def sizes_for(devices: list[str]) -> tuple[int, ...]:
    """The tensor sizes the suite measures on ``devices``: the CPU grid everywhere, and the
    CUDA benchmarks' sizes besides where a CUDA device is asked for (what ``copybench
    list`` prints, and what ``copybench run --size`` takes)."""
    cuda = any(d.startswith("cuda") for d in devices)
    return tuple(sorted({*TENSOR_AXES["numel"], *(CUDA_TENSOR_AXES["numel"] if cuda else ())}))


def parse_suite_size(text: str, devices: list[str]) -> int:
    """A ``--size`` of the suite: an element count in the grid of ``devices``
    (:func:`sizes_for`); else CaseError naming those sizes, or saying that the size is
    measured on CUDA only."""
    known = sizes_for(devices)
    if text.isdigit() and int(text) not in known and int(text) in SUITE_SIZES:
        raise CaseError(
            f"size {text} is measured on CUDA only (--device cuda); CPU sizes: "
            f"{', '.join(map(str, known))}"
        )
    return parse_size(text, known)


def _alternatives(values: list) -> str:
    return "(?:" + "|".join(re.escape(repr(v)) for v in values) + ")"


def _param_regex(bench: str, axes: list[str], chosen: dict[str, list]) -> str:
    """asv matches ``--bench`` against ``name(p0, p1, ...)`` with each param's repr."""
    parts = [_alternatives(chosen[a]) if chosen.get(a) else r"[^,()]*" for a in axes]
    return re.escape(bench) + r"\.\w+\(" + r", ".join(parts) + r"\)"


def _wanted(sel: Selection) -> list[tuple[str, list[str], bool]]:
    """(benchmark class, the methods of its kind named, whether its device axis is fixed)
    for each class ``sel`` reaches.  Devices narrow every kind; size, dtype, grad and layout
    narrow tensor cases, model narrows module cases: asking for one of them leaves the
    other kind out unless methods of that kind were named.  GPU-only benchmarks run when a
    CUDA device is asked for."""
    kinds = {
        k: [m for m in sel.methods if METHODS[m].kind == k]
        for k in ("tensor", "module", "transfer")
    }
    cuda = any(d.startswith("cuda") for d in sel.devices)
    tensor_axes = bool(sel.sizes or sel.dtypes or sel.requires_grad or sel.layouts)
    out = []
    if kinds["tensor"] or (not sel.methods and not sel.models):
        out.append((TENSOR_BENCH, kinds["tensor"], False))
        if cuda:
            out.append((CUDA_TENSOR_BENCH, kinds["tensor"], True))
    if kinds["module"] or (not sel.methods and not tensor_axes):
        out.append((MODULE_BENCH, kinds["module"], False))
        if cuda:
            out.append((CUDA_MODULE_BENCH, kinds["module"], True))
    grid_only = sel.models or sel.dtypes or sel.requires_grad or sel.layouts
    if kinds["transfer"] or (cuda and not sel.methods and not grid_only):
        out.append((TRANSFER_BENCH, kinds["transfer"], False))
    return [w for w in out if not sel.benchmarks or w[0] in sel.benchmarks]


def bench_regexes(sel: Selection) -> list[str]:
    """The ``--bench`` regexes that select exactly ``sel`` (see :func:`_wanted`); the
    benchmarks Selection does not narrow run whole when nothing narrows it."""
    out = []
    for bench, methods, fixed_device in _wanted(sel):
        # A benchmark's regex reads only the axes it has (_param_regex).
        chosen = {**sel.by_axis(), "method": methods, **({"device": []} if fixed_device else {})}
        out.append(_param_regex(bench, ["method", *ASV_BENCHES[bench]], chosen))
    if not sel.narrowed and "cpu" in sel.devices:
        out.append(OTHER_CPU_BENCH)
    return out


def project_root() -> Path:
    """The checkout holding asv.conf.json (searched upward from the working directory)."""
    here = Path.cwd().resolve()
    for d in (here, *here.parents):
        if (d / "asv.conf.json").is_file():
            return d
    raise FileNotFoundError("asv.conf.json not found here or above: run inside a checkout")


def results_dir(config: Path) -> Path:
    """The results folder a config names (relative paths are relative to the config)."""
    conf = read_config(config)
    return config.parent / conf.get("results_dir", "results")


def html_dir(config: Path) -> Path:
    """The folder a config's ``asv publish`` writes (relative to the config), absolute."""
    return (config.parent / read_config(config).get("html_dir", "html")).resolve()


def checkout_config(config: Path | None = None) -> tuple[Path, Path]:
    """(the checkout, the asv config to use: ``config``, else the checkout's), the config
    absolute; FileNotFoundError where it does not exist."""
    root = project_root()
    config = (config or root / "asv.conf.json").resolve()
    if not config.is_file():
        raise FileNotFoundError(f"{config}: no such asv config")
    return root, config


def config_copy(
    root: Path, results: Path, html: Path, folder: Path, repo: Path | None = None
) -> Path:
    """A copy of the project's asv.conf.json, written into ``folder``, whose results and
    HTML go to ``results`` and ``html`` (absolute paths, so the copy can live anywhere):
    for runs that must not touch the project's own ``.asv/results``.  ``repo`` replaces
    the checkout as asv's repository (a snapshot of a tree that has no git history)."""
    conf = read_config(root / "asv.conf.json")
    conf.update(
        repo=str(repo or root),
        benchmark_dir=str(root / conf.get("benchmark_dir", "benchmarks")),
        env_dir=str(root / conf.get("env_dir", "env")),
        results_dir=str(results.resolve()),
        html_dir=str(html.resolve()),
    )
    target = folder / "asv.conf.json"
    target.write_text(json.dumps(conf, indent=2))
    return target


# The run configs' names: copybench-run-<hash of the contents>.asv.conf.json.
RUN_CONFIG = "copybench-run-{}.asv.conf.json"
# The port ``copybench preview`` serves asv's site on by default (asv preview's own first
# choice), which the report links to.
PREVIEW_PORT = 8080
# The asv plugin that defines the "installed" environment (imported by asv by module name).
PLUGIN = ".copybench.measure.asvenv"
# The config keys that name paths, with asv's defaults: relative to the config's folder.
_PATH_KEYS = {
    "repo": ".",
    "benchmark_dir": "benchmarks",
    "env_dir": "env",
    "results_dir": "results",
    "html_dir": "html",
}


def run_config(config: Path) -> Path:
    """The config ``copybench run`` hands asv: ``config`` with its paths made absolute,
    :data:`PLUGIN` among its plugins, and no matrix; written into asv's environment folder
    (``.asv/env/copybench-run-<hash>.asv.conf.json``), where the command line copybench
    prints can be run again.  Named by a hash of its contents: runs of several configs that
    share an environment folder (two nightlies into different results folders, at once)
    each get their own file, and one config always the same.

    With the plugin, ``-E installed:same`` names the results after this interpreter's
    Python and torch build (:mod:`copybench.measure.asvenv`).  Without the matrix, because
    asv expands a named environment type over every matrix entry: the config's two torch
    releases would make two environments, both this same interpreter.  Nothing else in
    the project's config changes, so plain ``asv run`` still builds the matrix."""
    conf = read_config(config)
    for key, default in _PATH_KEYS.items():
        value = str(conf.get(key, default))
        if "://" not in value and not value.startswith("git@"):  # a remote repo stays as is
            conf[key] = str((config.parent / value).resolve())
    conf["plugins"] = [*conf.get("plugins", []), PLUGIN]
    conf["matrix"] = {}
    text = json.dumps(conf, indent=2)
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    target = Path(conf["env_dir"]) / RUN_CONFIG.format(digest)
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, text)
    return target


def read_config(path: Path) -> dict:
    """An asv config file (JSON with ``//`` comment lines) as a dict."""
    return json.loads(strip_json_comments(path.read_text()))


def strip_json_comments(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//"))


# The environment variable that names the machine when --machine is not given.
MACHINE_VAR = "COPYBENCH_MACHINE"


def machine_name(name: str | None = None) -> str:
    """The asv machine name results are filed under: ``name``, else ``$COPYBENCH_MACHINE``,
    else the hostname.  A hosted CI runner's hostname changes from run to run, which would
    split asv's history into a new "machine" every night: workflows name theirs.

    Raises CaseError for a name asv cannot use as a folder name."""
    import socket

    name = name or os.environ.get(MACHINE_VAR) or socket.gethostname()
    if not name.strip() or "/" in name or "\0" in name or name.startswith("."):
        raise CaseError(
            f"machine name {name!r} cannot name a results folder (empty, a '/', or a leading '.')"
        )
    return name


def asv_command(
    config: Path,
    machine: str,
    commit: str,
    benches: list[str],
    quick: bool = False,
    extra: list[str] | None = None,
) -> list[str]:
    """The ``asv run`` command line copybench runs (``copybench run``, the nightly, the GPU
    check's asv steps): built here and nowhere else.  It runs ``config`` as
    :func:`run_config` writes it (which this writes)."""
    cmd = [
        sys.executable,
        "-m",
        "asv",
        "run",
        "--config",
        str(run_config(config)),
        "--machine",
        machine,
        # This interpreter, once, named by its torch build (see :func:`run_config`).
        # (``--python=same`` would expand the config's torch matrix
        # into one "existing" environment per entry - all this same interpreter - and run
        # the whole suite once for each.)
        "--environment",
        f"{INSTALLED_ENV}:same",
        "--set-commit-hash",
        commit,
        "--show-stderr",
        # Raw samples, not only asv's summary: compare's significance tests and the
        # report's confidence intervals are computed from them.
        "--record-samples",
    ]
    for regex in benches:
        cmd += ["--bench", regex]
    if quick:
        cmd.append("--quick")
    return cmd + (extra or [])


def run_asv(
    sel: Selection,
    quick: bool = False,
    config: Path | None = None,
    extra: list[str] | None = None,
    commit: str | None = None,
    timeout: float | None = None,
    machine: str | None = None,
    log: Path | None = None,
) -> Path:
    """Run the selection with asv against this interpreter; return the results file, beside
    which the environment sidecar is written (:func:`environment_info`, the machine, and
    :func:`observed_semantics`).

    ``extra`` are more ``asv run`` arguments; ``commit`` replaces the checkout's HEAD as the
    commit the results are filed under; ``timeout`` bounds the whole call, seconds
    (``subprocess.TimeoutExpired``, asv and everything it started killed: asv saves its
    results only at the end); ``machine`` the name the results are filed under
    (:func:`machine_name`); ``log`` a file that asv's output is appended to, after the
    command line, instead of this process's stdout and stderr.
    """
    sel.validate()
    machine = machine_name(machine)
    root, config = checkout_config(config)
    commit = commit or head_commit(root)
    cmd = asv_command(config, machine, commit, bench_regexes(sel), quick, extra)
    env = dict(os.environ)
    # asv drops PYTHONPATH from the environments it runs, "existing" ones included, unless
    # it is also given as ASV_PYTHONPATH (the GPU check installs into a folder on it).
    if env.get("PYTHONPATH"):
        env.setdefault("ASV_PYTHONPATH", env["PYTHONPATH"])
    with contextlib.ExitStack() as stack:
        sink = None if log is None else stack.enter_context(open(log, "a"))
        record_machine(machine)
        print(f"$ {shlex.join(cmd)}", file=sink or sys.stdout, flush=True)
        stderr = None if sink is None else subprocess.STDOUT
        done = run_bounded(cmd, timeout, cwd=root, env=env, stdout=sink, stderr=stderr)
        if done.returncode:
            raise subprocess.CalledProcessError(done.returncode, cmd)
    newest = _newest_results(results_dir(config) / machine)
    if newest is None:
        raise FileNotFoundError(f"asv wrote no results under {results_dir(config) / machine}")
    info = {**environment_info(), "machine": machine, "semantics": observed_semantics()}
    write_env_sidecar(newest, info)
    return newest


def paired_wanted(sel: Selection, paired: bool | None) -> bool:
    """Whether a run of ``sel`` measures the paired study: as ``paired`` says, else (None)
    when nothing narrows the run and it is on the CPU."""
    if paired is not None:
        return paired
    return not (sel.narrowed or sel.devices != ["cpu"])


def run_suite(sel: Selection, paired: bool | None = None, **asv: Any) -> Iterator[tuple[str, Path]]:
    """``copybench run`` and the nightly: the selection with asv (:func:`run_asv`, which
    takes ``asv``), then the report's paired study unless narrowed
    (:func:`paired_wanted`), stored beside the results.  Yields ``("results", file)`` as
    soon as asv is done, then ``("paired", file)`` where the study ran."""
    from copybench.measure.study import comparisons, measure_comparisons

    results = run_asv(sel, **asv)
    yield "results", results
    if paired_wanted(sel, paired):
        records = measure_comparisons(comparisons(), log=sys.stderr)
        yield "paired", write_paired(results, records)


def record_machine(machine: str) -> dict[str, str]:
    """File this computer in asv's machine file (``~/.asv-machine.json``) under ``machine``,
    described in full, and return the description: each field (OS, arch, CPU, cores, RAM)
    as the file already records it under that name, else as asv detects it.

    Not through ``asv machine --yes --machine NAME``: for any name but the hostname that
    records the name alone (asv drops every field equal to what it detects, and fills in
    the detected values only when nothing at all is given), so results and reports could
    not say which CPU measured them.  ``asv run --machine NAME`` then reads this entry."""
    from asv.machine import Machine, MachineCollection

    try:
        recorded = json.loads(Path(MachineCollection.get_machine_file_path()).read_text())
    except (OSError, ValueError):
        recorded = {}
    entry = recorded.get(machine) if isinstance(recorded, dict) else None
    entry = entry if isinstance(entry, dict) else {}
    info = {k: str(entry.get(k) or v) for k, v in Machine.get_defaults().items()}
    info["machine"] = machine
    MachineCollection.save(machine, info)
    return info


def write_paired(results_file: Path, records: list[dict[str, Any]]) -> Path:
    """Store the comparisons beside the asv results file of the same run (as the
    environment sidecar is), atomically; return the path."""
    from copybench import formats

    return formats.write_paired(Path(results_file), environment_info(), records)


def head_commit(root: Path) -> str:
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=root, check=True, capture_output=True, text=True
    ).stdout.strip()


def _newest_results(folder: Path) -> Path | None:
    files = [p for p in folder.glob("*.json") if p.name != "machine.json"]
    return max(files, key=lambda p: p.stat().st_mtime) if files else None


def environment_info() -> dict:
    """What asv does not record for an existing environment: exact torch build, threads."""
    import platform

    import torch

    info = {
        "torch_version": torch.__version__,
        "torch_git": torch.version.git_version,
        "cuda": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
        "threads_default": torch.get_num_threads(),
        "python": platform.python_version(),
        "slowed_down": slowed_down_methods(),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def observed_semantics() -> list[dict[str, Any]]:
    """What each registered copy method does on this interpreter's torch, observed on the
    CPU (``copybench semantics --json``): recorded with the results, so that a report shows
    what the torch that measured them did, not what the torch that builds the report does."""
    from copybench.suite.semantics import probe_all

    return [o.as_dict() for o in probe_all()]


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown"
