"""``copybench report``, built from results of small real asv runs made here.

Two runs feed the report: one through ``copybench run`` (the way users make results), and
one straight through asv on a machine whose recorded name and CPU look like HTML injection,
with ``--record-samples`` (so both the summary and the bootstrap statistics are exercised).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from copybench.formats import ENV_SUFFIX, PAIRED_SUFFIX
from copybench.measure.asvrun import Selection, bench_regexes, config_copy
from copybench.report import plots, table
from copybench.report.build import build_report
from copybench.report.findings import SITUATIONS, decisions, findings, paired_findings
from copybench.results.tidy import load_paired, load_results
from copybench.suite import cases

EVIL_MACHINE = "<img src=x onerror=alert(1)>&'\""
EVIL_CPU = "<script>alert('cpu')</script>"
TENSOR_METHODS = ["clone_detach", "detach_clone", "copy_into", "clone"]
MODULE_METHODS = ["deepcopy_module", "state_dict_snapshot"]
# The fixture's two machines have different CPU models (one is EVIL_CPU).
DIFFERENT = ("--allow-different-machines",)


def _config(root: Path, tmp: Path) -> Path:
    return config_copy(root, tmp / "results", tmp / "html", tmp)


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return r


@pytest.fixture(scope="module")
def results(root, tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("report")
    config = _config(root, tmp)
    args = [sys.executable, "-m", "copybench", "run", "--config", str(config)]
    for m in TENSOR_METHODS + MODULE_METHODS:
        args += ["--method", m]
    args += ["--size", "1024", "--size", "1048576", "--dtype", "float32"]
    args += ["--model", "1e4x8", "--model", "1e6x2"]
    _run(args, cwd=root)

    # The second machine, its name and CPU chosen to break unescaped HTML.
    home = tmp / "home"
    home.mkdir()
    env = dict(os.environ, HOME=str(home))
    asv = [sys.executable, "-m", "asv"]
    machine = ["--machine", EVIL_MACHINE, "--cpu", EVIL_CPU, "--config", str(config)]
    _run([*asv, "machine", "--yes", *machine], cwd=root, env=env)
    commit = _run(["git", "rev-parse", "HEAD"], cwd=root).stdout.strip()
    sel = Selection(methods=["clone_detach", "detach_clone"], sizes=[1024], dtypes=["float32"])
    cmd = [*asv, "run", "--config", str(config), "-E", "existing:same", "--set-commit-hash", commit]
    cmd += ["--machine", EVIL_MACHINE, "--record-samples"]
    for regex in bench_regexes(sel):
        cmd += ["--bench", regex]
    # A benchmark whose thread parameter is "all" (a string beside the ints elsewhere).
    cmd += ["--bench", r"AllocatorCopy\.\w+\('copy_into', 1048576, 'all'\)"]
    _run(cmd, cwd=root, env=env)
    _store_paired(tmp / "results")
    return tmp / "results"


# The paired comparisons `copybench run` measures when nothing narrows it (minutes), here a
# few of them in two fresh processes, stored beside the first machine's results as it does.
PAIRED = {
    ("tracked_clone", 1024),
    ("tracked_clone", 1048576),
    ("clone_vs_copy_into", 1024),
    ("deepcopy_vs_snapshot", "1e4x8"),
    ("deepcopy_vs_load_state_dict", "1e4x8"),
}


def _store_paired(results: Path) -> None:
    from copybench.measure.asvrun import write_paired
    from copybench.measure.study import comparisons, measure_comparisons

    wanted = [
        c
        for c in comparisons()
        if (c.pair, c.numel or c.model) in PAIRED
        and c.dtype in (None, "float32")
        and c.layout in (None, "contiguous")
    ]
    records = measure_comparisons(wanted, workers=2, budget=0.04)
    (machine,) = [d for d in results.iterdir() if d.is_dir() and EVIL_MACHINE not in d.name]
    (f,) = [p for p in machine.glob("*.json") if p.name != "machine.json"]
    write_paired(f, records)


def _run_file(machine_dir: Path) -> Path:
    (f,) = [p for p in machine_dir.glob("*.json") if p.name != "machine.json"]
    return f


# The archive made from these results: (day, torch, whose run) per night.
NIGHTS = [(1, "2.0", "mine"), (2, "2.0", "evil"), (3, "2.0", "mine"), (4, "99.0", "mine")]


@pytest.fixture(scope="module")
def archive(results, tmp_path_factory) -> Path:
    """The nightly's archive, as copybench.jobs.nightly writes it, made of these real results:
    the first machine's run (its paired study beside it) as three nights, the third under a
    relabelled torch; the second machine's as one night."""
    dest = tmp_path_factory.mktemp("archive") / "nightly"
    dest.mkdir()
    shutil.copy(results / "benchmarks.json", dest)
    runs = {
        "evil" if EVIL_MACHINE in d.name else "mine": _run_file(d)
        for d in results.iterdir()
        if d.is_dir()
    }
    for day, torch, whose in NIGHTS:
        f = runs[whose]
        stamp = f"202501{day:02d}T020000Z"
        name = f"{stamp}-{whose}-torch{torch}-abcdef12.json"
        shutil.copy(f, dest / name)
        paired = f.with_name(f.name + PAIRED_SUFFIX)
        if paired.is_file():
            shutil.copy(paired, dest / (name + PAIRED_SUFFIX))
        machine = json.loads(f.read_text())["params"]["machine"]
        side = {"night": stamp, "torch_version": torch, "machine": machine, "cpu": "x"}
        (dest / (name + ENV_SUFFIX)).write_text(json.dumps(side))
    return dest


