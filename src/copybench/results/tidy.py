"""Results on disk -> one tidy pandas table (one row per measurement).

asv results are read through asv's own loader (``asv.results.Results``), which knows every
format version.  Parameters are decoded back into copybench's axes (method, numel, dtype ...)
so that asv and pytest-benchmark rows line up.
"""

from __future__ import annotations

import ast
import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from copybench.formats import (
    ASV_INDEX_FILES,
    ENV_SUFFIX,
    PAIRED_SUFFIX,
    PYTEST_BENCHMARK_STORAGE,
    ResultsError,
    is_pytest_benchmark,
    read_env_sidecar,
    read_paired,
)
from copybench.suite import cases

# The tidy table's columns, and the hardware among them: declared in cases.py.
COLUMNS = list(cases.COLUMNS)
HARDWARE = cases.HARDWARE_COLUMNS


def _decode(value: str) -> Any:
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value


def _unit(metric: str, declared: str | None) -> str:
    if declared:
        return declared
    if metric.startswith("time_"):
        return "seconds"
    if metric.startswith("peakmem_"):
        return "bytes"
    return "unknown"


def _asv_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*.json") if p.name not in ASV_INDEX_FILES)


def _benchmarks_json(path: Path) -> dict:
    for d in (path if path.is_dir() else path.parent, *path.resolve().parents):
        f = d / "benchmarks.json"
        if f.is_file():
            try:
                return json.loads(f.read_text())
            except (OSError, json.JSONDecodeError):
                return {}
    return {}


def _axis_names(name: str, bench_meta: dict, n: int) -> list[str]:
    declared = bench_meta.get(name, {}).get("param_names")
    if declared and len(declared) == n:
        return list(declared)
    cls = name.rsplit(".", 1)[0]
    known = {
        "bench_tensor_copy.TensorCopy": ["method", *cases.TENSOR_AXES],
        "bench_module_copy.ModuleCopy": ["method", *cases.MODULE_AXES],
        "bench_cuda.CudaTensorCopy": ["method", *cases.CUDA_TENSOR_AXES],
        "bench_cuda.CudaModuleCopy": ["method", *cases.MODULE_AXES],
        "bench_transfer.Transfer": ["method", *cases.TRANSFER_AXES],
    }.get(cls)
    if known and len(known) == n:
        return known
    return [f"param{i}" for i in range(n)]


def load_asv(path: str | os.PathLike) -> pd.DataFrame:
    """Every measurement in an asv results file or folder, as the tidy table."""
    from asv.results import Results  # heavy import, only where asv results are read
    from asv.util import UserError

    path = Path(path)
    if not path.exists():
        raise ResultsError(f"{path}: no such file or directory")
    files = _asv_files(path)
    if not files:
        raise ResultsError(f"{path}: no asv results files found")
    bench_meta = _benchmarks_json(path)
    rows = []
    for f in files:
        try:
            res = Results.load(str(f))
        except (UserError, OSError, ValueError, KeyError, TypeError) as e:
            raise ResultsError(f"{f}: not a readable asv results file ({e})") from None
        side = read_env_sidecar(f)
        torch_version = _torch_version(res.env_name or "", res.params, side)
        common = {
            "source": "asv",
            "torch_version": str(torch_version),
            "machine": res.params.get("machine", "unknown"),
            "env": res.env_name,
            "commit": res.commit_hash,
            "date": pd.to_datetime(res.date, unit="ms") if res.date else pd.NaT,
            **_asv_hardware(f, res.params, side),
        }
        for key in res.get_all_result_keys():
            rows += _rows_for(res, key, bench_meta, common)
    if not rows:
        raise ResultsError(f"{path}: results files hold no measurements")
    return pd.DataFrame(rows, columns=COLUMNS)


