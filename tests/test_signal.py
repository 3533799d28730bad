"""fftconv.signal side by side with scipy.signal on the same inputs."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import scipy.signal as ss
from _ref_dropins import assert_same
from hypothesis import given, settings
from hypothesis import strategies as st

from fftconv import signal as fs

RNG = np.random.default_rng(20261126)

DTYPES = [
    "bool",
    "int8",
    "uint8",
    "int16",
    "uint32",
    "int64",
    "uint64",
    "float16",
    "float32",
    "float64",
    "complex64",
    "complex128",
    "longdouble",
    "clongdouble",
]


def sample(shape, dtype, rng=RNG):
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return rng.random(shape) > 0.5
    if dtype.kind in "iu":
        lo = 0 if dtype.kind == "u" else -9
        return rng.integers(lo, 10, size=shape).astype(dtype)
    x = rng.standard_normal(shape)
    if dtype.kind == "c":
        x = x + 1j * rng.standard_normal(shape)
    return x.astype(dtype)


def pair(name):
    return getattr(fs, name), getattr(ss, name)


# --------------------------------------------------------------------- dtypes


@pytest.mark.parametrize("dt1", DTYPES)
@pytest.mark.parametrize("dt2", ["bool", "int16", "float16", "float32", "complex64", "float64"])
@pytest.mark.parametrize("name", ["convolve", "correlate", "fftconvolve", "oaconvolve"])
def test_dtype_rules_nd(name, dt1, dt2):
    a, b = sample((6, 5), dt1), sample((3, 2), dt2)
    assert_same(*pair(name), a, b)


@pytest.mark.parametrize("dt1", DTYPES + ["object"])
@pytest.mark.parametrize("method", ["auto", "direct", "fft"])
@pytest.mark.parametrize("name", ["convolve", "correlate"])
def test_dtype_rules_1d_methods(name, method, dt1):
    a = sample(9, dt1 if dt1 != "object" else "float64").astype(dt1)
    b = sample(4, dt1 if dt1 != "object" else "float64").astype(dt1)
    if dt1 == "bool" and method == "fft":
        # SciPy casts its FFT result's round-off to bool (1e-17 -> True); fftconv's
        # bool results are exact, i.e. SciPy's direct method's.
        got = getattr(fs, name)(a, b, "same", method="fft")
        np.testing.assert_array_equal(got, getattr(ss, name)(a, b, "same", method="direct"))
        return
    assert_same(*pair(name), a, b, "same", method=method)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("name", ["convolve2d", "correlate2d"])
def test_dtype_rules_2d(name, dt):
    assert_same(*pair(name), sample((5, 6), dt), sample((2, 3), dt))


def test_integer_results_are_exact_beyond_float_precision():
    # Partial sums above 2**53: SciPy's direct method sums in int64 (wrapping).
    a = RNG.integers(-(2**40), 2**40, size=50).astype(np.int64)
    b = RNG.integers(-(2**20), 2**20, size=30).astype(np.int64)
    for method in ("auto", "direct"):
        assert_same(fs.convolve, ss.convolve, a, b, method=method)
    a8 = np.full((5, 5), 100, np.int8)
    assert_same(fs.convolve2d, ss.convolve2d, a8, a8[:3, :3])  # wraps modulo 256


def test_integer_results_exact_on_the_fft_path():
    a = RNG.integers(0, 256, size=(64, 64)).astype(np.uint8)
    k = RNG.integers(0, 16, size=(31, 31)).astype(np.int32)
    got = fs.convolve(a, k, "same", method="fft")
    np.testing.assert_array_equal(got, ss.convolve(a, k, "same", method="direct"))


# ---------------------------------------------------------------- shapes, modes


SHAPE_PAIRS = [
    ((7,), (3,)),
    ((7,), (4,)),
    ((3,), (8,)),
    ((1,), (1,)),
    ((6, 5), (3, 2)),
    ((2, 2), (5, 4)),
    ((5, 6), (4, 4)),
    ((4, 6), (6, 2)),
    ((3, 4, 5), (2, 3, 2)),
]


@pytest.mark.parametrize("mode", ["full", "same", "valid"])
@pytest.mark.parametrize("shapes", SHAPE_PAIRS, ids=str)
@pytest.mark.parametrize("cplx", [False, True])
@pytest.mark.parametrize("name", ["convolve", "correlate", "fftconvolve", "oaconvolve"])
def test_modes_and_swapping(name, shapes, mode, cplx):
    dt = "complex128" if cplx else "float64"
    a, b = sample(shapes[0], dt), sample(shapes[1], dt)
    assert_same(*pair(name), a, b, mode)
    if name in ("convolve", "correlate"):
        for method in ("direct", "fft"):
            assert_same(*pair(name), a, b, mode, method=method)


@pytest.mark.parametrize("mode", ["full", "same", "valid"])
@pytest.mark.parametrize("boundary", ["fill", "pad", "wrap", "circular", "symm", "symmetric"])
@pytest.mark.parametrize("shapes", [((6, 7), (3, 2)), ((2, 3), (5, 5)), ((4, 4), (4, 4))], ids=str)
@pytest.mark.parametrize("name", ["convolve2d", "correlate2d"])
def test_2d_boundaries(name, shapes, boundary, mode):
    for dt, fill in (("float64", 1.5), ("complex128", 2 - 1j), ("int32", 3)):
        a, b = sample(shapes[0], dt), sample(shapes[1], dt)
        assert_same(*pair(name), a, b, mode, boundary, fill)


@pytest.mark.parametrize(
    "fillvalue",
    [
        1.5,
        -2,
        1j,
        1 + 0j,
        [1.0],
        [1j],
        np.array(2.0),
        np.array([2]),
        np.float64(2.5),
        np.complex128(1),
        [],
        [1, 2],
        np.nan,
        np.inf,
        2**70,
        "a",
        None,
        True,
    ],
)
@pytest.mark.parametrize("dt", ["int16", "float32", "complex64"])
def test_2d_fillvalue_rules(dt, fillvalue):
    a, b = sample((4, 5), dt), sample((2, 2), dt)
    assert_same(fs.convolve2d, ss.convolve2d, a, b, "same", "fill", fillvalue)


# ------------------------------------------------------------------------ axes


@pytest.mark.parametrize(
    "shapes, axes",
    [
        (((4, 9), (4, 3)), 1),
        (((4, 9), (1, 3)), -1),
        (((4, 9), (4, 3)), [0, 1]),
        (((2, 7, 3), (1, 4, 3)), [1]),
        (((2, 7, 3), (2, 4, 1)), (1, 0)),
        (((5, 1, 6), (2, 3, 2)), [0, 2]),
        (((5, 6), (5, 6)), None),
        (((1, 6), (3, 6)), [1]),
        (((3, 6), (1, 1)), [0, 1]),
        (((3, 6), (2, 1)), [1]),
    ],
    ids=str,
)
@pytest.mark.parametrize("mode", ["full", "same", "valid"])
@pytest.mark.parametrize("name", ["fftconvolve", "oaconvolve"])
def test_axes(name, shapes, axes, mode):
    a, b = sample(shapes[0], "float64"), sample(shapes[1], "float64")
    assert_same(*pair(name), a, b, mode, axes=axes)


@pytest.mark.parametrize("axes", [[], [[1, 2]], [1.0], [1], [-2], [0, 0], "a", 1.5, [True]])
@pytest.mark.parametrize("name", ["fftconvolve", "oaconvolve"])
def test_invalid_axes(name, axes):
    assert_same(*pair(name), np.ones(4), np.ones(2), axes=axes)


def test_incompatible_broadcast_shapes():
    a, b = np.zeros((5, 6, 2, 1)), np.zeros((5, 6, 3, 1))
    for name in ("fftconvolve", "oaconvolve"):
        assert_same(*pair(name), a, b, axes=[0, 1])


# ----------------------------------------------------------------- edge cases


EDGE_INPUTS = [
    (np.array(3.0), np.array(2.0)),
    (np.array(3), np.array(2 + 1j)),
    (4, 5),
    (np.array([]), np.array([])),
    (np.array([1.0, 2.0]), np.array([])),
    (np.zeros((0, 3)), np.ones((1, 1))),
    (np.ones(3), np.ones((1, 1))),
    ([1.0], 2.0),
    (np.ones((2, 3)), np.ones(2)),
]


@pytest.mark.parametrize(
    "inputs", EDGE_INPUTS, ids=lambda x: repr(np.shape(x[0])) + repr(np.shape(x[1]))
)
@pytest.mark.parametrize("name", ["convolve", "correlate", "fftconvolve", "oaconvolve"])
def test_empty_zero_rank_and_mismatched_ndim(name, inputs):
    assert_same(*pair(name), *inputs)


@pytest.mark.parametrize("inputs", EDGE_INPUTS[:3] + EDGE_INPUTS[5:], ids=str)
@pytest.mark.parametrize("name", ["convolve2d", "correlate2d"])
def test_2d_rejects_non_2d(name, inputs):
    assert_same(*pair(name), *inputs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"mode": "spam"},
        {"mode": "FULL"},
        {"mode": 2},
        {"method": "bacon"},
        {"mode": "ham", "method": "direct"},
        {"mode": "valid", "method": "fft"},
    ],
    ids=str,
)
@pytest.mark.parametrize("name", ["convolve", "correlate"])
def test_bad_mode_and_method(name, kwargs):
    assert_same(*pair(name), np.arange(1.0, 7).reshape(2, 3), np.ones((3, 2)), **kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"mode": "x"},
        {"boundary": "reflect"},
        {"boundary": "mirror"},
        {"boundary": 1},
        {"mode": "valid"},
    ],
)
@pytest.mark.parametrize("name", ["convolve2d", "correlate2d"])
def test_2d_bad_arguments(name, kwargs):
    assert_same(*pair(name), np.ones((2, 3)), np.ones((3, 2)), **kwargs)


@pytest.mark.parametrize("name", ["convolve", "correlate", "fftconvolve", "convolve2d"])
def test_nonfinite_inputs_match_direct_summation(name):
    a = RNG.standard_normal((20, 20))
    a[3, 4], a[10, 11], a[15, 2] = np.nan, np.inf, -np.inf
    k = RNG.standard_normal((5, 5))
    got = getattr(fs, name)(a, k, "same")
    want = (
        ss.convolve2d(a, k, "same")
        if name != "correlate"
        else ss.correlate(a, k, "same", method="direct")
    )
    np.testing.assert_allclose(
        got, want, rtol=0, atol=1e-10 * np.nanmax(np.abs(want[np.isfinite(want)]))
    )


def test_list_inputs_and_python_scalars():
    assert_same(fs.convolve, ss.convolve, [1, 2, 3], [4, 5])
    assert_same(fs.correlate, ss.correlate, [1.0, 2.0, 3.0], [4, 5j], "same")
    assert_same(fs.convolve2d, ss.convolve2d, [[1, 2], [3, 4]], [[1, 1]], "same", "symm")


# --------------------------------------------------------------- choose_conv_method


def test_choose_conv_method():
    pytest.importorskip("numba")  # the compiled engine
    assert fs.choose_conv_method(np.ones(5, bool), np.ones(3, bool)) == "direct"
    big = np.array([2**40], np.int64)
    assert fs.choose_conv_method(big, big) == ss.choose_conv_method(big, big) == "direct"
    assert fs.choose_conv_method(np.ones(16), np.ones(3)) == "direct"
    k31 = np.random.default_rng(3).standard_normal((31, 31))  # not separable
    assert fs.choose_conv_method(np.ones((256, 256)), k31) == "fft"
    # a separable kernel runs as 1-D passes: spatial, 'direct' in SciPy's terms
    assert fs.choose_conv_method(np.ones((256, 256)), np.ones((31, 31))) == "direct"
    with pytest.raises(ValueError):
        fs.choose_conv_method(np.ones(5), np.ones(3), mode="spam")
    method, times = fs.choose_conv_method(np.ones(64), np.ones(8), measure=True)
    assert method in ("fft", "direct") and set(times) == {"fft", "direct"}
    assert method == min(times, key=times.get)
    for m in ("direct", "fft"):
        assert_same(fs.convolve, ss.convolve, np.ones((8, 8)), np.ones((3, 3)), method=m)


def test_choose_conv_method_matches_what_auto_runs():
    a, k = RNG.standard_normal((128, 128)), RNG.standard_normal((21, 21))
    m = fs.choose_conv_method(a, k, "same")
    np.testing.assert_allclose(
        fs.convolve(a, k, "same", method=m), fs.convolve(a, k, "same"), rtol=0, atol=1e-10 * 50
    )


def test_correlate_same_differs_from_correlate2d_for_even_kernels():
    # SciPy's own quirk, kept: correlate centres as convolve does.
    a, k = RNG.standard_normal((7, 6)), RNG.standard_normal((4, 2))
    assert_same(fs.correlate, ss.correlate, a, k, "same")
    assert_same(fs.correlate2d, ss.correlate2d, a, k, "same")
    assert not np.allclose(fs.correlate(a, k, "same"), fs.correlate2d(a, k, "same"))


def _layouts():
    a, k = RNG.standard_normal((12, 10)), RNG.standard_normal((3, 4))
    ro = a.copy()
    ro.flags.writeable = False
    return {
        "big-endian": (a.astype(">f8"), k.astype(">f8")),
        "fortran": (np.asfortranarray(a), np.asfortranarray(k)),
        "strided": (a[::2, ::-1], k[:, ::2]),
        "read-only": (ro, k),
        "int-big-endian": ((a * 9).astype(">i4"), (k * 9).astype(">i2")),
    }


@pytest.mark.parametrize("layout", list(_layouts()))
@pytest.mark.parametrize(
    "name", ["convolve", "correlate", "fftconvolve", "oaconvolve", "convolve2d", "correlate2d"]
)
def test_memory_layouts_and_byte_order(name, layout):
    a, k = _layouts()[layout]
    for mode in ("full", "same", "valid"):
        assert_same(*pair(name), a, k, mode)


@st.composite
def _shape_pairs(draw):
    ndim = draw(st.integers(1, 3))
    s1 = tuple(draw(st.integers(1, 9)) for _ in range(ndim))
    s2 = tuple(draw(st.integers(1, 9)) for _ in range(ndim))
    return s1, s2


@settings(max_examples=60, deadline=None)
@given(
    shapes=_shape_pairs(),
    mode=st.sampled_from(["full", "same", "valid"]),
    name=st.sampled_from(["convolve", "correlate", "fftconvolve", "oaconvolve"]),
    method=st.sampled_from(["auto", "direct", "fft"]),
    dtype=st.sampled_from(["float64", "complex128", "int32", "float32"]),
)
def test_random_shapes(shapes, mode, name, method, dtype):
    rng = np.random.default_rng(zlib.crc32(repr((shapes, mode, name, dtype)).encode()))
    a, b = sample(shapes[0], dtype, rng), sample(shapes[1], dtype, rng)
    kwargs = {"method": method} if name in ("convolve", "correlate") else {}
    assert_same(*pair(name), a, b, mode, **kwargs)


@pytest.mark.parametrize("boundary", ["wrap", "symm", "circular", "symmetric"])
@pytest.mark.parametrize("fillvalue", [1 + 2j, [1, 2], [], np.array([1.5]), np.inf, "x"])
def test_fillvalue_is_ignored_unless_boundary_fill(boundary, fillvalue):
    # SciPy reads fillvalue only for boundary='fill'.
    a = np.arange(12, dtype="int16").reshape(3, 4)
    k = np.array([[1, 2], [3, 4]], "int16")
    for func in ("convolve2d", "correlate2d"):
        got = getattr(fs, func)(a, k, "same", boundary, fillvalue)
        ref = getattr(ss, func)(a, k, "same", boundary)
        assert got.dtype == ref.dtype
        np.testing.assert_array_equal(got, ref)


def test_empty_image_with_wrap_or_symm_is_an_error_not_a_crash():
    # SciPy's C code dies of SIGFPE here; fftconv must not hand it on. A subprocess
    # keeps a regression from killing the test run.
    import subprocess
    import sys

    code = """
