"""GPU timing, transfers and GPU memory.  On a machine without a GPU every CUDA case must
skip with a reason (checked here too); the rest needs a GPU and skips without one."""

from __future__ import annotations

import pytest
import torch

from copybench.suite import cases
from copybench.suite.methods import METHODS, TRANSFER_METHODS, TRANSFER_ROUTES
from copybench.suite.prepare import prepare_module_case, prepare_tensor_case, prepare_transfer_case
from copybench.suite.semantics import probe
from copybench.suite.timing import calls_for, cuda_event_seconds, cuda_peak_bytes, cuda_sync_seconds

gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
two_gpus = pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA GPUs")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU behaviour")
@pytest.mark.parametrize("method", [m.name for m in TRANSFER_METHODS])
@pytest.mark.parametrize("host_memory", cases.HOST_MEMORY)
def test_without_gpu_every_transfer_case_skips_with_a_reason(method, host_memory):
    with pytest.raises(cases.CaseError) as e:
        prepare_transfer_case(method, 2**10, host_memory)
    assert "GPU" in str(e.value) or "no host memory" in str(e.value)


def test_every_transfer_has_a_route_and_the_grid_declares_multi_gpu():
    assert set(TRANSFER_ROUTES) == {m.name for m in TRANSFER_METHODS}
    assert ("cuda:0", "cuda:1") in TRANSFER_ROUTES.values()
    assert 2**26 in cases.GPU_SIZES and 2**10 in cases.GPU_SIZES and 2**24 in cases.GPU_SIZES


def test_device_names_are_checked():
    with pytest.raises(cases.CaseError, match="unknown device"):
        cases.check_device("cuda:x")
    with pytest.raises(cases.CaseError, match="unknown device"):
        cases.check_device("cpu:1")


@gpu
@pytest.mark.parametrize("method", [m.name for m in TRANSFER_METHODS])
def test_transfer_semantics_match_the_registry(method):
    obs = probe(METHODS[method])
    if obs.observed is None:
        pytest.skip(obs.skipped)
    assert obs.observed == obs.declared, obs.mismatches


@gpu
@pytest.mark.parametrize("method", [m.name for m in TRANSFER_METHODS])
@pytest.mark.parametrize("host_memory", cases.HOST_MEMORY)
def test_transfers_copy_values(method, host_memory):
    try:
        case = prepare_transfer_case(method, 2**16, host_memory)
    except cases.CaseError as e:
        pytest.skip(str(e))
    out = case.run()
    assert torch.equal(out.cpu(), case.source.cpu())
    assert out.device != case.source.device


@gpu
def test_pinned_host_memory_is_pinned():
    case = prepare_transfer_case("copy_h2d", 2**16, "pinned")
    assert case.source.is_pinned()
    case = prepare_transfer_case("copy_h2d", 2**16, "pageable")
    assert not case.source.is_pinned()


@two_gpus
def test_peer_copy_lands_on_the_second_gpu():
    case = prepare_transfer_case("to_peer", 2**16, "pageable")
    assert case.run().device == torch.device("cuda:1")


@gpu
@pytest.mark.skipif(torch.cuda.device_count() > 1, reason="checks the one-GPU behaviour")
def test_peer_cases_skip_with_a_reason_on_one_gpu():
    with pytest.raises(cases.CaseError, match="needs 2 GPUs"):
        prepare_transfer_case("to_peer", 2**16, "pageable")


@gpu
def test_event_timing_does_not_pay_a_sync_per_call():
    # At 4 KiB a copy takes a few microseconds on the GPU; a host sync per call adds its
    # own microseconds, so the sync-per-call figure must be the larger one.
    case = prepare_tensor_case("clone", 2**10, "float32", False, "contiguous", "cuda")
    calls = calls_for(case.call, "cuda")
    events = min(cuda_event_seconds(case.call, "cuda", calls) for _ in range(5))
    synced = min(cuda_sync_seconds(case.call, "cuda", calls) for _ in range(5))
    assert 0 < events < synced


@gpu
def test_event_timing_measures_the_copy_not_the_launch():
    # At 256 MiB the copy is bandwidth-bound: events must see at least 2 x 256 MiB moved
    # at no more than 20 TB/s, i.e. a time no launch-only timer would report.
    case = prepare_tensor_case("copy_into", 2**26, "float32", False, "contiguous", "cuda")
    seconds = cuda_event_seconds(case.call, "cuda", 5)
    assert seconds > 2 * 2**28 / 20e12


@gpu
@pytest.mark.parametrize(
    "method", ["deepcopy_module", "state_dict_snapshot", "load_state_dict_existing"]
)
def test_gpu_peak_memory_of_module_copies(method):
    case = prepare_module_case(method, "1e6x8", "cuda")
    peak = cuda_peak_bytes(case.call, "cuda")
    if method == "load_state_dict_existing":
        assert peak < case.nbytes // 2, "copying into an existing instance allocates ~0"
    else:
        assert peak >= case.nbytes, "a copy holds at least the parameters' bytes"


@gpu
@pytest.mark.parametrize("method", [m.name for m in METHODS.values() if m.kind != "transfer"])
def test_semantics_on_cuda_match_the_registry(method):
    # The registry declares one behaviour per method; on a CUDA tensor or model it must hold
    # as on the CPU (copybench semantics --device cuda prints the same table).
    obs = probe(METHODS[method], "cuda")
    assert obs.observed == obs.declared, obs.mismatches


@gpu
def test_paired_blocks_time_by_events_or_by_sync_per_call():
    from copybench.measure.paired import paired_overhead, prepare_tensor_pair
    from copybench.suite.timing import cuda_event_block, time_block

    for sync, timer in ((False, cuda_event_block), (True, time_block)):
        pair = prepare_tensor_pair(
            "detach_clone", "clone_detach", 2**10, device="cuda", sync_per_call=sync
        )
        r = paired_overhead(pair, budget=0.05, min_pairs=2, timer=timer)
        assert r.n_pairs >= 2 and r.base_ns > 0 and r.head_ns > 0
