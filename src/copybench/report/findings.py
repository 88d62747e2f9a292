"""Findings: sentences stated from the data, each with the figure that supports it.

Nothing here is written in advance: every number, size and method name in a sentence is
read from the tidy table (and the comparison tables built from it), so a report on another
machine or another torch says what *that* data says.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from copybench.report import table
from copybench.suite.cases import DEEPCOPY, HEADLINE_BYTES, MODELS, PAIRS, ROOF, TRACKED, UNTRACKED
from copybench.suite.methods import METHODS
from copybench.suite.stats import UNSTABLE_RELATIVE_IQR
from copybench.suite.units import (
    format_bandwidth,
    format_bytes,
    format_percent,
    format_ratio,
    format_seconds,
)


@dataclass(frozen=True)
class Finding:
    text: str
    plot: str | None = None  # slug of the plot that shows it (table.plot_slug)
    section: str | None = None  # else the id of the page's section that shows it


def _code(method: str) -> str:
    return METHODS[method].code.splitlines()[0]


def _where(machine: str, device: str, multi: bool) -> str:
    return f"{device} on {machine}" if multi else device


def findings(df: pd.DataFrame, paired: pd.DataFrame | None = None) -> list[Finding]:
    """Every finding the data supports, headline first.  A-against-B findings come only
    from the paired comparisons (``paired``, see :func:`table.paired_latest`); without
    them the page says how to make them rather than rank independent medians."""
    cur = table.latest(df)
    times = table.newest_torch(table.tensor_times(cur))
    multi = cur["machine"].nunique() > 1
    out: list[Finding] = []
    if paired is not None and not paired.empty:
        out += paired_findings(paired, multi)
    else:
        out.append(
            Finding(
                "These results hold no paired comparisons (an unnarrowed `copybench run` "
                "measures them), so this page states no A-against-B difference: two "
                "independent medians cannot tell one.",
                section="decide",
            )
        )
    out += _roof(times, multi)
    out += _modules(table.newest_torch(table.module_rows(cur)), multi)
    out += _versions(table.version_table(table.tensor_times(cur)), multi)
    out += _unstable(df)
    return out


def ci_text(lo: float, hi: float) -> str:
    """A 95% CI given in percent: ``95% CI +1.2% to +3.4%``."""
    return f"95% CI {format_percent(lo, signed=True)} to {format_percent(hi, signed=True)}"


def is_resolved(row: pd.Series) -> bool:
    """A difference this run can state: the comparison's CI excludes zero by more than a
    quiet machine's controls stray from it (table.CONTROL_TOLERANCE_PTS); a CI of a
    fraction of a point on one side of zero, from a handful of processes, is not a
    finding."""
    tol = table.CONTROL_TOLERANCE_PTS
    return bool(row["ci_low_pct"] > tol or row["ci_high_pct"] < -tol)


def cost_text(row: pd.Series) -> str:
    """'costs N% (D) more', or 'indistinguishable here' (:func:`is_resolved`), with
    the CI."""
    if not is_resolved(row):
        return f"indistinguishable here ({ci_text(row['ci_low_pct'], row['ci_high_pct'])})"
    more = "more" if row["overhead_pct"] > 0 else "less"
    return (
        f"costs {format_percent(abs(row['overhead_pct']))} "
        f"({format_seconds(abs(row['overhead_ns']) * 1e-9)}) "
        f"{more} ({ci_text(row['ci_low_pct'], row['ci_high_pct'])})"
    )


def paired_findings(paired: pd.DataFrame, multi: bool = False) -> list[Finding]:
    """The A-against-B findings, each from a paired comparison and its control."""
    out = []
    for machine, pm in paired.groupby("machine", sort=False):
        where = f" on {machine}" if multi else ""
        # The plots of these results (plots.all_plots): the paired study is the CPU's.
        mine = machine if multi else ""
        t = table.beside_control(pm, "tracked_clone")
        t = t[(t["dtype"] == "float32") & (t["layout"] == "contiguous")].sort_values("nbytes")
        if not t.empty:
            at = t.iloc[(t["nbytes"] - HEADLINE_BYTES).abs().argmin()]
            n = int(at["workers"])
            text = (
                f"At {format_bytes(at['nbytes'])} (float32, contiguous, source requires grad"
                f"{where}), {_code(TRACKED)} {cost_text(at)} than "
                f"{_code(UNTRACKED)}: paired, interleaved, in {n} fresh processes; its "
                f"control (no grad) {ci_text(at['control_low_pct'], at['control_high_pct'])}."
            )
            resolved = [is_resolved(r) for _, r in t.iterrows()]
            sizes = [format_bytes(b) for b, r in zip(t["nbytes"], resolved, strict=True) if r]
            if all(resolved):
                text += " The difference is resolved at every measured size."
            elif not any(resolved):
                text += " At no measured size is it resolved."
            else:
                text += f" Resolved at {', '.join(sizes)}; elsewhere indistinguishable here."
            out.append(Finding(text, table.plot_slug("overhead", mine, "cpu")))
        c = table.beside_control(pm, "clone_vs_copy_into").sort_values("nbytes")
        if not c.empty:
            roof, clone = PAIRS["clone_vs_copy_into"]
            parts = [f"at {format_bytes(r['nbytes'])} {cost_text(r)}" for _, r in c.iterrows()]
            out.append(
                Finding(
                    f"{_code(clone)} against {_code(roof)} into a buffer that already "
                    f"exists (float32{where}): " + "; ".join(parts) + ".",
                    table.plot_slug("time", mine, "cpu", "float32"),
                )
            )
        for pair in ("deepcopy_vs_snapshot", "deepcopy_vs_load_state_dict"):
            other, deepcopy = PAIRS[pair]
            m = table.beside_control(pm, pair)
            if m.empty:
                continue
            m = m.assign(n_params=[MODELS[x].n_params for x in m["model"]]).sort_values(
                ["n_params", "model"]
            )
            parts = [f"{r['model']} {cost_text(r)}" for _, r in m.iterrows()]
            out.append(
                Finding(
                    f"{_code(deepcopy)} against {_code(other)}{where}: " + "; ".join(parts) + ".",
                    table.plot_slug("modules", mine, "cpu"),
                )
            )
    return out


def _roof(times: pd.DataFrame, multi: bool) -> list[Finding]:
    out = []
    t = times[(times["layout"] == "contiguous") & (~times["requires_grad"])]
    for (machine, device, dtype), g in t.groupby(["machine", "device", "dtype"], sort=False):
        roof = g[g["method"] == ROOF]
        if roof.empty:
            continue
        peak = roof.loc[roof["bandwidth"].idxmax()]
        biggest = g["nbytes"].max()
        at = g[(g["nbytes"] == biggest) & g["method"].isin(table.copying_methods())]
        ref = at[at["method"] == ROOF]
        others = at[at["method"] != ROOF]
        text = (
            f"{_code(ROOF)} into a preallocated buffer peaks at "
            f"{format_bandwidth(peak['bandwidth'])} ({format_bytes(peak['nbytes'])}, {dtype}, "
            f"{_where(machine, device, multi)}; its time {_spread(peak)})."
        )
        if not ref.empty and not others.empty:
            slow = others.loc[others["median"].idxmax()]
            r = ref.iloc[0]
            text += (
                f" At {format_bytes(biggest)}, {_code(slow['method'])} took {_spread(slow)} "
                f"where {_code(ROOF)} took {_spread(r)} "
                f"({_times(slow['median'] / r['median'])} the median)"
            )
            # Stated only where the quartiles keep the two apart by the 1.5× it claims.
            apart = slow["q25"] >= 1.5 * r["q75"] if not pd.isna(slow["q25"]) else False
            text += ": a fresh allocation pays for its pages." if apart else "."
        slug = table.plot_slug("bandwidth", machine if multi else "", device, dtype)
        out.append(Finding(text, slug))
    return out


def _modules(mods: pd.DataFrame, multi: bool) -> list[Finding]:
    out = []
    t = mods[mods["metric"] == "time_module_copy"]
    fixed_tensors, fixed_params = table.model_sweeps()
    for (machine, device), g in t.groupby(["machine", "device"], sort=False):
        where = _where(machine, device, multi)
        slug = table.plot_slug("modules", machine if multi else "", device)
        big = g[g["n_tensors"] == fixed_tensors]
        if big["method"].nunique() >= 2:
            biggest = big[big["n_params"] == big["n_params"].max()].sort_values("median")
            best, worst = biggest.iloc[0], biggest.iloc[-1]
            spec = MODELS[best["model"]]
            # Independent medians (separate asv processes): stated with their spread, and
            # set against each other only where the interquartile ranges do not overlap.
            apart = pd.notna(best["q75"]) and pd.notna(worst["q25"]) and best["q75"] < worst["q25"]
            verdict = (
                f"{_times(worst['median'] / best['median'])} the time, and their interquartile "
                "ranges do not overlap"
                if apart
                else "within each other's spread: no ranking"
            )
            out.append(
                Finding(
                    f"Copying the {spec.n_params:,}-parameter model ({spec.n_tensors} tensors, "
                    f"{where}), medians of separate runs (not paired): {best['method']} "
                    f"{_spread(best)}, {worst['method']} {_spread(worst)}: {verdict}.",
                    slug,
                )
            )
        split = g[g["target_params"] == fixed_params]
        for method, s in split.groupby("method", sort=False):
            if s["n_tensors"].nunique() < 2:
                continue
            few = s.loc[s["n_tensors"].idxmin()]
            many = s.loc[s["n_tensors"].idxmax()]
            if method != DEEPCOPY:
                continue
            out.append(
                Finding(
                    f"Splitting {fixed_params:,} parameters into {many['n_tensors']} tensors "
                    f"instead of {few['n_tensors']} makes {_code(method)} "
                    f"{_times(many['median'] / few['median'])} slower "
                    f"({format_seconds(few['median'])} to {format_seconds(many['median'])}, "
                    f"{where}): "
                    "its cost is per tensor, not per byte.",
                    slug,
                )
            )
    return out


def _times(ratio: float) -> str:
    """How many times another: ``2.5×``."""
    return format_ratio(ratio, digits=1, unit="×")


def _ratio(ratio: float, unit: str = "") -> str:
    """A time ratio of two torch versions: ``1.02``, ``1.02×``."""
    return format_ratio(ratio, digits=2, unit=unit)


def _spread(row: pd.Series) -> str:
    if pd.isna(row["q25"]) or pd.isna(row["q75"]):
        return f"{format_seconds(row['median'])} (no spread recorded)"
    quartiles = f"{format_seconds(row['q25'])} to {format_seconds(row['q75'])}"
    return f"{format_seconds(row['median'])} (IQR {quartiles})"


def _versions(vt: pd.DataFrame, multi: bool = False) -> list[Finding]:
    """Torch versions against the oldest: independent medians from runs one after the other,
    so a spread and an extreme, each with the band its IQRs allow; never a ranking or a
    verdict (``copybench gate`` times two builds side by side for that).  Each links to the
    plot of its largest ratio's machine and device."""
    out = []
    if vt.empty:
        return out
    for (version, base), g in vt.groupby(["version", "baseline"], sort=False):
        q1, med, q3 = g["ratio"].quantile([0.25, 0.5, 0.75])
        worst = g.loc[g["ratio"].idxmax()]
        out.append(
            Finding(
                f"torch {version} against torch {base}, from runs one after the other (not "
                f"interleaved: no verdict; copybench gate gives one): the median time ratio "
                f"over {len(g)} tensor cases is {_ratio(med)} (half the cases between "
                f"{_ratio(q1)} and {_ratio(q3)}); the largest is {worst['method']} at "
                f"{format_bytes(worst['nbytes'])}, {_ratio(worst['ratio'], '×')} "
                f"({_band(worst['ratio_lo'], worst['ratio_hi'])}).",
                table.plot_slug("versions", worst["machine"] if multi else "", worst["device"]),
            )
        )
    return out


