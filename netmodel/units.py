"""Quantities with units at the edges, SI floats inside.

YAML may say ``25Gbps``, ``1.5ms``, ``64KiB`` or ``1000/s``; the code only ever sees
seconds, bytes, bits per second and events per second. A bare number is taken to be
in the SI base unit of its dimension.
"""

from __future__ import annotations

import math
import re

# Multipliers to the SI base unit of each dimension.
_UNITS: dict[str, dict[str, float]] = {
    "time": {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0,
             "min": 60.0, "h": 3600.0},
    "size": {"B": 1.0, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
             "KiB": 1024.0, "MiB": 1024.0**2, "GiB": 1024.0**3, "TiB": 1024.0**4},
    "bitrate": {"bps": 1.0, "Kbps": 1e3, "Mbps": 1e6, "Gbps": 1e9, "Tbps": 1e12},
    "rate": {"/s": 1.0, "rps": 1.0, "k/s": 1e3, "krps": 1e3, "/ms": 1e3},
    "count": {"": 1.0},
}

BASE_UNIT = {"time": "s", "size": "B", "bitrate": "bps", "rate": "/s", "count": ""}

RANGES: dict[str, tuple[float, float]] = {
    "time": (0.0, 86_400.0),
    "size": (0.0, 1e12),
    "bitrate": (1e3, 1e15),
    "rate": (0.0, 1e9),
    "count": (0.0, 1e15),
}
"""The physical range of each dimension, SI: a value other than 0 must lie between the two
in size (its sign is the field's to check). Times up to a day, sizes up to 1 TB, bit rates
from 1 kbit/s to 1 Pbit/s, rates up to a billion a second."""

_NUMBER = re.compile(r"^\s*([-+]?(?:\d[\d_]*\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(\S*)\s*$")


def parse_quantity(value: object, dimension: str) -> float:
    """Return `value` in the SI base unit of `dimension` ('time', 'size', ...).

    Raises ValueError with the accepted units when the text cannot be read.
    """
    units = _UNITS[dimension]
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"expected a {dimension} such as {_example(dimension)}, got {_show(value)}")
    if isinstance(value, (int, float)):
        return in_range(_float(value, value), dimension, value)
    match = _NUMBER.match(value)
    if not match:
        raise ValueError(f"expected a {dimension} such as {_example(dimension)}, got {_show(value)}")
    number, unit = match.groups()
    if unit and unit not in units:
        accepted = ", ".join(u for u in units if u) or "a plain number"
        raise ValueError(f"unknown {dimension} unit {unit!r} in {_show(value)} (accepted: {accepted})")
    return in_range(_float(number.replace("_", ""), value) * (units[unit] if unit else 1.0),
                    dimension, value)


def in_range(si: float, dimension: str, given: object = None) -> float:
    """`si` if it is finite and, unless 0, within the physical range of `dimension`
    (`RANGES`); ValueError naming what was `given` otherwise."""
    low, high = RANGES[dimension]
    shown = _show(si if given is None else given)
    if not math.isfinite(si):
        raise ValueError(f"expected a finite {dimension}, got {shown}")
    if si != 0 and not low <= abs(si) <= high:
        span = f"{format_quantity(low, dimension)} to {format_quantity(high, dimension)}" if low \
            else f"at most {format_quantity(high, dimension)}"
        raise ValueError(f"expected a {dimension} of {span}, got {shown}")
    return si


def _float(number: object, given: object) -> float:
    try:
        return float(number)
    except OverflowError:  # an integer beyond any float
        return math.inf


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def format_quantity(value: float, dimension: str) -> str:
    """Return a short human string for an SI value, e.g. 0.0015 s -> '1.5ms'."""
    if dimension == "count":
        return f"{value:g}"
    best = BASE_UNIT[dimension]
    for unit, factor in sorted(_UNITS[dimension].items(), key=lambda kv: kv[1]):
        if unit in ("µs", "rps", "krps", "/ms", "k/s") or "i" in unit:
            continue
        if abs(value) >= factor:
            best = unit
    return f"{value / _UNITS[dimension][best]:g}{best}"


def format_count(n: int, thing: str, plural: str = "s") -> str:
    """'1 sweep point', '2 sweep points', '1,024 node blocks': a count with its noun."""
    return f"{n:,} {thing}{'' if n == 1 else plural}"


def _example(dimension: str) -> str:
    return {"time": "'1.5ms'", "size": "'64KiB'", "bitrate": "'25Gbps'",
            "rate": "'1000/s'", "count": "10"}[dimension]
