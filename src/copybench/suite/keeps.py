"""What each copy of a whole model keeps, observed on that model (``copybench advise``).

The registry declares what a method does to autograd (:mod:`copybench.suite.semantics`
observes that on a small model of ours).  What a user also needs to know depends on *their*
model: does the copy keep tied weights tied, its buffers, its hooks, its parametrizations,
its plain attributes?  This module finds out by running each route on the model and
looking at what came out.

The probe: each route is bound to the source (``load_state_dict``'s existing copy built,
buffers allocated), then the source **moves on** the way a model in training does before it
is copied - every parameter and buffer gets new values, its first parameter is frozen
(``requires_grad=False``), an attribute is set on it and a forward hook added - and then
each route copies it.  Whatever reached the copy, the route carries; what the existing copy
or a fresh build already had does not count.  Ties, parametrizations and non-persistent
buffers are the model's own; where it has none, the answer is ``none here``.

A route that returns a module is compared on every property; one that returns a dict of
tensors (a snapshot, a round trip through bytes) on the tensors' properties only: a dict
has no hooks, attributes, parametrizations or ``requires_grad`` flags worth the name, and
says so (``dict``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize

from copybench.suite.methods import UnavailableMethod, get_method
from copybench.suite.timing import synchronized
from copybench.suite.usermodel import one_line

# The properties observed, in the order the answer lists them.
PROPERTIES: tuple[str, ...] = (
    "ties",
    "persistent_buffers",
    "non_persistent_buffers",
    "requires_grad",
    "hooks",
    "parametrizations",
    "attributes",
)
# What a dict of tensors cannot carry, by its nature.
MODULE_ONLY: tuple[str, ...] = ("requires_grad", "hooks", "parametrizations", "attributes")
YES, NO, NONE, DICT = "yes", "no", "none here", "dict"
# The attribute the probe sets on the source once the routes are bound.
MARKER = "copybench_probe_attribute"
_HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")


def _marker_hook(module: nn.Module, args: Any, output: Any) -> None:
    """The forward hook the probe adds (module level, so that a copy can pickle it)."""


@dataclass
class RouteKeeps:
    """One route on one model: what it kept (``keeps``: property -> YES, NO, NONE or DICT),
    what it changed without a word (``changes``: one phrase each), or why it did not run
    (``failed``: it raised on this model; ``skipped``: it cannot run here)."""

    route: str
    output: str = ""  # "module" or "dict"
    keeps: dict[str, str] = field(default_factory=dict)
    changes: list[str] = field(default_factory=list)
    failed: str | None = None
    skipped: str | None = None

    @property
    def ran(self) -> bool:
        return self.failed is None and self.skipped is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "route": self.route,
            "output": self.output,
            "keeps": dict(self.keeps),
            "changes": list(self.changes),
            "failed": self.failed,
            "skipped": self.skipped,
        }


# --- what a model (or a dict of tensors) holds --------------------------------------------------


def _ident(t: torch.Tensor) -> tuple:
    return (t.device, t.untyped_storage().data_ptr(), t.storage_offset(), t.shape, t.stride())


def tie_groups(tensors: Mapping[str, torch.Tensor]) -> list[tuple[str, ...]]:
    """The names that share one tensor's memory (same storage, offset, shape and strides),
    each group sorted, groups of two or more only."""
    groups: dict[tuple, list[str]] = {}
    for name, t in tensors.items():
        groups.setdefault(_ident(t), []).append(name)
    return sorted(tuple(sorted(g)) for g in groups.values() if len(g) > 1)


def buffer_names(model: nn.Module) -> tuple[list[str], list[str]]:
    """(persistent, non-persistent) buffer names, dotted from the root."""
    persistent, transient = [], []
    for path, m in model.named_modules(remove_duplicate=False):
        for name, b in m._buffers.items():
            if b is None:
                continue
            full = f"{path}.{name}" if path else name
            (transient if name in m._non_persistent_buffers_set else persistent).append(full)
    return persistent, transient


def hook_counts(model: nn.Module) -> dict[str, int]:
    """Forward and backward hooks (pre-hooks too) per module path, where there are any."""
    counts = {}
    for path, m in model.named_modules(remove_duplicate=False):
        n = sum(len(getattr(m, d, {})) for d in _HOOK_DICTS)
        if n:
            counts[path] = n
    return counts


def parametrized(model: nn.Module) -> dict[str, torch.Tensor]:
    """Each parametrized tensor (``path.name``) and the value its parametrization computes."""
    out = {}
    for path, m in model.named_modules(remove_duplicate=False):
        if parametrize.is_parametrized(m):
            for name in m.parametrizations:
                out[f"{path}.{name}" if path else name] = getattr(m, name).detach()
    return out


def attributes(model: nn.Module) -> dict[str, Any]:
    """Plain attributes (``path.name``): what a module's ``__dict__`` holds besides torch's
    own bookkeeping (names starting with ``_``, ``training``)."""
    out = {}
    for path, m in model.named_modules(remove_duplicate=False):
        for name, value in vars(m).items():
            if not name.startswith("_") and name != "training":
                out[f"{path}.{name}" if path else name] = value
    return out


def same(a: Any, b: Any, depth: int = 3) -> bool:
    """Whether two attribute values are equal: tensors by value, objects without an
    ``__eq__`` of their own (a copy is never ``==`` to them) by their attributes."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and _equal(a, b)
    if isinstance(a, (list, tuple)) and type(a) is type(b):
        return len(a) == len(b) and all(same(x, y, depth) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k], depth) for k in a)
    if a is b or _eq(a, b):
        return True
    if type(a) is not type(b) or type(a).__eq__ is not object.__eq__ or depth == 0:
        return False
    if not (hasattr(a, "__dict__") and hasattr(b, "__dict__")):
        return False
    va, vb = vars(a), vars(b)
    return va.keys() == vb.keys() and all(same(va[k], vb[k], depth - 1) for k in va)


