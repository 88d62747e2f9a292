"""The report's paired comparisons (``copybench run`` unless narrowed, the nightly): every
pair of :data:`copybench.suite.cases.PAIRS` over its grid
(:data:`copybench.suite.cases.STUDY_GRIDS`), each beside its control, measured paired in
fresh processes (:mod:`copybench.measure.paired`).  What the report's "A costs N% more than
B" answers rest on.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from copybench.measure.paired import (
    PairedResult,
    PreparedPair,
    combine_workers,
    paired_overhead,
    prepare_module_pair,
    prepare_tensor_pair,
)
from copybench.suite.cases import DEFAULT_THREADS, PAIRS, STUDY_GRIDS, CaseError
from copybench.suite.methods import get_method

# This module, run as a worker process (measure_comparisons).
WORKER = "copybench.measure.study"
# Fresh processes and seconds per comparison (all processes together).
STUDY_WORKERS = 6
STUDY_BUDGET = 0.15
# The pair whose control runs the same two statements on a source that does not require grad
# (neither builds an autograd node); every other pair's control is its base against itself.
CONTROL_WITHOUT_GRAD = "tracked_clone"


@dataclass(frozen=True)
class Comparison:
    """One paired comparison the report states (``head`` over ``base`` on one case), or
    its **control**: the same measurement where both sides do the same work, so that its
    overhead is zero but for the method's own bias and this run's noise."""

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


def _with_control(pair: str, case: dict[str, Any], control: bool) -> Comparison:
    base, head = PAIRS[pair]
    if control and pair == CONTROL_WITHOUT_GRAD:
        case = {**case, "requires_grad": False}
    elif control:
        head = base
    return Comparison(pair, control, get_method(base).kind, base, head, **case)


def comparisons() -> list[Comparison]:
    """Every comparison of the report, each followed by its control, over the study's
    grids (:data:`copybench.suite.cases.STUDY_GRIDS`), in their order."""
    out: list[Comparison] = []
    for pair, grid in STUDY_GRIDS.items():
        for values in itertools.product(*grid.values()):
            case = dict(zip(grid, values, strict=True))
            out += [_with_control(pair, case, control) for control in (False, True)]
    return out


def _prepare(c: Comparison, device: str, threads: int | str) -> PreparedPair:
    if c.kind == "tensor":
        return prepare_tensor_pair(
            c.base, c.head, c.numel, c.dtype, c.requires_grad, c.layout, device, threads
        )
    return prepare_module_pair(c.base, c.head, c.model, device, threads)


def _worker(spec: dict[str, Any]) -> list[dict[str, Any]]:
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
        runs = run_workers(WORKER, spec, workers, progress=progress)
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


if __name__ == "__main__":
    from copybench.measure.workers import worker_main

    worker_main(_worker)
