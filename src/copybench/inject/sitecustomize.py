"""Changes to torch injected from outside copybench, at interpreter start.

This file is never imported by copybench.  A folder holding it, put first on a process's
``PYTHONPATH``, makes Python run it at start-up (``site`` imports ``sitecustomize``), before
any code of copybench's: the way a changed torch, a wrapper from another library or an
``LD_PRELOAD`` reaches a measurement in real life, with nothing for copybench to cooperate
with.  The power study (``copybench power-study``), the tests and anyone checking the gate
by hand use it through three variables, read only here:

``INJECT_SLOWDOWN="Tensor.clone:1.1"``
    every call of ``torch.Tensor.clone`` takes 1.1 times as long: the real call is timed
    and followed by a busy wait of 0.1 times its duration, less the wrapper's own cost
    (measured here at start-up), so that a fast call is not slowed by more than asked for
    where that can be helped.  Several, comma-separated: ``Tensor.clone:1.1,Tensor.copy_:1.2``.
``INJECT_PLACEBO=1``
    the process this one is compared with carries the same wrappers at a factor of 1.0 (a
    placebo), so the wrapper's own cost is on both sides and is not taken off the wait: a
    call then takes ``T + w + (F - 1) T`` against ``T + w`` there (``w``, the wrapper's
    cost), a ratio of ``1 + (F - 1) T / (T + w)``, which is ``F`` less the share of ``w``
    in the wrapped call.
``INJECT_VIEW="Tensor.clone"``
    the method returns a view of its tensor instead of a copy: a semantic change (shared
    storage, shared version counter) for the gate's semantics check to catch.

A bad setting stops the process at start-up with one line on stderr and exit status 2.
"""

from __future__ import annotations

import os
import sys


def _fail(message: str) -> None:
    # sys.exit inside ``site`` is a fatal start-up error with a traceback; one line it is.
    sys.stderr.write(f"sitecustomize: {message}\n")
    sys.stderr.flush()
    os._exit(2)


def _targets(value: str) -> list[tuple[str, str]]:
    out = []
    for item in filter(None, (s.strip() for s in value.split(","))):
        name, _, arg = item.partition(":")
        owner, _, attr = name.partition(".")
        if owner != "Tensor" or not attr:
            _fail(f"cannot inject into {name!r} (expected Tensor.METHOD)")
        out.append((attr, arg))
    return out


def _overhead(factor_wrap) -> int:
    """Nanoseconds the wrapper itself adds to a call, with nothing to wait for: the median
    of 15 runs of 2,000 wrapped calls of a no-op, less the same unwrapped."""
    import time

    def noop() -> None:
        return None

    wrapped = factor_wrap(noop, 1.0, 0)
    ns = time.perf_counter_ns

    def per_call(fn) -> float:
        t0 = ns()
        for _ in range(2000):
            fn()
        return (ns() - t0) / 2000

    diffs = sorted(per_call(wrapped) - per_call(noop) for _ in range(15))
    return max(0, int(diffs[len(diffs) // 2]))


def _slowed(fn, factor: float, overhead: int):
    import functools
    import time

    ns = time.perf_counter_ns
    extra = factor - 1.0

    @functools.wraps(fn)
    def slowed(*args, **kwargs):
        t0 = ns()
        out = fn(*args, **kwargs)
        t1 = ns()
        end = t1 + int((t1 - t0) * extra) - overhead
        while ns() < end:
            pass
        return out

    return slowed


def _install() -> None:
    slow = _targets(os.environ.get("INJECT_SLOWDOWN", ""))
    view = _targets(os.environ.get("INJECT_VIEW", ""))
    if not slow and not view:
        return
    import torch

    placebo = os.environ.get("INJECT_PLACEBO", "")
    if placebo not in ("", "0", "1"):
        _fail(f"INJECT_PLACEBO must be 0 or 1, got {placebo!r}")
    # Measured either way, so that every process with a wrapper starts the same.
    overhead = _overhead(_slowed) if slow else 0
    if placebo == "1":
        overhead = 0
    for attr, arg in slow:
        try:
            factor = float(arg)
        except ValueError:
            factor = float("nan")
        if not factor >= 1.0:
            _fail(f"INJECT_SLOWDOWN needs a factor of at least 1 for {attr}")
        if not hasattr(torch.Tensor, attr):
            _fail(f"torch.Tensor has no method {attr!r}")
        setattr(torch.Tensor, attr, _slowed(getattr(torch.Tensor, attr), factor, overhead))
    for attr, _ in view:
        if not hasattr(torch.Tensor, attr):
            _fail(f"torch.Tensor has no method {attr!r}")
        setattr(torch.Tensor, attr, lambda self, *args, **kwargs: self.view_as(self))


_install()