@pytest.fixture(scope="module")
def report(results, archive, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    html_dir = out / "asv-html"  # asv's published site, linked relative to the report
    html_dir.mkdir()
    (html_dir / "index.html").write_text("<html></html>")
    return build_report(
        [results], out / "r", html_dir, nights=archive, allow_different_machines=True
    )


def test_report_files_and_csv(results, report):
    assert report.index.is_file() and report.csv.is_file()
    import pandas as pd

    csv = pd.read_csv(report.csv)
    df = load_results([results])
    assert len(csv) == len(df), "every measurement, skips included, is in the CSV"
    for col in ["method", "numel", "nbytes", "dtype", "layout", "device", "requires_grad"]:
        assert col in csv
    for col in ["torch_version", "machine", "median", "iqr", "n_samples", "unit", "unstable"]:
        assert col in csv
    skipped = csv[csv["status"] == "skipped"]
    assert len(skipped) and skipped["skip_reason"].notna().all()
    assert csv.loc[csv["status"] == "ok", "skip_reason"].isna().all()
    one = skipped[
        (skipped["numel"] == 1) & (skipped["layout"] == "transposed") & (skipped["device"] == "cpu")
    ]
    assert len(one)
    assert (one["skip_reason"] == "a 1-element tensor cannot be non-contiguous").all()
    assert set(csv["machine"]) == set(df["machine"]) and EVIL_MACHINE in set(csv["machine"])
    # Plots live in the page only (inlined), not a second time beside it.
    assert sorted(p.name for p in report.index.parent.iterdir()) == ["index.html", "results.csv"]


def _methods_with_data(fig) -> set[str]:
    out = set()
    for ax in fig.axes:
        for line in ax.lines:
            if line.get_gid() and len(line.get_xdata()) > 0:
                out.add(line.get_gid())
    return out


def test_each_plot_holds_every_method_present(results):
    df = load_results([results])
    cur = table.latest(df)
    paired = table.paired_latest(load_paired([results]))
    made = list(plots.all_plots(df, paired))
    kinds = {p.slug.split("-")[0] for p in made}
    assert {"overhead", "time", "bandwidth", "modules"} <= kinds
    for p in made:
        here = cur[(cur["machine"] == p.machine) & (cur["device"] == p.device)]
        kind = p.slug.split("-")[0]
        if kind in ("time", "bandwidth"):
            t = table.tensor_times(here)
            present = set(t[t["dtype"] == p.dtype]["method"])
            if kind == "bandwidth":
                present &= set(table.copying_methods())
                assert cases.ROOF in present or p.machine == EVIL_MACHINE
            assert set(p.methods) == present
            assert _methods_with_data(p.figure) == present, p.slug
        elif kind == "modules":
            present = set(table.module_rows(here)["method"])
            assert present == set(MODULE_METHODS)
            assert _methods_with_data(p.figure) == present, p.slug
        elif kind == "overhead":
            # From the paired comparisons only: one series per dtype and layout measured,
            # and its control beside it.
            o = paired[(paired["machine"] == p.machine) & (paired["pair"] == "tracked_clone")]
            series = {
                f"{d}-{'control' if c else 'grad'}-{lay}"
                for d, c, lay in zip(o.dtype, o.control, o.layout, strict=True)
            }
            assert len(series) == 2 and _methods_with_data(p.figure) == series, p.slug
            assert all(ax.get_yscale() == "linear" for ax in p.figure.axes)
        for ax in p.figure.axes:
            if ax.get_visible() and ax.lines:
                assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()
        assert p.figure.get_suptitle()
        assert p.figure.legends, f"{p.slug} has no legend"


def _overhead_rows(ns: dict[int, tuple[float, float]]) -> pd.DataFrame:
    """The tracked clone's paired rows of one dtype and layout: per size (elements), the
    overhead in ns and the half width of its CI; the control beside it at zero, as wide.
    The base copy takes 2 us + 1 ns a byte."""
    rows = []
    for numel, (over, half) in ns.items():
        nbytes = 4 * numel
        base = 2000 + nbytes
        for control in (False, True):
            est = 0.0 if control else over
            rows.append(
                {
                    "machine": "m",
                    "pair": "tracked_clone",
                    "control": control,
                    "kind": "tensor",
                    "numel": numel,
                    "nbytes": nbytes,
                    "dtype": "float32",
                    "layout": "contiguous",
                    "overhead_ns": est,
                    "overhead_ns_low": est - half,
                    "overhead_ns_high": est + half,
                    "overhead_pct": 100 * est / base,
                    "ci_low_pct": 100 * (est - half) / base,
                    "ci_high_pct": 100 * (est + half) / base,
                }
            )
    return pd.DataFrame(rows)


def test_the_overhead_shows_its_nanoseconds_where_they_are_resolved():
    # ~600 ns resolved at the small sizes; at 4 MiB and 128 MiB, noise of thousands and
    # hundreds of thousands of ns (as on this machine).  One linear axis over all of them
    # would run to +-600,000 ns and put the 600 ns on the zero line.
    small = {1: (610, 40), 2**5: (590, 40), 2**10: (600, 50), 2**15: (640, 90)}
    pt = _overhead_rows({**small, 2**20: (-2500, 6000), 2**25: (600_000, 900_000)})
    fig = plots.paired_overhead(pt, "overhead")
    relative, absolute = fig.axes[:2]
    low, high = absolute.get_ylim()
    assert low <= 0 and high >= max(o for o, _ in small.values())
    assert high - low < 4 * 640, "600 ns is a sixth of the panel or more"
    # The sizes off that scale are marked on its edge (a hollow triangle, no series of its
    # own) and named in the title; the relative panel keeps every size.
    marks = [line for line in absolute.lines if line.get_marker() in ("^", "v")]
    assert all(line.get_gid() is None and line.get_linestyle() == "None" for line in marks)
    marked = {x for line in marks for x in line.get_xdata()}
    assert marked == {4 * 2**20, 4 * 2**25}
    assert all(y in (low, high) for line in marks for y in line.get_ydata())
    assert "4 MiB, 128 MiB" in absolute.get_title()
    assert relative.get_ylim()[0] < pt["overhead_pct"].min()
    # The control is told apart by colour and marker, not only by its dash.
    by_gid = {line.get_gid(): line for line in absolute.lines if line.get_gid()}
    grad, control = by_gid["float32-grad-contiguous"], by_gid["float32-control-contiguous"]
    assert control.get_linestyle() != grad.get_linestyle()
    assert control.get_color() != grad.get_color()
    assert control.get_marker() != grad.get_marker()


def test_plot_text_is_readable_and_every_legend_fits(results, archive):
    """Every figure's smallest text is 10 px or more at the resolution the page inlines it
    at (the page shows it at that size: scripts/check_report.py checks it as shown), and
    no legend runs past its figure's edges."""
    from copybench.report import html

    df = load_results([results])
    made = [
        *plots.all_plots(df, table.paired_latest(load_paired([results]))),
        *plots.trend_plots(table.load_nights(archive)),
    ]
    assert {p.slug.split("-")[0] for p in made} >= {"overhead", "time", "modules", "trend"}
    for p in made:
        shown = html.render_plot(p.slug, p.title, p.caption, p.figure)
        assert shown.min_font_px >= 10, (p.slug, shown.min_font_px)
        assert shown.png.startswith(b"\x89PNG")
        fig = p.figure.bbox
        for legend in p.figure.legends:
            box = legend.get_window_extent()
            assert fig.x0 <= box.x0 and box.x1 <= fig.x1, p.slug


def test_headline_finding_is_computed_from_the_paired_data(results):
    df = load_results([results])
    paired = table.paired_latest(load_paired([results]))
    texts = [f.text for f in findings(df, paired)]
    t = table.beside_control(paired, "tracked_clone")
    (row,) = [r for _, r in t.iterrows() if r["nbytes"] == 4096]
    (mine,) = [s for s in texts if s.startswith("At 4 KiB")]
    ci = f"95% CI {row['ci_low_pct']:+.1f}% to {row['ci_high_pct']:+.1f}%"
    if row["ci_low_pct"] > table.CONTROL_TOLERANCE_PTS:
        assert f"costs {row['overhead_pct']:.1f}% (" in mine and ci in mine, mine
    elif row["ci_high_pct"] < -table.CONTROL_TOLERANCE_PTS:  # a busy machine's doing
        assert f"costs {-row['overhead_pct']:.1f}% (" in mine and ") less (" in mine, mine
        assert ci in mine, mine
    else:
        assert f"indistinguishable here ({ci})" in mine, mine
    assert "2 fresh processes" in mine and "control (no grad) 95% CI" in mine
    # Nothing is ranked from independent medians.
    assert not any("fastest" in s for s in texts)
    assert any("unstable" in s for s in texts)
    # Without paired comparisons the page says so instead of comparing medians.
    alone = [f.text for f in findings(df)]
    assert any("no paired comparisons" in s for s in alone)
    assert not any(s.startswith("At 4 KiB") for s in alone)


def test_the_decision_table_answers_from_the_paired_data(results):
    paired = table.paired_latest(load_paired([results]))
    got = decisions(paired, [])
    assert [d.situation for d in got] == [s for s, _, _ in SITUATIONS]
    for d in got:
        assert "95% CI" in d.cost and d.caveat and d.code
    tensor = next(d for d in got if d.situation.startswith("A detached copy"))
    assert "x.clone().detach() against x.detach().clone(): at 4 KiB" in tensor.cost


def _model_rows(pair: str, pct: dict[str, float]) -> pd.DataFrame:
    """A module pair's rows, head against base, per reference model: the overhead in
    percent with a CI of +-1 point; each control at zero."""
    rows = []
    for model, over in pct.items():
        for control in (False, True):
            est = 0.0 if control else over
            rows.append(
                {
                    "machine": "m",
                    "torch_version": "2",  # as the paired table has it
                    "pair": pair,
                    "control": control,
                    "kind": "module",
                    "model": model,
                    "overhead_pct": est,
                    "ci_low_pct": est - 1,
                    "ci_high_pct": est + 1,
                    "overhead_ns": est * 1e3,
                }
            )
    return pd.DataFrame(rows)


def test_the_decision_table_names_what_decides():
    # deepcopy ahead only at 1e6x512, the model of most tensors: what decides is the
    # tensor count, not the size (a 1e6x512 model is no larger than 1e6x8).
    every = {m: 30.0 for m in cases.MODELS}
    (d,) = decisions(_model_rows("deepcopy_vs_load_state_dict", {**every, "1e6x512": -8.0}), [])
    assert d.code == "other.load_state_dict(model.state_dict()) or copy.deepcopy(model)"
    assert d.when.startswith("by tensor count: copy.deepcopy(model) is cheaper at 512 tensors")
    assert "(1e6x512)" in d.when and "2 to 32 tensors" in d.when
    assert "model 1e6x512 costs 8.0%" in d.cost, "the cost column shows the side that wins"
    # Ahead only at the model of most parameters: the parameter count decides.
    (d,) = decisions(_model_rows("deepcopy_vs_load_state_dict", {**every, "1e7x8": -8.0}), [])
    assert d.when.startswith("by parameter count: copy.deepcopy(model) is cheaper at ")
    # Ahead at a model of few and one of many tensors, behind between: no column decides.
    split = {**every, "1e6x2": -8.0, "1e6x512": -8.0}
    (d,) = decisions(_model_rows("deepcopy_vs_load_state_dict", split), [])
    assert d.when.startswith("by the case (no one case column")
    # One side everywhere: no "when".
    (d,) = decisions(_model_rows("deepcopy_vs_load_state_dict", every), [])
    assert d.code == "other.load_state_dict(model.state_dict())" and not d.when


def _paired_rows(worker_ratios: dict[str, list[float]]) -> pd.DataFrame:
    """A paired table of two comparisons from synthetic processes: each process's quads
    all give the ratio listed for it (base 1 us a call)."""
    from copybench.measure.paired import PairedResult, combine_workers

    rows = []
    for ident, ratios in worker_ratios.items():
        per = [
            PairedResult(
                "detach_clone", "clone_detach", r, r, r, 0, 0, 0, 1e3, r * 1e3, 4, 1, 1,
                "cpu", 0.1, (r,) * 4, (1e-6,) * 4, (r * 1e-6,) * 4,
            )
            for r in ratios
        ]  # fmt: skip
        control = ident.endswith("control")
        rows.append(
            {
                "machine": "m",
                "torch_version": "2",
                "id": ident,
                "pair": "tracked_clone",
                "control": control,
                "kind": "tensor",
                "numel": 1024,
                "nbytes": 4096,
                "dtype": "float32",
                "layout": "contiguous",
                "requires_grad": not control,
                "model": None,
                **combine_workers(per).as_dict(),
            }
        )
    return pd.DataFrame(rows)


def test_one_slow_process_makes_no_false_ranking():
    # Three processes find the two copies equal; one ran 60% slower on one side.  Pooled
    # samples would call that a 15% difference; with the process as the unit the CI
    # covers zero, so the page ranks nothing and recommends either.
    p = _paired_rows({"t": [1.0, 1.0, 1.0, 1.6], "t-control": [1.0, 1.0, 1.0, 1.0]})
    (row,) = [r for _, r in table.beside_control(p, "tracked_clone").iterrows()]
    assert row["ci_low_pct"] <= 0 <= row["ci_high_pct"]
    (d,) = decisions(p, [])
    assert d.code.startswith("either") and "indistinguishable here" in d.cost
    (f,) = [f for f in paired_findings(p) if f.text.startswith("At 4 KiB")]
    assert "indistinguishable here" in f.text and "costs" not in f.text


def test_a_control_off_zero_warns_at_the_top():
    p = _paired_rows({"t": [1.3] * 4, "t-control": [1.1, 1.12, 1.09, 1.1]})
    assert list(table.controls_off(p)["id"]) == ["t-control"]
    ok = _paired_rows({"t": [1.3] * 4, "t-control": [1.0, 1.01, 0.99, 1.0]})
    assert table.controls_off(ok).empty


def test_every_result_string_is_escaped(report):
    page = report.index.read_text()
    assert EVIL_MACHINE not in page and EVIL_CPU not in page
    assert "<script" not in page.lower()
    assert "&lt;img src=x onerror=alert(1)&gt;&amp;&#x27;&quot;" in page
    assert "&lt;script&gt;alert(&#x27;cpu&#x27;)&lt;/script&gt;" in page


def test_report_is_self_contained(report):
    page = report.index.read_text()
    for needle in ("<script src", "<link ", "@import", "url(http"):
        assert needle not in page
    assert page.count('<img src="data:image/png;base64,') == len(report.plots)
    sections = ("Which copy should I use?", "Findings", "Plots", "Environment", "Tidy table")
    at = [page.index(f">{section}</h2>") for section in sections]
    assert at == sorted(at), "the answer first, then plots, then the environment and tables"
    assert "<details><summary>One row per measurement" in page
    assert "clone_detach" in page and "shares_version_counter" in page


def _check_report(root: Path, index: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(root / "scripts/check_report.py"), str(index)],
        capture_output=True,
        text=True,
        timeout=120,
    )


