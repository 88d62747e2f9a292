"""``copybench advise MODEL``: every route a user would consider for copying *their* model,
timed on it the way the report's pairs are timed, with its peak memory and what it keeps.

Why on the user's model: the report's own findings show that the answer turns on the
model's shape (``deepcopy`` is 78.7x slower when 10^6 parameters sit in 512 tensors
instead of 2, and indistinguishable from a snapshot at 10^7 in 8).  So:

- **What each route keeps** (:mod:`copybench.suite.keeps`) is observed here, in this
  process, on a model built from MODEL; a route that raises on the model (safetensors on
  tied weights) is reported as failing and not timed.
- **Peak memory** is measured in one fresh process whose allocator hands every block back
  to the kernel when it is freed (:data:`copybench.suite.cases.PEAK_ALLOCATOR`), each route
  once, warmed: the growth of the resident set's high-water mark during the copy, and what
  binding the route held beforehand (the existing copy, the buffers); on a GPU also
  ``max_memory_allocated``.
- **Time**: each route against the reference (``deepcopy``; the snapshot where deepcopy
  fails on the model) in ABBA quads (:func:`copybench.measure.paired.measure_paired`),
  each beside its **control** (the route against itself), in several fresh processes one
  after another; per comparison the quads of all processes are pooled and the CI resamples
  whole processes (:func:`copybench.measure.paired.combine_workers`): samples within one
  process share its memory layout and are not independent.
"""

from __future__ import annotations

import copy
import functools
import os
import platform
import time
from collections.abc import Sequence
from typing import Any, TextIO

import torch

from copybench.measure.paired import (
    PairedResult,
    bind_module_pair,
    combine_workers,
    paired_overhead,
)
from copybench.measure.progress import Progress, note
from copybench.measure.workers import run_worker, run_workers
from copybench.suite import stats
from copybench.suite.cases import (
    ADVISE_REFERENCES,
    ADVISE_ROUTES,
    DEEPCOPY,
    DEFAULT_THREADS,
    PEAK_ALLOCATOR,
    PINNED,
    UsageError,
)
from copybench.suite.keeps import RouteKeeps, observe
from copybench.suite.methods import METHODS, get_method
from copybench.suite.timing import (
    cuda_peak_bytes,
    host_held_seconds,
    peak_rss_growth,
    resolve_threads,
    rss_peak_supported,
    set_threads,
    synchronized,
)
from copybench.suite.usermodel import ModelError, ModelSource, describe

# This module, run as a worker process (the peak-memory process and the timing processes).
WORKER = "copybench.measure.advise"
ADVISE_PROCESSES = 5
# Seconds of paired measurement per comparison, all processes together: a cap.  A large
# model's copies fill it with the floor of quads per process below, a small one's with many.
ADVISE_BUDGET = 1.0
# ABBA quads per process at least: a comparison, and its control.
MIN_QUADS = 2
MIN_CONTROL_QUADS = 1


def check_routes(routes: Sequence[str] | None) -> list[str]:
    """The routes asked for (all of ADVISE_ROUTES for None), in ADVISE_ROUTES' order;
    UsageError naming the known ones for any other name."""
    if routes is None:
        return list(ADVISE_ROUTES)
    unknown = [r for r in routes if r not in ADVISE_ROUTES]
    if unknown or not routes:
        raise UsageError(
            f"unknown route {(unknown or [''])[0]!r}; known: {', '.join(ADVISE_ROUTES)}"
        )
    return [r for r in ADVISE_ROUTES if r in routes]


def comparisons(reference: str, routes: Sequence[str]) -> list[tuple[str, str, bool]]:
    """(base, head, control) per measurement: each route against the reference (the ratio
    head / base says how many times faster the route is), each followed by its control
    (the route against itself); the reference's own control first."""
    out = [(reference, reference, True)]
    for r in routes:
        if r != reference:
            out += [(r, reference, False), (r, r, True)]
    return out


# --- the worker processes ------------------------------------------------------------------------


def _peaks(model: torch.nn.Module, source: ModelSource, routes: Sequence[str]) -> dict:
    """Each route's memory, in a process started with PEAK_ALLOCATOR: what binding it
    held (the existing copy, the buffers: ``*_held_bytes``) and how far one warmed copy
    raised the peak (``*_peak_bytes``); host always, GPU where the model is on one."""
    device = source.device
    cuda = torch.device(device).type == "cuda"
    rss = rss_peak_supported()
    out = {}
    for name in routes:
        bound: list[Any] = []

        def bind(name: str = name, bound: list = bound) -> None:
            bound.append(synchronized(get_method(name).bind(model, source.build), device))

        gpu_before = torch.cuda.memory_allocated(device) if cuda else 0
        host_held = peak_rss_growth(bind) if rss else bind()
        fn = bound.pop()
        fn()  # first-call costs are not the copy's
        out[name] = {
            "host_held_bytes": host_held,
            "host_peak_bytes": peak_rss_growth(fn) if rss else None,
            "gpu_held_bytes": torch.cuda.memory_allocated(device) - gpu_before if cuda else None,
            "gpu_peak_bytes": cuda_peak_bytes(fn, device) if cuda else None,
        }
        del fn
    return out


