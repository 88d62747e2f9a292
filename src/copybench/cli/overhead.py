"""``copybench overhead`` and ``copybench noise-study``: the tracked clone's overhead, and
how far repeated estimates of it disagree."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from copybench.cli.options import add_command


def register(sub: argparse._SubParsersAction) -> None:
    _overhead(sub)
    _noise_study(sub)


def _overhead(sub: argparse._SubParsersAction) -> None:
    s = add_command(
        sub,
        "overhead",
        help="paired estimate of the tracked-clone overhead (clone().detach() vs detach().clone())",
        description="Estimate, per size, what x.clone().detach() costs over x.detach().clone() "
        "for a source that requires grad: the two statements alternate in ABBA blocks of "
        "about 2 ms, each quad gives one ratio, the time budget is spread over fresh worker "
        "processes run one after another, and the 95% CI resamples whole processes. With the "
        "defaults it takes 30 s to a minute, nearly all of it the workers starting torch "
        "(progress on stderr); --workers 1 measures in this process in a few seconds, with a "
        "larger spread. --instructions counts instructions per call with callgrind instead "
        "(one Valgrind run, deterministic).",
        examples=[
            "copybench overhead",
            "copybench overhead --sizes 1024 65536 --workers 4 --json",
            "copybench overhead --instructions",
        ],
    )
    add_overhead_options(s)
    s.add_argument(
        "--instructions",
        action="store_true",
        help="count instructions per call with callgrind instead of timing (CPU, 1 thread)",
    )
    s.add_argument("--json", action="store_true", help="print a JSON list, one object per size")
    s.set_defaults(func=cmd_overhead)


def _noise_study(sub: argparse._SubParsersAction) -> None:
    s = add_command(
        sub,
        "noise-study",
        help="repeat the overhead estimate in fresh processes; spread per size, paired vs "
        "independent medians",
        description="Can the overhead estimate gate a build? Repeat it --processes times, one "
        "repetition after another, each in fresh processes, and print per size how far the "
        "repetitions disagree (max - min) for three ways of measuring at the same time "
        "budget: copybench overhead as shipped (spread over --workers processes), the same "
        "paired measurement in one process, and two independent blocked_autorange medians; "
        "with --instruction-repeats, the spread of callgrind's counts too. About 5 minutes "
        "with the defaults (progress on stderr).",
        examples=[
            "copybench noise-study",
            "copybench noise-study --instruction-repeats 3   # as scripts/noise_study.sh does",
            "copybench noise-study --sizes 1024 --processes 3 --workers 2 --json",
        ],
    )
    add_overhead_options(s)
    s.add_argument(
        "--processes",
        type=int,
        default=8,
        metavar="N",
        help="repetitions, each in fresh processes (default 8)",
    )
    s.add_argument(
        "--instruction-repeats",
        type=int,
        default=0,
        metavar="N",
        help="also count instructions N times (one Valgrind run each, about 15 s)",
    )
    s.add_argument("--json", action="store_true", help="print JSON instead of a table")
    s.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="FILE",
        help="also write the JSON here (the table is still printed)",
    )
    s.set_defaults(func=cmd_noise_study)


def add_overhead_options(s: argparse.ArgumentParser) -> None:
    """The options ``overhead`` and ``noise-study`` share (checked by
    :func:`copybench.measure.overhead.overhead_options`)."""
    from copybench.measure.paired import DEFAULT_BUDGET, DEFAULT_WORKERS
    from copybench.suite.cases import OVERHEAD_SIZES

    s.add_argument(
        "--sizes",
        nargs="+",
        default=None,
        metavar="NUMEL",
        help=f"tensor sizes in elements (default: {' '.join(map(str, OVERHEAD_SIZES))})",
    )
    s.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    s.add_argument(
        "--dtype", default="float32", help="dtype of the copied tensor (default float32)"
    )
    s.add_argument(
        "--budget",
        type=float,
        default=DEFAULT_BUDGET,
        metavar="SECONDS",
        help=f"most measurement time per size, calibration included (default {DEFAULT_BUDGET})",
    )
    s.add_argument("--threads", default="1", help="intra-op threads: a number or 'all' (default 1)")
    s.add_argument(
        "--workers",
        type=int,
        default=DEFAULT_WORKERS,
        metavar="N",
        help=f"fresh processes the budget is spread over (default {DEFAULT_WORKERS}; "
        "1 measures in this process)",
    )
    s.add_argument(
        "--affinity",
        default=None,
        metavar="CPU[,CPU...]",
        help="pin the measuring processes to these CPUs (Linux; workers inherit it)",
    )


def _options(args: argparse.Namespace, default_sizes: tuple[int, ...]):
    from copybench.measure.overhead import overhead_options

    return overhead_options(
        args.sizes,
        default_sizes,
        args.dtype,
        args.device,
        args.threads,
        args.budget,
        args.workers,
        args.affinity,
    )


def cmd_overhead(args: argparse.Namespace) -> int:
    from copybench.measure.overhead import default_sizes, overhead

    opts = _options(args, default_sizes(args.instructions))
    print(overhead(opts, instructions=args.instructions, as_json=args.json, log=sys.stderr))
    return 0


def cmd_noise_study(args: argparse.Namespace) -> int:
    from copybench.measure.noise import noise_report
    from copybench.measure.overhead import default_sizes

    text = noise_report(
        _options(args, default_sizes(False)),
        args.processes,
        instruction_repeats_n=args.instruction_repeats,
        out=args.out,
        as_json=args.json,
        threads=args.threads,
        log=sys.stderr,
    )
    print(text)
    return 0