def _rows_for(res: Any, key: str, bench_meta: dict, common: dict) -> list[dict]:
    values = res.get_result_value(key, res.get_result_params(key))
    params = res.get_result_params(key)
    stats = res.get_result_stats(key, params)
    samples = res.get_result_samples(key, params)
    axes = _axis_names(key, bench_meta, len(params))
    combos = _product(params)
    metric = key.rsplit(".", 1)[-1]
    unit = _unit(metric, bench_meta.get(key, {}).get("unit"))
    out = []
    for i, combo in enumerate(combos):
        decoded = dict(zip(axes, (_decode(v) for v in combo), strict=True))
        value = values[i] if i < len(values) else None
        st = (stats[i] if stats and i < len(stats) else None) or {}
        sm = (samples[i] if samples and i < len(samples) else None) or []
        status = "ok"
        if value is None:
            status = "failed"
        elif isinstance(value, float) and math.isnan(value):
            status = "skipped"
        q25, q75 = st.get("q_25"), st.get("q_75")
        out.append(
            {
                **common,
                "benchmark": key,
                "metric": metric,
                **_case(decoded),
                "status": status,
                "median": value if status == "ok" else None,
                "q25": q25,
                "q75": q75,
                "iqr": (q75 - q25) if q25 is not None and q75 is not None else None,
                "n_samples": len(sm) if sm else st.get("repeat"),
                "unit": unit,
                "samples": list(sm),
                "asv_name": f"{key}({', '.join(combo)})" if combo else key,
            }
        )
    return out


def _case(params: dict[str, Any]) -> dict[str, Any]:
    """The case columns (cases.CASE_COLUMNS) of a measurement from its parameters: every
    axis, None where the harness has no such axis; ``nbytes`` from count and dtype."""
    case = {axis: params.get(axis) for axis in cases.CASE_AXES}
    if case["dtype"] is None and case["numel"] is not None:
        # Tensor benchmarks without a dtype axis (transfers, the allocator study, the
        # instruction counts) measure float32.
        case["dtype"] = cases.UNSTATED_DTYPE
    case["nbytes"] = params.get("nbytes") or _nbytes(case["numel"], case["dtype"])
    return case


def _nbytes(numel: Any, dtype: Any) -> int | None:
    return cases.nbytes(numel, dtype) if numel and dtype in cases.DTYPES else None


def _product(params: list[list[str]]) -> list[tuple[str, ...]]:
    import itertools

    return list(itertools.product(*params)) if params else [()]


# --- every results format, one table (``copybench report``) -------------------------------


def _classify(path: Path) -> tuple[list[Path], list[Path]]:
    """(asv results files, pytest-benchmark JSON files) at ``path``, a file or a folder."""
    files = [path] if path.is_file() else _asv_files(path)
    files = [f for f in files if not f.name.endswith((ENV_SUFFIX, PAIRED_SUFFIX))]
    pytest_files = [f for f in files if is_pytest_benchmark(f)]
    return [f for f in files if f not in pytest_files], pytest_files


def load_results(paths: list[str | os.PathLike]) -> pd.DataFrame:
    """asv results (files or folders, every machine and environment in them) and
    pytest-benchmark JSON files, as one tidy table with an ``unstable`` flag column.

    Raises ResultsError, naming the path, for a missing, empty or malformed input.
    """
    from copybench.suite.stats import UNSTABLE_RELATIVE_IQR, is_unstable

    frames = []
    for p in map(Path, paths):
        if not p.exists():
            raise ResultsError(f"{p}: no such file or directory")
        asv_files, pytest_files = _classify(p)
        if not asv_files and not pytest_files:
            raise ResultsError(f"{p}: no asv or pytest-benchmark results found")
        frames += [load_asv(f) for f in asv_files]
        if pytest_files:
            loader = globals().get("load_pytest_benchmark")
            if loader is None:
                raise ResultsError(f"{pytest_files[0]}: pytest-benchmark JSON is not supported")
            frames += [loader(f) for f in pytest_files]
    if not frames:
        raise ResultsError("no results given")
    df = pd.concat(frames, ignore_index=True)

    def unstable(row: pd.Series) -> bool:
        if row["status"] != "ok":
            return False
        if isinstance(row["samples"], list) and len(row["samples"]) >= 2:
            return is_unstable(row["samples"])
        if row["iqr"] is not None and row["median"]:
            return bool(row["iqr"] / row["median"] > UNSTABLE_RELATIVE_IQR)
        return False

    df[cases.UNSTABLE] = df.apply(unstable, axis=1).astype(bool)
    return df


