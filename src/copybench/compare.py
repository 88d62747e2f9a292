"""``copybench compare``: not written yet (see the issue that asks for it)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``compare`` subcommand (a placeholder until its issue lands)."""
