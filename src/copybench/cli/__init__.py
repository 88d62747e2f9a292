"""``copybench``: the command line, the only place that parses arguments.  Each command
(a module per family: :mod:`.suite`, :mod:`.run`, :mod:`.results`, :mod:`.overhead`,
:mod:`.advise`, :mod:`.gate`, :mod:`.gpu`, :mod:`.nightly`) parses its arguments, calls the
library, prints and returns its exit status.

Exit status: 0 success; 1 a check found a difference (semantics mismatch, a regression);
2 bad input (unknown method, size, device; a CUDA request without a GPU; missing or
malformed results), always with one line on stderr.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Callable, Sequence

from copybench.formats import ResultsError
from copybench.measure.workers import WorkerError
from copybench.suite.cases import CaseError, UsageError
from copybench.suite.methods import UnknownMethodError

# The exceptions that mean bad input (exit status 2, one line).
BAD_INPUT = (UsageError, CaseError, UnknownMethodError, ResultsError, FileNotFoundError)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="copybench",
        description="What each way of copying a PyTorch tensor or model costs, and does.",
        epilog="Run 'copybench COMMAND --help' for what a command does, how long it takes, "
        "and examples.",
    )
    _add_version(p)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # The command families, in the order --help lists their commands: each module's
    # ``register(subparsers)`` adds parsers whose ``func`` takes the parsed args and returns
    # an exit status.  Imported here, not above: ``copybench --version`` must not pay for
    # what building the parsers imports (torch, pandas).
    from copybench.cli import advise, gate, gpu, nightly, overhead, results, run, suite

    for family in (suite, run, results, overhead, advise, gpu, gate, nightly):
        family.register(sub)
    return p


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
    except BrokenPipeError:
        # The reader went away (``copybench show ... | head``): nothing more to say, and
        # Python must not complain when it flushes stdout at exit.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports a command killed by it


if __name__ == "__main__":
    sys.exit(main())
