"""Paired, interleaved A/B measurement: how much more B costs than A, with a confidence interval.

Why not two medians: the headline question (how much more does ``x.clone().detach()`` cost
than ``x.detach().clone()``) is a difference of a few hundred nanoseconds between two
numbers that each move by tens of percent from one process to the next on a shared
machine (frequency, a neighbour's job, the allocator's state).  Timed separately, A and B
see different machines; the noise of both lands in their ratio.

What is done instead (the scheme of ``benchmarks/instruction_counts``' A/B mode and of
interleaved micro-benchmarks generally):

* A and B run in alternating **short blocks** (about 2 ms each): long enough that the clock's
  resolution and the loop around the call do not matter, short enough that the machine
  barely changes between neighbouring blocks.
* Blocks come in **ABBA** quads: a drift that is linear over the quad cancels, and each
  statement follows itself once and the other once (warm caches are shared out fairly).
* One **ratio per quad**, (B1 + B2) / (A1 + A2): what the machine did in those 8 ms is common
  to both sides and divides out.
* The **median of the ratios** is the estimate (an interrupt spoils a few quads, not the
  answer), with a distribution-free confidence interval
  (:func:`copybench.suite.stats.paired_ratio_ci`).
* For ``copybench overhead`` the budget is spread over several **fresh processes**
  (:func:`measure_in_workers`), whose quads are pooled: at 256 KiB a process's memory
  placement moves its estimate by several points, and one process cannot average that.

The same callables and the same source tensor serve both sides; what is timed is what
:mod:`copybench.suite.methods` binds, so the registry stays the one definition of each copy.

``copybench overhead`` is defined here too: it prints this paired estimate of what
``x.clone().detach()`` costs over ``x.detach().clone()`` per size, or with
``--instructions`` the callgrind instruction counts (:mod:`copybench.measure.instructions`).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

import torch

from copybench.suite import stats
from copybench.suite.cases import (
    ALL_SIZES,
    DEFAULT_THREADS,
    OVERHEAD_SIZES,
    PAIRS,
    CaseError,
    check_device,
    dtype_of,
    make_model,
    make_tensor,
    parse_size,
)
from copybench.suite.methods import get_method
from copybench.suite.timing import (
    ALL_CORES,
    pin_cpus,
    resolve_threads,
    set_threads,
    synchronized,
    time_block,
    warm_up,
)

if TYPE_CHECKING:
    from copybench.measure.progress import Progress

BlockTimer = Callable[[Callable[[], Any], int, str], float]

BLOCK_SECONDS = 0.002
# Sources a tensor pair rotates over (see prepare_tensor_pair), within this many bytes.
ROTATE_SOURCES = 8
ROTATE_BYTES = 64 * 2**20
DEFAULT_BUDGET = 0.5
MIN_PAIRS = 8


@dataclass(frozen=True)
class PairedResult:
    """The overhead of ``head`` over ``base`` from ``n_pairs`` ABBA quads.

    Times are per call.  ``ratios`` (head / base per quad) are kept so that a harness can
    store them as samples and the report can flag a spread-out measurement as unstable.
    """

    base: str
    head: str
    ratio: float
    ratio_low: float
    ratio_high: float
    overhead_ns: float
    overhead_ns_low: float
    overhead_ns_high: float
    base_ns: float
    head_ns: float
    n_pairs: int
    calls_per_block: int
    threads: int
    device: str
    seconds: float
    ratios: tuple[float, ...] = field(repr=False)
    # Per-call seconds of each side in each quad (ratios[i] == head_times[i] / base_times[i]).
    base_times: tuple[float, ...] = field(default=(), repr=False)
    head_times: tuple[float, ...] = field(default=(), repr=False)
    # Fresh processes the quads came from (see measure_in_workers), and each one's estimate.
    workers: int = 1
    worker_overhead_pct: tuple[float, ...] = ()

    @property
    def overhead_pct(self) -> float:
        return (self.ratio - 1) * 100

    @property
    def ci_low_pct(self) -> float:
        return (self.ratio_low - 1) * 100

    @property
    def ci_high_pct(self) -> float:
        return (self.ratio_high - 1) * 100

    @property
    def unstable(self) -> bool:
        """The per-quad ratios spread more than stats.UNSTABLE_RELATIVE_IQR of their median."""
        return stats.is_unstable(self.ratios)

    def as_dict(self, samples: bool = False) -> dict[str, Any]:
        d = asdict(self)
        per_quad = {k: d.pop(k) for k in _PER_QUAD}
        d.update(
            overhead_pct=self.overhead_pct,
            ci_low_pct=self.ci_low_pct,
            ci_high_pct=self.ci_high_pct,
            ratio_relative_iqr=stats.relative_iqr(self.ratios),
            unstable=self.unstable,
        )
        if samples:
            d.update((k, list(v)) for k, v in per_quad.items())
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PairedResult:
        """The inverse of ``as_dict(samples=True)`` (derived keys are dropped)."""
        names = {f.name for f in fields(cls)}
        kept = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in names}
        return cls(**kept)


_PER_QUAD = ("ratios", "base_times", "head_times")


def calls_per_block(
    base: Callable[[], Any],
    head: Callable[[], Any],
    device: str = "cpu",
    block_seconds: float = BLOCK_SECONDS,
    timer: BlockTimer = time_block,
) -> int:
    """Calls per block so that a block of the mean of the two statements lasts about
    ``block_seconds``; the same count for both sides keeps the blocks alike."""
    n = 1
    while True:
        t = timer(base, n, device) + timer(head, n, device)
        if t >= 0.2 * block_seconds or n >= 1 << 20:
            break
        n *= 4
    if n == 1 and t >= 8 * block_seconds:
        # A call is already four blocks long on average (a 128 MiB copy: about 0.1 s here):
        # the retries below could only find two calls per block if a preemption had made
        # this try six times slower than the statements.  Four calls saved per comparison.
        return 1
    # The quickest of three tries: a calibration that a preemption slowed would make every
    # block of the measurement too short.
    t = min([t] + [timer(base, n, device) + timer(head, n, device) for _ in range(2)])
    per_call = t / (2 * n)
    return max(1, round(block_seconds / per_call))


def measure_paired(
    base: Callable[[], Any] | Sequence[Callable[[], Any]],
    head: Callable[[], Any] | Sequence[Callable[[], Any]],
    *,
    budget: float = DEFAULT_BUDGET,
    device: str = "cpu",
    block_seconds: float = BLOCK_SECONDS,
    min_pairs: int = MIN_PAIRS,
    confidence: float = 0.95,
    names: tuple[str, str] = ("base", "head"),
    timer: BlockTimer = time_block,
) -> PairedResult:
    """Time ``base`` and ``head`` interleaved for at most ``budget`` seconds, calibration
    included (unless ``min_pairs`` quads take longer); the result says how much more
    ``head`` costs.

    Both callables must already be prepared (inputs built and touched) and warmed up; the
    thread count in force is recorded, not changed.  The garbage collector is paused while
    timing (as ``timeit`` does): a collection in one block would be charged to whichever
    statement it interrupted.

    ``base`` and ``head`` may each be a sequence of equivalent callables (the same copy of
    different sources, see :func:`prepare_tensor_pair`): quad ``i`` uses the ``i``-th of
    each, round robin, so the estimate averages over where the sources lie in memory.

    ``timer`` times one block (:func:`copybench.suite.timing.time_block`: the host clock, the
    device queue drained at both ends; :func:`copybench.suite.timing.cuda_event_block`: CUDA
    events around the batch).
    """
    bases = list(base) if isinstance(base, Sequence) else [base]
    heads = list(head) if isinstance(head, Sequence) else [head]
    if len(bases) != len(heads) or not bases:
        raise ValueError("base and head need the same, non-zero number of callables")
    start = time.perf_counter()
    deadline = start + budget
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        n = calls_per_block(bases[0], heads[0], device, block_seconds, timer)
        a_times: list[float] = []
        b_times: list[float] = []
        # The budget is a cap: a quad starts only if one more (as long as the last) fits.
        quad = 0.0
        while len(a_times) < min_pairs or time.perf_counter() + quad <= deadline:
            quad_start = time.perf_counter()
            base, head = bases[len(a_times) % len(bases)], heads[len(a_times) % len(heads)]
            if len(bases) > 1:
                # Untimed, once each: the quad's first block must not be the one that brings
                # this source back into cache (that biased large copies by 2-3 points).
                base()
                head()
            a1 = timer(base, n, device)
            b1 = timer(head, n, device)
            b2 = timer(head, n, device)
            a2 = timer(base, n, device)
            a_times.append((a1 + a2) / (2 * n))
            b_times.append((b1 + b2) / (2 * n))
            quad = time.perf_counter() - quad_start
    finally:
        if gc_was_enabled:
            gc.enable()
    elapsed = time.perf_counter() - start
    return _paired_result(
        names, str(device), torch.get_num_threads(), n, elapsed, [a_times], [b_times], confidence
    )


def _paired_result(
    names: tuple[str, str],
    device: str,
    threads: int,
    calls_per_block: int,
    seconds: float,
    base_times: Sequence[Sequence[float]],
    head_times: Sequence[Sequence[float]],
    confidence: float,
) -> PairedResult:
    """The result of quads from one process or several (one sequence of per-call times per
    process and side); the statistics say how the processes are weighed."""
    ratio, r_lo, r_hi = stats.paired_ratio_ci(base_times, head_times, confidence)
    diff, d_lo, d_hi = stats.paired_difference_ci(base_times, head_times, confidence)
    a_times = [t for ts in base_times for t in ts]
    b_times = [t for ts in head_times for t in ts]
    return PairedResult(
        base=names[0],
        head=names[1],
        ratio=ratio,
        ratio_low=r_lo,
        ratio_high=r_hi,
        overhead_ns=diff * 1e9,
        overhead_ns_low=d_lo * 1e9,
        overhead_ns_high=d_hi * 1e9,
        base_ns=stats.median(a_times) * 1e9,
        head_ns=stats.median(b_times) * 1e9,
        n_pairs=len(a_times),
        calls_per_block=calls_per_block,
        threads=threads,
        device=device,
        seconds=seconds,
        ratios=tuple(b / a for a, b in zip(a_times, b_times, strict=True)),
        base_times=tuple(a_times),
        head_times=tuple(b_times),
        workers=len(base_times),
    )


def measure_independent(
    base: Callable[[], Any],
    head: Callable[[], Any],
    *,
    budget: float = DEFAULT_BUDGET,
) -> float:
    """The baseline the paired method is judged against: each statement timed alone by
    ``torch.utils.benchmark``'s ``blocked_autorange`` for half the budget, overhead in
    percent from the ratio of the two medians.  Thread count: the one in force."""
    from torch.utils.benchmark import Timer

    threads = torch.get_num_threads()
    medians = [
        Timer("f()", globals={"f": f}, num_threads=threads)
        .blocked_autorange(min_run_time=budget / 2)
        .median
        for f in (base, head)
    ]
    return (medians[1] / medians[0] - 1) * 100


# --- preparing pairs from the registry -------------------------------------------------------


@dataclass
class PreparedPair:
    """Two bound, warmed-up copies of the same source, ready for :func:`measure_paired`."""

    base: Callable[[], Any]
    head: Callable[[], Any]
    names: tuple[str, str]
    device: str
    threads: int
    source: Any  # kept alive as long as the pair is
    # The same two copies bound to further sources, for measure_paired's round robin
    # (``base`` and ``head`` are the first of each).
    bases: tuple[Callable[[], Any], ...] = ()
    heads: tuple[Callable[[], Any], ...] = ()


def prepare_tensor_pair(
    base: str,
    head: str,
    numel: int,
    dtype: str = "float32",
    requires_grad: bool = True,
    layout: str = "contiguous",
    device: str = "cpu",
    threads: int | str = DEFAULT_THREADS,
    sync_per_call: bool = True,
) -> PreparedPair:
    """Bind two tensor methods to the same sources.  Raises CaseError for a case not runnable
    here.

    On CUDA each call is followed by a synchronisation unless ``sync_per_call`` is False
    (then a block is a batch of queued copies, for :func:`copybench.suite.timing.cuda_event_block`).

    Several sources (up to ``ROTATE_SOURCES``, at most ``ROTATE_BYTES`` in all) each get
    both methods bound: where a source and its copies land in memory (cache sets, page
    boundaries, the heap around them) is fixed for a process's life and moved a 256 KiB
    overhead estimate by up to 12 points from one fresh process to the next here; rotating
    the quads over sources averages that out within each process.
    """
    threads = set_threads(resolve_threads(threads))
    per_source = numel * dtype_of(dtype).itemsize
    k = max(1, min(ROTATE_SOURCES, ROTATE_BYTES // max(per_source, 1)))
    sources = [make_tensor(numel, dtype, requires_grad, layout, device) for _ in range(k)]
    fns: dict[str, list[Callable[[], Any]]] = {base: [], head: []}
    for name in (base, head):
        m = get_method(name)
        if m.kind != "tensor":
            raise ValueError(f"{name!r} does not copy tensors")
        for x in sources:
            fn = synchronized(m.bind(x), device) if sync_per_call else m.bind(x)
            warm_up(fn, device)
            fns[name].append(fn)
    b, h = fns[base], fns[head]
    return PreparedPair(b[0], h[0], (base, head), device, threads, sources, tuple(b), tuple(h))


def prepare_module_pair(
    base: str, head: str, model: str, device: str = "cpu", threads: int | str = DEFAULT_THREADS
) -> PreparedPair:
    """Bind two module methods to one source model."""
    threads = set_threads(resolve_threads(threads))
    source, spec = make_model(model, device)
    fns = []
    for name in (base, head):
        m = get_method(name)
        if m.kind != "module":
            raise ValueError(f"{name!r} does not copy modules")
        fn = synchronized(m.bind(source, spec.build), device)
        warm_up(fn, device)
        fns.append(fn)
    return PreparedPair(fns[0], fns[1], (base, head), device, threads, source)


def paired_overhead(
    pair: PreparedPair,
    budget: float = DEFAULT_BUDGET,
    min_pairs: int = MIN_PAIRS,
    timer: BlockTimer = time_block,
) -> PairedResult:
    """:func:`measure_paired` on a prepared pair."""
    return measure_paired(
        pair.bases or pair.base,
        pair.heads or pair.head,
        budget=budget,
        device=pair.device,
        min_pairs=min_pairs,
        names=pair.names,
        timer=timer,
    )


def tracked_clone_overhead(
    numel: int,
    *,
    dtype: str = "float32",
    device: str = "cpu",
    threads: int | str = DEFAULT_THREADS,
    budget: float = DEFAULT_BUDGET,
) -> PairedResult:
    """The headline figure: ``x.clone().detach()`` over ``x.detach().clone()`` for a leaf
    that requires grad (without grad there is no autograd node to build and nothing to
    measure), in this process; :func:`measure_in_workers` spreads it over fresh ones."""
    base, head = PAIRS["tracked_clone"]
    pair = prepare_tensor_pair(base, head, numel, dtype, True, "contiguous", device, threads)
    return paired_overhead(pair, budget)


# --- fresh processes ---------------------------------------------------------------------------

# Worker processes `copybench overhead` spreads its budget over (see measure_in_workers).
DEFAULT_WORKERS = 16


def combine_workers(results: Sequence[PairedResult], confidence: float = 0.95) -> PairedResult:
    """One estimate from the quads of several processes: the median of all their ratios,
    with a CI from resampling whole processes (:func:`copybench.suite.stats.clustered_median_ci`),
    since quads from one process share its layout and are not independent."""
    if not results:
        raise ValueError("combine_workers needs at least one result")
    first = results[0]
    if any(
        (r.base, r.head, r.device, r.threads)
        != (first.base, first.head, first.device, first.threads)
        for r in results
    ):
        raise ValueError("combine_workers needs results of one pair, device and thread count")
    pooled = _paired_result(
        (first.base, first.head),
        first.device,
        first.threads,
        round(stats.median([r.calls_per_block for r in results])),
        sum(r.seconds for r in results),
        [r.base_times for r in results],
        [r.head_times for r in results],
        confidence,
    )
    return replace(pooled, worker_overhead_pct=tuple(r.overhead_pct for r in results))


def measure_in_workers(
    sizes: Sequence[int],
    workers: int = DEFAULT_WORKERS,
    *,
    dtype: str = "float32",
    device: str = "cpu",
    threads: int | str = DEFAULT_THREADS,
    budget: float = DEFAULT_BUDGET,
    progress: Progress | None = None,
) -> list[PairedResult]:
    """The tracked-clone overhead per size, its ``budget`` spread over ``workers`` fresh processes
    run one after another (each measures every size for ``budget / workers``), combined by
    :func:`combine_workers`; ``progress`` is stepped as each process ends.

    Why processes: on this project's 2-core machine the tracked-clone overhead at 256 KiB
    is a property of the process as much as of the code.  Within one process, eight 0.4 s
    estimates spread over 30 s agreed to within 1-1.5 points; between fresh processes
    they differ by up to 5, in the overhead's nanoseconds as well as in the copy's, and
    neither disabling ASLR (``setarch -R``) nor rotating where the sources and the copies
    lie removed that.  Our best explanation is what stays fixed for a process's life:
    where its pages landed physically, which decides the cache sets the copy and the
    autograd bookkeeping compete for.  The remedy is pyperf's: average over processes.
    The workers' startup (about 1 s each, ``import torch``) is not measurement time;
    ``seconds`` counts only the measuring.
    """
    from copybench.measure.workers import run_workers

    spec = {
        "sizes": list(sizes),
        "dtype": dtype,
        "device": device,
        "threads": threads,
        "budget": budget / workers,
        "min_pairs": max(2, -(-MIN_PAIRS // workers)),
    }
    per_worker = [
        [PairedResult.from_dict(d) for d in w]
        for w in run_workers("copybench.measure.paired", spec, workers, progress=progress)
    ]
    return [combine_workers([w[j] for w in per_worker]) for j in range(len(sizes))]


def _worker(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """One worker of :func:`measure_in_workers`: every size of ``spec``, in this process."""
    base, head = PAIRS["tracked_clone"]
    out = []
    for numel in spec["sizes"]:
        p = prepare_tensor_pair(
            base, head, numel, spec["dtype"], True, "contiguous", spec["device"], spec["threads"]
        )
        out.append(paired_overhead(p, spec["budget"], spec["min_pairs"]).as_dict(samples=True))
        del p
    return out


# --- the report's comparisons: every pair over its grid, each beside its control ---------------

# Fresh processes and seconds per comparison (all processes together) of `copybench run`'s
# paired measurements: what the report's "A costs N% more than B" answers rest on.
STUDY_WORKERS = 6
STUDY_BUDGET = 0.15
PAIRED_FORMAT = "copybench-paired/1"


@dataclass(frozen=True)
class Comparison:
    """One paired comparison the report states (``head`` over ``base`` on one case), or
    its **control**: the same measurement where both sides do the same work, so that its
    overhead is zero but for the method's own bias and this run's noise.  The tracked
    clone's control is the same two statements on a source that does not require grad
    (neither builds an autograd node); every other pair's is its base against itself."""

    pair: str
    control: bool
    kind: str  # "tensor" or "module"
    base: str
    head: str
    numel: int | None = None
    dtype: str | None = None
    requires_grad: bool | None = None
    layout: str | None = None
    model: str | None = None

    @property
    def id(self) -> str:
        case = (
            f"{self.numel}-{self.dtype}-{'grad' if self.requires_grad else 'nograd'}-{self.layout}"
            if self.kind == "tensor"
            else str(self.model)
        )
        return f"{self.pair}{'-control' if self.control else ''}-{case}"


