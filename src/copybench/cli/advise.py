"""``copybench advise MODEL``: which copy to use for the user's own model, measured on it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from copybench.cli.options import add_command, env_pairs


def register(sub: argparse._SubParsersAction) -> None:
    s = add_command(
        sub,
        "advise",
        help="which copy to use for YOUR model: every route timed on it, and what each keeps",
        description="Build MODEL and time every way of copying it (deepcopy, a state_dict "
        "snapshot, load_state_dict into an existing copy, _foreach_copy_ into buffers, "
        "torch.save/torch.load and safetensors through memory, on a GPU a snapshot into "
        "pinned host memory) against deepcopy: paired, interleaved, in fresh processes, each "
        "beside its control, 95% CIs over processes. Also each route's peak memory and what "
        "it keeps of this model (ties, buffers, requires_grad, hooks, parametrizations, "
        "attributes), observed. Prints the answer first. MODEL is package.module:factory "
        "(with --kwarg KEY=VALUE), a state_dict or checkpoint file (read with "
        "torch.load(weights_only=True) only), or a torchvision or timm architecture's name "
        "(random weights, nothing downloaded). A factory RUNS YOUR CODE, as python -c would. "
        "About 1 to 2 minutes for a ResNet-50 here (progress on stderr).",
        examples=[
            "copybench advise mypackage.models:build --kwarg depth=12",
            "copybench advise checkpoint.pt --routes state_dict_snapshot,save_load",
            "copybench advise resnet50 --html advice.html --out advice.json",
        ],
    )
    _options(s)
    s.set_defaults(func=cmd_advise)


def _options(s: argparse.ArgumentParser) -> None:
    from copybench.measure.advise import ADVISE_BUDGET, ADVISE_PROCESSES
    from copybench.suite.cases import ADVISE_DTYPES, ADVISE_ROUTES

    s.add_argument("model", metavar="MODEL", help="package.module:factory, a checkpoint, or a name")
    s.add_argument(
        "--kwarg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a keyword argument for the factory (repeatable; VALUE a Python literal or text)",
    )
    s.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    s.add_argument(
        "--dtype",
        help=f"convert the model's floating-point tensors ({', '.join(ADVISE_DTYPES)}; "
        "default: as built)",
    )
    s.add_argument(
        "--routes",
        metavar="A,B",
        help=f"only these routes, comma-separated (deepcopy is always the reference); "
        f"known: {', '.join(ADVISE_ROUTES)}",
    )
    s.add_argument(
        "--processes",
        type=int,
        default=ADVISE_PROCESSES,
        help=f"fresh timing processes (default {ADVISE_PROCESSES})",
    )
    s.add_argument(
        "--budget",
        type=float,
        default=ADVISE_BUDGET,
        help="seconds of paired measurement per comparison, all processes together (a cap; "
        f"a large model takes its minimum of quads instead; default {ADVISE_BUDGET:g})",
    )
    s.add_argument("--threads", default="1", help="intra-op threads: a number or 'all' (default 1)")
    s.add_argument("--json", action="store_true", help="print the results as JSON instead")
    s.add_argument("--out", type=Path, metavar="FILE", help="also write the results as JSON here")
    s.add_argument("--html", type=Path, metavar="FILE", help="also write the answer as a page here")


def cmd_advise(args: argparse.Namespace) -> int:
    from copybench.jobs.advise import run_advise
    from copybench.suite.usermodel import ModelSource

    source = ModelSource(args.model, env_pairs(args.kwarg, "--kwarg"), args.device, args.dtype)
    routes = [r.strip() for r in args.routes.split(",")] if args.routes is not None else None
    threads = args.threads if args.threads == "all" else _threads(args.threads)
    print(
        run_advise(
            source,
            routes,
            processes=args.processes,
            budget=args.budget,
            threads=threads,
            as_json=args.json,
            out=args.out,
            html=args.html,
            log=sys.stderr,
        )
    )
    return 0


def _threads(text: str) -> int:
    from copybench.suite.cases import UsageError

    if not text.isdigit() or int(text) < 1:
        raise UsageError(f"threads must be a positive number or 'all', got {text!r}")
    return int(text)