def load_paired(paths: list[str | os.PathLike]) -> pd.DataFrame:
    """The paired comparisons stored beside the asv results files at ``paths``
    (``copybench run``, see :func:`copybench.measure.paired.measure_comparisons`): one row per
    comparison and run, with the run's machine, environment, commit and torch.  Empty
    where no run stored any.  Raises ResultsError for a sidecar that cannot be read."""
    rows = []
    for p in map(Path, paths):
        if not p.exists():
            continue
        for f in _classify(p)[0]:
            stored = read_paired(f)
            if stored is None:
                continue
            env, records = stored
            try:
                run = json.loads(f.read_text())
            except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                raise ResultsError(f"{f}: not a readable asv results file") from None
            params = run.get("params", {})
            for r in records:
                nbytes = _nbytes(r.get("numel"), r.get("dtype"))
                rows.append(
                    {
                        "machine": params.get("machine", "unknown"),
                        "env": run.get("env_name"),
                        "commit": run.get("commit_hash"),
                        "torch_version": env.get("torch_version") or "unknown",
                        "nbytes": nbytes,
                        **{k: v for k, v in r.items() if not isinstance(v, (list, dict))},
                    }
                )
    return pd.DataFrame(rows)


def load_environments(paths: list[str | os.PathLike]) -> list[dict[str, Any]]:
    """One dict per results file: machine, environment, commit, torch and hardware, and
    what each copy method did on that torch (``semantics``, as ``copybench semantics
    --json`` lists it; None where the run did not record it).

    asv's ``machine.json`` (beside each machine's results) gives CPU, cores, RAM and OS;
    the ``copybench run`` sidecar gives the exact torch build, threads, GPU and semantics;
    pytest-benchmark JSON carries its own ``machine_info`` and ``commit_info``.
    """
    out = []
    for p in map(Path, paths):
        if not p.exists():
            continue
        asv_files, pytest_files = _classify(p)
        out += [e for e in map(_asv_environment, asv_files) if e is not None]
        out += [_pytest_environment(f) for f in pytest_files]
    return out


