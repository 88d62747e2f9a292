"""Case preparation shared by every harness (asv, pytest-benchmark, the CLI).

A harness names a case; this module builds it: threads set, source created and touched,
the method bound (its own preparation done), the copy wrapped with a device synchronisation
and warmed up.  What comes back is the one callable the harness times.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from copybench.suite.cases import (
    DEFAULT_THREADS,
    UNSTATED_DTYPE,
    CaseError,
    make_model,
    make_tensor,
    make_transfer_source,
    nbytes,
)
from copybench.suite.methods import UnavailableMethod, get_method
from copybench.suite.timing import reset_cuda_allocator, set_threads, synchronized, warm_up

# Self-test hook for the regression gate (tests/test_compare.py, tests/test_nightly.py):
# the named methods do their copy twice - or N times, written ``method:N`` - a genuinely
# slower copy, not a doctored number, and every harness records the list with its results
# (asv sidecar, pytest machine_info, gate results).
SLOW_DOWN_VAR = "COPYBENCH_SLOW_DOWN"


def _slow_downs() -> dict[str, int]:
    out = {}
    for item in os.environ.get(SLOW_DOWN_VAR, "").split(","):
        name, _, times = item.partition(":")
        if name:
            out[name] = int(times) if times.isdigit() and int(times) > 1 else 2
    return out


def slowed_down_methods() -> list[str]:
    return sorted(_slow_downs())


def _maybe_slowed(method: str, call: Callable[[], Any]) -> Callable[[], Any]:
    times = _slow_downs().get(method)
    if times is None:
        return call

    def repeated() -> Any:
        for _ in range(times - 1):
            call()
        return call()

    return repeated


@dataclass
class Prepared:
    """A case ready to time: ``run()`` performs one synchronised copy, ``call()`` the same
    copy without the synchronisation (for CUDA-event timing over a batch of calls)."""

    run: Callable[[], Any]
    call: Callable[[], Any]
    device: str
    threads: int
    nbytes: int  # bytes of the source (tensor, or all parameters of a model)
    source: Any  # kept alive for as long as the case is


def _method_of_kind(method: str, kind: str) -> Any:
    """The registered method ``method``; ValueError unless it copies a ``kind``."""
    m = get_method(method)
    if m.kind != kind:
        raise ValueError(f"{method!r} is a {m.kind} method, not a {kind} method")
    return m


def _ready(
    method: str,
    bound: Callable[[], Any],
    device: str,
    threads: int,
    size: int,
    source: Any,
    warm: bool = True,
    also_sync: tuple[str, ...] = (),
) -> Prepared:
    """The bound copy made ready to time: repeated if the self-test hook asks, synchronised
    on ``device`` (and on each of ``also_sync``), warmed up unless ``warm`` is false."""
    call = _maybe_slowed(method, bound)
    run = synchronized(call, device)
    for other in also_sync:
        run = synchronized(run, other)
    if warm:
        warm_up(run, device)
    return Prepared(run, call, device, threads, size, source)


# asv re-runs ``setup`` before every sample so that state cannot drift between samples.
# Nothing here drifts: no registered copy writes to its source, and copy_into's buffer is
# *meant* to stay resident.  Re-creating a 128 MiB source and re-warming it for every sample
# would cost seconds per case, so the most recent case is kept (one at a time: memory stays
# bounded by the largest case).
@functools.lru_cache(maxsize=1)
def prepare_tensor_case(
    method: str,
    numel: int,
    dtype: str,
    requires_grad: bool,
    layout: str,
    device: str,
    threads: int = DEFAULT_THREADS,
    warm: bool = True,
) -> Prepared:
    """Raises CaseError (or UnknownMethodError) for a case that cannot run here.
    ``warm=False`` skips the warm-up: for a run that checks the case works and times
    nothing (the test run's pass over the pytest-benchmark harness)."""
    m = _method_of_kind(method, "tensor")
    threads = set_threads(threads)
    x = make_tensor(numel, dtype, requires_grad, layout, device)
    reset_cuda_allocator(device)
    return _ready(method, m.bind(x), device, threads, nbytes(numel, dtype), x, warm=warm)


@functools.lru_cache(maxsize=1)
def prepare_module_case(
    method: str, model: str, device: str, threads: int = DEFAULT_THREADS
) -> Prepared:
    m = _method_of_kind(method, "module")
    threads = set_threads(threads)
    source, spec = make_model(model, device)
    reset_cuda_allocator(device)
    size = sum(p.numel() * p.element_size() for p in source.parameters())
    try:
        bound = m.bind(source, spec.build)
    except UnavailableMethod as e:
        raise CaseError(str(e)) from None
    return _ready(method, bound, device, threads, size, source)


@functools.lru_cache(maxsize=1)
def prepare_transfer_case(
    method: str, numel: int, host_memory: str, threads: int = DEFAULT_THREADS
) -> Prepared:
    """A device transfer; ``device`` of the result is the GPU whose queue is timed."""
    m = _method_of_kind(method, "transfer")
    threads = set_threads(threads)
    x, target, pinned = make_transfer_source(method, numel, host_memory)
    gpu = str(x.device) if x.device.type == "cuda" else target
    reset_cuda_allocator(gpu)
    # Synchronise every GPU involved: a non-blocking copy must be complete when timed.
    peer = (target,) if target.startswith("cuda") and x.device.type == "cuda" else ()
    bound = m.bind(x, target, pinned)
    size = nbytes(numel, UNSTATED_DTYPE)
    return _ready(method, bound, gpu, threads, size, x, also_sync=peer)
