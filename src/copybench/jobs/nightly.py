"""The nightly regression run, the same steps on GitHub and on a workstation.

``copybench nightly`` (wrapped by ``scripts/nightly.sh`` and run by
``.github/workflows/nightly.yml``):

1. runs the asv suite against the installed torch with raw samples recorded
   (``asv run -E existing:same --record-samples``), into a results folder that persists:
   the history behind asv's plots; then the paired study unless narrowed;
2. archives that night's results file, with the torch version, git hash and date in its
   name and in its sidecar (:func:`copybench.formats.archive_night`): asv keys results by
   commit and environment only, so a second night at the same commit would otherwise
   overwrite the first;
3. publishes asv's site of the archived nights, one point per night, with the torch
   builds on its time axis (:func:`copybench.jobs.asvsite.publish_nights`);
4. sets the night beside the previous archived night (``copybench compare``), for the
   record: two runs hours apart get no verdict on wall time (see
   :mod:`copybench.results.compare`);
5. **gates**: with a baseline interpreter (the previous night's build or a pinned release),
   the gate selection is timed in both, interleaved in fresh processes, and both sides'
   instructions counted where valgrind is available (:mod:`copybench.jobs.gate`); the
   night fails on the cases that regressed there, and names them.  The gate's results are
   archived beside the night's (``<night>.gate.json``).  Whatever the machine does during
   the gate hits both sides alike; the statistics take the process as the unit
   (:mod:`copybench.measure.gate`).

``copybench nightly merge`` then merges the nights of several machines (the workflow's
runner matrix) into one asv site and one report, built here, in this process.
"""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from copybench.formats import ResultsError, archive_night, night_gate_file, nights
from copybench.jobs.asvsite import publish_nights
from copybench.jobs.history import HISTORY_BRANCH, copy_tree, restore_history, save_history
from copybench.measure.asvrun import Selection, config_copy, machine_name, project_root, run_suite
from copybench.measure.gate import DEFAULT_BUDGET, DEFAULT_PROCESSES

if TYPE_CHECKING:
    import pandas as pd

PREFIX = "copybench nightly:"


def compare_nights(
    previous: Path, tonight: Path, threshold: float, alpha: float, summary: Path | None
) -> list[str]:
    """Print the comparison, append what changed to ``summary``; return the asv names of
    the cases that regressed (instruction counts only: wall time across runs gets no
    verdict)."""
    from copybench.results.compare import compare, load_pair, render

    base, head = load_pair(previous, tonight)
    table = compare(base, head, threshold=threshold, alpha=alpha)
    print(render(table, "text", threshold=threshold, alpha=alpha))
    title = f"Tonight beside {previous.name} (across runs)"
    _append(summary, changes_markdown(table, title, "instruction counts (exact)"))
    _annotate(table, "asv_name")
    return _regressed(table)


# The verdicts the job summary lists case by case; the others it only counts.
CHANGED = ("regressed", "drifted", "improved")


def changes_markdown(table: pd.DataFrame, title: str, confirmed_by: str) -> str:
    """The job summary's part for one comparison: only the cases that changed (regressed,
    improved), each with what confirmed it, then a count of the rest.  (The whole table,
    some 670 rows a night, is in the log and in the archived results.)"""
    from copybench.results.compare import measured_cells

    changed = table[table["verdict"].isin(CHANGED)]
    rest = table[~table["verdict"].isin(CHANGED)]["verdict"].value_counts()
    lines = [f"### {title}", ""]
    if changed.empty:
        lines.append(f"No case changed ({len(table)} compared).")
    else:
        lines += [
            "| case | base | head | ratio [CI] | p | verdict | confirmed by |",
            "|---|---|---|---|---|---|---|",
        ]
        for _, r in changed.sort_values(["verdict", "ratio"], ascending=[False, False]).iterrows():
            how = {
                "instructions": "instruction counts (exact)",
                "observed": "`copybench semantics` on both sides",
            }.get(r["unit"], confirmed_by)
            cells = [
                f"`{r['case']}` ({r['benchmark']})",
                *measured_cells(r),
                f"**{r['verdict']}**",
                how,
            ]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    if len(rest):
        lines += ["", "The other cases: " + ", ".join(f"{n} {v}" for v, n in rest.items()) + "."]
    return "\n".join(lines)


