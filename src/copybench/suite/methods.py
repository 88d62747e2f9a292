"""The registry of copy methods: every harness, probe, test and report reads this table.

A copy method is declared once, here: its name (the id used by asv parameters, pytest ids,
the CLI and the report), the code a user would write, a ``bind`` function that prepares
everything the copy needs *outside* the timed region and returns a zero-argument callable
that performs exactly one copy, and the semantics we claim for it.

Why ``bind``: what is timed must be the copy and nothing else.  Anything a method needs that
is not part of its cost in real use - a preallocated output buffer, an existing module to load
into - is built (and its pages touched) by ``bind``.  What a method allocates *is* part of its
cost (``clone`` and ``deepcopy`` pay for fresh memory in real code too), so the returned
callable allocates, and ``allocates`` says so.

Adding a method is one entry in ``TENSOR_METHODS`` or ``MODULE_METHODS``; the coverage test
fails if a harness does not time it.
"""

from __future__ import annotations

import copy
import io
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

Kind = Literal["tensor", "module", "transfer"]


class UnavailableMethod(RuntimeError):
    """A method that cannot run here: a package it needs is not installed, or it needs a
    GPU.  Where a harness prepares a case it becomes a skip
    (:class:`copybench.suite.cases.CaseError`), never a failure."""


@dataclass(frozen=True)
class Semantics:
    """What a copy produces from a leaf source tensor (or module) that requires grad.

    new_storage: the result owns new memory; writing to it cannot change the source.
    requires_grad: the result (every tensor of it, for modules) requires grad.
    grad_flows: a backward pass through the result reaches the source's ``.grad``.
    is_leaf: the result (every tensor of it) is an autograd leaf.
    shares_version_counter: an in-place write to the result bumps the source's ``_version``
        (autograd uses this counter to detect tensors modified after being saved).
    """

    new_storage: bool
    requires_grad: bool
    grad_flows: bool
    is_leaf: bool
    shares_version_counter: bool

    def as_dict(self) -> dict[str, bool]:
        return {name: getattr(self, name) for name in SEMANTIC_PROPERTIES}


SEMANTIC_PROPERTIES: tuple[str, ...] = (
    "new_storage",
    "requires_grad",
    "grad_flows",
    "is_leaf",
    "shares_version_counter",
)


@dataclass(frozen=True)
class CopyMethod:
    """One way of copying a tensor or a module, declared once."""

    name: str
    kind: Kind
    code: str
    bind: Callable[..., Callable[[], Any]]
    semantics: Semantics
    allocates: bool
    doc: str

    def __str__(self) -> str:
        return self.name


# --------------------------------------------------------------------------------------------
# Tensor methods.  ``bind(x)`` receives the (already created and touched) source tensor.


def _bind_copy_into(x: torch.Tensor) -> Callable[[], torch.Tensor]:
    # The bandwidth reference: the destination exists and its pages are resident, so the
    # timed region is the memory traffic alone, no allocator and no page faults.
    out = torch.empty_like(x)
    out.fill_(0)
    return lambda: out.copy_(x)


_NEW_TRACKED = Semantics(True, True, True, False, False)
_NEW_DETACHED = Semantics(True, False, False, True, False)

