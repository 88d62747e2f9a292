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


def dtype_of(name: str) -> torch.dtype:
    if name not in DTYPES:
        raise CaseError(f"unknown dtype {name!r}; known: {', '.join(DTYPES)}")
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


def make_tensor(
    numel: int, dtype: str, requires_grad: bool, layout: str, device: str
) -> torch.Tensor:
    """The source tensor of a case: created, written (pages touched) and a leaf.

    Values are random so no copy can take a zero-page shortcut; ``transposed`` yields the
    transpose of a contiguous ``(cols, rows)`` tensor, a genuinely strided view.
    """
    if layout not in LAYOUTS:
        raise CaseError(f"unknown layout {layout!r}; known: {', '.join(LAYOUTS)}")
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
        if spec not in MODELS:
            raise CaseError(f"unknown model {spec!r}; known: {', '.join(MODELS)}")
        spec = MODELS[spec]
    check_device(device)
    with torch.device(device):
        model = spec.build()
    return model, spec


def parse_size(text: str) -> int:
    """A size from the command line: an element count in the grid, e.g. ``1024``."""
    try:
        numel = int(text)
    except ValueError:
        raise CaseError(f"size must be an element count, got {text!r}") from None
    if numel not in SIZES:
        raise CaseError(f"size {numel} is not in the grid; known: {', '.join(map(str, SIZES))}")
    return numel


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


def make_transfer_source(method: str, numel: int, host_memory: str) -> tuple:
    """(source tensor, target device, pinned) for a transfer case, float32, touched."""
    from .methods import TRANSFER_ROUTES

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
        x = fill_random(torch.empty(numel, pin_memory=pinned))
    else:
        x = fill_random(torch.empty(numel, device=source))
    return x, target, pinned


def tensor_cases(methods: list[str]) -> Iterator[TensorCase]:
    for method, *rest in itertools.product(methods, *TENSOR_AXES.values()):
        yield TensorCase(method, *rest)


def module_cases(methods: list[str]) -> Iterator[ModuleCase]:
    for method, *rest in itertools.product(methods, *MODULE_AXES.values()):
        yield ModuleCase(method, *rest)