NEEDS_CHROMIUM = pytest.mark.skipif(
    shutil.which("chromium") is None, reason="needs Debian's chromium"
)


@NEEDS_CHROMIUM
def test_renders_in_headless_chromium(root, report):
    # Every image loads; every in-page link names an element; no sideways scroll at
    # 1,400 px; plot and page text at least 10 px as shown; under 1 MB.
    shot = report.index.parent / "screenshot.png"
    r = _check_report(root, report.index)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{len(report.plots)} images loaded, 0 problems" in r.stdout
    links = report.index.read_text().count('href="#')
    assert f"; {links} in-page links; " in r.stdout
    assert shot.stat().st_size > 10_000


@NEEDS_CHROMIUM
def test_check_report_names_each_broken_rule(root, report, tmp_path):
    """The same page, broken once for each rule check_report.py holds it to: one line on
    stderr per failure, exit 1."""
    page = report.index.read_text()
    breakage = (
        '<p><a href="#nowhere">a link to no element</a> <a href="missing.csv">no file</a></p>'
        '<div style="width: 2000px">wider than the window</div>'
        '<p style="font-size: 8px">tiny words</p>'
        '<table><tr><td style="width: 1px">a cell squeezed to one word a line</td>'
        "<td>x</td></tr></table>"
        "<style>figure img { width: 400px; }</style>"
        f"<!-- {'x' * 1_000_000} -->"
    )
    # A copy of the report's folder and asv's HTML beside it, which the page links to.
    out = shutil.copytree(report.index.parent.parent, tmp_path / "out")
    broken = out / report.index.parent.name / "index.html"
    broken.write_text(page.replace("</body>", breakage + "</body>"))
    r = _check_report(root, broken)
    assert r.returncode == 1, r.stdout + r.stderr
    lines = r.stderr.splitlines()
    assert all(line.startswith("check_report: ") for line in lines)
    expected = {
        "link #nowhere names no element of the page": 1,
        "link missing.csv names no file": 1,
        "the page scrolls sideways": 1,
        "page text 8 px (under 10 px)": 1,
        "a table cell wraps about a word a line": 1,
        "plot text": len(report.plots),  # each image shown at 400 px
        "the page weighs": 1,
    }
    for what, n in expected.items():
        assert sum(what in line for line in lines) == n, (what, lines)
    assert len(lines) == sum(expected.values()), lines
    assert "past the edge: div" in r.stderr


