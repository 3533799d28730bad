"""convolve / correlate against SciPy and the float64 direct-summation reference."""

import numpy as np
import pytest
import scipy.ndimage as ndi
import scipy.signal as ss
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fftconv
from reference import NDIMAGE, SIGNAL, assert_close, direct_reference

MODES = ["full", "same", "valid"]
BOUNDARIES = ["fill", "wrap", "symmetric", "mirror", "nearest"]
METHODS = ["direct", "fft", "auto"]
DTYPES = [np.float32, np.float64, np.complex64, np.complex128]


def _data(rng, shape, dtype):
    x = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        x = x + 1j * rng.standard_normal(shape)
    return x.astype(dtype)


def _func(correlate):
    return fftconv.correlate if correlate else fftconv.convolve


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("boundary", ["fill", "wrap", "symmetric"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kshape", [(3, 3), (4, 2), (5, 6), (1, 1)])
@pytest.mark.parametrize("correlate", [False, True])
def test_2d_against_scipy_signal(rng, method, boundary, mode, kshape, correlate):
    x = _data(rng, (13, 17), np.complex128)
    k = _data(rng, kshape, np.complex128)
    ref_f = ss.correlate2d if correlate else ss.convolve2d
    ref = ref_f(x, k, mode, SIGNAL[boundary], fillvalue=0.5 - 2j)
    got = _func(correlate)(x, k, mode, boundary, fillvalue=0.5 - 2j, method=method)
    assert_close(got, ref)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("correlate", [False, True])
@pytest.mark.parametrize("swap", [False, True])
def test_valid_swaps_like_scipy(rng, method, correlate, swap):
    a = _data(rng, (4, 5), np.complex128)
    b = _data(rng, (9, 7), np.complex128)
    x, k = (a, b) if swap else (b, a)
    ref_f = ss.correlate2d if correlate else ss.convolve2d
    assert_close(_func(correlate)(x, k, "valid", method=method), ref_f(x, k, "valid"))


def test_valid_raises_like_scipy():
    x, k = np.ones((5, 3)), np.ones((3, 5))
    with pytest.raises(ValueError) as scipy_err:
        ss.convolve2d(x, k, "valid")
    with pytest.raises(ValueError, match="at least as large") as err:
        fftconv.convolve(x, k, "valid")
    assert "(5, 3)" in str(err.value) and "(3, 5)" in str(err.value)
    assert "at least as large" in str(scipy_err.value)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("boundary", ["mirror", "nearest", "symmetric", "wrap", "fill"])
@pytest.mark.parametrize("kshape", [(3, 3), (5, 7), (1, 9)])
def test_same_correlate_against_ndimage(rng, method, boundary, kshape):
    x = rng.standard_normal((12, 15))
    k = rng.standard_normal(kshape)
    # Odd kernels: ndimage's centre k // 2 is correlate2d's 'same' centring. (For even
    # kernels ndimage centres like scipy.signal.correlate; fftconv.ndimage handles that.)
    ref = ndi.correlate(x, k, mode=NDIMAGE[boundary], cval=1.25)
    got = fftconv.correlate(x, k, "same", boundary, 1.25, method=method)
    assert_close(got, ref)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("method", ["direct", "fft"])
@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "shapes",
    [((9,), (4,)), ((7, 8), (3, 5)), ((5, 6, 4), (2, 3, 3)), ((3, 4), (6, 9))],
    ids=["1d", "2d", "3d", "kernel>image"],
)
@pytest.mark.parametrize("correlate", [False, True])
def test_grid_against_direct_reference(rng, dtype, method, boundary, mode, shapes, correlate):
    x = _data(rng, shapes[0], dtype)
    k = _data(rng, shapes[1], dtype)
    fill = 0.75 if np.dtype(dtype).kind == "f" else 0.75 + 0.5j
    got = _func(correlate)(x, k, mode, boundary, fill, method=method)
    assert got.dtype == dtype
    assert_close(got, direct_reference(x, k, mode, boundary, fill, correlate), dtype)


@pytest.mark.parametrize("method", ["direct", "fft"])
@pytest.mark.parametrize("mode", MODES)
def test_axes_broadcast_like_fftconvolve(rng, method, mode):
    x = rng.standard_normal((3, 10, 11))
    k = rng.standard_normal((1, 4, 3))
    ref = ss.fftconvolve(x, k, mode, axes=(1, 2))
    assert_close(fftconv.convolve(x, k, mode, axes=(1, 2), method=method), ref)
    k3 = rng.standard_normal((3, 4, 3))
    ref3 = ss.fftconvolve(x, k3, mode, axes=[-1, -2])
    assert_close(fftconv.convolve(x, k3, mode, axes=[-1, -2], method=method), ref3)


@pytest.mark.parametrize("method", ["direct", "fft"])
def test_axes_kernel_batch_broadcasts_over_image(rng, method):
    x = rng.standard_normal((1, 9, 8))
    k = rng.standard_normal((4, 3, 3))
    ref = ss.fftconvolve(x, k, "full", axes=(1, 2))
    assert_close(fftconv.convolve(x, k, axes=(1, 2), method=method), ref)


@pytest.mark.parametrize("method", ["direct", "fft"])
@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_channel_axis_rgb_photo(method, boundary):
    skimage_data = pytest.importorskip("skimage.data")
    rgb = skimage_data.astronaut()[::8, ::8].astype(np.float32) / 255  # (64, 64, 3)
    k = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], np.float32)
    got = fftconv.convolve(rgb, k, "same", boundary, channel_axis=-1, method=method)
    assert got.shape == rgb.shape and got.dtype == np.float32
    for c in range(3):
        assert_close(got[..., c], direct_reference(rgb[..., c], k, "same", boundary), np.float32)