import itertools, numpy as np
from fftconv import signal
for func, b, (s1, s2) in itertools.product(
        ["convolve2d", "correlate2d"], ["wrap", "symm"],
        [((0, 1), (2, 1)), ((0, 3), (3, 3)), ((3, 0), (2, 2)), ((0, 0), (2, 2))]):
    try:
        getattr(signal, func)(np.zeros(s1, "int16"), np.full(s2, 0.27), "full", b)
    except ValueError as e:
        print("in1 has none" in str(e))
"""
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert r.returncode == 0, r.stderr[-1000:]
    assert r.stdout.split() == ["True"] * 16


@pytest.mark.parametrize("s1, s2", [((0, 1), (2, 1)), ((3, 0), (2, 2)), ((2, 2), (1, 0))])
@pytest.mark.parametrize("mode", ["same", "valid"])
def test_empty_inputs_like_scipy_where_scipy_survives(s1, s2, mode):
    a, k = np.zeros(s1, "int16"), np.full(s2, 0.27)
    for boundary in ("fill", "wrap", "symm"):
        try:
            ref = ss.convolve2d(a, k, mode, boundary)
        except ValueError:
            with pytest.raises(ValueError):
                fs.convolve2d(a, k, mode, boundary)
            continue
        got = fs.convolve2d(a, k, mode, boundary)
        assert got.shape == ref.shape and got.dtype == ref.dtype
