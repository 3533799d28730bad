"""The direct executor: compiled 2-D engine, numpy fallback, cost helpers, compile cache."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import fftconv
from fftconv._precompile import precompile
from fftconv._problem import make_problem
from fftconv.methods import direct, rows
from fftconv.methods.direct import convolve_direct
from fftconv.planner import Machine, direct_cost
from fftconv.planner.profile import compiled_rates
from reference import assert_close, reference

DTYPES = [np.float32, np.float64, np.complex64, np.complex128]
MODES = ["full", "same", "valid"]
BOUNDARIES = ["fill", "wrap", "symmetric", "mirror", "nearest"]


def _data(rng, shape, dtype):
    x = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        x = x + 1j * rng.standard_normal(shape)
    return x.astype(dtype)


def _run(a, k, mode, boundary, fillvalue=0, correlate=False, threads=2, **kw):
    p, aa, kk = make_problem(
        a, k, mode, boundary, fillvalue, kw.get("axes"), kw.get("channel_axis"), correlate
    )
    out = np.empty(p.out_shape, p.dtype)
    convolve_direct(p, aa, kk, out, threads)
    return out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_matches_float64_sum(dtype, mode, boundary):
    rng = np.random.default_rng(hash((mode, boundary)) % 2**32)
    # odd and even kernels, the unrolled 3x3, 5x5 and 7x7 kernels, odd row counts
    cases = [((23, 37), (3, 5)), ((16, 19), (4, 6)), ((19, 30), (3, 3)), ((12, 21), (5, 5))]
    cases += [((15, 22), (7, 7))]
    if mode != "valid":
        cases += [((5, 7), (9, 11)), ((4, 3), (5, 5))]
    for shape, kshape in cases:
        a, k = _data(rng, shape, dtype), _data(rng, kshape, dtype)
        for corr in (False, True):
            got = _run(a, k, mode, boundary, 0.75, corr)
            assert got.dtype == dtype
            assert_close(got, reference(a, k, mode, boundary, 0.75, corr), dtype)


@pytest.mark.parametrize("threads", [1, 2, 3, 5])
@pytest.mark.parametrize("ksize", [3, 5, 7, 9])  # the unrolled pair drivers, and the rest
def test_threads_give_identical_results(threads, ksize):
    rng = np.random.default_rng(1)
    a, k = _data(rng, (301, 257), np.float32), _data(rng, (ksize, ksize), np.float32)
    one = _run(a, k, "same", "mirror", threads=1)
    np.testing.assert_array_equal(_run(a, k, "same", "mirror", threads=threads), one)


def test_wide_rows_cross_chunks():
    # more output columns than the compiled kernel's row chunk
    rng = np.random.default_rng(2)
    a = _data(rng, (13, 2 * 1024 + 37), np.float64)
    for kshape in ((3, 4), (7, 9)):  # pairs of output rows; four at a time
        k = _data(rng, kshape, np.float64)
        for b in BOUNDARIES:
            assert_close(_run(a, k, "full", b, 2.0), reference(a, k, "full", b, 2.0), np.float64)


def test_batched_channels_and_axes():
    rng = np.random.default_rng(3)
    img = _data(rng, (20, 3, 24), np.float32)
    ker = _data(rng, (5, 3, 3), np.float32)  # one kernel per channel on axis 1
    got = fftconv.convolve(img, ker, "same", "symmetric", channel_axis=1, method="direct")
    for c in range(3):
        ref = reference(img[:, c], ker[:, c], "same", "symmetric")
        assert_close(got[:, c], ref, np.float32)
    shared = _data(rng, (5, 3), np.float32)
    got = fftconv.correlate(img, shared, "valid", channel_axis=1, method="direct")
    for c in range(3):
        assert_close(got[:, c], reference(img[:, c], shared, "valid", "fill", 0, True), np.float32)


def test_mixed_dtypes_and_1d_and_3d():
    rng = np.random.default_rng(4)
    a = rng.integers(-5, 5, (17, 13))
    k = rng.standard_normal((3, 3)).astype(np.float32)
    assert_close(
        fftconv.convolve(a, k, "same", "nearest", method="direct"),
        reference(a, k, "same", "nearest"),
        np.float64,
    )
    a1, k1 = rng.standard_normal(50), rng.standard_normal(6)
    for b in BOUNDARIES:
        assert_close(_run(a1, k1, "full", b, -1.0), reference(a1, k1, "full", b, -1.0), np.float64)
    a3, k3 = rng.standard_normal((6, 7, 8)), rng.standard_normal((2, 3, 2))
    assert_close(_run(a3, k3, "same", "wrap"), reference(a3, k3, "same", "wrap"), np.float64)


def test_complex_fill_and_non_contiguous_out():
    rng = np.random.default_rng(5)
    a, k = rng.standard_normal((12, 15)), rng.standard_normal((4, 3))
    got = fftconv.convolve(a, k, "full", "fill", 1 - 2j, method="direct")
    assert got.dtype == np.complex128
    assert_close(got, reference(a, k, "full", "fill", 1 - 2j), np.complex128)
    out = np.asfortranarray(np.empty((12, 15)))
    fftconv.convolve(a, k, "same", "mirror", out=out, method="direct")
    assert_close(out, reference(a, k, "same", "mirror"), np.float64)


def test_non_finite_propagates_as_the_sum_does():
    rng = np.random.default_rng(6)
    a = rng.standard_normal((20, 20))
    a[3, 4], a[10, 12], a[15, 2] = np.nan, np.inf, -np.inf
    k = rng.standard_normal((3, 3))
    k[1, 1] = 0.0  # 0 * inf = nan in the sum
    for b in ("fill", "symmetric"):
        assert_close(_run(a, k, "same", b), reference(a, k, "same", b), np.float64)
    kinf = k.copy()
    kinf[0, 0] = np.inf
    ones = np.ones((9, 9))
    assert_close(
        _run(ones, kinf, "full", "fill"), reference(ones, kinf, "full", "fill"), np.float64
    )


def test_input_not_modified():
    rng = np.random.default_rng(7)
    a, k = rng.standard_normal((10, 11)), rng.standard_normal((3, 3))
    a0, k0 = a.copy(), k.copy()
    fftconv.correlate(a, k, "same", "wrap", method="direct")
    np.testing.assert_array_equal(a, a0)
    np.testing.assert_array_equal(k, k0)


def test_numpy_fallback_without_numba(monkeypatch):
    rng = np.random.default_rng(8)
    a, k = rng.standard_normal((14, 9)), rng.standard_normal((4, 3))
    compiled = _run(a, k, "same", "symmetric")
    monkeypatch.setattr(rows, "USE_NUMBA", False)
    assert direct.kernels() is None
    p, _, _ = make_problem(a, k, "same", "symmetric", 0, None, None, False)
    assert not direct.compiled_available(p)
    fallback = _run(a, k, "same", "symmetric")
    assert_close(fallback, reference(a, k, "same", "symmetric"), np.float64)
    np.testing.assert_allclose(fallback, compiled, rtol=1e-12, atol=1e-12)
    # auto and the separable method still work
    g = np.outer([1.0, 2.0, 1.0], [1.0, 0.0, -1.0])
    for m in ("auto", "separable", "lowrank"):
        assert_close(
            fftconv.convolve(a, g, "same", "mirror", method=m),
            reference(a, g, "same", "mirror"),
            np.float64,
        )


def test_import_error_means_no_compiled_engine(monkeypatch):
    monkeypatch.setattr(rows, "_kernels_tried", True)
    monkeypatch.setattr(rows, "_kernels_module", None)
    assert direct.kernels() is None
    a = np.arange(12.0).reshape(3, 4)
    assert_close(
        fftconv.convolve(a, np.ones((2, 2)), method="direct"),
        reference(a, np.ones((2, 2)), "full", "fill"),
        np.float64,
    )


def test_cost_helpers():
    p_small, _, _ = make_problem(
        np.zeros((64, 64), np.float32), np.ones((3, 3)), "same", "fill", 0, None, None, False
    )
    p_big, _, _ = make_problem(
        np.zeros((1024, 1024), np.float32), np.ones((9, 9)), "same", "fill", 0, None, None, False
    )
    s_small, _ = direct_cost(p_small)
    s_big, peak = direct_cost(p_big)
    assert 0 < s_small < s_big
    assert direct_cost(p_big, threads=4)[0] < s_big
    assert peak >= 0
    # the memory floor: never faster than moving the image and the result
    consts = replace(Machine(), copy_rate=1e6)
    assert direct_cost(p_big, consts)[0] >= 2 * 1024 * 1024 * 4 / 1e6


def test_calibrate_returns_positive_rates():
    consts = compiled_rates(size=64, repeat=1)
    for table in ("direct_madds_per_s", "separable_madds_per_s"):
        assert set(consts[table]) >= {"float32", "float64", "complex64", "complex128"}
        assert all(v > 0 for v in consts[table].values())
    assert consts["copy_bytes_per_s"] > 0


_CACHE_PROBE = textwrap.dedent("""
    import json, time
    t0 = time.perf_counter()
    import numpy as np
    import fftconv
    from fftconv.methods import direct
    a = np.random.default_rng(0).random((256, 256))
    fftconv.convolve(a, a[:5, :5], "same", "mirror", method="direct")
    elapsed = time.perf_counter() - t0
    k = direct.kernels()
    disp = [f for m in (k, k.small) for f in vars(m).values() if hasattr(f, "stats")]
    print(json.dumps({"seconds": elapsed,
                      "misses": sum(sum(f.stats.cache_misses.values()) for f in disp),
                      "hits": sum(sum(f.stats.cache_hits.values()) for f in disp)}))
