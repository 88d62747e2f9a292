"""``copybench nightly`` and ``copybench nightly merge``: the nightly regression run, and the
merge of several machines' nights into one site and one report.

Errors are the night's: one line on stderr, ``copybench nightly: ...``, exit status 2 (bad
input, a history that cannot be read or written, a step that failed); 1 when the gate found
a regression or a drift.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from copybench.cli.options import add_command, env_pairs, instruction_option


def register(sub: argparse._SubParsersAction) -> None:
    s = add_command(
        sub,
        "nightly",
        help="the nightly regression run: asv, archive, publish, set beside the last night, gate",
        description="Run the asv suite against the installed torch with raw samples recorded "
        "(and the paired study unless narrowed), archive the night's results under a name "
        "with its date, machine, torch and commit, publish asv's HTML, set the night beside "
        "the machine's previous night (across runs: no verdict on wall time) and, with "
        "--baseline-python, gate it: the gate selection timed in both interpreters, "
        "interleaved in fresh processes, its instructions counted where valgrind is "
        "available, its semantics observed on both sides; the gate's results are archived "
        "beside the night's. Exit status 1 when a copy regressed or drifted in the gate, 2 "
        "on bad input. --history keeps every night in a git branch. The whole CPU suite "
        "takes about 7 minutes here, the gate about 4 more. 'copybench nightly merge' "
        "merges several machines' nights into one asv site and one report.",
        examples=[
            "copybench nightly --baseline-python /path/to/baseline/python",
            "copybench nightly --method clone --size 1024 --results /tmp/n/r --archive /tmp/n/a "
            "--html /tmp/n/h",
            "copybench nightly --machine laptop --history git@example.org:me/bench-history.git",
            "copybench nightly merge runner-a/ runner-b/ --results m/results --archive m/nightly "
            "--html m/html",
        ],
    )
    _run_options(s)
    _gate_options(s)
    _history_options(s)
    instruction_option(s)
    s.set_defaults(func=cmd_nightly)
    _merge(s.add_subparsers(dest="nightly_command", metavar="merge"))


def _run_options(s: argparse.ArgumentParser) -> None:
    """Where the night's results, archive and HTML go; what narrows the run."""
    s.add_argument("--results", type=Path, default=Path(".asv/results"), help="asv results")
    s.add_argument("--archive", type=Path, default=Path(".asv/nightly"), help="one file per night")
    s.add_argument("--html", type=Path, default=Path(".asv/html"), help="asv publish output")
    s.add_argument("--method", action="append", default=[], help="narrow the run (repeatable)")
    s.add_argument("--size", action="append", default=[], type=int, help="narrow the run")
    s.add_argument("--dtype", action="append", default=[])
    s.add_argument("--model", action="append", default=[])
    s.add_argument("--device", action="append", default=[])


def _gate_options(s: argparse.ArgumentParser) -> None:
    """The levels, the job summary, publishing, the baseline and the gate's rounds."""
    from copybench.measure.gate import DEFAULT_BUDGET, DEFAULT_PROCESSES

    s.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="smallest change that counts (default: 0.05 across nights; the gate's own, "
        "0.02, in the gate)",
    )
    s.add_argument(
        "--alpha",
        type=float,
        default=None,
        help="significance level (default: 0.05 across nights; the gate's own, 0.01)",
    )
    s.add_argument(
        "--summary",
        type=Path,
        default=_summary_default(),
        help="file to append the markdown table to (default: $GITHUB_STEP_SUMMARY)",
    )
    s.add_argument("--no-publish", action="store_true", help="skip asv publish")
    s.add_argument(
        "--baseline-python",
        metavar="PYTHON",
        help="interpreter with the baseline torch; the night is gated against it "
        "(without it the night is recorded, not gated)",
    )
    s.add_argument(
        "--baseline-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="environment of the baseline's processes (KEY= removes KEY); repeatable",
    )
    s.add_argument(
        "--processes",
        type=int,
        default=DEFAULT_PROCESSES,
        help=f"gate rounds: fresh processes per side (default {DEFAULT_PROCESSES})",
    )
    s.add_argument(
        "--budget",
        type=float,
        default=DEFAULT_BUDGET,
        help=f"gate: seconds per case in each process (default {DEFAULT_BUDGET:g})",
    )


