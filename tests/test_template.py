"""match_template and find_peaks against scikit-image and brute-force references."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fftconv
from fftconv import template as tm
from reference import peaks_reference, zncc_reference


def _skimage():
    return pytest.importorskip("skimage.feature")


PAD_MODES = [
    "constant",
    "edge",
    "reflect",
    "symmetric",
    "wrap",
    "mean",
    "median",
    "maximum",
    "minimum",
    "linear_ramp",
]
TOL = {np.float32: 1e-5, np.float64: 1e-10}


def _ref(image, template, weights=None):
    w = None if weights is None else np.asarray(weights)[..., None]
    return zncc_reference(np.asarray(image)[..., None], np.asarray(template)[..., None], w)


@pytest.fixture(params=["compiled", "numpy"])
def path(request, monkeypatch):
    """Both window-sum paths: compiled running sums and numpy cumulative sums."""
    if request.param == "numpy":
        monkeypatch.setattr(tm, "_compiled", lambda: None)
    elif tm._compiled() is None:
        pytest.skip("numba not installed")
    return request.param


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "shapes", [((40, 50), (7, 6)), ((30, 30), (16, 20)), ((21, 20), (4, 5)), ((25, 9), (3, 9))]
)
@pytest.mark.parametrize("pad_input", [False, True])
def test_equals_skimage_random(path, rng, dtype, shapes, pad_input):
    img = rng.random(shapes[0]).astype(dtype)
    t = rng.random(shapes[1]).astype(dtype)
    for mode in PAD_MODES if pad_input else ["constant"]:
        got = fftconv.match_template(img, t, pad_input, mode, constant_values=0.3)
        want = _skimage().match_template(img, t, pad_input, mode, constant_values=0.3)
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=0, atol=TOL[dtype], err_msg=mode)


@pytest.mark.parametrize("method", ["direct", "fft", "oa"])
def test_methods_and_reference(rng, method):
    img = rng.standard_normal((48, 45))
    t = img[10:19, 20:31] + 0.1 * rng.standard_normal((9, 11))
    got = fftconv.match_template(img, t, method=method)
    np.testing.assert_allclose(got, _ref(img, t), atol=1e-10)
    assert np.unravel_index(np.argmax(got), got.shape) == (10, 20)


def test_3d_and_1d(rng):
    img = rng.random((12, 11, 10))
    t = rng.random((4, 3, 5))
    np.testing.assert_allclose(
        fftconv.match_template(img, t), _skimage().match_template(img, t), atol=1e-10
    )
    np.testing.assert_allclose(
        fftconv.match_template(img, t, pad_input=True, mode="wrap"),
        _skimage().match_template(img, t, pad_input=True, mode="wrap"),
        atol=1e-10,
    )
    x, k = rng.random(50), rng.random(7)
    np.testing.assert_allclose(fftconv.match_template(x, k), _ref(x, k), atol=1e-10)


def test_template_larger_than_half(path, rng):
    img = rng.random((33, 30)).astype(np.float32)
    t = rng.random((25, 28)).astype(np.float32)
    for pad in (False, True):
        got = fftconv.match_template(img, t, pad_input=pad)
        np.testing.assert_allclose(got, _skimage().match_template(img, t, pad_input=pad), atol=1e-5)


def test_flat_regions_score_zero(path, rng):
    img = rng.random((60, 60))
    img[10:40, 5:35] = 0.25
    t = rng.random((8, 8))
    got = fftconv.match_template(img, t)
    want = _ref(img, t)
    np.testing.assert_allclose(got, want, atol=1e-10)
    assert np.all(got[10:33, 5:28] == 0)
    # a flat template scores 0 everywhere (OpenCV gives 1, scikit-image noise)
    assert np.all(fftconv.match_template(img, np.full((5, 5), 3.0)) == 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("offset", [1e3, 1e7])
def test_near_flat(path, rng, dtype, offset):
    """Offset data: scikit-image leaves [-1, 1] here (its issue #1712)."""
    noise = 1.0 if offset > 1e4 and dtype == np.float32 else 1e-2
    img = (offset + noise * rng.standard_normal((64, 70))).astype(dtype)
    img[20:50, 30:60] = dtype(offset)
    t = (offset + noise * rng.standard_normal((9, 7))).astype(dtype)
    got = fftconv.match_template(img, t)
    assert got.dtype == dtype
    assert np.all(np.abs(got) <= 1)
    assert np.all(got[20:42, 30:54] == 0)
    np.testing.assert_allclose(got, _ref(img.astype(np.float64), t), atol=TOL[dtype])
    flat_t = np.full((6, 6), offset, dtype)
    assert np.all(fftconv.match_template(img, flat_t) == 0)


def test_float32_close_to_float64(rng):
    img = rng.random((128, 120)).astype(np.float32) * 100 + 50
    t = img[30:62, 40:70].copy()
    got = fftconv.match_template(img, t)
    assert got.dtype == np.float32
    ref = fftconv.match_template(img.astype(np.float64), t.astype(np.float64))
    assert np.abs(got - ref).max() <= 1e-5


def test_channels_sum_like_opencv(rng):
    cv2 = pytest.importorskip("cv2")
    img = rng.random((40, 50, 3)).astype(np.float32)
    t = img[5:16, 7:20].copy() + 0.05 * rng.random((11, 13, 3)).astype(np.float32)
    got = fftconv.match_template(img, t, channel_axis=-1)
    want = cv2.matchTemplate(img, t, cv2.TM_CCOEFF_NORMED)
    np.testing.assert_allclose(got, want, atol=1e-4)
    np.testing.assert_allclose(got, zncc_reference(img, t), atol=1e-5)
    # channels first, and one template for all channels
    first = fftconv.match_template(np.moveaxis(img, -1, 0), np.moveaxis(t, -1, 0), channel_axis=0)
    np.testing.assert_allclose(first, got, atol=1e-6)
    v = rng.random((40, 50)) > 0.1
    w = rng.random((11, 13)) > 0.2
    masked = fftconv.match_template(img, t, channel_axis=-1, mask=w, image_mask=v)
    want = zncc_reference(img, t, np.repeat(w[..., None], 3, -1), np.repeat(v[..., None], 3, -1))
    np.testing.assert_allclose(masked, want, atol=1e-5)
    shared = fftconv.match_template(img, t[..., 0], channel_axis=2)
    np.testing.assert_allclose(shared, zncc_reference(img, np.repeat(t[..., :1], 3, -1)), atol=1e-5)


@pytest.mark.parametrize("pad_input", [False, True])
def test_masked_against_reference(rng, pad_input):
    img = rng.random((30, 33))
    t = rng.random((7, 6))
    w = rng.random((7, 6)) > 0.3
    v = rng.random((30, 33)) > 0.2
    got = fftconv.match_template(img, t, pad_input, mask=w, image_mask=v)
    if pad_input:
        pi = np.pad(img, ((3, 3), (3, 2)), constant_values=0)
        pv = np.pad(v, ((3, 3), (3, 2)), constant_values=True)
    else:
        pi, pv = img, v
    want = zncc_reference(pi[..., None], t[..., None], weights=w[..., None], valid=pv[..., None])
    np.testing.assert_allclose(got, want, atol=1e-9)


def test_weights_and_nan(rng):
    img = rng.random((25, 26))
    t = rng.random((5, 6))
    for wts in (rng.random((5, 6)), 1e-3 * rng.random((5, 6))):
        got = fftconv.match_template(img, t, mask=wts)
        np.testing.assert_allclose(got, _ref(img, t, weights=wts), atol=1e-9)
    holes = img.copy()
    holes[0, :] = np.nan  # an edge
    holes[10:12, 3] = np.nan
    got = fftconv.match_template(holes, t)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, _ref(holes, t), atol=1e-9)
    # an excluded pixel and a NaN pixel are the same thing
    v = np.isfinite(holes)
    np.testing.assert_allclose(
        fftconv.match_template(np.where(v, img, 7.0), t, image_mask=v), got, atol=1e-12
    )
    # a mask of ones is the unmasked score
    np.testing.assert_allclose(
        fftconv.match_template(img, t, mask=np.ones((5, 6))),
        fftconv.match_template(img, t),
        atol=1e-9,
    )


