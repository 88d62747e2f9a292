#!/usr/bin/env python3
"""Why ``clone()`` of 4 MiB is slow in some processes and not in others: which heap block
glibc hands each call.

Runs ``--processes`` fresh interpreters, one after another, under the gate's allocator
settings (``copybench.suite.cases.GATE_ALLOCATOR``) and one thread.  Each clones a float32
tensor of ``--numel`` elements ``--calls`` times, the result dropped after each call as the
gate's timing loop drops it, and records which address every clone got and how long it took;
then times ``copy_`` of the same tensor into a buffer it keeps.  Prints one line per
process: the blocks the clones landed in (offset from the lowest) with the median time of
the calls that got each, and ``copy_``'s median; then how many processes reused one block and
how many alternated, with the range of their clone medians.

    .venv/bin/python scripts/clone_chunks.py [--processes 12] [--numel 1048576]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

WARM_UP = 50


def child(numel: int, calls: int) -> dict:
    """This process's clones by address, and its copy_ into a kept buffer (microseconds)."""
    import time

    import torch

    torch.set_num_threads(1)
    src = torch.randn(numel)
    by_block: dict[int, list[float]] = {}
    for i in range(WARM_UP + calls):
        t0 = time.perf_counter()
        out = src.clone()
        t1 = time.perf_counter()
        if i >= WARM_UP:
            by_block.setdefault(out.data_ptr(), []).append((t1 - t0) * 1e6)
        del out
    kept = torch.empty(numel)
    copies = []
    for i in range(WARM_UP + calls):
        t0 = time.perf_counter()
        kept.copy_(src)
        t1 = time.perf_counter()
        if i >= WARM_UP:
            copies.append((t1 - t0) * 1e6)
    low = min(by_block)
    return {
        "blocks": {str(p - low): statistics.median(v) for p, v in sorted(by_block.items())},
        "calls": {str(p - low): len(v) for p, v in sorted(by_block.items())},
        "clone_us": statistics.median([t for v in by_block.values() for t in v]),
        "copy_us": statistics.median(copies),
    }


def run(processes: int, numel: int, calls: int) -> list[dict]:
    from copybench.suite.cases import GATE_ALLOCATOR

    env = {**os.environ, **GATE_ALLOCATOR, "OMP_NUM_THREADS": "1"}
    out = []
    for _ in range(processes):
        args = [sys.executable, __file__, "--child", "--numel", str(numel), "--calls", str(calls)]
        done = subprocess.run(args, env=env, capture_output=True, text=True, check=True)
        out.append(json.loads(done.stdout))
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--processes", type=int, default=12)
    p.add_argument("--numel", type=int, default=1 << 20)
    p.add_argument("--calls", type=int, default=500)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.processes < 1 or args.numel < 1 or args.calls < 1:
        print(
            "clone_chunks.py: --processes, --numel and --calls must be at least 1", file=sys.stderr
        )
        return 2
    if args.child:
        print(json.dumps(child(args.numel, args.calls)))
        return 0
    results = run(args.processes, args.numel, args.calls)
    for r in results:
        blocks = "  ".join(
            f"+{int(off):#x}: {us:6.1f} us ({r['calls'][off]} calls)"
            for off, us in r["blocks"].items()
        )
        print(
            f"clone {r['clone_us']:6.1f} us  copy_ into a kept buffer "
            f"{r['copy_us']:6.1f} us  {blocks}"
        )
    for kind, group in (
        ("reused one block", [r for r in results if len(r["blocks"]) == 1]),
        ("alternated between blocks", [r for r in results if len(r["blocks"]) > 1]),
    ):
        if group:
            clones = sorted(r["clone_us"] for r in group)
            copies = sorted(r["copy_us"] for r in group)
            print(
                f"{len(group)} of {len(results)} processes {kind}: clone {clones[0]:.1f}-"
                f"{clones[-1]:.1f} us, copy_ {copies[0]:.1f}-{copies[-1]:.1f} us"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
