"""The pytest-benchmark harness: every registered copy method over the grid of cases.py."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import astuple, fields
from typing import Any

import pytest
import torch

from copybench.measure.paired import paired_overhead, prepare_tensor_pair
from copybench.suite.cases import (
    OVERHEAD_SIZES,
    PAIRS,
    TRANSFER_AXES,
    CaseError,
    ModuleCase,
    TensorCase,
    module_cases,
    tensor_cases,
)
from copybench.suite.methods import (
    METHODS,
    module_method_names,
    tensor_method_names,
    transfer_method_names,
)
from copybench.suite.prepare import prepare_module_case, prepare_tensor_case, prepare_transfer_case
from copybench.suite.timing import calls_for, cuda_event_seconds, cuda_sync_seconds
from copybench.suite.units import format_bytes

NO_CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU available here")


def _params(cases: list[TensorCase] | list[ModuleCase]) -> list:
    return [
        pytest.param(*astuple(c), id=c.id, marks=[pytest.mark.cuda, NO_CUDA])
        if c.device.startswith("cuda")
        else pytest.param(*astuple(c), id=c.id)
        for c in cases
    ]


def _group(method: str, size: str) -> str:
    """pytest-benchmark's group (one table, one histogram): the method's family, one size."""
    return f"{METHODS[method].kind} copy, {size}"


def _run(
    prepare: Callable[..., Any],
    case: TensorCase | ModuleCase,
    measure: Any,
) -> None:
    try:
        prepared = prepare(*astuple(case))
    except CaseError as e:
        pytest.skip(str(e))
    run = prepared.run  # already doubled for a method in COPYBENCH_SLOW_DOWN (prepare.py)
    size = case.model if isinstance(case, ModuleCase) else format_bytes(prepared.nbytes)
    measure.group = _group(case.method, size)
    measure.extra_info.update(
        {f.name: getattr(case, f.name) for f in fields(case)},
        case_id=case.id,
        nbytes=prepared.nbytes,
        threads=prepared.threads,
        torch_version=torch.__version__,
        # The process every sample of this entry came from (pytest-benchmark times a case
        # in one process; with pytest-xdist, cases spread over several).
        pid=os.getpid(),
    )
    _cuda_event_info(measure, prepared)
    measure(run)


def _cuda_event_info(measure: Any, prepared: Any) -> None:
    """On a GPU, pytest-benchmark's own figure is the sync-per-call one (the harness's
    ``run`` synchronises); record the CUDA-event time over a batch of calls beside it."""
    if not prepared.device.startswith("cuda") or measure.disabled:
        return
    calls = calls_for(prepared.call, prepared.device)
    measure.extra_info.update(
        cuda_event_seconds=cuda_event_seconds(prepared.call, prepared.device, calls),
        cuda_sync_seconds=cuda_sync_seconds(prepared.call, prepared.device, calls),
        cuda_calls=calls,
    )


@pytest.mark.parametrize(
    [f.name for f in fields(TensorCase)], _params(list(tensor_cases(tensor_method_names())))
)
def test_tensor_copy(measure, *, method, numel, dtype, requires_grad, layout, device, threads):
    case = TensorCase(method, numel, dtype, requires_grad, layout, device, threads)
    # Warmed up only when timed: untimed, one call checks the case (the largest, 128 MiB,
    # made most of this file's time in the test run with three warm-up copies each).
    _run(functools.partial(prepare_tensor_case, warm=not measure.disabled), case, measure)


@pytest.mark.parametrize(
    [f.name for f in fields(ModuleCase)], _params(list(module_cases(module_method_names())))
)
def test_module_copy(measure, *, method, model, device, threads):
    case = ModuleCase(method, model, device, threads)
    _run(prepare_module_case, case, measure)


@pytest.mark.cuda
@NO_CUDA
@pytest.mark.parametrize("method", transfer_method_names())
@pytest.mark.parametrize("numel", TRANSFER_AXES["numel"])
@pytest.mark.parametrize("host_memory", TRANSFER_AXES["host_memory"])
def test_transfer(measure, method, numel, host_memory):
    try:
        prepared = prepare_transfer_case(method, numel, host_memory)
    except CaseError as e:
        pytest.skip(str(e))
    measure.group = _group(method, format_bytes(prepared.nbytes))
    measure.extra_info.update(
        method=method,
        numel=numel,
        host_memory=host_memory,
        device=prepared.device,
        nbytes=prepared.nbytes,
        threads=prepared.threads,
        torch_version=torch.__version__,
        # The process every sample of this entry came from (pytest-benchmark times a case
        # in one process; with pytest-xdist, cases spread over several).
        pid=os.getpid(),
    )
    _cuda_event_info(measure, prepared)
    measure(prepared.run)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=[pytest.mark.cuda, NO_CUDA])])
@pytest.mark.parametrize("numel", OVERHEAD_SIZES)
@pytest.mark.parametrize("pair", [p for p, (a, _) in PAIRS.items() if METHODS[a].kind == "tensor"])
def test_paired_overhead(measure, pair, numel, device):
    """Times the pair's head alone, and stores the paired, interleaved overhead of head over
    base (copybench.measure.paired) in extra_info: the figure to gate on, not two separate
    medians."""
    base, head = PAIRS[pair]
    try:
        prepared = prepare_tensor_pair(base, head, numel, device=device)
    except CaseError as e:
        pytest.skip(str(e))
    # A group of its own: the head timed here is one of the plain copies' cases again.
    measure.group = f"paired overhead, {format_bytes(prepared.source[0].nbytes)}"
    measure.extra_info.update(
        pair=pair,
        method=head,
        base_method=base,
        numel=numel,
        device=device,
        threads=prepared.threads,
        torch_version=torch.__version__,
        pid=os.getpid(),
    )
    if not measure.disabled:
        measure.extra_info["paired"] = paired_overhead(prepared).as_dict(samples=True)
    else:
        prepared.base()
    measure(prepared.head)
