"""Separable and low-rank kernels: rank detection and the 1-D pass executor."""

from __future__ import annotations

import numpy as np
import pytest

import fftconv
from fftconv._problem import make_problem
from fftconv.methods.separable import (
    convolve_separable,
    kernel_factors,
    max_useful_rank,
    tolerance,
)
from fftconv.planner import separable_cost
from reference import assert_close, reference

DTYPES = [np.float32, np.float64, np.complex64, np.complex128]
MODES = ["full", "same", "valid"]
BOUNDARIES = ["fill", "wrap", "symmetric", "mirror", "nearest"]

SOBEL = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], float)
SCHARR = np.array([[3, 0, -3], [10, 0, -10], [3, 0, -3]], float)


def _gauss(n, sigma):
    x = np.arange(n) - (n - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _sep(rng, kh, kw, dtype, rank=1):
    k = sum(np.outer(rng.standard_normal(kh), rng.standard_normal(kw)) for _ in range(rank))
    if np.dtype(dtype).kind == "c":
        k = k + 1j * np.outer(rng.standard_normal(kh), rng.standard_normal(kw))
        if rank == 1:  # complex rank one: a complex outer product
            k = np.outer(rng.standard_normal(kh) + 1j, rng.standard_normal(kw) - 2j)
    return k.astype(dtype)


def _rebuild(factors):
    return sum(np.outer(c, r) for c, r in factors)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "kernel",
    [
        SOBEL,
        SOBEL.T,
        SCHARR,
        np.ones((15, 15)) / 225,
        np.outer(_gauss(31, 5), _gauss(31, 5)),
        np.outer(_gauss(7, 1), _gauss(5, 2)),
    ],
    ids=["sobel", "sobel_t", "scharr", "box15", "gauss31", "gauss7x5"],
)
def test_common_kernels_are_rank_one(kernel, dtype):
    k = kernel.astype(dtype)
    factors = kernel_factors(k, dtype)
    assert len(factors) == 1
    assert np.max(np.abs(_rebuild(factors) - k.astype(np.float64))) <= tolerance(k, dtype)


def test_integer_kernels_factor_exactly():
    ((col, row),) = kernel_factors(SCHARR, np.float64)
    np.testing.assert_array_equal(np.outer(col, row), SCHARR)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_almost_separable_is_not_separable(dtype):
    g = np.outer(_gauss(9, 2), _gauss(9, 2))
    eps = np.finfo(dtype).eps
    for rel in (1e3 * eps, 1e-4):  # well above the dtype's rounding
        k = g.copy()
        k[2, 6] += rel * g.max()
        k = k.astype(dtype)
        factors = kernel_factors(k, dtype)
        assert len(factors) != 1
        if factors:  # a rank-2 split must still be exact
            assert np.max(np.abs(_rebuild(factors) - k)) <= tolerance(k, dtype)
    noisy = g + 1e3 * eps * g.max() * np.random.default_rng(0).standard_normal(g.shape)
    assert kernel_factors(noisy.astype(dtype), dtype) == []


def test_almost_separable_result_is_exact():
    """Through the public API: a near-Gaussian must not be run as a Gaussian."""
    rng = np.random.default_rng(1)
    a = rng.random((64, 64))
    k = np.outer(_gauss(11, 2), _gauss(11, 2))
    k[5, 5] *= 1 + 1e-6
    k[1, 8] += 1e-7
    for m in ("auto", "separable", "lowrank"):
        got = fftconv.convolve(a, k, "same", "symmetric", method=m)
        assert_close(got, reference(a, k, "same", "symmetric"), np.float64)


def test_low_rank_kernels():
    rng = np.random.default_rng(2)
    k = _sep(rng, 15, 13, np.float64, rank=2)
    factors = kernel_factors(k, np.float64)
    assert len(factors) == 2
    assert np.max(np.abs(_rebuild(factors) - k)) <= tolerance(k, np.float64)
    assert kernel_factors(k, np.float64, max_rank=1) == []
    assert kernel_factors(rng.standard_normal((5, 5)), np.float64) == []  # full rank
    assert max_useful_rank(3, 3) == 1 and max_useful_rank(31, 31) == 10


def test_non_finite_and_degenerate_kernels():
    k = SOBEL.copy()
    k[0, 0] = np.nan
    assert kernel_factors(k, np.float64) == []
    zero = kernel_factors(np.zeros((4, 4)), np.float32)
    assert len(zero) == 1 and not _rebuild(zero).any()
    with pytest.raises(ValueError, match="2-D"):
        kernel_factors(np.ones(3), np.float64)