def test_every_finding_links_to_what_shows_it(report):
    """A finding links to its plot (or, where none shows it, to its section), and every
    in-page link of the report names an element of it."""
    import re

    page = report.index.read_text()
    ids = set(re.findall(r' id="([^"]+)"', page))
    section = page[page.index('<h2 id="findings">') :]
    section = section[: section.index("</ul>")]
    items = section.split("<li>")[1:]
    assert len(items) >= 5
    links = [re.findall(r'<a href="#([^"]+)">', item) for item in items]
    assert all(len(found) == 1 for found in links), items
    targets = [found[0] for found in links]
    assert {t.split("-")[0] for t in targets} >= {"plot", "table"}
    # The headline finding links to the overhead plot of its machine.
    (head,) = [t for item, t in zip(items, targets, strict=True) if item.startswith("At 4 KiB")]
    assert head.startswith("plot-overhead-") and head.endswith("-cpu")
    for target in re.findall(r'href="#([^"]+)"', page):
        assert target in ids, target


def test_cli_writes_report_and_a_failed_rebuild_keeps_it(results, tmp_path, run_cli):
    r = run_cli("report", str(results), "--out", str(tmp_path), "--name", "cli", *DIFFERENT)
    assert r.returncode == 0, r.stderr
    index = tmp_path / "cli" / "index.html"
    assert r.stdout.strip() == f"copybench: report written to {index}"
    assert index.is_file() and (tmp_path / "cli" / "results.csv").is_file()
    before = index.read_bytes()
    bad = _bad_inputs(tmp_path / "bad")
    r = run_cli("report", str(bad["malformed"]), "--out", str(tmp_path), "--name", "cli")
    assert r.returncode == 2
    assert index.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad", "cli"]