TENSOR_METHODS: tuple[CopyMethod, ...] = (
    CopyMethod(
        "clone",
        "tensor",
        "x.clone()",
        lambda x: x.clone,
        _NEW_TRACKED,
        allocates=True,
        doc="New memory, recorded by autograd (CloneBackward0): gradients flow to x.",
    ),
    CopyMethod(
        "clone_detach",
        "tensor",
        "x.clone().detach()",
        lambda x: lambda: x.clone().detach(),
        _NEW_DETACHED,
        allocates=True,
        doc="The tracked clone: builds an autograd node, then throws it away.",
    ),
    CopyMethod(
        "detach_clone",
        "tensor",
        "x.detach().clone()",
        lambda x: lambda: x.detach().clone(),
        _NEW_DETACHED,
        allocates=True,
        doc="The untracked clone PyTorch's warning text recommends.",
    ),
    CopyMethod(
        "detach",
        "tensor",
        "x.detach()",
        lambda x: x.detach,
        Semantics(False, False, False, True, True),
        allocates=False,
        doc="No copy: a view sharing storage and version counter (the zero-copy floor).",
    ),
    CopyMethod(
        "data",
        "tensor",
        "x.data",
        lambda x: lambda: x.data,
        Semantics(False, False, False, True, False),
        allocates=False,
        doc="Legacy alias of detach() that does NOT share the version counter: in-place "
        "writes through it escape autograd's checks.",
    ),
    CopyMethod(
        "deepcopy",
        "tensor",
        "copy.deepcopy(x)",
        lambda x: lambda: copy.deepcopy(x),
        Semantics(True, True, False, True, False),
        allocates=True,
        doc="A new leaf with x's requires_grad; no graph link to x. Leaves only.",
    ),
    CopyMethod(
        "empty_like_copy",
        "tensor",
        "torch.empty_like(x).copy_(x)",
        lambda x: lambda: torch.empty_like(x).copy_(x),
        _NEW_TRACKED,
        allocates=True,
        doc="Allocate then copy in place; the copy_ is recorded by autograd.",
    ),
    CopyMethod(
        "to_copy",
        "tensor",
        "x.to(x.device, copy=True)",
        lambda x: lambda: x.to(x.device, copy=True),
        _NEW_TRACKED,
        allocates=True,
        doc="Forced copy through .to(); recorded by autograd (ToCopyBackward0).",
    ),
    CopyMethod(
        "clone_contiguous",
        "tensor",
        "x.clone(memory_format=torch.contiguous_format)",
        lambda x: lambda: x.clone(memory_format=torch.contiguous_format),
        _NEW_TRACKED,
        allocates=True,
        doc="Clone that always returns a dense row-major result, even from a strided input.",
    ),
    CopyMethod(
        "copy_into",
        "tensor",
        "out.copy_(x)",
        _bind_copy_into,
        _NEW_TRACKED,
        allocates=False,
        doc="Copy into a preallocated, already-touched buffer: the memory-bandwidth "
        "reference. Under grad mode the buffer joins x's graph.",
    ),
)


# --------------------------------------------------------------------------------------------
# Module methods.  ``bind(model, factory)`` receives the source module and a zero-argument
# constructor of an equal, freshly initialised module (called under the source's device).


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _device_of(model: nn.Module) -> torch.device:
    """Where the model's tensors live (its first parameter's, else its first buffer's;
    the CPU for a module without tensors)."""
    first = next(itertools.chain(model.parameters(), model.buffers()), None)
    return torch.device("cpu") if first is None else first.device


def _bind_load_existing(model: nn.Module, factory: Callable[[], nn.Module]):
    with torch.device(_device_of(model)):
        target = factory()

    def run() -> nn.Module:
        target.load_state_dict(model.state_dict())
        return target

    return run


def _bind_new_instance(model: nn.Module, factory: Callable[[], nn.Module]):
    device = _device_of(model)

    def run() -> nn.Module:
        with torch.device(device):
            target = factory()
        target.load_state_dict(model.state_dict())
        return target

    return run


def _bind_meta_assign(model: nn.Module, factory: Callable[[], nn.Module]):
    def run() -> nn.Module:
        with torch.device("meta"):
            target = factory()
        target.load_state_dict(_snapshot(model), assign=True)
        return target

    return run


def _bind_save_load(model: nn.Module, factory: Callable[[], nn.Module]):
    def run() -> dict[str, torch.Tensor]:
        buffer = io.BytesIO()
        torch.save(model.state_dict(), buffer)
        buffer.seek(0)
        return torch.load(buffer, weights_only=True, map_location=_device_of(model))

    return run


def _bind_foreach_copy_into(model: nn.Module, factory: Callable[[], nn.Module]):
    # As copy_into: the buffers exist and are touched before timing, and the source tensors
    # are listed once (state_dict()'s values share the parameters' storage), so the timed
    # region is one torch._foreach_copy_ over every tensor, what a loop that refreshes the
    # same buffers every step (an EMA, a target network) pays.
    sources = model.state_dict()
    buffers = {k: torch.empty_like(v).zero_() for k, v in sources.items()}
    src, dst = list(sources.values()), list(buffers.values())

    def run() -> dict[str, torch.Tensor]:
        torch._foreach_copy_(dst, src)
        return buffers

    return run


def _bind_safetensors(model: nn.Module, factory: Callable[[], nn.Module]):
    try:
        from safetensors.torch import load, save
    except ImportError:
        raise UnavailableMethod("safetensors is not installed") from None
    device = _device_of(model)

    def run() -> dict[str, torch.Tensor]:
        # safetensors reads back into host memory; a GPU model's round trip ends on its GPU,
        # as save_load's map_location does.
        out = load(save(model.state_dict()))
        return out if device.type == "cpu" else {k: v.to(device) for k, v in out.items()}

    return run


