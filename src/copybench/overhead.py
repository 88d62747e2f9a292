"""``copybench overhead`` and ``copybench noise-study``: the tracked-clone overhead, and how
far repeated estimates of it disagree.

``overhead`` prints the paired estimate (:mod:`copybench.paired`) of what
``x.clone().detach()`` costs over ``x.detach().clone()`` per size, or with
``--instructions`` the callgrind instruction counts (:mod:`copybench.instructions`).

``noise-study`` answers "can this number gate a build?": it repeats the estimate N times in
fresh processes (fresh allocator, address layout and caches; run one after another, never
concurrently) and prints, per size, the spread (max - min) of ``overhead`` as shipped
(spread over worker processes) beside the same paired measurement in one process and the
usual alternative, two independent medians from ``torch.utils.benchmark``'s
``blocked_autorange``, all at the same time budget.
"""

from __future__ import annotations

import argparse
import functools
import json
import subprocess
import sys
from typing import Any, TextIO

from .cases import CaseError
from .progress import Progress, note


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``overhead`` and ``noise-study`` subcommands."""
    from .cases import OVERHEAD_SIZES
    from .cli import add_command
    from .paired import DEFAULT_BUDGET

    s = add_command(
        sub,
        "overhead",
        help="paired estimate of the tracked-clone overhead (clone().detach() vs detach().clone())",
        description="Estimate, per size, what x.clone().detach() costs over x.detach().clone() "
        "for a source that requires grad: the two statements alternate in ABBA blocks of "
        "about 2 ms, each quad gives one ratio, the time budget is spread over fresh worker "
        "processes run one after another, and the 95% CI resamples whole processes. With the "
        "defaults it takes 30 s to a minute, nearly all of it the workers starting torch "
        "(progress on stderr); --workers 1 measures in this process in a few seconds, with a "
        "larger spread. --instructions counts instructions per call with callgrind instead "
        "(one Valgrind run, deterministic).",
        examples=[
            "copybench overhead",
            "copybench overhead --sizes 1024 65536 --workers 4 --json",
            "copybench overhead --instructions",
        ],
    )
    _common(s, OVERHEAD_SIZES, DEFAULT_BUDGET)
    s.add_argument(
        "--instructions",
        action="store_true",
        help="count instructions per call with callgrind instead of timing (CPU, 1 thread)",
    )
    s.add_argument("--json", action="store_true", help="print a JSON list, one object per size")
    s.set_defaults(func=cmd_overhead)

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
    _common(s, OVERHEAD_SIZES, DEFAULT_BUDGET)
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
    s.set_defaults(func=cmd_noise_study)


def _common(s: argparse.ArgumentParser, sizes: tuple[int, ...], budget: float) -> None:
    from .paired import DEFAULT_WORKERS

    s.add_argument(
        "--sizes",
        nargs="+",
        default=None,
        metavar="NUMEL",
        help=f"tensor sizes in elements (default: {' '.join(map(str, sizes))})",
    )
    s.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    s.add_argument(
        "--dtype", default="float32", help="dtype of the copied tensor (default float32)"
    )
    s.add_argument(
        "--budget",
        type=float,
        default=budget,
        metavar="SECONDS",
        help=f"most measurement time per size, calibration included (default {budget})",
    )
    s.add_argument("--threads", default="1", help="intra-op threads: a number or 'all' (default 1)")
    s.add_argument(
        "--workers",
        type=int,
        default=DEFAULT_WORKERS,
        metavar="N",
        help=f"fresh processes the budget is spread over (default {DEFAULT_WORKERS}; "
        "1 measures in this process)",
    )
    s.add_argument(
        "--affinity",
        default=None,
        metavar="CPU[,CPU...]",
        help="pin the measuring processes to these CPUs (Linux; workers inherit it)",
    )


# --- validation ---------------------------------------------------------------------------------


def _sizes(values: list[str] | None, default: tuple[int, ...]) -> list[int]:
    from .cases import OVERHEAD_SIZES, SIZES

    known = sorted(set(SIZES) | set(OVERHEAD_SIZES))
    if not values:
        return list(default)
    out = []
    for v in values:
        try:
            n = int(v)
        except ValueError:
            raise CaseError(f"size must be an element count, got {v!r}") from None
        if n not in known:
            raise CaseError(f"size {n} is not in the grid; known: {', '.join(map(str, known))}")
        out.append(n)
    return out


def _threads(value: str) -> int | str:
    from .timing import ALL_CORES

    if value == ALL_CORES:
        return value
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise CaseError(f"threads must be a positive number or {ALL_CORES!r}, got {value!r}")
    return n


def _affinity(value: str | None) -> list[int] | None:
    if value is None:
        return None
    try:
        cpus = [int(c) for c in value.split(",")]
    except ValueError:
        raise CaseError(f"affinity must be CPU numbers like 0,1; got {value!r}") from None
    from .timing import pin_cpus

    try:
        return pin_cpus(cpus)
    except (OSError, ValueError) as e:
        raise CaseError(f"cannot pin to CPUs {value}: {e}") from None


def _check(args: argparse.Namespace, default_sizes: tuple[int, ...]) -> list[int]:
    from .cases import check_device, dtype_of

    sizes = _sizes(args.sizes, default_sizes)
    dtype_of(args.dtype)
    check_device(args.device)
    _threads(args.threads)
    if not args.budget > 0:
        raise CaseError(f"budget must be positive, got {args.budget}")
    if args.workers < 1:
        raise CaseError(f"workers must be at least 1, got {args.workers}")
    return sizes


# --- overhead -----------------------------------------------------------------------------------


def measure_sizes(
    sizes: list[int],
    dtype: str,
    device: str,
    threads: int | str,
    budget: float,
    workers: int,
    log: TextIO | None = None,
) -> list[dict[str, Any]]:
    """One paired estimate per size, as the JSON objects ``overhead --json`` prints;
    progress on ``log``, one step per worker process (per size with one worker)."""
    from .paired import measure_in_workers, tracked_clone_overhead

    label = "copybench overhead: tracked-clone overhead"
    if workers > 1:
        with Progress(f"{label}, process", workers, log) as progress:
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
        with Progress(f"{label}, size", len(sizes), log) as progress:
            for numel in sizes:
                results.append(
                    tracked_clone_overhead(
                        numel, dtype=dtype, device=device, threads=threads, budget=budget
                    )
                )
                progress.step()
    return [
        {"numel": numel, "dtype": dtype, "budget_s": budget, **r.as_dict()}
        for numel, r in zip(sizes, results, strict=True)
    ]


def instruction_rows(sizes: list[int], dtype: str) -> list[dict[str, Any]]:
    """Instructions per call of the tracked and untracked clone, and their difference."""
    from .cases import PAIRS
    from .instructions import ValgrindUnavailable, count_instructions

    base, head = PAIRS["tracked_clone"]
    try:
        counts = count_instructions((head, base), sizes, dtype=dtype)
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


def cmd_overhead(args: argparse.Namespace) -> int:
    from .cases import INSTRUCTION_SIZES, OVERHEAD_SIZES

    if args.instructions:
        sizes = _check(args, INSTRUCTION_SIZES)
        if args.device != "cpu":
            raise CaseError("instruction counts are CPU only")
        note(
            "copybench overhead: counting instructions with callgrind (one Valgrind run)",
            sys.stderr,
        )
        rows = instruction_rows(sizes, args.dtype)
        if args.json:
            print(json.dumps(rows, indent=2))
        else:
            print(f"{'numel':>9} {'untracked':>11} {'tracked':>11} {'overhead':>10}  (instr/call)")
            for r in rows:
                print(
                    f"{r['numel']:>9,} {r['base_instructions']:>11,.0f} "
                    f"{r['head_instructions']:>11,.0f} {r['overhead_instructions']:>10,.0f}"
                )
        return 0

    sizes = _check(args, OVERHEAD_SIZES)
    _affinity(args.affinity)
    rows = measure_sizes(
        sizes,
        args.dtype,
        args.device,
        _threads(args.threads),
        args.budget,
        args.workers,
        log=sys.stderr,
    )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(
        f"clone().detach() over detach().clone(), {args.dtype}, requires_grad, {args.device}, "
        f"{rows[0]['threads']} thread(s), {args.budget:g} s per size over "
        f"{args.workers} process(es)"
    )
    print(
        f"{'numel':>10} {'untracked':>11} {'overhead':>9} {'95% CI':>17} {'overhead':>10} "
        f"{'pairs':>6} {'per process':>14}"
    )
    for r in rows:
        flag = "  unstable" if r["unstable"] else ""
        each = r["worker_overhead_pct"] or [r["overhead_pct"]]
        print(
            f"{r['numel']:>10,} {r['base_ns']:>9,.0f}ns {r['overhead_pct']:>8.1f}% "
            f"[{r['ci_low_pct']:>6.1f}, {r['ci_high_pct']:>6.1f}]% {r['overhead_ns']:>8,.0f}ns "
            f"{r['n_pairs']:>6} {min(each):>6.1f}-{max(each):>5.1f}%{flag}"
        )
    return 0


# --- noise study --------------------------------------------------------------------------------


def _child(argv: list[str]) -> int:
    """One process of the noise study: per size, the paired estimate measured in this one
    process and the independent estimate, at the same budget (their order alternating
    between processes)."""
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", nargs="+", type=int)
    p.add_argument("--device")
    p.add_argument("--dtype")
    p.add_argument("--budget", type=float)
    p.add_argument("--threads")
    p.add_argument("--affinity")
    p.add_argument("--paired-first", type=int)
    a = p.parse_args(argv)
    from .cases import PAIRS
    from .paired import measure_independent, paired_overhead, prepare_tensor_pair

    _affinity(a.affinity)
    base, head = PAIRS["tracked_clone"]
    out = []
    for numel in a.sizes:
        pair = prepare_tensor_pair(
            base, head, numel, a.dtype, True, "contiguous", a.device, _threads(a.threads)
        )
        row: dict[str, Any] = {"numel": numel}
        for step in ("paired", "independent") if a.paired_first else ("independent", "paired"):
            if step == "paired":
                r = paired_overhead(pair, a.budget)
                row["paired_one_process"] = r.overhead_pct
            else:
                row["independent"] = measure_independent(pair.base, pair.head, budget=a.budget)
        out.append(row)
    print(json.dumps(out))
    return 0


# The noise study's methods, in the order it prints them.
STUDY_METHODS: dict[str, str] = {
    "paired": "copybench overhead (paired, {workers} processes)",
    "paired_one_process": "paired, all in one process",
    "independent": "independent medians (blocked_autorange)",
}


def _run_child(cmd: list[str], progress: Progress) -> list[dict[str, Any]]:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"noise-study child failed: {proc.stderr.strip()[-500:]}")
    progress.step()
    return json.loads(proc.stdout)


def noise_study(
    sizes: list[int],
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
    from . import stats
    from .paired import DEFAULT_BUDGET, DEFAULT_WORKERS, measure_in_workers

    budget = DEFAULT_BUDGET if budget is None else budget
    workers = DEFAULT_WORKERS if workers is None else workers
    runs = []
    with Progress(
        "copybench noise-study: tracked-clone overhead, fresh process",
        processes * (workers + 1),
        log,
    ) as progress:
        for i in range(processes):
            cmd = [sys.executable, "-m", "copybench.overhead", "--sizes", *map(str, sizes)]
            cmd += ["--device", device, "--dtype", dtype, "--budget", str(budget)]
            cmd += ["--threads", str(threads), "--paired-first", str(1 - i % 2)]
            if affinity:
                cmd += ["--affinity", affinity]
            shipped = functools.partial(
                measure_in_workers,
                sizes,
                workers,
                dtype=dtype,
                device=device,
                threads=threads,
                budget=budget,
                progress=progress,
            )
            child = functools.partial(_run_child, cmd, progress)
            # Alternate which comes first, as the child alternates its two.
            if i % 2:
                one, many = child(), shipped()
            else:
                many, one = shipped(), child()
            for row, r in zip(one, many, strict=True):
                row.update(
                    paired=r.overhead_pct,
                    ci_low=r.ci_low_pct,
                    ci_high=r.ci_high_pct,
                    measured_s=r.seconds,
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


def cmd_noise_study(args: argparse.Namespace) -> int:
    from .cases import OVERHEAD_SIZES

    sizes = _check(args, OVERHEAD_SIZES)
    if args.processes < 2:
        raise CaseError("a noise study needs at least 2 processes")
    # Pinned here, every process the study starts inherits the pinning.
    _affinity(args.affinity)
    rows = noise_study(
        sizes,
        args.processes,
        dtype=args.dtype,
        device=args.device,
        threads=_threads(args.threads),
        budget=args.budget,
        workers=args.workers,
        affinity=args.affinity,
        log=sys.stderr,
    )
    instr = _instruction_repeats(args.instruction_repeats, args.dtype, sys.stderr)
    if args.json:
        print(json.dumps({"overhead": rows, "instructions": instr}, indent=2))
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


def _instruction_repeats(n: int, dtype: str, log: TextIO | None) -> dict[str, Any] | None:
    if n <= 0:
        return None
    from . import stats
    from .cases import INSTRUCTION_SIZES

    repeats = []
    with Progress("copybench noise-study: instruction counts, Valgrind run", n, log) as progress:
        for _ in range(n):
            repeats.append(instruction_rows(list(INSTRUCTION_SIZES), dtype))
            progress.step()
    by_size = {}
    for j, numel in enumerate(INSTRUCTION_SIZES):
        values = [rep[j]["overhead_instructions"] for rep in repeats]
        by_size[str(numel)] = {
            "overhead": values,
            "spread_pct": stats.spread(values) / stats.median(values) * 100,
        }
    return {"repeats": repeats, "by_size": by_size}


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