def _band(lo: float, hi: float) -> str:
    if pd.isna(lo) or pd.isna(hi):
        return "no spread recorded"
    return f"{_ratio(lo, '×')} to {_ratio(hi, '×')} between the two runs' quartiles"


def _unstable(df: pd.DataFrame) -> list[Finding]:
    ok = df[df["status"] == "ok"]
    n = int(ok["unstable"].sum()) if "unstable" in ok else 0
    if not len(ok):
        return []
    return [
        Finding(
            f"{n} of {len(ok)} measurements are unstable (interquartile range above "
            f"{format_percent(UNSTABLE_RELATIVE_IQR * 100, digits=0)} of the median); the table "
            "marks them, and their medians are not numbers to act on alone.",
            section="table",
        )
    ]


# --- "Which copy should I use?" ---------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    """One situation of the decision table: the code the measurements recommend, what the
    alternative costs against it (with CIs), and what the recommended copy does."""

    situation: str
    code: str
    cost: str
    caveat: str
    when: str = ""  # where each side is cheaper, and what decides it (both sides win somewhere)


# The situations users meet, each answered by one paired comparison (copybench.measure.paired).
SITUATIONS: tuple[tuple[str, str, str], ...] = (
    ("A detached copy of a tensor that requires grad", "tracked_clone", ""),
    ("A snapshot of a model's weights", "deepcopy_vs_snapshot", ""),
    (
        "A second model with the same weights",
        "deepcopy_vs_load_state_dict",
        "load_state_dict needs a model of the same architecture built beforehand.",
    ),
    ("A copy into memory you already have", "clone_vs_copy_into", ""),
)


def _caveat(method: str, observations: list[dict] | None) -> str:
    """What ``method`` does, as observed when the results were measured; where they did not
    record it, as the registry declares it, and the sentence says so."""
    observed = next((o["observed"] for o in observations or [] if o["method"] == method), None)
    s = observed or METHODS[method].semantics.as_dict()
    parts = [
        "new storage" if s["new_storage"] else "shares storage with the source",
        "requires grad" if s["requires_grad"] else "does not require grad",
    ]
    if s["grad_flows"]:
        parts.append("gradients flow back to the source")
    how = "observed" if observed else "declared; these results did not record what it did"
    return f"{_code(method)}: " + ", ".join(parts) + f" ({how}). {METHODS[method].doc}"


def _observations(semantics: list[dict], machine: str, torch_version: str) -> list[dict] | None:
    """What the results recorded for ``machine`` under ``torch_version``
    (:func:`copybench.report.build.semantics_runs`), or None."""
    return next(
        (
            r["observations"]
            for r in semantics
            if r["machine"] == machine and r["torch_version"] == torch_version
        ),
        None,
    )


def decisions(paired: pd.DataFrame, semantics: list[dict]) -> list[Decision]:
    """The decision table, from the paired comparisons: for each situation, the side that
    costs less wherever the CIs resolve a difference (both, where they never do)."""

    out = []
    if paired is None or paired.empty:
        return out
    multi = paired["machine"].nunique() > 1
    for machine, pm in paired.groupby("machine", sort=False):
        for situation, pair, note in SITUATIONS:
            rows = table.beside_control(pm, pair)
            if rows.empty:
                continue
            base, head = PAIRS[pair]
            if rows["kind"].iloc[0] == "tensor":
                rows = rows[(rows["dtype"] == "float32") & (rows["layout"] == "contiguous")]
                rows = rows.sort_values("nbytes")
                picks = {rows.iloc[(rows["nbytes"] - HEADLINE_BYTES).abs().argmin()].name}
                picks.add(rows.index[-1])
                label = lambda r: f"at {format_bytes(r['nbytes'])}"  # noqa: E731
            else:
                rows = rows.assign(
                    n_params=[MODELS[m].n_params for m in rows["model"]],
                    n_tensors=[MODELS[m].n_tensors for m in rows["model"]],
                )
                rows = rows.sort_values(["n_params", "model"])
                picks = {rows.index[0], rows.index[-1]}
                label = lambda r: f"model {r['model']}"  # noqa: E731
            resolved = rows[[is_resolved(r) for _, r in rows.iterrows()]]
            when = ""
            if resolved.empty:
                code, against, cheaper = f"either {_code(base)} or {_code(head)}", head, None
            elif (resolved["overhead_pct"] > 0).all():
                code, against, cheaper = _code(base), head, base
            elif (resolved["overhead_pct"] < 0).all():
                code, against, cheaper = _code(head), head, head
            else:
                code, against, cheaper = f"{_code(base)} or {_code(head)}", head, None
                when = _what_decides(rows, resolved, base, head)
                # The cost column shows each side where it is cheaper.
                for side in (resolved["overhead_pct"] > 0, resolved["overhead_pct"] < 0):
                    picks.add(resolved[side]["overhead_pct"].abs().idxmax())
            cost = f"{_code(against)} against {_code(base)}: " + "; ".join(
                f"{label(r)} {cost_text(r)}"
                for _, r in rows.loc[sorted(picks, key=list(rows.index).index)].iterrows()
            )
            observed = _observations(semantics, machine, str(pm["torch_version"].iloc[0]))
            caveat = " ".join(
                _caveat(m, observed) for m in ([cheaper] if cheaper else [base, head])
            )
            where = f" ({machine})" if multi else ""
            out.append(Decision(situation + where, code, cost, f"{caveat} {note}".strip(), when))
    return out


# What may decide between two copies, per kind of case: the column of the comparison's
# rows, its name, how a value reads, and the unit after a value or a range of them.
_DECIDERS: dict[str, tuple[tuple[str, str, object, str], ...]] = {
    "tensor": (("nbytes", "size", format_bytes, ""),),
    "module": (
        ("n_tensors", "tensor count", lambda n: f"{int(n):,}", " tensors"),
        ("n_params", "parameter count", lambda n: f"{int(n):,}", " parameters"),
    ),
}


def _what_decides(rows: pd.DataFrame, resolved: pd.DataFrame, base: str, head: str) -> str:
    """Where each of two copies is the cheaper one, where the resolved differences go both
    ways, and what decides it: the case column (size; tensor count or parameter count)
    along which one side's cases all lie beyond the other's, read from these results.
    Where no column keeps them apart, or more than one does, it says so rather than
    name one."""
    kind = rows["kind"].iloc[0]
    head_wins = resolved[resolved["overhead_pct"] < 0]
    base_wins = resolved[resolved["overhead_pct"] > 0]

    def keeps_apart(col: str) -> bool:
        h, b = head_wins[col], base_wins[col]
        return h.max() < b.min() or b.max() < h.min()

    apart = [d for d in _DECIDERS[kind] if keeps_apart(d[0])]
    col, _, fmt, unit = apart[0] if apart else _DECIDERS[kind][0]
    if len(apart) == 1:
        decides = f"by {apart[0][1]}"
    elif not apart:
        decides = "by the case (no one case column keeps the two sides apart)"
    else:
        decides = f"by {' or '.join(d[1] for d in apart)} (these cases do not tell which)"

    def at(side: pd.DataFrame) -> str:
        values = sorted(set(side[col]))
        if len(values) == 1:
            text = fmt(values[0]) + unit
        elif kind == "tensor":
            text = ", ".join(fmt(v) for v in values)
        else:
            text = f"{fmt(values[0])} to {fmt(values[-1])}{unit}"
        if kind == "module":
            models = list(side.sort_values([col, "model"])["model"])
            text += f" ({', '.join(models)})"
        return text

    unresolved = len(rows) - len(resolved)
    return (
        f"{decides}: {_code(head)} is cheaper at {at(head_wins)}, {_code(base)} at "
        f"{at(base_wins)}" + ("; elsewhere indistinguishable here." if unresolved else ".")
    )