@pytest.mark.parametrize("method", ["direct", "fft"])
def test_channel_axis_per_channel_kernels(rng, method):
    img = rng.random((3, 20, 18)).astype(np.float32)  # channels first
    ks = rng.standard_normal((3, 5, 4)).astype(np.float32)
    got = fftconv.correlate(img, ks, "same", "nearest", channel_axis=0, method=method)
    for c in range(3):
        ref = direct_reference(img[c], ks[c], "same", "nearest", correlate=True)
        assert_close(got[c], ref, np.float32)


def test_channel_axis_errors(rng):
    img = rng.random((8, 8, 3))
    with pytest.raises(ValueError, match="channels"):
        fftconv.convolve(img, np.ones((3, 3, 2)), channel_axis=2)
    with pytest.raises(ValueError, match="channel_axis=5"):
        fftconv.convolve(img, np.ones((3, 3)), channel_axis=5)
    with pytest.raises(ValueError, match="not both"):
        fftconv.convolve(img, np.ones((3, 3)), channel_axis=2, axes=(0, 1))
    with pytest.raises(TypeError, match="channel_axis"):
        fftconv.convolve(img, np.ones((3, 3)), channel_axis="last")


@pytest.mark.parametrize(
    "dt1,dt2,expected",
    [
        (np.uint8, np.float32, np.float32),  # numpy promotion: a uint8 photo stays single precision
        (np.int16, np.int16, np.float64),
        (bool, bool, np.float64),
        (np.float32, np.float32, np.float32),
        (np.float32, np.float64, np.float64),
        (np.float32, np.complex64, np.complex64),
        (np.float64, np.complex64, np.complex128),
        (np.float16, np.float16, np.float32),
    ],
)
@pytest.mark.parametrize("method", ["direct", "fft"])
def test_dtype_rules(rng, dt1, dt2, expected, method):
    x = (rng.random((6, 7)) * 5).astype(dt1)
    k = (rng.random((3, 2)) * 3).astype(dt2)
    got = fftconv.convolve(x, k, method=method)
    assert got.dtype == expected
    assert_close(got, direct_reference(x, k), expected)


def test_float32_fft_uses_single_precision_transforms(rng):
    from fftconv import _fftw

    x = rng.random((64, 60)).astype(np.float32)
    _fftw.clear_cache()
    fftconv.convolve(x, np.ones((9, 9), np.float32), method="fft")
    keys = list(_fftw._idle)
    assert keys and all(np.dtype(key[1]) == np.float32 for key in keys)


