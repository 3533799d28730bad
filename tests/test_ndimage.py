"""fftconv.ndimage side by side with scipy.ndimage on the same inputs."""

from __future__ import annotations

import itertools
import zlib

import numpy as np
import pytest
import scipy.ndimage as sn
from _ref_dropins import assert_same
from hypothesis import given, settings
from hypothesis import strategies as st

from fftconv import ndimage as fn

RNG = np.random.default_rng(1126)
MODES = [
    "reflect",
    "grid-mirror",
    "mirror",
    "nearest",
    "wrap",
    "grid-wrap",
    "constant",
    "grid-constant",
]


def pair(name):
    return getattr(fn, name), getattr(sn, name)


def all_origins(kshape):
    return list(itertools.product(*[range(-(n // 2), (n - 1) // 2 + 1) for n in kshape]))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "shape, kshape",
    [
        ((9,), (3,)),
        ((9,), (4,)),
        ((3,), (7,)),
        ((6, 7), (3, 2)),
        ((5, 4), (4, 5)),
        ((4, 3, 5), (2, 3, 3)),
    ],
    ids=str,
)
@pytest.mark.parametrize("name", ["correlate", "convolve"])
def test_every_mode_and_origin(name, shape, kshape, mode):
    x = RNG.standard_normal(shape)
    w = RNG.standard_normal(kshape)
    for origin in all_origins(kshape):
        assert_same(*pair(name), x, w, mode=mode, cval=1.25, origin=origin)
    assert_same(*pair(name), x, w, mode=mode, cval=-2.0, origin=0)


@pytest.mark.parametrize("origin", [2, -3, (0, 2), (-2, 0), (1, 1, 1)])
@pytest.mark.parametrize("name", ["correlate", "convolve"])
def test_invalid_origins(name, origin):
    assert_same(*pair(name), np.ones((5, 5)), np.ones((3, 4)), origin=origin)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"mode": "foo"},
        {"mode": ["reflect", "reflect"]},
        {"mode": "REFLECT"},
        {"cval": 1j},
        {"axes": (0, 0)},
        {"axes": 3},
        {"axes": 1.5},
        {"output": np.zeros((2, 2))},
        {"output": "f4"},
        {"output": "c8"},
        {"output": np.float16},
        {"output": "U3"},
        {"output": np.longdouble},
    ],
    ids=str,
)
@pytest.mark.parametrize("name", ["correlate", "convolve"])
def test_rejected_arguments(name, kwargs):
    assert_same(*pair(name), np.arange(12.0).reshape(3, 4), np.ones((2, 3)), **kwargs)


@pytest.mark.parametrize(
    "dt_in",
    [
        "bool",
        "int8",
        "uint8",
        "int16",
        "uint16",
        "int32",
        "int64",
        "uint64",
        "float16",
        "float32",
        "float64",
        "longdouble",
        "complex64",
        "complex128",
    ],
)
@pytest.mark.parametrize("name", ["correlate", "convolve"])
def test_input_dtypes(name, dt_in):
    x = RNG.standard_normal((6, 7)) * 20
    x = (np.abs(x) if np.dtype(dt_in).kind == "u" else x).astype(dt_in)
    w = RNG.standard_normal((3, 3)) / 3
    assert_same(*pair(name), x, w)
    assert_same(*pair(name), x, w.astype(np.complex64) * (1 + 1j))


@pytest.mark.parametrize(
    "out",
    [
        "int8",
        "uint8",
        "int32",
        "uint32",
        "int64",
        "bool",
        "float32",
        "float64",
        "complex64",
        "complex128",
        "float16",
    ],
)
@pytest.mark.parametrize("name", ["correlate", "convolve"])
def test_output_dtype_and_integer_rounding(name, out):
    x = RNG.standard_normal((8, 9)) * 50
    w = np.array([[0.3, -0.7, 0.25], [0.1, 0.5, -0.2]])
    assert_same(*pair(name), x, w, output=np.dtype(out), mode="nearest")
    assert_same(*pair(name), x, w, output=np.dtype(out).type)
    assert_same(*pair(name), x, w, output=out)


@pytest.mark.parametrize("name", ["correlate", "convolve"])
def test_output_array_is_written_and_returned(name):
    x = RNG.standard_normal((10, 11))
    w = RNG.standard_normal((4, 3))
    for dt in (np.float32, np.int16, np.uint8):
        ours, theirs = np.zeros(x.shape, dt), np.zeros(x.shape, dt)
        r1 = getattr(fn, name)(x * 30, w, output=ours)
        r2 = getattr(sn, name)(x * 30, w, output=theirs)
        assert r1 is ours and r2 is theirs
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-5 * np.abs(theirs).max())
    # output may be the input itself
    a, b = x.copy(), x.copy()
    getattr(fn, name)(a, w, output=a)
    getattr(sn, name)(b, w, output=b)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-10 * np.abs(b).max())


