"""pytest-benchmark: the planner's choice beside every method and beside SciPy.

Run with ``python -m pytest bench/test_bench_planner.py --benchmark-enable``
(the project's pytest settings disable benchmarks by default, so the test
suite only checks that these run). Groups compare, for one problem, fftconv's
'auto' with each forced method and with scipy.signal.fftconvolve/oaconvolve;
pytest-benchmark's table then shows the planner's regret directly.
``bench/regret.py`` prints the regret table over a whole grid, and
``bench/coldwarm.py`` the cold and warm times beside SciPy.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

import fftconv

CASES = [
    ((512, 512), 3),
    ((1000, 700), 15),
    ((2048, 2048), 31),
    ((4099, 300), 63),
    ((1024, 1024), 255),
]


def _arrays(shape, ks):
    rng = np.random.default_rng(0)
    return (
        rng.standard_normal(shape).astype(np.float32),
        rng.standard_normal((ks, ks)).astype(np.float32),
    )


@pytest.mark.parametrize("shape,ks", CASES, ids=[f"{s[0]}x{s[1]}-k{k}" for s, k in CASES])
@pytest.mark.parametrize("method", ["auto", "direct", "fft", "oa"])
def test_method(benchmark, shape, ks, method):
    a, k = _arrays(shape, ks)
    if (
        method == "direct"
        and fftconv.plan(shape, (ks, ks), np.float32, "same", method="direct").seconds > 5
    ):
        pytest.skip("direct summation would take too long")
    benchmark.group = f"{shape[0]}x{shape[1]} k={ks}"
    out = np.empty(shape, np.float32)
    result = benchmark(fftconv.convolve, a, k, "same", method=method, out=out)
    assert result is out


@pytest.mark.parametrize("shape,ks", CASES, ids=[f"{s[0]}x{s[1]}-k{k}" for s, k in CASES])
@pytest.mark.parametrize("peer", ["fftconvolve", "oaconvolve"])
def test_scipy(benchmark, shape, ks, peer):
    a, k = _arrays(shape, ks)
    benchmark.group = f"{shape[0]}x{shape[1]} k={ks}"
    benchmark(getattr(scipy.signal, peer), a, k, "same")


def test_plan_is_cheap(benchmark):
    benchmark.group = "planning"
    p = benchmark(fftconv.plan, (4096, 4096), (31, 31), "float32", "same")
    assert p.method in ("fft", "oa")
