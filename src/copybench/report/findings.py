"""Findings: sentences stated from the data, each with the figure that supports it.

Nothing here is written in advance: every number, size and method name in a sentence is
read from the tidy table (and the comparison tables built from it), so a report on another
machine or another torch says what *that* data says.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..cases import MODELS
from ..methods import METHODS
from ..stats import UNSTABLE_RELATIVE_IQR
from . import table
from .plots import fmt_bytes, fmt_seconds

# The size the headline sentence is stated at: 4 KiB, where per-call overhead dominates.
HEADLINE_BYTES = 4096


@dataclass(frozen=True)
class Finding:
    text: str
    plot: str | None = None  # slug of the plot that shows it


def _code(method: str) -> str:
    return METHODS[method].code.splitlines()[0]


def _where(machine: str, device: str, multi: bool) -> str:
    return f"{device} on {machine}" if multi else device


def findings(df: pd.DataFrame) -> list[Finding]:
    """Every finding the data supports, headline first."""
    cur = table.latest(df)
    times = table.newest_torch(table.tensor_times(cur))
    multi = cur["machine"].nunique() > 1
    out: list[Finding] = []
    out += _overhead(table.overhead_table(times), multi)
    out += _roof(times, multi)
    out += _fastest_copy(times, multi)
    out += _modules(table.newest_torch(table.module_rows(cur)), multi)
    out += _versions(table.version_table(table.tensor_times(cur)))
    out += _unstable(df)
    return out


def _overhead(over: pd.DataFrame, multi: bool) -> list[Finding]:
    out = []
    # The headline is about a source that requires grad (otherwise both do the same work),
    # contiguous, float32 where measured.
    o = over[(over["requires_grad"]) & (over["layout"] == "contiguous")]
    for (machine, device), g in o.groupby(["machine", "device"], sort=False):
        dtype = "float32" if (g["dtype"] == "float32").any() else g["dtype"].iloc[0]
        g = g[g["dtype"] == dtype].sort_values("nbytes")
        at = g.iloc[(g["nbytes"] - HEADLINE_BYTES).abs().argmin()]
        pct = (at["ratio"] - 1) * 100
        more = "more" if at["diff"] >= 0 else "less"
        ci = ""
        if pd.notna(at["ratio_lo"]):
            lo, hi = (at["ratio_lo"] - 1) * 100, (at["ratio_hi"] - 1) * 100
            ci = f" (95% CI {lo:+.0f}% to {hi:+.0f}%)"
        text = (
            f"At {fmt_bytes(at['nbytes'])} ({dtype}, {_where(machine, device, multi)}, source "
            f"requires grad), {_code(table.TRACKED)} costs {abs(pct):.0f}% "
            f"({fmt_seconds(abs(at['diff']))}) {more} than {_code(table.UNTRACKED)}{ci}: "
            f"{fmt_seconds(at['head'])} against {fmt_seconds(at['base'])}."
        )
        if g["ratio_lo"].notna().any():
            # The smallest size from which every larger size is not significant.
            sig = g["significant"].to_numpy()
            noisy_from = None
            for i in range(len(sig)):
                if not sig[i:].any():
                    noisy_from = g["nbytes"].iloc[i]
                    break
            if noisy_from is None:
                text += " The difference is significant at every measured size."
            elif noisy_from == g["nbytes"].iloc[0]:
                text += " At no measured size is the difference outside the noise."
            else:
                text += (
                    f" From {fmt_bytes(noisy_from)} up the difference is lost in noise "
                    "(the 95% CI of the ratio includes 1)."
                )
        out.append(Finding(text, "overhead"))
    return out


def _roof(times: pd.DataFrame, multi: bool) -> list[Finding]:
    out = []
    t = times[(times["layout"] == "contiguous") & (~times["requires_grad"])]
    for (machine, device, dtype), g in t.groupby(["machine", "device", "dtype"], sort=False):
        roof = g[g["method"] == table.ROOF]
        if roof.empty:
            continue
        peak = roof.loc[roof["bandwidth"].idxmax()]
        biggest = g["nbytes"].max()
        at = g[(g["nbytes"] == biggest) & g["method"].isin(table.copying_methods())]
        ref = at[at["method"] == table.ROOF]
        others = at[at["method"] != table.ROOF]
        text = (
            f"{_code(table.ROOF)} into a preallocated buffer peaks at "
            f"{peak['bandwidth'] / 1e9:.3g} GB/s ({fmt_bytes(peak['nbytes'])}, {dtype}, "
            f"{_where(machine, device, multi)})."
        )
        if not ref.empty and not others.empty:
            slow = others.loc[others["median"].idxmax()]
            r = ref.iloc[0]
            text += (
                f" At {fmt_bytes(biggest)}, {_code(slow['method'])} took "
                f"{fmt_seconds(slow['median'])} where {_code(table.ROOF)} took "
                f"{fmt_seconds(r['median'])} ({slow['median'] / r['median']:.1f}×)"
            )
            text += (
                ": a fresh allocation pays for its pages."
                if slow["median"] >= 1.5 * r["median"]
                else "."
            )
        out.append(Finding(text, "bandwidth"))
    return out


def _fastest_copy(times: pd.DataFrame, multi: bool) -> list[Finding]:
    """The fastest route to a new, detached tensor at the smallest and largest size."""
    wanted = [
        n
        for n in table.copying_methods()
        if n != table.ROOF
        and METHODS[n].semantics.new_storage
        and not METHODS[n].semantics.requires_grad
    ]
    out = []
    t = times[
        (times["layout"] == "contiguous") & times["requires_grad"] & times["method"].isin(wanted)
    ]
    for (machine, device, dtype), g in t.groupby(["machine", "device", "dtype"], sort=False):
        if g["method"].nunique() < 2 or dtype != "float32" and (t["dtype"] == "float32").any():
            continue
        parts = []
        for size in sorted({g["nbytes"].min(), g["nbytes"].max()}):
            s = g[g["nbytes"] == size].sort_values("median")
            best, worst = s.iloc[0], s.iloc[-1]
            parts.append(
                f"at {fmt_bytes(size)}, {_code(best['method'])} ({fmt_seconds(best['median'])}"
                f"; slowest {_code(worst['method'])}, {fmt_seconds(worst['median'])})"
            )
        out.append(
            Finding(
                f"For a new detached copy of a tensor that requires grad ({dtype}, "
                f"{_where(machine, device, multi)}) the fastest route is " + "; ".join(parts) + ".",
                "time",
            )
        )
    return out


def _modules(mods: pd.DataFrame, multi: bool) -> list[Finding]:
    out = []
    t = mods[mods["metric"] == "time_module_copy"]
    fixed_tensors, fixed_params = table.model_sweeps()
    for (machine, device), g in t.groupby(["machine", "device"], sort=False):
        where = _where(machine, device, multi)
        big = g[g["n_tensors"] == fixed_tensors]
        if big["method"].nunique() >= 2:
            biggest = big[big["n_params"] == big["n_params"].max()].sort_values("median")
            best, worst = biggest.iloc[0], biggest.iloc[-1]
            spec = MODELS[best["model"]]
            out.append(
                Finding(
                    f"Copying the {spec.n_params:,}-parameter model ({spec.n_tensors} tensors, "
                    f"{where}): {best['method']} is fastest at {fmt_seconds(best['median'])}; "
                    f"{worst['method']} takes {fmt_seconds(worst['median'])} "
                    f"({worst['median'] / best['median']:.1f}×).",
                    "modules",
                )
            )
        split = g[g["target_params"] == fixed_params]
        for method, s in split.groupby("method", sort=False):
            if s["n_tensors"].nunique() < 2:
                continue
            few = s.loc[s["n_tensors"].idxmin()]
            many = s.loc[s["n_tensors"].idxmax()]
            if method != "deepcopy_module":
                continue
            out.append(
                Finding(
                    f"Splitting {fixed_params:,} parameters into {many['n_tensors']} tensors "
                    f"instead of {few['n_tensors']} makes {_code(method)} "
                    f"{many['median'] / few['median']:.1f}× slower "
                    f"({fmt_seconds(few['median'])} to {fmt_seconds(many['median'])}, {where}): "
                    "its cost is per tensor, not per byte.",
                    "modules",
                )
            )
    return out


def _versions(vt: pd.DataFrame) -> list[Finding]:
    out = []
    if vt.empty:
        return out
    for (version, base), g in vt.groupby(["version", "baseline"], sort=False):
        med = g["ratio"].median()
        worst = g.loc[g["ratio"].idxmax()]
        best = g.loc[g["ratio"].idxmin()]
        out.append(
            Finding(
                f"torch {version} against torch {base}: the median time ratio over "
                f"{len(g)} tensor cases is {med:.2f}; the largest slowdown is "
                f"{worst['method']} at {fmt_bytes(worst['nbytes'])} ({worst['ratio']:.2f}×), "
                f"the largest speed-up {best['method']} at {fmt_bytes(best['nbytes'])} "
                f"({best['ratio']:.2f}×).",
                "versions",
            )
        )
    return out


def _unstable(df: pd.DataFrame) -> list[Finding]:
    ok = df[df["status"] == "ok"]
    n = int(ok["unstable"].sum()) if "unstable" in ok else 0
    if not len(ok):
        return []
    return [
        Finding(
            f"{n} of {len(ok)} measurements are unstable (interquartile range above "
            f"{UNSTABLE_RELATIVE_IQR:.0%} of the median); the table marks them, and their "
            "medians are not numbers to act on alone."
        )
    ]
