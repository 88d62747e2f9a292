"""The case grids, declared once and the same on every machine.

Nothing here looks at the machine: the device list always holds ``cuda`` so that results from
a laptop and from a GPU server have the same shape; a case that cannot run here is *skipped*
by the harness (asv: ``NotImplementedError`` in setup; pytest: a skip mark), never dropped.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

# Tensor sizes in elements, log-spaced by a factor of 32 from one element to 2**25
# (128 MiB in float32, 64 MiB in bfloat16).  1,024 elements is 4 KiB of float32, where host
# overhead dominates; 2**20 is 4 MiB, around glibc's dynamic mmap threshold.
SIZES: tuple[int, ...] = (1, 2**5, 2**10, 2**15, 2**20, 2**25)
DTYPES: tuple[str, ...] = ("float32", "bfloat16")
# What a tensor benchmark without a dtype axis measures (transfers, studies): float32.
UNSTATED_DTYPE = DTYPES[0]
REQUIRES_GRAD: tuple[bool, ...] = (False, True)
# "transposed": the transpose of a contiguous 2-D tensor, the most common strided input.
LAYOUTS: tuple[str, ...] = ("contiguous", "transposed")
DEVICES: tuple[str, ...] = ("cpu", "cuda")
# Intra-op threads used by every benchmark unless a case says otherwise; set explicitly in
# setup and recorded with the results (never inherited from the environment).
DEFAULT_THREADS = 1


@dataclass(frozen=True)
class ModelSpec:
    """A reference model: a stack of square ``nn.Linear`` layers (weight and bias each).

    ``n_tensors`` parameter tensors share about ``target_params`` parameters; the actual
    count (``n_params``, what results and plots use) is within 2 % of the target.
    """

    name: str
    target_params: int
    n_tensors: int

    @property
    def depth(self) -> int:
        return self.n_tensors // 2

    @property
    def width(self) -> int:
        # depth * (w*w + w) ~= target  =>  w = (-1 + sqrt(1 + 4 t / depth)) / 2
        return max(1, round((-1 + math.sqrt(1 + 4 * self.target_params / self.depth)) / 2))

    @property
    def n_params(self) -> int:
        return self.depth * (self.width * self.width + self.width)

    def build(self) -> nn.Module:
        """A freshly initialised model on the current default device."""
        return ReferenceModel(self.width, self.depth)


class ReferenceModel(nn.Sequential):
    """``depth`` square Linear layers; defined at module level so it pickles and deep-copies."""

    def __init__(self, width: int, depth: int) -> None:
        super().__init__(*(nn.Linear(width, width) for _ in range(depth)))


def _spec(target: int, n_tensors: int) -> ModelSpec:
    return ModelSpec(
        f"{target:.0e}".replace("+0", "").replace("+", "") + f"x{n_tensors}", target, n_tensors
    )


# Parameter count from 1e4 to 1e7 at 8 tensors, then 1e6 parameters split into 2 .. 512
# tensors (few large vs many small: deepcopy's per-tensor Python cost shows there).
MODELS: dict[str, ModelSpec] = {
    s.name: s
    for s in (
        _spec(10**4, 8),
        _spec(10**5, 8),
        _spec(10**6, 8),
        _spec(10**7, 8),
        _spec(10**6, 2),
        _spec(10**6, 32),
        _spec(10**6, 512),
    )
}


class CaseError(ValueError):
    """A case outside the grid or not runnable here; the message says which and why."""


class UsageError(Exception):
    """Other bad input found after parsing (a malformed option value, a missing folder);
    reported, like CaseError, as one line with exit status 2."""


def dtype_of(name: str, known: tuple[str, ...] = DTYPES) -> torch.dtype:
    """The torch dtype called ``name``; CaseError for a name outside ``known``."""
    if name not in known:
        raise CaseError(f"unknown dtype {name!r}; known: {', '.join(known)}")
    return getattr(torch, name)


def nbytes(numel: int, dtype: str) -> int:
    return numel * dtype_of(dtype).itemsize


def shape_2d(numel: int) -> tuple[int, int]:
    """The 2-D shape used for ``numel`` elements: as square as a power of two allows."""
    rows = 2 ** (int(math.log2(numel)) // 2) if numel > 1 else 1
    while numel % rows:
        rows //= 2
    return rows, numel // rows


def check_device(device: str) -> None:
    """Raise CaseError unless ``device`` is in the grid and usable on this machine."""
    kind, _, index = device.partition(":")
    if kind not in DEVICES or (index and not (kind == "cuda" and index.isdigit())):
        raise CaseError(f"unknown device {device!r}; known: {', '.join(DEVICES)}")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise CaseError(f"device {device!r} requested but no CUDA GPU is available here")
        if index and int(index) >= torch.cuda.device_count():
            raise CaseError(
                f"device {device!r} needs {int(index) + 1} GPUs, found {torch.cuda.device_count()}"
            )


def check_layout(layout: str) -> str:
    """``layout`` if it is in LAYOUTS; else CaseError naming them."""
    if layout not in LAYOUTS:
        raise CaseError(f"unknown layout {layout!r}; known: {', '.join(LAYOUTS)}")
    return layout


def make_tensor(
    numel: int, dtype: str, requires_grad: bool, layout: str, device: str
) -> torch.Tensor:
    """The source tensor of a case: created, written (pages touched) and a leaf.

    Values are random so no copy can take a zero-page shortcut; ``transposed`` yields the
    transpose of a contiguous ``(cols, rows)`` tensor, a genuinely strided view.
    """
    check_layout(layout)
    check_device(device)
    rows, cols = shape_2d(numel)
    if layout == "transposed":
        if rows == 1:
            raise CaseError(f"a {numel}-element tensor cannot be non-contiguous")
        x = fill_random(torch.empty(cols, rows, dtype=dtype_of(dtype), device=device)).t()
    else:
        x = fill_random(torch.empty(rows, cols, dtype=dtype_of(dtype), device=device))
    x.requires_grad_(requires_grad)
    return x


# Random values are drawn for at most this many elements; a larger tensor repeats the block.
RANDOM_BLOCK = 2**16


def fill_random(x: torch.Tensor) -> torch.Tensor:
    """Write uniform random values into every element of the contiguous ``x``; returns ``x``.

    A copy does not look at the values, only at the bytes and the pages behind them: a
    random block of 64 Ki elements written over and over touches every page as a full draw
    does, at memory speed.  Drawing 2**25 uniform values on one thread took 0.5-0.7 s here,
    for each of the grid's 80 largest cases in each asv round.
    """
    flat = x.view(-1)
    if flat.numel() <= RANDOM_BLOCK:
        return x.uniform_()
    block = torch.empty(RANDOM_BLOCK, dtype=x.dtype, device=x.device).uniform_()
    whole = flat.numel() // RANDOM_BLOCK * RANDOM_BLOCK
    flat[:whole].view(-1, RANDOM_BLOCK).copy_(block)
    flat[whole:].copy_(block[: flat.numel() - whole])
    return x


def make_model(spec: str | ModelSpec, device: str) -> tuple[nn.Module, ModelSpec]:
    """The source model of a module case, built and initialised on ``device``."""
    if isinstance(spec, str):
        spec = check_model(spec)
    check_device(device)
    with torch.device(device):
        model = spec.build()
    return model, spec


def check_size(numel: int, known: tuple[int, ...] | None = None) -> int:
    """``numel`` if it is in ``known`` (default: every size some grid measures, ALL_SIZES);
    else CaseError naming the known sizes."""
    known = ALL_SIZES if known is None else known
    if numel not in known:
        raise CaseError(f"size {numel} is not in the grid; known: {', '.join(map(str, known))}")
    return numel


def parse_size(text: str, known: tuple[int, ...] | None = None) -> int:
    """A size from the command line, an element count such as ``1024``; see check_size."""
    try:
        numel = int(text)
    except ValueError:
        raise CaseError(f"size must be an element count, got {text!r}") from None
    return check_size(numel, known)


def check_model(name: str) -> ModelSpec:
    """The reference model called ``name``; CaseError for a name outside MODELS."""
    if name not in MODELS:
        raise CaseError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    return MODELS[name]


@dataclass(frozen=True)
class TensorCase:
    method: str
    numel: int
    dtype: str
    requires_grad: bool
    layout: str
    device: str
    threads: int = DEFAULT_THREADS

    @property
    def id(self) -> str:
        grad = "grad" if self.requires_grad else "nograd"
        return (
            f"{self.method}-{self.numel}-{self.dtype}-{grad}-{self.layout}-{self.device}"
            f"-t{self.threads}"
        )


@dataclass(frozen=True)
class ModuleCase:
    method: str
    model: str
    device: str
    threads: int = DEFAULT_THREADS

    @property
    def id(self) -> str:
        return f"{self.method}-{self.model}-{self.device}-t{self.threads}"


def tensors_of_case_id(case_id: str) -> int | None:
    """How many tensors the case a case id names copies a call: 1 for a :class:`TensorCase`
    (its second field is the size in elements), the model's parameter tensors for a
    :class:`ModuleCase` of a known model; None for anything else."""
    parts = case_id.split("-")
    if len(parts) == 7 and parts[1].isdigit():
        return 1
    if len(parts) == 4 and parts[1] in MODELS:
        return MODELS[parts[1]].n_tensors
    return None


# The parameter axes of each harness, in order.  asv's ``params``/``param_names`` and the
# pytest ids are both generated from these, so the two harnesses name cases alike.
TENSOR_AXES: dict[str, tuple] = {
    "numel": SIZES,
    "dtype": DTYPES,
    "requires_grad": REQUIRES_GRAD,
    "layout": LAYOUTS,
    "device": DEVICES,
    "threads": (DEFAULT_THREADS,),
}
MODULE_AXES: dict[str, tuple] = {
    "model": tuple(MODELS),
    "device": DEVICES,
    "threads": (DEFAULT_THREADS,),
}


# GPU-only grids.  Event-timed CUDA copies and transfers use sizes that reach the rates a
# GPU is judged by (4 KiB launch-bound up to 256 MiB bandwidth-bound, float32).
GPU_SIZES: tuple[int, ...] = (2**10, 2**16, 2**20, 2**24, 2**26)
HOST_MEMORY: tuple[str, ...] = ("pageable", "pinned")
CUDA_TENSOR_AXES: dict[str, tuple] = {
    "numel": GPU_SIZES,
    "dtype": DTYPES,
    "requires_grad": REQUIRES_GRAD,
    "layout": ("contiguous",),
    "device": ("cuda",),
    "threads": (DEFAULT_THREADS,),
}
# Transfers: the route (host -> cuda:0, cuda:0 -> host, cuda:0 -> cuda:1) is the method's
# own (methods.TRANSFER_ROUTES); the host memory is pageable or pinned.
TRANSFER_AXES: dict[str, tuple] = {
    "numel": GPU_SIZES,
    "host_memory": HOST_MEMORY,
    "threads": (DEFAULT_THREADS,),
}


# --- the sub-grids of the studies ---------------------------------------------------------
# Every grid the project measures on lives here, beside the harnesses' axes, so that a size
# or a method pair is declared once however many harnesses read it.

# The pairs users ask about, ``(base, head)``: what the head costs over the base.  The
# paired study, the gate's headline, the report's findings and the instruction counts all
# read these, by name.
PAIRS: dict[str, tuple[str, str]] = {
    "tracked_clone": ("detach_clone", "clone_detach"),
    "clone_vs_copy_into": ("copy_into", "clone"),
    "deepcopy_vs_snapshot": ("state_dict_snapshot", "deepcopy_module"),
    "deepcopy_vs_load_state_dict": ("load_state_dict_existing", "deepcopy_module"),
}
# The headline pair: the untracked clone PyTorch's warning recommends, and the tracked one.
UNTRACKED, TRACKED = PAIRS["tracked_clone"]
# The bandwidth roof of a tensor copy: ``copy_`` into a preallocated, touched buffer.
ROOF = PAIRS["clone_vs_copy_into"][0]
# A model's two main copies: ``copy.deepcopy`` and a state_dict snapshot.
SNAPSHOT, DEEPCOPY = PAIRS["deepcopy_vs_snapshot"]
# The size the headline sentence is stated at: 1,024 float32 elements (4 KiB), where
# per-call overhead dominates.
HEADLINE_NUMEL = 2**10
HEADLINE_BYTES = nbytes(HEADLINE_NUMEL, UNSTATED_DTYPE)
# The README's headline table: 4 KiB, 4 MiB and the grid's largest tensor.
HEADLINE_SIZES: tuple[int, ...] = (HEADLINE_NUMEL, 2**20, SIZES[-1])

# The paired study (``copybench run``, the report's "A costs N% more than B"): each pair over
# its grid, in this order (the axes in TENSOR_AXES' order; each comparison is followed by its
# control, see copybench.measure.study).  The tracked clone over every size, dtype and layout
# of a source that requires grad; clone() against copy_ into a buffer over every size, float32,
# contiguous, no grad; a model's deepcopy against its snapshot and against load_state_dict,
# over every reference model.
STUDY_GRIDS: dict[str, dict[str, tuple]] = {
    "tracked_clone": {
        "numel": SIZES,
        "dtype": DTYPES,
        "requires_grad": (True,),
        "layout": LAYOUTS,
    },
    "clone_vs_copy_into": {
        "numel": SIZES,
        "dtype": (UNSTATED_DTYPE,),
        "requires_grad": (False,),
        "layout": LAYOUTS[:1],
    },
    "deepcopy_vs_snapshot": {"model": tuple(MODELS)},
    "deepcopy_vs_load_state_dict": {"model": tuple(MODELS)},
}

# Paired overhead (copybench overhead, the paired study): 4 KiB (host overhead dominates),
# 256 KiB (in cache), 4 MiB (memory traffic and the allocator's mmap threshold) of float32.
OVERHEAD_SIZES: tuple[int, ...] = (2**10, 2**16, 2**20)
# Thread counts where they matter (large copies are split across threads): one, and every
# core the process may use, resolved when the case is prepared and recorded with the result.
OVERHEAD_THREADS: tuple[int | str, ...] = (1, "all")
# Modules for "deepcopy vs state_dict snapshot": few large tensors and many small ones.
OVERHEAD_MODELS: tuple[str, ...] = ("1e6x8", "1e6x512")

# Instruction counts (callgrind): small tensors, where host overhead dominates (128 B and
# 4 KiB of float32), for the tracked and the untracked clone.
INSTRUCTION_SIZES: tuple[int, ...] = (2**5, 2**10)
INSTRUCTION_METHODS: tuple[str, ...] = PAIRS["tracked_clone"][::-1]

# The allocator study: 4 MiB (around glibc's dynamic mmap threshold) and 64 MiB (above its
# 32 MiB cap) of float32, by a clone, a bare allocation and a copy into a buffer.
ALLOCATOR_SIZES: tuple[int, ...] = (2**20, 2**24)
# ``empty_like``: the allocation alone, pages untouched (not a copy, so not in the registry).
ALLOCATION_ONLY = "empty_like"
ALLOCATOR_OPS: tuple[str, ...] = ("clone", ALLOCATION_ONLY, ROOF)
_MIB = 1 << 20
# The gate's processes (wall time and semantics; each side's own environment still wins):
# glibc's mmap threshold fixed at 16 MiB and its trim threshold at 64 MiB, the state glibc's
# own dynamic adjustment leaves a long-running process in once it has freed a 16 MiB block
# (the threshold rises to the block, the trim threshold to twice that).  Left dynamic, a
# fresh process lands, by its start-up history, in a mode that faults every 4 MiB copy's
# pages in or one that reuses its heap; fixed, every process reuses it (with the gate's
# warm-up of each case, :func:`copybench.measure.gate.measure_process`).  Measured here, 12-20
# fresh processes: the spread of the per-process medians (standard deviation of their logs)
# of `detach().clone()` of 128 KiB with grad, as a ratio to the in-process reference, fell
# from 0.42 to 0.03, and every 4 MiB copy ran at about 100 us in every process (0.10-0.13),
# where before some processes ran them 2x slower.
#
# And glibc's per-thread cache of small blocks (tcache) off.  With it on, a fresh process
# also lands in one of two modes for a large clone: every call gets the same heap block back
# (a 4 MiB clone costs what ``copy_`` into a kept buffer costs, about 89 us here), or calls
# alternate between two blocks 4 MiB apart (97-130 us): 4 of 12 processes and 8 of 12
# (``scripts/clone_chunks.py``).  With tcache off, 8 of 8 got one block.  In A/A gates of
# the default selection (24 rounds, quiet, two gates each way, interleaved), the spread of
# a round's log ratio (from the quartiles) at 4 MiB fell from 0.21-0.40 to 0.04-0.08 for
# the clones, the level of ``copy_`` into a buffer, and stayed where it was at 128 KiB;
# the state_dict snapshot's (eight 500 KB copies) rose from 0.06-0.11 to 0.14-0.20.
GATE_TCACHE = "glibc.malloc.tcache_count=0"
GATE_ALLOCATOR: dict[str, str] = {
    "MALLOC_MMAP_THRESHOLD_": str(16 * _MIB),
    "MALLOC_TRIM_THRESHOLD_": str(64 * _MIB),
    "GLIBC_TUNABLES": GATE_TCACHE,
}
# The allocator study's remedies: each runs in a fresh process with this environment (glibc's
# tunables).  Setting the mmap threshold fixes it
# (no dynamic adjustment) at glibc's maximum, so blocks up to 32 MiB come from the heap; the
# top pad then keeps freed memory at the top of the heap instead of trimming it back to the
# kernel, so the next clone finds its pages resident.
REMEDIES: dict[str, dict[str, str]] = {
    "default": {},
    "mmap_threshold": {"MALLOC_MMAP_THRESHOLD_": str(32 * _MIB)},
    "mmap_threshold_top_pad": {
        "MALLOC_MMAP_THRESHOLD_": str(32 * _MIB),
        "MALLOC_TOP_PAD_": str(256 * _MIB),
    },
}
# The allocator benchmarks' axes: the op is the case's method (``empty_like`` is not a
# copy, so it is not in the registry).
ALLOCATOR_AXES: dict[str, tuple] = {
    "method": ALLOCATOR_OPS,
    "numel": ALLOCATOR_SIZES,
    "threads": OVERHEAD_THREADS,
}
ALLOCATOR_REMEDY_AXES: dict[str, tuple] = {
    "remedy": tuple(REMEDIES),
    "method": ALLOCATOR_OPS,
    "numel": ALLOCATOR_SIZES,
}

# The regression gate's default selection: four tensor copies at 128 KiB and 4 MiB, the two
# model copies of the 1e6-parameter model.
GATE_METHODS: tuple[str, ...] = ("clone", TRACKED, UNTRACKED, ROOF)
GATE_SIZES: tuple[int, ...] = (2**15, 2**20)
GATE_MODULE_METHODS: tuple[str, ...] = (DEEPCOPY, SNAPSHOT)
GATE_MODELS: tuple[str, ...] = ("1e6x8",)

# The GPU figures (copybench gpu-figures): device bandwidth at 256 MiB of float32, far beyond
# any L2; overhead at 4 KiB (launch- and host-bound) and 4 MiB; host transfers at 64 MiB;
# peak memory of the model copies on the largest model.
BANDWIDTH_NUMEL = 2**26
BANDWIDTH_METHODS: tuple[str, ...] = ("clone", ROOF)
GPU_OVERHEAD_SIZES: tuple[int, ...] = (HEADLINE_NUMEL, 2**20)
TRANSFER_NUMEL = 2**24
H2D_METHODS: tuple[str, ...] = (
    "copy_h2d",
    "copy_h2d_nonblocking",
    "to_device",
    "to_device_nonblocking",
)
PEAK_MODEL = max(MODELS.values(), key=lambda s: s.n_params).name
PEAK_METHODS: tuple[str, ...] = (DEEPCOPY, "load_state_dict_existing", SNAPSHOT)

# The GPU check's asv subset (copybench gpu-check), most valuable first and small on purpose:
# one CUDA context per benchmark process makes every case cost about a second.  The gate's
# tensor copies timed by CUDA events at 4 KiB, 4 MiB and 256 MiB, and with a sync per call at
# the headline sizes; the model copies of the peak-memory figure on the gate's model and the
# largest; every transfer one GPU can make, at the transfer figure's size.
GPU_CHECK_TENSOR_METHODS: tuple[str, ...] = GATE_METHODS
GPU_CHECK_EVENT_SIZES: tuple[int, ...] = (HEADLINE_NUMEL, 2**20, BANDWIDTH_NUMEL)
GPU_CHECK_SYNC_SIZES: tuple[int, ...] = HEADLINE_SIZES
GPU_CHECK_MODULE_METHODS: tuple[str, ...] = PEAK_METHODS
GPU_CHECK_MODELS: tuple[str, ...] = (*GATE_MODELS, PEAK_MODEL)
GPU_CHECK_TRANSFER_METHODS: tuple[str, ...] = (*H2D_METHODS, "to_host", "copy_d2h")

# ``copybench advise MODEL``: every route a user would consider for a copy of a whole model,
# timed on that model against the reference (deepcopy; where deepcopy fails on the model, the
# state_dict snapshot), paired, in fresh processes, each beside its control.
LOAD_EXISTING = PAIRS["deepcopy_vs_load_state_dict"][0]
FOREACH = "foreach_copy_into"
SAVE_LOAD = "save_load"
SAFETENSORS = "safetensors_save_load"
PINNED = "pinned_snapshot"
ADVISE_ROUTES: tuple[str, ...] = (
    DEEPCOPY,
    SNAPSHOT,
    LOAD_EXISTING,
    FOREACH,
    SAVE_LOAD,
    SAFETENSORS,
    PINNED,
)
ADVISE_REFERENCES: tuple[str, ...] = (DEEPCOPY, SNAPSHOT)
# What ``--dtype`` converts a model's floating-point tensors to (default: as built).
ADVISE_DTYPES: tuple[str, ...] = ("float32", "bfloat16", "float16", "float64")
# The answer's rows: a situation, and the routes that serve it (the first that the model
# allows and the measurements favour is recommended).
ADVICE_SITUATIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("A snapshot of the weights (best checkpoint, EMA's start)", (SNAPSHOT, SAVE_LOAD, DEEPCOPY)),
    ("A second model to run (RL target network, model soup)", (LOAD_EXISTING, DEEPCOPY)),
    ("Refreshing a copy you keep, every step (EMA, target sync)", (FOREACH, LOAD_EXISTING)),
    ("Bytes to send or write (checkpoint)", (SAVE_LOAD, SAFETENSORS)),
    ("Host copy of GPU weights (async checkpoint)", (PINNED,)),
)
# The process that measures each route's peak memory: glibc serves every block of a page
# or more with a mapping of its own and returns it when freed, and trims the heap's top at
# once, so the resident set follows what the copy holds (a heap that keeps freed memory
# would hide a copy's allocations behind the last one's).
PEAK_ALLOCATOR: dict[str, str] = {
    "MALLOC_MMAP_THRESHOLD_": "4096",
    "MALLOC_TRIM_THRESHOLD_": "0",
}

# The tensor sizes of the asv suite (CPU and GPU grids): what ``copybench run --size`` takes.
SUITE_SIZES: tuple[int, ...] = tuple(sorted({*SIZES, *GPU_SIZES}))
# Every size some grid measures, for validating a size given on the command line.
ALL_SIZES: tuple[int, ...] = tuple(
    sorted({*SIZES, *GPU_SIZES, *OVERHEAD_SIZES, *INSTRUCTION_SIZES, *ALLOCATOR_SIZES})
)


# --- the tidy table's columns ----------------------------------------------------------------
# Declared once; every loader, the report, the CSV and the CLI derive their lists from these
# (tests/test_house.py fails on a hand-typed list of case columns anywhere else).

# What identifies a case within a run: every harness's axes, in one order.
CASE_AXES: tuple[str, ...] = tuple(
    dict.fromkeys(
        (
            "method",
            *TENSOR_AXES,
            *MODULE_AXES,
            *CUDA_TENSOR_AXES,
            *TRANSFER_AXES,
            *ALLOCATOR_AXES,
            *ALLOCATOR_REMEDY_AXES,
        )
    )
)
# The case columns of the table: the axes, and the tensor's size in bytes after its count.
CASE_COLUMNS: tuple[str, ...] = tuple(
    c for axis in CASE_AXES for c in ((axis, "nbytes") if axis == "numel" else (axis,))
)
# Where, with what and when a measurement was taken.
RUN_COLUMNS: tuple[str, ...] = ("source", "machine", "torch_version", "env", "commit", "date")
# The hardware beside the machine's name: CPU model, its cores, and the GPU ("none" where
# CUDA was unavailable; None where unrecorded).
HARDWARE_COLUMNS: tuple[str, ...] = ("cpu", "num_cpu", "gpu")
# What was measured: the harness's benchmark and its metric (``time_tensor_copy`` ...).
MEASUREMENT_COLUMNS: tuple[str, ...] = ("benchmark", "metric")
# The measurement's summary; ``samples`` holds the raw per-call values where recorded.
STATISTIC_COLUMNS: tuple[str, ...] = ("status", "median", "q25", "q75", "iqr", "n_samples", "unit")
# The tidy table (copybench.results.tidy), one row per measurement.  ``asv_name`` is asv's own
# name for the case, ``benchmark(param reprs)``: what ``asv run --bench`` matches, so a case
# can be re-run exactly (None for pytest-benchmark rows).
COLUMNS: tuple[str, ...] = (
    *RUN_COLUMNS,
    *MEASUREMENT_COLUMNS,
    *CASE_COLUMNS,
    *STATISTIC_COLUMNS,
    "samples",
    "asv_name",
    *HARDWARE_COLUMNS,
)
# Added by ``results.load_results``: the row's spread is too wide to rank on.
UNSTABLE = "unstable"
# What identifies one case across harnesses and runs (a re-run supersedes it).
CASE_KEY: tuple[str, ...] = ("machine", "torch_version", "metric", *CASE_AXES)


def make_transfer_source(method: str, numel: int, host_memory: str) -> tuple:
    """(source tensor, target device, pinned) for a transfer case, float32, touched."""
    from copybench.suite.methods import TRANSFER_ROUTES

    if method not in TRANSFER_ROUTES:
        raise CaseError(f"{method!r} is not a transfer method")
    if host_memory not in HOST_MEMORY:
        raise CaseError(f"unknown host memory {host_memory!r}; known: {', '.join(HOST_MEMORY)}")
    source, target = TRANSFER_ROUTES[method]
    pinned = host_memory == "pinned"
    if "host" not in (source, target) and target != "cpu" and pinned:
        raise CaseError("a GPU-to-GPU copy involves no host memory (pinned case n/a)")
    for d in (source, target):
        if d != "host":
            check_device(d)
    if source == "host":
        check_device("cuda")  # pinning needs a GPU too
        x = fill_random(torch.empty(numel, dtype=dtype_of(UNSTATED_DTYPE), pin_memory=pinned))
    else:
        x = fill_random(torch.empty(numel, dtype=dtype_of(UNSTATED_DTYPE), device=source))
    return x, target, pinned


def tensor_cases(methods: list[str]) -> Iterator[TensorCase]:
    for method, *rest in itertools.product(methods, *TENSOR_AXES.values()):
        yield TensorCase(method, *rest)


def module_cases(methods: list[str]) -> Iterator[ModuleCase]:
    for method, *rest in itertools.product(methods, *MODULE_AXES.values()):
        yield ModuleCase(method, *rest)