def _bad_inputs(tmp: Path) -> dict[str, Path]:
    empty = tmp / "empty"
    empty.mkdir(parents=True)
    malformed = tmp / "malformed" / "m"
    malformed.mkdir(parents=True)
    (malformed / "machine.json").write_text('{"machine": "m", "version": 1}')
    (malformed / "abc-env.json").write_text("{ not json")
    return {"missing": tmp / "nope", "empty": empty, "malformed": malformed.parent}


@pytest.mark.parametrize("case", ["missing", "empty", "malformed"])
def test_bad_input_exits_2_and_leaves_no_report(case, tmp_path, run_cli):
    bad = _bad_inputs(tmp_path)[case]
    out = tmp_path / "reports"
    r = run_cli("report", str(bad), "--out", str(out), "--name", "x")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("copybench: ") and str(bad) in lines[0]
    assert not out.exists() or not any(out.iterdir()), "no report, no temporary folder"


def test_torch_versions_are_compared(results, tmp_path):
    """Only one torch is installed here: the second "version" is a second real run of the
    same cases whose sidecar is relabelled, which exercises the comparison end to end."""
    two = tmp_path / "results"
    shutil.copytree(results, two)
    (machine_dir,) = [d for d in two.iterdir() if d.is_dir() and EVIL_MACHINE in d.name]
    (f,) = [p for p in machine_dir.glob("*.json") if p.name != "machine.json"]
    copy = f.with_name("relabelled-" + f.name)
    shutil.copy(f, copy)
    copy.with_name(copy.name + ENV_SUFFIX).write_text(json.dumps({"torch_version": "99.0"}))
    f.with_name(f.name + ENV_SUFFIX).write_text(json.dumps({"torch_version": "2.0"}))
    df = load_results([two])
    made = [p for p in plots.all_plots(df) if p.slug.startswith("versions")]
    assert len(made) == 1
    assert _methods_with_data(made[0].figure) == {"clone_detach", "detach_clone"}
    assert any(s.text.startswith("torch 99.0 against torch 2.0") for s in findings(df))


