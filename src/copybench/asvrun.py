"""Run the asv suite against the installed torch: ``copybench run``.

This is ``asv run --python=same`` with the commit hash set (so results are saved), the
selection translated from copybench's vocabulary (methods, sizes, devices ...) into asv's
``--bench`` regular expressions, and the results file located afterwards.  Plain ``asv run``
(the torch-version matrix) needs none of this; it is documented in the README.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .cases import DTYPES, MODELS, MODULE_AXES, TENSOR_AXES, CaseError, check_device
from .methods import METHODS, get_method
from .results import write_env_sidecar

TENSOR_BENCH = "bench_tensor_copy.TensorCopy"
MODULE_BENCH = "bench_module_copy.ModuleCopy"


@dataclass
class Selection:
    """What to run; an empty list means every value of that axis."""

    methods: list[str] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    dtypes: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    devices: list[str] = field(default_factory=lambda: ["cpu"])

    def validate(self) -> None:
        """Raise CaseError / UnknownMethodError for anything outside the grid or machine."""
        for m in self.methods:
            get_method(m)
        for s in self.sizes:
            if s not in TENSOR_AXES["numel"]:
                known = ", ".join(map(str, TENSOR_AXES["numel"]))
                raise CaseError(f"size {s} is not in the grid; known: {known}")
        for d in self.dtypes:
            if d not in DTYPES:
                raise CaseError(f"unknown dtype {d!r}; known: {', '.join(DTYPES)}")
        for m in self.models:
            if m not in MODELS:
                raise CaseError(f"unknown model {m!r}; known: {', '.join(MODELS)}")
        for d in self.devices:
            check_device(d)


def _alternatives(values: list) -> str:
    return "(?:" + "|".join(re.escape(repr(v)) for v in values) + ")"


def _param_regex(bench: str, axes: list[str], chosen: dict[str, list]) -> str:
    """asv matches ``--bench`` against ``name(p0, p1, ...)`` with each param's repr."""
    parts = [_alternatives(chosen[a]) if chosen.get(a) else r"[^,()]*" for a in axes]
    return re.escape(bench) + r"\.\w+\(" + r", ".join(parts) + r"\)"


def bench_regexes(sel: Selection) -> list[str]:
    """The ``--bench`` regexes that select exactly ``sel`` (tensor and module cases)."""
    tensor_methods = [m for m in sel.methods if METHODS[m].kind == "tensor"]
    module_methods = [m for m in sel.methods if METHODS[m].kind == "module"]
    out = []
    # Size and dtype narrow tensor cases, model narrows module cases: asking for one of
    # them leaves the other kind out unless methods of that kind were named.
    want_tensor = bool(tensor_methods) or (not sel.methods and not sel.models)
    want_module = bool(module_methods) or (not sel.methods and not (sel.sizes or sel.dtypes))
    if want_tensor:
        chosen = {
            "method": tensor_methods,
            "numel": sel.sizes,
            "dtype": sel.dtypes,
            "device": sel.devices,
        }
        out.append(_param_regex(TENSOR_BENCH, ["method", *TENSOR_AXES], chosen))
    if want_module:
        chosen = {"method": module_methods, "model": sel.models, "device": sel.devices}
        out.append(_param_regex(MODULE_BENCH, ["method", *MODULE_AXES], chosen))
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
    conf = json.loads(_strip_comments(config.read_text()))
    return config.parent / conf.get("results_dir", "results")


def _strip_comments(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//"))


def run_asv(
    sel: Selection,
    quick: bool = False,
    config: Path | None = None,
    extra: list[str] | None = None,
) -> Path:
    """Run the selection with asv against this interpreter; return the results file."""
    sel.validate()
    root = project_root()
    config = (config or root / "asv.conf.json").resolve()
    if not config.is_file():
        raise FileNotFoundError(f"{config}: no such asv config")
    asv = [sys.executable, "-m", "asv"]
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=root, check=True, capture_output=True, text=True
    ).stdout.strip()
    # Record this machine's description (CPU, cores, memory) non-interactively.
    subprocess.run(
        [*asv, "machine", "--yes", "--config", str(config)],
        cwd=root,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    cmd = [
        *asv,
        "run",
        "--config",
        str(config),
        "--python=same",
        "--set-commit-hash",
        commit,
        "--show-stderr",
    ]
    for regex in bench_regexes(sel):
        cmd += ["--bench", regex]
    if quick:
        cmd.append("--quick")
    cmd += extra or []
    subprocess.run(cmd, cwd=root, check=True)
    newest = _newest_results(results_dir(config))
    if newest is None:
        raise FileNotFoundError(f"asv wrote no results under {results_dir(config)}")
    write_env_sidecar(newest, environment_info())
    return newest


def _newest_results(folder: Path) -> Path | None:
    files = [p for p in folder.glob("*/*.json") if p.name != "machine.json"]
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
        "cpu": _cpu_model(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


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
