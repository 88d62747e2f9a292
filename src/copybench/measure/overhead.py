"""``copybench overhead``: the tracked clone's overhead per size, measured paired in fresh
processes (:mod:`copybench.measure.paired`), or counted in instructions per call
(:mod:`copybench.measure.instructions`); what it and ``copybench noise-study`` take and
print.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from copybench.measure.paired import measure_in_workers, tracked_clone_overhead
from copybench.suite.cases import (
    ALL_SIZES,
    INSTRUCTION_SIZES,
    OVERHEAD_SIZES,
    PAIRS,
    CaseError,
    check_device,
    dtype_of,
    parse_size,
)
from copybench.suite.timing import ALL_CORES, pin_cpus

if TYPE_CHECKING:
    from copybench.measure.progress import Progress


@dataclass(frozen=True)
class OverheadOptions:
    """What ``overhead`` and ``noise-study`` share, checked (:func:`overhead_options`)."""

    sizes: list[int]
    dtype: str
    device: str
    threads: int | str
    budget: float
    workers: int
    affinity: str | None


def overhead_options(
    sizes: Sequence[str] | None,
    default_sizes: tuple[int, ...],
    dtype: str,
    device: str,
    threads: str,
    budget: float,
    workers: int,
    affinity: str | None,
) -> OverheadOptions:
    """The options as given on the command line, checked in this order; CaseError for the
    first outside the grid or not usable here.  No sizes: ``default_sizes``."""
    chosen = [parse_size(t, known=ALL_SIZES) for t in sizes] if sizes else list(default_sizes)
    dtype_of(dtype)
    check_device(device)
    parsed = parse_threads(threads)
    if not budget > 0:
        raise CaseError(f"budget must be positive, got {budget}")
    if workers < 1:
        raise CaseError(f"workers must be at least 1, got {workers}")
    return OverheadOptions(chosen, dtype, device, parsed, budget, workers, affinity)


def parse_threads(text: str) -> int | str:
    """``--threads``: a positive number, or ``all`` (resolved by the process that measures,
    :func:`copybench.suite.timing.resolve_threads`)."""
    if text == ALL_CORES:
        return text
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise CaseError(f"threads must be a positive number or {ALL_CORES!r}, got {text!r}")
    return n


def pin_affinity(text: str | None) -> list[int] | None:
    """``--affinity 0,1``: pin this process (and so every process it starts) to those CPUs;
    None leaves it as it is."""
    if text is None:
        return None
    try:
        cpus = [int(c) for c in text.split(",")]
    except ValueError:
        raise CaseError(f"affinity must be CPU numbers like 0,1; got {text!r}") from None
    try:
        return pin_cpus(cpus)
    except (OSError, ValueError) as e:
        raise CaseError(f"cannot pin to CPUs {text}: {e}") from None


def measure_sizes(
    sizes: Sequence[int],
    dtype: str,
    device: str,
    threads: int | str,
    budget: float,
    workers: int,
    progress: Progress | None = None,
) -> list[dict[str, Any]]:
    """One paired estimate of the tracked-clone overhead per size, as the JSON objects
    ``overhead --json`` prints: ``budget`` spread over ``workers`` fresh processes
    (:func:`measure_in_workers`), ``progress`` stepped as each one ends.  ``workers=0``
    measures in this process instead (``overhead --workers 1``), a step per size."""
    if workers:
        results = measure_in_workers(
            sizes,
            workers,
            dtype=dtype,
            device=device,
            threads=threads,
            budget=budget,
            progress=progress,
        )
    else:
        results = []
        for numel in sizes:
            results.append(
                tracked_clone_overhead(
                    numel, dtype=dtype, device=device, threads=threads, budget=budget
                )
            )
            if progress is not None:
                progress.step()
    return [
        {"numel": numel, "dtype": dtype, "budget_s": budget, **r.as_dict()}
        for numel, r in zip(sizes, results, strict=True)
    ]


def instruction_rows(sizes: Sequence[int], dtype: str) -> list[dict[str, Any]]:
    """Instructions per call of the tracked and untracked clone, and their difference."""
    from copybench.measure.instructions import ValgrindUnavailable, count_instructions

    base, head = PAIRS["tracked_clone"]
    try:
        counts = count_instructions((head, base), list(sizes), dtype=dtype)
    except ValgrindUnavailable as e:
        raise CaseError(str(e)) from None
    rows = []
    for numel in sizes:
        b, h = counts[(base, numel)].instructions, counts[(head, numel)].instructions
        rows.append(
            {
                "numel": numel,
                "dtype": dtype,
                "base": base,
                "head": head,
                "base_instructions": b,
                "head_instructions": h,
                "overhead_instructions": h - b,
                "overhead_pct": (h / b - 1) * 100,
            }
        )
    return rows


def instruction_text(rows: list[dict[str, Any]]) -> str:
    """``overhead --instructions``' table: instructions per call of each side and their
    difference, per size."""
    lines = [f"{'numel':>9} {'untracked':>11} {'tracked':>11} {'overhead':>10}  (instr/call)"]
    for r in rows:
        lines.append(
            f"{r['numel']:>9,} {r['base_instructions']:>11,.0f} "
            f"{r['head_instructions']:>11,.0f} {r['overhead_instructions']:>10,.0f}"
        )
    return "\n".join(lines)


def overhead_text(rows: list[dict[str, Any]], opts: OverheadOptions) -> str:
    """``overhead``'s table: per size, the untracked clone's time, the overhead with its
    95% CI, in time, the quads it rests on and the range over processes."""
    from copybench.suite.units import format_seconds

    lines = [
        f"clone().detach() over detach().clone(), {opts.dtype}, requires_grad, {opts.device}, "
        f"{rows[0]['threads']} thread(s), {opts.budget:g} s per size over "
        f"{opts.workers} process(es)",
        f"{'numel':>10} {'untracked':>11} {'overhead':>9} {'95% CI':>17} {'overhead':>10} "
        f"{'pairs':>6} {'per process':>14}",
    ]
    for r in rows:
        flag = "  unstable" if r["unstable"] else ""
        each = r["worker_overhead_pct"] or [r["overhead_pct"]]
        base, cost = (format_seconds(r[k] * 1e-9) for k in ("base_ns", "overhead_ns"))
        lines.append(
            f"{r['numel']:>10,} {base:>11} {r['overhead_pct']:>8.1f}% "
            f"[{r['ci_low_pct']:>6.1f}, {r['ci_high_pct']:>6.1f}]% {cost:>10} "
            f"{r['n_pairs']:>6} {min(each):>6.1f}-{max(each):>5.1f}%{flag}"
        )
    return "\n".join(lines)


def overhead(
    opts: OverheadOptions, *, instructions: bool = False, as_json: bool = False, log: TextIO | None
) -> str:
    """What ``copybench overhead`` prints: the paired estimate per size (``budget`` over
    ``workers`` fresh processes; one worker measures in this process, a step per size), or
    with ``instructions`` the callgrind counts (CPU only); a table, or JSON.  Progress on
    ``log``."""
    from copybench.measure.progress import Progress, note

    if instructions:
        if opts.device != "cpu":
            raise CaseError("instruction counts are CPU only")
        note("copybench overhead: counting instructions with callgrind (one Valgrind run)", log)
        rows = instruction_rows(opts.sizes, opts.dtype)
        return json.dumps(rows, indent=2) if as_json else instruction_text(rows)
    pin_affinity(opts.affinity)
    workers = opts.workers if opts.workers > 1 else 0  # --workers 1: in this process
    step, steps = ("process", workers) if workers else ("size", len(opts.sizes))
    label = f"copybench overhead: tracked-clone overhead, {step}"
    with Progress(label, steps, log) as progress:
        rows = measure_sizes(
            opts.sizes, opts.dtype, opts.device, opts.threads, opts.budget, workers, progress
        )
    return json.dumps(rows, indent=2) if as_json else overhead_text(rows, opts)


def default_sizes(instructions: bool) -> tuple[int, ...]:
    """The sizes ``overhead`` measures when none are given."""
    return INSTRUCTION_SIZES if instructions else OVERHEAD_SIZES
