"""Every file copybench writes and reads back, declared once: its name on disk, its version,
its writer and its reader.  Nothing else opens these files.

asv's results files and pytest-benchmark's JSON are those tools' own formats, read through
their loaders (:mod:`copybench.results.tidy`); what copybench keeps beside them is here:

- the **environment sidecar** beside an asv results file (``<file>.copybench-env``): what asv
  does not record for an existing environment (the exact torch build, threads, CPU, GPU),
  and since version 2 what each copy method did, observed by the interpreter that ran
  (``semantics``, :mod:`copybench.suite.semantics`), so a report never probes it again on
  whatever torch builds the report;
- the **paired sidecar** beside it (``<file>.copybench-paired``): the paired study of the
  same run (:mod:`copybench.measure.paired`);
- **gate results** (``copybench gate --out``, and ``<night>.gate.json`` in the archive);
- a **power study** (``copybench power-study --out``, ``reports/power/*.json``);
- the **GPU figures** (``copybench gpu-figures --json``);
- **advice** on one model (``copybench advise --out``, and what ``--json`` prints);
- the **nightly archive**: a folder with one asv results file per night, named so that it
  sorts by date, its environment sidecar (with the night's stamp, commit and machine), its
  paired sidecar and gate results where the night measured them, and asv's
  ``benchmarks.json``.

Versions.  Each format's files carry ``"format": "<name>/<version>"``; a reader takes every
version it was ever written in, and a file of a newer version than it knows is refused.
Environment sidecars and GPU figures written before they carried the key are version 1.

Every write is atomic (a temporary name in the same folder, then a rename), so a reader
never sees half a file.  No pandas here: a command that writes a file must not pay for it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


class ResultsError(ValueError):
    """Missing, unreadable or malformed results; the message names the path."""


@dataclass(frozen=True)
class Format:
    """One on-disk format: ``name`` at ``version`` (the one written now).  ``unversioned``:
    the version a file without a ``format`` key is (None: such a file is not this format)."""

    name: str
    version: int
    unversioned: int | None = None

    @property
    def tag(self) -> str:
        """What a file of this version carries as its ``format``."""
        return f"{self.name}/{self.version}"

    def version_of(self, data: Any) -> int | None:
        """The version ``data`` (a file's parsed JSON) was written in; None where it is not
        this format, or a newer version than this copybench reads."""
        if not isinstance(data, dict):
            return None
        tag = data.get("format")
        if tag is None:
            return self.unversioned
        name, _, version = str(tag).partition("/")
        if name != self.name or not version.isdigit() or int(version) > self.version:
            return None
        return int(version)

    def stamp(self, data: dict[str, Any]) -> dict[str, Any]:
        """``data`` as this version writes it: the ``format`` key first."""
        return {"format": self.tag, **{k: v for k, v in data.items() if k != "format"}}


# v2 (2026-12): "format" and "semantics" (each method's observed semantics on the torch that
# ran); v1 had neither.
ENV = Format("copybench-env", 2, unversioned=1)
PAIRED = Format("copybench-paired", 1)
GATE = Format("copybench-gate", 1)
POWER = Format("copybench-power", 1)
# v1 files written before the key was added carry none.
GPU_FIGURES = Format("copybench-gpu-figures", 1, unversioned=1)
ADVICE = Format("copybench-advice", 1)

ENV_SUFFIX = ".copybench-env"
PAIRED_SUFFIX = ".copybench-paired"
# Beside a night's asv results in the archive: the gate's results of that night.
GATE_SUFFIX = ".gate.json"
# Where pytest-benchmark saves runs (``--benchmark-storage``'s default), below the directory
# it runs in: ``<machine id>/NNNN_<name>.json``.
PYTEST_BENCHMARK_STORAGE = ".benchmarks"
# What asv keeps beside its results: not results files.
ASV_INDEX_FILES = ("machine.json", "benchmarks.json")
# asv environments that are the interpreter copybench ran in, not one asv built from the
# config's matrix: "installed" (:mod:`copybench.measure.asvenv`, named by the torch build)
# and asv's own "existing" (results saved before 2026-12, named by the interpreter's path).
INSTALLED_ENV = "installed"
THIS_INTERPRETER_ENVS = (INSTALLED_ENV, "existing")


def torch_build(version: str, cuda: str | None) -> str:
    """The build a torch version names: its local tag where it has one (``2.13.0+cpu``,
    ``2.14.1+cu128``), else one made from its CUDA version (PyPI's default Linux wheels
    carry none: ``2.14.1`` built for CUDA 12.8 is ``2.14.1+cu128``), else ``+cpu``."""
    if "+" in version:
        return version
    return f"{version}+cu{cuda.replace('.', '')}" if cuda else f"{version}+cpu"


# --- writing and reading -----------------------------------------------------------------------


def atomic_write_text(target: Path, text: str) -> None:
    """Write to a temporary name in the same folder, then rename over ``target``."""
    target = Path(target)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write(fmt: Format, target: Path, data: dict[str, Any], **dumps: Any) -> Path:
    """``data`` stamped with ``fmt``'s version, as JSON, atomically; returns ``target``."""
    atomic_write_text(Path(target), json.dumps(fmt.stamp(data), **dumps))
    return Path(target)


def read_json(path: Path, what: str) -> Any:
    """A JSON file's content; ResultsError naming ``path`` as not a readable ``what``."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ResultsError(f"{path}: not {what} ({e})") from None


def read(fmt: Format, path: Path, what: str) -> dict[str, Any]:
    """A file of ``fmt`` (any version this copybench reads); ResultsError otherwise."""
    data = read_json(path, what)
    if fmt.version_of(data) is None:
        raise ResultsError(f"{path}: not {what}")
    return data


def is_format(fmt: Format, path: Path) -> bool:
    """Whether ``path`` is a readable file of ``fmt`` (a file without a ``format`` key
    never is: only a tag tells one JSON file from another)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(data, dict) and "format" in data and fmt.version_of(data) is not None


def is_pytest_benchmark(path: Path) -> bool:
    """Whether ``path`` is pytest-benchmark's JSON (``--benchmark-json``, a saved run)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(data, dict) and "machine_info" in data and "benchmarks" in data


# --- beside an asv results file -----------------------------------------------------------------


def sidecar(results_file: Path, suffix: str) -> Path:
    """The file beside an asv results file that ends in ``suffix``."""
    results_file = Path(results_file)
    return results_file.with_name(results_file.name + suffix)


def write_env_sidecar(results_file: Path, info: dict[str, Any]) -> Path:
    """Write ``info`` (:func:`copybench.measure.asvrun.environment_info` and the machine)
    beside an asv results file; returns its path."""
    return write(ENV, sidecar(results_file, ENV_SUFFIX), info, indent=2, sort_keys=True)


def read_env_sidecar(results_file: Path) -> dict[str, Any]:
    """The environment sidecar of an asv results file, any version; {} where there is none
    (results that ``copybench run`` did not write) or it cannot be read."""
    try:
        data = json.loads(sidecar(results_file, ENV_SUFFIX).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return data if ENV.version_of(data) is not None else {}


def write_paired(results_file: Path, environment: dict[str, Any], records: list[dict]) -> Path:
    """The paired study's records beside the asv results file of the same run; its path."""
    data = {"environment": environment, "comparisons": records}
    return write(PAIRED, sidecar(results_file, PAIRED_SUFFIX), data)


def read_paired(results_file: Path) -> tuple[dict[str, Any], list[dict]] | None:
    """(environment, records) of the paired sidecar beside ``results_file``; None where
    there is none; ResultsError where it cannot be read."""
    path = sidecar(results_file, PAIRED_SUFFIX)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        data = None
    records = data.get("comparisons") if isinstance(data, dict) else None
    if PAIRED.version_of(data) is None or not isinstance(records, list):
        raise ResultsError(f"{path}: not a readable paired results file")
    return data.get("environment") or {}, records


# --- the gate, the power study, the GPU figures -------------------------------------------------


def gate_results(**fields: Any) -> dict[str, Any]:
    """Gate results (``copybench gate``'s, and each variant's of a power study) as this
    version writes them: ``design``, ``sides``, ``budget``, ``rounds``, and where measured
    ``instructions`` and ``semantics``."""
    return GATE.stamp(fields)


def write_gate(target: Path, data: dict[str, Any]) -> Path:
    return write(GATE, target, data)


def read_gate(path: Path) -> dict[str, Any]:
    return read(GATE, path, "copybench gate results")


def is_gate_results(path: Path) -> bool:
    return is_format(GATE, path)


def write_power(target: Path, data: dict[str, Any]) -> Path:
    return write(POWER, target, data)


def read_power(path: Path) -> dict[str, Any]:
    return read(POWER, path, "a power study's results")


def write_gpu_figures(target: Path, figures: dict[str, Any]) -> Path:
    return write(GPU_FIGURES, target, figures, indent=2)


def read_gpu_figures(path: Path) -> dict[str, Any]:
    return read(GPU_FIGURES, path, "GPU figures (copybench gpu-figures --json)")


def write_advice(target: Path, advice: dict[str, Any]) -> Path:
    """``copybench advise``'s results (:func:`copybench.measure.advise.advise`), stamped."""
    return write(ADVICE, target, advice, indent=2)


def read_advice(path: Path) -> dict[str, Any]:
    return read(ADVICE, path, "copybench advise results (copybench advise --out)")


# --- the nightly archive -----------------------------------------------------------------------


def night_name(stamp: str, machine: str, torch_version: str, commit: str) -> str:
    """``<UTC date-time>-<machine>-torch<version>-<commit>.json``: sorts by date; the
    machine's name is also in the sidecar, so archives of several machines share a folder."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", machine).strip("_.") or "machine"
    return f"{stamp}-{slug}-torch{torch_version.replace('+', '_')}-{commit[:8]}.json"


def archive_night(results_file: Path, archive: Path) -> Path:
    """Copy a night's asv results file (its sidecars too) into ``archive`` under
    :func:`night_name`; its environment sidecar gains the night's stamp, commit, asv file
    name and machine.  asv keys results by commit and environment only, so a second night
    at the same commit would otherwise overwrite the first."""
    side = read_env_sidecar(results_file)
    data = read_json(results_file, "a readable asv results file")
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    machine = side.get("machine") or data.get("params", {}).get("machine", "unknown")
    name = night_name(
        stamp,
        machine,
        str(side.get("torch_version", "unknown")),
        str(data.get("commit_hash", "unknown")),
    )
    archive.mkdir(parents=True, exist_ok=True)
    target = archive / name
    shutil.copyfile(results_file, target)
    paired = sidecar(results_file, PAIRED_SUFFIX)
    if paired.is_file():  # the paired study, where the night measured it
        shutil.copyfile(paired, sidecar(target, PAIRED_SUFFIX))
    side.update(
        night=stamp, commit=data.get("commit_hash"), asv_file=results_file.name, machine=machine
    )
    write_env_sidecar(target, side)
    bench_meta = results_file.parent.parent / "benchmarks.json"
    if bench_meta.is_file():  # lets the archive be read on its own (parameter names)
        shutil.copyfile(bench_meta, archive / "benchmarks.json")
    return target


def night_gate_file(night: Path) -> Path:
    """Where a night's gate results lie in the archive: ``<night>.gate.json``."""
    return night.with_name(night.stem + GATE_SUFFIX)


def nights(archive: Path, machine: str | None = None) -> list[Path]:
    """The archived nights (their asv results files), oldest first; only ``machine``'s if
    given (a night archived before machines were named counts as any machine's)."""
    if not archive.is_dir():
        return []
    found = sorted(
        p
        for p in archive.glob("*.json")
        if p.name not in ASV_INDEX_FILES and not p.name.endswith(GATE_SUFFIX)
    )
    if machine is None:
        return found
    return [p for p in found if read_env_sidecar(p).get("machine", machine) == machine]


def read_night(night: Path) -> dict[str, Any]:
    """A night's environment sidecar; ResultsError where it is missing or unreadable: the
    archive is the nightly's, and a hole in it would draw a trend that is not there."""
    path = sidecar(night, ENV_SUFFIX)
    if not path.exists():
        raise ResultsError(f"{path}: missing (every archived night has one)")
    data = read_json(path, "a readable night sidecar")
    if not isinstance(data, dict):
        raise ResultsError(f"{path}: not a readable night sidecar (not an object)")
    if ENV.version_of(data) is None:
        raise ResultsError(f"{path}: not a readable night sidecar ({data.get('format')})")
    return data