def test_masked_float32_and_tiles(rng, monkeypatch):
    from fftconv import tiles

    calls = []
    run_tiled = tiles.run_tiled
    monkeypatch.setattr(tiles, "run_tiled", lambda *a, **k: calls.append(1) or run_tiled(*a, **k))
    img = rng.random((600, 600)).astype(np.float32)
    t = img[20:30, 30:41].copy()
    plain = fftconv.match_template(img, t)
    np.testing.assert_allclose(fftconv.match_template(img, t, max_memory="20MB"), plain, atol=1e-5)
    assert calls
    img[5, 5] = np.nan
    whole = fftconv.match_template(img, t)
    assert whole.dtype == np.float32
    calls.clear()
    tiled = fftconv.match_template(img, t, max_memory="20MB")
    assert len(calls) == 6  # the six correlations of the masked score, each in tiles
    np.testing.assert_allclose(tiled, whole, atol=1e-6)
    np.testing.assert_allclose(whole[10:, 10:], plain[10:, 10:], atol=1e-5)


def test_eye_in_noisy_astronaut():
    data = pytest.importorskip("skimage.data")
    photo = data.astronaut()
    face = photo.mean(axis=-1) / 255.0
    eye = face[88:112, 186:218].copy()  # her right eye, 24 x 32
    rng = np.random.default_rng(3)
    noisy = face + 0.2 * rng.standard_normal(face.shape)
    score = fftconv.match_template(noisy, eye)
    peaks = fftconv.find_peaks(score, min_distance=10, num_peaks=3)
    assert tuple(peaks[0]) == (88, 186)
    assert score[88, 186] > 0.6 > 0.4 > score[tuple(peaks[1])]
    centred = fftconv.match_template(noisy, eye, pad_input=True)
    assert tuple(fftconv.find_peaks(centred, num_peaks=1)[0]) == (100, 202)
    colour = photo + 50 * rng.standard_normal(photo.shape)
    score3 = fftconv.match_template(colour, photo[88:112, 186:218], channel_axis=-1)
    assert tuple(fftconv.find_peaks(score3, num_peaks=1)[0]) == (88, 186)


