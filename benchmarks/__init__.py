"""copybench's asv suite: parameter plumbing and one library call per benchmark."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from copybench.suite.cases import CaseError


def prepared_or_skip(prepare: Callable[..., Any], *args: Any) -> Any:
    """Run a copybench ``prepare_*`` call; a case that cannot run here becomes an asv skip."""
    try:
        return prepare(*args)
    except CaseError as e:
        raise NotImplementedError(str(e)) from None