@pytest.mark.parametrize("method", ["direct", "fft"])
def test_awkward_inputs_work_and_are_not_modified(rng, tmp_path, method):
    base = rng.standard_normal((16, 12))
    k = rng.standard_normal((3, 4))
    ref = direct_reference(base, k, "same", "mirror")
    mm = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=">f8", shape=base.shape)
    mm[...] = base
    mm.flush()
    ro = base.copy()
    ro.flags.writeable = False
    wide = np.zeros((32, 24))
    wide[::2, ::2] = base
    cases = {
        "big-endian": base.astype(">f8"),
        "fortran": np.asfortranarray(base),
        "strided": wide[::2, ::2],
        "read-only": ro,
        "memmap": np.load(tmp_path / "x.npy", mmap_mode="r"),
    }
    for name, x in cases.items():
        before = np.array(x, copy=True)
        got = fftconv.convolve(x, k.astype(">f8"), "same", "mirror", method=method)
        assert_close(got, ref)
        assert np.array_equal(np.asarray(x), before), name
        assert got.dtype == np.float64 and got.dtype.isnative


@pytest.mark.parametrize("method", ["direct", "fft"])
def test_out_receives_result(rng, tmp_path, method):
    x = rng.standard_normal((10, 10)).astype(np.float32)
    k = rng.standard_normal((3, 3)).astype(np.float32)
    out = np.lib.format.open_memmap(tmp_path / "o.npy", "w+", np.float32, (10, 10))
    res = fftconv.convolve(x, k, "same", "wrap", out=out, method=method)
    assert res is out
    out.flush()
    saved = np.load(tmp_path / "o.npy")
    assert_close(saved, direct_reference(x, k, "same", "wrap"), np.float32)


def test_out_errors(rng):
    x = rng.standard_normal((10, 10))
    with pytest.raises(
        ValueError, match=r"shape \(10, 10\) and dtype float32.*\(12, 12\).*float64"
    ):
        fftconv.convolve(x, np.ones((3, 3)), out=np.empty((10, 10), np.float32))
    with pytest.raises(TypeError, match="out must be"):
        fftconv.convolve(x, np.ones((3, 3)), out=[0] * 144)
    ro = np.empty((12, 12))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        fftconv.convolve(x, np.ones((3, 3)), out=ro)


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nan_and_inf_stay_local_on_fft_path(rng, boundary, dtype):
    x = rng.standard_normal((40, 50)).astype(dtype)
    x[10, 12] = np.nan
    x[30, 40] = np.inf
    x[30, 43] = -np.inf
    x[5, 45] = np.inf
    k = rng.standard_normal((5, 7)).astype(dtype)
    k[2, 3] = 0.0  # 0 * inf is NaN in direct summation
    k[0, 0] = -abs(k[0, 0])
    for mode in MODES:
        fft = fftconv.convolve(x, k, mode, boundary, method="fft")
        direct = fftconv.convolve(x, k, mode, boundary, method="direct")
        ref = direct_reference(x, k, mode, boundary)
        for got in (fft, direct):
            assert np.array_equal(np.isnan(got), np.isnan(ref))
            assert np.array_equal(np.isposinf(got), np.isposinf(ref))
            assert np.array_equal(np.isneginf(got), np.isneginf(ref))
            finite = np.isfinite(ref)
            assert 0.8 < finite.mean() < 1  # only the windows that touch them
            assert_close(got[finite], ref[finite], dtype)


def test_nan_fillvalue_and_nan_kernel(rng):
    x = rng.standard_normal((8, 9))
    k = np.ones((3, 3))
    got = fftconv.convolve(x, k, "same", "fill", fillvalue=np.nan, method="fft")
    assert np.isnan(got[0]).all() and np.isnan(got[:, -1]).all()
    assert np.isfinite(got[1:-1, 1:-1]).all()
    k[1, 1] = np.nan
    assert np.isnan(fftconv.convolve(x, k, method="fft")).all()


def test_nan_complex_stays_local(rng):
    x = _data(rng, (20, 20), np.complex128)
    x[3, 4] = np.nan
    got = fftconv.convolve(x, np.ones((3, 3)), "same", method="fft")
    bad = ~np.isfinite(got)
    assert bad.sum() == 9 and bad[2:5, 3:6].all()


