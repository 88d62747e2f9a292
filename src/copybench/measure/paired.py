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

``copybench overhead`` prints this paired estimate of what ``x.clone().detach()`` costs
over ``x.detach().clone()`` per size (:mod:`copybench.measure.overhead`); the report's
comparisons are measured this way too (:mod:`copybench.measure.study`).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from copybench.suite import stats
from copybench.suite.cases import (
    DEFAULT_THREADS,
    PAIRS,
    dtype_of,
    make_model,
    make_tensor,
)
from copybench.suite.methods import get_method
from copybench.suite.timing import (
    resolve_threads,
    set_threads,
    synchronized,
    time_block,
    warm_up,
)

if TYPE_CHECKING:
    from copybench.measure.progress import Progress

BlockTimer = Callable[[Callable[[], Any], int, str], float]

# This module, run as a worker process (measure_in_workers).
WORKER = "copybench.measure.paired"
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
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        n = calls_per_block(bases[0], heads[0], device, block_seconds, timer)
        a_times, b_times = _quads(bases, heads, n, device, start + budget, min_pairs, timer)
    finally:
        if gc_was_enabled:
            gc.enable()
    elapsed = time.perf_counter() - start
    return _paired_result(
        names, str(device), torch.get_num_threads(), n, elapsed, [a_times], [b_times], confidence
    )


def _quads(
    bases: list[Callable[[], Any]],
    heads: list[Callable[[], Any]],
    n: int,
    device: str,
    deadline: float,
    min_pairs: int,
    timer: BlockTimer,
) -> tuple[list[float], list[float]]:
    """ABBA quads of ``n`` calls a block until ``deadline`` (at least ``min_pairs``): the
    per-call seconds of each side in each quad, the sources taken round robin."""
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
    return a_times, b_times


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
    """Bind two module methods to one source model of the grid."""
    threads = set_threads(resolve_threads(threads))
    source, spec = make_model(model, device)
    return bind_module_pair(base, head, source, spec.build, device)


def bind_module_pair(
    base: str,
    head: str,
    source: nn.Module,
    build: Callable[[], nn.Module],
    device: str,
    warm: bool = True,
) -> PreparedPair:
    """Bind two module methods to ``source`` (``build`` makes an equal, fresh module: the
    existing copy ``load_state_dict`` loads into), each synchronised and, unless ``warm``
    is false, warmed up; the thread count in force is recorded.  A grid model's pair, or
    a user's model (:mod:`copybench.measure.advise`, where :func:`measure_paired`'s
    calibration, a call of each side at least, is the warm-up: a ResNet-50's
    torch.save round trip takes 0.3 s a call)."""
    fns = []
    for name in (base, head):
        m = get_method(name)
        if m.kind != "module":
            raise ValueError(f"{name!r} does not copy modules")
        fn = synchronized(m.bind(source, build), device)
        if warm:
            warm_up(fn, device)
        fns.append(fn)
    return PreparedPair(fns[0], fns[1], (base, head), device, torch.get_num_threads(), source)


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
        for w in run_workers(WORKER, spec, workers, progress=progress)
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


if __name__ == "__main__":
    from copybench.measure.workers import worker_main

    worker_main(_worker)