def _annotate(table: pd.DataFrame, name_column: str) -> None:
    """One ``::error::`` workflow command per regressed case, under GitHub Actions: the
    run's page lists them without opening the log."""
    from copybench.results.compare import ratio_text

    if os.environ.get("GITHUB_ACTIONS") != "true":
        return
    for _, r in table[table["verdict"] == "regressed"].iterrows():
        name = r.get(name_column) or r["case"]
        print(f"::error title=copybench regression::{name} regressed: ratio {ratio_text(r)}")
    from copybench.measure.drift import word

    for _, r in table[table["verdict"] == "drifted"].iterrows():
        was, now = word(r["base_median"]), word(r["head_median"])
        print(f"::error title=copybench semantics drift::{r['case']}: {was} -> {now}")


def _regressed(table: pd.DataFrame) -> list[str]:
    names = table.loc[table["verdict"] == "regressed", "asv_name"]
    return sorted(f"regressed: {n}" for n in names)


def gate(night: Night, tonight: Path) -> list[str]:
    """Time the gate selection (narrowed like the night's run) in the baseline interpreter
    and in this one, interleaved (and count both sides' instructions); archive the gate
    results beside ``tonight``; print and record the table; return the regressed cases."""
    from copybench.jobs.gate import GateDesign, GateRun, judged_gate
    from copybench.measure.gate import FAILING, Side
    from copybench.results.compare import render

    out = night_gate_file(tonight)
    design = GateDesign(
        night.sel.methods,
        night.sel.sizes,
        night.sel.models,
        night.processes,
        night.budget,
        night.instructions,
        night.threshold,
        night.alpha,
    )
    run = GateRun(
        Side("base", night.baseline_python, night.baseline_env), Side("head"), design, out
    )
    table = judged_gate(run, log=sys.stderr)
    print(f"{PREFIX} gate results written to {out}")
    threshold, alpha = table.attrs["threshold"], table.attrs["alpha"]
    print(render(table, "text", threshold=threshold, alpha=alpha))
    rounds = f"the gate: {night.processes} interleaved rounds of fresh processes"
    _append(night.summary, changes_markdown(table, "Gate against the baseline", rounds))
    _append(night.summary, f"{night.processes} rounds of one fresh process per side, interleaved.")
    _annotate(table, "case")
    failing = table[table["verdict"].isin(FAILING)]
    # A case named by its raw time and by its relative time is one regression.
    return sorted({f"{r['verdict']}: {r['case']}" for _, r in failing.iterrows()})


def _append(summary: Path | None, text: str) -> None:
    if summary is not None:
        with summary.open("a") as f:
            f.write(text + "\n\n")


def _warn_empty_history(summary: Path | None, where: str) -> None:
    """An empty history on a scheduled night means the nights before it were lost (an
    evicted cache, a wrong repository): say so loudly rather than pass as a first night."""
    text = (
        f"copybench nightly: warning: {where} holds no earlier night; tonight is "
        "recorded as the first, with nothing to set beside it"
    )
    print(text, file=sys.stderr)
    if os.environ.get("GITHUB_ACTIONS") == "true":
        print(f"::warning title=copybench history::{text}")
    _append(summary, f"> **Warning**: {where} holds no earlier night; tonight is the first.")


# --- one night -------------------------------------------------------------------------------


@dataclass
class Night:
    """A night as asked for: the selection, where its results, archive and HTML go, the
    job summary, and the gate (``baseline_python``: the interpreter with the baseline
    torch; without it the night is recorded, not gated) with its levels (None: 0.05 across
    nights, the gate's own in the gate); the history repository; the paired study (None:
    when nothing narrows the run and it is on the CPU)."""

    sel: Selection
    results: Path = Path(".asv/results")
    archive: Path = Path(".asv/nightly")
    html: Path = Path(".asv/html")
    summary: Path | None = None
    publish: bool = True
    baseline_python: str | None = None
    baseline_env: dict[str, str] = field(default_factory=dict)
    processes: int = DEFAULT_PROCESSES
    budget: float = DEFAULT_BUDGET
    threshold: float | None = None
    alpha: float | None = None
    machine: str | None = None
    history: str | None = None
    history_branch: str = HISTORY_BRANCH
    paired: bool | None = None
    instructions: bool | None = None


def _restore(night: Night) -> None:
    """Tonight's history: restored from the history branch, where given; an empty one on
    a scheduled night is a warning."""
    if night.history:
        held = restore_history(night.history, night.history_branch, night.results, night.archive)
        print(f"{PREFIX} {held} nights restored from {night.history_branch}")
        if not held:
            _warn_empty_history(night.summary, f"branch {night.history_branch} of the history")
    elif os.environ.get("GITHUB_EVENT_NAME") == "schedule" and not nights(night.archive):
        _warn_empty_history(night.summary, "the archive")


