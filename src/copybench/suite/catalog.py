"""What ``copybench list`` prints: the registry of copy methods and the grid, as data and
as text."""

from __future__ import annotations

from typing import Any

from copybench.suite import cases
from copybench.suite.methods import METHODS


def catalog() -> dict[str, Any]:
    """Every registered method (its name, kind, code, doc, whether it allocates, its
    declared semantics), the tensor axes, the sizes measured on CUDA besides, and the
    reference models with their parameter and tensor counts."""
    return {
        "methods": [
            {
                "name": m.name,
                "kind": m.kind,
                "code": m.code,
                "doc": m.doc,
                "allocates": m.allocates,
                **m.semantics.as_dict(),
            }
            for m in METHODS.values()
        ],
        "tensor_axes": {k: list(v) for k, v in cases.TENSOR_AXES.items()},
        "cuda_sizes": [n for n in cases.GPU_SIZES if n not in cases.SIZES],
        "models": {
            s.name: {"n_params": s.n_params, "n_tensors": s.n_tensors, "width": s.width}
            for s in cases.MODELS.values()
        },
    }


def catalog_text(data: dict[str, Any]) -> str:
    """The catalog as a person reads it: a line per method, a line per axis, the models."""
    lines = [f"{m['name']:<26} {m['kind']:<7} {m['code'].splitlines()[0]}" for m in data["methods"]]
    lines.append("")
    for k, v in data["tensor_axes"].items():
        lines.append(
            f"{k:<14} {', '.join(map(str, v))}" + ("  (CPU and CUDA)" if k == "numel" else "")
        )
    lines.append(
        f"{'numel (CUDA)':<14} {', '.join(map(str, data['cuda_sizes']))}  (besides, on CUDA)"
    )
    lines.append(
        "models         "
        + ", ".join(
            f"{n} ({d['n_params']:,} params in {d['n_tensors']} tensors)"
            for n, d in data["models"].items()
        )
    )
    return "\n".join(lines)
