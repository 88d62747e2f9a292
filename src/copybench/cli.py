"""``copybench``: the command-line front door.  Parsing and calling only.

Exit status: 0 success; 1 a check found a difference (semantics mismatch, a regression);
2 bad input (unknown method, size, device; a CUDA request without a GPU; missing or
malformed results), always with one line on stderr.
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from .cases import CaseError
from .methods import UnknownMethodError
from .results import ResultsError
from .workers import WorkerError


class UsageError(Exception):
    """Bad input found after parsing; reported as one line with exit status 2."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="copybench",
        description="What each way of copying a PyTorch tensor or model costs, and does.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("semantics", help="observe each copy method's semantics on this torch")
    s.add_argument(
        "--method",
        action="append",
        default=[],
        metavar="NAME",
        help="only this method (repeatable)",
    )
    s.add_argument(
        "--device", default="cpu", help="where the probed tensors and models live (cpu, cuda)"
    )
    s.add_argument("--json", action="store_true", help="print JSON instead of a table")
    s.set_defaults(func=cmd_semantics)

    s = sub.add_parser("list", help="list the registered copy methods and the grid")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_list)

    s = sub.add_parser("run", help="run the asv suite against the installed torch")
    s.add_argument("--method", action="append", default=[], metavar="NAME")
    s.add_argument(
        "--size",
        action="append",
        default=[],
        metavar="NUMEL",
        help="tensor size in elements (repeatable)",
    )
    s.add_argument("--dtype", action="append", default=[])
    s.add_argument("--model", action="append", default=[])
    s.add_argument(
        "--device", action="append", default=[], help="cpu (default) or cuda (repeatable)"
    )
    s.add_argument("--quick", action="store_true", help="one sample per case (asv --quick)")
    s.add_argument("--config", type=Path, help="asv config (default: ./asv.conf.json)")
    s.add_argument(
        "--paired",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also measure the report's comparisons paired, in fresh processes (default: "
        "when nothing narrows the run and it is on the CPU; about 3 minutes here)",
    )
    s.set_defaults(func=cmd_run)

    s = sub.add_parser("show", help="print the tidy table of an asv results file or folder")
    s.add_argument("path")
    s.add_argument("--csv", action="store_true", help="print CSV instead of a summary")
    s.add_argument(
        "--headline", action="store_true", help="print the README's headline table (markdown)"
    )
    s.set_defaults(func=cmd_show)

    for name in COMMAND_MODULES:
        importlib.import_module(f"copybench.{name}").register(sub)
    return p


# Library modules that add their own subcommands: each has ``register(subparsers)``, which
# adds a parser whose ``func`` default takes the parsed args and returns an exit status.
# Heavy imports (pandas, matplotlib, scipy) stay inside those functions: ``copybench --help``
# must not pay for them.
COMMAND_MODULES: tuple[str, ...] = (
    "compare",
    "report",
    "overhead",
    "gpu",
    "gpucheck",
    "gate",
)


# --- commands ---------------------------------------------------------------------------------


def cmd_semantics(args: argparse.Namespace) -> int:
    from .methods import get_method
    from .semantics import format_table, probe_all

    names = [get_method(n).name for n in args.method] or None
    observations = probe_all(names, args.device)
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
    from . import cases
    from .methods import METHODS

    data = {
        "methods": [
            {
                "name": m.name,
                "kind": m.kind,
                "code": m.code,
                "doc": m.doc,
                "allocates": m.allocates,
                **m.semantics.as_dict(),
            }
            for m in METHODS.values()
        ],
        "tensor_axes": {k: list(v) for k, v in cases.TENSOR_AXES.items()},
        "models": {
            s.name: {"n_params": s.n_params, "n_tensors": s.n_tensors, "width": s.width}
            for s in cases.MODELS.values()
        },
    }
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    for m in data["methods"]:
        print(f"{m['name']:<26} {m['kind']:<7} {m['code'].splitlines()[0]}")
    print()
    for k, v in data["tensor_axes"].items():
        print(f"{k:<14} {', '.join(map(str, v))}")
    print(
        "models         "
        + ", ".join(
            f"{n} ({d['n_params']:,} params in {d['n_tensors']} tensors)"
            for n, d in data["models"].items()
        )
    )
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from .asvrun import Selection, run_asv

    sel = Selection(
        methods=args.method,
        sizes=[_parse_size(s) for s in args.size],
        dtypes=args.dtype,
        models=args.model,
        devices=args.device or ["cpu"],
    )
    path = run_asv(sel, quick=args.quick, config=args.config)
    print(f"copybench: results written to {path}")
    narrowed = sel.methods or sel.sizes or sel.dtypes or sel.models or sel.devices != ["cpu"]
    if args.paired or (args.paired is None and not narrowed):
        from .paired import comparisons, measure_comparisons, write_paired

        records = measure_comparisons(comparisons(), log=sys.stderr)
        print(f"copybench: paired measurements written to {write_paired(path, records)}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from .results import load_asv

    df = load_asv(args.path)
    if args.headline:
        from .results import headline_table

        print(headline_table(df))
        return 0
    if args.csv:
        print(df.drop(columns=["samples"]).to_csv(index=False), end="")
        return 0
    ok = df[df.status == "ok"]
    print(
        f"{len(df)} measurements ({len(ok)} ok, {(df.status == 'skipped').sum()} skipped, "
        f"{(df.status == 'failed').sum()} failed); torch {', '.join(df.torch_version.unique())}"
    )
    cols = [
        "metric",
        "method",
        "numel",
        "dtype",
        "requires_grad",
        "layout",
        "device",
        "threads",
        "model",
        "host_memory",
        "median",
        "iqr",
        "unit",
    ]
    with _pandas_wide():
        print(ok[cols].dropna(axis=1, how="all").to_string(index=False))
    return 0


def _parse_size(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"size must be an element count, got {text!r}") from None


def _pandas_wide():
    import pandas as pd

    return pd.option_context("display.width", 200, "display.max_rows", 10_000)


# --- entry point ------------------------------------------------------------------------------

BAD_INPUT: tuple[type[BaseException], ...] = (
    UsageError,
    CaseError,
    UnknownMethodError,
    ResultsError,
    FileNotFoundError,
)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except BAD_INPUT as e:
        print(f"copybench: {e}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as e:
        print(
            f"copybench: {' '.join(map(str, e.cmd[:4]))} ... failed with status {e.returncode}",
            file=sys.stderr,
        )
        return 1
    except WorkerError as e:
        print(f"copybench: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("copybench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
