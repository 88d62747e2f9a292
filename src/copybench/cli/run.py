"""``copybench run``: the asv suite against the installed torch, then the paired study;
``copybench publish`` and ``copybench preview``: asv's own site of the results."""

from __future__ import annotations

import argparse
from pathlib import Path

from copybench.cli.options import add_command, method_option
from copybench.measure.asvrun import PREVIEW_PORT
from copybench.suite.cases import UsageError


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
    _register_site(sub)


def _register_site(sub: argparse._SubParsersAction) -> None:
    s = add_command(
        sub,
        "publish",
        help="publish asv's own site of the results (asv publish), viewable offline",
        description="Run asv publish over the results (.asv/results into .asv/html), then point "
        "asv's page at copies of the scripts it loads from CDNs (kept in .venv by "
        "scripts/setup.sh), so that its graphs draw without network. asv's pages must be "
        "served, not opened from disk: see copybench preview. A few seconds.",
        examples=["copybench publish", "copybench publish --config other/asv.conf.json"],
    )
    s.add_argument("--config", type=Path, help="asv config (default: ./asv.conf.json)")
    s.set_defaults(func=cmd_publish)
    s = add_command(
        sub,
        "preview",
        help="publish asv's site of the results, then serve it: open the address printed",
        description="copybench publish, then asv preview: asv's own server on --port, until "
        "Ctrl-C. Open http://127.0.0.1:PORT/ in a browser (the report's link to asv's graphs "
        "points there, at the default port).",
        examples=["copybench preview", "copybench preview --port 8123"],
    )
    s.add_argument("--config", type=Path, help="asv config (default: ./asv.conf.json)")
    s.add_argument(
        "--port", type=int, default=PREVIEW_PORT, help=f"port to serve on (default {PREVIEW_PORT})"
    )
    s.set_defaults(func=cmd_preview)


def cmd_publish(args: argparse.Namespace) -> int:
    from copybench.jobs.asvsite import publish_results

    print(f"copybench: asv's site written to {publish_results(args.config)}")
    return 0


def cmd_preview(args: argparse.Namespace) -> int:
    from copybench.jobs.asvsite import publish_results, serve

    if not 0 < args.port < 65536:
        raise UsageError(f"--port must be between 1 and 65535, got {args.port}")
    publish_results(args.config)
    print(f"copybench: asv's graphs at http://127.0.0.1:{args.port}/ (Ctrl-C to stop)", flush=True)
    serve(args.config, args.port)
    return 0  # not reached: serve() becomes asv's server


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
