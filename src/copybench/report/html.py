"""HTML rendering: one self-contained page (inline CSS, images as data URIs, no scripts from
anywhere).  Every string that comes from a results file, a machine description or the
registry goes through :func:`esc`; nothing is interpolated raw.
"""

from __future__ import annotations

import base64
import html
import numbers
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pandas as pd

from copybench.measure.asvrun import PREVIEW_PORT
from copybench.report.findings import Decision, Finding
from copybench.suite.cases import CASE_COLUMNS, CASE_KEY, COLUMNS, STATISTIC_COLUMNS, UNSTABLE
from copybench.suite.units import format_ratio, format_seconds, format_value


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


@dataclass(frozen=True)
class RenderedPlot:
    slug: str
    title: str
    caption: str
    png: bytes
    min_font_px: float | None = None  # the smallest text, in the PNG's own pixels


def render_plot(slug: str, title: str, caption: str, figure) -> RenderedPlot:
    """A figure as the page inlines it: a PNG at :data:`plots.DPI` of at most 256 colours,
    with the size of its smallest text in the PNG's pixels (``data-min-font-px``, which
    scripts/check_report.py reads).

    Why 256 colours: a plot is a few lines, bands and text on white, and a palette keeps
    them as they are drawn (bands are flat, no gradients to band) in under a third of the
    full colour PNG's bytes, so that the page, which inlines every plot, stays under 1 MB.  No
    dithering: it would speckle the bands and cost bytes."""
    import io

    from PIL import Image

    from .plots import DPI, smallest_text_pt

    buf = io.BytesIO()
    figure.savefig(buf, format="png", dpi=DPI)
    image = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    palette = image.quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    out = io.BytesIO()
    palette.save(out, format="PNG")
    pt = smallest_text_pt(figure)
    return RenderedPlot(slug, title, caption, out.getvalue(), None if pt is None else pt * DPI / 72)


# No element may be wider than the window (scripts/check_report.py checks it at 1,400 px):
# long values (paths, hashes) break where they must, wide tables scroll inside
# their own box, and the decision table's columns have widths of their own, so the first
# column does not wrap a word a line.
CSS = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1250px;
       padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 13px; }
