"""``copybench semantics`` and ``copybench list``: the registry and the grid."""

from __future__ import annotations

import argparse
import json
import sys

from copybench.cli.options import add_command, method_option


def register(sub: argparse._SubParsersAction) -> None:
    s = add_command(
        sub,
        "semantics",
        help="observe each copy method's semantics on this torch",
        description="Run every registered copy method (or those named) on a source that "
        "requires grad and observe what the copy really does on the installed torch: new "
        "storage or shared, requires grad, gradient flowing back to the source, autograd "
        "leaf, shared version counter. Prints the observed table; exit status 1 when an "
        "observation differs from what the registry declares. Takes a few seconds.",
        examples=[
            "copybench semantics",
            "copybench semantics --method clone_detach --method detach_clone --json",
            "copybench semantics --device cuda",
        ],
    )
    method_option(s)
    s.add_argument(
        "--device", default="cpu", help="where the probed tensors and models live (cpu, cuda)"
    )
    s.add_argument("--json", action="store_true", help="print JSON instead of a table")
    s.set_defaults(func=cmd_semantics)

    s = add_command(
        sub,
        "list",
        help="list the registered copy methods and the grid",
        description="List every registered copy method (name, tensor or module, its code) "
        "and the grid the suite runs over: tensor sizes, dtypes, layouts, devices, threads, "
        "and the reference models with their parameter counts. Instant.",
        examples=["copybench list", "copybench list --json"],
    )
    s.add_argument(
        "--json", action="store_true", help="print JSON, with each method's declared semantics"
    )
    s.set_defaults(func=cmd_list)


def cmd_semantics(args: argparse.Namespace) -> int:
    from copybench.suite.semantics import format_table, probe_all

    observations = probe_all(args.method or None, args.device)
    if args.json:
        print(json.dumps([o.as_dict() for o in observations], indent=2))
    else:
        print(format_table(observations))
    bad = [o for o in observations if o.mismatches]
    for o in bad:
        print(
            f"copybench: {o.method.name}: observed semantics differ from the registry "
            f"({', '.join(o.mismatches)})",
            file=sys.stderr,
        )
    return 1 if bad else 0


def cmd_list(args: argparse.Namespace) -> int:
    from copybench.suite.catalog import catalog, catalog_text

    data = catalog()
    print(json.dumps(data, indent=2) if args.json else catalog_text(data))
    return 0