def test_links_asv_html_relative_to_the_report(report):
    assert 'href="../asv-html/index.html"' in report.index.read_text()


def test_compare_names_every_case_of_these_results(results, run_cli):
    # The second machine's file holds the grid's tensor cases and an allocator benchmark whose
    # thread parameter is "all": compare must name both kinds (a file against itself).
    (path,) = [p for p in results.rglob("*.json") if "existing" in p.name and "<img" in str(p)]
    r = run_cli("compare", str(path), str(path), "--format", "json")
    assert r.returncode == 0, r.stderr
    cases = {b["case"] for b in json.loads(r.stdout)["benchmarks"]}
    assert "'copy_into', 1048576, 'all'" in cases
    assert "clone_detach-1024-float32-grad-contiguous-cpu-t1" in cases


# --- trends of the archived nights ------------------------------------------------------------


def _nights_frame(
    per_machine: dict[str, list[tuple[int, str]]], methods: list[str]
) -> pd.DataFrame:
    """Headline times of synthetic nights: machine -> [(day, torch)], each method's median
    (in microseconds) the day's number, its IQR +-10%."""
    rows = []
    for machine, nights in per_machine.items():
        for day, torch in nights:
            for k, method in enumerate(methods):
                med = (day + k) * 1e-6
                rows.append(
                    {
                        "machine": machine,
                        "night": f"202501{day:02d}T020000Z-{machine}.json",
                        "date": f"2025-01-{day:02d}",
                        "torch_version": torch,
                        "method": method,
                        "median": med,
                        "q25": 0.9 * med,
                        "q75": 1.1 * med,
                    }
                )
    return pd.DataFrame(rows)


def _series(ax) -> dict[str, tuple[list[float], list[float]]]:
    return {
        line.get_gid(): (list(line.get_xdata()), list(line.get_ydata()))
        for line in ax.lines
        if line.get_gid() and line.get_gid() != plots.TORCH_CHANGE
    }


def _changes(ax) -> list[float]:
    return [line.get_xdata()[0] for line in ax.lines if line.get_gid() == plots.TORCH_CHANGE]


