"""Device-aware timing helpers: threads, synchronisation, warm-up, memory high-water marks.

The statistics computed from timings live in :mod:`copybench.stats`.
"""

from __future__ import annotations

import os
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


def warm_up(fn: Callable[[], Any], device: str | torch.device, calls: int = 3) -> None:
    """Run ``fn`` a few times: first-call costs (dispatcher caches, the CUDA context and
    caching allocator, lazy module init) are not what a copy costs in steady state."""
    for _ in range(calls):
        fn()
    synchronize(device)


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