@pytest.mark.parametrize("name", ["correlate", "convolve"])
def test_exact_integer_results_on_the_fft_path(name):
    # A kernel large enough for the FFT: the integer result must not truncate down.
    x = RNG.integers(0, 256, size=(96, 96)).astype(np.uint8)
    w = RNG.integers(-3, 4, size=(25, 25)).astype(np.float64)
    assert_same(*pair(name), x, w, output=np.int32)
    assert_same(*pair(name), x.astype(np.int32), w, mode="constant", cval=7)


@pytest.mark.parametrize(
    "axes, wshape, origin",
    [
        ((0,), (3,), 0),
        ((-1,), (4,), 1),
        ((0, 2), (3, 2), (1, -1)),
        ((2, 0), (2, 3), (0, 1)),
        (1, (5,), -2),
        (None, (2, 3, 2), 0),
        ((0, 1), (1, 1), 0),
    ],
    ids=str,
)
@pytest.mark.parametrize("name", ["correlate", "convolve"])
def test_axes(name, axes, wshape, origin):
    x = RNG.standard_normal((5, 6, 7))
    w = RNG.standard_normal(wshape)
    for mode in ("reflect", "wrap", "constant"):
        assert_same(*pair(name), x, w, mode=mode, origin=origin, axes=axes, cval=0.5)
    assert_same(*pair(name), x, RNG.standard_normal((3, 3)), axes=(0,))  # ndim mismatch


@pytest.mark.parametrize(
    "x, w",
    [
        (np.array(3.0), np.array(2.0)),
        (np.array(3), np.array(2.5)),
        (np.zeros((0, 4)), np.ones((2, 2))),
        (np.ones(5), np.ones(0)),
        (np.ones(5), np.ones((2, 2))),
        (np.ones((3, 4)), np.ones(3)),
        ([1, 2, 3, 4], [1, 1]),
        (np.ones(4), np.array([1.0, np.nan, 1e-17])),
    ],
    ids=str,
)
@pytest.mark.parametrize("name", ["correlate", "convolve"])
def test_edge_cases(name, x, w):
    assert_same(*pair(name), x, w)


@pytest.mark.parametrize("mode", ["constant", "reflect", "wrap"])
@pytest.mark.parametrize("name", ["correlate", "convolve"])
def test_complex_inputs_and_cval(name, mode):
    x = RNG.standard_normal((6, 5)) + 1j * RNG.standard_normal((6, 5))
    w = RNG.standard_normal((3, 2)) + 1j * RNG.standard_normal((3, 2))
    assert_same(*pair(name), x, w, mode=mode, cval=1 - 2j)
    assert_same(*pair(name), x.real, w, mode=mode, cval=1.5)
    assert_same(*pair(name), x.real, w, mode=mode, cval=1 - 2j)  # complex cval, real input
    assert_same(*pair(name), x, w.real, mode=mode, cval=0.5 + 1j, origin=(1, 0))
    assert_same(*pair(name), x.astype(np.complex64), w, output=np.float64)  # promoted, warns


def test_large_kernel_uses_engine_and_matches():
    x = RNG.standard_normal((200, 180))
    w = RNG.standard_normal((33, 30))
    for mode in ("reflect", "mirror", "nearest", "wrap", "constant"):
        assert_same(fn.correlate, sn.correlate, x, w, mode=mode, origin=(3, -4))
        assert_same(fn.convolve, sn.convolve, x.astype(np.float32), w, mode=mode)


@pytest.mark.parametrize("dt", [">f8", ">i4", ">f4", ">c16", "<u2"])
@pytest.mark.parametrize("name", ["correlate", "convolve"])
def test_byte_order_and_layouts(name, dt):
    x = (RNG.standard_normal((12, 10)) * 9).astype(dt)
    w = RNG.standard_normal((3, 4))
    assert_same(*pair(name), x, w)
    assert_same(*pair(name), x, w.astype(">f8"), output=np.dtype(">f4"))
    assert_same(*pair(name), np.asfortranarray(x), w, mode="wrap")
    assert_same(*pair(name), x[::2, ::-1], w[:, ::2], mode="mirror")