def test_trend_draws_each_machines_nights_in_order_and_marks_its_torch_changes():
    # Machine a's nights interleave with b's; b runs torch 2.6 all along.  Joined into one
    # sequence, every night of the two would be a "torch change"; per machine only a's
    # third night is.
    times = _nights_frame(
        {"a": [(5, "2.6.0"), (1, "2.5.1"), (3, "2.5.1")], "b": [(2, "2.6.0"), (4, "2.6.0")]},
        ["clone", "detach_clone"],
    )
    fig = plots.trend(times, "trend")
    a, b = fig.axes
    assert a.get_title().startswith("a: ") and b.get_title().startswith("b: ")
    assert _series(a) == {
        "clone": ([0, 1, 2], pytest.approx([1e-6, 3e-6, 5e-6])),
        "detach_clone": ([0, 1, 2], pytest.approx([2e-6, 4e-6, 6e-6])),
    }
    assert _series(b)["clone"] == ([0, 1], pytest.approx([2e-6, 4e-6]))
    labels = [t.get_text() for t in a.get_xticklabels()]
    assert labels == [
        "2025-01-01\ntorch 2.5.1",
        "2025-01-03\ntorch 2.5.1",
        "2025-01-05\ntorch 2.6.0",
    ]
    assert _changes(a) == [1.5] and _changes(b) == []
    assert any("2.5.1 → 2.6.0" in t.get_text() for t in a.texts)
    for ax in (a, b):
        assert ax.get_yscale() == "linear" and ax.get_ylim()[0] == 0


def test_trend_draws_the_paired_overhead_where_nights_carry_it():
    times = _nights_frame({"m": [(1, "2.5.1"), (2, "2.5.1"), (3, "2.6.0")]}, ["clone_detach"])
    over = times[times["night"] != times["night"].iloc[0]][
        ["machine", "night", "date", "torch_version"]
    ].assign(
        overhead_pct=[12.0, 30.0],
        ci_low_pct=[8.0, 25.0],
        ci_high_pct=[16.0, 35.0],
        base="detach_clone",
        head="clone_detach",
    )
    fig = plots.trend(times, "trend", over)
    top, below = fig.axes
    (x, y) = _series(below)["overhead-clone_detach-detach_clone"]
    assert x == [0, 1, 2] and pd.isna(y[0]) and y[1:] == [12.0, 30.0]
    assert _changes(top) == _changes(below) == [1.5]
    assert "detach().clone()" in below.get_ylabel()
    # Without paired nights: one row.
    assert len(plots.trend(times, "trend").axes) == 1


def test_the_archived_nights_become_a_trend_per_headline_family(archive):
    n = table.load_nights(archive)
    assert list(n.nights["torch_version"]) == [t for _, t, _ in NIGHTS]
    assert list(n.nights["date"]) == [f"2025-01-{d:02d}" for d, _, _ in NIGHTS]
    (mine,) = n.trend_machines()
    assert mine != EVIL_MACHINE
    made = {p.slug: p for p in plots.trend_plots(n)}
    # The results hold 4 KiB cases and no 128 MiB or reference-model ones.
    assert list(made) == ["trend-tensor-4KiB"]
    p = made["trend-tensor-4KiB"]
    assert sorted(p.methods) == sorted(TENSOR_METHODS)
    top, below = p.figure.axes
    assert set(_series(top)) == set(TENSOR_METHODS)
    assert all(xs == [0, 1, 2] for xs, _ in _series(top).values())
    assert _changes(top) == [1.5]
    (over,) = _series(below).values()
    assert len([v for v in over[1] if not pd.isna(v)]) == 3
    assert "torch 99.0" in p.caption and "2025-01-04" in p.caption


def test_the_report_has_a_trends_section(report):
    page = report.index.read_text()
    assert '<h2 id="trends">Trends</h2>' in page
    fig = page[page.index('<figure id="plot-trend-tensor-4KiB">') :]
    fig = fig[: fig.index("</figure>")]
    assert '<img src="data:image/png;base64,' in fig and "torch 99.0" in fig
    assert "trend-tensor-4KiB" in report.plots
    # The second machine has one night: left out, and said so (escaped).
    assert "Left out of the trends" in page


def _bad_archives(archive: Path, tmp: Path) -> dict[str, Path]:
    out = {}
    for case in ("no-sidecar", "bad-sidecar", "bad-night"):
        d = tmp / case
        shutil.copytree(archive, d)
        first = sorted(d.glob("*-mine-*.json"))[0]
        if case == "no-sidecar":
            first.with_name(first.name + ENV_SUFFIX).unlink()
        elif case == "bad-sidecar":
            first.with_name(first.name + ENV_SUFFIX).write_text("{ not json")
        else:
            first.write_text("{ not json")
        out[case] = d
    out["no-folder"] = tmp / "nope"
    return out


