"""``copybench run``: the asv suite against the installed torch, then the paired study."""

from __future__ import annotations

import argparse
from pathlib import Path

from copybench.cli.options import add_command, method_option


def register(sub: argparse._SubParsersAction) -> None:
    s = add_command(
        sub,
        "run",
        help="run the asv suite against the installed torch",
        description="Run the asv suite (the selection given, else the default CPU suite) "
        "against the torch installed beside copybench and save the results under .asv/results; "
        "then, unless the run was narrowed, measure the report's comparisons paired, in "
        "fresh processes, and store them beside the results. The default suite takes about "
        "7 minutes here (asv about 5, the paired study about 2, with progress on stderr); a "
        "narrow selection with --quick takes a fraction of that.",
        examples=[
            "copybench run",
            "copybench run --method clone --size 1024 --quick",
            "copybench run --device cuda --model 1e6x8",
        ],
    )
    method_option(s)
    s.add_argument(
        "--size",
        action="append",
        default=[],
        metavar="NUMEL",
        help="tensor size in elements (repeatable)",
    )
    s.add_argument("--dtype", action="append", default=[], help="only this dtype (repeatable)")
    s.add_argument(
        "--model", action="append", default=[], help="only this reference model (repeatable)"
    )
    s.add_argument(
        "--device", action="append", default=[], help="cpu (default) or cuda (repeatable)"
    )
    s.add_argument("--quick", action="store_true", help="one sample per case (asv --quick)")
    s.add_argument("--config", type=Path, help="asv config (default: ./asv.conf.json)")
    s.add_argument(
        "--machine",
        metavar="NAME",
        help="asv machine name the results are filed under (default: $COPYBENCH_MACHINE, "
        "else the hostname); CPU model, cores and GPU are recorded with it",
    )
    s.add_argument(
        "--paired",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also measure the report's comparisons paired, in fresh processes (default: "
        "when nothing narrows the run and it is on the CPU; about 2 minutes here)",
    )
    s.set_defaults(func=cmd_run)


# What is printed as each file is written.
WRITTEN = {
    "results": "copybench: results written to {}",
    "paired": "copybench: paired measurements written to {}",
}


def cmd_run(args: argparse.Namespace) -> int:
    from copybench.measure.asvrun import Selection, parse_suite_size, run_suite

    devices = args.device or ["cpu"]
    sel = Selection(
        methods=args.method,
        sizes=[parse_suite_size(s, devices) for s in args.size],
        dtypes=args.dtype,
        models=args.model,
        devices=devices,
    )
    runs = run_suite(sel, args.paired, quick=args.quick, config=args.config, machine=args.machine)
    for what, path in runs:
        print(WRITTEN[what].format(path))
    return 0