td.long { overflow-wrap: anywhere; min-width: 10em; }
.wide { max-width: 100%; overflow-x: auto; }
table.decide { font-size: 14px; width: 100%; table-layout: fixed; }
table.decide td { vertical-align: top; padding: 4px 8px; overflow-wrap: anywhere; }
table.decide col.situation { width: 16%; } table.decide col.use { width: 27%; }
table.decide col.cost { width: 32%; } table.decide col.does { width: 25%; }
table.decide small { display: block; margin-top: 0.3em; color: #444; font-size: 13px; }
p.warning { background: #fff3cd; border: 1px solid #e0b400; padding: 0.6em 0.9em; }
th, td { border: 1px solid #ddd; padding: 2px 6px; text-align: left; }
th { background: #f3f3f3; position: sticky; top: 0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.unstable td { background: #fff4e0; }
.mismatch { color: #b00; font-weight: bold; }
figure { margin: 1.5em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #444; max-width: 60em; }
.tidy { max-height: 40em; overflow: auto; border: 1px solid #ddd; }
code { background: #f6f6f6; padding: 0 2px; }
"""


def _table(headers: Sequence[str], rows: Iterable[Sequence[object]], numeric=(), long=()) -> str:
    """A table; the columns at ``numeric`` right-aligned, those at ``long`` (paths,
    hashes) broken anywhere rather than widen the table."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for r in rows:
        cells = "".join(
            f'<td class="num">{esc(v)}</td>'
            if i in numeric
            else f'<td class="long">{esc(v)}</td>'
            if i in long
            else f"<td>{esc(v)}</td>"
            for i, v in enumerate(r)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def environment_table(envs: list[dict]) -> str:
    cols = [
        ("machine", "machine"),
        ("torch", "torch_version"),
        ("torch git", "torch_git"),
        ("commit", "commit"),
        ("CPU", "cpu"),
        ("cores", "num_cpu"),
        ("GPU", "gpu"),
        ("threads (measured)", "threads"),
        ("threads (torch default)", "threads_default"),
        ("OS", "os"),
        ("python", "python"),
        ("results file", "file"),
    ]
    rows = []
    for e in envs:
        row = []
        for _, k in cols:
            v = e.get(k)
            if k == "commit" and v:
                v = str(v)[:12]
            row.append("unknown" if v is None or v == "" else v)
        rows.append(row)
    long = [i for i, (_, k) in enumerate(cols) if k in ("torch_git", "file")]
    return f'<div class="wide">{_table([c for c, _ in cols], rows, long=long)}</div>'


def semantics_table(observations: list[dict]) -> str:
    props = list(observations[0]["declared"]) if observations else []
    headers = ["method", "kind", "code", *props]
    body = []
    for o in observations:
        cells = [f"<td>{esc(o['method'])}</td><td>{esc(o['kind'])}</td>"]
        cells.append(f"<td><code>{esc(o['code'])}</code></td>")
        if o.get("observed") is None:
            why = f"not observed here: {o.get('skipped') or 'unknown reason'}"
            cells.append(f'<td colspan="{len(props)}">{esc(why)}</td>')
            body.append(f"<tr>{''.join(cells)}</tr>")
            continue
        for p in props:
            seen, said = o["observed"][p], o["declared"][p]
            text = "yes" if seen else "no"
            if seen != said:
                cells.append(
                    f'<td class="mismatch">{text} (declared {"yes" if said else "no"})</td>'
                )
            else:
                cells.append(f"<td>{text}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    return (
        f'<div class="wide"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def semantics_section(runs: list[dict]) -> str:
    """What each copy does, per machine and torch, as the results recorded it when they were
    measured (``runs``: :func:`copybench.report.build.semantics_runs`), and which runs did
    not record it.  Nothing is observed at render time: the torch that builds a report need
    not be the one that measured."""
    recorded = [r for r in runs if r["observations"] is not None]
    missing = [r for r in runs if r["observations"] is None]
    parts = [
        "<p>Observed by <code>copybench semantics</code> when the results were measured, on "
        "the torch that measured them, from a float32 leaf that requires grad; a red cell "
        "contradicts the registry.</p>"
    ]
    for r in recorded:
        parts.append(f"<h3>{esc(r['machine'])}, torch {esc(r['torch_version'])}</h3>")
        parts.append(semantics_table(r["observations"]))
    if missing:
        which = ", ".join(f"{r['machine']} (torch {r['torch_version']})" for r in missing)
        parts.append(
            f"<p>Not recorded by the results of {esc(which)}: they were written before "
            "copybench recorded, at run time, what each copy did (<code>copybench run</code> "
            "records it now). This page does not observe it again: the torch that builds a "
            "report need not be the one that measured.</p>"
        )
    return "\n".join(parts)


# The page's tidy table: the case key (with each tensor's bytes), the median and its spread
# in the row's unit, and the unstable flag.  Left out: the status (every row here is ok)
# and the quartiles (the IQR stands for them); the CSV holds every column.
TIDY_COLUMNS = [
    *(c for c in COLUMNS if c in CASE_KEY or c in CASE_COLUMNS),
    *(c for c in STATISTIC_COLUMNS if c not in ("status", "q25", "q75")),
    UNSTABLE,
]
# The statistics given in the row's ``unit`` (seconds, bytes, instructions ...).
_IN_UNIT = ("median", "iqr")


def _tidy_cell(column: str, value: object, unit: object) -> tuple[str, bool]:
    """A tidy-table cell's text, and whether it is a number (right-aligned)."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "", False
    if column in _IN_UNIT:
        return format_value(value, str(unit)), True
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        # Counts (elements, bytes, threads, samples), exact: a float only where the column
        # also holds a gap.
        return (f"{int(value):,}" if float(value).is_integer() else str(value)), True
    return str(value), False


def tidy_table(df: pd.DataFrame) -> str:
    """The tidy table (successful rows), unstable ones highlighted."""
    cols = [c for c in TIDY_COLUMNS if c in df and df[c].notna().any()]
    head = "".join(f"<th>{esc(c)}</th>" for c in cols)
    body = []
    for rec in df[cols].to_dict("records"):
        cells = []
        for c in cols:
            text, number = _tidy_cell(c, rec[c], rec.get("unit"))
            cls = ' class="num"' if number else ""
            cells.append(f"<td{cls}>{esc(text)}</td>")
        tr = ' class="unstable"' if rec.get(UNSTABLE) else ""
        body.append(f"<tr{tr}>{''.join(cells)}</tr>")
    return (
        f'<div class="tidy"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _figure(p: RenderedPlot) -> str:
    data = base64.b64encode(p.png).decode("ascii")
    font = "" if p.min_font_px is None else f' data-min-font-px="{p.min_font_px:.1f}"'
    return (
        f'<figure id="plot-{esc(p.slug)}"><h3>{esc(p.title)}</h3>'
        f'<img src="data:image/png;base64,{data}" alt="{esc(p.title)}"{font}>'
        f"<figcaption>{esc(p.caption)}</figcaption></figure>"
    )


def _finding(f: Finding, plots: list[RenderedPlot]) -> str:
    # The plot of this very finding: its slug exactly (a prefix would send a bfloat16
    # finding to the float32 plot); a finding no plot shows links to its section.
    target = next((p.slug for p in plots if f.plot and p.slug == f.plot), None)
    if target:
        link = f' <a href="#plot-{esc(target)}">(plot)</a>'
    elif f.section:
        link = f' <a href="#{esc(f.section)}">({esc(SECTIONS[f.section])})</a>'
    else:
        link = ""
    return f"<li>{esc(f.text)}{link}</li>"


# The page's sections a finding may point to (ids, as render writes them), and their names.
SECTIONS = {"decide": "Which copy should I use?", "table": "tidy table"}


def trends_section(plots: list[RenderedPlot], note: str | None) -> str:
    """The Trends section: one figure per headline family; without them, why not, in one
    sentence (and no section)."""
    if not plots:
        return f'<p id="trends">{esc(note)}</p>' if note else ""
    lead = f"<p>{esc(note)}</p>" if note else ""
    return f'<h2 id="trends">Trends</h2>{lead}{"".join(_figure(p) for p in plots)}'


def machines_table(across: pd.DataFrame, machines: list[dict]) -> str:
    """The headline cases across machines (:func:`table.across_machines`): one row per case,
    each machine's median, and each other machine's ratio to the first (the reference).
    ``machines``: name, cpu, gpu, cores and torch of each machine, the reference first."""
    ref = machines[0]["machine"]

    def header(m: dict, ratio: bool = False) -> str:
        first = f"{m['machine']} / {ref}" if ratio else m["machine"]
        hw = [m.get("cpu") or "CPU unknown"]
        if m.get("cores"):
            hw.append(f"{m['cores']} cores")
        gpu = m.get("gpu")
        hw.append("no GPU" if gpu == "none" else f"GPU {gpu}" if gpu else "GPU unknown")
        second = ", ".join(str(h) for h in hw)
        torch = f"<br><small>torch {esc(m['torch_version'])}</small>" if not ratio else ""
        return f"<th>{esc(first)}<br><small>{esc(second)}</small>{torch}</th>"

    heads = ["<th>case</th>"] + [header(m) for m in machines]
    heads += [header(m, ratio=True) for m in machines[1:]]
    body = []
    for (_family, method), g in across.groupby(["family", "method"], sort=False):
        by = {r["machine"]: r for _, r in g.iterrows()}
        cells = [f"<td><code>{esc(method)}</code>, {esc(g['case'].iloc[0])}</td>"]
        medians = [by[m["machine"]]["median"] if m["machine"] in by else None for m in machines]
        ratios = [by[m["machine"]]["ratio"] if m["machine"] in by else None for m in machines]
        texts = ["-" if v is None else format_seconds(v) for v in medians]
        texts += [
            "-" if v is None or pd.isna(v) else format_ratio(v, digits=2, unit="×")
            for v in ratios[1:]
        ]
        cells += [f'<td class="num">{esc(t)}</td>' for t in texts]
        body.append(f"<tr>{''.join(cells)}</tr>")
    return (
        f'<div class="wide"><table class="machines"><thead><tr>{"".join(heads)}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def decision_table(decisions: list[Decision]) -> str:
    if not decisions:
        return (
            "<p>No paired comparisons in these results: an unnarrowed <code>copybench run"
            "</code> measures them (about 3 minutes here). Without them this page ranks "
            "nothing.</p>"
        )
    cols = "".join(f'<col class="{c}">' for c in ("situation", "use", "cost", "does"))
    head = "".join(f"<th>{h}</th>" for h in ("You want", "Use", "Measured", "What it does"))
    body = "".join(
        f"<tr><td>{esc(d.situation)}</td><td><code>{esc(d.code)}</code>"
        + (f"<small>{esc(d.when)}</small>" if d.when else "")
        + f"</td><td>{esc(d.cost)}</td><td>{esc(d.caveat)}</td></tr>"
        for d in decisions
    )
    return (
        f'<table class="decide"><colgroup>{cols}</colgroup><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table>"
    )


def _across(across: pd.DataFrame | None, machines: list[dict]) -> str:
    if across is None or across.empty or len(machines) < 2:
        return ""
    return (
        '<h2 id="machines">Across machines</h2>\n<p>The headline cases on each machine, '
        "under the newest torch it was measured with, and each machine's median over the "
        f"first one's ({esc(machines[0]['machine'])}). Medians measured on different "
        "machines at different times: a ratio describes the hardware (and torch) "
        "difference, it is not a paired comparison.</p>\n" + machines_table(across, machines)
    )


# Where ``copybench preview`` serves asv's site (at its default port).
PREVIEW_URL = f"http://127.0.0.1:{PREVIEW_PORT}/"


def _asv_section(asv_html: str | None) -> str:
    if asv_html:
        return (
            "<p>asv's own graphs of these results (a time series per benchmark; the "
            "nightly's, one point per night): <a href=\"" + esc(asv_html) + "\">asv's site</a> "
            "where this page is served beside it (the nightly's GitHub Pages). From this "
            "checkout, run <code>.venv/bin/copybench preview</code> and open "
            f'<a href="{PREVIEW_URL}">{PREVIEW_URL}</a>: asv\'s pages must be served (opened '
            'from disk they say "Error fetching content").</p>'
        )
    return (
        "<p>No published asv site was found beside these results (<code>.venv/bin/copybench "
        "publish</code> makes one; <code>.venv/bin/copybench preview</code> publishes and "
        "serves it).</p>"
    )


def _plots_section(plots: list[RenderedPlot]) -> str:
    toc = "".join(f'<li><a href="#plot-{esc(p.slug)}">{esc(p.title)}</a></li>' for p in plots)
    return f"""<h2 id="plots">Plots</h2>
<ul>{toc}</ul>
{"".join(_figure(p) for p in plots)}"""


def _head(name: str, warning: str | None) -> str:
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>copybench report: {esc(name)}</title>
<style>{CSS}</style>
</head>
<body>
<h1>copybench report: {esc(name)}</h1>
{f'<p class="warning">Warning: {esc(warning)}</p>' if warning else ""}"""


def _answers(
    decisions: list[Decision],
    findings: list[Finding],
    plots: list[RenderedPlot],
    generated: str,
    counts: dict[str, int],
) -> str:
    return f"""<h2 id="decide">Which copy should I use?</h2>
<p>Each answer comes from a paired measurement: the two copies alternate in short blocks in
several fresh processes, and the CI resamples whole processes. A difference whose CI does
not clear zero by more than the controls' tolerance (2 points) is called indistinguishable
here.</p>
{decision_table(decisions)}
<h2 id="findings">Findings</h2>
<ul>{"".join(_finding(f, plots) for f in findings)}</ul>
<p>Generated {esc(generated)} from {counts["ok"]:,} measurements ({counts["skipped"]:,}
skipped cases, {counts["failed"]:,} failed).</p>"""


def _tidy_section(tidy: pd.DataFrame, csv_file: str) -> str:
    return f"""<h2 id="table">Tidy table</h2>
<details><summary>One row per measurement (successful ones; unstable rows shaded). All rows,
skips and failures included, are in <a href="{esc(csv_file)}">{esc(csv_file)}</a>.</summary>
{tidy_table(tidy)}
</details>"""


def render(
    *,
    name: str,
    generated: str,
    envs: list[dict],
    findings: list[Finding],
    decisions: list[Decision],
    warning: str | None,
    semantics: list[dict],
    plots: list[RenderedPlot],
    tidy: pd.DataFrame,
    csv_file: str,
    asv_html: str | None,
    counts: dict[str, int],
    trends: Sequence[RenderedPlot] = (),
    trends_note: str | None = None,
    across: pd.DataFrame | None = None,
    machines: Sequence[dict] = (),
) -> str:
    """The whole page; every argument's strings are escaped here."""
    return f"""{_head(name, warning)}
{_answers(decisions, findings, plots, generated, counts)}
{_plots_section(plots)}
{trends_section(list(trends), trends_note)}
{_across(across, list(machines))}
<h2 id="environment">Environment</h2>
{environment_table(envs)}
<h2 id="semantics">What each copy does</h2>
{semantics_section(semantics)}
{_tidy_section(tidy, csv_file)}
<h2 id="asv">asv</h2>
{_asv_section(asv_html)}
</body>
</html>
"""