def comparisons() -> list[Comparison]:
    """Every comparison of the report, each followed by its control, over the grid of
    :mod:`copybench.suite.cases`: the tracked clone over every size, dtype and layout; ``clone()``
    against ``copy_`` into a buffer over every size (float32, contiguous); ``deepcopy`` of a
    model against a state_dict snapshot and against ``load_state_dict`` into an existing
    model, over every reference model."""
    from copybench.suite.cases import DTYPES, LAYOUTS, MODELS, SIZES

    out: list[Comparison] = []
    base, head = PAIRS["tracked_clone"]
    for numel in SIZES:
        for dtype in DTYPES:
            for layout in LAYOUTS:
                for control in (False, True):
                    out.append(
                        Comparison(
                            "tracked_clone", control, "tensor", base, head,
                            numel, dtype, not control, layout,
                        )
                    )  # fmt: skip
    base, head = PAIRS["clone_vs_copy_into"]
    for numel in SIZES:
        for control in (False, True):
            out.append(
                Comparison(
                    "clone_vs_copy_into", control, "tensor", base, base if control else head,
                    numel, "float32", False, "contiguous",
                )
            )  # fmt: skip
    for pair in ("deepcopy_vs_snapshot", "deepcopy_vs_load_state_dict"):
        base, head = PAIRS[pair]
        for model in MODELS:
            for control in (False, True):
                other = base if control else head
                out.append(Comparison(pair, control, "module", base, other, model=model))
    return out


