"""``copybench report``: results on disk -> ``reports/<name>/index.html``.

The steps run one way: load the tidy table (:mod:`copybench.results.tidy`), shape it
(:mod:`.table`), draw the plots (:mod:`.plots`, pure functions), state the findings
(:mod:`.findings`), render the page (:mod:`.html`).  The report is built in a temporary
folder beside its destination and renamed into place, so an error (bad input included)
never leaves a half-written report behind.  Given the nightly's archive (``--nights``,
else ``.asv/nightly`` beside the results), the page draws the headline cases night by night
(Trends); given several machines, it sets them side by side (Across machines).  Heavy
imports happen inside functions: ``copybench --help`` must not pay for pandas and
matplotlib.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_RESULTS = Path(".asv/results")
DEFAULT_OUT = Path("reports")
DEFAULT_NAME = "latest"


def report_dest(out: Path, name: str) -> Path:
    """Where the report called ``name`` goes under ``out``; ResultsError for a name that
    is not a plain folder name."""
    from copybench.formats import ResultsError

    if not name or name in (".", "..") or "/" in name or os.sep in name:
        raise ResultsError(f"--name must be a plain folder name, got {name!r}")
    return out / name


@dataclass(frozen=True)
class Built:
    index: Path
    csv: Path
    plots: list[str]  # plot slugs, in page order
    seconds: float


def _find_asv_html(results: list[Path]) -> Path | None:
    """asv's ``html_dir`` beside a results folder (``.asv/results`` -> ``.asv/html``)."""
    for r in results:
        base = r if r.is_dir() else r.parent
        for d in (base, *base.parents[:2]):
            cand = d.parent / "html" / "index.html"
            if d.name == "results" and cand.is_file():
                return cand
    return None


def _check_machines(df: pd.DataFrame, machines: list[str]) -> None:
    """Refuse results from several CPU models or GPU models: a page that sets them side by
    side reads as a comparison, which only ``--allow-different-machines`` asks for."""
    from copybench.formats import ResultsError
    from copybench.results.tidy import machine_identity

    ids = [machine_identity(df[df["machine"] == m]) for m in machines]
    for field, what in (("cpu", "CPU models"), ("gpu", "GPU models")):
        seen = {getattr(i, field) for i in ids} - {None, "none"}
        if len(seen) > 1:
            listed = "; ".join(f"{i.name}: {getattr(i, field)}" for i in ids)
            raise ResultsError(
                f"results from machines with different {what} ({listed}): one report over "
                "them needs --allow-different-machines"
            )


def _find_nights(results: list[Path]) -> Path | None:
    """The nightly's archive beside a results folder (``.asv/results`` -> ``.asv/nightly``),
    where it holds nights."""
    from copybench.formats import nights

    for r in results:
        base = r if r.is_dir() else r.parent
        for d in (base, *base.parents[:2]):
            if d.name == "results" and nights(d.parent / "nightly"):
                return d.parent / "nightly"
    return None


@dataclass(frozen=True)
class Inputs:
    """What a report is built from, read and checked before anything is written."""

    df: pd.DataFrame
    paired: pd.DataFrame
    envs: list[dict]
    nights: Any = None  # table.Nights, where the archive holds nights


def _inputs(
    paths: list[Path],
    nights: str | os.PathLike | None,
    reference_machine: str | None,
    allow_different_machines: bool,
) -> Inputs:
    """The results, their paired comparisons, environments and nights; ResultsError for
    missing or malformed ones, machines that differ unasked, an unknown reference."""
    from copybench.formats import ResultsError
    from copybench.report.table import load_nights
    from copybench.results.tidy import load_environments, load_paired, load_results

    df = load_results(paths)
    paired = load_paired(paths)
    archive = Path(nights) if nights is not None else _find_nights(paths)
    night_data = load_nights(archive) if archive is not None else None
    machines = sorted(set(df["machine"]))
    if not allow_different_machines:
        _check_machines(df, machines)
    if reference_machine is not None and reference_machine not in machines:
        raise ResultsError(
            f"--reference-machine {reference_machine!r}: not a machine of these results "
            f"(they hold {', '.join(map(repr, machines))})"
        )
    return Inputs(df, paired, load_environments(paths), night_data)


