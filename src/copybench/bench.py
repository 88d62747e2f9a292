"""Case preparation shared by every harness (asv, pytest-benchmark, the CLI).

A harness names a case; this module builds it: threads set, source created and touched,
the method bound (its own preparation done), the copy wrapped with a device synchronisation
and warmed up.  What comes back is the one callable the harness times.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .cases import DEFAULT_THREADS, make_model, make_tensor, nbytes
from .methods import get_method
from .timing import set_threads, synchronized, warm_up


@dataclass
class Prepared:
    """A case ready to time: ``run()`` performs one synchronised copy."""

    run: Callable[[], Any]
    device: str
    threads: int
    nbytes: int  # bytes of the source (tensor, or all parameters of a model)
    source: Any  # kept alive for as long as the case is


# asv re-runs ``setup`` before every sample so that state cannot drift between samples.
# Nothing here drifts: no registered copy writes to its source, and copy_into's buffer is
# *meant* to stay resident.  Re-creating a 128 MiB source and re-warming it for every sample
# would cost seconds per case, so the most recent case is kept (one at a time: memory stays
# bounded by the largest case).
@functools.lru_cache(maxsize=1)
def prepare_tensor_case(
    method: str,
    numel: int,
    dtype: str,
    requires_grad: bool,
    layout: str,
    device: str,
    threads: int = DEFAULT_THREADS,
) -> Prepared:
    """Raises CaseError (or UnknownMethodError) for a case that cannot run here."""
    m = get_method(method)
    if m.kind != "tensor":
        raise ValueError(f"{method!r} copies modules, not tensors")
    threads = set_threads(threads)
    x = make_tensor(numel, dtype, requires_grad, layout, device)
    run = synchronized(m.bind(x), device)
    warm_up(run, device)
    return Prepared(run, device, threads, nbytes(numel, dtype), x)


@functools.lru_cache(maxsize=1)
def prepare_module_case(
    method: str, model: str, device: str, threads: int = DEFAULT_THREADS
) -> Prepared:
    m = get_method(method)
    if m.kind != "module":
        raise ValueError(f"{method!r} copies tensors, not modules")
    threads = set_threads(threads)
    source, spec = make_model(model, device)
    run = synchronized(m.bind(source, spec.build), device)
    warm_up(run, device)
    size = sum(p.numel() * p.element_size() for p in source.parameters())
    return Prepared(run, device, threads, size, source)
