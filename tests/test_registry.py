"""The registry and the grid: complete, consistent, the same on every machine."""

from __future__ import annotations

import importlib
import math
import sys

import pytest
import torch

from copybench.suite import cases
from copybench.suite.methods import (
    METHODS,
    MODULE_METHODS,
    TENSOR_METHODS,
    TRANSFER_METHODS,
    get_method,
)
from copybench.suite.prepare import prepare_module_case, prepare_tensor_case

REQUIRED_TENSOR = {
    "clone",
    "clone_detach",
    "detach_clone",
    "detach",
    "data",
    "deepcopy",
    "empty_like_copy",
    "to_copy",
    "clone_contiguous",
    "copy_into",
}
REQUIRED_MODULE = {
    "deepcopy_module",
    "state_dict_snapshot",
    "deepcopy_state_dict",
    "load_state_dict_existing",
    "new_instance_load",
    "meta_assign",
    "save_load",
}


def test_registry_holds_every_required_method_once():
    names = [m.name for m in TENSOR_METHODS + MODULE_METHODS + TRANSFER_METHODS]
    assert len(names) == len(set(names))
    assert {m.name for m in TENSOR_METHODS} >= REQUIRED_TENSOR
    assert {m.name for m in MODULE_METHODS} >= REQUIRED_MODULE


def test_every_registered_method_is_timed_by_the_asv_suite(root):
    # A registry entry that no harness times is a failure (numpy's ufunc-coverage habit).
    sys.path.insert(0, str(root))
    try:
        tensor = importlib.import_module("benchmarks.bench_tensor_copy").TensorCopy
        module = importlib.import_module("benchmarks.bench_module_copy").ModuleCopy
        cuda = importlib.import_module("benchmarks.bench_cuda")
        transfer = importlib.import_module("benchmarks.bench_transfer").Transfer
    finally:
        sys.path.remove(str(root))
    assert set(tensor.params[0]) == {m.name for m in TENSOR_METHODS}
    assert set(module.params[0]) == {m.name for m in MODULE_METHODS}
    assert set(cuda.CudaTensorCopy.params[0]) == {m.name for m in TENSOR_METHODS}
    assert set(cuda.CudaModuleCopy.params[0]) == {m.name for m in MODULE_METHODS}
    assert set(transfer.params[0]) == {m.name for m in TRANSFER_METHODS}
    assert tensor.param_names == ["method", *cases.TENSOR_AXES]
    assert module.param_names == ["method", *cases.MODULE_AXES]


def test_grid_does_not_depend_on_the_machine():
    assert "cuda" in cases.DEVICES and "cpu" in cases.DEVICES
    assert cases.SIZES[0] == 1
    assert cases.nbytes(cases.SIZES[-1], "float32") >= 64 * 2**20
    ratios = {b / a for a, b in zip(cases.SIZES, cases.SIZES[1:], strict=False)}
    assert len(ratios) == 1, "sizes are log-spaced"
    assert "float32" in cases.DTYPES
    assert any(
        cases.dtype_of(d).itemsize == 2 and cases.dtype_of(d).is_floating_point
        for d in cases.DTYPES
    )
    assert set(cases.REQUIRES_GRAD) == {True, False}
    assert set(cases.LAYOUTS) == {"contiguous", "transposed"}


def test_models_control_parameter_count_and_tensor_count():
    specs = list(cases.MODELS.values())
    counts = {s.target_params for s in specs}
    assert min(counts) <= 10**4 and max(counts) >= 10**7
    for s in specs:
        model, _ = cases.make_model(s, "cpu") if s.n_params < 2 * 10**6 else (None, s)
        if model is not None:
            params = list(model.parameters())
            assert len(params) == s.n_tensors
            assert sum(p.numel() for p in params) == s.n_params
        assert math.isclose(s.n_params, s.target_params, rel_tol=0.02)
    at_1e6 = {s.n_tensors for s in specs if s.target_params == 10**6}
    assert min(at_1e6) <= 2 and max(at_1e6) >= 512


@pytest.mark.parametrize("layout", cases.LAYOUTS)
def test_make_tensor_layouts(layout):
    x = cases.make_tensor(1024, "bfloat16", True, layout, "cpu")
    assert x.numel() == 1024 and x.dtype == torch.bfloat16 and x.is_leaf and x.requires_grad
    assert x.is_contiguous() == (layout == "contiguous")


@pytest.mark.parametrize("numel", [1000, 3 * cases.RANDOM_BLOCK + 7])
def test_fill_random_writes_every_element_with_random_values(numel):
    # Below the block size a full draw; above it, the block repeated and a partial tail.
    x = cases.fill_random(torch.full((numel,), -1.0))
    assert bool(((x >= 0) & (x < 1)).all()), "an element was left unwritten"
    assert x[:1000].unique().numel() > 990
    if numel > cases.RANDOM_BLOCK:
        b = cases.RANDOM_BLOCK
        assert torch.equal(x[:b], x[2 * b : 3 * b]) and torch.equal(x[3 * b :], x[:7])


def test_a_one_element_tensor_cannot_be_non_contiguous():
    with pytest.raises(cases.CaseError, match="non-contiguous"):
        cases.make_tensor(1, "float32", False, "transposed", "cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU behaviour")
def test_cuda_cases_are_skipped_not_dropped_without_a_gpu():
    with pytest.raises(cases.CaseError, match="no CUDA GPU"):
        prepare_tensor_case("clone", 1024, "float32", False, "contiguous", "cuda")
    with pytest.raises(cases.CaseError, match="no CUDA GPU"):
        prepare_module_case("deepcopy_module", "1e4x8", "cuda")


@pytest.mark.parametrize("method", [m.name for m in TENSOR_METHODS])
@pytest.mark.parametrize("layout", cases.LAYOUTS)
def test_every_tensor_method_copies_values(method, layout):
    case = prepare_tensor_case(method, 1024, "float32", True, layout, "cpu")
    out = case.run()
    assert out.shape == case.source.shape and out.dtype == case.source.dtype
    assert torch.equal(out, case.source)
    if method == "clone_contiguous":
        assert out.is_contiguous()
    elif method in ("clone", "to_copy", "deepcopy", "empty_like_copy", "copy_into"):
        assert out.stride() == case.source.stride(), "preserve_format keeps the strides"


@pytest.mark.parametrize("method", [m.name for m in MODULE_METHODS])
def test_every_module_method_copies_parameters(method):
    try:
        case = prepare_module_case(method, "1e4x8", "cpu")
    except cases.CaseError as e:  # a GPU's pinned snapshot; a package not installed
        pytest.skip(str(e))
    out = case.run()
    got = out.state_dict() if isinstance(out, torch.nn.Module) else out
    for k, v in case.source.state_dict().items():
        assert torch.equal(got[k], v) and got[k].data_ptr() != v.data_ptr()


def test_threads_are_set_and_recorded():
    case = prepare_tensor_case("clone", 32, "float32", False, "contiguous", "cpu", threads=1)
    assert case.threads == torch.get_num_threads() == 1


def test_unknown_method_names_the_known_ones():
    with pytest.raises(KeyError, match="known: clone"):
        get_method("clone_twice")
    assert len(METHODS) == len(TENSOR_METHODS) + len(MODULE_METHODS) + len(TRANSFER_METHODS)
