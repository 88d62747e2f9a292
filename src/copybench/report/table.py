"""The tidy table, shaped for the report: latest measurement per case, derived columns,
the torch-version comparison and the paired comparisons (copybench.paired) that plots and
findings both read.  Statistics come from :mod:`copybench.stats`; nothing is computed twice.
"""

from __future__ import annotations

import math

import pandas as pd

from .. import stats
from ..methods import METHODS, module_method_names, tensor_method_names

# What identifies one case, across harnesses and runs.
CASE_KEYS = [
    "machine",
    "torch_version",
    "metric",
    "method",
    "numel",
    "dtype",
    "requires_grad",
    "layout",
    "device",
    "threads",
    "model",
    "host_memory",
]

# The headline pair: the tracked clone and the untracked one.
TRACKED, UNTRACKED = "clone_detach", "detach_clone"
# The bandwidth roof: copy into a preallocated, touched buffer.
ROOF = "copy_into"

CSV_COLUMNS = [
    "source",
    "machine",
    "torch_version",
    "commit",
    "date",
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
    "host_memory",
    "status",
    "median",
    "q25",
    "q75",
    "iqr",
    "n_samples",
    "unit",
    "unstable",
]


def latest(df: pd.DataFrame) -> pd.DataFrame:
    """Successful measurements only, the most recent one per case (re-runs supersede)."""
    ok = df[df["status"] == "ok"].copy()
    ok = ok.sort_values("date", na_position="first", kind="stable")
    keys = ok[CASE_KEYS].astype(str)
    return ok[~keys.duplicated(keep="last")].reset_index(drop=True)


def tensor_times(df: pd.DataFrame) -> pd.DataFrame:
    """Timings of tensor copies, with size in bytes and achieved bandwidth.

    Bandwidth counts the bytes read plus the bytes written: ``2 * nbytes / time``.
    """
    t = df[
        df["method"].isin(tensor_method_names())
        & df["metric"].str.startswith("time")
        & df["numel"].notna()
        & df["nbytes"].notna()
        & (df["unit"] == "seconds")
    ].copy()
    t["numel"] = t["numel"].astype("int64")
    t["nbytes"] = t["nbytes"].astype("int64")
    t["requires_grad"] = t["requires_grad"].astype(bool)
    t["bandwidth"] = 2 * t["nbytes"] / t["median"]
    return t


def copying_methods() -> list[str]:
    """Tensor methods that move bytes (bandwidth is meaningless for a view)."""
    return [n for n in tensor_method_names() if METHODS[n].semantics.new_storage]


def module_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Module copies with the model's parameter and tensor counts from the registry."""
    from ..cases import MODELS

    m = df[df["method"].isin(module_method_names()) & df["model"].isin(list(MODELS))].copy()
    m["n_params"] = m["model"].map(lambda n: MODELS[n].n_params)
    m["n_tensors"] = m["model"].map(lambda n: MODELS[n].n_tensors)
    m["target_params"] = m["model"].map(lambda n: MODELS[n].target_params)
    return m


def model_sweeps() -> tuple[int, int]:
    """(n_tensors held fixed while parameters grow, parameter count held fixed while the
    number of tensors grows): the most common value of each in the registry's grid."""
    from ..cases import MODELS

    tensors = pd.Series([s.n_tensors for s in MODELS.values()]).mode().iloc[0]
    params = pd.Series([s.target_params for s in MODELS.values()]).mode().iloc[0]
    return int(tensors), int(params)


def _samples(row: pd.Series) -> list[float]:
    s = row["samples"]
    return list(s) if isinstance(s, list) and len(s) >= 2 else []


def _summary(row: pd.Series) -> tuple[float, float, int] | None:
    m, q, n = row["median"], row["iqr"], row["n_samples"]
    if any(v is None or pd.isna(v) for v in (m, q, n)) or n < 2 or m <= 0:
        return None
    return float(m), float(q), int(n)


def _compare(base: pd.Series, head: pd.Series) -> dict:
    """head against base: difference and ratio with 95% CIs: bootstrapped from the samples
    where the results hold them, else from the medians' notches (IQR and count); NaN for
    a single sample (an ``asv --quick`` run)."""
    bs, hs = _samples(base), _samples(head)
    if bs and hs:
        diff, dlo, dhi = stats.difference_ci(bs, hs)
        ratio, rlo, rhi = stats.ratio_ci(bs, hs)
    elif _summary(base) and _summary(head):
        diff, dlo, dhi = stats.difference_ci_from_summaries(_summary(base), _summary(head))
        ratio, rlo, rhi = stats.ratio_ci_from_summaries(_summary(base), _summary(head))
    else:
        diff = head["median"] - base["median"]
        ratio = head["median"] / base["median"]
        dlo = dhi = rlo = rhi = math.nan
    return {
        "base": base["median"],
        "head": head["median"],
        "diff": diff,
        "diff_lo": dlo,
        "diff_hi": dhi,
        "ratio": ratio,
        "ratio_lo": rlo,
        "ratio_hi": rhi,
        # The CI of the ratio excludes 1: the difference is not noise.
        "significant": bool(not math.isnan(rlo) and (rlo > 1 or rhi < 1)),
    }


