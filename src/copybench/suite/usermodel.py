"""A user's model, for ``copybench advise``: built from what the command line names, the
same way in the command's own process and in every worker it starts.

MODEL is one of:

- ``package.module:factory`` (``factory`` may be dotted, ``module:Class.build``): imported
  and called with the ``--kwarg`` values.  **This runs the user's code**, exactly as
  ``python -c "import package.module; package.module.factory()"`` would, with the current
  folder first on ``sys.path`` as ``python -c`` puts it;
- the path of a state_dict or checkpoint, read with ``torch.load(..., weights_only=True)``
  and nothing else (no pickled code runs); its tensors are laid out in a stand-in module,
  :class:`CheckpointModel`;
- the short name of a torchvision or timm architecture, built with random weights (nothing
  is downloaded), where that package imports.

Whatever cannot be built raises :class:`ModelError`, a one-line :class:`UsageError`.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import os
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from copybench.suite.cases import ADVISE_DTYPES, UsageError, check_device, dtype_of


class ModelError(UsageError):
    """A model that cannot be built: the message is one line, naming what failed."""


def one_line(e: BaseException) -> str:
    """``Type: first line of the message``: an exception as one line of stderr."""
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


def literal(text: str) -> Any:
    """A ``--kwarg`` value: a Python literal where it reads as one (``2``, ``0.1``,
    ``True``, ``(3, 4)``, ``'x'``), else the text itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text


@dataclass(frozen=True)
class ModelSource:
    """How to build the model: MODEL as given, the factory's keyword arguments as given
    (text; :func:`literal` reads them), the device and, where given, the dtype its
    floating-point tensors are converted to."""

    spec: str
    kwargs: dict[str, str] = field(default_factory=dict)
    device: str = "cpu"
    dtype: str | None = None

    def check(self) -> ModelSource:
        """Raise CaseError for a device not usable here or a dtype not in ADVISE_DTYPES."""
        check_device(self.device)
        if self.dtype is not None:
            dtype_of(self.dtype, ADVISE_DTYPES)
        return self

    @property
    def kind(self) -> str:
        """``checkpoint`` (an existing file), ``factory`` (``module:callable``) or ``name``."""
        if os.path.isfile(self.spec):
            return "checkpoint"
        return "factory" if ":" in self.spec else "name"

    def build(self) -> nn.Module:
        """A fresh model, on the device, in the dtype.  Anything the user's code prints
        goes to stderr: a worker's stdout carries its results."""
        with contextlib.redirect_stdout(sys.stderr):
            model = _BUILDERS[self.kind](self.spec, {k: literal(v) for k, v in self.kwargs.items()})
        model = model.to(self.device)
        if self.dtype is not None:
            model = model.to(dtype_of(self.dtype, ADVISE_DTYPES))
        return model

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _from_factory(spec: str, kwargs: dict[str, Any]) -> nn.Module:
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ModelError(f"model {spec!r}: expected package.module:factory")
    here = os.getcwd()
    if here not in sys.path:
        sys.path.insert(0, here)  # as `python -c` does
    try:
        obj: Any = importlib.import_module(module_name)
    except (Exception, SystemExit) as e:
        raise ModelError(f"cannot import {module_name!r}: {one_line(e)}") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ModelError(f"module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ModelError(f"{spec} is a {type(obj).__name__}, not a callable")
    try:
        model = obj(**kwargs)
    except (Exception, SystemExit) as e:
        raise ModelError(f"factory {spec} raised {one_line(e)}") from None
    if not isinstance(model, nn.Module):
        raise ModelError(f"factory {spec} returned a {type(model).__name__}, not a torch.nn.Module")
    return model


def _from_name(name: str, kwargs: dict[str, Any]) -> nn.Module:
    """A torchvision or timm architecture with random weights (``weights=None``,
    ``pretrained=False``: nothing is downloaded)."""
    tried = []
    try:
        import torchvision.models as tvm
    except Exception as e:  # not installed, or built for another torch
        tried.append(f"torchvision does not import ({one_line(e)})")
    else:
        if name in tvm.list_models():
            return _call(f"torchvision's {name}", tvm.get_model, name, weights=None, **kwargs)
        tried.append("not a torchvision architecture")
    try:
        import timm
    except Exception as e:
        tried.append(f"timm does not import ({one_line(e)})")
    else:
        if name in timm.list_models():
            return _call(f"timm's {name}", timm.create_model, name, pretrained=False, **kwargs)
        tried.append("not a timm architecture")
    raise ModelError(
        f"model {name!r} is not a file, not package.module:factory, and not an architecture "
        f"found here: {'; '.join(tried)}"
    )


def _call(what: str, fn: Any, *args: Any, **kwargs: Any) -> nn.Module:
    try:
        return fn(*args, **kwargs)
    except Exception as e:
        raise ModelError(f"{what} raised {one_line(e)}") from None


def _from_checkpoint(path: str, kwargs: dict[str, Any]) -> nn.Module:
    if kwargs:
        raise ModelError("--kwarg is for a factory or an architecture, not a checkpoint")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        # torch's refusal of pickled code (UnpicklingError) and a file that is no torch
        # checkpoint at all (a zip or pickle error) both land here.
        raise ModelError(
            f"{path}: not readable with torch.load(weights_only=True): {one_line(e)}"
        ) from None
    return CheckpointModel(state_dict_in(obj, path))


# Where a checkpoint that is not a bare state_dict usually keeps the model's.
STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model", "module", "net")


def state_dict_in(obj: Any, path: str = "checkpoint") -> dict[str, torch.Tensor]:
    """The state_dict in a loaded checkpoint: the object itself where every value is a
    tensor, else the first of STATE_DICT_KEYS that is one; ModelError where none is."""

    def is_state_dict(d: Any) -> bool:
        return (
            isinstance(d, Mapping)
            and bool(d)
            and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in d.items())
        )

    if is_state_dict(obj):
        return dict(obj)
    if isinstance(obj, Mapping):
        for key in STATE_DICT_KEYS:
            if is_state_dict(obj.get(key)):
                return dict(obj[key])
    raise ModelError(
        f"{path}: holds no state_dict (a mapping of names to tensors, at the top or under "
        f"one of {', '.join(STATE_DICT_KEYS)})"
    )