def _history_options(s: argparse.ArgumentParser) -> None:
    """The machine, the history branch, the paired study."""
    from copybench.jobs.history import HISTORY_BRANCH

    s.add_argument(
        "--machine",
        metavar="NAME",
        help="asv machine name (default: $COPYBENCH_MACHINE, else the hostname); a night is "
        "set beside the previous night of the same machine",
    )
    s.add_argument(
        "--history",
        metavar="REPO",
        help="git repository (URL or path) whose --history-branch holds every night: "
        "restored before the run, tonight committed and pushed after it",
    )
    s.add_argument("--history-branch", default=HISTORY_BRANCH, metavar="BRANCH")
    s.add_argument(
        "--paired",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also measure the report's paired comparisons and archive them with the night "
        "(default: when nothing narrows the run and it is on the CPU; about 2 minutes)",
    )


def _merge(sub: argparse._SubParsersAction) -> None:
    s = add_command(
        sub,
        "merge",
        help="merge several machines' nights into one asv site and one report",
        description="Merge the results of several machines (the nightly's runner matrix) "
        "into one asv results folder, one archive, one asv site and one report: each source "
        "a folder holding results/ (an asv results folder) and nightly/ (its archive), as a "
        "runner uploads them. asv keeps each machine in its own subfolder, so one asv "
        "publish shows them side by side; the report sets them side by side too. About a "
        "minute.",
        examples=[
            "copybench nightly merge machines/* --results merged/results --archive "
            "merged/nightly --html merged/html --report-out merged/html",
        ],
    )
    s.add_argument("sources", nargs="+", type=Path, help="folders holding results/ and nightly/")
    s.add_argument("--results", type=Path, default=Path(".asv/results"))
    s.add_argument("--archive", type=Path, default=Path(".asv/nightly"))
    s.add_argument("--html", type=Path, default=Path(".asv/html"), help="asv publish output")
    s.add_argument("--report-out", type=Path, default=Path("reports"), help="report parent")
    s.add_argument("--report-name", default="nightly")
    s.set_defaults(func=cmd_merge)


def _failed(e: BaseException) -> int:
    """The night's one line on stderr for an error, and its exit status, 2."""
    if isinstance(e, subprocess.CalledProcessError):
        print(f"copybench nightly: {' '.join(map(str, e.cmd[:5]))} ... failed", file=sys.stderr)
    else:
        print(f"copybench nightly: {e}", file=sys.stderr)
    return 2


def _night_errors() -> tuple[type[BaseException], ...]:
    from copybench.formats import ResultsError
    from copybench.jobs.history import HistoryError
    from copybench.measure.workers import WorkerError
    from copybench.suite.cases import CaseError, UsageError

    return (
        ResultsError,
        CaseError,
        UsageError,
        WorkerError,
        HistoryError,
        subprocess.CalledProcessError,
    )


def cmd_nightly(args: argparse.Namespace) -> int:
    from copybench.jobs.nightly import Night, run_night
    from copybench.measure.asvrun import Selection

    try:
        night = Night(
            Selection(
                methods=args.method,
                sizes=args.size,
                dtypes=args.dtype,
                models=args.model,
                devices=args.device or ["cpu"],
            ),
            results=args.results,
            archive=args.archive,
            html=args.html,
            summary=args.summary,
            publish=not args.no_publish,
            baseline_python=args.baseline_python,
            baseline_env=env_pairs(args.baseline_env),
            processes=args.processes,
            budget=args.budget,
            threshold=args.threshold,
            alpha=args.alpha,
            machine=args.machine,
            history=args.history,
            history_branch=args.history_branch,
            paired=args.paired,
            instructions=args.instructions,
        )
        failed = run_night(night)
    except _night_errors() as e:
        return _failed(e)
    for name in failed:
        print(f"copybench nightly: {name}", file=sys.stderr)
    return 1 if failed else 0


def cmd_merge(args: argparse.Namespace) -> int:
    from copybench.formats import ResultsError
    from copybench.jobs.nightly import merge_nights

    try:
        index = merge_nights(
            args.sources,
            args.results,
            args.archive,
            args.html,
            args.report_out,
            args.report_name,
        )
    except (ResultsError, FileNotFoundError, subprocess.CalledProcessError) as e:
        return _failed(e)
    print(f"copybench: report written to {index}")
    return 0


def _summary_default() -> Path | None:
    """``--summary``'s default: $GITHUB_STEP_SUMMARY, where set."""
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    return Path(summary) if summary else None
