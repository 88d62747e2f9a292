"""Environments that carry an injected change to torch into a process copybench starts.

Why from outside: a regression gate, a power study or a semantics check is only worth
something if it catches a change it was not told about.  So the change is made the way a
real one reaches a measurement - a different torch, another library's wrapper - by the
environment alone: ``inject/sitecustomize.py`` (never imported by copybench) is run by
``site`` at the start of any interpreter that has its folder on ``PYTHONPATH``, and reads
``INJECT_SLOWDOWN``, ``INJECT_PLACEBO`` and ``INJECT_VIEW`` (its docstring says what they
do).  The process under test needs no flag, no import and no cooperation; this module only
builds its environment.
"""

from __future__ import annotations

import os

from copybench.measure.workers import PACKAGE_DIR

INJECT_DIR = os.path.join(PACKAGE_DIR, "inject")


def pythonpath_with_inject(existing: str | None) -> str:
    """``existing`` (a ``PYTHONPATH`` value, or None) with :data:`INJECT_DIR` first.

    First, because ``site`` imports the first ``sitecustomize`` it finds on ``sys.path``
    and no other: any ``sitecustomize`` in a folder already on ``PYTHONPATH`` (or in
    site-packages) is shadowed while the injection is on.  An entry for the folder already
    in ``existing`` is dropped rather than repeated; the other entries keep their order."""
    rest = [p for p in existing.split(os.pathsep) if p != INJECT_DIR] if existing else []
    return os.pathsep.join([INJECT_DIR, *rest])


def injected_environ(**settings: str) -> dict[str, str]:
    """A copy of ``os.environ`` with the injection folder first on ``PYTHONPATH`` and
    ``settings`` set, e.g. ``injected_environ(INJECT_VIEW="Tensor.clone")`` or
    ``injected_environ(INJECT_SLOWDOWN="Tensor.clone:1.1")``; pass it as a worker's ``env``.

    With no settings the injection folder is on the path but changes nothing (the
    ``sitecustomize`` returns at once), which makes the A side of an A/B study whose
    environments differ in one variable only."""
    env = dict(os.environ)
    env["PYTHONPATH"] = pythonpath_with_inject(env.get("PYTHONPATH"))
    for name, value in settings.items():
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a string, got {type(value).__name__}")
        env[name] = value
    return env