def test_threads_argument(rng):
    x = rng.standard_normal((64, 64))
    k = rng.standard_normal((9, 9))
    ref = fftconv.convolve(x, k, method="fft", threads=1)
    assert_close(fftconv.convolve(x, k, method="fft", threads=2), ref)
    with pytest.raises(ValueError, match="threads"):
        fftconv.convolve(x, k, threads=0)
    with pytest.raises(TypeError, match="threads"):
        fftconv.convolve(x, k, threads=1.5)


# ---- errors name the argument, what it got and what is allowed ------------------------------


@pytest.mark.parametrize(
    "kwargs,exc,pattern",
    [
        (
            dict(mode="sam"),
            ValueError,
            r"mode='sam' is not one of 'full', 'same', 'valid'; did you mean 'same'",
        ),
        (dict(mode=3), TypeError, r"mode must be a str"),
        (dict(boundary="refelct"), ValueError, r"boundary='refelct' is not one of 'fill'.*reflect"),
        (dict(boundary="symetric"), ValueError, r"did you mean 'symmetric'"),
        (dict(boundary="reflect"), ValueError, r"ambiguous.*'symmetric'.*'mirror'"),
        (dict(method="fastest"), ValueError, r"method='fastest' is not one of 'auto'"),
        (dict(axes=(0, 5)), ValueError, r"axes=\(0, 5\) is out of range"),
        (dict(axes=(1, 1)), ValueError, r"repeats an axis"),
        (dict(axes="x"), TypeError, r"axes must be"),
        (dict(fillvalue="zero"), TypeError, r"fillvalue must be"),
    ],
)
def test_bad_arguments(kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        fftconv.convolve(np.ones((5, 5)), np.ones((3, 3)), **kwargs)


def test_aliases_are_accepted():
    x = np.arange(20.0).reshape(4, 5)
    k = np.arange(6.0).reshape(2, 3)
    for alias, name in [
        ("symm", "symmetric"),
        ("constant", "fill"),
        ("edge", "nearest"),
        ("replicate", "nearest"),
        ("periodic", "wrap"),
        ("grid-wrap", "wrap"),
        ("grid-mirror", "symmetric"),
        ("reflect_101", "mirror"),
    ]:
        assert np.array_equal(
            fftconv.convolve(x, k, "same", alias), fftconv.convolve(x, k, "same", name)
        )


@pytest.mark.parametrize(
    "in1,in2,exc,pattern",
    [
        (np.ones((5, 5)), np.ones(3), ValueError, r"same number of dimensions.*\(5, 5\).*\(3,\)"),
        (
            np.ones((0, 5)),
            np.ones((3, 3)),
            ValueError,
            r"in1 must not be empty; got shape \(0, 5\)",
        ),
        (np.ones((5, 5)), np.ones((3, 0)), ValueError, r"in2 must not be empty"),
        (np.float64(3.0), np.ones(3), ValueError, r"in1 must have at least one dimension"),
        (np.array([["a"]]), np.ones((1, 1)), TypeError, r"in1 has dtype <U1.*supported"),
        (np.ones((2, 2), object), np.ones((1, 1)), TypeError, r"in1 has dtype object"),
        (np.ones((3, 3), np.longdouble), np.ones((1, 1)), TypeError, r"long double"),
        (np.ones((4, 5)), np.ones((2, 3)), None, None),
    ],
)
def test_bad_inputs(in1, in2, exc, pattern):
    if exc is None:
        assert fftconv.convolve(in1, in2).shape == (5, 7)
        return
    if np.dtype(np.longdouble) == np.float64 and "long" in pattern:
        pytest.skip("long double is float64 here")
    with pytest.raises(exc, match=pattern):
        fftconv.convolve(in1, in2)


def test_non_broadcastable_batch_axes():
    with pytest.raises(ValueError, match="do not broadcast on axis 0"):
        fftconv.convolve(np.ones((3, 5, 5)), np.ones((2, 3, 3)), axes=(1, 2))


def test_laplace_edges_and_box_blur_from_readme():
    img = np.zeros((8, 8), np.float32)
    img[2:6, 2:6] = 1.0
    laplace = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], np.float32)
    edges = fftconv.convolve(img, laplace, mode="same", boundary="nearest")
    assert edges[0, 0] == 0 and edges[3, 3] == 0  # flat regions
    assert edges[2, 2] == -2 and edges[1, 2] == 1  # inside corner, outside edge
    blur = fftconv.convolve(img, np.full((3, 3), 1 / 9, np.float32), mode="same")
    assert blur.dtype == np.float32
    assert abs(blur[3, 3] - 1.0) < 1e-6 and abs(blur[2, 2] - 4 / 9) < 1e-6


