"""Units, formatted once: seconds, bytes, bandwidth, counts, percentages and ratios.

The CLI, the report's text and tables, the plots' axes (every function here also serves as
a matplotlib ``FuncFormatter``: the unused second argument is the tick position) and the
GPU figures all print numbers through this module, as torch's ``Measurement`` prints every
time through one ``select_unit``.  Each formatter takes any real number: zero prints in the
unit ("0 s", "0 B"), a negative value keeps its sign and picks the unit by its magnitude (a
difference of medians can be negative), and NaN, infinity or a value that is not a number
prints as "n/a".  ``signed`` (durations, percentages) prints a "+" before a positive
difference; ``unit`` on a ratio names it ("×", "x") wherever the ratio is a number.
"""

from __future__ import annotations

import math
from typing import Any

# (name, scale), largest first; a value is printed in the first unit it reaches.
_SECOND_UNITS = (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9))
_BYTE_UNITS = (("GiB", 2.0**30), ("MiB", 2.0**20), ("KiB", 2.0**10), ("B", 1.0))
_COUNT_UNITS = (("G", 1e9), ("M", 1e6), ("k", 1e3), ("", 1.0))
NOT_A_NUMBER = "n/a"


def _finite(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _sig(x: float, digits: int = 3) -> str:
    """``x`` to ``digits`` significant digits, never in exponent form: 0.123, 45.6, 1,230."""
    if x == 0:
        return "0"
    if abs(x) >= 10 ** (digits - 1):
        return f"{x:,.0f}"
    text = f"{x:.{digits}g}"
    return text if "e" not in text else f"{x:.{digits - 1}e}"


def _scaled(x: Any, units: tuple[tuple[str, float], ...], digits: int, signed: bool = False) -> str:
    v = _finite(x)
    if v is None:
        return NOT_A_NUMBER
    i = next((i for i, (_, s) in enumerate(units) if abs(v) >= s), len(units) - 1)
    if i > 0:
        # A value that rounds up to the next unit is printed in it: 999.7 ns is "1 µs", not
        # "1,000 ns"; 1,023.7 B is "1 KiB".
        shown = float(_sig(abs(v) / units[i][1], digits).replace(",", ""))
        if shown * units[i][1] >= units[i - 1][1]:
            i -= 1
    name, scale = units[i]
    sign = "+" if signed and v > 0 else ""
    return f"{sign}{_sig(v / scale, digits)} {name}".rstrip()


def format_seconds(seconds: Any, _pos: object = None, digits: int = 3, signed: bool = False) -> str:
    """A duration: ``1.91 µs``, ``12.3 ms``, ``0 s``, ``-450 ns``; ``+1.41 µs`` with
    ``signed`` (a difference of two durations)."""
    text = _scaled(seconds, _SECOND_UNITS, digits, signed)
    return "0 s" if text == "0 ns" else text


def format_bytes(n: Any, _pos: object = None, digits: int = 3) -> str:
    """A size in binary units: ``4 KiB``, ``128 MiB``, ``1.5 GiB``, ``0 B``."""
    return _scaled(n, _BYTE_UNITS, digits)


def format_count(n: Any, _pos: object = None, digits: int = 3) -> str:
    """A count with a decimal prefix: ``1k``, ``10M`` (parameters, elements)."""
    return _scaled(n, _COUNT_UNITS, digits).replace(" ", "")


def format_bandwidth(bytes_per_second: Any, _pos: object = None, digits: int = 3) -> str:
    """A rate in decimal GB/s, the unit memory and PCIe bandwidth are quoted in: ``12.3 GB/s``."""
    v = _finite(bytes_per_second)
    return NOT_A_NUMBER if v is None else f"{_sig(v / 1e9, digits)} GB/s"


def format_percent(pct: Any, _pos: object = None, digits: int = 1, signed: bool = False) -> str:
    """A percentage given in percent: ``38.3%``; ``+38.3%`` with ``signed``."""
    v = _finite(pct)
    if v is None:
        return NOT_A_NUMBER
    return f"{v:+.{digits}f}%" if signed else f"{v:.{digits}f}%"


def format_ratio(r: Any, _pos: object = None, digits: int = 3, unit: str = "") -> str:
    """A ratio of two measurements, to a fixed ``digits`` decimals: ``1.234``; with
    ``unit="×"``, ``1.23×``."""
    v = _finite(r)
    return NOT_A_NUMBER if v is None else f"{v:.{digits}f}{unit}"


# The tidy table's ``unit`` column -> its formatter.
_BY_UNIT = {"seconds": format_seconds, "bytes": format_bytes}


def format_value(value: Any, unit: str) -> str:
    """A measurement in the tidy table's ``unit`` (seconds, bytes, instructions ...)."""
    fmt = _BY_UNIT.get(unit)
    if fmt is not None:
        return fmt(value)
    v = _finite(value)
    return NOT_A_NUMBER if v is None else _sig(v, 4)


def text_table(header: list[str], rows: list[list[str]]) -> str:
    """A plain-text table: columns left-aligned to their widest cell, two spaces apart, a
    rule of dashes under the header, trailing spaces trimmed."""
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