def _compare_columns() -> list[str]:
    return ["base", "head", "diff", "diff_lo", "diff_hi", "ratio", "ratio_lo", "ratio_hi"] + [
        "significant"
    ]


def torch_versions(df: pd.DataFrame) -> list[str]:
    """The torch versions in ``df``, oldest first ("unknown" last)."""
    from packaging.version import InvalidVersion, Version

    def key(v: str) -> tuple:
        try:
            return (0, Version(v.split("+")[0]), v)
        except InvalidVersion:
            return (1, Version("0"), v)

    return sorted(df["torch_version"].dropna().unique(), key=key)


def version_table(times: pd.DataFrame) -> pd.DataFrame:
    """Every torch version against the oldest, per machine, method and case."""
    versions = torch_versions(times)
    if len(versions) < 2:
        return pd.DataFrame(
            columns=["machine", "version", "baseline", "method", *_case_cols(), *_compare_columns()]
        )
    base_v = versions[0]
    keys = ["machine", "method", *_case_cols()]
    rows = []
    for key, g in times.groupby(keys, sort=True, dropna=False):
        by = {r["torch_version"]: r for _, r in g.iterrows()}
        if base_v not in by:
            continue
        for v in versions[1:]:
            if v in by:
                c = _compare(by[base_v], by[v])
                rows.append(
                    {"version": v, "baseline": base_v, **dict(zip(keys, key, strict=True)), **c}
                )
    return pd.DataFrame(rows)


def _case_cols() -> list[str]:
    return ["device", "dtype", "requires_grad", "layout", "numel", "nbytes"]


def skip_reason(row: pd.Series) -> str | None:
    """Why a case was skipped.  asv records a skip (``NotImplementedError`` in setup)
    without its message, so the reason is the rule of :mod:`copybench.cases` the case
    breaks, where one does."""
    if row["status"] != "skipped":
        return None
    # In the order copybench.cases checks them (make_tensor: the device, then the shape).
    # Every transfer involves a GPU.
    if str(row.get("device") or "").startswith("cuda") or str(row.get("metric", "")).startswith(
        "time_transfer"
    ):
        return "needs a CUDA GPU (or two), which the measuring machine did not have"
    if row.get("layout") == "transposed" and row.get("numel") == 1:
        return "a 1-element tensor cannot be non-contiguous"
    return "skipped by the benchmark's setup (asv records no message)"


def csv_table(df: pd.DataFrame) -> pd.DataFrame:
    """Every row of the tidy table (skips and failures too, a skip with its reason),
    samples left out."""
    out = df.reindex(columns=CSV_COLUMNS)
    out["skip_reason"] = [skip_reason(r) for _, r in df.iterrows()]
    return out.sort_values(
        ["machine", "torch_version", "metric", "method", "device", "dtype", "numel", "model"],
        kind="stable",
    )


def newest_torch(df: pd.DataFrame) -> pd.DataFrame:
    """Each machine's rows under the newest torch that machine was measured with: what the
    time, bandwidth and module plots and findings show (versions get a plot of their own)."""
    versions = torch_versions(df)
    keep = []
    for _, g in df.groupby("machine", sort=False):
        mine = set(g["torch_version"])
        keep.append(g[g["torch_version"] == [v for v in versions if v in mine][-1]])
    return pd.concat(keep) if keep else df


# --- paired comparisons (copybench.paired, stored beside the asv results) ---------------------

# A control's CI may miss zero by this many points before the page warns that this run's
# wall times are unreliable: the controls of a quiet machine sit within a point or two.
CONTROL_TOLERANCE_PTS = 2.0


def paired_latest(paired: pd.DataFrame) -> pd.DataFrame:
    """Each machine's comparisons from its newest torch and, within it, the last run
    stored; measured rows only (skipped ones carry a ``skipped`` reason instead)."""
    if paired.empty:
        return paired
    newest = newest_torch(paired)
    newest = newest.drop_duplicates(["machine", "torch_version", "id"], keep="last")
    if "skipped" in newest:
        newest = newest[newest["skipped"].isna()]
    return newest


def controls_off(paired: pd.DataFrame) -> pd.DataFrame:
    """The controls whose CI excludes zero by more than CONTROL_TOLERANCE_PTS."""
    c = paired[paired["control"].astype(bool)]
    off = (c["ci_low_pct"] > CONTROL_TOLERANCE_PTS) | (c["ci_high_pct"] < -CONTROL_TOLERANCE_PTS)
    return c[off]


def beside_control(paired: pd.DataFrame, pair: str) -> pd.DataFrame:
    """One row per measured case of ``pair``: its result, and its control's CI beside it
    (``control_low_pct``, ``control_high_pct``)."""
    p = paired[paired["pair"] == pair]
    keys = [k for k in ("machine", "numel", "dtype", "layout", "model") if k in p]
    main = p[~p["control"].astype(bool)]
    ctrl = p[p["control"].astype(bool)][
        [*keys, "overhead_pct", "ci_low_pct", "ci_high_pct"]
    ].rename(
        columns={
            "overhead_pct": "control_pct",
            "ci_low_pct": "control_low_pct",
            "ci_high_pct": "control_high_pct",
        }
    )
    return main.merge(ctrl, on=keys, how="left")
