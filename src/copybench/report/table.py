"""The tidy table, shaped for the report: latest measurement per case, derived columns,
the torch-version comparison and the paired comparisons (copybench.measure.paired) that plots and
findings both read.  Statistics come from :mod:`copybench.suite.stats`; nothing is computed twice.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from copybench.suite.cases import (
    CASE_COLUMNS,
    CASE_KEY,
    HEADLINE_BYTES,
    MEASUREMENT_COLUMNS,
    PAIRS,
    RUN_COLUMNS,
    STATISTIC_COLUMNS,
    TENSOR_AXES,
    UNSTABLE,
)
from copybench.suite.methods import METHODS, module_method_names, tensor_method_names
from copybench.suite.units import format_bytes

# What identifies one case, across harnesses and runs (a list: pandas selects with it).
CASE_KEYS = list(CASE_KEY)
# The CSV beside the page: the tidy table but the environment's name, the raw samples,
# asv's name for the case and the hardware (the page's Environment section lists it), with
# the unstable flag.
CSV_COLUMNS = [
    *(c for c in RUN_COLUMNS if c != "env"),
    *MEASUREMENT_COLUMNS,
    *CASE_COLUMNS,
    *STATISTIC_COLUMNS,
    UNSTABLE,
]
# A tensor case's columns, in the tidy table's order (its axes, nbytes after numel), but the
# threads: a count or "all", which a comparison across torch versions does not sort by.
TENSOR_CASE = [c for c in CASE_COLUMNS if c == "nbytes" or (c in TENSOR_AXES and c != "threads")]


def plot_slug(*parts: object) -> str:
    """A plot's slug, from its kind and what it is of (machine where the page holds several,
    device, dtype; empty parts left out): the id of its figure on the page (``plot-`` and
    the slug), which the plots are published under and the findings link to."""
    s = "-".join(str(p) for p in parts if str(p))
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in s)


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
    from copybench.suite.cases import MODELS

    m = df[df["method"].isin(module_method_names()) & df["model"].isin(list(MODELS))].copy()
    m["n_params"] = m["model"].map(lambda n: MODELS[n].n_params)
    m["n_tensors"] = m["model"].map(lambda n: MODELS[n].n_tensors)
    m["target_params"] = m["model"].map(lambda n: MODELS[n].target_params)
    return m


def model_sweeps() -> tuple[int, int]:
    """(n_tensors held fixed while parameters grow, parameter count held fixed while the
    number of tensors grows): the most common value of each in the registry's grid."""
    from copybench.suite.cases import MODELS

    tensors = pd.Series([s.n_tensors for s in MODELS.values()]).mode().iloc[0]
    params = pd.Series([s.target_params for s in MODELS.values()]).mode().iloc[0]
    return int(tensors), int(params)


def _compare(base: pd.Series, head: pd.Series) -> dict:
    """head against base, two independent medians (separate runs, or environments timed one
    after the other): the ratio and difference of the medians, with the band the two IQRs
    allow (from head's lower quartile against base's upper to the reverse).  Not a CI: the
    samples of one run come from one or two processes and are not independent, so no
    bootstrap over them says what another run would give; the band only shows how far
    the two runs' own spreads reach.  NaN bounds where a side has no spread recorded."""
    bm, hm = float(base["median"]), float(head["median"])
    b25, b75 = _quartile(base, "q25"), _quartile(base, "q75")
    h25, h75 = _quartile(head, "q25"), _quartile(head, "q75")
    return {
        "base": bm,
        "head": hm,
        "diff": hm - bm,
        "diff_lo": h25 - b75,
        "diff_hi": h75 - b25,
        "ratio": hm / bm,
        "ratio_lo": h25 / b75 if b75 > 0 else math.nan,
        "ratio_hi": h75 / b25 if b25 > 0 else math.nan,
    }


def _quartile(row: pd.Series, q: str) -> float:
    v = row.get(q)
    return math.nan if v is None or pd.isna(v) else float(v)


def _compare_columns() -> list[str]:
    return ["base", "head", "diff", "diff_lo", "diff_hi", "ratio", "ratio_lo", "ratio_hi"]


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
            columns=["machine", "version", "baseline", "method", *TENSOR_CASE, *_compare_columns()]
        )
    base_v = versions[0]
    keys = ["machine", "method", *TENSOR_CASE]
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


def skip_reason(row: pd.Series) -> str | None:
    """Why a case was skipped.  asv records a skip (``NotImplementedError`` in setup)
    without its message, so the reason is the rule of :mod:`copybench.suite.cases` the case
    breaks, where one does."""
    if row["status"] != "skipped":
        return None
    # In the order copybench.suite.cases checks them (make_tensor: the device, then the shape).
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
    # In the case key's order; threads mix counts with "all", which do not sort together.
    return out.sort_values([c for c in CASE_KEYS if c != "threads"], kind="stable")