# ---- properties over shapes a person would not think of -------------------------------------

shapes = st.tuples(st.integers(1, 9), st.integers(1, 9))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    xs=shapes,
    ks=shapes,
    mode=st.sampled_from(MODES),
    boundary=st.sampled_from(BOUNDARIES),
    correlate=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
    dtype=st.sampled_from([np.float32, np.float64, np.complex128]),
)
def test_property_fft_and_direct_equal_reference(xs, ks, mode, boundary, correlate, seed, dtype):
    rng = np.random.default_rng(seed)
    x = _data(rng, xs, dtype)
    k = _data(rng, ks, dtype)
    if mode == "valid" and not (
        all(a >= b for a, b in zip(xs, ks)) or all(a <= b for a, b in zip(xs, ks))
    ):
        with pytest.raises(ValueError, match="at least as large"):
            _func(correlate)(x, k, mode, boundary)
        return
    ref = direct_reference(x, k, mode, boundary, 0.0, correlate)
    for method in ("fft", "direct"):
        got = _func(correlate)(x, k, mode, boundary, method=method)
        assert got.dtype == dtype
        assert_close(got, ref, dtype)


@pytest.mark.parametrize("method", ["fft", "auto", "direct"])
@pytest.mark.parametrize("correlate", [False, True])
def test_wrap_fold_of_a_float32_kernel_longer_than_the_image_keeps_float64(method, correlate):
    # The folded kernel was summed in float32: 432 x the float64 tolerance off.
    rng = np.random.default_rng(3)
    for n, kn in [(1, 2), (3, 8), (5, 17)]:
        x = rng.standard_normal(n)
        k = rng.standard_normal(kn).astype(np.float32)
        got = _func(correlate)(x, k, mode="same", boundary="wrap", method=method)
        assert got.dtype == np.float64
        ref = direct_reference(x, k.astype(np.float64), "same", "wrap", correlate=correlate)
        assert_close(got, ref)
    conv = fftconv.Convolver(
        np.array([-0.46042656898498535, -0.9180529713630676], "float32"),
        mode="same",
        boundary="wrap",
    )
    assert_close(
        conv(np.array([3.0])),
        direct_reference(
            np.array([3.0]), np.array([-0.46042656898498535, -0.9180529713630676]), "same", "wrap"
        ),
    )


@pytest.mark.parametrize("method", ["direct", "auto", "separable", "oa", "fft", "lowrank"])
@pytest.mark.parametrize("view", ["same", "reversed", "kernel"])
@pytest.mark.parametrize("correlate", [False, True])
def test_out_overlapping_an_input_gives_the_right_result(method, view, correlate):
    # out=x was silently wrong for every method but fft (by up to 0.67 here).
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 260))
    k = rng.standard_normal((5, 5)) if view == "kernel" else np.ones((5, 5)) / 25
    if view == "kernel":
        # out overlaps the kernel: the 'same' output of a kernel-sized image
        small = rng.standard_normal((5, 5))
        ref = _func(correlate)(small, k, mode="same", method="direct")
        got = _func(correlate)(small, k, mode="same", method=method, out=k)
        assert got is k
        assert_close(k, ref)
        return
    xx = x.copy()
    out = xx if view == "same" else xx[::-1, ::-1]
    src = xx if view == "same" else xx[::-1, ::-1]
    expect = _func(correlate)(src.copy(), k, mode="same", method="direct")
    got = _func(correlate)(src, k, mode="same", method=method, out=out)
    assert got is out
    assert_close(out, expect)