def _eq(a: Any, b: Any) -> bool:
    try:
        r = a == b
        return bool(r.all()) if hasattr(r, "all") else bool(r)  # numpy compares elementwise
    except Exception:  # an __eq__ that raises, or an ambiguous truth value
        return False


def _equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a.cpu(), b.cpu())


# --- the probe ---------------------------------------------------------------------------------


@torch.no_grad()
def move_on(model: nn.Module) -> None:
    """Change the source the way training does after a copy was built: new values in every
    parameter and buffer (a tensor shared by several names once), the first parameter
    frozen, an attribute set, a forward hook added."""
    seen = set()
    for t in [*model.parameters(), *model.buffers()]:
        if _ident(t) in seen or t.is_meta:
            continue
        seen.add(_ident(t))
        if t.is_floating_point():
            t.copy_(torch.rand_like(t) + 2)  # never what an initialisation gives
        elif t.dtype == torch.bool:
            t.logical_not_()
        else:
            t.add_(1)
    first = next(model.parameters(), None)
    if first is not None:
        first.requires_grad_(False)
    setattr(model, MARKER, 20261201)
    model.register_forward_hook(_marker_hook)


def _tensors_of(out: Any) -> dict[str, torch.Tensor]:
    """The named tensors a copy holds: a module's parameters and buffers (every name, ties
    under each), or a dict's values."""
    if isinstance(out, nn.Module):
        return {
            **dict(out.named_parameters(remove_duplicate=False)),
            **dict(out.named_buffers(remove_duplicate=False)),
        }
    return dict(out)


def _all_equal(names: Iterable[str], source: Mapping[str, Any], copy: Mapping[str, Any]) -> bool:
    return all(n in copy and same(source[n], copy[n]) for n in names)


def compare(source: nn.Module, out: Any) -> dict[str, str]:
    """Property -> YES / NO / NONE / DICT for the copy ``out`` of ``source``."""
    src, got = _tensors_of(source), _tensors_of(out)
    persistent, transient = buffer_names(source)
    ties = tie_groups(src)
    got_ties = tie_groups(got)
    keeps = {
        "ties": NONE if not ties else YES if all(g in got_ties for g in ties) else NO,
        "persistent_buffers": _verdict(persistent, src, got),
        "non_persistent_buffers": _verdict(transient, src, got),
    }
    if not isinstance(out, nn.Module):
        return {**keeps, **dict.fromkeys(MODULE_ONLY, DICT)}
    flags = {n: p.requires_grad for n, p in source.named_parameters(remove_duplicate=False)}
    got_flags = {n: p.requires_grad for n, p in out.named_parameters(remove_duplicate=False)}
    forms = parametrized(source)
    return {
        **keeps,
        "requires_grad": NONE if not flags else YES if flags == got_flags else NO,
        "hooks": YES if hook_counts(source) == hook_counts(out) else NO,
        "parametrizations": _verdict(forms, forms, parametrized(out)),
        "attributes": _verdict(attrs := attributes(source), attrs, attributes(out)),
    }


def _verdict(names: Iterable[str], source: Mapping[str, Any], copy: Mapping[str, Any]) -> str:
    names = list(names)
    if not names:
        return NONE
    return YES if _all_equal(names, source, copy) else NO


# What a NO means, in the words of the flag a route gets for it: for a module, what the
# copy holds instead; for a dict, what it leaves out or splits.
CHANGES: dict[str, str] = {
    "ties": "tied tensors come apart (one copy per name)",
    "persistent_buffers": "persistent buffers are not the source's",
    "non_persistent_buffers": "non-persistent buffers are not the source's",
    "requires_grad": "requires_grad flags are not the source's",
    "hooks": "hooks are not the source's",
    "parametrizations": "parametrizations are lost or differ",
    "attributes": "plain attributes are not the source's",
}
DICT_CHANGES: dict[str, str] = {
    **CHANGES,
    "persistent_buffers": "persistent buffers left out or changed",
    "non_persistent_buffers": "non-persistent buffers left out",
}


def observe(
    build: Callable[[], nn.Module], routes: Iterable[str], source: nn.Module | None = None
) -> list[RouteKeeps]:
    """Each route run once on a model from ``build`` (or ``source``, which the probe
    changes: see :func:`move_on`), and what it kept."""
    source = build() if source is None else source
    device = next(iter(_tensors_of(source).values()), torch.empty(0)).device
    results, bound = [], {}
    for name in routes:
        r = RouteKeeps(name)
        results.append(r)
        try:
            bound[name] = synchronized(get_method(name).bind(source, build), device)
        except UnavailableMethod as e:
            r.skipped = str(e)
        except Exception as e:
            r.failed = one_line(e)
    move_on(source)
    for r in results:
        if r.route not in bound:
            continue
        try:
            out = bound.pop(r.route)()
        except Exception as e:
            r.failed = one_line(e)
            continue
        r.output = "module" if isinstance(out, nn.Module) else "dict"
        r.keeps = compare(source, out)
        words = CHANGES if r.output == "module" else DICT_CHANGES
        r.changes = [words[p] for p in PROPERTIES if r.keeps[p] == NO]
        del out
    return results
