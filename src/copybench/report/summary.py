"""``copybench show``'s summary of a tidy table: a line per case family, read by a person.

A family is every measurement of one metric that shares every case axis but the size (for
tensors) or the model (for module copies): what a reader compares along a line.  Its
medians go left to right by size, each through :mod:`copybench.suite.units`; a case whose
samples spread by more than the unstable limit is marked ``~``.  The whole table is
``copybench show --table`` (or ``--csv``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from copybench.suite.cases import CASE_AXES, UNSTABLE
from copybench.suite.units import format_bytes, format_value

if TYPE_CHECKING:
    import pandas as pd

# The axis a family's line runs along, in this order of preference.
ALONG: tuple[str, ...] = ("numel", "model")
UNSTABLE_MARK = "~"


def _present(value: Any) -> bool:
    return value is not None and value == value  # NaN is not itself


def _label(row: Any, along: str | None) -> str:
    if along == "numel":
        return format_bytes(row["nbytes"]) if _present(row.get("nbytes")) else str(row["numel"])
    return str(row[along]) if along else ""


def _family_name(key: tuple, axes: list[str]) -> str:
    parts = []
    for axis, value in zip(axes, key, strict=True):
        if not _present(value) or value == "":
            continue
        if isinstance(value, bool) or axis == "requires_grad":
            parts.append(f"grad={'yes' if value in (True, 'True', 'true') else 'no'}")
        elif axis == "threads":
            parts.append(f"t{value}")
        else:
            parts.append(str(value))
    return " ".join(parts)


def summary_text(df: pd.DataFrame) -> str:
    """The summary: per machine and torch, one header line (how many measurements, how many
    ok, skipped, failed, unstable), then a line per family."""
    lines = []
    for (machine, torch), group in df.groupby(["machine", "torch_version"], sort=True):
        ok = group[group["status"] == "ok"]
        unstable = int(ok[UNSTABLE].sum()) if UNSTABLE in ok else 0
        lines.append(
            f"{machine}, torch {torch}: {len(group)} measurements ({len(ok)} ok, "
            f"{int((group['status'] == 'skipped').sum())} skipped, "
            f"{int((group['status'] == 'failed').sum())} failed; {unstable} unstable, "
            f"marked {UNSTABLE_MARK})"
        )
        rows = []
        for metric, by_metric in ok.groupby("metric", sort=True):
            along = next((a for a in ALONG if by_metric[a].notna().any()), None)
            axes = [
                a for a in CASE_AXES if a != along and a in by_metric and by_metric[a].notna().any()
            ]
            keyed = by_metric.assign(**{a: by_metric[a].astype(object) for a in axes})
            for key, fam in keyed.groupby(axes, dropna=False, sort=True) if axes else [((), keyed)]:
                key = key if isinstance(key, tuple) else (key,)
                if along == "numel":
                    fam = fam.sort_values("numel")
                cells = []
                for _, r in fam.iterrows():
                    mark = UNSTABLE_MARK if bool(r.get(UNSTABLE, False)) else ""
                    value = format_value(r["median"], r["unit"]) + mark
                    label = _label(r, along)
                    cells.append(f"{label} {value}" if label else value)
                rows.append((str(metric), _family_name(key, axes), "  ".join(cells)))
        if rows:
            wm = max(len(r[0]) for r in rows)
            wf = max(len(r[1]) for r in rows)
            lines += [f"  {m:<{wm}}  {f:<{wf}}  {c}".rstrip() for m, f, c in rows]
    return "\n".join(lines)


def table_text(df: pd.DataFrame) -> str:
    """The whole tidy table of the measurements that ran (``copybench show --table``): the
    metric and every case axis some row has, median and IQR in units, and the unstable
    flag; empty cells where an axis does not apply."""
    ok = df[df["status"] == "ok"]
    cols = [c for c in ["metric", *CASE_AXES] if ok[c].notna().any()]
    table = ok[cols].astype(object).where(ok[cols].notna(), "")
    for stat in ("median", "iqr"):
        table[stat] = [format_value(v, u) for v, u in zip(ok[stat], ok["unit"], strict=True)]
    table[UNSTABLE] = ["yes" if u else "" for u in ok[UNSTABLE]]
    return table.to_string(index=False)


def show(path: str, how: str = "summary") -> str:
    """What ``copybench show`` prints for the results at ``path``: the summary, or
    (``how``) the whole tidy table, the same as CSV (samples left out), or the README's
    headline table."""
    import pandas as pd

    from copybench.results.tidy import load_results

    df = load_results([path])
    if how == "headline":
        from copybench.report.headline import headline_table

        return headline_table(df) + "\n"
    if how == "csv":
        return df.drop(columns=["samples"]).to_csv(index=False)
    if how == "table":
        with pd.option_context("display.width", 200, "display.max_rows", 10_000):
            return table_text(df) + "\n"
    return summary_text(df) + "\n"
