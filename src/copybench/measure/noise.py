"""``copybench noise-study``: how far repeated estimates of the tracked-clone overhead
disagree, i.e. "can this number gate a build?".

The study repeats the estimate N times in fresh processes (fresh allocator, address layout
and caches; run one after another, never concurrently) and prints, per size, the spread
(max - min) of ``copybench overhead`` as shipped (spread over worker processes) beside the
same paired measurement in one process and the usual alternative, two independent medians
from ``torch.utils.benchmark``'s ``blocked_autorange``, all at the same time budget; with
``--instruction-repeats``, the spread of callgrind's counts too.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from copybench.measure.paired import (
    DEFAULT_BUDGET,
    DEFAULT_WORKERS,
    add_overhead_options,
    check_overhead_options,
    instruction_rows,
    measure_independent,
    measure_sizes,
    paired_overhead,
    parse_threads,
    pin_affinity,
    prepare_tensor_pair,
)
from copybench.measure.progress import Progress, note
from copybench.suite.cases import INSTRUCTION_SIZES, OVERHEAD_SIZES, PAIRS, CaseError

# The noise study's methods, in the order it prints them.
STUDY_METHODS: dict[str, str] = {
    "paired": "copybench overhead (paired, {workers} processes)",
    "paired_one_process": "paired, all in one process",
    "independent": "independent medians (blocked_autorange)",
}


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``noise-study`` subcommand."""
    from copybench.cli import add_command

    s = add_command(
        sub,
        "noise-study",
        help="repeat the overhead estimate in fresh processes; spread per size, paired vs "
        "independent medians",
        description="Can the overhead estimate gate a build? Repeat it --processes times, one "
        "repetition after another, each in fresh processes, and print per size how far the "
        "repetitions disagree (max - min) for three ways of measuring at the same time "
        "budget: copybench overhead as shipped (spread over --workers processes), the same "
        "paired measurement in one process, and two independent blocked_autorange medians; "
        "with --instruction-repeats, the spread of callgrind's counts too. About 5 minutes "
        "with the defaults (progress on stderr).",
        examples=[
            "copybench noise-study",
            "copybench noise-study --instruction-repeats 3   # as scripts/noise_study.sh does",
            "copybench noise-study --sizes 1024 --processes 3 --workers 2 --json",
        ],
    )
    add_overhead_options(s)
    s.add_argument(
        "--processes",
        type=int,
        default=8,
        metavar="N",
        help="repetitions, each in fresh processes (default 8)",
    )
    s.add_argument(
        "--instruction-repeats",
        type=int,
        default=0,
        metavar="N",
        help="also count instructions N times (one Valgrind run each, about 15 s)",
    )
    s.add_argument("--json", action="store_true", help="print JSON instead of a table")
    s.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="FILE",
        help="also write the JSON here (the table is still printed)",
    )
    s.set_defaults(func=cmd_noise_study)


