"""The contenders of a benchmark cell: fftconv (the planner's choice and each forced
method) and the peers, on the same arrays, every one computing the same thing:
convolution, mode 'same', zeros outside the image (boundary 'fill').

Shared by ``bench/compare.py`` and the pytest-benchmark files, so that both time the
same calls. A contender that does not apply to a cell (a dtype it does not take, a
kernel it cannot factor, a cost of minutes) is simply not listed.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.ndimage
import scipy.signal

import fftconv

#: Multiply-adds above which the direct-summation peers (convolve2d, ndimage) are not
#: run: minutes per call for large kernels.
DIRECT_LIMIT = 1.2e8
#: fftconv's forced 'direct' is run when predicted below this many seconds.
FORCED_DIRECT_LIMIT = 1.0

try:  # OpenCV is in the bench extra; the rest still runs without it
    import cv2
except ImportError:  # pragma: no cover
    cv2 = None


def image(n: int, dtype) -> np.ndarray:
    """An ``n x n`` test image: random noise for float and complex dtypes, a photo
    (scikit-image's camera, tiled) for uint8."""
    dtype = np.dtype(dtype)
    rng = np.random.default_rng(0)
    if dtype == np.uint8:
        import skimage.data

        cam = skimage.data.camera()
        reps = -(-n // cam.shape[0])
        # mirrored copies, so that no window repeats (template matching finds one peak)
        rows = [
            np.hstack([cam[:: (-1) ** r, :: (-1) ** c] for c in range(reps)]) for r in range(reps)
        ]
        return np.ascontiguousarray(np.vstack(rows)[:n, :n])
    if dtype.kind == "c":
        real = rng.random((n, n), dtype=np.float32).astype(dtype)
        return real + 1j * rng.random((n, n), dtype=np.float32).astype(dtype)
    return rng.random((n, n), dtype=np.float32).astype(dtype)


def kernel(size: int, kind: str, dtype) -> np.ndarray:
    """A ``size x size`` kernel: 'random' (not separable) or 'gaussian' (separable),
    normalised; float32 for uint8 images (a photo filtered in float32)."""
    real = np.float32 if np.dtype(dtype) in (np.uint8, np.float32, np.complex64) else np.float64
    if kind == "gaussian":
        y = np.arange(size) - (size - 1) / 2
        g = np.exp(-0.5 * (y / max(size / 6, 0.5)) ** 2)
        k = np.outer(g, g)
    elif kind == "random":
        k = np.random.default_rng(1).random((size, size))
    else:
        raise ValueError(f"kind={kind!r} is not one of 'random', 'gaussian'")
    return (k / k.sum()).astype(real)


def fftconv_methods(a: np.ndarray, k: np.ndarray, threads: int | None = None) -> dict:
    """fftconv's planner choice ('fftconv') and each method it can be forced to."""
    calls = {"fftconv": lambda: fftconv.convolve(a, k, "same", threads=threads)}
    methods = ["fft", "oa"]
    direct = fftconv.plan(a.shape, k.shape, a.dtype, "same", method="direct", threads=threads)
    if direct.seconds < FORCED_DIRECT_LIMIT:
        methods.insert(0, "direct")
    # 'separable' / 'lowrank' where the planner found the kernel's factors
    weighed = fftconv.plan(a.shape, k.shape, a.dtype, "same", threads=threads, kernel=k)
    methods[:0] = sorted({c.method for c in weighed.candidates} & {"separable", "lowrank"})
    for m in methods:
        calls[f"fftconv[{m}]"] = lambda m=m: fftconv.convolve(
            a, k, "same", method=m, threads=threads
        )
    return calls


def peers(a: np.ndarray, k: np.ndarray, kind: str, threads: int | None = None) -> dict:
    """The other libraries' calls for the same convolution."""
    calls = {
        "scipy.signal.fftconvolve": lambda: scipy.signal.fftconvolve(a, k, "same"),
        "scipy.signal.oaconvolve": lambda: scipy.signal.oaconvolve(a, k, "same"),
    }
    madds = a.size * k.size
    if madds <= DIRECT_LIMIT:
        calls["scipy.signal.convolve2d"] = lambda: scipy.signal.convolve2d(a, k, "same")
        out = np.float32 if a.dtype == np.uint8 else None
        calls["scipy.ndimage.convolve"] = lambda: scipy.ndimage.convolve(
            a, k, output=out, mode="constant", cval=0.0
        )
    if cv2 is not None and a.dtype.kind != "c":
        if threads is not None:
            cv2.setNumThreads(threads)
        depth = cv2.CV_32F if a.dtype == np.uint8 else -1
        flipped = np.ascontiguousarray(k[::-1, ::-1])  # filter2D correlates
        calls["cv2.filter2D"] = lambda: cv2.filter2D(
            a, depth, flipped, borderType=cv2.BORDER_CONSTANT
        )
        if kind == "gaussian":
            u, s, vt = np.linalg.svd(k.astype(np.float64))
            col = (u[:, 0] * math.sqrt(s[0]))[::-1].astype(k.dtype)
            row = (vt[0] * math.sqrt(s[0]))[::-1].astype(k.dtype)
            calls["cv2.sepFilter2D"] = lambda: cv2.sepFilter2D(
                a, depth, row, col, borderType=cv2.BORDER_CONSTANT
            )
    return calls


def template_peers(image_: np.ndarray, template: np.ndarray) -> dict:
    """Normalised cross-correlation ('valid' positions): fftconv.match_template (when
    this fftconv has it), skimage.feature.match_template and cv2.matchTemplate."""
    import skimage.feature

    calls = {
        "skimage.feature.match_template": lambda: skimage.feature.match_template(image_, template)
    }
    if hasattr(fftconv, "match_template"):
        calls["fftconv.match_template"] = lambda: fftconv.match_template(image_, template)
    if cv2 is not None and image_.dtype in (np.uint8, np.float32):
        calls["cv2.matchTemplate"] = lambda: cv2.matchTemplate(
            image_, template, cv2.TM_CCOEFF_NORMED
        )
    return calls


def check(results: dict, reference: np.ndarray) -> dict:
    """For each contender's result, the largest difference from `reference` relative to
    its largest magnitude (a contender that computes something else shows here)."""
    scale = float(np.abs(reference).max()) or 1.0
    return {
        name: float(
            np.abs(
                np.asarray(r, np.complex128 if np.iscomplexobj(r) else np.float64) - reference
            ).max()
        )
        / scale
        for name, r in results.items()
    }