""")


@pytest.mark.slow
def test_compiled_code_is_cached_on_disk():
    """A fresh process loads the kernels from numba's on-disk cache: nothing compiled.

    The first run fills the cache if the earlier tests have not (same cache
    directory as the test session), the second must only load from it.
    """
    pytest.importorskip("numba")
    import json

    runs = []
    for _ in range(2):
        res = subprocess.run(
            [sys.executable, "-c", _CACHE_PROBE],
            check=True,
            capture_output=True,
            text=True,
            timeout=300,
        )
        runs.append(json.loads(res.stdout.strip().splitlines()[-1]))
    assert runs[1]["misses"] == 0 and runs[1]["hits"] >= 1
    # the whole one-off call, imports included, within the bound docs/readme/direct.md states
    assert runs[1]["seconds"] < 5.0


_NO_CACHE_DIR_PROBE = textwrap.dedent("""
    import numba
    from numba.core import caching
    # as if the package directory and the user cache were not writable
    impl = getattr(caching, "CacheImpl", None) or caching._CacheImpl
    user = (getattr(caching, "UserProvidedCacheLocator", None)
            or caching._UserProvidedCacheLocator)
    impl._locator_classes = [user]
    numba.config.CACHE_DIR = ""
    from fftconv.methods import direct
    assert direct.kernels() is not None
    print(numba.config.CACHE_DIR)
