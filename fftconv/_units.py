"""Sizes in bytes from the texts people write (``'2GB'``, ``'1.5 GiB'``).

Its own module so that the command parses ``--max-memory`` (and a file job
that streams starts) without importing the tiled engine.
"""

from __future__ import annotations

import math
import re

import numpy as np

#: The memory budget when none is given.
DEFAULT_MAX_MEMORY = 2 * 10**9

_UNITS = {
    "": 1,
    "b": 1,
    "k": 10**3,
    "kb": 10**3,
    "m": 10**6,
    "mb": 10**6,
    "g": 10**9,
    "gb": 10**9,
    "t": 10**12,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def parse_memory(value) -> int:
    """Bytes from an int or a text such as ``'2GB'``, ``'1.5 GiB'`` or ``'512MB'``.

    K/M/G/T and KB/MB/GB/TB are decimal (``'2GB'`` is 2e9 bytes); KiB/MiB/GiB/TiB
    are binary.

    Examples
    --------
    >>> parse_memory("2GB"), parse_memory("1.5GiB"), parse_memory(4096)
    (2000000000, 1610612736, 4096)
    """
    if isinstance(value, bool):
        raise TypeError(f"max_memory must be a number of bytes or a text like '2GB'; got {value!r}")
    if isinstance(value, (int, np.integer)) or isinstance(value, float) and math.isfinite(value):
        n = int(value)
    elif isinstance(value, str):
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][0-9]+)?)\s*([a-zA-Z]*)\s*", value)
        unit = m.group(2).lower() if m else None
        if m is None or unit not in _UNITS:
            raise ValueError(
                f"max_memory={value!r} is not a size; write e.g. '2GB', '512MB', '1.5GiB' "
                "or a number of bytes"
            )
        n = float(m.group(1)) * _UNITS[unit]
        if not n < 2**63:
            raise ValueError(
                f"max_memory={value!r} is more than any machine has (at most "
                f"{fmt_bytes(2**63 - 1)})"
            )
        n = int(n)
    else:
        raise TypeError(f"max_memory must be a number of bytes or a text like '2GB'; got {value!r}")
    if n <= 0:
        raise ValueError(f"max_memory must be > 0; got {value!r}")
    if n >= 2**63:
        shown = (
            repr(value)
            if len(repr(value)) <= 30
            else f"{repr(value)[:12]}... ({len(str(n))} digits)"
        )
        raise ValueError(
            f"max_memory={shown} is more than any machine has (at most {fmt_bytes(2**63 - 1)})"
        )
    return n


def fmt_bytes(n: float) -> str:
    """`n` bytes as text with a decimal unit (``'2.00 GB'``)."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{int(n)} B"
