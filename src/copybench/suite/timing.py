"""Device-aware timing helpers: threads, synchronisation, warm-up, memory high-water marks.

The statistics computed from timings live in :mod:`copybench.suite.stats`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import torch


def set_threads(n: int) -> int:
    """Set torch's intra-op thread count and return the value now in force.

    Benchmarks never inherit the thread count from the environment: two machines with
    different core counts would otherwise time different things under the same name.
    """
    torch.set_num_threads(n)
    return torch.get_num_threads()


def synchronize(device: str | torch.device) -> None:
    """Wait for the device's queue to drain; a no-op on the CPU.

    CUDA kernels are launched asynchronously: timing without this measures the launch.
    """
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def synchronized(fn: Callable[[], Any], device: str | torch.device) -> Callable[[], Any]:
    """``fn`` followed by a device synchronisation (the identity on the CPU)."""
    if torch.device(device).type != "cuda":
        return fn

    def run() -> Any:
        result = fn()
        torch.cuda.synchronize(device)
        return result

    return run


# A first call at least this long has paid its first-call costs many times over.
WARM_AFTER_SECONDS = 0.01


def warm_up(fn: Callable[[], Any], device: str | torch.device, calls: int = 3) -> None:
    """Run ``fn`` a few times: first-call costs (dispatcher caches, the CUDA context and
    caching allocator, lazy module init) are not what a copy costs in steady state.

    On the CPU one call is enough where it took ``WARM_AFTER_SECONDS`` or more (a 128 MiB
    clone here: about 0.1 s of memory traffic and page faults, where the first-call costs
    are microseconds); the grid's 80 largest cases would otherwise spend two more such
    calls warming in every asv round.  (On a GPU a long first call may be the context
    starting, which says nothing about the second.)
    """
    t0 = time.perf_counter()
    fn()
    synchronize(device)
    if torch.device(device).type == "cpu" and time.perf_counter() - t0 >= WARM_AFTER_SECONDS:
        return
    for _ in range(calls - 1):
        fn()
    synchronize(device)


# --- CUDA -------------------------------------------------------------------------------------


def cuda_event_seconds(fn: Callable[[], Any], device: str, calls: int) -> float:
    """Seconds per call of ``fn`` from CUDA events around a batch of ``calls`` calls.

    No host synchronisation between calls: the GPU's own clock times the queue, so a 4 KiB
    copy is not swamped by the microseconds a ``synchronize`` costs.  Host overhead still
    counts where it is the bottleneck (the queue drains faster than the host fills it).
    """
    return cuda_event_block(fn, calls, device) / calls


def cuda_sync_seconds(fn: Callable[[], Any], device: str, calls: int) -> float:
    """Seconds per call of ``fn`` by the host clock with a synchronisation after every call:
    the figure a naive timer reports, kept beside the event-timed one to show the gap."""
    torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
        torch.cuda.synchronize(device)
    return (time.perf_counter() - t0) / calls


def calls_for(fn: Callable[[], Any], device: str, budget: float = 0.02) -> int:
    """How many calls of ``fn`` fill about ``budget`` seconds (at least 1)."""
    per_call = cuda_sync_seconds(fn, device, 3)
    return max(1, min(100_000, int(budget / max(per_call, 1e-7))))


def cuda_peak_bytes(fn: Callable[[], Any], device: str) -> int:
    """Bytes of GPU memory the call allocated at its peak (``max_memory_allocated``,
    reset just before the call, minus what was allocated then)."""
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    result = fn()
    torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device)
    del result
    return peak - before


def host_held_seconds(fn: Callable[[], Any], device: str, calls: int = 5) -> list[float]:
    """The times the host spends in ``fn`` itself, ``calls`` of them, the device queue
    drained before each call and after it, outside the timer: how long an asynchronous
    copy (``non_blocking``) holds the calling thread, where :func:`synchronized` timings
    say how long until its data is there."""
    times = []
    for _ in range(calls):
        synchronize(device)
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        synchronize(device)
    return times


def reset_cuda_allocator(device: str) -> None:
    """Start a case from a known allocator state: cached blocks released, peaks reset."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


# --- memory -----------------------------------------------------------------------------------


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not found in /proc/self/status")


def rss_peak_supported() -> bool:
    return os.path.exists("/proc/self/clear_refs")


def peak_rss_growth(fn: Callable[[], Any]) -> int:
    """Bytes by which the process's peak resident set grew while ``fn`` ran (Linux).

    The kernel's high-water mark (VmHWM) is reset through ``/proc/self/clear_refs`` just
    before the call, so the figure is the copy's own peak, not the process's history.  It
    counts pages actually touched; memory the allocator reuses without returning it to the
    kernel does not show, which is also what a user's process sees.
    """
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before = _status_kib("VmRSS")
    result = fn()
    peak = _status_kib("VmHWM")
    del result
    return max(0, peak - before) * 1024


# --- noise control ----------------------------------------------------------------------------

ALL_CORES = "all"


def resolve_threads(threads: int | str) -> int:
    """A thread-count parameter as a number: ``"all"`` is every core this process may use.

    Grids say ``"all"`` rather than a number so that their shape does not depend on the
    machine; the number actually used is recorded with the result.
    """
    if threads == ALL_CORES:
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    n = int(threads)
    if n < 1:
        raise ValueError(f"thread count must be at least 1 or {ALL_CORES!r}, got {threads!r}")
    return n


def pin_cpus(cpus: list[int] | tuple[int, ...] | set[int]) -> list[int]:
    """Restrict this process to ``cpus`` (Linux) and return the set now in force.

    Pinning keeps the scheduler from migrating a timing loop between cores (cold caches,
    a core at another frequency); it does not keep other processes off those cores.
    """
    os.sched_setaffinity(0, set(cpus))
    return sorted(os.sched_getaffinity(0))


def cuda_event_block(fn: Callable[[], Any], calls: int, device: str | torch.device) -> float:
    """Seconds for ``calls`` back-to-back calls of ``fn`` by CUDA events recorded before and
    after the batch (the queue drained first): the GPU's own clock, no host sync per call.
    A drop-in for :func:`time_block` on CUDA."""
    torch.cuda.synchronize(device)
    start = torch.cuda.Event(enable_timing=True)
    end = torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(calls):
        fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / 1e3


def time_block(fn: Callable[[], Any], calls: int, device: str | torch.device = "cpu") -> float:
    """Seconds for ``calls`` back-to-back calls of ``fn``, device queue drained at both ends.

    One synchronisation per block, not per call: on a GPU the block then measures the
    copies, not ``calls`` host round trips.
    """
    synchronize(device)
    t0 = time.perf_counter_ns()
    for _ in range(calls):
        fn()
    synchronize(device)
    return (time.perf_counter_ns() - t0) * 1e-9
