import numpy as np
import pytest
import scipy.ndimage as ndi
import scipy.signal as ss

import fftconv
from fftconv._pad import pad_into, padded, source_index
from reference import NDIMAGE, NUMPY_PAD, np_pad

BOUNDARIES = ["fill", "wrap", "symmetric", "mirror", "nearest"]


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("n", [1, 2, 3, 5])
@pytest.mark.parametrize("pad", [(0, 0), (1, 2), (4, 0), (7, 11)])
def test_padded_matches_numpy_pad_including_repeats(boundary, n, pad):
    x = np.arange(1, n + 1, dtype=float)
    got = padded(x, (0,), (pad,), boundary, fillvalue=-3.0)
    assert np.array_equal(got, np_pad(x, [pad], boundary, -3.0))


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_pad_into_2d_corners_and_larger_buffer(boundary, rng):
    x = rng.standard_normal((3, 4))
    pads = ((5, 2), (1, 6))
    buf = np.full((3 + 7 + 4, 4 + 7 + 2), 99.0)
    pad_into(buf, x, (0, 1), pads, boundary, fillvalue=2.5)
    assert np.array_equal(buf[:10, :11], np_pad(x, pads, boundary, 2.5))
    assert (buf[10:] == 99).all() and (buf[:, 11:] == 99).all()


def test_source_index_rejects_fill():
    with pytest.raises(ValueError, match="fill"):
        source_index(np.arange(3), 3, "fill")


# The boundary table of the README, each row checked against the libraries themselves:
# pad "a b c d" by two on the left.
TABLE = {
    "fill": [9, 9, 1, 2, 3, 4],
    "wrap": [3, 4, 1, 2, 3, 4],
    "symmetric": [2, 1, 1, 2, 3, 4],
    "mirror": [3, 2, 1, 2, 3, 4],
    "nearest": [1, 1, 1, 2, 3, 4],
}


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_boundary_table_against_numpy_and_ndimage(boundary):
    x = np.array([1.0, 2.0, 3.0, 4.0])
    assert list(padded(x, (0,), ((2, 0),), boundary, 9.0)) == TABLE[boundary]
    assert list(np_pad(x, [(2, 0)], boundary, 9.0)) == TABLE[boundary]
    # scipy.ndimage: correlate a delta that picks the sample two to the left.
    w = np.array([1.0, 0.0, 0.0, 0.0, 0.0])
    got = ndi.correlate1d(x, w, mode=NDIMAGE[boundary], cval=9.0)
    assert list(got[:2]) == TABLE[boundary][:2]
    # ... and fftconv itself, with the same delta.
    res = fftconv.correlate(x, w, "same", boundary, fillvalue=9.0)
    assert list(res[:2]) == TABLE[boundary][:2]


@pytest.mark.parametrize(
    "boundary,signal_name", [("fill", "fill"), ("wrap", "wrap"), ("symmetric", "symm")]
)
def test_boundary_table_against_scipy_signal(boundary, signal_name):
    x = np.array([[1.0, 2.0, 3.0, 4.0]])
    w = np.array([[1.0, 0.0, 0.0, 0.0, 0.0]])
    got = ss.correlate2d(x, w, "same", boundary=signal_name, fillvalue=9.0)
    assert list(got[0, :2]) == TABLE[boundary][:2]


@pytest.mark.parametrize(
    "boundary,border",
    [
        ("fill", "BORDER_CONSTANT"),
        ("wrap", "BORDER_WRAP"),
        ("symmetric", "BORDER_REFLECT"),
        ("mirror", "BORDER_REFLECT_101"),
        ("nearest", "BORDER_REPLICATE"),
    ],
)
def test_boundary_table_against_opencv(boundary, border):
    cv2 = pytest.importorskip("cv2")
    x = np.array([[1.0, 2.0, 3.0, 4.0]], np.float32)
    got = cv2.copyMakeBorder(x, 0, 0, 2, 0, getattr(cv2, border), value=9.0)
    assert list(got[0]) == TABLE[boundary]


def test_numpy_pad_names_cover_every_boundary():
    assert set(NUMPY_PAD) == set(fftconv.BOUNDARIES)
