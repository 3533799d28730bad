"""The demo: a generated photo-like image, blurred, edge-detected and sharpened.

It runs twice: through image files, as ``fftconv apply`` does (PNG in, tiles
within a memory budget, PNG out; plans and timings printed), and in memory on
the grey float32 image against scipy.signal.fftconvolve.
"""

from __future__ import annotations

import os
import tempfile
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


def photo_rgb(size: int, seed: int = 0) -> np.ndarray:
    """A photo-like uint8 RGB image: `photo` tinted differently per channel."""
    grey = photo(size, seed)
    y = np.linspace(0.0, 1.0, size, dtype=np.float32)[:, None]
    rgb = np.empty((size, size, 3), np.uint8)
    for c, (gain, tilt) in enumerate(((1.0, 0.1), (0.85, -0.05), (0.7, 0.2))):
        ch = grey * gain + tilt * y
        np.clip(ch * 255.0 + 0.5, 0, 255, out=ch)
        rgb[..., c] = ch
    return rgb


def run_files(
    size: int, outdir: str, threads: int | None = None, *, max_memory=2 * 10**9, quiet: bool = False
) -> list[dict]:
    """Write a generated photo as PNG and blur, edge-detect and sharpen it through
    the same path as ``fftconv apply``; print each plan and timing."""
    import importlib.util

    from . import io
    from .jobs import convolve_file

    # PNG needs Pillow (the io extra); without it the demo writes .npy files.
    ext = ".png" if importlib.util.find_spec("PIL") else ".npy"
    src = os.path.join(outdir, "photo" + ext)
    t0 = time.perf_counter()
    img = photo_rgb(size)
    with io.create_output(src, img.shape, img.dtype, force=True) as out:
        out.array[...] = img
    del img, out
    print(
        f"fftconv demo: wrote {src} ({size}x{size} RGB uint8, generated and written in "
        f"{time.perf_counter() - t0:.2f} s)"
    )
    jobs = [
        ("blur", "gaussian:sigma=8", "symmetric", "blur" + ext),
        ("edges", "scharr", "nearest", "edges" + ext),
        ("sharpen", "sharpen", "mirror", "sharpen" + ext),
    ]
    rows = []
    for name, spec, boundary, fname in jobs:
        dst = os.path.join(outdir, fname)
        res = convolve_file(
            src,
            dst,
            spec,
            boundary=boundary,
            max_memory=max_memory,
            threads=threads,
            max_pixels=size * size,
            force=True,
            progress=not quiet,
        )
        mpix = res["pixels"] / res["seconds"] / 1e6
        print(
            f"  {name:8s} --kernel {spec:17s} --boundary {boundary:9s} -> {dst}: "
            f"{res['seconds']:.2f} s, {mpix:.1f} Mpixel/s"
        )
        print("    " + str(res["plan"]).replace("\n", "\n    "))
        rows.append(
            dict(
                job=name,
                kernel=spec,
                seconds=res["seconds"],
                mpixel_per_s=mpix,
                tiles=res["plan"].tiles,
                method=res["plan"].method,
                path=dst,
            )
        )
    return rows


def run(
    size: int = 4096,
    outdir: str | None = None,
    threads: int | None = None,
    *,
    max_memory=2 * 10**9,
    quiet: bool = False,
) -> list[dict]:
    """Run the demo jobs through files, then in memory against scipy.signal.fftconvolve;
    print and return the timings."""
    import scipy.signal

    from . import convolve, io, kernels

    if outdir is None:
        outdir = tempfile.mkdtemp(prefix="fftconv-demo-")
    os.makedirs(outdir, exist_ok=True)
    rows = run_files(size, outdir, threads, max_memory=max_memory, quiet=quiet)

    img = photo(size)
    print(
        f"fftconv demo: in memory, a {size}x{size} grey float32 photo-like image "
        f"({img.nbytes / 2**20:.0f} MiB)"
    )
    jobs = [
        ("gaussian blur sigma=8 (65x65)", kernels.gaussian(8.0), "symmetric"),
        ("laplace edges (3x3)", kernels.laplace(), "nearest"),
        ("sharpen (3x3)", kernels.sharpen(), "mirror"),
    ]
    for name, kernel, boundary in jobs:
        kernel = kernel.astype(np.float32)
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
        inner = (slice(h, -h),) * 2 if size > 2 * h else (slice(0, 0),) * 2
        err = float(np.max(np.abs(res[inner] - ref[inner]), initial=0.0))
        rows.append(
            dict(
                job=name,
                first=t_first,
                warm=t_fc,
                scipy=t_sp,
                max_abs_diff=err,
                dtype=str(res.dtype),
            )
        )
        print(
            f"  {name:32s} boundary={boundary:9s} first {t_first:6.3f} s, "
            f"warm {t_fc:6.3f} s; scipy.signal.fftconvolve {t_sp:6.3f} s "
            f"({t_sp / t_fc:4.1f}x); max |diff| {err:.1e}; dtype {res.dtype}"
        )
        path = Path(outdir) / (name.split(" (")[0].replace(" ", "_").replace("=", "") + ".npy")
        with io.create_output(path, res.shape, res.dtype, force=True) as dst:  # atomic
            dst.array[...] = res
        print(f"    wrote {path}")
    return rows
