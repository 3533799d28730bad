"""fftconv._png: PNGs deflated on every core decode, in Pillow and libpng, to the
array written, for every layout; the pieces' Adler-32 combine as zlib's would."""

from __future__ import annotations

import io
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fftconv import _png

Image = pytest.importorskip("PIL.Image")


def _written(arr, **options) -> bytes:
    f = io.BytesIO()
    _png.write_png(f, arr, **options)
    return f.getvalue()


def _pillow(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        if im.mode == "I;16":
            return np.asarray(im).astype(np.uint16)
        return np.asarray(im)


@pytest.mark.parametrize(
    "shape, dtype",
    [((37, 23), np.uint8), ((37, 23, 2), np.uint8), ((37, 23, 3), np.uint8),
     ((37, 23, 4), np.uint8), ((37, 23), np.uint16), ((1, 1), np.uint8), ((1, 50, 3), np.uint8),
     ((50, 1, 4), np.uint8)],
)  # fmt: skip
@pytest.mark.parametrize("threads", [1, 3])
def test_round_trip_in_pieces(monkeypatch, shape, dtype, threads):
    """Pieces of a few rows (many IDAT chunks, sync flushes, the window of pieces
    ahead), every colour type and depth: the decoded pixels are the array's."""
    monkeypatch.setattr(_png, "PIECE_BYTES", 100)
    rng = np.random.default_rng(sum(shape))
    arr = rng.integers(0, np.iinfo(dtype).max, shape, endpoint=True, dtype=dtype)
    arr[: shape[0] // 2] //= 7  # smooth rows and noisy ones
    data = _written(arr, level=3, threads=threads)
    assert data.startswith(_png.SIGNATURE)
    np.testing.assert_array_equal(_pillow(data), arr)
    ic = pytest.importorskip("imagecodecs")
    np.testing.assert_array_equal(ic.png_decode(data), arr)


def test_photo_sized_and_levels():
    """A blurred photo: levels 0 to 9 decode to it; a higher level is not larger."""
    x = np.linspace(0, 255, 600)
    arr = (np.add.outer(x, x[:400]) / 2).astype(np.uint8)[..., None].repeat(3, axis=2)
    sizes = []
    for level in (0, 1, 3, 9):
        data = _written(arr, level=level, threads=2)
        np.testing.assert_array_equal(_pillow(data), arr)
        sizes.append(len(data))
    assert sizes[0] > sizes[1] >= sizes[2] >= sizes[3]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.binary(max_size=300), st.binary(max_size=300))
def test_adler32_combine(a, b, c):
    whole = zlib.adler32(a + b + c)
    ab = _png.adler32_combine(zlib.adler32(a), zlib.adler32(b), len(b))
    assert _png.adler32_combine(ab, zlib.adler32(c), len(c)) == whole


def test_adler32_combine_long_pieces():
    rng = np.random.default_rng(1)
    a, b = rng.bytes(200_003), rng.bytes(131_071)
    assert _png.adler32_combine(zlib.adler32(a), zlib.adler32(b), len(b)) == zlib.adler32(a + b)


@pytest.mark.parametrize(
    "arr, error",
    [(np.zeros((3, 4), np.float32), TypeError), (np.zeros((3, 4, 5), np.uint8), ValueError),
     (np.zeros((0, 4), np.uint8), ValueError), (np.zeros(4, np.uint8), TypeError)],
)  # fmt: skip
def test_bad_arrays(arr, error):
    with pytest.raises(error, match="arr must be"):
        _written(arr)