def _run_and_archive(night: Night, machine: str) -> tuple[list[Path], Path]:
    """Run tonight (asv, then the paired study unless narrowed), archive it, publish; the
    machine's nights before tonight, and tonight's archived results file."""
    root = project_root()
    with tempfile.TemporaryDirectory(prefix="copybench-nightly-") as tmp:
        # Tonight runs into a results folder of its own: asv merges a run into the file of
        # the same commit and environment, so a night run into the history's folder would
        # carry an earlier night's cases as its own (and draw a flat trend where there was
        # a step).  That file then joins the history, replacing an earlier night's of the
        # same commit and environment (in the archive).
        fresh = Path(tmp) / "results"
        config = config_copy(root, fresh, night.html, Path(tmp))
        before = nights(night.archive, machine)
        runs = dict(
            run_suite(
                night.sel,
                paired=night.paired,
                config=config,
                extra=["--record-samples"],
                machine=machine,
            )
        )
        tonight = archive_night(runs["results"], night.archive)
        print(f"{PREFIX} results archived as {tonight}")
        copy_tree(fresh, night.results, replace=True)
        if night.publish:
            published = publish_nights(root, night.archive, night.results, night.html)
            print(f"{PREFIX} asv's site of {published} nights in {night.html}")
    return before, tonight


def _beside_the_last(night: Night, before: list[Path], tonight: Path) -> list[str]:
    """Tonight set beside the machine's previous night (across runs); the cases that
    regressed there (instruction counts only)."""
    from copybench.results.compare import ACROSS_RUNS_ALPHA, ACROSS_RUNS_THRESHOLD

    if not before:
        text = f"{PREFIX} first night ({tonight.name}); nothing to set beside it."
        print(text)
        _append(night.summary, text)
        return []
    print(f"{PREFIX} {before[-1].name} -> {tonight.name} (across runs)")
    return compare_nights(
        before[-1],
        tonight,
        ACROSS_RUNS_THRESHOLD if night.threshold is None else night.threshold,
        ACROSS_RUNS_ALPHA if night.alpha is None else night.alpha,
        night.summary,
    )


def run_night(night: Night) -> list[str]:
    """The night (see the module's docstring): what failed it (regressed or drifted
    cases), each as ``verdict: case``; nothing where it passed."""
    from copybench.measure.gate import check_gate_levels

    check_gate_levels(night.threshold, night.alpha)
    machine = machine_name(night.machine)
    _restore(night)
    before, tonight = _run_and_archive(night, machine)
    failed = _beside_the_last(night, before, tonight)
    if night.baseline_python:
        failed += gate(night, tonight)
    else:
        text = f"{PREFIX} no --baseline-python: recorded, not gated."
        print(text)
        _append(night.summary, text)
    if night.history:
        message = f"night {tonight.stem} ({machine})"
        save_history(night.history, night.history_branch, night.results, night.archive, message)
        print(f"{PREFIX} tonight committed to {night.history_branch}")
    return failed


# --- several machines, one site ----------------------------------------------------------------


def merge_machines(sources: list[Path], results: Path, archive: Path) -> list[str]:
    """Merge the nights of several machines (each source a folder holding ``results/``, an
    asv results folder, and ``nightly/``, its archive, as a runner uploads them) into one
    asv results folder and one archive: asv keeps each machine in its own subfolder, so
    one ``asv publish`` shows them side by side.  Returns the machine names found."""
    machines: list[str] = []
    for src in sources:
        res = src / "results"
        if not res.is_dir():
            raise ResultsError(f"{src}: no results/ folder (an asv results folder) inside")
        for mdir in sorted(d for d in res.iterdir() if d.is_dir()):
            if not (mdir / "machine.json").is_file():
                raise ResultsError(f"{mdir}: an asv machine folder without machine.json")
            machines.append(mdir.name)
        copy_tree(res, results)
        if (src / "nightly").is_dir():
            copy_tree(src / "nightly", archive)
    if not machines:
        raise ResultsError("no machine's results among " + ", ".join(map(str, sources)))
    return sorted(set(machines))


def merge_nights(
    sources: list[Path],
    results: Path,
    archive: Path,
    html: Path,
    report_out: Path,
    report_name: str = "nightly",
) -> Path:
    """Merge the machines' nights (:func:`merge_machines`), publish one asv site of them
    and build one report over them all (runners of a matrix differ by design, a GPU
    runner beside an x86 one); the report's page."""
    from copybench.report.build import build_report, report_dest

    root = project_root()
    machines = merge_machines(sources, results, archive)
    print(f"{PREFIX} merged {len(machines)} machines: {', '.join(machines)}")
    publish_nights(root, archive, results, html)
    built = build_report(
        [results],
        report_dest(report_out, report_name),
        html,
        nights=archive,
        allow_different_machines=True,
    )
    return built.index