def _asv_environment(f: Path) -> dict[str, Any] | None:
    """:func:`load_environments`' dict of an asv results file (None: not readable)."""
    try:
        data = json.loads(f.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    machine = _machine_json(f)
    side = read_env_sidecar(f)
    params = data.get("params", {})
    return {
        "source": "asv",
        "file": str(f),
        "machine": params.get("machine", machine.get("machine", "unknown")),
        "env": data.get("env_name"),
        "commit": data.get("commit_hash"),
        "torch_version": _torch_version(data.get("env_name", ""), params, side),
        "torch_git": side.get("torch_git"),
        "python": side.get("python") or params.get("python"),
        **_asv_hardware(f, params, side),
        "ram": machine.get("ram"),
        "os": machine.get("os"),
        "threads_default": side.get("threads_default"),
        "semantics": side.get("semantics"),
    }


def _pytest_environment(f: Path) -> dict[str, Any]:
    """:func:`load_environments`' dict of a pytest-benchmark JSON file."""
    data = json.loads(f.read_text())
    mi, ci = data.get("machine_info", {}), data.get("commit_info", {})
    extra = mi.get("copybench", {}) if isinstance(mi.get("copybench"), dict) else {}
    return {
        "source": "pytest-benchmark",
        "file": str(f),
        "machine": mi.get("node", "unknown"),
        "env": f"torch-{extra.get('torch_version') or 'unknown'}",
        "commit": extra.get("git_hash") or ci.get("id"),
        "torch_version": extra.get("torch_version"),
        "torch_git": extra.get("torch_git"),
        "python": mi.get("python_version"),
        **_pytest_hardware(mi),
        "ram": None,
        "os": mi.get("system"),
        "threads_default": extra.get("threads_default"),
        "semantics": extra.get("semantics"),
    }


# --- which machine measured them -------------------------------------------------------------


def _machine_json(results_file: Path) -> dict:
    """asv's description of the machine (``asv machine``), in its results folder."""
    try:
        data = json.loads((results_file.parent / "machine.json").read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _asv_hardware(results_file: Path, params: dict, side: dict) -> dict[str, Any]:
    """CPU model, cores and GPU of the machine that wrote an asv results file.

    The sidecar is written by the interpreter that ran, so it wins; then the machine
    folder's ``machine.json``; then the copy of it asv keeps in the file's params.  Only the
    sidecar knows the GPU.
    """
    machine = _machine_json(results_file)
    cpu = side.get("cpu") or machine.get("cpu") or params.get("cpu")
    cores = side.get("cores") or machine.get("num_cpu") or params.get("num_cpu")
    return {"cpu": cpu or None, "num_cpu": _count(cores), "gpu": side.get("gpu") or _no_gpu(side)}


def _pytest_hardware(machine_info: dict) -> dict[str, Any]:
    """CPU model, cores and GPU from pytest-benchmark's ``machine_info`` (py-cpuinfo's
    ``cpu``) and what the harness's hook adds to it (``copybench``: the GPU)."""
    cpu = machine_info.get("cpu")
    extra = machine_info.get("copybench")
    extra = extra if isinstance(extra, dict) else {}
    if isinstance(cpu, dict):
        model, cores = cpu.get("brand_raw"), cpu.get("count")
    else:
        model, cores = cpu, None
    return {
        "cpu": model or extra.get("cpu") or None,
        "num_cpu": _count(cores or extra.get("cpu_count")),
        "gpu": extra.get("gpu") or _no_gpu(extra),
    }


def _count(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class MachineIdentity:
    """The machine a set of results was measured on, as far as the results record it
    (None: not recorded).  ``gpu`` is "none" where CUDA was unavailable."""

    name: str | None
    cpu: str | None
    num_cpu: int | None
    gpu: str | None

    def describe(self) -> str:
        cores = f", {self.num_cpu} cores" if self.num_cpu else ""
        gpu = {None: "GPU not recorded", "none": "no GPU"}.get(self.gpu, f"GPU {self.gpu}")
        return f"{self.name or 'unnamed'} ({self.cpu or 'CPU not recorded'}{cores}, {gpu})"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def machine_identity(df: pd.DataFrame) -> MachineIdentity:
    """The one machine that measured every row of ``df`` (any loader's table).

    A field recorded by some rows and not others (a run without a sidecar beside one with)
    takes the recorded value.  Raises ResultsError where the rows name two machines, or two
    CPU models or GPUs.
    """
    fields = {"name": "machine", **{f: f for f in HARDWARE}}
    found: dict[str, Any] = {}
    for field, column in fields.items():
        values = df[column] if column in df else pd.Series(dtype=object)
        known = {v for v in values if pd.notna(v) and v != "unknown"}
        if len(known) > 1:
            listed = ", ".join(sorted(map(str, known)))
            raise ResultsError(f"results from several machines ({column}: {listed})")
        found[field] = known.pop() if known else None
    if found["num_cpu"] is not None:
        found["num_cpu"] = int(found["num_cpu"])
    return MachineIdentity(**found)


def _torch_version(env_name: str, params: dict, side: dict) -> str:
    """The torch a results file was measured with.

    The sidecar is written by the interpreter that ran, so it wins.  For an existing
    environment (``--python=same``) asv copies ``torch`` from the config's matrix into the
    params whether or not that is what is installed, so without a sidecar it is unknown.
    """
    if side.get("torch_version"):
        return str(side["torch_version"])
    if params.get("torch") and not env_name.startswith("existing"):
        return str(params["torch"])
    return "unknown"


def _no_gpu(side: dict) -> str | None:
    """ "none" where the sidecar says CUDA was unavailable; None (unknown) without one."""
    return "none" if side.get("cuda_available") is False else None


# --- pytest-benchmark JSON (``tests/benchmarks``, ``--benchmark-json``) --------------------


def saved_run(
    ref: str | os.PathLike, storage: str | os.PathLike = PYTEST_BENCHMARK_STORAGE
) -> Path:
    """``ref`` where it names an existing path; else the one run pytest-benchmark saved in
    ``storage`` whose file name starts with ``ref`` (``0001``, ``0001_ab12``, or
    ``<machine id>/0001``; a glob as well), as ``pytest-benchmark compare`` finds runs.
    ``storage`` may be given as ``--benchmark-storage`` takes it, ``file://DIR``.

    Raises ResultsError where nothing or several runs match.
    """
    path = Path(ref)
    if path.exists():
        return path
    folder = Path(str(storage).removeprefix("file://"))
    if path.is_absolute() or len(path.parts) not in (1, 2):
        raise ResultsError(f"{ref}: no such file or directory")
    pattern = str(ref).rstrip("*") + "*.json"
    found = set(folder.glob(pattern))
    if len(path.parts) == 1:  # the run's name alone: under any machine id
        found |= set(folder.glob(f"*/{pattern}"))
    runs = sorted(found)
    if not runs:
        raise ResultsError(
            f"{ref}: no such file or directory, nor a run saved in {folder} named so"
        )
    if len(runs) > 1:
        names = ", ".join(str(r.relative_to(folder)) for r in runs[:3])
        more = ", ..." if len(runs) > 3 else ""
        raise ResultsError(
            f"{ref}: matches {len(runs)} runs saved in {folder} ({names}{more}); "
            "give more of the name"
        )
    return runs[0]


def load_pytest_benchmark(path: str | os.PathLike) -> pd.DataFrame:
    """Every benchmark in a pytest-benchmark JSON file, as the tidy table: one written by
    ``--benchmark-json``, or one saved by ``--benchmark-autosave``/``--benchmark-save`` (the
    same schema; see :func:`saved_run`).

    The case's axes come from the test's parameters (the harness parametrizes by axis name),
    else from ``extra_info``; the torch version and git hash from the harness's machine-info
    hook.  ``samples`` are pytest-benchmark's per-round times (seconds per call); a saved run
    holds them only when ``--benchmark-save-data`` was given, else ``samples`` is empty and
    the row keeps pytest-benchmark's statistics (median, quartiles, rounds).
    """
    path = Path(path)
    if not path.is_file():
        raise ResultsError(f"{path}: no such file")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ResultsError(f"{path}: not a readable JSON file ({e})") from None
    if not (isinstance(data, dict) and isinstance(data.get("benchmarks"), list)):
        raise ResultsError(f"{path}: not a pytest-benchmark JSON file (no 'benchmarks' list)")
    mi = data.get("machine_info") if isinstance(data.get("machine_info"), dict) else {}
    extra = mi.get("copybench") if isinstance(mi.get("copybench"), dict) else {}
    commit = extra.get("git_hash") or (data.get("commit_info") or {}).get("id")
    date = pd.to_datetime(data["datetime"]) if data.get("datetime") else pd.NaT
    hardware = _pytest_hardware(mi)
    rows = []
    for bench in data["benchmarks"]:
        try:
            rows.append({**_pytest_row(bench, extra, mi, commit, date), **hardware})
        except (KeyError, TypeError, ValueError) as e:
            raise ResultsError(f"{path}: malformed benchmark entry ({e!r})") from None
    if not rows:
        raise ResultsError(f"{path}: holds no benchmarks")
    return pd.DataFrame(rows, columns=COLUMNS)


def _pytest_row(bench: dict, extra: dict, mi: dict, commit: str | None, date: Any) -> dict:
    st = bench["stats"]
    params = {**(bench.get("extra_info") or {}), **(bench.get("params") or {})}
    function = bench["name"].split("[", 1)[0]
    torch_version = params.get("torch_version") or extra.get("torch_version") or "unknown"
    samples = [float(x) for x in st.get("data") or []]
    q25, q75 = st.get("q1"), st.get("q3")
    return {
        "source": "pytest-benchmark",
        "benchmark": function,
        # test_tensor_copy -> time_tensor_copy: the asv suite's name for the same measurement
        "metric": "time_" + function.removeprefix("test_"),
        **_case(params),
        "torch_version": str(torch_version),
        "machine": mi.get("node", "unknown"),
        "env": f"torch-{torch_version}",
        "commit": commit,
        "date": date,
        "status": "ok",
        "median": float(st["median"]),
        "q25": q25,
        "q75": q75,
        "iqr": (q75 - q25) if q25 is not None and q75 is not None else None,
        "n_samples": len(samples) or st.get("rounds"),
        "unit": "seconds",
        "samples": samples,
    }
