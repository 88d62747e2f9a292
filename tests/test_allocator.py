"""Allocator cases: the ops separate allocation from copying, remedies reach the child."""

from __future__ import annotations

import pytest
import torch

from copybench.measure.allocator import (
    bind_op,
    measure_remedy,
    prepare_op,
    sample_seconds,
)
from copybench.suite.cases import ALLOCATOR_OPS, REMEDIES, CaseError
from copybench.suite.stats import summarize_modes


@pytest.mark.parametrize("op", ALLOCATOR_OPS)
def test_ops_produce_a_tensor_of_the_source_shape(op):
    fn, x = prepare_op(op, 2**10)
    y = fn()
    assert y.shape == x.shape
    if op != "empty_like":
        assert torch.equal(y, x)
        assert y.data_ptr() != x.data_ptr()


def test_copy_into_reuses_its_buffer():
    fn, _ = prepare_op("copy_into", 2**10)
    assert fn().data_ptr() == fn().data_ptr()


def test_unknown_op_and_remedy_are_case_errors():
    with pytest.raises(CaseError):
        bind_op("realloc", torch.ones(3))
    with pytest.raises(CaseError):
        measure_remedy("jemalloc")


def test_summary_reports_the_split():
    s = summarize_modes([1e-4] * 30 + [1.4e-3] * 10)
    assert s["bimodal"] and s["slow_fraction"] == pytest.approx(0.25)
    assert s["unstable"]
    assert len(sample_seconds(lambda: None, 20)) == 20


def test_each_remedy_times_every_op_in_a_fresh_process():
    # The remedies' *effect* is what the asv AllocatorModes benchmark reports; it depends on
    # the child's heap layout, so it is not asserted here.
    for remedy in REMEDIES:
        out = measure_remedy(remedy, ops=["clone", "copy_into"], sizes=[2**20], n=8)
        assert set(out) == {("clone", 2**20), ("copy_into", 2**20)}
        assert all(len(v) == 8 and min(v) > 0 for v in out.values())