def _bind_pinned_snapshot(model: nn.Module, factory: Callable[[], nn.Module]):
    device = _device_of(model)
    if device.type != "cuda":
        raise UnavailableMethod("a device-to-host snapshot needs a model on a CUDA GPU")
    # Pinned host buffers, allocated and touched before timing: the copies can then run
    # asynchronously (non_blocking), and the call returns before they finish.
    buffers = {
        k: torch.empty(v.shape, dtype=v.dtype, pin_memory=True).zero_()
        for k, v in model.state_dict().items()
    }

    def run() -> dict[str, torch.Tensor]:
        for k, v in model.state_dict().items():
            buffers[k].copy_(v, non_blocking=True)
        return buffers

    return run


# Modules: "requires_grad" and "is_leaf" describe the result's tensors (parameters for a
# module result, values for a state-dict result).
_MODULE_LIKE = Semantics(True, True, False, True, False)
_DICT_LIKE = Semantics(True, False, False, True, False)

MODULE_METHODS: tuple[CopyMethod, ...] = (
    CopyMethod(
        "deepcopy_module",
        "module",
        "copy.deepcopy(model)",
        lambda m, factory: lambda: copy.deepcopy(m),
        _MODULE_LIKE,
        allocates=True,
        doc="Copies every attribute, hooks and buffers included; pays Python overhead per "
        "tensor and per submodule.",
    ),
    CopyMethod(
        "state_dict_snapshot",
        "module",
        "{k: v.detach().clone() for k, v in model.state_dict().items()}",
        lambda m, factory: lambda: _snapshot(m),
        _DICT_LIKE,
        allocates=True,
        doc="Tensors only: the usual checkpoint/EMA snapshot.",
    ),
    CopyMethod(
        "deepcopy_state_dict",
        "module",
        "copy.deepcopy(model.state_dict())",
        lambda m, factory: lambda: copy.deepcopy(m.state_dict()),
        _DICT_LIKE,
        allocates=True,
        doc="deepcopy of the (detached) state_dict tensors and its metadata.",
    ),
    CopyMethod(
        "load_state_dict_existing",
        "module",
        "other.load_state_dict(model.state_dict())",
        _bind_load_existing,
        _MODULE_LIKE,
        allocates=False,
        doc="Copy into an instance that already exists: no allocation, like copy_.",
    ),
    CopyMethod(
        "new_instance_load",
        "module",
        "other = Model(); other.load_state_dict(model.state_dict())",
        _bind_new_instance,
        _MODULE_LIKE,
        allocates=True,
        doc="The tutorial's 'new instance, then copy the parameters': construction and "
        "its random initialisation are part of the cost.",
    ),
    CopyMethod(
        "meta_assign",
        "module",
        "with torch.device('meta'): other = Model()\nother.load_state_dict(snapshot, assign=True)",
        _bind_meta_assign,
        _MODULE_LIKE,
        allocates=True,
        doc="Skip initialisation: build on the meta device, then adopt cloned tensors.",
    ),
    CopyMethod(
        "save_load",
        "module",
        "torch.save(model.state_dict(), buf); torch.load(buf, weights_only=True)",
        _bind_save_load,
        _DICT_LIKE,
        allocates=True,
        doc="Serialise and read back through memory (what a checkpoint round trip costs).",
    ),
    CopyMethod(
        "foreach_copy_into",
        "module",
        "torch._foreach_copy_(buffers, list(model.state_dict().values()))",
        _bind_foreach_copy_into,
        _DICT_LIKE,
        allocates=False,
        doc="Copy into buffers that already exist, one call for every tensor: the "
        "bandwidth reference for a model, like copy_into for a tensor.",
    ),
    CopyMethod(
        "safetensors_save_load",
        "module",
        "safetensors.torch.load(safetensors.torch.save(model.state_dict()))",
        _bind_safetensors,
        _DICT_LIKE,
        allocates=True,
        doc="Serialise with safetensors and read back through memory; needs safetensors, "
        "and refuses tensors that share memory (tied weights).",
    ),
    CopyMethod(
        "pinned_snapshot",
        "module",
        "for k, v in model.state_dict().items(): pinned[k].copy_(v, non_blocking=True)",
        _bind_pinned_snapshot,
        _DICT_LIKE,
        allocates=False,
        doc="A GPU model's weights into pinned host buffers without waiting (an async "
        "checkpoint's first step); valid only after a synchronisation. Needs a GPU.",
    ),
)

# --------------------------------------------------------------------------------------------
# Device transfers.  ``bind(x, target, pinned)`` receives the source (in host memory -
# pinned or pageable as ``pinned`` says - or on a GPU) and the target device;
# ``TRANSFER_ROUTES`` says which way each goes.  For a device-to-host copy into a buffer,
# ``pinned`` says what kind of host memory the buffer is.


