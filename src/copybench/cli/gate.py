"""``copybench gate`` and ``copybench power-study``: the regression gate, and what it catches."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from copybench.cli.options import (
    add_command,
    env_pairs,
    instruction_option,
    instruction_threshold_option,
)


def register(sub: argparse._SubParsersAction) -> None:
    _gate(sub)
    _power_study(sub)


def _gate(sub: argparse._SubParsersAction) -> None:
    s = add_command(
        sub,
        "gate",
        help="time base and head interleaved in fresh processes; exit 1 on a regression",
        description="Time base and head side by side, in rounds of one fresh process per "
        "side, back to back, in a random order balanced over the rounds; each round gives "
        "one log ratio of the two processes' medians per case. A case regressed when the "
        "exact rank-sum test between the rounds' two orders is significant (Holm-adjusted "
        "over the cases) and the estimate lies beyond 1 + --threshold. With callgrind "
        "available, both sides' instruction counts of every case are compared too (judged "
        "by --instruction-threshold), with every environment variable that tells the sides "
        "apart reaching both counts; and both sides run `copybench semantics`: a method "
        "that behaves differently is 'drifted'. Exit status 1 on a regression or a drift. "
        "The default selection with 24 rounds takes about 4 minutes (progress on stderr).",
        examples=[
            "copybench gate --base-python /path/to/baseline/python --head-python .venv/bin/python",
            "copybench gate --method clone --size 1024 --head-env COPYBENCH_SLOW_DOWN=clone:8 "
            "--out gate.json",
            "copybench gate --head-env PYTHONPATH=src/copybench/inject "
            "--head-env INJECT_SLOWDOWN=Tensor.clone:1.1   # a slowdown from outside",
            "copybench compare gate.json --format markdown   # the verdicts again, from --out",
        ],
    )
    s.add_argument("--base-python", default=sys.executable, help="base interpreter")
    s.add_argument("--head-python", default=sys.executable, help="head interpreter")
    s.add_argument(
        "--base-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="environment of the base side's processes (KEY= removes KEY); repeatable",
    )
    s.add_argument(
        "--head-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="the same for the head side",
    )
    selection_options(s)
    instruction_option(s)
    allocator_option(s)
    s.add_argument("--out", type=Path, help="also write the results here (JSON)")
    s.add_argument(
        "--format",
        choices=("text", "markdown", "json"),
        default="text",
        help="how to print the verdicts (default text)",
    )
    s.set_defaults(func=cmd_gate)


def _power_study(sub: argparse._SubParsersAction) -> None:
    from copybench.jobs.power import DEFAULT_GATES

    s = add_command(
        sub,
        "power-study",
        help="run gates against injected slowdowns and A/A: detection and false-alarm rates",
        description="What does the gate catch, and how often does it cry wolf? Run --gates "
        "gates of the gate's design in which the head is this interpreter with nothing "
        "injected (A/A) or with torch.Tensor.clone / torch.Tensor.copy_ wrapped, from "
        "outside copybench (a sitecustomize on PYTHONPATH), to take --factor times as long. "
        "Prints per case and variant in how many gates it was named, by either measure and "
        "by wall time alone, and the median wall ratio; * marks the cases that call the "
        "wrapped method. --load runs a bursty neighbour on the other core; --placebo puts "
        "the wrappers in every process, at 1.0 where not slowed. Each study gate "
        "runs 1 + variants processes a round (about 5 minutes a gate here for 4 variants).",
        examples=[
            "copybench power-study --gates 10 --target clone --factor 1.1 --out power.json",
            "copybench power-study --gates 10 --load --target clone --target copy_ "
            "--factor 1.05 --factor 1.1 --factor 1.2",
            "copybench power-study --from power.json --alpha 0.05   # re-judge saved gates",
        ],
    )
    s.add_argument("--gates", type=int, default=DEFAULT_GATES, help="study gates (default 10)")
    _slowdown_options(s)
    selection_options(s)
    instruction_option(s)
    allocator_option(s)
    s.add_argument("--out", type=Path, help="also write every gate's results here (JSON)")
    s.add_argument(
        "--append",
        action="store_true",
        help="add this run's gates to those already in --out (same variants, rounds, "
        "load and placebo): a study too long for one sitting",
    )
    s.add_argument("--from", dest="source", type=Path, help="judge a saved study, run nothing")
    s.add_argument("--json", action="store_true", help="print the rows as JSON")
    s.set_defaults(func=cmd_power_study)


def _slowdown_options(s: argparse.ArgumentParser) -> None:
    """What the study injects, and what runs beside it."""
    from copybench.jobs.power import TARGETS

    s.add_argument(
        "--target",
        action="append",
        default=[],
        metavar="NAME",
        help=f"the method to slow down: {' or '.join(TARGETS)} (repeatable; default clone)",
    )
    s.add_argument(
        "--factor",
        action="append",
        default=[],
        type=float,
        help="how many times as long it takes (repeatable; default 1.05, 1.1 and 1.2)",
    )
    s.add_argument(
        "--aa-only",
        action="store_true",
        help="no slowdown, the A/A head alone: false alarms at 2 processes a round",
    )
    s.add_argument("--load", action="store_true", help="a bursty neighbour on the other core")
    s.add_argument(
        "--placebo",
        action="store_true",
        help="every process carries the wrappers, at a factor of 1.0 where it is not "
        "slowed, and each its own cost: the sides differ in the slowdown alone, not also "
        "in the monkeypatch",
    )


def selection_options(s: argparse.ArgumentParser) -> None:
    """What to gate, how many rounds and how long, the levels of the verdicts."""
    from copybench.measure.gate import (
        DEFAULT_ALPHA,
        DEFAULT_BUDGET,
        DEFAULT_PROCESSES,
        DEFAULT_THRESHOLD,
    )

    s.add_argument(
        "--method",
        action="append",
        default=[],
        metavar="NAME",
        help="only this method (repeatable; default: the gate selection)",
    )
    s.add_argument(
        "--size",
        action="append",
        default=[],
        type=int,
        metavar="NUMEL",
        help="tensor size in elements (repeatable)",
    )
    s.add_argument("--model", action="append", default=[], help="reference model (repeatable)")
    s.add_argument(
        "--processes",
        type=int,
        default=DEFAULT_PROCESSES,
        help=f"rounds: fresh processes per side (default {DEFAULT_PROCESSES})",
    )
    s.add_argument(
        "--budget",
        type=float,
        default=DEFAULT_BUDGET,
        help=f"seconds per case in each process (default {DEFAULT_BUDGET:g})",
    )
    s.add_argument(
        "--threshold",
        type=float,
        default=None,
        help=f"smallest timed change that counts, as a fraction (default {DEFAULT_THRESHOLD:g})",
    )
    instruction_threshold_option(s)
    s.add_argument(
        "--alpha",
        type=float,
        default=None,
        help=f"significance level after Holm's correction (default {DEFAULT_ALPHA:g})",
    )


def allocator_option(s: argparse.ArgumentParser) -> None:
    s.add_argument(
        "--allocator",
        choices=("fixed", "dynamic"),
        default="fixed",
        help="glibc's allocator in both sides' processes: fixed thresholds and no tcache "
        "(default; see cases.GATE_ALLOCATOR), or glibc's dynamic default",
    )


def _design(args: argparse.Namespace):
    """The gate's design as ``gate`` and ``power-study`` take it."""
    from copybench.jobs.gate import GateDesign

    return GateDesign(
        methods=args.method,
        sizes=args.size,
        models=args.model,
        processes=args.processes,
        budget=args.budget,
        instructions=args.instructions,
        threshold=args.threshold,
        alpha=args.alpha,
        instruction_threshold=args.instruction_threshold,
    )


def cmd_gate(args: argparse.Namespace) -> int:
    from copybench.jobs.gate import GateRun, failed, judged_gate
    from copybench.measure.gate import Side, allocator_of
    from copybench.results.compare import render

    allocator = allocator_of(args.allocator)
    run = GateRun(
        Side("base", args.base_python, env_pairs(args.base_env), allocator),
        Side("head", args.head_python, env_pairs(args.head_env), allocator),
        _design(args),
        args.out,
    )
    run.check()
    table = judged_gate(run, log=sys.stderr)
    threshold, alpha = table.attrs["threshold"], table.attrs["alpha"]
    print(render(table, args.format, threshold=threshold, alpha=alpha))
    return 1 if failed(table) else 0


def cmd_power_study(args: argparse.Namespace) -> int:
    from copybench.jobs.power import PowerStudy, power_study

    study = PowerStudy(
        _design(args),
        gates=args.gates,
        targets=args.target,
        factors=args.factor,
        aa_only=args.aa_only,
        load=args.load,
        placebo=args.placebo,
        allocator=args.allocator,
        out=args.out,
        append=args.append,
        source=args.source,
    )
    print(power_study(study, as_json=args.json, log=sys.stderr))
    return 0