""")


def test_cache_falls_back_to_a_temporary_directory():
    pytest.importorskip("numba")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    res = subprocess.run(
        [sys.executable, "-c", _NO_CACHE_DIR_PROBE],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "fftconv-numba-cache" in res.stdout


def test_precompile_reports_availability(monkeypatch):
    pytest.importorskip("numba")
    assert (
        precompile(["float32"], channels=[1], photo_dtypes=[], aot=False, calibrate=False)
        is not None
    )
    monkeypatch.setattr(rows, "USE_NUMBA", False)
    assert (
        precompile(["float32"], channels=[1], photo_dtypes=[], aot=False, calibrate=False) is None
    )


def test_precompile_writes_fftconvs_bytecode(monkeypatch):
    """Even where PYTHONDONTWRITEBYTECODE keeps Python from writing it (an editable
    install then compiles every module in every process), and without numba."""
    import importlib.util

    import fftconv.api

    pyc = Path(importlib.util.cache_from_source(fftconv.api.__file__))
    pyc.unlink(missing_ok=True)
    monkeypatch.setattr(rows, "USE_NUMBA", False)
    assert (
        precompile(["float32"], channels=[1], photo_dtypes=[], aot=False, calibrate=False) is None
    )
    assert pyc.is_file()
    data = pyc.read_bytes()
    assert data[:4] == importlib.util.MAGIC_NUMBER
    stat = Path(fftconv.api.__file__).stat()
    assert int.from_bytes(data[8:12], "little") == int(stat.st_mtime)  # checked by mtime


def test_complex_non_finite_takes_the_exact_path():
    rng = np.random.default_rng(9)
    a = (rng.standard_normal((12, 13)) + 1j * rng.standard_normal((12, 13))).astype(np.complex128)
    a[4, 4] = complex(np.inf, 0)
    k = rng.standard_normal((3, 3))
    got = _run(a, k, "same", "wrap")
    with np.errstate(invalid="ignore"):
        assert_close(got, reference(a, k, "same", "wrap"), np.complex128)


def test_works_in_a_process_without_numba():
    probe = textwrap.dedent("""
        import sys
        sys.modules["numba"] = None  # import numba raises ImportError
        import numpy as np
        import fftconv
        from fftconv.methods import direct
        assert direct.kernels() is None
        a = np.arange(20.0).reshape(4, 5)
        got = fftconv.convolve(a, np.ones((3, 3)), "same", "mirror")
        print(got[1, 1], got[0, 0])
    """)
    res = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True, timeout=120
    )
    ref = reference(np.arange(20.0).reshape(4, 5), np.ones((3, 3)), "same", "mirror")
    assert [float(x) for x in res.stdout.split()] == [ref[1, 1], ref[0, 0]]
