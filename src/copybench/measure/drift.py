"""Semantic drift: what each copy method does, observed on both sides of a comparison.

Why the gate needs it: timings cannot see a change of meaning.  A ``clone`` that starts
returning a view gets *faster*, and a timing gate passes it as an improvement, while every
caller that relied on a private copy is now writing into its source.  So each side (an
interpreter and its environment, as the gate runs it) observes the registry's methods with
the same probes ``copybench semantics`` uses, and any property that differs between the two
sides is a finding, whatever the registry declares: the registry is what we believe, the
base side is what the code being replaced really did.

Each side is observed in a fresh process of its own interpreter, never in this one: the
change under test may live in that interpreter's torch or be injected into its environment
at start-up (``copybench.measure.injection``), where nothing in this process can see it.
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

from copybench.measure.workers import PACKAGE_ROOT, WorkerError, run_bounded
from copybench.suite.methods import SEMANTIC_PROPERTIES

# ``copybench semantics`` exits 1 when an observation contradicts the registry, which is
# what a changed side does: with JSON on stdout that is an observation, not a failure.
_OBSERVED_STATUSES = (0, 1)

# The row of a method that ran on one side and was skipped on the other.
RUNS = "runs"

Observed = dict[str, dict[str, bool] | None]


def _child_environ(environ: dict[str, str]) -> dict[str, str]:
    """``environ`` with :data:`PACKAGE_ROOT` appended to ``PYTHONPATH``, after the entries
    it already has: those stay first (one may hold an injected ``sitecustomize``, which
    ``site`` imports from the first folder that has one), and PYTHONPATH as a whole still
    comes before the interpreter's site-packages, so an installed copybench does not win."""
    env = dict(environ)
    existing = env.get("PYTHONPATH", "")
    if PACKAGE_ROOT not in existing.split(os.pathsep):
        env["PYTHONPATH"] = os.pathsep.join([existing, PACKAGE_ROOT]) if existing else PACKAGE_ROOT
    return env


def _last_line(text: str) -> str:
    """The last non-empty line of a child's stderr (a traceback's exception, a
    ``sys.exit`` message), shortened: enough to say what went wrong in one line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return "nothing on stderr"
    last = lines[-1]
    return last if len(last) <= 300 else "..." + last[-297:]


def _parse(stdout: str) -> Observed | None:
    """``{method: observed}`` from ``copybench semantics --json`` (a list of
    ``Observation.as_dict()``), or None where stdout is not that."""
    try:
        data = json.loads(stdout)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, list):
        return None
    out: Observed = {}
    for item in data:
        if not isinstance(item, dict) or not isinstance(item.get("method"), str):
            return None
        observed = item.get("observed")
        if observed is not None and not isinstance(observed, dict):
            return None
        out[item["method"]] = observed
    return out


def observe_side(python: str, environ: dict[str, str], timeout: float = 300) -> Observed:
    """Run ``python -m copybench.suite.semantics`` (the probes of ``copybench semantics --json``)
    with ``environ`` as its whole environment (pass ``Side.environ()``; this package's
    root is appended to its ``PYTHONPATH``) and return ``{method: observed properties}``,
    None for a method that could not run there (a transfer without a GPU).

    Exit status 1 with the JSON printed is a result (the side contradicts the registry).
    Anything else - another status, no JSON (an uncaught exception also exits 1), a run
    past ``timeout`` seconds, an interpreter that does not start - raises WorkerError with
    one line ending in the last line of the child's stderr."""
    # The probes of ``copybench semantics --json``, without the command line's imports.
    cmd = [python, "-m", "copybench.suite.semantics"]
    what = f"copybench semantics under {python}"
    try:
        done = run_bounded(
            cmd,
            timeout,
            env=_child_environ(environ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    except subprocess.TimeoutExpired:
        raise WorkerError(f"{what} ran past {timeout:g} s") from None
    except OSError as e:
        raise WorkerError(f"{what} could not start: {e}") from None
    status = done.returncode
    if status not in _OBSERVED_STATUSES:
        how = f"was killed by signal {-status}" if status < 0 else f"exited {status}"
        raise WorkerError(f"{what} {how}: {_last_line(done.stderr)}")
    observed = _parse(done.stdout)
    if observed is None:
        raise WorkerError(
            f"{what} printed no observations (exit {status}): {_last_line(done.stderr)}"
        )
    return observed


def _properties(base: dict[str, Any], head: dict[str, Any]) -> list[str]:
    """The properties to compare: the registry's, in its order, then any other that a side
    reports (a copybench with more probes on ``PYTHONPATH``), by name."""
    extra = (base.keys() | head.keys()) - set(SEMANTIC_PROPERTIES)
    return [*SEMANTIC_PROPERTIES, *sorted(extra)]


def _row(method: str, prop: str, base: bool | None, head: bool | None) -> dict[str, Any]:
    return {"method": method, "property": prop, "base": base, "head": head}


def drift_rows(base: Observed, head: Observed) -> list[dict[str, Any]]:
    """One row ``{method, property, base, head}`` per property whose observed value differs
    between the sides, by method name, then property in SEMANTIC_PROPERTIES order.

    A method observed on one side and skipped on the other is one row, property ``"runs"``,
    with True for the side that ran it.  A property only one side reports has None on the
    other, and counts as a difference.  Methods only one side knows are left out here (see
    :func:`unmatched`): they say the sides run different probes, not that a copy changed."""
    rows: list[dict[str, Any]] = []
    for method in sorted(base.keys() & head.keys()):
        b, h = base[method], head[method]
        if (b is None) != (h is None):
            rows.append(_row(method, RUNS, b is not None, h is not None))
            continue
        if b is None or h is None:
            continue
        for prop in _properties(b, h):
            if b.get(prop) != h.get(prop):
                rows.append(_row(method, prop, b.get(prop), h.get(prop)))
    return rows


def unmatched(base: Observed, head: Observed) -> list[str]:
    """Methods observed on one side only (the sides' copybench registries differ), by name."""
    return sorted(base.keys() ^ head.keys())


def word(value: bool | None) -> str:
    """An observed value as ``copybench semantics`` writes it: yes, no, n/a."""
    return "n/a" if value is None else "yes" if value else "no"


def drift_text(rows: list[dict[str, Any]]) -> list[str]:
    """One line per drift row, the way ``copybench semantics`` writes values:
    ``clone: new_storage yes -> no`` (base, then head)."""
    return [f"{r['method']}: {r['property']} {word(r['base'])} -> {word(r['head'])}" for r in rows]
