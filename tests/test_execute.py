"""The execute layer: the finite or non-finite path decided once, before the executor,
and said by the Plan that runs."""

from __future__ import annotations

import numpy as np

import fftconv
import fftconv.methods.rows
from fftconv._execute import compute, for_data
from fftconv._problem import make_problem
from fftconv.planner import plan_problem
from reference import assert_close, reference


def _planned(a, k, mode="same", boundary="fill", fillvalue=0, method="fft"):
    problem, aa, kk = make_problem(a, k, mode, boundary, fillvalue, None, None, False)
    return problem, plan_problem(problem, 1, method, kernel=kk), aa, kk


def test_finite_data_run_the_planners_plan():
    rng = np.random.default_rng(0)
    for method in ("fft", "oa", "direct"):
        problem, p, a, k = _planned(rng.random((40, 40)), rng.random((5, 5)), method=method)
        assert for_data(problem, p, a, k) is p and p.finite


def test_non_finite_image_takes_the_exact_fft_path_and_says_so():
    rng = np.random.default_rng(1)
    a = rng.random((40, 40))
    a[3, 7] = np.nan
    for method in ("fft", "oa"):
        problem, p, aa, kk = _planned(a, rng.random((5, 5)), method=method)
        run = for_data(problem, p, aa, kk)
        assert (run.method, run.finite, run.transform_shape) == ("fft", False, None)
        assert "non-finite data" in str(run)
        with np.errstate(invalid="ignore"):
            got = compute(problem, p, aa, kk, None, 1)
            want = reference(a, kk, "same", "fill")
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        ok = np.isfinite(want)
        assert_close(got[ok], want[ok], np.float64)


def test_non_finite_kernel_is_summed_directly():
    rng = np.random.default_rng(2)
    k = rng.random((5, 5))
    k[0, 0] = np.inf
    problem, p, aa, kk = _planned(rng.random((30, 30)), k, method="oa")
    run = for_data(problem, p, aa, kk)
    assert (run.method, run.finite) == ("direct", False)
    assert "direct summation" in run.explain()


def test_circular_plan_ignores_an_unused_fill_value():
    rng = np.random.default_rng(3)
    problem, p, aa, kk = _planned(rng.random((32, 27)), rng.random((5, 4)), "same", "wrap", np.nan)
    if p.circular:
        assert for_data(problem, p, aa, kk) is p


def test_separable_with_a_non_finite_fill_value_sums_directly():
    a = np.random.default_rng(4).random((300, 300))  # large enough for 1-D passes
    g = np.outer([1.0, 2.0, 1.0], [1.0, 0.0, -1.0])
    problem, p, aa, kk = _planned(a, g, "same", "fill", np.inf, method="separable")
    assert p.method == "separable" or fftconv.methods.rows.kernels() is None
    assert for_data(problem, p, aa, kk).method == "direct"
    with np.errstate(invalid="ignore"):
        got = fftconv.convolve(a, g, "same", "fill", np.inf, method="separable")
        want = reference(a, g, "same", "fill", np.inf)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
