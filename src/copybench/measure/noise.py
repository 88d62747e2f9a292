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

import functools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from copybench.measure.overhead import (
    OverheadOptions,
    instruction_rows,
    measure_sizes,
    pin_affinity,
)
from copybench.measure.paired import (
    DEFAULT_BUDGET,
    DEFAULT_WORKERS,
    measure_independent,
    paired_overhead,
    prepare_tensor_pair,
)
from copybench.measure.progress import Progress, note
from copybench.suite.cases import INSTRUCTION_SIZES, PAIRS, CaseError, UsageError

# This module, run as a worker process (the one-process measurements of the study).
WORKER = "copybench.measure.noise"
# The noise study's methods, in the order it prints them.
STUDY_METHODS: dict[str, str] = {
    "paired": "copybench overhead (paired, {workers} processes)",
    "paired_one_process": "paired, all in one process",
    "independent": "independent medians (blocked_autorange)",
}


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


def _repetition(
    i: int, sizes: Sequence[int], spec: dict[str, Any], workers: int, progress: Progress
) -> list[dict[str, Any]]:
    """Repetition ``i``: the shipped estimate (``workers`` fresh processes) and the one
    fresh process of the other two, the order alternating between repetitions as the one
    process alternates its two; per size, every method's estimate."""
    from copybench.measure.workers import run_workers

    shipped = functools.partial(
        measure_sizes,
        sizes,
        spec["dtype"],
        spec["device"],
        spec["threads"],
        spec["budget"],
        workers,
        progress,
    )
    one_process = functools.partial(
        run_workers, WORKER, {**spec, "paired_first": not i % 2}, 1, progress=progress
    )
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
    return one


def _spread_row(numel: int, per: list[dict[str, Any]], head: dict[str, Any]) -> dict[str, Any]:
    """One size's row: each method's estimates over the repetitions, their range and
    spread; the shipped estimate's median CI width and its longest measurement."""
    from copybench.suite import stats

    row: dict[str, Any] = {"numel": numel, **head}
    for method in STUDY_METHODS:
        values = [p[method] for p in per]
        row[method] = {
            "estimates_pct": values,
            "min_pct": min(values),
            "median_pct": stats.median(values),
            "max_pct": max(values),
            "spread_pts": stats.spread(values),
        }
    row["paired"]["median_ci_width_pts"] = stats.median([p["ci_high"] - p["ci_low"] for p in per])
    # Measurement time, calibration included, worker startup not: the budget's check.
    row["paired"]["max_measured_s"] = max(p["measured_s"] for p in per)
    return row


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
    label = "copybench noise-study: tracked-clone overhead, fresh process"
    with Progress(label, processes * (workers + 1), log) as progress:
        runs = [_repetition(i, sizes, spec, workers, progress) for i in range(processes)]
    head = {"processes": processes, "workers": workers, "budget_s": budget}
    return [_spread_row(numel, [run[j] for run in runs], head) for j, numel in enumerate(sizes)]


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


def noise_text(
    rows: list[dict[str, Any]],
    instr: dict[str, Any] | None,
    opts: OverheadOptions,
    processes: int,
    threads: str,
) -> str:
    """The study as a table: per size and method, the estimates' range and spread; the
    longest measurement; with instruction counts, their overhead and spread per size."""
    lines = [
        f"tracked-clone overhead, {processes} repetitions in fresh processes, "
        f"{opts.budget:g} s per size per method, {opts.dtype}, requires_grad, {opts.device}, "
        f"threads {threads}",
        f"{'numel':>10}  {'method':<46} {'min %':>7} {'median %':>9} {'max %':>7} "
        f"{'spread (pts)':>13}",
    ]
    for r in rows:
        for m, label in STUDY_METHODS.items():
            d = r[m]
            lines.append(
                f"{r['numel']:>10,}  {label.format(workers=opts.workers):<46} "
                f"{d['min_pct']:>7.1f} {d['median_pct']:>9.1f} {d['max_pct']:>7.1f} "
                f"{d['spread_pts']:>13.1f}"
            )
    longest = max(r["paired"]["max_measured_s"] for r in rows)
    lines.append(f"copybench overhead measured for at most {longest:.3f} s per size")
    if instr:
        lines += ["", f"instructions per call over {len(instr['repeats'])} Valgrind runs"]
        for numel, d in instr["by_size"].items():
            lines.append(
                f"{int(numel):>10,}  overhead {', '.join(f'{v:,.0f}' for v in d['overhead'])} "
                f"instr/call; spread {d['spread_pct']:.3f}% of the overhead"
            )
    return "\n".join(lines)


def noise_report(
    opts: OverheadOptions,
    processes: int,
    *,
    instruction_repeats_n: int = 0,
    out: Path | None = None,
    as_json: bool = False,
    threads: str = "1",
    log: TextIO | None = None,
) -> str:
    """What ``copybench noise-study`` prints (a table, or JSON), the JSON also written to
    ``out``; ``threads`` as the command line gave it.  Checked before anything runs: at
    least 2 processes, and ``out``'s folder."""
    if processes < 2:
        raise CaseError("a noise study needs at least 2 processes")
    if out is not None and not out.parent.is_dir():
        # Said now, not after minutes of measuring.
        raise UsageError(f"cannot write {out}: no folder {out.parent}")
    # Pinned here, every process the study starts inherits the pinning.
    pin_affinity(opts.affinity)
    rows = noise_study(
        opts.sizes,
        processes,
        dtype=opts.dtype,
        device=opts.device,
        threads=opts.threads,
        budget=opts.budget,
        workers=opts.workers,
        affinity=opts.affinity,
        log=log,
    )
    instr = instruction_repeats(instruction_repeats_n, opts.dtype, log)
    data = json.dumps({"overhead": rows, "instructions": instr}, indent=2)
    if out is not None:
        from copybench.formats import atomic_write_text

        atomic_write_text(out, data + "\n")
        note(f"copybench noise-study: full results in {out}", log)
    return data if as_json else noise_text(rows, instr, opts, processes, threads)


if __name__ == "__main__":
    from copybench.measure.workers import worker_main

    worker_main(_worker)
