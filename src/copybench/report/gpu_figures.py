"""The README's GPU section as markdown, from the figures ``copybench gpu-figures`` measured
(:func:`copybench.measure.gpu.measure`, also written by its ``--json``).

Report code: it reads the figures and prints them through :mod:`copybench.suite.units`; it
measures nothing.
"""

from __future__ import annotations

from copybench.suite.cases import MODELS, PEAK_MODEL, nbytes
from copybench.suite.methods import METHODS
from copybench.suite.units import (
    format_bandwidth,
    format_bytes,
    format_percent,
    format_ratio,
    format_seconds,
)


def _range(s: dict[str, float]) -> str:
    """The range over processes of a duration: ``180 µs - 185 µs``."""
    return f"{format_seconds(s['min'])} - {format_seconds(s['max'])}"


def _signed_pct(pct: float) -> str:
    return format_percent(pct, signed=True)


def format_figures(fig: dict) -> str:
    """The README's GPU section body (markdown) from
    :func:`copybench.measure.gpu.measure`'s result."""
    parts = (_device, _bandwidth, _overhead, _host_to_device, _peak)
    return "\n".join(line for part in parts for line in part(fig))


def _device(fig: dict) -> list[str]:
    d = fig["device"]
    return [
        f"GPU: **{d['gpu']}** ({format_bytes(d['memory_bytes'])}, compute capability "
        f"{d['capability']}, {d['multiprocessors']} SMs), driver {d.get('driver') or 'unknown'}, "
        f"torch {d['torch']} (CUDA {d['cuda']}); {fig['processes']} fresh processes, each "
        "figure the median over processes of each process's median, the range over processes "
        "beside it.",
        "",
    ]


def _bandwidth(fig: dict) -> list[str]:
    from copybench.measure.gpu import BATCH

    d = fig["device"]
    peak = d.get("peak_bandwidth")
    peak_text = (
        f"peak {format_bandwidth(peak)} ({d['peak_bandwidth_from']})"
        if peak
        else "peak unknown (the driver did not report memory clock and bus width)"
    )
    lines = [
        f"Device-to-device, 256 MiB float32, CUDA events over batches of {BATCH}; "
        f"bandwidth counts bytes read plus written; {peak_text}:",
        "",
        "| copy | time per copy | range over processes | achieved | of peak |",
        "|---|---|---|---|---|",
    ]
    for method, b in fig["bandwidth"].items():
        of_peak = format_percent(b["of_peak"] * 100, digits=0) if b["of_peak"] else "-"
        lines.append(
            f"| `{METHODS[method].code}` | {format_seconds(b['seconds']['median'])} | "
            f"{_range(b['seconds'])} | {format_bandwidth(b['bandwidth'])} | {of_peak} |"
        )
    return lines


def _overhead(fig: dict) -> list[str]:
    lines = [
        "",
        "Tracked-clone overhead, `x.clone().detach()` over `x.detach().clone()`, float32 leaf "
        "that requires grad; paired ABBA blocks, quads of all processes pooled, 95% CI over "
        "whole processes:",
        "",
        "| size | timer | `detach().clone()` | `clone().detach()` | overhead | 95% CI | "
        "per call | range over processes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    timers = {"events": "CUDA events over a batch", "sync": "sync after every call"}
    for key, o in fig["overhead"].items():
        numel, timer = key.split("/")
        each = o["worker_overhead_pct"] or [o["overhead_pct"]]
        lines.append(
            f"| {format_bytes(nbytes(int(numel), 'float32'))} | {timers[timer]} | "
            f"{format_seconds(o['base_ns'] * 1e-9)} | {format_seconds(o['head_ns'] * 1e-9)} | "
            f"{_signed_pct(o['overhead_pct'])} | "
            f"[{_signed_pct(o['ci_low_pct'])}, {_signed_pct(o['ci_high_pct'])}] | "
            f"{format_seconds(o['overhead_ns'] * 1e-9, signed=True)} | "
            f"{_signed_pct(min(each))} to {_signed_pct(max(each))} |"
        )
    return lines


def _host_to_device(fig: dict) -> list[str]:
    d = fig["device"]
    pcie = d.get("peak_pcie_bandwidth")
    lines = [
        "",
        f"Host-to-device, 64 MiB float32 ({d.get('pcie') or 'PCIe link unknown'}"
        + (f", peak {format_bandwidth(pcie)} per direction" if pcie else "")
        + "): GPU time per copy by CUDA events over a batch, and how long one call holds the "
        "host (host clock, queue drained before and after):",
        "",
        "| copy | host memory | GPU time per copy | rate | host held per call | "
        "range over processes (host) |",
        "|---|---|---|---|---|---|",
    ]
    for key, h in fig["h2d"].items():
        method, memory = key.split("/")
        lines.append(
            f"| `{METHODS[method].code}` | {memory} | {format_seconds(h['gpu_seconds']['median'])}"
            f" | {format_bandwidth(h['bandwidth'])} | "
            f"{format_seconds(h['host_seconds']['median'])} | {_range(h['host_seconds'])} |"
        )
    return lines


def _peak(fig: dict) -> list[str]:
    model = MODELS[PEAK_MODEL]
    first = next(iter(fig["peak"].values()))
    lines = [
        "",
        f"GPU peak memory of a module copy, model `{PEAK_MODEL}` ({model.n_params:,} "
        f"parameters, {format_bytes(first['model_bytes'])}): `torch.cuda.max_memory_allocated`"
        " during the copy, over what was allocated before it:",
        "",
        "| copy | peak allocated | of the model's bytes | same in every process |",
        "|---|---|---|---|",
    ]
    for method, p in fig["peak"].items():
        ratio = format_ratio(p["bytes"] / p["model_bytes"], digits=2, unit="x")
        lines.append(
            f"| `{METHODS[method].code.splitlines()[-1]}` | {format_bytes(p['bytes'])} | "
            f"{ratio} | {'yes' if p['min'] == p['max'] else 'no'} |"
        )
    return lines
