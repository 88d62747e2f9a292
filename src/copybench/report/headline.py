"""The README's headline table (``copybench show --headline``), from the tidy table."""

from __future__ import annotations

import pandas as pd

from copybench.formats import ResultsError
from copybench.suite import cases
from copybench.suite.methods import METHODS
from copybench.suite.units import format_bytes, format_seconds


def headline_table(df: pd.DataFrame) -> str:
    """The README's headline figures as a markdown table, computed from ``df``.

    The tracked clone against the untracked one (cases.TRACKED, cases.UNTRACKED) of a
    float32 contiguous tensor that requires grad, at cases.HEADLINE_SIZES; a model's
    ``copy.deepcopy`` against its state_dict snapshot (cases.DEEPCOPY, cases.SNAPSHOT) for
    the smallest and largest reference model of 8 tensors.  asv rows on the CPU only.
    """
    ok = df[(df.status == "ok") & (df.source == "asv")]
    lines = ["| case | A | B | A (median) | B (median) | A / B |", "|---|---|---|---|---|---|"]
    t = ok[
        (ok.metric == "time_tensor_copy")
        & (ok.dtype == "float32")
        & (ok.layout == "contiguous")
        & ok.requires_grad.eq(True)
        & (ok.device == "cpu")
    ]
    tracked, untracked = (
        f"`{METHODS[m].code.removeprefix('x.')}`" for m in (cases.TRACKED, cases.UNTRACKED)
    )
    for numel in cases.HEADLINE_SIZES:
        a = t[(t.method == cases.TRACKED) & (t.numel == numel)]["median"]
        b = t[(t.method == cases.UNTRACKED) & (t.numel == numel)]["median"]
        if len(a) and len(b):
            size = format_bytes(cases.nbytes(numel, "float32"))
            lines.append(
                f"| {numel:,} float32 ({size}), requires_grad | {tracked} | {untracked} | "
                f"{format_seconds(a.median())} | {format_seconds(b.median())} | "
                f"{a.median() / b.median():.2f} |"
            )
    m = ok[(ok.metric == "time_module_copy") & (ok.device == "cpu")]
    by_params = sorted(
        (s for s in cases.MODELS.values() if s.n_tensors == 8), key=lambda s: s.n_params
    )
    for spec in (by_params[0], by_params[-1]) if by_params else ():
        a = m[(m.method == cases.DEEPCOPY) & (m.model == spec.name)]["median"]
        b = m[(m.method == cases.SNAPSHOT) & (m.model == spec.name)]["median"]
        if len(a) and len(b):
            lines.append(
                f"| model {spec.name} ({spec.n_params:,} params, {spec.n_tensors} "
                f"tensors) | `copy.deepcopy(model)` | state_dict snapshot | "
                f"{format_seconds(a.median())} | {format_seconds(b.median())} | "
                f"{a.median() / b.median():.2f} |"
            )
    if len(lines) == 2:
        raise ResultsError("results hold none of the headline cases")
    return "\n".join(lines)
