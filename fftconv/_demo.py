"""The demo: a generated photo-like image, blurred, edge-detected and sharpened."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np


def photo(size: int, seed: int = 0) -> np.ndarray:
    """A photo-like float32 image in [0, 1]: smooth gradients, discs, edges and grain."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    img = 0.4 * x + 0.3 * y
    for _ in range(12):
        cy, cx, r = rng.random(3)
        img += 0.3 * (((y - cy) ** 2 + (x - cx) ** 2) < (0.05 + 0.2 * r) ** 2)
    img += 0.1 * np.sin(40 * x) * np.cos(25 * y)
    img += rng.normal(0, 0.02, img.shape).astype(np.float32)
    return np.clip(img, 0, 1).astype(np.float32)


def _gaussian(sigma: float) -> np.ndarray:
    r = int(4 * sigma + 0.5)
    g = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    g /= g.sum()
    return np.outer(g, g).astype(np.float32)


def run(size: int = 4096, outdir: str | None = None, threads: int | None = None) -> list[dict]:
    """Run the demo jobs, compare with scipy.signal.fftconvolve, print and return the timings."""
    import scipy.signal

    from . import convolve

    img = photo(size)
    print(f"fftconv demo: generated a {size}x{size} float32 photo-like image "
          f"({img.nbytes / 2**20:.0f} MiB)")
    jobs = [
        ("gaussian blur sigma=8 (65x65)", _gaussian(8.0), "symmetric"),
        ("laplace edges (3x3)", np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], np.float32), "nearest"),
        ("sharpen (3x3)", np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], np.float32), "mirror"),
    ]
    rows = []
    for name, kernel, boundary in jobs:
        t0 = time.perf_counter()
        res = convolve(img, kernel, mode="same", boundary=boundary, threads=threads)
        t_first = time.perf_counter() - t0
        t0 = time.perf_counter()
        res = convolve(img, kernel, mode="same", boundary=boundary, threads=threads)
        t_fc = time.perf_counter() - t0
        t0 = time.perf_counter()
        ref = scipy.signal.fftconvolve(img, kernel, mode="same")
        t_sp = time.perf_counter() - t0
        # scipy pads with zeros only: compare away from the border.
        h = kernel.shape[0]
        err = float(np.max(np.abs(res[h:-h, h:-h] - ref[h:-h, h:-h])))
        rows.append(dict(job=name, first=t_first, warm=t_fc, scipy=t_sp, max_abs_diff=err,
                         dtype=str(res.dtype)))
        print(f"  {name:32s} boundary={boundary:9s} first {t_first:6.3f} s, "
              f"warm {t_fc:6.3f} s; scipy.signal.fftconvolve {t_sp:6.3f} s "
              f"({t_sp / t_fc:4.1f}x); max |diff| {err:.1e}; dtype {res.dtype}")
        if outdir is not None:
            path = Path(outdir) / (name.split(" (")[0].replace(" ", "_").replace("=", "") + ".npy")
            np.save(path, res)
            print(f"    wrote {path}")
    return rows
