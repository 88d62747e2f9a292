"""``copybench advise``'s answer, from its results (:func:`copybench.measure.advise.advise`):
the decision table first, then the measurements and what each route keeps; as text for the
terminal and as one self-contained page in the report's style.

A route is called faster or slower than the reference only where its CI clears the
controls' tolerance (:func:`copybench.report.findings.is_resolved`), as the report's own
answers are; otherwise it is "indistinguishable here".
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

from copybench.report.findings import Decision, is_resolved
from copybench.report.html import CSS, _table, decision_table, esc
from copybench.report.table import CONTROL_TOLERANCE_PTS
from copybench.suite.cases import ADVICE_SITUATIONS, PINNED
from copybench.suite.keeps import PROPERTIES
from copybench.suite.methods import METHODS
from copybench.suite.stats import median
from copybench.suite.units import (
    format_bytes,
    format_count,
    format_percent,
    format_ratio,
    format_seconds,
    text_table,
)


@dataclass(frozen=True)
class Advice:
    """One row of the answer: the situation, the route to use and its code, what it costs
    against the reference, and what it keeps (the report's Decision, filled from one model)."""

    situation: str
    use: str
    code: str
    cost: str
    caveat: str
    when: str = ""

    def line(self) -> str:
        return f"{self.situation}: {self.use}. {self.cost}. {self.caveat}".rstrip()

    def decision(self) -> Decision:
        """As the report's decision table shows a row: the code, the route's name under it."""
        when = f"{self.use}" + (f"; {self.when}" if self.when else "")
        return Decision(self.situation, self.code, self.cost, self.caveat, when)


def _ref_name(result: dict) -> str:
    return METHODS[result["reference"]].code.splitlines()[0]


def _x(ratio: float) -> str:
    return format_ratio(ratio, digits=2, unit="x")


def speed_text(route: dict, result: dict) -> str:
    """``3.10x faster than copy.deepcopy(model) (95% CI 2.90x to 3.30x)``, ``slower``, or
    ``indistinguishable from ... here``; the reference is ``the reference``."""
    ref = _ref_name(result)
    c = route.get("against_reference")
    if route["route"] == result["reference"]:
        return f"{format_seconds(route['route_ns'] * 1e-9)} a copy (the reference)"
    if c is None:
        return "not timed"
    lo, hi, r = c["ratio_low"], c["ratio_high"], c["ratio"]
    if not is_resolved(c):
        return f"indistinguishable from {ref} here (95% CI {_x(lo)} to {_x(hi)} faster)"
    if r > 1:
        return f"{_x(r)} faster than {ref} (95% CI {_x(lo)} to {_x(hi)})"
    return f"{_x(1 / r)} slower than {ref} (95% CI {_x(1 / hi)} to {_x(1 / lo)})"


def memory_text(route: dict, result: dict) -> str:
    """Peak memory of one copy (host; GPU too on a GPU), what it held beforehand where
    that is more than a rounding error, and the reference's peak beside it."""
    mem = route.get("memory")
    if not mem:
        return "memory not measured"
    ref = next(r for r in result["routes"] if r["route"] == result["reference"])["memory"]
    parts = []
    for where, key in (("", "host"), ("GPU ", "gpu")):
        peak = mem.get(f"{key}_peak_bytes")
        if peak is None:
            continue
        text = f"{where}peak {format_bytes(peak)}"
        held = mem.get(f"{key}_held_bytes") or 0
        if held > 0.05 * result["model"]["state_dict_bytes"]:
            text += f" + {format_bytes(held)} held beforehand"
        if route["route"] != result["reference"]:
            text += (
                f" ({METHODS[result['reference']].name}: {format_bytes(ref[f'{key}_peak_bytes'])})"
            )
        parts.append(text)
    return ", ".join(parts)


def keeps_text(route: dict) -> str:
    """``keeps ties: no; changes without a word: ...`` (ties only where the model has them)."""
    if route["failed"]:
        return f"fails on this model: {route['failed']}"
    parts = []
    if route["keeps"].get("ties") in ("yes", "no"):
        parts.append(f"keeps ties: {route['keeps']['ties']}")
    changes = route["changes"]
    parts.append(
        "changes without a word: " + "; ".join(changes) if changes else "changes nothing it copies"
    )
    return ", ".join(parts)


def _score(route: dict, result: dict) -> float:
    """How many times faster than the reference (1 for the reference itself)."""
    if route["route"] == result["reference"]:
        return 1.0
    return route["against_reference"]["ratio"]


def decisions(result: dict) -> list[Advice]:
    """The answer, one row per situation that some route which ran serves: the fastest of
    its routes, the reference or another route beside it where the CIs cannot tell them
    apart, and the routes that failed on the model."""
    by = {r["route"]: r for r in result["routes"]}
    out = []
    for situation, candidates in ADVICE_SITUATIONS:
        timed = [by[c] for c in candidates if c in by and "control" in by[c]]
        failed = [f"{c} fails on this model" for c in candidates if c in by and by[c]["failed"]]
        if not timed or ([r["route"] for r in timed] == [result["reference"]] and not failed):
            continue  # nothing here, or only the reference: no choice to make
        best = max(timed, key=lambda r: _score(r, result))
        use = best["route"]
        tie = use != result["reference"] and not is_resolved(best["against_reference"])
        if tie and result["reference"] in candidates:
            use += f" or {result['reference']} (indistinguishable here)"
        close = [r["route"] for r in timed if r is not best and _overlaps(r, best, result)]
        when = "; ".join(
            ([f"as fast within the CIs: {', '.join(close)}"] if close else []) + failed
        )
        cost = f"{speed_text(best, result)}; {memory_text(best, result)}"
        if best["route"] == PINNED and best["against_reference"].get("host_held_s"):
            held = median(best["against_reference"]["host_held_s"])
            cost += f"; the call holds the host {format_seconds(held)}"
        out.append(Advice(situation, use, best["code"], cost, keeps_text(best), when))
    return out


def _interval(route: dict, result: dict) -> tuple[float, float]:
    if route["route"] == result["reference"]:
        return 1.0, 1.0
    c = route["against_reference"]
    return c["ratio_low"], c["ratio_high"]


def _overlaps(a: dict, b: dict, result: dict) -> bool:
    (alo, ahi), (blo, bhi) = _interval(a, result), _interval(b, result)
    return alo <= bhi and blo <= ahi


# --- the measurements ---------------------------------------------------------------------------


def _control_text(route: dict) -> str:
    c = route.get("control")
    if c is None:
        return ""
    lo, hi = c["ci_low_pct"], c["ci_high_pct"]
    return f"{format_percent(lo, signed=True)} to {format_percent(hi, signed=True)}"


def _against(route: dict, result: dict) -> tuple[str, str]:
    """(``3.10x faster``, ``2.90x to 3.30x``): against the reference, and the CI, in the
    direction the estimate goes; ``indistinguishable`` where the CI does not resolve it."""
    c = route.get("against_reference")
    if c is None:
        return "reference", ""
    lo, hi, r = c["ratio_low"], c["ratio_high"], c["ratio"]
    if r >= 1:
        word = "faster" if is_resolved(c) else "indistinguishable"
        return f"{_x(r)} {word}", f"{_x(lo)} to {_x(hi)}"
    word = "slower" if is_resolved(c) else "indistinguishable"
    return f"{_x(1 / r)} {word}", f"{_x(1 / hi)} to {_x(1 / lo)}"


def _bytes(mem: dict, key: str) -> str:
    value = mem.get(key)
    return "" if value is None else format_bytes(value)


def measurement_rows(result: dict) -> list[list[str]]:
    """Route, time per copy (beside the reference, as the ratio has it; and alone, beside
    itself in its control: the allocator state the neighbour leaves moves a large copy's
    time), against the reference and its CI, the control's CI, peak and held memory
    (host; GPU on a GPU)."""
    rows = []
    gpu = torch_device_is_cuda(result)
    for r in result["routes"]:
        if "control" not in r:
            continue
        mem = r.get("memory") or {}
        beside = (r.get("against_reference") or r["control"])["base_ns"]
        cells = [
            r["route"],
            format_seconds(beside * 1e-9),
            format_seconds(r["control"]["base_ns"] * 1e-9),
            *_against(r, result),
            _control_text(r),
            _bytes(mem, "host_peak_bytes"),
            _bytes(mem, "host_held_bytes"),
        ]
        if gpu:
            cells += [_bytes(mem, "gpu_peak_bytes"), _bytes(mem, "gpu_held_bytes")]
        rows.append(cells)
    return rows


def torch_device_is_cuda(result: dict) -> bool:
    return str(result["device"]).startswith("cuda")


def measurement_header(result: dict) -> list[str]:
    ref = METHODS[result["reference"]].name
    head = ["route", "per copy", "alone", f"against {ref}", "95% CI", "control 95% CI"]
    head += ["peak", "held"]
    return head + (["GPU peak", "GPU held"] if torch_device_is_cuda(result) else [])


def not_timed(result: dict) -> list[str]:
    """``route: why`` for each route that did not run on this model or here."""
    return [
        f"{r['route']}: " + (f"fails on this model: {r['failed']}" if r["failed"] else r["skipped"])
        for r in result["routes"]
        if "control" not in r
    ]


KEEPS_HEADER = [
    "route",
    "output",
    *(p.replace("_", " ").replace("non ", "non-") for p in PROPERTIES),
]


def keeps_rows(result: dict) -> list[list[str]]:
    return [
        [r["route"], r["output"] or "-", *(r["keeps"].get(p, "-") for p in PROPERTIES)]
        for r in result["routes"]
        if not r["skipped"] and not r["failed"]
    ]


def noisy_controls(result: dict) -> list[str]:
    """Routes whose control (the route against itself) moved by more than the tolerance."""
    return [r["route"] for r in result["routes"] if r.get("control") and is_resolved(r["control"])]


def heading(result: dict) -> str:
    m = result["model"]
    dtypes = "/".join(m["dtypes"])
    return (
        f"{m['spec']} ({m['class']}): {format_count(m['parameters'])} parameters in "
        f"{m['parameter_tensors']} tensors, state_dict {m['state_dict_tensors']} tensors, "
        f"{format_bytes(m['state_dict_bytes'])} {dtypes}; {result['device']}, "
        f"{result['threads']} thread{'s' if result['threads'] != 1 else ''}, torch "
        f"{result['torch_version']}"
    )


def how_measured(result: dict) -> str:
    return (
        f"Each route timed against {_ref_name(result)} in {result['processes']} fresh "
        f"process{'es' if result['processes'] != 1 else ''}, paired and interleaved (ABBA "
        "quads), beside its control (the route against itself); 95% CIs resample whole "
        "processes. A difference is stated where "
        f"its CI clears {CONTROL_TOLERANCE_PTS:g}%; else it is indistinguishable here. "
        "Per copy: the route's median beside the reference, in the pairs the ratio comes "
        "from; alone: beside itself, in its control (where the two differ, the neighbour's "
        "memory traffic and allocations move it). "
        "Peak: how far one copy raised the peak of a fresh process's resident memory; held: "
        "what the route needs allocated beforehand (the existing copy, the buffers). "
        f"Took {format_seconds(result['seconds'])}."
    )


def format_advice(result: dict) -> str:
    """What ``copybench advise`` prints: the answer first, then the measurements."""
    wrap = textwrap.TextWrapper(width=100, subsequent_indent="  ")
    lines = [*wrap.wrap(f"copybench advise: {heading(result)}"), "", "Answer:"]
    for a in decisions(result):
        lines += wrap.wrap(f"- {a.line()}")
        if a.when:
            lines += wrap.wrap(f"  ({a.when})")
    lines += ["", *textwrap.wrap(how_measured(result), 100), ""]
    lines += [text_table(measurement_header(result), measurement_rows(result))]
    lines += [f"Not timed: {t}" for t in not_timed(result)] + [""]
    lines += ["What each route keeps, observed on this model (after the source moved on):"]
    lines += [text_table(KEEPS_HEADER, keeps_rows(result))]
    noisy = noisy_controls(result)
    if noisy:
        lines += ["", f"Warning: the controls of {', '.join(noisy)} moved: a noisy machine."]
    return "\n".join(lines)


def render_advice_html(result: dict) -> str:
    """The same as one page in the report's style; every string escaped."""
    noisy = noisy_controls(result)
    warning = (
        f'<p class="warning">Warning: the controls of {esc(", ".join(noisy))} moved: a noisy '
        "machine.</p>"
        if noisy
        else ""
    )
    rows = decisions(result)
    measured = _table(measurement_header(result), measurement_rows(result), numeric=(1, 2, 6, 7))
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>copybench advise: {esc(result["model"]["spec"])}</title>
<style>{CSS}</style>
</head>
<body>
<h1>copybench advise: {esc(result["model"]["spec"])}</h1>
<p>{esc(heading(result))}</p>
{warning}
<h2 id="decide">Which copy should I use for this model?</h2>
{decision_table([a.decision() for a in rows])}
<p>{esc(how_measured(result))}</p>
<h2 id="measured">Measured</h2>
<div class="wide">{measured}</div>
<ul>{"".join(f"<li>Not timed: {esc(t)}</li>" for t in not_timed(result))}</ul>
<h2 id="keeps">What each route keeps</h2>
<p>Observed on this model: each route bound, then the source moved on (new values in every
tensor, its first parameter frozen, an attribute set, a forward hook added), then copied.
"dict": a dict of tensors has no such thing.</p>
<div class="wide">{_table(KEEPS_HEADER, keeps_rows(result))}</div>
</body>
</html>
"""
