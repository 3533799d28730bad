"""pytest-benchmark: fftconv beside its peers, in the same groups, on the same arrays.

``python -m pytest bench --benchmark-only`` (add ``--bench-large`` for 64 and 100
megapixel images, ``-k float32`` or ``-k 2048`` to choose cells, and
``--benchmark-group-by=group`` is the default grouping). Each group is one cell (image
size, kernel size, dtype, kernel kind); its rows are fftconv (the planner's choice and
each forced method) and the peers. ``bench/compare.py`` times the same calls
interleaved and writes the ratios; these benchmarks give pytest-benchmark's statistics
and its ``--benchmark-compare`` history.
"""

from __future__ import annotations

import _peers
import numpy as np
import pytest

KERNELS = [3, 7, 15, 31, 63, 127, 255]
DTYPES = ["float32", "float64", "complex64", "uint8"]
CONTENDERS = [
    "fftconv",
    "fftconv[direct]",
    "fftconv[separable]",
    "fftconv[fft]",
    "fftconv[oa]",
    "scipy.signal.fftconvolve",
    "scipy.signal.oaconvolve",
    "scipy.signal.convolve2d",
    "scipy.ndimage.convolve",
    "cv2.filter2D",
    "cv2.sepFilter2D",
]
_CACHE: dict = {}


def _cell(size, ks, dtype, kind):
    key = (size, ks, dtype, kind)
    if key not in _CACHE:
        _CACHE.clear()  # one cell's arrays at a time
        a, k = _peers.image(size, dtype), _peers.kernel(ks, kind, dtype)
        calls = {**_peers.fftconv_methods(a, k), **_peers.peers(a, k, kind)}
        _CACHE[key] = (calls, calls["fftconv"]())
    return _CACHE[key]


@pytest.mark.parametrize("contender", CONTENDERS)
@pytest.mark.parametrize("kind", ["random", "gaussian"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ks", KERNELS, ids=[f"k{k}" for k in KERNELS])
def test_convolve(benchmark, size, ks, dtype, kind, contender):
    calls, reference = _cell(size, ks, dtype, kind)
    if contender not in calls:
        pytest.skip(f"{contender} does not apply to this cell")
    benchmark.group = f"{size}x{size} {dtype} {ks}x{ks} {kind}"
    result = benchmark.pedantic(calls[contender], rounds=3, warmup_rounds=1)
    err = _peers.check({contender: result}, reference)[contender]
    assert err < (1e-4 if dtype in ("float32", "complex64", "uint8") else 1e-9), err


TEMPLATE_CONTENDERS = [
    "fftconv.match_template",
    "skimage.feature.match_template",
    "cv2.matchTemplate",
]


@pytest.mark.parametrize("contender", TEMPLATE_CONTENDERS)
@pytest.mark.parametrize("ts", [15, 63], ids=["t15", "t63"])
@pytest.mark.parametrize("dtype", ["float32", "uint8"])
def test_match_template(benchmark, size, ts, dtype, contender):
    img = _peers.image(size, dtype)
    template = np.ascontiguousarray(img[size // 3 : size // 3 + ts, size // 4 : size // 4 + ts])
    calls = _peers.template_peers(img, template)
    if contender not in calls:
        pytest.skip(f"{contender} is not available here")
    benchmark.group = f"match_template {size}x{size} {dtype} {ts}x{ts}"
    score = benchmark.pedantic(calls[contender], rounds=3, warmup_rounds=1)
    peak = np.unravel_index(np.argmax(score), score.shape)
    assert peak == (size // 3, size // 4)
