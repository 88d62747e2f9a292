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
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path

from copybench.measure.workers import WorkerError
from copybench.suite.cases import CaseError, UsageError
from copybench.suite.methods import UnknownMethodError

# Width of a subcommand's description paragraph in --help (the examples are kept as written).
HELP_WIDTH = 79


def add_command(
    sub: argparse._SubParsersAction,
    name: str,
    *,
    help: str,
    description: str,
    examples: Sequence[str],
) -> argparse.ArgumentParser:
    """Add subcommand ``name`` in the shape every ``copybench COMMAND --help`` has: ``help``
    in the list of commands; ``description``, one paragraph (what it does, roughly how
    long it takes), wrapped here; then the ``examples``, one invocation a line, kept as
    written (``RawDescriptionHelpFormatter``)."""
    heading = "example:" if len(examples) == 1 else "examples:"
    return sub.add_parser(
        name,
        help=help,
        description=textwrap.fill(" ".join(description.split()), HELP_WIDTH),
        epilog="\n".join([heading, *(f"  {e}" for e in examples)]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _method_option(s: argparse.ArgumentParser) -> None:
    s.add_argument(
        "--method",
        action="append",
        default=[],
        metavar="NAME",
        help="only this method (repeatable)",
    )


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="copybench",
        description="What each way of copying a PyTorch tensor or model costs, and does.",
        epilog="Run 'copybench COMMAND --help' for what a command does, how long it takes, "
        "and examples.",
    )
    _add_version(p)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

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
    _method_option(s)
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
    _method_option(s)
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

    for name in COMMAND_MODULES:
        importlib.import_module(f"copybench.{name}").register(sub)
    return p


# Library modules that add their own subcommands: each has ``register(subparsers)``, which
# adds a parser whose ``func`` default takes the parsed args and returns an exit status.
# Heavy imports (pandas, matplotlib, scipy) stay inside those functions: ``copybench --help``
# must not pay for them.
COMMAND_MODULES: tuple[str, ...] = (
    "results.compare",
    "report.build",
    "measure.paired",
    "measure.noise",
    "measure.gpu",
    "jobs.gpucheck",
    "measure.gate",
    "jobs.power",
)


# --- commands ---------------------------------------------------------------------------------


def cmd_semantics(args: argparse.Namespace) -> int:
    from copybench.suite.methods import get_method
    from copybench.suite.semantics import format_table, probe_all

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
    from copybench.suite import cases
    from copybench.suite.methods import METHODS

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
        "cuda_sizes": [n for n in cases.GPU_SIZES if n not in cases.SIZES],
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
        print(f"{k:<14} {', '.join(map(str, v))}" + ("  (CPU and CUDA)" if k == "numel" else ""))
    print(f"{'numel (CUDA)':<14} {', '.join(map(str, data['cuda_sizes']))}  (besides, on CUDA)")
    print(
        "models         "
        + ", ".join(
            f"{n} ({d['n_params']:,} params in {d['n_tensors']} tensors)"
            for n, d in data["models"].items()
        )
    )
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from copybench.measure.asvrun import Selection, parse_suite_size, run_asv

    devices = args.device or ["cpu"]
    sel = Selection(
        methods=args.method,
        sizes=[parse_suite_size(s, devices) for s in args.size],
        dtypes=args.dtype,
        models=args.model,
        devices=devices,
    )
    path = run_asv(sel, quick=args.quick, config=args.config, machine=args.machine)
    print(f"copybench: results written to {path}")
    narrowed = sel.methods or sel.sizes or sel.dtypes or sel.models or sel.devices != ["cpu"]
    if args.paired or (args.paired is None and not narrowed):
        from copybench.measure.asvrun import write_paired
        from copybench.measure.paired import comparisons, measure_comparisons

        records = measure_comparisons(comparisons(), log=sys.stderr)
        print(f"copybench: paired measurements written to {write_paired(path, records)}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from copybench.results.tidy import load_results

    df = load_results([args.path])
    if args.headline:
        from copybench.report.headline import headline_table

        print(headline_table(df))
        return 0
    if args.csv:
        print(df.drop(columns=["samples"]).to_csv(index=False), end="")
        return 0
    if args.table:
        from copybench.report.summary import table_text

        with _pandas_wide():
            print(table_text(df))
        return 0
    from copybench.report.summary import summary_text

    print(summary_text(df))
    return 0


def _pandas_wide():
    import pandas as pd

    return pd.option_context("display.width", 200, "display.max_rows", 10_000)


# --- entry point ------------------------------------------------------------------------------


def version() -> str:
    """``copybench VERSION (torch VERSION)``: the installed package's version (its metadata;
    ``copybench.__version__`` where it is not installed, e.g. run from a source tree)."""
    from importlib import metadata

    import torch

    try:
        own = metadata.version("copybench")
    except metadata.PackageNotFoundError:
        from copybench import __version__ as own
    return f"copybench {own} (torch {torch.__version__})"


class _VersionAction(argparse.Action):
    """``--version``: print :func:`version` and exit 0."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(
            option_strings,
            dest=argparse.SUPPRESS,
            default=argparse.SUPPRESS,
            nargs=0,
            help="print copybench's and torch's versions and exit",
        )

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        print(version())
        parser.exit()


def _add_version(p: argparse.ArgumentParser) -> None:
    p.add_argument("--version", action=_VersionAction)


def _version_only() -> argparse.ArgumentParser:
    """A parser that knows only ``--version`` before the command: answered before the full
    parser is built, since building it imports every command's module (and with them
    pandas), which a version query must not pay for.  Everything from the command on is
    left alone (``copybench run --version`` is the run parser's to reject)."""
    p = argparse.ArgumentParser(prog="copybench", add_help=False)
    _add_version(p)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    return p


def bad_input() -> tuple[type[BaseException], ...]:
    """The exceptions that mean bad input (exit status 2, one line).  A function, not a
    constant: ``ResultsError`` lives beside pandas, which ``copybench --version`` and
    commands that read no results must not import."""
    from copybench.results.tidy import ResultsError

    return (UsageError, CaseError, UnknownMethodError, ResultsError, FileNotFoundError)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    _version_only().parse_known_args(argv)
    args = _parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except KeyboardInterrupt:
        print("copybench: interrupted", file=sys.stderr)
        return 130
    except bad_input() as e:
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
    except BrokenPipeError:
        # The reader went away (``copybench show ... | head``): nothing more to say, and
        # Python must not complain when it flushes stdout at exit.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports a command killed by it


if __name__ == "__main__":
    sys.exit(main())
