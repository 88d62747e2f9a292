"""The nightly regression run, the same steps on GitHub and on a workstation.

``python -m copybench.jobs.nightly`` (wrapped by ``scripts/nightly.sh`` and run by
``.github/workflows/nightly.yml``):

1. runs the asv suite against the installed torch with raw samples recorded
   (``asv run -E existing:same --record-samples``), into a results folder that persists:
   the history behind asv's plots;
2. archives that night's results file, with the torch version, git hash and date in its
   name and in its sidecar: asv keys results by commit and environment only, so a second
   night at the same commit would otherwise overwrite the first;
3. publishes asv's HTML;
4. sets the night beside the previous archived night (``copybench compare``), for the
   record: two runs hours apart get no verdict on wall time (see :mod:`copybench.results.compare`);
5. **gates**: with ``--baseline-python`` (an interpreter with the baseline torch: the
   previous night's build or a pinned release), ``copybench gate`` times the gate
   selection in both, interleaved in fresh processes, and counts both sides'
   instructions where valgrind is available; the night fails on the cases that regressed
   there, and names them.  The gate's results are archived beside the night's
   (``<night>.gate.json``).  Whatever the machine does during the gate hits
   both sides alike; the statistics take the process as the unit (:mod:`copybench.measure.gate`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from copybench.measure.asvrun import Selection, config_copy, machine_name, project_root, run_asv
from copybench.measure.workers import WorkerError
from copybench.results.tidy import (
    ENV_SUFFIX,
    GATE_SUFFIX,
    PAIRED_SUFFIX,
    ResultsError,
    nights,
    read_env_sidecar,
)
from copybench.suite.cases import CaseError, UsageError

if TYPE_CHECKING:
    import pandas as pd


def archive_night(results_file: Path, archive: Path) -> Path:
    """Copy a results file (its sidecars too) to ``archive`` under a name that sorts by
    date: ``<UTC date-time>-<machine>-torch<version>-<commit>.json``; the machine's name is
    also in the sidecar, so that archives of several machines can share a folder."""
    side = read_env_sidecar(results_file)
    data = json.loads(results_file.read_text())
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    machine = side.get("machine") or data.get("params", {}).get("machine", "unknown")
    torch_version = str(side.get("torch_version", "unknown")).replace("+", "_")
    commit = str(data.get("commit_hash", "unknown"))[:8]
    name = f"{stamp}-{_slug(machine)}-torch{torch_version}-{commit}.json"
    archive.mkdir(parents=True, exist_ok=True)
    target = archive / name
    shutil.copyfile(results_file, target)
    paired = results_file.with_name(results_file.name + PAIRED_SUFFIX)
    if paired.is_file():  # the paired study, where the night measured it
        shutil.copyfile(paired, archive / (name + PAIRED_SUFFIX))
    side.update(
        night=stamp, commit=data.get("commit_hash"), asv_file=results_file.name, machine=machine
    )
    (archive / (name + ENV_SUFFIX)).write_text(json.dumps(side, indent=2, sort_keys=True))
    bench_meta = results_file.parent.parent / "benchmarks.json"
    if bench_meta.is_file():  # lets the archive be read on its own (parameter names)
        shutil.copyfile(bench_meta, archive / "benchmarks.json")
    return target


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_.") or "machine"


def publish(config: Path, root: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "asv", "publish", "--config", str(config)], cwd=root, check=True
    )


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


def gate(
    baseline: str,
    baseline_env: dict[str, str],
    sel: Selection,
    processes: int,
    threshold: float | None,
    alpha: float | None,
    summary: Path | None,
    instructions: bool = False,
    out: Path | None = None,
    budget: float | None = None,
) -> list[str]:
    """Time the gate selection (narrowed like the night's run) in ``baseline`` and in this
    interpreter, interleaved (and count both sides' instructions); write the gate results
    to ``out``; print and record the table; return the regressed cases."""
    from copybench.measure.gate import DEFAULT_BUDGET, FAILING, Side, gate_cases, run_gate
    from copybench.results.compare import compare_gate, render
    from copybench.results.tidy import atomic_write_text

    cases = gate_cases(sel.methods or None, sel.sizes or None, sel.models or None)
    data = run_gate(
        Side("base", baseline, baseline_env),
        Side("head"),
        cases,
        processes,
        DEFAULT_BUDGET if budget is None else budget,
        log=sys.stderr,
        instructions=instructions,
    )
    if out is not None:
        atomic_write_text(out, json.dumps(data))
        print(f"copybench nightly: gate results written to {out}")
    table = compare_gate(data, threshold=threshold, alpha=alpha)
    threshold, alpha = table.attrs["threshold"], table.attrs["alpha"]
    print(render(table, "text", threshold=threshold, alpha=alpha))
    rounds = f"the gate: {processes} interleaved rounds of fresh processes"
    _append(summary, changes_markdown(table, "Gate against the baseline", rounds))
    _append(summary, f"{processes} rounds of one fresh process per side, interleaved.")
    _annotate(table, "case")
    failing = table[table["verdict"].isin(FAILING)]
    # A case named by its raw time and by its relative time is one regression.
    return sorted({f"{r['verdict']}: {r['case']}" for _, r in failing.iterrows()})


def _append(summary: Path | None, text: str) -> None:
    if summary is not None:
        with summary.open("a") as f:
            f.write(text + "\n\n")


# --- durable history: a git branch of results -----------------------------------------------

HISTORY_BRANCH = "copybench-results"


class HistoryError(RuntimeError):
    """The history repository could not be read or written."""


def _git(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    env.setdefault("GIT_AUTHOR_NAME", "copybench nightly")
    env.setdefault("GIT_AUTHOR_EMAIL", "copybench-nightly@users.noreply.github.com")
    env.setdefault("GIT_COMMITTER_NAME", env["GIT_AUTHOR_NAME"])
    env.setdefault("GIT_COMMITTER_EMAIL", env["GIT_AUTHOR_EMAIL"])
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=env)
    if done.returncode:
        raise HistoryError(f"git {args[0]} failed: {done.stderr.strip()[-300:]}")
    return done


def _checkout_history(repo: str, branch: str, into: Path) -> bool:
    """Clone ``branch`` of ``repo`` into ``into``; False (an empty repository there, on an
    orphan ``branch``) when the branch does not exist yet."""
    remote = _git("ls-remote", "--heads", repo, branch).stdout.strip()
    if remote:
        _git("clone", "--quiet", "--depth", "1", "--branch", branch, repo, str(into))
        return True
    into.mkdir(parents=True)
    _git("init", "--quiet", cwd=into)
    _git("checkout", "--quiet", "--orphan", branch, cwd=into)
    _git("remote", "add", "origin", repo, cwd=into)
    return False


def _copy_tree(src: Path, dst: Path, replace: bool = False) -> None:
    """Copy files of ``src`` that ``dst`` lacks (a night's files never change once
    written, except asv's per-machine index files, which the newer copy replaces);
    ``replace``: every file of ``src`` replaces its namesake."""
    for f in src.rglob("*"):
        if f.is_file() and ".git" not in f.relative_to(src).parts:
            t = dst / f.relative_to(src)
            if replace or not t.exists() or f.name in ("machine.json", "benchmarks.json"):
                t.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(f, t)


def restore_history(repo: str, branch: str, results: Path, archive: Path) -> int:
    """Bring the branch's nights into ``archive`` and its asv results into ``results``;
    return how many nights the history held (0: empty or no branch yet)."""
    with tempfile.TemporaryDirectory(prefix="copybench-history-") as tmp:
        work = Path(tmp) / "history"
        if not _checkout_history(repo, branch, work):
            return 0
        if (work / "nightly").is_dir():
            _copy_tree(work / "nightly", archive)
        if (work / "results").is_dir():
            _copy_tree(work / "results", results)
        return len(nights(work / "nightly"))


def save_history(
    repo: str, branch: str, results: Path, archive: Path, message: str, tries: int = 3
) -> None:
    """Commit the archive and the asv results to ``branch`` of ``repo`` and push; runners
    of a matrix push to one branch, each its own machine's files, so a rejected push is
    retried on top of the others' commits."""
    with tempfile.TemporaryDirectory(prefix="copybench-history-") as tmp:
        work = Path(tmp) / "history"
        _checkout_history(repo, branch, work)
        for attempt in range(tries):
            _copy_tree(archive, work / "nightly")
            _copy_tree(results, work / "results")
            _git("add", "--all", cwd=work)
            if _git("status", "--porcelain", cwd=work).stdout.strip():
                _git("commit", "--quiet", "-m", message, cwd=work)
            try:
                _git("push", "--quiet", "origin", f"HEAD:refs/heads/{branch}", cwd=work)
                return
            except HistoryError:
                if attempt == tries - 1:
                    raise
                _git("fetch", "--quiet", "origin", branch, cwd=work)
                _git("rebase", "--quiet", f"origin/{branch}", cwd=work)


def _parser() -> argparse.ArgumentParser:
    from copybench.measure.gate import DEFAULT_BUDGET, DEFAULT_PROCESSES, instruction_option

    p = argparse.ArgumentParser(prog="python -m copybench.jobs.nightly", description=__doc__)
    p.add_argument("--results", type=Path, default=Path(".asv/results"), help="asv results")
    p.add_argument("--archive", type=Path, default=Path(".asv/nightly"), help="one file per night")
    p.add_argument("--html", type=Path, default=Path(".asv/html"), help="asv publish output")
    p.add_argument("--method", action="append", default=[], help="narrow the run (repeatable)")
    p.add_argument("--size", action="append", default=[], type=int, help="narrow the run")
    p.add_argument("--dtype", action="append", default=[])
    p.add_argument("--model", action="append", default=[])
    p.add_argument("--device", action="append", default=[])
    p.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="smallest change that counts (default: 0.05 across nights; the gate's own, "
        "0.02, in the gate)",
    )
    p.add_argument(
        "--alpha",
        type=float,
        default=None,
        help="significance level (default: 0.05 across nights; the gate's own, 0.01)",
    )
    p.add_argument(
        "--summary",
        type=Path,
        default=Path(os.environ["GITHUB_STEP_SUMMARY"])
        if os.environ.get("GITHUB_STEP_SUMMARY")
        else None,
        help="file to append the markdown table to (default: $GITHUB_STEP_SUMMARY)",
    )
    p.add_argument("--no-publish", action="store_true", help="skip asv publish")
    p.add_argument(
        "--baseline-python",
        metavar="PYTHON",
        help="interpreter with the baseline torch; the night is gated against it "
        "(without it the night is recorded, not gated)",
    )
    p.add_argument(
        "--baseline-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="environment of the baseline's processes (KEY= removes KEY); repeatable",
    )
    p.add_argument(
        "--processes",
        type=int,
        default=DEFAULT_PROCESSES,
        help=f"gate rounds: fresh processes per side (default {DEFAULT_PROCESSES})",
    )
    p.add_argument(
        "--budget",
        type=float,
        default=DEFAULT_BUDGET,
        help=f"gate: seconds per case in each process (default {DEFAULT_BUDGET:g})",
    )
    p.add_argument(
        "--machine",
        metavar="NAME",
        help="asv machine name (default: $COPYBENCH_MACHINE, else the hostname); a night is "
        "set beside the previous night of the same machine",
    )
    p.add_argument(
        "--history",
        metavar="REPO",
        help="git repository (URL or path) whose --history-branch holds every night: "
        "restored before the run, tonight committed and pushed after it",
    )
    p.add_argument("--history-branch", default=HISTORY_BRANCH, metavar="BRANCH")
    p.add_argument(
        "--paired",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also measure the report's paired comparisons and archive them with the night "
        "(default: when nothing narrows the run and it is on the CPU; about 2 minutes)",
    )
    instruction_option(p)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["merge"]:
        return merge_main(argv[1:])
    args = _parser().parse_args(argv)
    root = project_root()
    try:
        from copybench.measure.gate import check_gate_levels

        check_gate_levels(args.threshold, args.alpha)
    except UsageError as e:
        print(f"copybench nightly: {e}", file=sys.stderr)
        return 2
    sel = Selection(
        methods=args.method,
        sizes=args.size,
        dtypes=args.dtype,
        models=args.model,
        devices=args.device or ["cpu"],
    )
    try:
        machine = machine_name(args.machine)
        if args.history:
            held = restore_history(args.history, args.history_branch, args.results, args.archive)
            print(f"copybench nightly: {held} nights restored from {args.history_branch}")
            if not held:
                _warn_empty_history(args.summary, f"branch {args.history_branch} of the history")
        elif os.environ.get("GITHUB_EVENT_NAME") == "schedule" and not nights(args.archive):
            _warn_empty_history(args.summary, "the archive")
        with tempfile.TemporaryDirectory(prefix="copybench-nightly-") as tmp:
            # Tonight runs into a results folder of its own: asv merges a run into the
            # file of the same commit and environment, so a night run into the history's
            # folder would carry an earlier night's cases as its own (and draw a flat
            # trend where there was a step).  That file then joins the history, replacing
            # an earlier night's of the same commit and environment (in the archive).
            fresh = Path(tmp) / "results"
            config = config_copy(root, fresh, args.html, Path(tmp))
            before = nights(args.archive, machine)
            results_file = run_asv(sel, config=config, extra=["--record-samples"], machine=machine)
            narrowed = sel.narrowed or sel.devices != ["cpu"]
            if args.paired or (args.paired is None and not narrowed):
                from copybench.measure.asvrun import write_paired
                from copybench.measure.paired import comparisons, measure_comparisons

                write_paired(results_file, measure_comparisons(comparisons(), log=sys.stderr))
            tonight = archive_night(results_file, args.archive)
            print(f"copybench nightly: results archived as {tonight}")
            _copy_tree(fresh, args.results, replace=True)
            if not args.no_publish:
                (Path(tmp) / "publish").mkdir()
                publish(config_copy(root, args.results, args.html, Path(tmp) / "publish"), root)
        failed: list[str] = []
        if before:
            print(f"copybench nightly: {before[-1].name} -> {tonight.name} (across runs)")
            from copybench.results.compare import ACROSS_RUNS_ALPHA, ACROSS_RUNS_THRESHOLD

            failed += compare_nights(
                before[-1],
                tonight,
                ACROSS_RUNS_THRESHOLD if args.threshold is None else args.threshold,
                ACROSS_RUNS_ALPHA if args.alpha is None else args.alpha,
                args.summary,
            )
        else:
            text = f"copybench nightly: first night ({tonight.name}); nothing to set beside it."
            print(text)
            _append(args.summary, text)
        if args.baseline_python:
            from copybench.measure.gate import _env_pairs, want_instructions

            failed += gate(
                args.baseline_python,
                _env_pairs(args.baseline_env),
                sel,
                args.processes,
                args.threshold,
                args.alpha,
                args.summary,
                instructions=want_instructions(args.instructions),
                out=tonight.with_name(tonight.stem + GATE_SUFFIX),
                budget=args.budget,
            )
        else:
            text = "copybench nightly: no --baseline-python: recorded, not gated."
            print(text)
            _append(args.summary, text)
        if args.history:
            save_history(
                args.history,
                args.history_branch,
                args.results,
                args.archive,
                f"night {tonight.stem} ({machine})",
            )
            print(f"copybench nightly: tonight committed to {args.history_branch}")
        for name in failed:
            print(f"copybench nightly: {name}", file=sys.stderr)
        return 1 if failed else 0
    except (ResultsError, CaseError, UsageError, WorkerError, HistoryError) as e:
        print(f"copybench nightly: {e}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as e:
        print(f"copybench nightly: {' '.join(map(str, e.cmd[:5]))} ... failed", file=sys.stderr)
        return 2


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
        _copy_tree(res, results)
        if (src / "nightly").is_dir():
            _copy_tree(src / "nightly", archive)
    if not machines:
        raise ResultsError("no machine's results among " + ", ".join(map(str, sources)))
    return sorted(set(machines))


def merge_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="python -m copybench.jobs.nightly merge",
        description="Merge the results of several machines (the nightly's runner matrix) "
        "into one asv results folder, one archive, one asv site and one report.",
    )
    p.add_argument("sources", nargs="+", type=Path, help="folders holding results/ and nightly/")
    p.add_argument("--results", type=Path, default=Path(".asv/results"))
    p.add_argument("--archive", type=Path, default=Path(".asv/nightly"))
    p.add_argument("--html", type=Path, default=Path(".asv/html"), help="asv publish output")
    p.add_argument("--report-out", type=Path, default=Path("reports"), help="report parent")
    p.add_argument("--report-name", default="nightly")
    args = p.parse_args(argv)
    root = project_root()
    try:
        machines = merge_machines(args.sources, args.results, args.archive)
        print(f"copybench nightly: merged {len(machines)} machines: {', '.join(machines)}")
        with tempfile.TemporaryDirectory(prefix="copybench-nightly-") as tmp:
            publish(config_copy(root, args.results, args.html, Path(tmp)), root)
        subprocess.run(
            [sys.executable, "-m", "copybench", "report", str(args.results)]
            + ["--out", str(args.report_out), "--name", args.report_name]
            + ["--asv-html", str(args.html), "--nights", str(args.archive)]
            # Runners of a matrix differ by design (a GPU runner beside an x86 one).
            + ["--allow-different-machines"],
            check=True,
        )
        return 0
    except (ResultsError, FileNotFoundError) as e:
        print(f"copybench nightly: {e}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as e:
        print(f"copybench nightly: {' '.join(map(str, e.cmd[:5]))} ... failed", file=sys.stderr)
        return 2


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


if __name__ == "__main__":
    sys.exit(main())
