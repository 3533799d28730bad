from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage

import fftconv
from fftconv import kernels as K


def test_gaussian_matches_scipy_ndimage():
    # gaussian_filter of a centred impulse is its kernel (same radius rule).
    sigma, truncate = 2.5, 3.0
    g = K.gaussian(sigma, truncate)
    r = g.shape[0] // 2
    impulse = np.zeros((2 * r + 1, 2 * r + 1))
    impulse[r, r] = 1
    ref = scipy.ndimage.gaussian_filter(impulse, sigma, truncate=truncate, mode="constant")
    np.testing.assert_allclose(g, ref, atol=1e-15)
    assert g.shape == (2 * int(truncate * sigma + 0.5) + 1,) * 2


@pytest.mark.parametrize(
    "k",
    [
        K.gaussian(3),
        K.box(5),
        K.disk(4.5),
        K.motion(25, 30),
        K.motion(7, 90),
        K.sharpen(),
        K.emboss(),
    ],
)
def test_blur_and_sharpen_kernels_keep_brightness(k):
    assert k.ndim == 2
    assert k.sum() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("k", [K.laplace(), K.sobel(0), K.sobel("x"), K.scharr(1), K.scharr()])
def test_derivatives_sum_to_zero(k):
    assert abs(k.sum()) < 1e-12


def test_derivative_signs_follow_the_axis():
    ramp_x = np.tile(np.arange(6.0), (6, 1))
    for k, expect in ((K.sobel("x"), 8.0), (K.scharr("x"), 32.0)):
        out = fftconv.convolve(ramp_x, k, mode="valid")
        np.testing.assert_allclose(out, expect)
        out_y = fftconv.convolve(
            ramp_x.T, K.sobel("y") if expect == 8 else K.scharr("y"), mode="valid"
        )
        np.testing.assert_allclose(out_y, expect)


def test_complex_scharr_is_scipy_example_kernel():
    # scipy.signal.convolve2d's docstring example.
    ref = np.array(
        [[-3 - 3j, 0 - 10j, +3 - 3j], [-10 + 0j, 0 + 0j, +10 + 0j], [-3 + 3j, 0 + 10j, +3 + 3j]]
    )
    np.testing.assert_array_equal(K.scharr(), ref)


def test_disk_and_motion_shapes():
    d = K.disk(5)
    assert d.shape == (11, 11)
    assert d[5, 0] > 0 and d[0, 0] == 0
    m = K.motion(25, 0)
    assert m.shape == (25, 25)
    np.testing.assert_allclose(m[12], 1 / 25)
    assert np.count_nonzero(m) == 25
    m90 = K.motion(25, 90)
    np.testing.assert_allclose(m90, m.T, atol=1e-12)
    m30 = K.motion(25, 30)
    ys, xs = np.nonzero(m30)
    # Up and to the right: rows decrease as columns increase.
    assert np.corrcoef(xs, ys)[0, 1] < -0.9


def test_ripple_is_asymmetric():
    r = K.ripple()
    assert not np.allclose(r, r[::-1, ::-1]) and not np.allclose(r, r.T)


@pytest.mark.parametrize(
    "spec, shape",
    [
        ("gaussian:sigma=8", (65, 65)),
        ("gaussian:2,2", (9, 9)),
        ("box:15", (15, 15)),
        ("laplace", (3, 3)),
        ("sharpen", (3, 3)),
        ("emboss", (3, 3)),
        ("sobel-x", (3, 3)),
        ("Sobel_Y", (3, 3)),
        ("scharr", (3, 3)),
        ("disk:radius=5", (11, 11)),
        ("motion:length=25,angle=30", (23, 23)),
        ("ripple", (15, 15)),
    ],
)
def test_parse_spec(spec, shape):
    assert K.parse_spec(spec).shape == shape


def test_parse_spec_values_match_functions():
    np.testing.assert_array_equal(
        K.parse_spec("gaussian:sigma=1.5,truncate=2"), K.gaussian(1.5, truncate=2)
    )
    np.testing.assert_array_equal(K.parse_spec("motion:9,45"), K.motion(9, 45))


@pytest.mark.parametrize(
    "spec, words",
    [
        ("gausian:sigma=3", "did you mean 'gaussian'"),
        ("gaussian", "needs sigma"),
        ("gaussian:sigma=abc", "not a number"),
        ("gaussian:radius=3", "no parameter 'radius'"),
        ("box:0", "> 0"),
        ("box:2.5", "whole number"),
        ("laplace:3", "too many values"),
        ("box:3,sigma=1", "no parameter"),
        ("missing_kernel.npy", "no such .npy file"),
    ],
)
def test_parse_spec_errors_name_the_problem(spec, words):
    with pytest.raises(ValueError) as info:
        K.parse_spec(spec)
    assert words in str(info.value) and repr(spec) in str(info.value)


def test_parse_spec_npy(tmp_path):
    k = np.arange(6.0).reshape(2, 3)
    np.save(tmp_path / "k.npy", k)
    np.testing.assert_array_equal(K.parse_spec(str(tmp_path / "k.npy")), k)
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="cannot load"):
        K.parse_spec(str(tmp_path / "obj.npy"))
    np.save(tmp_path / "k3.npy", np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="2-d"):
        K.parse_spec(str(tmp_path / "k3.npy"))
    np.save(tmp_path / "nan.npy", np.array([[np.nan]]))
    with pytest.raises(ValueError, match="NaN"):
        K.parse_spec(str(tmp_path / "nan.npy"))


@pytest.mark.parametrize(
    "spec, size",
    [
        ("gaussian:sigma=1e308", "infinite"),
        ("gaussian:sigma=3000", "24001 x 24001"),
        ("gaussian:sigma=2,truncate=1e308", "infinite"),
        ("box:1000000", "1000000 x 1000000"),
        ("box:20000", "20000 x 20000"),
        ("disk:radius=1e6", "2000001 x 2000001"),
        ("disk:radius=1e300", "2e+300"),
        ("motion:length=1e9", "1000000001 x 1000000001"),
        ("motion:length=1e300,angle=45", "infinite"),
        ("ripple:100000", "100000 x 100000"),
    ],
)
def test_huge_kernels_are_refused_naming_their_size(spec, size):
    # OverflowError, MemoryError or gigabytes allocated before.
    with pytest.raises(ValueError, match="would be") as e:
        K.parse_spec(spec)
    assert spec in str(e.value) and size in str(e.value) and "\n" not in str(e.value)


def test_kernel_budget_is_checked_before_building(tmp_path):
    with pytest.raises(ValueError, match="memory budget of 2 MB"):
        K.parse_spec("box:2000", max_bytes=2e6)
    assert K.parse_spec("box:3", max_bytes=2e6).shape == (3, 3)
    p = tmp_path / "big.npy"
    np.lib.format.open_memmap(p, mode="w+", dtype=np.float64, shape=(1000, 1000))
    with pytest.raises(ValueError, match="1000 x 1000 kernel"):
        K.parse_spec(str(p), max_bytes=1e6)


def test_npy_kernels_one_d_and_long_double_are_refused(tmp_path):
    p = tmp_path / "row.npy"
    np.save(p, np.ones(5))
    with pytest.raises(ValueError, match=r"shape \(1, 5\)"):
        K.parse_spec(str(p))
    if np.dtype(np.longdouble).itemsize > 8:
        q = tmp_path / "ld.npy"
        np.save(q, np.ones((3, 3), np.longdouble))
        with pytest.raises(ValueError, match="long double"):
            K.parse_spec(str(q))