@st.composite
def _cases(draw):
    ndim = draw(st.integers(1, 3))
    shape = tuple(draw(st.integers(1, 8)) for _ in range(ndim))
    kshape = tuple(draw(st.integers(1, 6)) for _ in range(ndim))
    origin = tuple(draw(st.integers(-(n // 2), (n - 1) // 2)) for n in kshape)
    return shape, kshape, origin


@settings(max_examples=60, deadline=None)
@given(
    case=_cases(),
    mode=st.sampled_from(MODES),
    name=st.sampled_from(["correlate", "convolve"]),
    out=st.sampled_from([None, np.float32, np.int16]),
)
def test_random_shapes_modes_origins(case, mode, name, out):
    shape, kshape, origin = case
    rng = np.random.default_rng(zlib.crc32(repr(case).encode()))
    x = rng.standard_normal(shape) * 10
    w = rng.standard_normal(kshape)
    assert_same(*pair(name), x, w, output=out, mode=mode, origin=origin, cval=0.75)


def test_tiny_weights_are_dropped_not_zeroed():
    # SciPy skips weights with |w| <= DBL_EPSILON: a NaN or inf only they reach does
    # not spread (0 x inf would be NaN).
    assert fn.correlate(np.array([[np.inf]]), np.array([[1e-17]]))[0, 0] == 0
    np.testing.assert_array_equal(
        fn.convolve(np.array([np.nan, -0.5]), np.array([1.0, 0.0])), [-0.5, -0.5]
    )


@pytest.mark.parametrize("seed", range(6))
def test_non_finite_inputs_with_tiny_weights_against_scipy(seed):
    rng = np.random.default_rng(seed)
    for _ in range(40):
        shape = tuple(rng.integers(1, 9, size=2))
        wshape = tuple(rng.integers(1, 5, size=2))
        x = rng.standard_normal(shape)
        sel = rng.random(shape) < 0.2
        x[sel] = rng.choice([np.nan, np.inf, -np.inf], size=int(sel.sum()))
        w = rng.standard_normal(wshape)
        w[rng.random(wshape) < 0.4] = rng.choice([0.0, 1e-17, -1e-18, np.nan])
        mode = str(rng.choice(["reflect", "constant", "nearest", "mirror", "wrap"]))
        cval = float(rng.choice([0.0, 1.5, np.nan, np.inf, -np.inf]))
        for name in ("convolve", "correlate"):
            ref = getattr(sn, name)(x, w, mode=mode, cval=cval)
            got = getattr(fn, name)(x, w, mode=mode, cval=cval)
            np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
            np.testing.assert_array_equal(np.isinf(got), np.isinf(ref))
            fin = np.isfinite(ref)
            np.testing.assert_allclose(got[fin], ref[fin], rtol=1e-12, atol=1e-12)
            np.testing.assert_array_equal(got[~fin & ~np.isnan(ref)], ref[~fin & ~np.isnan(ref)])


def _same_parts(got, ref):
    """Equal as SciPy: the same NaN and inf in each part, the finite values close."""
    for part in (np.real, np.imag):
        g, r = part(got), part(ref)
        np.testing.assert_array_equal(np.isnan(g), np.isnan(r))
        np.testing.assert_array_equal(g[np.isinf(r)], r[np.isinf(r)])
        fin = np.isfinite(r)
        np.testing.assert_allclose(g[fin], r[fin], rtol=1e-12, atol=1e-12)


def test_complex_non_finite_stays_in_its_part():
    # SciPy filters the real and imaginary parts apart: a NaN imaginary part leaves the
    # real part alone, and 1j * inf is not NaN + inf j.
    x = np.array([1 + 1j, complex(2, np.nan), 3 + 0j, complex(np.inf, 1)])
    got = fn.correlate(x, np.array([1.0, 2.0]))
    np.testing.assert_array_equal(got.real, [3, 5, 8, np.inf])
    np.testing.assert_array_equal(got.imag, [3, np.nan, np.nan, 2])
    # The inf reaches the second output only through the dropped tiny weight.
    got = fn.convolve(np.array([np.inf, 1.0]), np.array([1e-17j, 1 + 1j]))
    np.testing.assert_array_equal(got, [complex(np.inf, np.inf), 1 + 1j])


@pytest.mark.parametrize("seed", range(3))
def test_complex_non_finite_inputs_with_tiny_weights_against_scipy(seed):
    rng = np.random.default_rng(seed)
    specials = np.array([np.nan, np.inf, -np.inf, complex(np.inf, 1), complex(1, np.nan)])
    tinies = np.array([0, 1e-17, 1 + 1e-18j, -1e-17j, np.nan, 2e-16 + 2e-16j])
    for _ in range(12):
        shape = tuple(rng.integers(1, 9, size=2))
        wshape = tuple(rng.integers(1, 5, size=2))
        x = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
        sel = rng.random(shape) < 0.2
        x[sel] = rng.choice(specials, size=int(sel.sum()))
        w = rng.standard_normal(wshape) + 1j * rng.standard_normal(wshape)
        sel = rng.random(wshape) < 0.4
        w[sel] = rng.choice(tinies, size=int(sel.sum()))
        mode = str(rng.choice(["reflect", "constant", "nearest", "mirror", "wrap"]))
        cases = [(x, w, 1 - 2j), (x, w.real.copy(), complex(np.nan, 1)), (x.real.copy(), w, 1.5)]
        for xin, win, cval in cases:
            for name in ("convolve", "correlate"):
                ref = getattr(sn, name)(xin, win, mode=mode, cval=cval)
                _same_parts(getattr(fn, name)(xin, win, mode=mode, cval=cval), ref)
