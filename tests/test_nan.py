"""nan_policy= of convolve / correlate against float64 direct normalised convolution."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fftconv
from reference import normalized_reference

BOUNDARIES = ["fill", "wrap", "symmetric", "mirror", "nearest"]
TOL = {np.float32: 2e-5, np.float64: 1e-10}


def _holes(rng, shape, dtype=np.float64):
    x = rng.standard_normal(shape).astype(dtype)
    x[rng.random(shape) < 0.15] = np.nan
    x[0, :3] = np.nan  # at the edges and a corner
    x[-1, -1] = np.nan
    x[:, 0][::3] = np.nan
    return x


def _check(got, want, dtype):
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    fin = np.isfinite(want)
    scale = max(1.0, np.abs(want[fin]).max(initial=0))
    np.testing.assert_allclose(got[fin], want[fin], rtol=0, atol=TOL[dtype] * scale)


@pytest.mark.parametrize("method", ["direct", "fft", "oa", "separable", "auto"])
@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_interpolate_every_method_and_boundary(rng, method, boundary, dtype):
    x = _holes(rng, (37, 41), dtype)
    g = np.exp(-0.5 * (np.arange(-3, 4) / 1.5) ** 2)
    k = np.outer(g, g[:5] + 0.1).astype(dtype)  # separable, asymmetric, positive
    for mode in ("same", "full", "valid"):
        got, wts = fftconv.convolve(
            x, k, mode, boundary, nan_policy="interpolate", method=method, return_weights=True
        )
        assert got.dtype == dtype and wts.dtype == dtype
        want, want_w = normalized_reference(x, k, mode, boundary)
        _check(got, want, dtype)
        np.testing.assert_allclose(wts, want_w, atol=TOL[dtype])


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_correlate_and_fillvalue(rng, boundary):
    x = _holes(rng, (20, 23))
    k = rng.random((4, 5)) + 0.2
    got = fftconv.correlate(x, k, "same", boundary, 2.5, nan_policy="interpolate")
    want, _ = normalized_reference(x, k, "same", boundary, 2.5, correlate=True)
    _check(got, want, np.float64)


def test_fill_nan_boundary_is_missing(rng):
    x = rng.random((15, 16))
    k = np.ones((3, 3))
    got, w = fftconv.convolve(
        x, k, "same", "fill", np.nan, nan_policy="interpolate", return_weights=True
    )
    assert w[0, 0] == pytest.approx(4 / 9) and w[5, 5] == pytest.approx(1)
    assert got[0, 0] == pytest.approx(x[:2, :2].mean() * 9)


def test_against_astropy(rng):
    conv = pytest.importorskip("astropy.convolution")
    x = _holes(rng, (40, 44))
    k = np.outer(np.hanning(7)[1:-1], np.hanning(9)[1:-1])  # symmetric, odd
    for ours, theirs in (("fill", "fill"), ("nearest", "extend"), ("wrap", "wrap")):
        got = fftconv.convolve(x, k, "same", ours, nan_policy="interpolate")
        want = conv.convolve(
            x, k, boundary=theirs, nan_treatment="interpolate", normalize_kernel=False
        )
        fin = np.isfinite(got)
        np.testing.assert_allclose(got[fin], want[fin], atol=1e-10)
        fft = conv.convolve_fft(
            x,
            k,
            boundary=theirs if theirs != "extend" else "fill",
            nan_treatment="interpolate",
            normalize_kernel=False,
        )
        if theirs != "extend":
            np.testing.assert_allclose(got[fin], fft[fin], atol=1e-8)


def test_all_missing_window_is_nan_and_tiles(rng, monkeypatch):
    from fftconv import tiles

    calls = []
    run_tiled = tiles.run_tiled
    monkeypatch.setattr(tiles, "run_tiled", lambda *a, **k: calls.append(1) or run_tiled(*a, **k))
    x = rng.random((600, 610)).astype(np.float32)
    x[100:120, 200:230] = np.nan  # larger than the kernel: a hole with no valid sample
    x[::97, ::89] = np.nan
    k = np.ones((5, 5), np.float32)
    whole = fftconv.convolve(x, k, "same", "symmetric", nan_policy="interpolate")
    tiled = fftconv.convolve(x, k, "same", "symmetric", nan_policy="interpolate", max_memory="20MB")
    assert calls  # data and mask stacked: one tiled engine call
    assert np.isnan(whole[105:115, 205:225]).all() and np.isfinite(whole[:90]).all()
    _check(tiled, whole, np.float32)


def test_mask_equals_nan_and_fill(rng):
    x = rng.random((18, 19))
    m = rng.random((18, 19)) > 0.2
    k = rng.random((3, 4)) + 0.1
    holes = np.where(m, x, np.nan)
    a = fftconv.convolve(x, k, "same", "mirror", nan_policy="interpolate", mask=m)
    b = fftconv.convolve(holes, k, "same", "mirror", nan_policy="interpolate")
    np.testing.assert_allclose(a, b, atol=1e-12)
    f = fftconv.convolve(holes, k, "same", "mirror", 0.5, nan_policy="fill")
    g = fftconv.convolve(x, k, "same", "mirror", 0.5, nan_policy="fill", mask=m)
    np.testing.assert_allclose(
        f, fftconv.convolve(np.where(m, x, 0.5), k, "same", "mirror"), atol=1e-12
    )
    np.testing.assert_allclose(g, f, atol=1e-12)
    _, w = fftconv.convolve(holes, k, "same", "mirror", nan_policy="fill", return_weights=True)
    np.testing.assert_allclose(w, normalized_reference(holes, k, "same", "mirror")[1], atol=1e-12)
    # no NaN: 'interpolate' is the plain convolution
    np.testing.assert_allclose(
        fftconv.convolve(x, k, nan_policy="interpolate"), fftconv.convolve(x, k), atol=1e-12
    )


def test_channels(rng):
    x = _holes(rng, (12, 13, 3))
    k = rng.random((3, 3, 3)) + 0.1
    got = fftconv.convolve(x, k, "same", "nearest", channel_axis=-1, nan_policy="interpolate")
    for c in range(3):
        want, _ = normalized_reference(x[..., c], k[..., c], "same", "nearest")
        _check(got[..., c], want, np.float64)


def test_errors_and_inputs_untouched(rng):
    x = _holes(rng, (10, 10))
    before = x.copy()
    with pytest.raises(ValueError, match="did you mean 'interpolate'"):
        fftconv.convolve(x, np.ones((3, 3)), nan_policy="interpolat")
    with pytest.raises(ValueError, match="sums to"):
        fftconv.convolve(x, np.array([[1.0, -1.0]]), nan_policy="interpolate")
    with pytest.raises(ValueError, match="needs nan_policy='interpolate'"):
        fftconv.convolve(x, np.ones((3, 3)), mask=np.ones((10, 10), bool))
    with pytest.raises(ValueError, match="mask must have in1's shape"):
        fftconv.convolve(x, np.ones((3, 3)), nan_policy="fill", mask=np.ones((9, 10), bool))
    with pytest.raises(TypeError, match="real kernel"):
        fftconv.convolve(x, np.ones((3, 3)) * 1j, nan_policy="interpolate")
    out = np.empty((10, 10))
    res = fftconv.convolve(x, np.ones((3, 3)), "same", nan_policy="interpolate", out=out)
    assert res is out
    np.testing.assert_array_equal(x, before)


@settings(max_examples=25, deadline=None)
@given(
    h=st.integers(1, 12),
    w=st.integers(1, 12),
    kh=st.integers(1, 5),
    kw=st.integers(1, 5),
    boundary=st.sampled_from(BOUNDARIES),
    mode=st.sampled_from(["full", "same", "valid"]),
    seed=st.integers(0, 2**16),
)
def test_hypothesis_shapes(h, w, kh, kw, boundary, mode, seed):
    r = np.random.default_rng(seed)
    x = r.standard_normal((h, w))
    x[r.random((h, w)) < 0.3] = np.nan
    k = r.random((kh, kw)) + 0.1
    if mode == "valid" and (h - kh) * (w - kw) < 0:
        with pytest.raises(ValueError, match="at least as large"):
            fftconv.convolve(x, k, mode, boundary, nan_policy="interpolate")
        return
    got = fftconv.convolve(x, k, mode, boundary, nan_policy="interpolate")
    want, _ = normalized_reference(x, k, mode, boundary)
    _check(got, want, np.float64)


@pytest.mark.parametrize("boundary", ["fill", "mirror"])
def test_axes_and_batches(rng, boundary):
    x = _holes(rng, (9, 30))
    k = np.array([[1.0, 2.0, 0.5, 0.25]])
    got = fftconv.convolve(x, k, "same", boundary, axes=1, nan_policy="interpolate")
    for r in range(9):
        want, _ = normalized_reference(x[r], k[0], "same", boundary)
        _check(got[r], want, np.float64)
    # the other axis, with a kernel that broadcasts on the batch axis
    got0 = fftconv.convolve(x.T, k.T, "full", boundary, axes=0, nan_policy="interpolate")
    for r in range(9):
        want, _ = normalized_reference(x[r], k[0], "full", boundary)
        _check(got0[:, r], want, np.float64)


@pytest.mark.parametrize("method", ["direct", "fft", "oa", "separable", "auto"])
@pytest.mark.parametrize("boundary", ["fill", "symmetric", "wrap"])
def test_convolver_nan_policy(rng, method, boundary):
    """A Convolver with nan_policy gives the function's results on every call, keeps
    the plans of its engine calls (no new ones on the second image) and takes mask=
    and return_weights= per call."""
    g = np.exp(-0.5 * (np.arange(-3, 4) / 1.5) ** 2)
    k = np.outer(g, g[:5] + 0.1).astype(np.float32)
    conv = fftconv.Convolver(
        k, "same", boundary, 1.5, method=method, correlate=True, nan_policy="interpolate"
    )
    for seed in range(2):
        x = _holes(np.random.default_rng(seed), (37, 41), np.float32)
        got, wts = conv(x, return_weights=True)
        want, want_w = normalized_reference(x, k, "same", boundary, 1.5, correlate=True)
        _check(got, want, np.float32)
        np.testing.assert_allclose(wts, want_w, atol=TOL[np.float32])
        if seed == 0:
            kept = {key: len(c._prepared) for key, c in conv._policy_calls.items()}
            assert kept and len(conv._prepared) <= 1
    assert {key: len(c._prepared) for key, c in conv._policy_calls.items()} == kept
    valid = np.random.default_rng(5).random((37, 41)) > 0.2
    x = np.random.default_rng(6).standard_normal((37, 41)).astype(np.float32)
    want, _ = normalized_reference(x, k, "same", boundary, 1.5, valid=valid, correlate=True)
    _check(conv(x, mask=valid), want, np.float32)
    filled = fftconv.Convolver(k, "same", boundary, 1.5, method=method, nan_policy="fill")
    xn = _holes(rng, (37, 41), np.float32)
    np.testing.assert_array_equal(
        filled(xn), fftconv.convolve(xn, k, "same", boundary, 1.5, method=method, nan_policy="fill")
    )
    with pytest.raises(ValueError, match="nan_policy"):
        fftconv.Convolver(k, nan_policy="ignore")
    with pytest.raises(ValueError, match="mask="):
        fftconv.Convolver(k)(x, mask=valid)