def _run(a, k, mode, boundary, fill=0.0, corr=False, threads=2, factors=None):
    p, aa, kk = make_problem(a, k, mode, boundary, fill, None, None, corr)
    out = np.empty(p.out_shape, p.dtype)
    convolve_separable(p, aa, kk, out, threads, factors)
    return out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_passes_match_float64_sum(dtype, mode, boundary):
    rng = np.random.default_rng(hash((mode, boundary, 1)) % 2**32)
    cases = [((21, 30), (5, 3), 1), ((18, 17), (4, 6), 1), ((20, 24), (7, 8), 2)]
    if mode != "valid":
        cases.append(((5, 6), (9, 12), 1))  # kernel larger than the image
    for shape, kshape, rank in cases:
        a = rng.standard_normal(shape).astype(dtype)
        k = _sep(rng, *kshape, dtype, rank)
        for corr in (False, True):
            for factors in (None, kernel_factors(k, dtype, max_rank=4)):
                got = _run(a, k, mode, boundary, -0.5, corr, factors=factors)
                assert got.dtype == dtype
                assert_close(got, reference(a, k, mode, boundary, -0.5, corr), dtype)


def test_non_finite_image_matches_direct_sum():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((30, 30))
    a[4, 5], a[20, 20], a[25, 3] = np.inf, np.nan, -np.inf
    k = np.outer([1.0, 0.0, 2.0], [0.5, 1.0, 0.0, -1.0])  # zero taps: 0 * inf = nan
    for b in ("fill", "wrap", "mirror"):
        assert_close(_run(a, k, "same", b), reference(a, k, "same", b), np.float64)


def test_per_channel_kernels():
    rng = np.random.default_rng(4)
    img = rng.standard_normal((3, 40, 33)).astype(np.float32)
    ker = np.stack([np.outer(_gauss(7, s), _gauss(5, s)) for s in (1, 2, 3)]).astype(np.float32)
    got = fftconv.convolve(img, ker, "same", "nearest", channel_axis=0, method="separable")
    for c in range(3):
        assert_close(got[c], reference(img[c], ker[c], "same", "nearest"), np.float32)


def test_auto_picks_separable_and_lowrank():
    pytest.importorskip("numba")  # the compiled engine
    rng = np.random.default_rng(5)
    a = rng.random((512, 512)).astype(np.float32)
    gauss = np.outer(_gauss(31, 5), _gauss(31, 5))
    plan = fftconv.plan(
        a.shape, gauss.shape, dtype=a.dtype, mode="same", boundary="mirror", threads=2, kernel=gauss
    )
    assert plan.method == "separable"
    assert "separable" in str(plan)
    low = _sep(rng, 21, 21, np.float64, rank=2)
    plan = fftconv.plan(
        a.shape, low.shape, dtype=np.float64, mode="same", boundary="mirror", threads=2, kernel=low
    )
    assert plan.method == "lowrank"
    assert_close(
        fftconv.convolve(a[:64, :64], low, "same", "mirror"),
        reference(a[:64, :64], low, "same", "mirror"),
        np.float64,
    )


def test_separable_cost_scales_with_rank():
    pytest.importorskip("numba")  # the compiled engine
    p, _, _ = make_problem(
        np.zeros((256, 256)), np.ones((15, 15)), "same", "fill", 0, None, None, False
    )
    one, peak = separable_cost(p, 1)
    assert 0 < one < separable_cost(p, 3)[0] and peak > 0
    p3, _, _ = make_problem(
        np.zeros((8, 8, 8)), np.ones((3, 3, 3)), "same", "fill", 0, None, None, False
    )
    assert separable_cost(p3, 1)[0] == np.inf


@pytest.mark.parametrize("shape", [(3, 3), (3, 5), (4, 4), (5, 5)])
def test_the_rank_one_shortcut_never_refuses_what_the_svd_accepts(shape):
    """Kernels of at most rank 1 that pays (3x3 to 5x5) skip the SVD when the cross
    approximation is far off: a near-rank-one kernel the SVD would accept within the
    tolerance is still factored (perturbations from 0.01 to 100 tolerances per tap)."""
    from fftconv.methods.separable import max_useful_rank, tolerance

    assert max_useful_rank(*shape) == 1
    rng = np.random.default_rng(sum(shape))
    accepted = refused = 0
    for trial in range(400):
        base = np.outer(rng.normal(size=shape[0]), rng.normal(size=shape[1]))
        tol = tolerance(base, np.float32)
        k = base + rng.normal(size=shape) * tol * 10 ** rng.uniform(-2, 2)
        U, s, Vh = np.linalg.svd(k)
        svd_says = np.max(np.abs(k - s[0] * np.outer(U[:, 0], Vh[0]))) <= tolerance(k, np.float32)
        got = kernel_factors(k, np.float32)
        if svd_says:
            assert got, (trial, k)
            accepted += 1
        refused += not got
    assert accepted > 20 and refused > 20  # both sides of the tolerance were explored