def _timings(model: torch.nn.Module, source: ModelSource, spec: dict[str, Any]) -> list[dict]:
    """Every comparison of ``spec``, in this process.  ``load_state_dict``'s existing copy
    is a deepcopy where deepcopy is the reference (it copies this model, the probe saw):
    the time does not depend on how the copy was made, and a factory can take seconds."""
    build = source.build
    if spec["reference"] == DEEPCOPY:
        build = functools.partial(copy.deepcopy, model)
    out = []
    for base, head, control in spec["comparisons"]:
        pair = bind_module_pair(base, head, model, build, source.device, warm=False)
        floor = MIN_CONTROL_QUADS if control else MIN_QUADS
        record = paired_overhead(pair, spec["budget"], floor).as_dict(samples=True)
        del pair
        if base == PINNED and not control:
            call = get_method(PINNED).bind(model, build)
            record["host_held_s"] = stats.median(host_held_seconds(call, source.device))
            del call
        out.append(record)
    return out


def _worker(spec: dict[str, Any]) -> Any:
    source = ModelSource(**spec["source"])
    set_threads(resolve_threads(spec["threads"]))
    model = source.build()
    if spec["mode"] == "memory":
        return _peaks(model, source, spec["routes"])
    return _timings(model, source, spec)


# --- the command's process -----------------------------------------------------------------------


def _probe(source: ModelSource, wanted: list[str], log: TextIO | None) -> tuple[dict, list]:
    """The model's description and what each route (the references too) keeps."""
    # Built before a word of progress: a model that does not build is one line on stderr.
    model = source.build()
    about = {"spec": source.spec, "kind": source.kind, "kwargs": source.kwargs, **describe(model)}
    note(
        f"copybench advise: built {about['class']} on {source.device}, "
        f"{about['parameters']:,} parameters in {about['state_dict_tensors']} state_dict "
        "tensors; observing what each route keeps",
        log,
    )
    probed = [r for r in ADVISE_ROUTES if r in wanted or r in ADVISE_REFERENCES]
    return about, observe(source.build, probed, source=model)


def _combined(runs: list[list[dict]], wanted: list[tuple[str, str, bool]]) -> dict:
    """(base, head, control) -> the comparison over every process, as a dict."""
    out = {}
    for j, key in enumerate(wanted):
        got = [r[j] for r in runs]
        record = combine_workers([PairedResult.from_dict(g) for g in got]).as_dict()
        held = [g["host_held_s"] for g in got if "host_held_s" in g]
        if held:
            record["host_held_s"] = held
        out[key] = record
    return out


def advise(
    source: ModelSource,
    routes: Sequence[str] | None = None,
    *,
    processes: int = ADVISE_PROCESSES,
    budget: float = ADVISE_BUDGET,
    threads: int | str = DEFAULT_THREADS,
    log: TextIO | None = None,
) -> dict[str, Any]:
    """Everything ``copybench advise`` reports, as one JSON-ready dict
    (:func:`copybench.formats.write_advice` stamps and writes it).  Bad input (a model that
    does not build, an unknown route or dtype, CUDA without a GPU) raises a UsageError or
    CaseError before any worker starts; progress goes to ``log``."""
    if processes < 1:
        raise UsageError(f"processes must be at least 1, got {processes}")
    start = time.monotonic()
    source.check()
    wanted = check_routes(routes)
    threads_used = resolve_threads(threads)
    about, kept = _probe(source, wanted, log)
    ran = [k.route for k in kept if k.ran]
    reference = next((r for r in ADVISE_REFERENCES if r in ran), None)
    if reference is None:
        raise ModelError(
            "neither deepcopy nor a state_dict snapshot copies this model: nothing to time "
            "against (" + "; ".join(f"{k.route}: {k.failed}" for k in kept if k.failed) + ")"
        )
    timed = [r for r in ran if r in wanted or r == reference]
    spec = {"source": source.as_dict(), "threads": threads, "routes": timed}
    note("copybench advise: peak memory of each route (1 fresh process)", log)
    peaks = run_worker(WORKER, {**spec, "mode": "memory"}, env={**os.environ, **PEAK_ALLOCATOR})
    wanted_pairs = comparisons(reference, timed)
    spec.update(
        mode="time", comparisons=wanted_pairs, budget=budget / processes, reference=reference
    )
    label = f"copybench advise: {len(wanted_pairs)} paired measurements, process"
    with Progress(label, processes, log) as progress:
        runs = run_workers(WORKER, spec, processes, progress=progress)
    timings = _combined(runs, [tuple(c) for c in wanted_pairs])
    shown = [k for k in kept if k.route in wanted or k.route == reference]
    return {
        "model": about,
        "device": source.device,
        "dtype": source.dtype,
        "threads": threads_used,
        "torch_version": torch.__version__,
        "machine": platform.node(),
        "processor": platform.processor() or platform.machine(),
        "reference": reference,
        "processes": processes,
        "budget": budget,
        "seconds": time.monotonic() - start,
        "routes": [_route(k, reference, timings, peaks) for k in shown],
    }


def _route(k: RouteKeeps, reference: str, timings: dict, peaks: dict) -> dict[str, Any]:
    m = METHODS[k.route]
    record = {"code": m.code, "doc": m.doc, **k.as_dict()}
    if k.route in peaks:
        record["memory"] = peaks[k.route]
    if k.ran:
        control = timings[(k.route, k.route, True)]
        record["control"] = control
        record["route_ns"] = control["base_ns"]
        if k.route != reference:
            record["against_reference"] = timings[(k.route, reference, False)]
    return record


if __name__ == "__main__":
    from copybench.measure.workers import worker_main

    worker_main(_worker)
