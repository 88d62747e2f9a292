"""Plots: pure functions, a DataFrame in and a matplotlib ``Figure`` out.

No pyplot and no global state: figures are built from ``matplotlib.figure.Figure`` and
drawn by the Agg canvas, so the report builds the same on a headless machine and inside
tests.  Every line carries its method (or series) name as its ``gid``: the tests read the
figures back to check that each plot holds data for every method present.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from copybench.report import table
from copybench.suite.cases import ROOF, TRACKED, UNTRACKED
from copybench.suite.methods import METHODS, module_method_names, tensor_method_names
from copybench.suite.units import (
    format_bandwidth,
    format_bytes,
    format_count,
    format_ratio,
    format_seconds,
)

# The resolution the page's PNGs are drawn at, and the text sizes (points) chosen for it.
# The page shows each PNG at its natural width (no figure is wider than MAX_WIDTH_IN, which
# fits the page's 1,250 px column), so a point is DPI / 72 px: the smallest text, NOTE_PT,
# is 12.5 px, above the 10 px a reader needs without zooming (scripts/check_report.py
# checks each image's smallest text as the page shows it).
DPI = 100
MAX_WIDTH_IN = 12.0
LEGEND_PT = 10.0
TICK_PT = 10.0
NOTE_PT = 9.0

_MARKERS = "os^vD<>pP*hX"
_COLORS = [
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#ff7f0e",
]
# The controls' lines: greys, away from every measured line's colour.
_CONTROL_COLORS = ["#404040", "#999999"]


def _style(method: str) -> dict:
    names = tensor_method_names() if METHODS[method].kind == "tensor" else module_method_names()
    i = names.index(method)
    return {"color": _COLORS[i % len(_COLORS)], "marker": _MARKERS[i % len(_MARKERS)]}


def _label(method: str, width: int = 48) -> str:
    code = METHODS[method].code.splitlines()[0]
    if len(code) > width:
        code = code[: width - 1] + "…"
    return f"{method}: {code}"


def _text(s: object) -> str:
    """A string from a results file, safe for matplotlib (no mathtext)."""
    return str(s).replace("$", r"\$")


def _size_axis(ax, label: str = "tensor size (bytes, log scale)") -> None:
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(LogLocator(base=32))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.xaxis.set_major_formatter(FuncFormatter(format_bytes))
    ax.set_xlabel(label)
    ax.grid(True, which="major", alpha=0.3)


def _time_axis(ax, label: str = "time per copy (log scale)") -> None:
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(format_seconds))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_ylabel(label)


def _new_figure(nrows: int, ncols: int, width: float = 6.0, height: float = 4.2) -> Figure:
    fig = Figure(
        figsize=(min(width * ncols, MAX_WIDTH_IN), height * nrows + 1.2), layout="constrained"
    )
    FigureCanvasAgg(fig)
    return fig


def _finish(fig: Figure, title: str, axes: list) -> Figure:
    """The title, one legend below every panel, and tick labels of a readable size."""
    for ax in axes:
        ax.tick_params(which="both", labelsize=TICK_PT)
    fig.suptitle(_text(title))
    _legend_below(fig, axes)
    return fig


def smallest_text_pt(fig: Figure) -> float | None:
    """The size in points of the smallest text the figure shows (titles, labels, tick
    labels, legends, notes), drawing it first so that its ticks exist; None for none."""
    from matplotlib.text import Text

    fig.canvas.draw()
    shown = [fig, *fig.legends, *(ax for ax in fig.axes if ax.get_visible())]
    sizes = [
        t.get_fontsize()
        for part in shown
        for t in part.findobj(Text, include_self=False)
        if t.get_visible() and t.get_text().strip() and (t.axes is None or t.axes.get_visible())
    ]
    return min(sizes, default=None)


def _legend_below(fig: Figure, axes: list) -> None:
    handles, labels = {}, {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(lab, h)
            labels.setdefault(lab, lab)
    if not handles:
        return
    # As many columns (up to 3) as fit the figure's width: a legend wider than the figure
    # is cut off at both sides of the PNG.
    renderer = fig.canvas.get_renderer()
    for ncols in range(min(3, len(handles)), 0, -1):
        legend = fig.legend(
            list(handles.values()),
            list(labels),
            loc="outside lower center",
            ncols=ncols,
            fontsize=LEGEND_PT,
            frameon=False,
        )
        if ncols == 1 or legend.get_window_extent(renderer).width <= fig.bbox.width:
            return
        legend.remove()


def _grad_text(rg: bool) -> str:
    return "source requires grad" if rg else "source does not require grad"


def _panels(df: pd.DataFrame) -> list[tuple[str, bool]]:
    """(layout, requires_grad) panels present, contiguous and no-grad first."""
    have = {(lay, bool(rg)) for lay, rg in zip(df["layout"], df["requires_grad"], strict=True)}
    order = [(lay, rg) for lay in ("contiguous", "transposed") for rg in (False, True)]
    return [p for p in order if p in have] + sorted(have - set(order))


def _errorbar(ax, x, y, lo, hi, gid: str, **style) -> None:
    y, lo, hi = (np.asarray(v, dtype=float) for v in (y, lo, hi))
    yerr = np.vstack([np.where(np.isnan(lo), 0, y - lo), np.where(np.isnan(hi), 0, hi - y)])
    c = ax.errorbar(x, y, yerr=np.clip(yerr, 0, None), capsize=2, markersize=5, **style)
    c.lines[0].set_gid(gid)


# --- time and bandwidth against size --------------------------------------------------------


def time_vs_size(times: pd.DataFrame, title: str) -> Figure:
    """Median time per copy against size (log-log), one line per tensor method, with the
    interquartile range as error bars; one panel per layout and requires_grad."""
    return _per_method(times, title, "median", "time per copy (log scale, bars: IQR)")


def bandwidth_vs_size(times: pd.DataFrame, title: str) -> Figure:
    """Achieved bandwidth (bytes read + written per second) against size for each copying
    method, ``copy_into`` (copy into a preallocated, touched buffer) drawn as the roof."""
    t = times[times["method"].isin(table.copying_methods())]
    return _per_method(t, title, "bandwidth", "achieved bandwidth (2 × bytes / time, log)")


def _per_method(times: pd.DataFrame, title: str, y: str, ylabel: str) -> Figure:
    panels = _panels(times)
    ncols = 2 if len(panels) > 1 else 1
    nrows = math.ceil(len(panels) / ncols)
    fig = _new_figure(nrows, ncols)
    axes = fig.subplots(nrows, ncols, squeeze=False, sharex=True, sharey=True).ravel()
    for ax, (layout, rg) in zip(axes, panels, strict=False):
        d = times[(times["layout"] == layout) & (times["requires_grad"] == rg)]
        for method in [m for m in tensor_method_names() if m in set(d["method"])]:
            g = d[d["method"] == method].sort_values("nbytes")
            x = g["nbytes"].to_numpy()
            if y == "median":
                vals, lo, hi = g["median"], g["q25"], g["q75"]
            else:
                vals = g["bandwidth"]
                # Faster quartile time = higher bandwidth.
                lo = 2 * g["nbytes"] / g["q75"]
                hi = 2 * g["nbytes"] / g["q25"]
            style = _style(method)
            if method == ROOF and y == "bandwidth":
                style.update(color="black", linewidth=3, linestyle="--", zorder=5)
                label = f"roof: {_label(method)}"
            else:
                label = _label(method)
            _errorbar(ax, x, vals, lo, hi, method, label=label, **style)
        if y == "bandwidth" and ROOF in set(d["method"]):
            peak = d.loc[d["method"] == ROOF, "bandwidth"].max()
            ax.axhline(peak, color="black", linewidth=0.8, linestyle=":")
            ax.annotate(
                f"{ROOF} peak {format_bandwidth(peak)}",
                (0.02, peak),
                xycoords=("axes fraction", "data"),
                textcoords="offset points",
                xytext=(0, 3),
                fontsize=NOTE_PT,
            )
        _size_axis(ax)
        if y == "median":
            _time_axis(ax, ylabel)
        else:
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(FuncFormatter(format_bandwidth))
            ax.yaxis.set_minor_formatter(NullFormatter())
            ax.set_ylabel(ylabel)
        ax.set_title(f"{layout}, {_grad_text(rg)}", fontsize="medium")
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    return _finish(fig, title, list(axes))


# --- the headline: tracked-clone overhead ---------------------------------------------------


def paired_overhead(pt: pd.DataFrame, title: str) -> Figure:
    """The tracked clone's paired overhead against size (``copybench.measure.paired``): in
    percent of ``detach().clone()`` (left) and in time per copy (right), the 95% CI as a band
    (resampling whole processes), one line per dtype; beside each, dashed, in grey and with
    a cross for a marker, its control (the same two statements on a source that does not
    require grad: zero but for this run's noise).  One row per layout.  Linear axes: the
    noise at large sizes shows as a wide band around zero, not as structure.

    The absolute panel is scaled to the nanoseconds where they are resolved: to zero and
    the estimates of the layout's sizes (both dtypes) that lie within Tukey's far-out
    fences of them (:func:`copybench.suite.stats.tukey_fences`, 3 IQR past the quartiles).  An
    estimate off that scale is a hollow triangle on the edge it ran off, and the panel's
    title names those sizes.  Why: what the autograd node costs is a few hundred
    nanoseconds at every size, resolved where a copy takes microseconds; at 128 MiB a copy
    takes tens of milliseconds, a percent of noise is hundreds of thousands of nanoseconds,
    and one linear axis over every size put the overhead on the zero line.  The noisy
    sizes are few and far out, so the fences leave them out wherever the small sizes agree
    (and leave everything in where nothing agrees).  A symlog axis would show both, but
    draws the large sizes' noise as structure as tall as the signal; panels per size range
    would need ranges chosen by hand, and where nanoseconds stop being resolved moves with
    the machine and its load.  The relative panel beside it shows every size on one
    scale."""
    layouts = [lay for lay in ("contiguous", "transposed") if (pt["layout"] == lay).any()]
    fig = _new_figure(len(layouts), 2)
    axes = fig.subplots(len(layouts), 2, squeeze=False)
    dtypes = list(dict.fromkeys(pt["dtype"]))
    for row, layout in zip(axes, layouts, strict=True):
        d = pt[pt["layout"] == layout]
        drawn = [_overhead_lines(row, d, i, dtype, layout) for i, dtype in enumerate(dtypes)]
        _overhead_axes(row, d, layout, [line for lines in drawn for line in lines])
    return _finish(fig, title, list(axes.ravel()))


def _overhead_lines(row, d: pd.DataFrame, i: int, dtype: str, layout: str) -> list:
    """One dtype's line, and its control's, in both panels of a row of
    :func:`paired_overhead`; (x, nanoseconds, style) of each, for the off-scale marks."""
    drawn = []
    for control in (False, True):
        g = d[(d["dtype"] == dtype) & (d["control"].astype(bool) == control)]
        g = g.sort_values("nbytes")
        if g.empty:
            continue
        label = f"{dtype}, {'control (no grad)' if control else 'source requires grad'}"
        gid = f"{dtype}-{'control' if control else 'grad'}-{layout}"
        x = g["nbytes"].to_numpy(dtype=float)
        if control:  # told apart by colour and marker, not by the dash alone
            color = _CONTROL_COLORS[i % len(_CONTROL_COLORS)]
            style = {"color": color, "linestyle": "--", "marker": "x+"[i % 2]}
        else:
            color = _COLORS[i % len(_COLORS)]
            style = {"color": color, "linestyle": "-", "marker": _MARKERS[i]}
        for ax, (y, lo, hi) in zip(
            row,
            (
                (g["overhead_pct"], g["ci_low_pct"], g["ci_high_pct"]),
                (g["overhead_ns"], g["overhead_ns_low"], g["overhead_ns_high"]),
            ),
            strict=True,
        ):
            (line,) = ax.plot(x, y, label=label, **style)
            line.set_gid(gid)
            ax.fill_between(x, lo, hi, color=color, alpha=0.12 if control else 0.22)
        drawn.append((x, g["overhead_ns"].to_numpy(dtype=float), style))
    return drawn


def _overhead_axes(row, d: pd.DataFrame, layout: str, drawn: list) -> None:
    """The axes of a row of :func:`paired_overhead`: labels, titles, and the scales (see
    there)."""
    from copybench.suite.stats import tukey_fences

    for ax in row:
        ax.axhline(0, color="black", linewidth=0.8)
        _size_axis(ax)
    row[0].set_ylabel("extra time (% of detach().clone())")
    row[1].set_ylabel("extra time per copy")
    # Units on the ticks (600 ns, 1.5 µs), not an offset such as "1e7" above the axis.
    row[1].yaxis.set_major_formatter(FuncFormatter(lambda v, _: format_seconds(v * 1e-9)))
    row[0].set_title(f"{layout}: relative (band: 95% CI)", fontsize="medium")
    # Relative: scale to the estimates; a noisy size's band may run off the panel (which
    # still says "noise") rather than flatten every other point.  Absolute: the same, over
    # the estimates within the fences.
    _scale_to(row[0], d["overhead_pct"].dropna(), 10.0)
    main = d.loc[~d["control"].astype(bool), "overhead_ns"].dropna()
    low, high = tukey_fences(main)
    _scale_to(row[1], main[main.between(low, high)], 100.0)
    off = _mark_off_scale(row[1], drawn)
    note = "\noff this scale (▲▼ on the edge): " + ", ".join(map(format_bytes, off)) if off else ""
    row[1].set_title(f"{layout}: absolute (band: 95% CI){note}", fontsize="medium")


def _scale_to(ax, values: pd.Series, least_span: float) -> None:
    """Y limits around zero and ``values`` (a quarter of their span beyond each end, the
    span at least ``least_span``); left to matplotlib where there are none."""
    if len(values):
        span = max(values.max() - values.min(), least_span)
        ax.set_ylim(min(values.min(), 0) - 0.25 * span, max(values.max(), 0) + 0.25 * span)


def _mark_off_scale(ax, drawn: list) -> list[float]:
    """Draw each estimate beyond the panel's y limits as a triangle on the edge it ran off
    (hollow, in its line's colour); return the sizes (x) of those estimates, sorted."""
    low, high = ax.get_ylim()
    off = set()
    for x, y, style in drawn:
        for edge, beyond, marker in ((high, y > high, "^"), (low, y < low, "v")):
            if beyond.any():
                ax.plot(
                    x[beyond],
                    np.full(beyond.sum(), edge),
                    linestyle="none",
                    marker=marker,
                    markersize=8,
                    markerfacecolor="none",
                    markeredgecolor=style["color"],
                    clip_on=False,
                    zorder=6,
                )
                off.update(x[beyond].tolist())
    return sorted(off)


# --- modules ----------------------------------------------------------------------------------


def memory_metric(mods: pd.DataFrame) -> str | None:
    """The memory metric to plot: RSS growth during the copy where measured (what the copy
    itself allocated), else asv's process peak (which includes the source model)."""
    for metric in ("track_peak_rss_growth", "peakmem_module_copy"):
        if (mods["metric"] == metric).any():
            return metric
    return None


def modules(mods: pd.DataFrame, title: str) -> Figure:
    """Module copies: time (top) and peak memory (bottom) against parameter count at a fixed
    number of tensors (left) and against the number of tensors at a fixed parameter count
    (right).  The dotted line is the float32 parameter bytes: a copy needs at least that."""
    fixed_tensors, fixed_params = table.model_sweeps()
    mem = memory_metric(mods)
    fig = _new_figure(2 if mem else 1, 2)
    axes = fig.subplots(2 if mem else 1, 2, squeeze=False)
    sweeps = [
        (
            mods["n_tensors"] == fixed_tensors,
            "n_params",
            f"parameters (at {fixed_tensors} tensors)",
        ),
        (
            mods["target_params"] == fixed_params,
            "n_tensors",
            f"parameter tensors (at {fixed_params:,} parameters)",
        ),
    ]
    rows = [("time_module_copy", "time per copy (log scale, bars: IQR)")]
    if mem:
        rows.append((mem, "RSS growth during the copy" if "growth" in mem else "peak RSS"))
    for r, (metric, ylabel) in enumerate(rows):
        for c, (mask, xcol, xlabel) in enumerate(sweeps):
            d = mods[mask & (mods["metric"] == metric)]
            _module_panel(axes[r][c], d, metric, xcol, xlabel, ylabel, bytes_line=r == 1)
    return _finish(fig, title, list(axes.ravel()))


def _module_panel(
    ax, d: pd.DataFrame, metric: str, xcol: str, xlabel: str, ylabel: str, bytes_line: bool
) -> None:
    """One panel of :func:`modules`: each method's ``metric`` against ``xcol``, with the
    float32 parameter bytes beside memory."""
    for method in [m for m in module_method_names() if m in set(d["method"])]:
        g = d[d["method"] == method].sort_values(xcol)
        vals = g["median"].astype(float)
        keep = vals > 0  # log axis: a copy that grew RSS by 0 bytes has no point
        _errorbar(
            ax,
            g[xcol][keep],
            vals[keep],
            g["q25"][keep],
            g["q75"][keep],
            method,
            label=_label(method),
            **_style(method),
        )
    if bytes_line and not d.empty:
        x = sorted(set(d[xcol]))
        n = dict(zip(d[xcol], d["n_params"], strict=True))
        ax.plot(
            x,
            [n[v] * 4 for v in x],
            "k:",
            marker="_",
            markersize=14,
            label="float32 parameter bytes",
        )
    ax.set_xscale("log", base=10 if xcol == "n_params" else 2)
    ax.xaxis.set_major_formatter(FuncFormatter(format_count))
    ax.set_xlabel(f"{xlabel}, log scale")
    ax.set_yscale("log")
    ax.grid(True, which="major", alpha=0.3)
    ax.yaxis.set_minor_formatter(NullFormatter())
    what = xlabel.split(" (")[0]
    if metric.startswith("time"):
        ax.yaxis.set_major_formatter(FuncFormatter(format_seconds))
        ax.set_title(f"time against {what}", fontsize="medium")
    else:
        ax.set_yscale("log", base=2)
        ax.yaxis.set_major_locator(LogLocator(base=8))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.yaxis.set_major_formatter(FuncFormatter(format_bytes))
        ax.set_title(f"memory against {what}", fontsize="medium")
    ax.set_ylabel(ylabel)


# --- torch versions ---------------------------------------------------------------------------


def versions(vt: pd.DataFrame, title: str) -> Figure:
    """Time under each newer torch divided by time under the oldest, per method and size
    (below 1: faster), bars spanning what the two IQRs allow (separate runs: not CIs);
    one panel per dtype and requires_grad,
    contiguous sources."""
    vt = vt[vt["layout"] == "contiguous"]
    panels = [(dt, rg) for dt in dict.fromkeys(vt["dtype"]) for rg in (False, True)]
    panels = [p for p in panels if ((vt["dtype"] == p[0]) & (vt["requires_grad"] == p[1])).any()]
    ncols = 2 if len(panels) > 1 else 1
    nrows = max(1, math.ceil(len(panels) / ncols))
    fig = _new_figure(nrows, ncols)
    axes = fig.subplots(nrows, ncols, squeeze=False, sharex=True, sharey=True).ravel()
    for ax, (dtype, rg) in zip(axes, panels, strict=False):
        d = vt[(vt["dtype"] == dtype) & (vt["requires_grad"] == rg)]
        for method in [m for m in tensor_method_names() if m in set(d["method"])]:
            for v, g in d[d["method"] == method].groupby("version"):
                g = g.sort_values("nbytes")
                _errorbar(
                    ax,
                    g["nbytes"],
                    g["ratio"],
                    g["ratio_lo"],
                    g["ratio_hi"],
                    method,
                    label=_label(method) + (f" (torch {v})" if d["version"].nunique() > 1 else ""),
                    **_style(method),
                )
        ax.axhline(1, color="black", linewidth=0.8)
        _size_axis(ax)
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(partial(format_ratio, digits=2, unit="×")))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_ylabel("time ratio, newer / oldest torch (log)")
        ax.set_title(f"{dtype}, {_grad_text(rg)}", fontsize="medium")
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    return _finish(fig, title, list(axes))


# --- every plot the data allows ---------------------------------------------------------------


@dataclass
class Plot:
    """One figure of the report, with the file name and caption it is published under."""

    slug: str
    title: str
    caption: str
    figure: Figure
    methods: list[str]  # the methods whose data the figure must show
    machine: str = ""
    device: str = ""
    dtype: str = ""


def _slug(*parts: object) -> str:
    return table.plot_slug(*parts)


def all_plots(df: pd.DataFrame, paired: pd.DataFrame | None = None) -> Iterator[Plot]:
    """Every plot the tidy table and the paired comparisons (:func:`table.paired_latest`)
    support: figures per machine and device (and dtype)."""
    cur = table.latest(df)
    times = table.tensor_times(cur)
    machines = list(dict.fromkeys(cur["machine"]))
    multi = len(machines) > 1
    for machine in machines:
        at = (machine, multi)
        pt = paired[paired["machine"] == machine] if paired is not None and len(paired) else None
        if pt is not None:
            yield from _overhead_plots(pt[pt["pair"] == "tracked_clone"], at)
        yield from _tensor_plots(table.newest_torch(times[times["machine"] == machine]), at)
        mods = table.newest_torch(table.module_rows(cur[cur["machine"] == machine]))
        yield from _module_plots(mods, at)
        yield from _version_plots(table.version_table(times[times["machine"] == machine]), at)


def _where(at: tuple[str, bool]) -> tuple[str, str]:
    """(the machine for a plot's slug, `` on MACHINE`` for its title): both empty where the
    results hold one machine."""
    machine, multi = at
    return (machine, f" on {machine}") if multi else ("", "")


def _overhead_plots(pt: pd.DataFrame, at: tuple[str, bool]) -> Iterator[Plot]:
    slug, where = _where(at)
    machine = at[0]
    if not pt.empty:
        n = int(pt["workers"].min())
        yield Plot(
            _slug("overhead", slug, "cpu"),
            f"Tracked-clone overhead: x.clone().detach() against x.detach().clone(){where}",
            "What building (and discarding) the autograd node costs, measured paired: the "
            "two statements alternate in ABBA blocks of about 2 ms, in "
            f"{n} fresh processes; the band is the 95% CI of the median ratio, resampling "
            "whole processes. Left: percent of detach().clone(); right: nanoseconds per "
            "copy. Dashed: the control, the same two statements on a source that does not "
            "require grad (both then do the same work): it should hug zero.",
            paired_overhead(pt, f"Tracked-clone overhead, paired{where}"),
            [TRACKED, UNTRACKED],
            machine,
            "cpu",
        )


def _tensor_plots(tm: pd.DataFrame, at: tuple[str, bool]) -> Iterator[Plot]:
    slug, where = _where(at)
    machine = at[0]
    for (device, dtype), g in tm.groupby(["device", "dtype"], sort=False):
        present = [m for m in tensor_method_names() if m in set(g["method"])]
        yield Plot(
            _slug("time", slug, device, dtype),
            f"Time per copy against size, {dtype} on {device}{where}",
            "Median time of one copy (bars: interquartile range), log-log.",
            time_vs_size(g, f"Time per copy, {dtype} tensors on {device}{where}"),
            present,
            machine,
            device,
            dtype,
        )
        copying = [m for m in present if m in table.copying_methods()]
        yield Plot(
            _slug("bandwidth", slug, device, dtype),
            f"Achieved bandwidth against size, {dtype} on {device}{where}",
            "Bytes read plus bytes written per second. The dashed black line is copy_ into "
            "a preallocated, already-touched buffer: the roof. The gap below it is what "
            "allocation, page faults and autograd bookkeeping cost. Views (detach, data) "
            "copy nothing and are left out.",
            bandwidth_vs_size(g, f"Achieved bandwidth, {dtype} tensors on {device}{where}"),
            copying,
            machine,
            device,
            dtype,
        )


def _module_plots(mods: pd.DataFrame, at: tuple[str, bool]) -> Iterator[Plot]:
    slug, where = _where(at)
    machine = at[0]
    for device, g in mods.groupby("device", sort=False):
        yield Plot(
            _slug("modules", slug, device),
            f"Module copies on {device}{where}",
            "Reference models are stacks of square nn.Linear layers named "
            "parameters x tensors (1e6x512: a million parameters in 512 tensors). Bars: "
            "interquartile range. Memory is the growth of peak RSS during one copy; a copy "
            "that grew it by nothing (e.g. into an existing model) has no point on the log "
            "axis.",
            modules(g, f"Copying a model, {device}{where}"),
            [m for m in module_method_names() if m in set(g["method"])],
            machine,
            device,
        )


def _version_plots(vt: pd.DataFrame, at: tuple[str, bool]) -> Iterator[Plot]:
    slug, where = _where(at)
    machine = at[0]
    if not vt.empty:
        for device, g in vt.groupby("device", sort=False):
            base = g["baseline"].iloc[0]
            yield Plot(
                _slug("versions", slug, device),
                f"torch {', '.join(dict.fromkeys(g['version']))} against torch {base}, "
                f"{device}{where}",
                "Median time under the newer torch divided by the median under the oldest "
                "(bars: from one's lower quartile against the other's upper, and back). "
                "Below 1: the newer torch is faster. The versions ran one after the other, "
                "not interleaved: these are not verdicts (copybench gate gives one).",
                versions(g, f"torch versions against {base}, {device}{where}"),
                [m for m in tensor_method_names() if m in set(g["method"])],
                machine,
                device,
            )


# --- trends: the archived nights ----------------------------------------------------------------

# The gid of the marks where a machine's torch differs from its previous night's.
TORCH_CHANGE = "torch-change"


def night_axis(d: pd.DataFrame) -> pd.DataFrame:
    """One row per night in ``d`` (night, date, torch_version), oldest first: the nightly
    names a night's file by its UTC stamp, so the names sort by date."""
    cols = ["night", "date", "torch_version"]
    n = d[cols].drop_duplicates("night").sort_values("night", kind="stable")
    return n.reset_index(drop=True)


def torch_changes(nights: pd.DataFrame) -> list[tuple[int, str, str]]:
    """(position, previous torch, torch) of each night (of one machine, in order) whose torch
    differs from the night before it: where a step is expected."""
    v = list(nights["torch_version"])
    return [(i, v[i - 1], v[i]) for i in range(1, len(v)) if v[i] != v[i - 1]]


def _night_ticks(ax, nights: pd.DataFrame, changes: list[tuple[int, str, str]]) -> None:
    n = len(nights)
    # Every night's tick, labelled up to ~16 of them (and every torch change) so that a year
    # of nights stays readable.
    step = max(1, math.ceil(n / 16))
    shown = {i for i in range(0, n, step)} | {c[0] for c in changes} | {n - 1}
    ax.set_xticks(range(n))
    ax.set_xticklabels(
        [
            f"{r.date}\ntorch {_text(r.torch_version)}" if i in shown else ""
            for i, r in enumerate(nights.itertuples())
        ],
        fontsize=NOTE_PT,
        rotation=0 if len(shown) <= 6 else 90,
    )
    ax.set_xlim(-0.5, n - 0.5)
    ax.set_xlabel("night (oldest first)")


def _mark_changes(ax, changes: list[tuple[int, str, str]], annotate: bool) -> None:
    for i, old, new in changes:
        ax.axvline(i - 0.5, color="black", linestyle=":", linewidth=1.2, gid=TORCH_CHANGE)
        if annotate:
            ax.annotate(
                f"torch {_text(old)} → {_text(new)}",
                (i - 0.5, 1),
                xycoords=("data", "axes fraction"),
                textcoords="offset points",
                xytext=(-2, -3),
                rotation=90,
                ha="right",
                va="top",
                fontsize=NOTE_PT,
                gid=TORCH_CHANGE,
            )


def trend(times: pd.DataFrame, title: str, overhead: pd.DataFrame | None = None) -> Figure:
    """Each night's median time per copy against the night, one line per method (bars: the
    night's interquartile range), on a linear axis from zero so that a step reads as a
    ratio; the x axis holds the nights in order, each labelled with its date and torch, and
    a dotted vertical line stands where a machine's torch differs from its previous night's.
    Where ``overhead`` holds the nights' paired comparison (``overhead_pct`` with
    ``ci_low_pct``/``ci_high_pct``, ``base`` and ``head``), a second row draws it.

    One row (two with the overhead) per machine: each machine's nights are an axis of their
    own, never joined with another machine's.  Both frames carry ``machine``, ``night``
    (sorting by date), ``date`` and ``torch_version``; ``times`` also ``method``,
    ``median``, ``q25`` and ``q75``.
    """
    over = overhead if overhead is not None and not overhead.empty else None
    frames = [times] + ([over] if over is not None else [])
    machines = list(dict.fromkeys(m for f in frames for m in f["machine"]))
    nights = {m: night_axis(pd.concat([f[f["machine"] == m] for f in frames])) for m in machines}
    per = 2 if over is not None else 1
    widest = max((len(n) for n in nights.values()), default=1)
    fig = _new_figure(per * len(machines), 1, width=max(8.0, 4.0 + 0.3 * widest))
    axes = fig.subplots(per * len(machines), 1, squeeze=False)[:, 0]
    for c, machine in enumerate(machines):
        n = nights[machine]
        where = f"{_text(machine)}: " if len(machines) > 1 else ""
        _trend_times(axes[per * c], times[times["machine"] == machine], n, where)
        if over is not None:
            _trend_overhead(axes[per * c + 1], over[over["machine"] == machine], n, where)
    return _finish(fig, title, list(axes))


def _trend_times(ax, mine: pd.DataFrame, n: pd.DataFrame, where: str) -> None:
    """A machine's time row of :func:`trend`: each method's median night by night."""
    pos = pd.Series(range(len(n)), index=n["night"])
    changes = torch_changes(n)
    order = [*tensor_method_names(), *module_method_names()]
    for method in [m for m in order if m in set(mine["method"])]:
        g = mine[mine["method"] == method].drop_duplicates("night", keep="last")
        g = g.set_index("night").reindex(n["night"])  # a night without it: a gap
        _errorbar(
            ax,
            pos.to_numpy(),
            g["median"],
            g["q25"],
            g["q75"],
            method,
            label=_label(method),
            **_style(method),
        )
    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_formatter(FuncFormatter(format_seconds))
    ax.set_ylabel("median time per copy (linear, bars: IQR)")
    ax.set_title(f"{where}time per copy, night by night", fontsize="medium")
    ax.grid(True, axis="y", alpha=0.3)
    _night_ticks(ax, n, changes)
    _mark_changes(ax, changes, annotate=True)


def _trend_overhead(ax, o: pd.DataFrame, n: pd.DataFrame, where: str) -> None:
    """A machine's overhead row of :func:`trend`: the paired comparison night by night."""
    pos = pd.Series(range(len(n)), index=n["night"])
    changes = torch_changes(n)
    o = o.drop_duplicates("night", keep="last")
    if not o.empty:
        head, base = o["head"].iloc[0], o["base"].iloc[0]
        o = o.set_index("night").reindex(n["night"])
        _errorbar(
            ax,
            pos.to_numpy(),
            o["overhead_pct"],
            o["ci_low_pct"],
            o["ci_high_pct"],
            f"overhead-{head}-{base}",
            label="paired overhead, per night (bars: 95% CI)",
            color="black",
            marker="s",
        )
        ax.set_ylabel(f"extra time (% of {_code(base)})")
        ax.set_title(f"{where}paired: {_code(head)} over {_code(base)}", fontsize="medium")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.grid(True, axis="y", alpha=0.3)
    _night_ticks(ax, n, changes)
    _mark_changes(ax, changes, annotate=False)


def _code(method: str) -> str:
    return METHODS[method].code.splitlines()[0] if method in METHODS else str(method)


def night_summary(nights: pd.DataFrame) -> str:
    """The nights of one machine in words: how many, from when to when, and each torch
    change."""
    n = night_axis(nights)
    first, last = n.iloc[0], n.iloc[-1]
    text = (
        f"{len(n)} nights, {first['date']} (torch {first['torch_version']}) to "
        f"{last['date']} (torch {last['torch_version']})"
    )
    changes = torch_changes(n)
    if changes:
        text += "; torch changed " + ", ".join(
            f"on {n['date'].iloc[i]} ({old} to {new})" for i, old, new in changes
        )
    else:
        text += "; one torch throughout"
    return text


def trend_plots(nights: table.Nights) -> Iterator[Plot]:
    """One trend per headline family (:func:`table.headline_families`) with data, over the
    machines that have two nights or more."""
    machines = nights.trend_machines()
    times = nights.times[nights.times["machine"].isin(machines)]
    over = nights.overhead[nights.overhead["machine"].isin(machines)]
    multi = len(machines) > 1
    for f in table.headline_families():
        t = times[times["family"] == f.slug] if "family" in times else times.iloc[:0]
        o = over[over["family"] == f.slug] if "family" in over else over.iloc[:0]
        if t.empty and o.empty:
            continue
        present = [m for m in f.methods if m in set(t["method"])]
        shown = [m for m in machines if m in set(t["machine"]) | set(o["machine"])]
        per = "; ".join(
            (f"{m}: " if multi else "")
            + night_summary(nights.nights[nights.nights["machine"] == m])
            for m in shown
        )
        below = ""
        if not o.empty:
            head, base = o["head"].iloc[0], o["base"].iloc[0]
            below = (
                f" Below: {_code(head)} against {_code(base)}, measured paired on the "
                "nights that ran the paired study (bars: 95% CI, resampling whole processes)."
            )
        yield Plot(
            _slug("trend", f.slug),
            f"Trend: {f.title}",
            "Each archived night's median time per copy (bars: interquartile range), on a "
            "linear axis from zero, so that a step reads as a ratio; the nights in order, "
            "labelled with date and torch; a dotted vertical line where the torch differs "
            "from the machine's previous night's."
            + below
            + (" One row per machine, each with its own nights." if multi else "")
            + f" Nights: {per}.",
            trend(t, f"Trend: {f.title}", o),
            present,
        )
