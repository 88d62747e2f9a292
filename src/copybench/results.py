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
from pathlib import Path
from typing import Any

import pandas as pd

from . import cases

# Sidecar written next to an asv results file by ``copybench run``: asv records the exact
# torch version only for matrix environments, not for ``--python=same`` runs.
ENV_SUFFIX = ".copybench-env"

COLUMNS = [
    "source",
    "benchmark",
    "metric",
    "method",
    "numel",
    "nbytes",
    "dtype",
    "requires_grad",
    "layout",
    "device",
    "threads",
    "model",
    "torch_version",
    "machine",
    "env",
    "commit",
    "date",
    "status",
    "median",
    "q25",
    "q75",
    "iqr",
    "n_samples",
    "unit",
    "samples",
]


class ResultsError(ValueError):
    """Missing, unreadable or malformed results; the message names the path."""


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
    skip = {"machine.json", "benchmarks.json"}
    return sorted(p for p in path.rglob("*.json") if p.name not in skip)


def _benchmarks_json(path: Path) -> dict:
    for d in (path if path.is_dir() else path.parent, *path.resolve().parents):
        f = d / "benchmarks.json"
        if f.is_file():
            try:
                return json.loads(f.read_text())
            except (OSError, json.JSONDecodeError):
                return {}
    return {}


def write_env_sidecar(results_file: Path, info: dict) -> Path:
    """Write ``info`` beside an asv results file, atomically."""
    target = results_file.with_name(results_file.name + ENV_SUFFIX)
    atomic_write_text(target, json.dumps(info, indent=2, sort_keys=True))
    return target


def atomic_write_text(target: Path, text: str) -> None:
    """Write to a temporary name in the same folder, then rename over ``target``."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _sidecar(results_file: Path) -> dict:
    f = results_file.with_name(results_file.name + ENV_SUFFIX)
    try:
        return json.loads(f.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def _axis_names(name: str, bench_meta: dict, n: int) -> list[str]:
    declared = bench_meta.get(name, {}).get("param_names")
    if declared and len(declared) == n:
        return list(declared)
    cls = name.rsplit(".", 1)[0]
    known = {
        "bench_tensor_copy.TensorCopy": ["method", *cases.TENSOR_AXES],
        "bench_module_copy.ModuleCopy": ["method", *cases.MODULE_AXES],
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
        side = _sidecar(f)
        torch_version = res.params.get("torch") or side.get("torch_version") or "unknown"
        common = {
            "source": "asv",
            "torch_version": str(torch_version),
            "machine": res.params.get("machine", "unknown"),
            "env": res.env_name,
            "commit": res.commit_hash,
            "date": pd.to_datetime(res.date, unit="ms") if res.date else pd.NaT,
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
        numel = decoded.get("numel")
        dtype = decoded.get("dtype")
        q25, q75 = st.get("q_25"), st.get("q_75")
        out.append(
            {
                **common,
                "benchmark": key,
                "metric": metric,
                "method": decoded.get("method"),
                "numel": numel,
                "nbytes": cases.nbytes(numel, dtype) if numel and dtype in cases.DTYPES else None,
                "dtype": dtype,
                "requires_grad": decoded.get("requires_grad"),
                "layout": decoded.get("layout"),
                "device": decoded.get("device"),
                "threads": decoded.get("threads"),
                "model": decoded.get("model"),
                "status": status,
                "median": value if status == "ok" else None,
                "q25": q25,
                "q75": q75,
                "iqr": (q75 - q25) if q25 is not None and q75 is not None else None,
                "n_samples": len(sm) if sm else st.get("repeat"),
                "unit": unit,
                "samples": list(sm),
            }
        )
    return out


def _product(params: list[list[str]]) -> list[tuple[str, ...]]:
    import itertools

    return list(itertools.product(*params)) if params else [()]