def test_errors(rng):
    img, t = rng.random((10, 10)), rng.random((3, 3))
    with pytest.raises(ValueError, match="larger than image"):
        fftconv.match_template(t, img)
    with pytest.raises(ValueError, match="same number of dimensions"):
        fftconv.match_template(img, t[0])
    with pytest.raises(ValueError, match="did you mean 'reflect'"):
        fftconv.match_template(img, t, True, mode="reflct")
    with pytest.raises(ValueError, match="mask must have the template's shape"):
        fftconv.match_template(img, t, mask=np.ones((2, 3)))
    with pytest.raises(ValueError, match="zero everywhere"):
        fftconv.match_template(img, t, mask=np.zeros((3, 3)))
    with pytest.raises(ValueError, match="image_mask must have the image's shape"):
        fftconv.match_template(img, t, image_mask=np.ones((9, 10), bool))
    with pytest.raises(TypeError, match="real"):
        fftconv.match_template(img + 1j, t)
    with pytest.raises(TypeError, match="pad_input"):
        fftconv.match_template(img, t, "yes")
    with pytest.raises(ValueError, match="method="):
        fftconv.match_template(img, t, method="fastest")
    with pytest.raises(ValueError, match="channel_axis"):
        fftconv.match_template(img, t, channel_axis=5)


