"""``copybench show``, ``copybench compare`` and ``copybench report``: results on disk, read."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from copybench.cli.options import add_command, instruction_threshold_option

SHOW_MODES = ("headline", "csv", "table")

FORMATS = ("text", "markdown", "json")

# Plain text, lines under 80 columns: argparse prints them as they are written here.
DESCRIPTION = """\
Compare two sets of results case by case; exit 1 when a benchmark regressed.

A verdict on wall time needs several fresh processes per side, run
interleaved: give the results file of `copybench gate` alone.  Two results
files (asv, pytest-benchmark) hold one run per side: they are compared across
runs, with the ratio of medians shown and no verdict ("too few processes").
Instruction counts repeat exactly and are judged by the threshold alone.

Both sides must come from the same CPU and GPU models, unless
--allow-different-machines.  Exit status: 0 nothing regressed, 1 something
did, 2 bad input."""

EPILOG = """\
examples:
  # the verdicts of a `copybench gate --out gate.json` run
  copybench compare gate.json
  # two files written by pytest --benchmark-json
  copybench compare base.json head.json
  # two runs saved by pytest --benchmark-autosave, by id, in ./.benchmarks
  copybench compare 0001 0002
  copybench compare 0001 0002 --storage ci/.benchmarks
  # one asv results folder, two torch versions at one commit
  copybench compare .asv/results --base-env 2.13.0 --head-env 2.14.1
  # results from two different machines, as a markdown table
  copybench compare a.json b.json --allow-different-machines --format markdown"""


def register(sub: argparse._SubParsersAction) -> None:
    _show(sub)
    _compare(sub)
    _report(sub)


def _show(sub: argparse._SubParsersAction) -> None:
    s = add_command(
        sub,
        "show",
        help="summarize asv or pytest-benchmark results: a line per case family",
        description="Read an asv results file, every results file under a folder, or a "
        "pytest-benchmark JSON file into copybench's tidy table (one row per measurement: "
        "metric, method, size, dtype, device, threads, model, median and IQR) and print a "
        "summary of it: per machine and torch, one line per case family (every case axis "
        "but the size or the model), its medians left to right in units, unstable ones "
        "marked ~. --table prints the whole tidy table, --csv the same as CSV, --headline "
        "the README's headline table. Takes a few seconds.",
        examples=[
            "copybench show .asv/results",
            "copybench show --table .asv/results",
            "copybench show --headline .asv/results",
            "copybench show --csv .asv/results > results.csv",
            "copybench show .benchmarks/Linux-CPython-3.11-64bit/0001_*.json",
        ],
    )
    s.add_argument("path", help="asv results file or folder, or pytest-benchmark JSON")
    s.add_argument("--table", action="store_true", help="print the whole tidy table")
    s.add_argument("--csv", action="store_true", help="print CSV instead of a summary")
    s.add_argument(
        "--headline", action="store_true", help="print the README's headline table (markdown)"
    )
    s.set_defaults(func=cmd_show)


def _compare(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help="compare two sets of results; exit 1 when a benchmark significantly regressed",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _compare_options(p)
    p.set_defaults(func=cmd_compare)


def _compare_options(p: argparse.ArgumentParser) -> None:
    """The two sides, where run ids are found, and the levels."""
    from copybench.formats import PYTEST_BENCHMARK_STORAGE

    p.add_argument(
        "base",
        help="copybench gate results, asv results file or folder, pytest-benchmark JSON, or "
        "the id of a run pytest-benchmark saved (0001)",
    )
    p.add_argument(
        "head",
        nargs="?",
        help="the same kind of input; may be left out when BASE is an asv folder compared "
        "across --base-env and --head-env",
    )
    p.add_argument(
        "--storage",
        metavar="DIR",
        default=PYTEST_BENCHMARK_STORAGE,
        help="where run ids are looked up, as pytest-benchmark's --benchmark-storage "
        "(default: .benchmarks)",
    )
    p.add_argument(
        "--allow-different-machines",
        action="store_true",
        help="compare results from different CPU or GPU models (the header says so)",
    )
    p.add_argument(
        "--base-env", metavar="ENV", help="asv environment name or torch version of BASE"
    )
    p.add_argument(
        "--head-env", metavar="ENV", help="asv environment name or torch version of HEAD"
    )
    p.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="smallest change that counts, as a fraction (default 0.05: 5%%; for gate "
        "results the gate's, 0.02)",
    )
    p.add_argument(
        "--alpha",
        type=float,
        default=None,
        help="significance level after Holm's correction (default 0.05; for gate results "
        "the gate's, 0.01)",
    )
    instruction_threshold_option(p, prefix="gate results: ")
    p.add_argument("--format", choices=FORMATS, default="text")


def _report(sub: argparse._SubParsersAction) -> None:
    from copybench.report.build import DEFAULT_NAME, DEFAULT_OUT, DEFAULT_RESULTS

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


def cmd_show(args: argparse.Namespace) -> int:
    from copybench.report.summary import show

    how = next((m for m in SHOW_MODES if getattr(args, m)), "summary")
    print(show(args.path, how), end="")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from copybench.results.compare import compare_inputs

    verdicts = compare_inputs(
        args.base,
        args.head,
        storage=args.storage,
        base_env=args.base_env,
        head_env=args.head_env,
        allow_different_machines=args.allow_different_machines,
        threshold=args.threshold,
        alpha=args.alpha,
        instruction_threshold=args.instruction_threshold,
    )
    if verdicts.warning:
        print(f"copybench compare: {verdicts.warning}", file=sys.stderr)
    print(verdicts.render(args.format))
    return 1 if verdicts.failed else 0


def cmd_report(args: argparse.Namespace) -> int:
    from copybench.report.build import DEFAULT_RESULTS, build_report, report_dest

    built = build_report(
        args.results or [DEFAULT_RESULTS],
        report_dest(args.out, args.name),
        args.asv_html,
        nights=args.nights,
        reference_machine=args.reference_machine,
        allow_different_machines=args.allow_different_machines,
    )
    print(f"copybench: report written to {built.index}")
    return 0