class CheckpointModel(nn.Module):
    """A state_dict's tensors in a module of their own, laid out by their dotted names:
    floating-point tensors as parameters, the rest as buffers, and tensors that share
    storage in the file (``torch.save`` keeps that) as one parameter under each name, tied
    as they were.  What the original model had besides its tensors (its class, hooks,
    attributes, non-persistent buffers) is not in the file and so not here."""

    def __init__(self, state: Mapping[str, torch.Tensor]) -> None:
        super().__init__()
        shared: dict[tuple, nn.Parameter] = {}
        for key, t in state.items():
            *path, name = key.split(".")
            owner: nn.Module = self
            try:
                for part in path:
                    if part not in owner._modules:
                        owner.add_module(part, nn.Module())
                    owner = owner._modules[part]
                if t.is_floating_point():
                    ident = (
                        t.untyped_storage().data_ptr(),
                        t.storage_offset(),
                        t.shape,
                        t.stride(),
                    )
                    if ident not in shared:
                        shared[ident] = nn.Parameter(t)
                    owner.register_parameter(name, shared[ident])
                else:
                    owner.register_buffer(name, t)
            except (KeyError, TypeError) as e:
                raise ModelError(
                    f"key {key!r} cannot be laid out as a module: {one_line(e)}"
                ) from None


_BUILDERS = {"checkpoint": _from_checkpoint, "factory": _from_factory, "name": _from_name}


def describe(model: nn.Module) -> dict[str, Any]:
    """What the answer's first line says of the model: its class, its parameters (each
    tied one once) and the tensors and bytes of its state_dict (a tied tensor under each
    of its names, as a state_dict holds it)."""
    params = list(model.parameters())
    state = model.state_dict()
    return {
        "class": type(model).__qualname__,
        "parameters": sum(p.numel() for p in params),
        "parameter_tensors": len(params),
        "state_dict_tensors": len(state),
        "state_dict_bytes": sum(t.numel() * t.element_size() for t in state.values()),
        "dtypes": sorted({str(t.dtype).removeprefix("torch.") for t in state.values()}),
        "modules": sum(1 for _ in model.modules()),
    }