def _prepare(c: Comparison, device: str, threads: int | str) -> PreparedPair:
    if c.kind == "tensor":
        return prepare_tensor_pair(
            c.base, c.head, c.numel, c.dtype, c.requires_grad, c.layout, device, threads
        )
    return prepare_module_pair(c.base, c.head, c.model, device, threads)


def _study_worker(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """One worker of :func:`measure_comparisons`: every comparison, in this process."""
    out = []
    for d in spec["comparisons"]:
        c = Comparison(**d)
        try:
            pair = _prepare(c, spec["device"], spec["threads"])
        except CaseError as e:
            out.append({"skipped": str(e)})
            continue
        out.append(paired_overhead(pair, spec["budget"], spec["min_pairs"]).as_dict(samples=True))
        # Freed by reference counting; a gc.collect() here took 0.3 s a comparison (torch's
        # objects are many), 15 of a worker's 40 s.
        del pair
    return out


def measure_comparisons(
    wanted: Sequence[Comparison],
    workers: int = STUDY_WORKERS,
    *,
    budget: float = STUDY_BUDGET,
    device: str = "cpu",
    threads: int | str = DEFAULT_THREADS,
    log: Any = None,
) -> list[dict[str, Any]]:
    """Each comparison measured in ``workers`` fresh processes (``budget / workers`` seconds
    each, at least one ABBA quad), combined as ``copybench overhead`` combines them (a CI
    that resamples whole processes): one record per comparison, its fields and the result,
    or the reason it was skipped.  ``log``: a stream for progress, one step per process."""
    from copybench.measure.progress import Progress
    from copybench.measure.workers import run_workers

    spec = {
        "comparisons": [asdict(c) for c in wanted],
        "device": device,
        "threads": threads,
        "budget": budget / workers,
        # At least one ABBA quad per process (a 128 MiB copy takes 50-150 ms here, so more
        # would double the study's time for sizes whose overhead is in the noise anyway).
        "min_pairs": 1,
    }
    with Progress("copybench: paired measurements, process", workers, log) as progress:
        runs = run_workers("copybench.measure.paired", spec, workers, progress=progress)
    out = []
    for j, c in enumerate(wanted):
        got = [r[j] for r in runs]
        record: dict[str, Any] = {"id": c.id, **asdict(c)}
        if any("skipped" in g for g in got):
            record["skipped"] = next(g["skipped"] for g in got if "skipped" in g)
        else:
            combined = combine_workers([PairedResult.from_dict(g) for g in got])
            record.update(combined.as_dict())
        out.append(record)
    return out


# --- copybench overhead -------------------------------------------------------------------------


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``overhead`` subcommand."""
    from copybench.cli import add_command

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
    add_overhead_options(s)
    s.add_argument(
        "--instructions",
        action="store_true",
        help="count instructions per call with callgrind instead of timing (CPU, 1 thread)",
    )
    s.add_argument("--json", action="store_true", help="print a JSON list, one object per size")
    s.set_defaults(func=cmd_overhead)


def add_overhead_options(s: argparse.ArgumentParser) -> None:
    """The options ``overhead`` and ``noise-study`` share (checked by
    :func:`check_overhead_options`)."""
    s.add_argument(
        "--sizes",
        nargs="+",
        default=None,
        metavar="NUMEL",
        help=f"tensor sizes in elements (default: {' '.join(map(str, OVERHEAD_SIZES))})",
    )
    s.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    s.add_argument(
        "--dtype", default="float32", help="dtype of the copied tensor (default float32)"
    )
    s.add_argument(
        "--budget",
        type=float,
        default=DEFAULT_BUDGET,
        metavar="SECONDS",
        help=f"most measurement time per size, calibration included (default {DEFAULT_BUDGET})",
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


def check_overhead_options(args: argparse.Namespace, default_sizes: tuple[int, ...]) -> list[int]:
    """The sizes asked for (``default_sizes`` if none); CaseError for the first option
    outside the grid or not usable here."""
    if args.sizes:
        sizes = [parse_size(text, known=ALL_SIZES) for text in args.sizes]
    else:
        sizes = list(default_sizes)
    dtype_of(args.dtype)
    check_device(args.device)
    parse_threads(args.threads)
    if not args.budget > 0:
        raise CaseError(f"budget must be positive, got {args.budget}")
    if args.workers < 1:
        raise CaseError(f"workers must be at least 1, got {args.workers}")
    return sizes


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


def cmd_overhead(args: argparse.Namespace) -> int:
    from copybench.measure.progress import Progress, note
    from copybench.suite.cases import INSTRUCTION_SIZES
    from copybench.suite.units import format_seconds

    if args.instructions:
        sizes = check_overhead_options(args, INSTRUCTION_SIZES)
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

    sizes = check_overhead_options(args, OVERHEAD_SIZES)
    pin_affinity(args.affinity)
    workers = args.workers if args.workers > 1 else 0  # --workers 1: in this process
    step, steps = ("process", workers) if workers else ("size", len(sizes))
    label = f"copybench overhead: tracked-clone overhead, {step}"
    with Progress(label, steps, sys.stderr) as progress:
        rows = measure_sizes(
            sizes,
            args.dtype,
            args.device,
            parse_threads(args.threads),
            args.budget,
            workers,
            progress,
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
        base, cost = (format_seconds(r[k] * 1e-9) for k in ("base_ns", "overhead_ns"))
        print(
            f"{r['numel']:>10,} {base:>11} {r['overhead_pct']:>8.1f}% "
            f"[{r['ci_low_pct']:>6.1f}, {r['ci_high_pct']:>6.1f}]% {cost:>10} "
            f"{r['n_pairs']:>6} {min(each):>6.1f}-{max(each):>5.1f}%{flag}"
        )
    return 0


def _main_worker(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return _study_worker(spec) if "comparisons" in spec else _worker(spec)


if __name__ == "__main__":
    from copybench.measure.workers import worker_main

    worker_main(_main_worker)