@pytest.mark.parametrize("method", ["direct", "oa", "fft"])
def test_out_overlapping_the_input_on_the_tiled_path(method):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((600, 500))
    k = np.ones((5, 5)) / 25
    expect = fftconv.convolve(x, k, mode="same", method="direct")
    for out_view in (lambda a: a, lambda a: a[::-1, ::-1]):
        xx = x.copy()
        src, out = out_view(xx), out_view(xx)
        want = fftconv.convolve(src.copy(), k, mode="same", method="direct")
        got = fftconv.convolve(src, k, mode="same", method=method, out=out, max_memory="20MB")
        assert got is out
        assert_close(out, want)
    assert_close(fftconv.convolve(x, k, mode="same", method=method, max_memory="20MB"), expect)


@pytest.mark.parametrize("method", ["direct", "oa", "fft", "auto"])
@pytest.mark.parametrize("view", ["same", "reversed"])
def test_integer_out_overlapping_the_input(method, view):
    # The rounded-into-`out` path (uint8 in, uint8 out) read bands it had written.
    x = np.random.default_rng(3).integers(0, 256, (300, 260)).astype(np.uint8)
    k = np.ones((5, 5)) / 25
    xx = x.copy()
    src, out = (xx, xx) if view == "same" else (xx, xx[::-1, ::-1])
    want = fftconv.convolve(x, k, mode="same", method=method, out=np.empty_like(x))
    assert fftconv.convolve(src, k, mode="same", method=method, out=out) is out
    np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("method", ["direct", "oa", "fft", "separable"])
@pytest.mark.parametrize("shift_rows", [0, 10, -3])
def test_out_a_second_memmap_of_the_input_file(tmp_path, method, shift_rows):
    # Two numpy.memmap of one file are two mappings: numpy.shares_memory says False, so
    # the file's identity and byte ranges tell (same offset, or ranges that overlap).
    rng = np.random.default_rng(4)
    x = rng.standard_normal((120, 100))
    k = np.ones((5, 5)) / 25
    want = fftconv.convolve(x, k, mode="same", method="direct")
    path = tmp_path / "x.dat"
    pad = np.zeros((abs(shift_rows), 100))
    np.concatenate([pad, x, pad]).tofile(path)
    row = x.shape[1] * 8
    a = np.memmap(path, float, "r+", offset=abs(shift_rows) * row, shape=x.shape)
    b = np.memmap(path, float, "r+", offset=(abs(shift_rows) + shift_rows) * row, shape=x.shape)
    assert not np.shares_memory(a, b)
    fftconv.convolve(a, k, mode="same", method=method, out=b)
    assert_close(np.asarray(b), want)
    # A view of a third mapping, as out, is seen too; an array that is not a memmap of
    # that file is not (no temporary needed).
    np.concatenate([pad, x, pad]).tofile(path)
    c = np.memmap(path, float, "r+", offset=abs(shift_rows) * row, shape=x.shape)
    fftconv.convolve(np.asarray(a)[::-1], k, mode="same", method=method, out=c[::-1])
    assert_close(np.asarray(c)[::-1], fftconv.convolve(x[::-1], k, mode="same", method="direct"))
    from fftconv._execute import overlaps

    assert not overlaps(np.memmap(tmp_path / "y.dat", float, "w+", shape=x.shape), a)
    i = max(0, -shift_rows)  # row i of b is row i + shift_rows of a
    assert overlaps(b[i : i + 1], a[i + shift_rows : i + shift_rows + 1])
    assert not overlaps(b[:1], a[-1:])


@pytest.mark.parametrize(
    "boundary, mode",
    [
        ("wrap", "same"),
        ("symmetric", "full"),
        ("mirror", "same"),
        ("nearest", "same"),
        ("fill", "valid"),
    ],
)
def test_unused_complex_fillvalue_leaves_the_result_real(boundary, mode):
    rng = np.random.default_rng(2)
    x, k = rng.standard_normal((9, 8)), rng.standard_normal((3, 2))
    for fv in (1 + 2j, np.nan, np.complex64(3j)):
        got = fftconv.convolve(x, k, mode, boundary, fv)
        assert got.dtype == np.float64
        np.testing.assert_array_equal(got, fftconv.convolve(x, k, mode, boundary))


def test_used_complex_fillvalue_makes_the_result_complex():
    x, k = np.ones((4, 4)), np.ones((2, 2))
    got = fftconv.convolve(x, k, "same", "fill", 1 + 2j)
    assert got.dtype == np.complex128
    assert_close(got, direct_reference(x, k, "same", "fill", 1 + 2j))