def test_inputs_not_modified(rng):
    img, t = rng.random((20, 20)), rng.random((4, 4))
    img[3, 3] = np.nan
    a, b = img.copy(), t.copy()
    fftconv.match_template(img, t, pad_input=True, mask=np.ones((4, 4)))
    np.testing.assert_array_equal(img, a)
    np.testing.assert_array_equal(t, b)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    h=st.integers(1, 14),
    w=st.integers(1, 14),
    th=st.integers(1, 6),
    tw=st.integers(1, 6),
    pad=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_hypothesis_shapes(h, w, th, tw, pad, seed):
    r = np.random.default_rng(seed)
    img, t = r.random((h, w)), r.random((th, tw))
    if not pad and (th > h or tw > w):
        with pytest.raises(ValueError):
            fftconv.match_template(img, t)
        return
    got = fftconv.match_template(img, t, pad_input=pad)
    padded = np.pad(img, ((th // 2, th - 1 - th // 2), (tw // 2, tw - 1 - tw // 2))) if pad else img
    np.testing.assert_allclose(got, _ref(padded, t), atol=1e-9)


# find_peaks -------------------------------------------------------------------------------


@pytest.mark.parametrize("md", [1, 2, 4])
@pytest.mark.parametrize("border", [False, True, 3])
def test_peaks_brute_force(rng, md, border):
    s = np.round(rng.random((23, 27)), 1)  # rounding makes ties and plateaus
    s[4, 4] = np.nan
    s[10:13, 10:14] = 1.5  # a plateau
    got = fftconv.find_peaks(s, min_distance=md, exclude_border=border)
    width = md if border is True else int(border)
    np.testing.assert_array_equal(got, peaks_reference(s, md, border=width))
    assert [10, 10] in got.tolist() and [10, 11] not in got.tolist()


def test_peaks_threshold_num_and_nan():
    s = np.zeros((9, 9))
    s[2, 2], s[6, 6], s[2, 6] = 0.9, 0.7, 0.5
    s[0, 0] = np.nan
    np.testing.assert_array_equal(
        fftconv.find_peaks(s, exclude_border=False, num_peaks=2), [[2, 2], [6, 6]]
    )
    np.testing.assert_array_equal(fftconv.find_peaks(s, threshold=0.6), [[2, 2], [6, 6]])
    assert fftconv.find_peaks(np.full((4, 4), np.nan)).shape == (0, 2)
    with pytest.raises(ValueError, match="min_distance"):
        fftconv.find_peaks(s, min_distance=0)
    with pytest.raises(TypeError, match="num_peaks"):
        fftconv.find_peaks(s, num_peaks=1.5)


@settings(max_examples=30, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 12), st.integers(1, 12)),
    md=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
def test_peaks_hypothesis(shape, md, seed):
    s = np.round(np.random.default_rng(seed).random(shape), 1)
    np.testing.assert_array_equal(
        fftconv.find_peaks(s, min_distance=md, exclude_border=False), peaks_reference(s, md)
    )


@pytest.mark.parametrize("md", [1, 3])
@pytest.mark.parametrize("border", [True, False, 2])
def test_peaks_like_peak_local_max(rng, md, border):
    """Without ties (a smooth random score) the peaks are peak_local_max's."""
    from scipy import ndimage

    s = ndimage.gaussian_filter(rng.standard_normal((60, 70)), 2)
    want = _skimage().peak_local_max(s, min_distance=md, exclude_border=border)
    np.testing.assert_array_equal(
        fftconv.find_peaks(s, min_distance=md, exclude_border=border), want
    )


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    h=st.integers(2, 12),
    w=st.integers(2, 12),
    th=st.integers(1, 5),
    tw=st.integers(1, 5),
    seed=st.integers(0, 2**16),
)
def test_hypothesis_masked(h, w, th, tw, seed):
    r = np.random.default_rng(seed)
    th, tw = min(th, h), min(tw, w)
    img, t = r.random((h, w)), r.random((th, tw))
    wts, v = r.random((th, tw)) > 0.3, r.random((h, w)) > 0.3
    if not wts.any():
        return
    got = fftconv.match_template(img, t, mask=wts, image_mask=v)
    want = zncc_reference(img[..., None], t[..., None], wts[..., None], v[..., None])
    np.testing.assert_allclose(got, want, atol=1e-9)
