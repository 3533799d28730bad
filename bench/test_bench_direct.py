"""pytest-benchmark: small-kernel convolution against OpenCV and scipy.ndimage.

Run with ``pytest bench/test_bench_direct.py --benchmark-enable`` (the project's
pytest options disable benchmarks by default; with them disabled every case
runs once, as a smoke test).  Set FFTCONV_BENCH_SIZE to change the image side
(default 2048).  For the README table, interleaved and with every boundary,
use ``python bench/direct_table.py``.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import scipy.ndimage as ndi

import fftconv
from fftconv._problem import default_threads

cv2 = pytest.importorskip("cv2")  # the bench extra, not a test dependency

SIZE = int(os.environ.get("FFTCONV_BENCH_SIZE", "2048"))
THREADS = default_threads()
cv2.setNumThreads(THREADS)


def _gauss(n):
    x = np.arange(n) - (n - 1) / 2
    g = np.exp(-(x**2) / (2 * (n / 6) ** 2))
    return g / g.sum()


@pytest.fixture(scope="module", params=["float32", "float64"])
def image(request):
    return np.random.default_rng(0).random((SIZE, SIZE)).astype(request.param)


def _kernel(name, dtype):
    if name == "gauss31":
        g = _gauss(31)
        return np.outer(g, g).astype(dtype), (g, g)
    if name == "box15":
        b = np.full(15, 1 / 15)
        return np.outer(b, b).astype(dtype), (b, b)
    n = int(name)
    return (np.random.default_rng(n).standard_normal((n, n)) / n).astype(dtype), None


KERNELS = ["3", "5", "7", "11", "gauss31", "box15"]


@pytest.mark.parametrize("kernel", KERNELS)
def test_fftconv(benchmark, image, kernel):
    k, _ = _kernel(kernel, image.dtype)
    benchmark.group = f"{image.dtype} {kernel}"
    out = np.empty_like(image)
    benchmark(fftconv.convolve, image, k, "same", "mirror", out=out, threads=THREADS)


@pytest.mark.parametrize("kernel", KERNELS)
def test_cv2(benchmark, image, kernel):
    k, factors = _kernel(kernel, image.dtype)
    benchmark.group = f"{image.dtype} {kernel}"
    dst = np.empty_like(image)
    if factors is None:
        flipped = np.ascontiguousarray(k[::-1, ::-1])
        benchmark(cv2.filter2D, image, -1, flipped, dst=dst, borderType=cv2.BORDER_REFLECT_101)
    else:
        col, row = (f[::-1].astype(image.dtype) for f in factors)
        benchmark(cv2.sepFilter2D, image, -1, row, col, dst=dst, borderType=cv2.BORDER_REFLECT_101)


@pytest.mark.parametrize("kernel", ["3", "5"])
def test_ndimage(benchmark, image, kernel):
    k, _ = _kernel(kernel, image.dtype)
    benchmark.group = f"{image.dtype} {kernel}"
    out = np.empty_like(image)
    benchmark(ndi.convolve, image, k, output=out, mode="mirror")


def test_copy_floor(benchmark, image):
    benchmark.group = f"{image.dtype} copy floor"
    dst = np.empty_like(image)
    benchmark(np.copyto, dst, image)
