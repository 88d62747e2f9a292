"""Allocator effects on large CPU copies: made visible, and the remedies measured.

Why this exists: a ``clone`` of a large CPU tensor is three costs - asking the allocator for
memory, the kernel faulting in every page of it on first write, and the copy itself - and
the middle one is not a constant.  glibc serves blocks above its *dynamic* mmap threshold
with ``mmap`` and returns them with ``munmap``; the threshold rises to the size of the last
freed mmapped block, so whether a 4 MiB clone reuses warm heap memory or maps, faults in
and unmaps fresh pages depends on the process's history.  The same statement's timings are
then bimodal (about 0.13 ms or 1.4 ms for 4 MiB in this project's issue), and a median
reports whichever mode won.  Above 32 MiB (glibc's cap on that threshold) every clone maps
fresh pages.

So this module times one call per sample (a batch of calls would average the modes),
reports the split (:func:`copybench.suite.stats.split_modes`), separates the costs
(``empty_like``: allocation only, pages untouched; ``copy_into``: the copy alone, into a
resident buffer; ``clone``: all three), and measures the remedies side by side, each in a
fresh process whose environment fixes the allocator's behaviour before it starts.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from copybench.suite.cases import (
    ALLOCATION_ONLY,
    ALLOCATOR_OPS,
    ALLOCATOR_SIZES,
    REMEDIES,
    UNSTATED_DTYPE,
    CaseError,
)

_GLIBC_VARS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_TRIM_THRESHOLD_")

DEFAULT_SAMPLES = 60


def bind_op(op: str, x: Any) -> Callable[[], Any]:
    """One allocation-related operation on ``x``; the copies come from the registry."""
    import torch

    from copybench.suite.methods import get_method

    if op not in ALLOCATOR_OPS:
        raise CaseError(f"unknown allocator op {op!r}; known: {', '.join(ALLOCATOR_OPS)}")
    if op == ALLOCATION_ONLY:
        return lambda: torch.empty_like(x)
    return get_method(op).bind(x)


def prepare_op(op: str, numel: int, threads: int | str = 1) -> tuple[Callable[[], Any], Any]:
    """(callable, source) for an allocator case: float32, no grad, CPU, warmed up."""
    from copybench.suite.cases import make_tensor
    from copybench.suite.timing import resolve_threads, set_threads, warm_up

    set_threads(resolve_threads(threads))
    x = make_tensor(numel, UNSTATED_DTYPE, False, "contiguous", "cpu")
    fn = bind_op(op, x)
    warm_up(fn, "cpu")
    return fn, x


def sample_seconds(fn: Callable[[], Any], n: int = DEFAULT_SAMPLES) -> list[float]:
    """``n`` timings of one call each: a large allocation flips between modes call by call."""
    from copybench.suite.timing import time_block

    return [time_block(fn, 1) for _ in range(n)]


def measure_remedy(
    remedy: str,
    ops: Sequence[str] = ALLOCATOR_OPS,
    sizes: Sequence[int] = ALLOCATOR_SIZES,
    n: int = DEFAULT_SAMPLES,
    timeout: float = 300,
) -> dict[tuple[str, int], list[float]]:
    """Single-call timings of each op and size in a fresh process under ``remedy``'s
    environment.  The glibc variables are read once, when the process starts, so the
    only way to compare them is a process each; inherited ones are cleared first.
    A worker that fails or runs past ``timeout`` seconds raises WorkerError."""
    from copybench.measure.workers import run_worker

    if remedy not in REMEDIES:
        raise CaseError(f"unknown remedy {remedy!r}; known: {', '.join(REMEDIES)}")
    env = {k: v for k, v in os.environ.items() if k not in _GLIBC_VARS}
    env.update(REMEDIES[remedy])
    spec = {"ops": list(ops), "sizes": [int(s) for s in sizes], "n": n}
    out = run_worker("copybench.measure.allocator", spec, env=env, timeout=timeout)
    return {(r["op"], r["numel"]): r["samples"] for r in out}


def _worker(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The process of :func:`measure_remedy`: every size and op of ``spec``."""
    results = []
    for numel in spec["sizes"]:
        for op in spec["ops"]:
            fn, x = prepare_op(op, numel)
            results.append({"op": op, "numel": numel, "samples": sample_seconds(fn, spec["n"])})
            del fn, x
    return results


if __name__ == "__main__":
    from copybench.measure.workers import worker_main

    worker_main(_worker)