def newest_torch(df: pd.DataFrame) -> pd.DataFrame:
    """Each machine's rows under the newest torch that machine was measured with: what the
    time, bandwidth and module plots and findings show (versions get a plot of their own)."""
    versions = torch_versions(df)
    keep = []
    for _, g in df.groupby("machine", sort=False):
        mine = set(g["torch_version"])
        keep.append(g[g["torch_version"] == [v for v in versions if v in mine][-1]])
    return pd.concat(keep) if keep else df


# --- paired comparisons (copybench.measure.study, stored beside the asv results) ---------------

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
    # The case a comparison and its control share: every case column they carry but
    # requires_grad, which the tracked clone's control turns off.
    keys = [k for k in ("machine", *CASE_COLUMNS) if k in p and k != "requires_grad"]
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


# --- headline cases: what the trends follow and the machines are set side by side on --------


@dataclass(frozen=True)
class Family:
    """Headline cases drawn in one trend plot and listed together across machines: the
    methods of the report's paired comparisons (:data:`copybench.suite.cases.PAIRS`) of one kind,
    on one case, on the CPU.  ``pair`` is the paired comparison a trend draws below."""

    slug: str
    title: str
    metric: str
    methods: tuple[str, ...]
    nbytes: int | None = None
    model: str | None = None
    pair: str | None = None

    def case(self) -> str:
        """The case, in words (a table row's second half)."""
        if self.model is not None:
            return f"model {self.model}"
        return f"{format_bytes(self.nbytes)} float32, requires grad"

    def select(self, df: pd.DataFrame) -> pd.DataFrame:
        """The successful rows of ``df`` (a tidy table) that are this family's cases."""
        d = df[
            (df["status"] == "ok")
            & (df["metric"] == self.metric)
            & (df["device"] == "cpu")
            & df["method"].isin(self.methods)
        ]
        if self.model is not None:
            return d[d["model"] == self.model]
        return d[
            (d["nbytes"] == self.nbytes)
            & (d["dtype"] == "float32")
            & (d["layout"] == "contiguous")
            & d["requires_grad"].eq(True)
        ]


def headline_families() -> list[Family]:
    """The headline cases, derived from what the report already declares: the tensor and
    module methods of the paired comparisons; tensors at HEADLINE_BYTES and at the grid's
    largest size, float32, contiguous, the source requiring grad (the case the tracked clone
    is about, the same source for every line); the reference model at the centre of both
    module sweeps (:func:`model_sweeps`)."""
    from copybench.suite.cases import MODELS, SIZES, nbytes

    paired = {m for pair in PAIRS.values() for m in pair}
    tensor = tuple(m for m in tensor_method_names() if m in paired)
    module = tuple(m for m in module_method_names() if m in paired)
    out = []
    for size in dict.fromkeys((HEADLINE_BYTES, nbytes(SIZES[-1], "float32"))):
        b = format_bytes(size)
        out.append(
            Family(
                f"tensor-{b.replace(' ', '')}",
                f"Tensor copies at {b} (float32, contiguous, source requires grad, CPU)",
                "time_tensor_copy",
                tensor,
                nbytes=size,
                pair="tracked_clone",
            )
        )
    spec = next(s for s in MODELS.values() if (s.n_tensors, s.target_params) == model_sweeps())
    out.append(
        Family(
            f"modules-{spec.name}",
            f"Copying model {spec.name} ({spec.n_params:,} parameters in {spec.n_tensors} "
            "tensors, CPU)",
            "time_module_copy",
            module,
            model=spec.name,
            pair="deepcopy_vs_snapshot",
        )
    )
    return out


def headline_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``df`` that are headline cases, with their ``family`` (its slug)."""
    parts = [f.select(df).assign(family=f.slug) for f in headline_families()]
    parts = [p for p in parts if not p.empty]
    return pd.concat(parts, ignore_index=True) if parts else df.iloc[:0].assign(family=None)


def headline_overhead(paired: pd.DataFrame) -> pd.DataFrame:
    """Each family's paired comparison (not its control) in ``paired``
    (:func:`copybench.results.tidy.load_paired` rows), with the family's slug."""
    parts = []
    if paired.empty:
        return pd.DataFrame(columns=["family", "overhead_pct", "ci_low_pct", "ci_high_pct"])
    measured = paired[paired["skipped"].isna()] if "skipped" in paired else paired
    for f in headline_families():
        d = measured[(measured["pair"] == f.pair) & ~measured["control"].astype(bool)]
        if f.model is not None:
            d = d[d["model"] == f.model]
        else:
            d = d[
                (d["nbytes"] == f.nbytes)
                & (d["dtype"] == "float32")
                & (d["layout"] == "contiguous")
            ]
        parts.append(d.assign(family=f.slug))
    parts = [p for p in parts if not p.empty]
    if not parts:
        return pd.DataFrame(columns=["family", "overhead_pct", "ci_low_pct", "ci_high_pct"])
    return pd.concat(parts, ignore_index=True)


# --- the nightly's archive: one asv results file per night -----------------------------------