def _worker(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """One fresh process of the noise study: per size, the paired estimate measured in this
    one process and the independent estimate, at the same budget (which comes first
    alternates between processes)."""
    pin_affinity(spec["affinity"])
    base, head = PAIRS["tracked_clone"]
    order = ("paired", "independent") if spec["paired_first"] else ("independent", "paired")
    out = []
    for numel in spec["sizes"]:
        pair = prepare_tensor_pair(
            base, head, numel, spec["dtype"], True, "contiguous", spec["device"], spec["threads"]
        )
        row: dict[str, Any] = {"numel": numel}
        for step in order:
            if step == "paired":
                row["paired_one_process"] = paired_overhead(pair, spec["budget"]).overhead_pct
            else:
                row["independent"] = measure_independent(
                    pair.base, pair.head, budget=spec["budget"]
                )
        out.append(row)
    return out


def noise_study(
    sizes: Sequence[int],
    processes: int,
    *,
    dtype: str = "float32",
    device: str = "cpu",
    threads: int | str = 1,
    budget: float | None = None,
    workers: int | None = None,
    affinity: str | None = None,
    log: TextIO | None = None,
) -> list[dict[str, Any]]:
    """Repeat the overhead estimate ``processes`` times, each in fresh processes, one
    after another: ``copybench overhead`` as shipped (its budget over ``workers`` fresh
    processes) and, in one further fresh process, the same paired measurement without
    workers and the independent medians, all at the same budget per size.

    Returns one object per size: the estimates of each method (percent), their spread and
    range, and the shipped estimate's median CI width.  Progress on ``log``, one step per
    fresh process.
    """
    from copybench.measure.workers import run_workers
    from copybench.suite import stats

    budget = DEFAULT_BUDGET if budget is None else budget
    workers = DEFAULT_WORKERS if workers is None else workers
    spec = {
        "sizes": list(sizes),
        "dtype": dtype,
        "device": device,
        "threads": threads,
        "budget": budget,
        "affinity": affinity,
    }
    runs = []
    with Progress(
        "copybench noise-study: tracked-clone overhead, fresh process",
        processes * (workers + 1),
        log,
    ) as progress:
        for i in range(processes):
            shipped = functools.partial(
                measure_sizes, sizes, dtype, device, threads, budget, workers, progress
            )
            one_process = functools.partial(
                run_workers,
                "copybench.measure.noise",
                {**spec, "paired_first": not i % 2},
                1,
                progress=progress,
            )
            # Alternate which comes first, as the one process alternates its two.
            if i % 2:
                (one,), many = one_process(), shipped()
            else:
                many, (one,) = shipped(), one_process()
            for row, r in zip(one, many, strict=True):
                row.update(
                    paired=r["overhead_pct"],
                    ci_low=r["ci_low_pct"],
                    ci_high=r["ci_high_pct"],
                    measured_s=r["seconds"],
                )
            runs.append(one)
    rows = []
    for j, numel in enumerate(sizes):
        per = [run[j] for run in runs]
        row: dict[str, Any] = {
            "numel": numel,
            "processes": processes,
            "workers": workers,
            "budget_s": budget,
        }
        for method in STUDY_METHODS:
            values = [p[method] for p in per]
            row[method] = {
                "estimates_pct": values,
                "min_pct": min(values),
                "median_pct": stats.median(values),
                "max_pct": max(values),
                "spread_pts": stats.spread(values),
            }
        row["paired"]["median_ci_width_pts"] = stats.median(
            [p["ci_high"] - p["ci_low"] for p in per]
        )
        # Measurement time, calibration included, worker startup not: the budget's check.
        row["paired"]["max_measured_s"] = max(p["measured_s"] for p in per)
        rows.append(row)
    return rows


def instruction_repeats(n: int, dtype: str, log: TextIO | None) -> dict[str, Any] | None:
    """The tracked clone's instruction overhead counted ``n`` times (a Valgrind run each)
    and its spread per size; None for ``n <= 0``."""
    if n <= 0:
        return None
    from copybench.suite import stats

    repeats = []
    with Progress("copybench noise-study: instruction counts, Valgrind run", n, log) as progress:
        for _ in range(n):
            repeats.append(instruction_rows(INSTRUCTION_SIZES, dtype))
            progress.step()
    by_size = {}
    for j, numel in enumerate(INSTRUCTION_SIZES):
        values = [rep[j]["overhead_instructions"] for rep in repeats]
        by_size[str(numel)] = {
            "overhead": values,
            "spread_pct": stats.spread(values) / stats.median(values) * 100,
        }
    return {"repeats": repeats, "by_size": by_size}


def cmd_noise_study(args: argparse.Namespace) -> int:
    from copybench.suite.cases import UsageError

    sizes = check_overhead_options(args, OVERHEAD_SIZES)
    if args.processes < 2:
        raise CaseError("a noise study needs at least 2 processes")
    if args.out is not None and not args.out.parent.is_dir():
        # Said now, not after minutes of measuring.
        raise UsageError(f"cannot write {args.out}: no folder {args.out.parent}")
    # Pinned here, every process the study starts inherits the pinning.
    pin_affinity(args.affinity)
    rows = noise_study(
        sizes,
        args.processes,
        dtype=args.dtype,
        device=args.device,
        threads=parse_threads(args.threads),
        budget=args.budget,
        workers=args.workers,
        affinity=args.affinity,
        log=sys.stderr,
    )
    instr = instruction_repeats(args.instruction_repeats, args.dtype, sys.stderr)
    data = json.dumps({"overhead": rows, "instructions": instr}, indent=2)
    if args.out is not None:
        from copybench.results.tidy import atomic_write_text

        atomic_write_text(args.out, data + "\n")
        note(f"copybench noise-study: full results in {args.out}", sys.stderr)
    if args.json:
        print(data)
        return 0
    print(
        f"tracked-clone overhead, {args.processes} repetitions in fresh processes, "
        f"{args.budget:g} s per size per method, {args.dtype}, requires_grad, {args.device}, "
        f"threads {args.threads}"
    )
    print(
        f"{'numel':>10}  {'method':<46} {'min %':>7} {'median %':>9} {'max %':>7} "
        f"{'spread (pts)':>13}"
    )
    for r in rows:
        for m, label in STUDY_METHODS.items():
            d = r[m]
            print(
                f"{r['numel']:>10,}  {label.format(workers=args.workers):<46} {d['min_pct']:>7.1f} "
                f"{d['median_pct']:>9.1f} {d['max_pct']:>7.1f} {d['spread_pts']:>13.1f}"
            )
    longest = max(r["paired"]["max_measured_s"] for r in rows)
    print(f"copybench overhead measured for at most {longest:.3f} s per size")
    if instr:
        print()
        print(f"instructions per call over {len(instr['repeats'])} Valgrind runs")
        for numel, d in instr["by_size"].items():
            print(
                f"{int(numel):>10,}  overhead {', '.join(f'{v:,.0f}' for v in d['overhead'])} "
                f"instr/call; spread {d['spread_pct']:.3f}% of the overhead"
            )
    return 0


if __name__ == "__main__":
    from copybench.measure.workers import worker_main

    worker_main(_worker)