def test_a_malformed_archive_is_bad_input_and_keeps_the_report(
    results, archive, report, tmp_path, run_cli
):
    out = tmp_path / "reports"
    shutil.copytree(report.index.parent, out / "r")
    before = (out / "r" / "index.html").read_bytes()
    for case, bad in _bad_archives(archive, tmp_path / "bad").items():
        r = run_cli(
            "report",
            str(results),
            "--out",
            str(out),
            "--name",
            "r",
            "--nights",
            str(bad),
            *DIFFERENT,
        )
        assert r.returncode == 2, (case, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("copybench: ") and str(bad) in lines[0]
        assert (out / "r" / "index.html").read_bytes() == before
        assert sorted(p.name for p in out.iterdir()) == ["r"], "no temporary folder left"
    r = run_cli(
        "report", str(results), "--out", str(out), "--reference-machine", "nope", *DIFFERENT
    )
    assert r.returncode == 2 and "nope" in r.stderr and len(r.stderr.splitlines()) == 1


def test_the_archive_beside_the_results_is_found(tmp_path):
    from copybench.report.build import _find_nights

    (tmp_path / "results" / "m").mkdir(parents=True)
    assert _find_nights([tmp_path / "results"]) is None
    (tmp_path / "nightly").mkdir()
    assert _find_nights([tmp_path / "results"]) is None, "an archive without nights"
    (tmp_path / "nightly" / "20250101T020000Z-m-torch2.0-abc.json").write_text("{}")
    for given in (tmp_path / "results", tmp_path / "results" / "m"):
        assert _find_nights([given]) == tmp_path / "nightly"


# --- across machines ------------------------------------------------------------------------------


def test_the_headline_cases_are_set_across_machines(results):
    df = load_results([results])
    (mine,) = set(df["machine"]) - {EVIL_MACHINE}
    t = table.across_machines(df)
    assert set(t["machine"]) == {mine, EVIL_MACHINE} and set(t["family"]) == {"tensor-4KiB"}
    # The reference is the first by name (here the one that starts with "<").
    med = {(r.machine, r.method): r.median for r in t.itertuples()}
    ratio = {(r.machine, r.method): r.ratio for r in t.itertuples()}
    for m in (cases.TRACKED, cases.UNTRACKED):
        assert ratio[(EVIL_MACHINE, m)] == 1.0
        assert ratio[(mine, m)] == pytest.approx(med[(mine, m)] / med[(EVIL_MACHINE, m)])
    assert pd.isna(ratio[(mine, "clone")]), "the reference did not measure clone"
    flipped = table.across_machines(df, reference=mine)
    back = {(r.machine, r.method): r.ratio for r in flipped.itertuples()}
    assert back[(EVIL_MACHINE, cases.TRACKED)] == pytest.approx(1 / ratio[(mine, cases.TRACKED)])
    assert back[(mine, cases.TRACKED)] == 1.0


def test_the_report_has_a_table_across_machines(results, report):
    page = report.index.read_text()
    section = page[page.index('<h2 id="machines">Across machines</h2>') :]
    section = section[: section.index("</table>")]
    (mine,) = set(load_results([results])["machine"]) - {EVIL_MACHINE}
    evil = "&lt;img src=x onerror=alert(1)&gt;&amp;&#x27;&quot;"
    assert f"<th>{evil}<br><small>&lt;script&gt;" in section
    assert f"<th>{mine} / {evil}<br>" in section, "the ratio column, against the reference"
    heads = section.count("<th>")
    assert heads == 1 + 2 + 1  # case, two machines' medians, one ratio
    rows = section.split("<tr>")[2:]
    assert {r.split("</code>")[0].split("<code>")[1] for r in rows} == set(TENSOR_METHODS)
    assert sum("×</td>" in r for r in rows) == 2  # clone_detach and detach_clone on both


def test_machines_with_different_cpus_need_the_flag(results, tmp_path, run_cli):
    # The fixture's second machine claims EVIL_CPU: one page over both reads as a
    # comparison across CPU models, refused without --allow-different-machines.
    r = run_cli("report", str(results), "--out", str(tmp_path), "--name", "x")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "different CPU models" in r.stderr and "--allow-different-machines" in r.stderr
    assert not (tmp_path / "x").exists()


def test_what_each_copy_does_is_what_the_results_recorded(results, report):
    """Per machine and torch, the semantics each run recorded when it was measured (the
    `copybench run` machine); a run that recorded none (the machine asv ran directly) is
    named as such, never probed again on the torch that builds the report."""
    import torch

    from copybench.results.tidy import load_environments

    envs = load_environments([results])
    (recorded,) = [e for e in envs if e["semantics"]]
    assert {o["method"] for o in recorded["semantics"]} >= set(TENSOR_METHODS)
    page = report.index.read_text()
    section = page[page.index('<h2 id="semantics">') : page.index('<h2 id="table">')]
    assert f"<h3>{recorded['machine']}, torch {torch.__version__}</h3>" in section
    assert section.count("<table>") == 1
    assert "Not recorded by the results of &lt;img src=x" in section


def test_the_report_never_probes_semantics_itself():
    # What a copy does depends on the torch that ran it; the report's own is not that one.
    root = Path(__file__).resolve().parents[1] / "src" / "copybench" / "report"
    for path in root.glob("*.py"):
        assert "copybench.suite.semantics" not in path.read_text(), path.name
