"""What fftconv reads about the processor it runs on (the L2 cache of one core), and
buffers laid out for it (cache-line aligned).

The band engine (`methods._u8_kernels`) keeps a ring of filtered rows per strip of
columns in the L2 cache of the core that runs it, so the strip width follows that
cache's size (`ring_bytes`). Linux reports it under ``/sys/devices/system/cpu``;
elsewhere, and where it cannot be read, 512 KiB is assumed.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

#: Assumed where the L2 size cannot be read.
DEFAULT_L2_BYTES = 512 << 10

_CACHES = Path("/sys/devices/system/cpu/cpu0/cache")


def _size(text: str) -> int | None:
    text = text.strip().upper()
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
    digits = text[:-1] if text[-1:] in "KMG" else text
    return int(digits) * scale if digits.isdigit() else None


@functools.lru_cache(maxsize=1)
def l2_bytes() -> int:
    """The size of one core's level-2 cache in bytes (`DEFAULT_L2_BYTES` when unknown)."""
    try:
        for index in sorted(_CACHES.glob("index*")):
            level = (index / "level").read_text().strip()
            kind = (index / "type").read_text().strip()
            if level == "2" and kind in ("Unified", "Data"):
                size = _size((index / "size").read_text())
                if size:
                    return size
    except (OSError, ValueError):
        pass
    return DEFAULT_L2_BYTES


def ring_bytes() -> int:
    """Bytes of the band engine's ring of filtered rows per strip of columns: half of
    one core's L2 cache, from 128 KiB to 1 MiB (the rest of the cache holds the rows
    being read and written). Measured on the band engine alone (`bench/u8_direct.py`
    cases): 256 KiB of a 512 KiB L2 (AMD EPYC) and 512 KiB to 1.5 MiB of a 2 MiB L2
    (Intel Xeon, 10-20% faster than 256 KiB there)."""
    return max(128 << 10, min(1 << 20, l2_bytes() // 2))


def strip_columns(width: int, kh: int, channels: int, ring: int) -> int:
    """Columns per strip of the band engine: as many as fit a ring of ``kh + 1``
    float32 rows of `channels` samples in `ring` bytes, a multiple of 16 (whole cache
    lines), at most the `width` of the image and at least 16 (the engine clips a strip
    at the image's edge)."""
    return max(16, min(width, ring // (4 * (kh + 1) * channels) // 16 * 16))


def aligned(shape, dtype=np.float32, align: int = 64) -> np.ndarray:
    """Zeros of `shape` starting on an `align`-byte boundary: the band engine's rows
    (whose lengths are multiples of 16 samples) then never straddle cache lines, which
    makes its passes about a tenth faster."""
    dtype = np.dtype(dtype)
    n = int(np.prod(shape))
    buf = np.zeros(n * dtype.itemsize + align, np.uint8)
    k = (-buf.ctypes.data) % align
    return buf[k : k + n * dtype.itemsize].view(dtype).reshape(shape)