def _bind_copy_to(non_blocking: bool):
    def bind(x: torch.Tensor, target: str, pinned: bool) -> Callable[[], torch.Tensor]:
        # The destination exists (and is touched) before timing, as for copy_into.
        pin = pinned and torch.device(target).type == "cpu"
        out = torch.empty(x.shape, dtype=x.dtype, device=target, pin_memory=pin)
        out.zero_()
        return lambda: out.copy_(x, non_blocking=non_blocking)

    return bind


TRANSFER_METHODS: tuple[CopyMethod, ...] = (
    CopyMethod(
        "to_device",
        "transfer",
        "x.to('cuda')",
        lambda x, target, pinned: lambda: x.to(target),
        _NEW_TRACKED,
        allocates=True,
        doc="Host to device; from pageable memory the driver stages through a "
        "pinned bounce buffer.",
    ),
    CopyMethod(
        "to_device_nonblocking",
        "transfer",
        "x.to('cuda', non_blocking=True)",
        lambda x, target, pinned: lambda: x.to(target, non_blocking=True),
        _NEW_TRACKED,
        allocates=True,
        doc="Asynchronous only from pinned memory; from pageable it behaves as blocking.",
    ),
    CopyMethod(
        "copy_h2d",
        "transfer",
        "out_cuda.copy_(x)",
        _bind_copy_to(False),
        _NEW_TRACKED,
        allocates=False,
        doc="Host to a preallocated device buffer: the host-to-device rate.",
    ),
    CopyMethod(
        "copy_h2d_nonblocking",
        "transfer",
        "out_cuda.copy_(x, non_blocking=True)",
        _bind_copy_to(True),
        _NEW_TRACKED,
        allocates=False,
        doc="As copy_h2d, asynchronous from pinned memory.",
    ),
    CopyMethod(
        "to_host",
        "transfer",
        "x.cpu()",
        lambda x, target, pinned: x.cpu,
        _NEW_TRACKED,
        allocates=True,
        doc="Device to new pageable host memory; always synchronises.",
    ),
    CopyMethod(
        "to_host_nonblocking",
        "transfer",
        "x.to('cpu', non_blocking=True)",
        lambda x, target, pinned: lambda: x.to("cpu", non_blocking=True),
        _NEW_TRACKED,
        allocates=True,
        doc="Device to host without waiting: the result is valid only after a synchronisation.",
    ),
    CopyMethod(
        "copy_d2h",
        "transfer",
        "out_cpu.copy_(x_cuda)",
        _bind_copy_to(False),
        _NEW_TRACKED,
        allocates=False,
        doc="Device to a preallocated host buffer (pageable or pinned).",
    ),
    CopyMethod(
        "to_peer",
        "transfer",
        "x.to('cuda:1')",
        lambda x, target, pinned: lambda: x.to(target),
        _NEW_TRACKED,
        allocates=True,
        doc="GPU to GPU (peer-to-peer where the GPUs allow it).",
    ),
    CopyMethod(
        "copy_peer",
        "transfer",
        "out_cuda1.copy_(x_cuda0)",
        _bind_copy_to(False),
        _NEW_TRACKED,
        allocates=False,
        doc="GPU to a preallocated buffer on another GPU: the peer rate.",
    ),
)

# Which way each transfer goes: the source side and the target side.
TRANSFER_ROUTES: dict[str, tuple[str, str]] = {
    "to_device": ("host", "cuda:0"),
    "to_device_nonblocking": ("host", "cuda:0"),
    "copy_h2d": ("host", "cuda:0"),
    "copy_h2d_nonblocking": ("host", "cuda:0"),
    "to_host": ("cuda:0", "cpu"),
    "to_host_nonblocking": ("cuda:0", "cpu"),
    "copy_d2h": ("cuda:0", "cpu"),
    "to_peer": ("cuda:0", "cuda:1"),
    "copy_peer": ("cuda:0", "cuda:1"),
}

METHODS: dict[str, CopyMethod] = {
    m.name: m for m in TENSOR_METHODS + MODULE_METHODS + TRANSFER_METHODS
}


class UnknownMethodError(KeyError):
    """An unknown copy-method name; the message lists the known ones."""

    def __str__(self) -> str:
        return str(self.args[0])


def get_method(name: str) -> CopyMethod:
    try:
        return METHODS[name]
    except KeyError:
        known = ", ".join(METHODS)
        raise UnknownMethodError(f"unknown copy method {name!r}; known: {known}") from None


def tensor_method_names() -> list[str]:
    return [m.name for m in TENSOR_METHODS]


def module_method_names() -> list[str]:
    return [m.name for m in MODULE_METHODS]


def transfer_method_names() -> list[str]:
    return [m.name for m in TRANSFER_METHODS]
