"""``copybench report``: results on disk -> ``reports/<name>/index.html``.

The steps run one way: load the tidy table (:mod:`copybench.results`), shape it
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

import argparse
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_RESULTS = Path(".asv/results")
DEFAULT_OUT = Path("reports")
DEFAULT_NAME = "latest"


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``report`` subcommand."""
    from ..cli import add_command

    s = add_command(
        sub,
        "report",
        help="write an HTML report (plots, findings, tidy table) from results",
        description="Read asv results (files or folders, every machine and environment in "
        "them), the paired comparisons stored beside them, and pytest-benchmark JSON files; "
        "write reports/NAME/index.html with its plots and findings, and the tidy table as "
        "CSV beside it. The page opens from disk, with no server and no network. About 15 s "
        "for the default CPU suite's results.",
        examples=[
            "copybench report",
            "copybench report .asv/results --name torch-2.13",
            "copybench report base.json head.json --out /tmp/reports --name pytest",
        ],
    )
    s.add_argument(
        "results",
        nargs="*",
        type=Path,
        metavar="RESULTS",
        help=f"asv results folder/file or pytest-benchmark JSON (default: {DEFAULT_RESULTS})",
    )
    s.add_argument("--name", default=DEFAULT_NAME, help=f"report name (default: {DEFAULT_NAME})")
    s.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"parent folder (default: {DEFAULT_OUT}/)"
    )
    s.add_argument(
        "--asv-html",
        type=Path,
        default=None,
        metavar="PATH",
        help="asv's published HTML to link to (default: .asv/html beside the results, if any)",
    )
    s.add_argument(
        "--nights",
        type=Path,
        default=None,
        metavar="DIR",
        help="the nightly's archive, drawn as trends (default: .asv/nightly beside the "
        "results, if it holds nights)",
    )
    s.add_argument(
        "--reference-machine",
        default=None,
        metavar="NAME",
        help="the machine the others are set against (default: the first by name)",
    )
    s.add_argument(
        "--allow-different-machines",
        action="store_true",
        help="build one report over results from different CPU or GPU models (the "
        "nightly's merged matrix); refused otherwise",
    )
    s.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    from ..results import ResultsError

    name = args.name
    if not name or name in (".", "..") or "/" in name or os.sep in name:
        raise ResultsError(f"--name must be a plain folder name, got {name!r}")
    built = build_report(
        args.results or [DEFAULT_RESULTS],
        args.out / name,
        args.asv_html,
        nights=args.nights,
        reference_machine=args.reference_machine,
        allow_different_machines=args.allow_different_machines,
    )
    print(f"copybench: report written to {built.index}")
    return 0


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
    from ..results import ResultsError, machine_identity

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
    from ..results import nights

    for r in results:
        base = r if r.is_dir() else r.parent
        for d in (base, *base.parents[:2]):
            if d.name == "results" and nights(d.parent / "nightly"):
                return d.parent / "nightly"
    return None


def build_report(
    results: list[str | os.PathLike],
    dest: str | os.PathLike,
    asv_html: str | os.PathLike | None = None,
    nights: str | os.PathLike | None = None,
    reference_machine: str | None = None,
    allow_different_machines: bool = False,
) -> Built:
    """Build the report for ``results`` into the folder ``dest`` (replaced atomically).

    ``nights``: the nightly's archive (:mod:`copybench.nightly`), drawn as a Trends
    section; without it, ``nightly/`` beside the results folder (``.asv/results`` ->
    ``.asv/nightly``) where that exists and holds nights.  A malformed archive is bad input,
    like malformed results.  ``reference_machine``: where the results hold several
    machines, the one the Across machines table sets the others against (default: the
    first by name).
    """
    import time

    t0 = time.perf_counter()
    from ..results import ResultsError, load_environments, load_paired, load_results
    from .table import load_nights

    paths = [Path(p) for p in results]
    dest = Path(dest)
    df = load_results(paths)  # raises ResultsError before anything is written
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
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; a report is for reading
    try:
        asv_link = None
        target = Path(asv_html) if asv_html else _find_asv_html(paths)
        if target is not None:
            if target.is_dir():
                target = target / "index.html"
            if target.is_file():
                asv_link = os.path.relpath(target.resolve(), dest.resolve())
        slugs = _write(
            df,
            paired,
            load_environments(paths),
            tmp,
            dest.name,
            asv_link,
            night_data,
            reference_machine,
        )
        _replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
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


def _write(
    df,
    paired,
    envs: list[dict],
    folder: Path,
    name: str,
    asv_link: str | None,
    nights=None,
    reference_machine: str | None = None,
) -> list[str]:
    import datetime

    import torch

    from ..results import atomic_write_text
    from ..semantics import probe_all
    from . import html, plots, table
    from .findings import decisions, findings

    paired = table.paired_latest(paired)

    def render(made) -> list[html.RenderedPlot]:
        # Inlined only: the page is self-contained, and a second copy on disk would
        # double what a report stores (each PNG can be saved from the page).
        return [html.render_plot(p.slug, p.title, p.caption, p.figure) for p in made]

    rendered = render(plots.all_plots(df, paired))
    trends = render(plots.trend_plots(nights)) if nights is not None else []
    trends_note = _trends_note(nights, trends)
    csv = table.csv_table(df)
    atomic_write_text(folder / CSV_NAME, csv.to_csv(index=False))
    for e in envs:
        mine = df[(df["machine"] == e["machine"]) & (df["env"] == e["env"])]
        e["threads"] = ", ".join(str(t) for t in sorted(mine["threads"].dropna().unique(), key=str))
    status = df["status"].value_counts()
    semantics = _semantics(probe_all)
    page = html.render(
        name=name,
        generated=datetime.datetime.now().isoformat(timespec="seconds"),
        envs=envs,
        findings=findings(df, paired),
        decisions=decisions(paired, semantics),
        warning=_control_warning(paired),
        semantics=semantics,
        semantics_torch=torch.__version__,
        plots=rendered,
        tidy=table.latest(df).drop(columns=["samples"]),
        csv_file=CSV_NAME,
        asv_html=asv_link,
        counts={k: int(status.get(k, 0)) for k in ("ok", "skipped", "failed")},
        trends=trends,
        trends_note=trends_note,
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
    from ..cases import HARDWARE_COLUMNS
    from . import table

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
    from ..units import format_percent
    from . import table
    from .findings import ci_text

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


def _semantics(probe_all) -> list[dict] | str:
    """The observed semantics table, or why it could not be observed: a broken probe is
    the semantics checks' failure to report, not a reason to withhold the measurements."""
    import sys

    try:
        return [o.as_dict() for o in probe_all()]
    except Exception as e:  # noqa: BLE001
        msg = f"the semantics probe failed: {type(e).__name__}: {e}"
        print(f"copybench: warning: {msg}", file=sys.stderr)
        return msg