@dataclass(frozen=True)
class Nights:
    """The archived nights (:mod:`copybench.jobs.nightly`), headline cases only.

    ``nights``: one row per night, oldest first (machine, night: its file name, date,
    torch_version, torch_git); ``times``: the headline rows of every night
    (:func:`headline_rows`) with the night's columns; ``overhead``: each night's paired
    comparisons of the families (:func:`headline_overhead`), where the night measured them.
    """

    folder: Path
    nights: pd.DataFrame
    times: pd.DataFrame
    overhead: pd.DataFrame

    def trend_machines(self) -> list[str]:
        """The machines with two nights or more: the ones a trend can be drawn for."""
        n = self.nights["machine"].value_counts()
        return [m for m in dict.fromkeys(self.nights["machine"]) if n[m] >= 2]


NIGHT_COLUMNS = ["machine", "night", "date", "torch_version", "torch_git"]


def load_nights(archive: str | os.PathLike) -> Nights:
    """Every night archived in ``archive`` (``copybench.results.tidy.nights``), each with its
    sidecar (date, torch) and, where the night measured it, its paired study.

    A night without a readable sidecar, or whose results or paired file cannot be read,
    raises ResultsError naming the file: the archive is the nightly's, and a hole in it
    would draw a trend that is not there.
    """
    from copybench.formats import ResultsError, nights, read_night
    from copybench.results.tidy import load_asv, load_paired

    archive = Path(archive)
    if not archive.is_dir():
        raise ResultsError(f"{archive}: no such nightly archive (a folder)")
    rows, times, over = [], [], []
    for f in nights(archive):
        env = read_night(f)
        df = load_asv(f)
        night = {
            "machine": str(env.get("machine") or df["machine"].iloc[0]),
            "night": f.name,
            "date": _night_date(env.get("night"), df["date"]),
            "torch_version": str(env.get("torch_version") or df["torch_version"].iloc[0]),
            "torch_git": env.get("torch_git"),
        }
        rows.append(night)
        t = headline_rows(df)
        if not t.empty:
            t = t.drop(columns=["samples", *NIGHT_COLUMNS], errors="ignore")
            times.append(t.assign(**night))
        o = headline_overhead(load_paired([f]))
        if not o.empty:
            over.append(o.drop(columns=NIGHT_COLUMNS, errors="ignore").assign(**night))
    return Nights(
        archive,
        pd.DataFrame(rows, columns=NIGHT_COLUMNS),
        pd.concat(times, ignore_index=True) if times else pd.DataFrame(columns=NIGHT_COLUMNS),
        pd.concat(over, ignore_index=True) if over else pd.DataFrame(columns=NIGHT_COLUMNS),
    )


def _night_date(stamp: object, dates: pd.Series) -> str:
    """YYYY-MM-DD of a night: its stamp (``20250102T030405Z``), else asv's date."""
    from datetime import datetime

    try:
        return datetime.strptime(str(stamp), "%Y%m%dT%H%M%SZ").strftime("%Y-%m-%d")
    except ValueError:
        pass
    d = pd.to_datetime(dates, errors="coerce").dropna()
    return d.max().strftime("%Y-%m-%d") if len(d) else "unknown date"


# --- across machines --------------------------------------------------------------------------


def machine_order(machines: list[str], reference: str | None = None) -> list[str]:
    """Machines in sorted name order, the reference (default: the first) first."""
    order = sorted(set(machines))
    if reference is not None:
        order.remove(reference)
        order.insert(0, reference)
    return order


def across_machines(df: pd.DataFrame, reference: str | None = None) -> pd.DataFrame:
    """The headline cases on every machine (each under its newest torch): one row per
    family, method and machine, its median and the ratio to the reference machine's
    median (NaN where either lacks the case).  Medians of different machines measured at
    different times: the ratio describes the hardware (and torch) difference, it tests
    nothing."""
    cur = newest_torch(latest(df))
    order = machine_order(list(cur["machine"]), reference)
    h = headline_rows(cur)
    cols = ["family", "case", "method", "machine", "torch_version", "median", "q25", "q75"]
    if h.empty:
        return pd.DataFrame(columns=[*cols, "ratio"])
    r0 = h[h["machine"] == order[0]]
    ref = dict(zip(zip(r0["family"], r0["method"], strict=True), r0["median"], strict=True))
    rows = []
    for f in headline_families():
        for method in f.methods:
            for machine in order:
                r = h[(h["family"] == f.slug) & (h["method"] == method) & (h["machine"] == machine)]
                if r.empty:
                    continue
                r = r.iloc[-1]
                base = ref.get((f.slug, method), math.nan)
                rows.append(
                    {
                        **{c: r[c] for c in cols if c != "case"},
                        "case": f.case(),
                        "ratio": r["median"] / base if base and not pd.isna(base) else math.nan,
                    }
                )
    return pd.DataFrame(rows, columns=[*cols, "ratio"])
