"""The GPU figures the README reports, measured on the GPU in fresh processes.

``copybench gpu-figures`` measures, in each of several fresh worker processes run one after
another (:mod:`copybench.measure.workers`):

- **device-to-device bandwidth**: ``x.clone()`` against ``out.copy_(x)`` into a buffer
  allocated beforehand, 256 MiB of float32, by CUDA events over a batch of copies; achieved
  bandwidth counts bytes read plus bytes written, set beside the card's peak (its memory
  clock and bus width, as the driver reports them);
- **the tracked-clone overhead** (``clone().detach()`` over ``detach().clone()`` for a leaf
  that requires grad) at 4 KiB and 4 MiB, paired ABBA blocks (:mod:`copybench.measure.paired`) timed
  two ways side by side: CUDA events around a batch of queued copies, and the host clock
  with a synchronisation after every call (what a naive timer does).  The sync costs
  microseconds of its own, the same on both sides, so it dilutes the ratio;
- **host-to-device** at 64 MiB from pageable and from pinned memory, with and without
  ``non_blocking``: the GPU's time per copy (events over a batch), and how long each call
  holds the host (the host clock around one call, the queue drained before and after):
  ``non_blocking`` changes the second, and only from pinned memory;
- **GPU peak memory** (``max_memory_allocated``, reset before the call) of ``deepcopy(model)``
  against ``load_state_dict`` into an existing model, on the largest reference model.

The processes are the statistical unit: a figure is the median over processes of each
process's median, with the range over processes beside it; paired overheads pool the
processes' quads with a CI that resamples whole processes.
"""

from __future__ import annotations

import os
import subprocess
import time
from typing import Any, TextIO

import torch

from copybench.suite.cases import (
    BANDWIDTH_METHODS,
    BANDWIDTH_NUMEL,
    GPU_OVERHEAD_SIZES,
    H2D_METHODS,
    HOST_MEMORY,
    PAIRS,
    PEAK_METHODS,
    PEAK_MODEL,
    TRANSFER_NUMEL,
    check_device,
    nbytes,
)
from copybench.suite.timing import cuda_event_block, cuda_peak_bytes, time_block

# This module, run as a worker process (measure_process).
WORKER = "copybench.measure.gpu"
OVERHEAD_TIMERS = ("events", "sync")
DEFAULT_PROCESSES = 6
# Seconds of paired measurement per size and timer in each process.
OVERHEAD_BUDGET = 0.3
BATCH = 8  # copies per event-timed batch
REPEATS = 9  # batches (or single host-timed calls) per process and case


def device_info() -> dict[str, Any]:
    """The GPU, driver and torch this run measures, and the card's peak rates where the
    driver reports what they derive from."""
    check_device("cuda")
    props = torch.cuda.get_device_properties(0)
    info: dict[str, Any] = {
        "gpu": props.name,
        "gpus": torch.cuda.device_count(),
        "capability": f"{props.major}.{props.minor}",
        "memory_bytes": props.total_memory,
        "multiprocessors": props.multi_processor_count,
        "torch": torch.__version__,
        "torch_git": torch.version.git_version,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
    }
    clock_khz = getattr(props, "memory_clock_rate", None)
    bus_bits = getattr(props, "memory_bus_width", None)
    if clock_khz and bus_bits:
        # Double data rate: two transfers per memory clock over the whole bus.
        info["peak_bandwidth"] = 2 * clock_khz * 1e3 * bus_bits / 8
        info["peak_bandwidth_from"] = (
            f"memory clock {clock_khz / 1e3:,.0f} MHz x {bus_bits} bits x 2 (DDR)"
        )
    info.update(_nvidia_smi())
    return info


# PCIe per-lane rates in GB/s after line coding (8b/10b to gen 2, 128b/130b from gen 3).
_PCIE_LANE_GBPS = {1: 0.25, 2: 0.5, 3: 0.985, 4: 1.969, 5: 3.938, 6: 7.563}