def _asv_link(asv_html: str | os.PathLike | None, paths: list[Path], dest: Path) -> str | None:
    """asv's published page, relative to the report's folder; None where there is none."""
    target = Path(asv_html) if asv_html else _find_asv_html(paths)
    if target is None:
        return None
    if target.is_dir():
        target = target / "index.html"
    return os.path.relpath(target.resolve(), dest.resolve()) if target.is_file() else None


def _atomically(dest: Path, write: Callable[[Path], list[str]]) -> list[str]:
    """``write`` into a temporary folder beside ``dest``, then rename it into place; on
    any error (bad input included) nothing is left behind."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; a report is for reading
    try:
        out = write(tmp)
        _replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def build_report(
    results: list[str | os.PathLike],
    dest: str | os.PathLike,
    asv_html: str | os.PathLike | None = None,
    nights: str | os.PathLike | None = None,
    reference_machine: str | None = None,
    allow_different_machines: bool = False,
) -> Built:
    """Build the report for ``results`` into the folder ``dest`` (replaced atomically).

    ``nights``: the nightly's archive (:mod:`copybench.jobs.nightly`), drawn as a Trends
    section; without it, ``nightly/`` beside the results folder (``.asv/results`` ->
    ``.asv/nightly``) where that exists and holds nights.  A malformed archive is bad input,
    like malformed results.  ``reference_machine``: where the results hold several
    machines, the one the Across machines table sets the others against (default: the
    first by name).
    """
    import time

    t0 = time.perf_counter()
    paths = [Path(p) for p in results]
    dest = Path(dest)
    inputs = _inputs(paths, nights, reference_machine, allow_different_machines)
    link = _asv_link(asv_html, paths, dest)
    slugs = _atomically(dest, lambda tmp: _write(inputs, tmp, dest.name, link, reference_machine))
    return Built(dest / "index.html", dest / CSV_NAME, slugs, time.perf_counter() - t0)


CSV_NAME = "results.csv"


def _replace(tmp: Path, dest: Path) -> None:
    """Rename ``tmp`` to ``dest``; an existing ``dest`` is moved aside first, then removed."""
    old = None
    if dest.exists():
        old = dest.with_name(f".{dest.name}.{os.getpid()}.old")
        os.replace(dest, old)
    os.replace(tmp, dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _rendered(made: Iterable[Any]) -> list[Any]:
    """Plots (:mod:`.plots`) as PNGs for the page.  Inlined only: the page is
    self-contained, and a second copy on disk would double what a report stores (each PNG
    can be saved from the page)."""
    from copybench.report import html

    return [html.render_plot(p.slug, p.title, p.caption, p.figure) for p in made]


def _with_threads(envs: list[dict], df: pd.DataFrame) -> list[dict]:
    """Each environment with the thread counts its rows were measured with."""
    for e in envs:
        mine = df[(df["machine"] == e["machine"]) & (df["env"] == e["env"])]
        e["threads"] = ", ".join(str(t) for t in sorted(mine["threads"].dropna().unique(), key=str))
    return envs


def semantics_runs(envs: list[dict]) -> list[dict]:
    """What each copy did, per machine and torch, as the results recorded it when they were
    measured (:func:`copybench.results.tidy.load_environments`): one ``{machine,
    torch_version, observations}`` per pair, ``observations`` None where no results file of
    that machine and torch recorded any (written before copybench recorded them).  Never
    observed here: the torch that builds a report need not be the one that measured."""
    runs: dict[tuple[str, str], list[dict] | None] = {}
    for e in envs:
        key = (str(e.get("machine")), str(e.get("torch_version") or "unknown"))
        recorded = e.get("semantics")
        runs[key] = recorded if isinstance(recorded, list) else runs.get(key)
    return [{"machine": m, "torch_version": t, "observations": obs} for (m, t), obs in runs.items()]


def _write(
    inputs: Inputs, folder: Path, name: str, asv_link: str | None, reference_machine: str | None
) -> list[str]:
    import datetime

    from copybench.formats import atomic_write_text
    from copybench.report import html, plots, table
    from copybench.report.findings import decisions, findings

    df, paired = inputs.df, table.paired_latest(inputs.paired)
    rendered = _rendered(plots.all_plots(df, paired))
    trends = _rendered(plots.trend_plots(inputs.nights)) if inputs.nights is not None else []
    atomic_write_text(folder / CSV_NAME, table.csv_table(df).to_csv(index=False))
    envs = _with_threads(inputs.envs, df)
    status = df["status"].value_counts()
    semantics = semantics_runs(envs)
    page = html.render(
        name=name,
        generated=datetime.datetime.now().isoformat(timespec="seconds"),
        envs=envs,
        findings=findings(df, paired),
        decisions=decisions(paired, semantics),
        warning=_control_warning(paired),
        semantics=semantics,
        plots=rendered,
        tidy=table.latest(df).drop(columns=["samples"]),
        csv_file=CSV_NAME,
        asv_html=asv_link,
        counts={k: int(status.get(k, 0)) for k in ("ok", "skipped", "failed")},
        trends=trends,
        trends_note=_trends_note(inputs.nights, trends),
        across=table.across_machines(df, reference_machine),
        machines=_machines(df, envs, reference_machine),
    )
    atomic_write_text(folder / "index.html", page)
    return [p.slug for p in rendered + trends]


def _trends_note(nights, trends: list) -> str | None:
    """Why the page draws no trend (or leaves a machine out), in one sentence."""
    if nights is None:
        return (
            "No trends: no nightly archive was given (--nights DIR), and none holding nights "
            "lies beside the results (.asv/nightly beside .asv/results)."
        )
    where = f"the nightly archive {nights.folder}"
    counts = nights.nights["machine"].value_counts()
    few = [f"{m} (1 night)" for m in dict.fromkeys(nights.nights["machine"]) if counts[m] < 2]
    if nights.nights.empty:
        return f"No trends: {where} holds no nights."
    if not nights.trend_machines():
        return f"No trends: a trend needs two nights of one machine, and {where} holds " + (
            ", ".join(few) + "."
        )
    if not trends:
        return f"No trends: the nights of {where} measured none of the headline cases."
    if few:
        return "Left out of the trends (a trend needs two nights): " + ", ".join(few) + "."
    return None


def _machines(df, envs: list[dict], reference_machine: str | None) -> list[dict]:
    """Each machine of the results (the reference first): its CPU, cores and GPU from the
    env sidecars and asv's machine.json, and the newest torch it was measured with."""
    from copybench.report import table
    from copybench.suite.cases import HARDWARE_COLUMNS

    out = []
    for m in table.machine_order(list(df["machine"]), reference_machine):
        mine = [e for e in envs if e.get("machine") == m]
        known = {k: next((e[k] for e in mine if e.get(k)), None) for k in HARDWARE_COLUMNS}
        versions = table.torch_versions(df[df["machine"] == m])
        out.append(
            {
                "machine": m,
                "cpu": known["cpu"],
                "cores": known["num_cpu"],
                "gpu": known["gpu"],
                "torch_version": versions[-1] if versions else "unknown",
            }
        )
    return out


def _control_warning(paired) -> str | None:
    """Why this run's wall times are unreliable, when a control says so."""
    from copybench.report import table
    from copybench.report.findings import ci_text
    from copybench.suite.units import format_percent

    if paired is None or paired.empty:
        return None
    off = table.controls_off(paired)
    if off.empty:
        return None
    worst = off.loc[(off["overhead_pct"].abs()).idxmax()]
    return (
        f"{len(off)} of {int(paired['control'].astype(bool).sum())} controls (pairs whose two "
        f"sides do the same work) moved by more than {table.CONTROL_TOLERANCE_PTS:g} points "
        f"beyond their CI, up to {format_percent(worst['overhead_pct'], signed=True)} "
        f"({worst['id']}, {ci_text(worst['ci_low_pct'], worst['ci_high_pct'])}). The machine "
        "changed under this run's measurements (a neighbour's load, frequency, memory placement): "
        "differences of that size on this page are not the code's."
    )
