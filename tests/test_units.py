"""copybench.suite.units, the one place numbers are printed: each formatter at zero, below zero,
at its unit boundaries and on what is not a number; as a matplotlib tick formatter on a real
Agg-drawn figure; and the same value printed alike by every path that shows one (compare,
the nightly's summary, the report's plots, findings and HTML, the GPU figures)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from copybench.suite.units import (
    NOT_A_NUMBER,
    format_bandwidth,
    format_bytes,
    format_count,
    format_percent,
    format_ratio,
    format_seconds,
    format_value,
)

ROOT = Path(__file__).resolve().parents[1]
NOT_NUMBERS = [math.nan, math.inf, -math.inf, None, "fast", np.float64("nan")]
FORMATTERS = [
    format_seconds,
    format_bytes,
    format_count,
    format_bandwidth,
    format_percent,
    format_ratio,
]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"),
        (0.0, "0 s"),
        (1e-9, "1 ns"),
        (450e-9, "450 ns"),
        (999e-9, "999 ns"),
        (999.7e-9, "1 µs"),  # rounds up to the next unit: printed in it
        (1e-6, "1 µs"),
        (1.914e-6, "1.91 µs"),
        (12.34e-3, "12.3 ms"),
        (1.5, "1.5 s"),
        (12_345.0, "12,345 s"),
        (-450e-9, "-450 ns"),
        (-1.914e-6, "-1.91 µs"),
        (-999.7e-9, "-1 µs"),
    ],
)
def test_seconds(seconds, text):
    assert format_seconds(seconds) == text


def test_seconds_signed_and_digits():
    assert format_seconds(1.41e-6, signed=True) == "+1.41 µs"
    assert format_seconds(-1.41e-6, signed=True) == "-1.41 µs"
    assert format_seconds(0, signed=True) == "0 s"
    assert format_seconds(1.23456e-3, digits=5) == "1.2346 ms"


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0 B"),
        (1, "1 B"),
        (1023, "1,023 B"),
        (1023.7, "1 KiB"),
        (1024, "1 KiB"),
        (4096, "4 KiB"),
        (2**20 - 1, "1 MiB"),
        (2**20, "1 MiB"),
        (128 * 2**20, "128 MiB"),
        (1.5 * 2**30, "1.5 GiB"),
        (2**40, "1,024 GiB"),
        (-4096, "-4 KiB"),
        (np.int64(2**25), "32 MiB"),
    ],
)
def test_bytes(n, text):
    assert format_bytes(n) == text


@pytest.mark.parametrize(
    ("n", "text"),
    [(0, "0"), (8, "8"), (999, "999"), (999.9, "1k"), (1000, "1k"), (10_000, "10k")]
    + [(1e6, "1M"), (1e7, "10M"), (1.25e9, "1.25G"), (-2500, "-2.5k")],
)
def test_count(n, text):
    assert format_count(n) == text


@pytest.mark.parametrize(
    ("rate", "text"),
    [(0, "0 GB/s"), (12.34e9, "12.3 GB/s"), (3.35232e12, "3,352 GB/s"), (-1e9, "-1 GB/s")],
)
def test_bandwidth(rate, text):
    assert format_bandwidth(rate) == text


def test_percent():
    assert format_percent(0) == "0.0%"
    assert format_percent(38.3) == "38.3%"
    assert format_percent(-2) == "-2.0%"
    assert format_percent(38.3, signed=True) == "+38.3%"
    assert format_percent(-2, signed=True) == "-2.0%"
    assert format_percent(87.6, digits=0) == "88%"


def test_ratio():
    assert format_ratio(0) == "0.000"
    assert format_ratio(1.5) == "1.500"
    assert format_ratio(-0.5) == "-0.500"
    assert format_ratio(2.5, digits=1, unit="×") == "2.5×"
    assert format_ratio(1.0, digits=2, unit="x") == "1.00x"
    assert format_ratio(math.nan, unit="×") == NOT_A_NUMBER


@pytest.mark.parametrize("fmt", FORMATTERS)
@pytest.mark.parametrize("x", NOT_NUMBERS, ids=repr)
def test_what_is_not_a_number_prints_na(fmt, x):
    assert fmt(x) == NOT_A_NUMBER == "n/a"


def test_value_in_its_unit():
    assert format_value(1e-6, "seconds") == format_seconds(1e-6) == "1 µs"
    assert format_value(4096, "bytes") == format_bytes(4096) == "4 KiB"
    assert format_value(123_456.7, "instructions") == "123,457"
    assert format_value(1.23456, "instructions") == "1.235"
    assert format_value(math.nan, "instructions") == NOT_A_NUMBER


def _drawn(ax) -> None:
    ax.figure.canvas.draw()


def _labels(axis) -> dict[float, str]:
    """Each visible major tick of a drawn axis and its label."""
    lo, hi = sorted(axis.get_view_interval())
    return {
        t.get_loc(): t.label1.get_text()
        for t in axis.get_major_ticks()
        if lo <= t.get_loc() <= hi and t.label1.get_visible()
    }


@pytest.mark.parametrize(
    ("fmt", "values", "expected"),
    [
        (format_seconds, [1e-9, 1e-3], {"1 ns", "1 µs", "1 ms"}),
        (format_bytes, [1, 2**30], {"1 B", "1 KiB", "1 MiB", "1 GiB"}),
        (format_count, [1, 1e7], {"1", "1k", "1M", "10M"}),
        (format_bandwidth, [1e8, 1e12], {"0.1 GB/s", "1 GB/s", "1,000 GB/s"}),
    ],
)
def test_a_tick_formatter_on_a_drawn_log_axis(fmt, values, expected):
    fig = Figure()
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.plot(values, values)
    ax.set_yscale("log", base=2 if fmt is format_bytes else 10)
    if fmt is format_bytes:
        from matplotlib.ticker import LogLocator

        ax.yaxis.set_major_locator(LogLocator(base=1024))
    ax.yaxis.set_major_formatter(FuncFormatter(fmt))
    _drawn(ax)
    labels = _labels(ax.yaxis)
    assert labels, "the axis drew no tick"
    assert all(text == fmt(loc) for loc, text in labels.items())
    assert expected <= set(labels.values())


def test_a_tick_formatter_on_a_linear_axis_from_zero():
    fig = Figure()
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.plot([0, 1, 2], [0, 2e-6, -1e-6])
    ax.yaxis.set_major_formatter(FuncFormatter(format_seconds))
    _drawn(ax)
    labels = _labels(ax.yaxis)
    assert all(text == format_seconds(loc) for loc, text in labels.items())
    # matplotlib places the 1 µs tick at 9.999999999999997e-07: it rounds up to "1 µs".
    assert {"0 s", "500 ns", "1 µs", "-1 µs", "2 µs"} <= set(labels.values())


# --- one value, every path ----------------------------------------------------------------


def _comparison(value: float, unit: str) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "benchmark": "time_tensor_copy",
                "case": "clone-1024-float32-grad-contiguous-cpu-t1",
                "unit": unit,
                "asv_name": "x",
                "base_median": value,
                "head_median": 2 * value,
                "ratio": 2.0,
                "ci_low": 1.5,
                "ci_high": 2.5,
                "p": 0.01,
                "n_base": 5,
                "n_head": 5,
                "processes": 5,
                "verdict": "regressed",
            }
        ]
    )


@pytest.mark.parametrize(
    ("value", "unit", "fmt"),
    [(1e-6, "seconds", format_seconds), (4096, "bytes", format_bytes)],
)
def test_compare_and_the_nightly_print_a_value_alike(value, unit, fmt):
    from copybench.jobs.nightly import changes_markdown
    from copybench.results.compare import render

    t = _comparison(value, unit)
    want = [fmt(value), fmt(2 * value), "2.000 [1.500, 2.500]"]
    text = render(t, "text").splitlines()[2]
    md = render(t, "markdown").splitlines()[-1]
    night = changes_markdown(t, "t", "the gate").splitlines()[-1]
    for line in (text, md, night):
        assert all(w in line for w in want), line
    assert [c.strip() for c in md.split("|")[3:6]] == want
    assert [c.strip() for c in night.split("|")[2:5]] == want


def test_plots_findings_and_html_print_a_value_alike():
    """One second value, 1 µs, as a plot's tick, in a finding, in the tidy table and in the
    across-machines table; one size, 1 KiB, as a plot's tick."""
    from copybench.report import html, plots
    from copybench.report.findings import cost_text

    v = 1e-6
    want = format_seconds(v)
    assert want == "1 µs"

    times = pd.DataFrame(
        {
            "method": "clone",
            "layout": "contiguous",
            "requires_grad": False,
            "numel": [2**8, 2**16],
            "nbytes": [2**10, 2**18],
            "median": [v, 100 * v],
            "q25": [v, 100 * v],
            "q75": [v, 100 * v],
        }
    )
    fig = plots.time_vs_size(times, "t")
    fig.canvas.draw()
    (ax,) = [a for a in fig.axes if a.get_visible() and a.lines]
    assert _labels(ax.yaxis)[v] == want
    assert _labels(ax.xaxis)[1024.0] == format_bytes(1024) == "1 KiB"

    row = {"overhead_pct": 38.3, "ci_low_pct": 30.0, "ci_high_pct": 45.0, "overhead_ns": v * 1e9}
    finding = cost_text(pd.Series(row))
    assert f"({want})" in finding, finding
    assert f"costs {format_percent(38.3)} " in finding
    assert format_percent(30.0, signed=True) in finding

    tidy = pd.DataFrame(
        [{"machine": "m", "method": "clone", "median": v, "iqr": v / 10, "unit": "seconds"}]
    )
    page = html.tidy_table(tidy)
    assert f'<td class="num">{want}</td>' in page
    assert f'<td class="num">{format_seconds(v / 10)}</td>' in page

    across = pd.DataFrame(
        [
            {
                "family": "f",
                "method": "clone",
                "machine": m,
                "case": "c",
                "median": v * k,
                "ratio": k,
            }
            for m, k in (("a", 1.0), ("b", 2.5))
        ]
    )
    machines = [{"machine": m, "torch_version": "2"} for m in ("a", "b")]
    page = html.machines_table(across, machines)
    assert f'<td class="num">{want}</td>' in page
    assert f'<td class="num">{format_ratio(2.5, digits=2, unit="×")}</td>' in page


def test_the_gpu_figures_print_through_units():
    from copybench.report.gpu_figures import format_figures

    fig = json.loads((ROOT / "tests/data/gpu-figures-h100.json").read_text())
    text = format_figures(fig)
    clone = fig["bandwidth"]["clone"]
    assert f"| {format_seconds(clone['seconds']['median'])} |" in text
    assert f"| {format_bandwidth(clone['bandwidth'])} |" in text
    o = next(iter(fig["overhead"].values()))
    assert f"| {format_percent(o['overhead_pct'], signed=True)} |" in text
    assert f"| {format_seconds(o['overhead_ns'] * 1e-9, signed=True)} |" in text