def _nvidia_smi() -> dict[str, Any]:
    fields = ["driver_version", "pcie.link.gen.max", "pcie.link.width.max"]
    try:
        out = subprocess.run(
            ["nvidia-smi", f"--query-gpu={','.join(fields)}", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout.splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return {"driver": None}
    values = dict(zip(fields, (v.strip() for v in out.split(",")), strict=False))
    info: dict[str, Any] = {"driver": values.get("driver_version")}
    try:
        gen, width = int(values["pcie.link.gen.max"]), int(values["pcie.link.width.max"])
        info["pcie"] = f"gen {gen} x{width}"
        if gen in _PCIE_LANE_GBPS:
            info["peak_pcie_bandwidth"] = _PCIE_LANE_GBPS[gen] * width * 1e9
    except (KeyError, ValueError):
        pass
    return info


# --- one process ---------------------------------------------------------------------------


def _event_seconds(call: Any, device: str) -> list[float]:
    return [cuda_event_block(call, BATCH, device) / BATCH for _ in range(REPEATS)]


def _host_seconds(call: Any, device: str) -> list[float]:
    """How long one call holds the host: the queue is drained before, the clock stops when
    the call returns (an asynchronous copy returns before it is done), then it drains."""
    out = []
    for _ in range(REPEATS):
        torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        call()
        out.append(time.perf_counter() - t0)
        torch.cuda.synchronize(device)
    return out


def measure_process(spec: dict[str, Any]) -> dict[str, Any]:
    """Every figure once, in this process (a worker of :func:`measure`)."""
    from copybench.measure.paired import paired_overhead, prepare_tensor_pair
    from copybench.suite.prepare import (
        prepare_module_case,
        prepare_tensor_case,
        prepare_transfer_case,
    )

    check_device("cuda")
    out: dict[str, Any] = {"gpu": torch.cuda.get_device_name(0), "pid": os.getpid()}
    out["bandwidth"] = {}
    for method in BANDWIDTH_METHODS:
        case = prepare_tensor_case(method, BANDWIDTH_NUMEL, "float32", False, "contiguous", "cuda")
        out["bandwidth"][method] = _event_seconds(case.call, case.device)
    del case
    base, head = PAIRS["tracked_clone"]
    out["overhead"] = {}
    for numel in GPU_OVERHEAD_SIZES:
        for timer in OVERHEAD_TIMERS:
            pair = prepare_tensor_pair(
                base, head, numel, "float32", True, "contiguous", "cuda", 1,
                sync_per_call=timer == "sync",
            )  # fmt: skip
            result = paired_overhead(
                pair,
                spec["budget"],
                min_pairs=4,
                timer=cuda_event_block if timer == "events" else time_block,
            )
            out["overhead"][f"{numel}/{timer}"] = result.as_dict(samples=True)
            del pair
    out["h2d"] = {}
    for method in H2D_METHODS:
        for memory in HOST_MEMORY:
            case = prepare_transfer_case(method, TRANSFER_NUMEL, memory)
            out["h2d"][f"{method}/{memory}"] = {
                "gpu_seconds": _event_seconds(case.call, case.device),
                "host_seconds": _host_seconds(case.call, case.device),
            }
    del case
    out["peak"] = {}
    for method in PEAK_METHODS:
        case = prepare_module_case(method, PEAK_MODEL, "cuda")
        out["peak"][method] = {
            "bytes": cuda_peak_bytes(case.call, case.device),
            "model_bytes": case.nbytes,
        }
    return out


# --- several processes -------------------------------------------------------------------------


def _spread(per_process: list[float]) -> dict[str, float]:
    from copybench.suite import stats

    return {
        "median": stats.median(per_process),
        "min": min(per_process),
        "max": max(per_process),
    }


def measure(
    processes: int = DEFAULT_PROCESSES,
    budget: float = OVERHEAD_BUDGET,
    log: TextIO | None = None,
) -> dict:
    """The figures from ``processes`` fresh processes, combined (see the module's doc);
    progress on ``log``, one step per process."""
    from copybench.measure.paired import PairedResult, combine_workers
    from copybench.measure.progress import Progress
    from copybench.measure.workers import run_workers
    from copybench.suite import stats

    info = device_info()
    with Progress("copybench gpu-figures: GPU figures, process", processes, log) as progress:
        runs = run_workers(WORKER, {"budget": budget}, processes, timeout=300, progress=progress)
    if len({r["gpu"] for r in runs}) != 1:
        raise RuntimeError("the workers saw different GPUs")
    fig: dict[str, Any] = {"device": info, "processes": processes, "bandwidth": {}}
    for method in BANDWIDTH_METHODS:
        s = _spread([stats.median(r["bandwidth"][method]) for r in runs])
        moved = 2 * nbytes(BANDWIDTH_NUMEL, "float32")
        fig["bandwidth"][method] = {
            "seconds": s,
            "bytes_moved": moved,
            "bandwidth": moved / s["median"],
            "of_peak": moved / s["median"] / info["peak_bandwidth"]
            if info.get("peak_bandwidth")
            else None,
        }
    fig["overhead"] = {}
    for key in runs[0]["overhead"]:
        combined = combine_workers([PairedResult.from_dict(r["overhead"][key]) for r in runs])
        fig["overhead"][key] = combined.as_dict()
    fig["h2d"] = {}
    for key in runs[0]["h2d"]:
        gpu = _spread([stats.median(r["h2d"][key]["gpu_seconds"]) for r in runs])
        host = _spread([stats.median(r["h2d"][key]["host_seconds"]) for r in runs])
        fig["h2d"][key] = {
            "gpu_seconds": gpu,
            "host_seconds": host,
            "bandwidth": nbytes(TRANSFER_NUMEL, "float32") / gpu["median"],
        }
    fig["peak"] = {}
    for method in PEAK_METHODS:
        values = [r["peak"][method]["bytes"] for r in runs]
        fig["peak"][method] = {
            "bytes": stats.median(values),
            "min": min(values),
            "max": max(values),
            "model_bytes": runs[0]["peak"][method]["model_bytes"],
        }
    return fig


if __name__ == "__main__":
    from copybench.measure.workers import worker_main

    worker_main(measure_process)
