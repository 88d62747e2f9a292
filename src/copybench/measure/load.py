"""The standard neighbour of ``copybench power-study --load``: a shared CI runner's other
jobs, on the other core.

What a hosted runner's neighbours do to a measurement is come and go: test processes that
start, import a large library and exit, and stretches of memory-bound work.  So this
neighbour, one process at a time (one core's worth), draws at random, again and again:

- 30%: a fresh ``python -c "import torch; ..."`` that clones a 4 MiB tensor and exits (the
  page faults, file reads and allocator churn of a test suite starting up);
- 50%: a burst of memory bandwidth, 0.2-2 s of copying a 64 MiB buffer into another (the
  last-level cache and the memory bus the measured copies need too);
- 20%: 0.1-1 s of rest.

It is seeded, so two studies see the same sequence of bursts (not the same timing of them:
that depends on the machine).  It runs until killed; :func:`neighbour` starts it in a
process group of its own and stops it with everything it started.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

IMPORT_TORCH = "import torch; torch.ones(1 << 20).clone()"
BANDWIDTH_BYTES = 64 << 20


def _bandwidth_burst(seconds: float) -> None:
    import numpy as np

    src = np.ones(BANDWIDTH_BYTES // 8)
    dst = np.empty_like(src)
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        np.copyto(dst, src)


def run(seed: int = 0) -> None:
    """The neighbour's loop (never returns)."""
    rng = random.Random(seed)
    while True:
        draw = rng.random()
        if draw < 0.3:
            subprocess.run([sys.executable, "-c", IMPORT_TORCH], check=False)
        elif draw < 0.8:
            _bandwidth_burst(rng.uniform(0.2, 2.0))
        else:
            time.sleep(rng.uniform(0.1, 1.0))


@contextlib.contextmanager
def neighbour(enabled: bool = True, seed: int = 0) -> Iterator[None]:
    """Run the neighbour for the duration of the ``with`` block (nothing if not
    ``enabled``); it and every process it started are killed on the way out."""
    if not enabled:
        yield
        return
    proc = subprocess.Popen(
        [sys.executable, "-m", "copybench.measure.load", str(seed)],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


if __name__ == "__main__":
    run(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
