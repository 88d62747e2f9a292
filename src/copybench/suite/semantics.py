"""Probes that observe what a registered copy method really does on the installed torch.

Each property of :class:`copybench.suite.methods.Semantics` is measured, not assumed:

- new_storage: compare the storages' data pointers;
- requires_grad / is_leaf: read them off the result;
- grad_flows: backpropagate ``sum()`` of the result and look at the source's ``.grad``;
- shares_version_counter: write the result in place (under ``no_grad``, which still bumps
  version counters) and see whether the source's ``_version`` moved.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from copybench.suite.cases import CaseError, ReferenceModel, check_device, make_transfer_source
from copybench.suite.methods import (
    METHODS,
    SEMANTIC_PROPERTIES,
    CopyMethod,
    UnavailableMethod,
    get_method,
)
from copybench.suite.timing import synchronized


@dataclass(frozen=True)
class Observation:
    """What a probe saw; ``observed`` is None (and ``skipped`` says why) where the method
    cannot run here, e.g. a device transfer without a GPU."""

    method: CopyMethod
    observed: dict[str, bool] | None
    skipped: str | None = None

    @property
    def declared(self) -> dict[str, bool]:
        return self.method.semantics.as_dict()

    @property
    def mismatches(self) -> list[str]:
        if self.observed is None:
            return []
        return [p for p in SEMANTIC_PROPERTIES if self.observed[p] != self.declared[p]]

    def as_dict(self) -> dict:
        return {
            "method": self.method.name,
            "kind": self.method.kind,
            "code": self.method.code,
            "observed": self.observed,
            "declared": self.declared,
            "matches": None if self.observed is None else not self.mismatches,
            "skipped": self.skipped,
        }


def _storage_ptr(t: torch.Tensor) -> int:
    return t.untyped_storage().data_ptr()


def _result_tensors(result: object) -> dict[str, torch.Tensor]:
    if isinstance(result, torch.Tensor):
        return {"": result}
    if isinstance(result, nn.Module):
        return dict(result.named_parameters())
    if isinstance(result, dict):
        return dict(result)
    raise TypeError(f"cannot probe a copy that returned {type(result).__name__}")


def _observe(sources: dict[str, torch.Tensor], result: object) -> dict[str, bool]:
    out = _result_tensors(result)
    pairs = [(sources[k], out[k]) for k in sources]
    obs = {
        "new_storage": all(_storage_ptr(s) != _storage_ptr(r) for s, r in pairs),
        "requires_grad": all(r.requires_grad for _, r in pairs),
        "is_leaf": all(r.is_leaf for _, r in pairs),
    }
    tracked = [r for _, r in pairs if r.requires_grad]
    if tracked:
        torch.autograd.backward([r.sum() for r in tracked])
    obs["grad_flows"] = any(s.grad is not None and bool(s.grad.ne(0).any()) for s, _ in pairs)
    before = [s._version for s, _ in pairs]
    with torch.no_grad():
        for _, r in pairs:
            r.mul_(1)
    obs["shares_version_counter"] = any(
        s._version != v for (s, _), v in zip(pairs, before, strict=True)
    )
    return {p: obs[p] for p in SEMANTIC_PROPERTIES}


def probe(method: CopyMethod, device: str = "cpu") -> Observation:
    """Observe ``method`` on a fresh float32 leaf (or small model) that requires grad, on
    ``device`` (transfers go where their route says, whatever ``device`` is)."""
    if method.kind == "tensor":
        x = torch.ones(5, requires_grad=True, device=device)
        result = method.bind(x)()
        return Observation(method, _observe({"": x}, result))
    if method.kind == "transfer":
        try:
            x, target, pinned = make_transfer_source(method.name, 5, "pageable")
        except CaseError as e:
            return Observation(method, None, skipped=str(e))
        x.requires_grad_(True)
        result = method.bind(x, target, pinned)()
        torch.cuda.synchronize()
        return Observation(method, _observe({"": x}, result))
    with torch.device(device):
        model = ReferenceModel(4, 2)
    try:
        bound = method.bind(model, lambda: ReferenceModel(4, 2))
    except UnavailableMethod as e:
        return Observation(method, None, skipped=str(e))
    result = synchronized(bound, device)()
    return Observation(method, _observe(dict(model.named_parameters()), result))


def probe_all(names: Iterable[str] | None = None, device: str = "cpu") -> list[Observation]:
    """Probe every method (or ``names``) on ``device``; UnknownMethodError for a name not
    registered, CaseError for a device not usable here."""
    methods = [get_method(n) for n in names] if names is not None else list(METHODS.values())
    check_device(device)
    return [probe(m, device) for m in methods]


def format_table(observations: list[Observation]) -> str:
    """A plain-text table; a cell reads ``yes``/``no``, with ``!`` and the declared value
    appended where the observation contradicts the registry, ``n/a`` where the method could
    not run here (the reasons follow the table)."""
    headers = ["method", "kind", *SEMANTIC_PROPERTIES]
    rows = []
    for o in observations:
        cells = [o.method.name, o.method.kind]
        for p in SEMANTIC_PROPERTIES:
            if o.observed is None:
                cells.append("n/a")
                continue
            cell = "yes" if o.observed[p] else "no"
            if o.observed[p] != o.declared[p]:
                cell += f" (!declared {'yes' if o.declared[p] else 'no'})"
            cells.append(cell)
        rows.append(cells)
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*headers), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*r) for r in rows]
    lines += [f"n/a {o.method.name}: {o.skipped}" for o in observations if o.skipped]
    return "\n".join(lines)


if __name__ == "__main__":
    # ``python -m copybench.suite.semantics``: every method's observations as JSON, what
    # ``copybench semantics --json`` prints, without the command line's imports (pandas,
    # scipy), so that a bare interpreter with torch - the other side of a gate - can
    # answer.  Exit 1 where an observation contradicts the registry, as the command does.
    import json
    import sys

    observations = probe_all()
    print(json.dumps([o.as_dict() for o in observations], indent=2))
    sys.exit(1 if any(o.mismatches for o in observations) else 0)
