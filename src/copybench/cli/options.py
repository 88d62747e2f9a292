"""What the commands share: the shape of a command's help, and the options several take."""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Sequence

from copybench.suite.cases import UsageError

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


def method_option(s: argparse.ArgumentParser) -> None:
    s.add_argument(
        "--method",
        action="append",
        default=[],
        metavar="NAME",
        help="only this method (repeatable)",
    )


def env_pairs(values: list[str], what: str = "environment setting") -> dict[str, str]:
    """``KEY=VALUE`` settings (``--base-env``, ``--head-env``, ``--baseline-env``,
    ``advise --kwarg``) as a dict; UsageError for one without ``=`` or a key."""
    out = {}
    for v in values:
        key, sep, value = v.partition("=")
        if not sep or not key:
            raise UsageError(f"{what} must be KEY=VALUE, got {v!r}")
        out[key] = value
    return out


def instruction_threshold_option(s: argparse.ArgumentParser, prefix: str = "") -> None:
    """``--instruction-threshold``, with the count rule it feeds (``stats.count_threshold``)."""
    from copybench.measure.gate import COUNT_RULE, DEFAULT_INSTRUCTION_THRESHOLD

    s.add_argument(
        "--instruction-threshold",
        type=float,
        default=None,
        help=f"{prefix}smallest change in an instruction count that counts (default "
        f"{DEFAULT_INSTRUCTION_THRESHOLD:g}), {COUNT_RULE}",
    )


def instruction_option(s: argparse.ArgumentParser) -> None:
    s.add_argument(
        "--instructions",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also count both sides' instructions per call with callgrind (default: where "
        "valgrind is available)",
    )
