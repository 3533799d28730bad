"""Helpers every benchmark script shares: the test data, the machine, the JSON output.

The scripts run as ``python bench/NAME.py``, so this folder is on ``sys.path``.
"""

from __future__ import annotations

import json
import math
import os
import platform

import numpy as np


def test_image(n: int, dtype=np.float32, rows: int = 1024) -> np.ndarray:
    """An ``n x n`` random image, generated in bands (no float64 temporary of its size)."""
    img = np.empty((n, n), dtype)
    rng = np.random.default_rng(0)
    for r in range(0, n, rows):
        img[r : r + rows] = rng.random((min(rows, n - r), n), dtype=dtype)
    return img


def gaussian_kernel(size: int, dtype=np.float32) -> np.ndarray:
    """A normalised ``size x size`` Gaussian, sigma = size / 6."""
    y = np.arange(size) - size // 2
    g = np.exp(-0.5 * (y / (size / 6)) ** 2)
    k = np.outer(g, g).astype(dtype)
    return k / k.sum()


def machine() -> str:
    """The processor, the cores this process may use, the memory and the system."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{cpu}, {len(os.sched_getaffinity(0))} cores, {mem:.0f} GiB RAM, {platform.system()}"


def geomean(values) -> float:
    values = list(values)
    return math.exp(sum(map(math.log, values)) / len(values))


def save_json(path, rows) -> None:
    if path:
        with open(path, "w") as f:
            json.dump(rows, f, indent=1)
