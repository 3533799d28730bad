"""The streaming band path (fftconv._stream, methods._u8_kernels) against float64 direct
summation, rounded half to even and clipped, on small files of every format it reads.

Exactness as stated in fftconv._stream: every output equals the float64 reference
rounded, except where the reference lies within float32's error of a half-integer
(a tie), where it may be one level off.
"""

from __future__ import annotations

import numpy as np
import pytest

from fftconv import _stream, io
from fftconv import kernels as K
from fftconv.cli import main
from reference import direct_reference

pytest.importorskip("numba")
tifffile = pytest.importorskip("tifffile")


def _photo(shape, seed=0):
    rng = np.random.default_rng(seed)
    h, w = shape[:2]
    y, x = np.mgrid[0:h, 0:w]
    base = 128 + 90 * np.sin(x / 7.0) * np.cos(y / 11.0)
    extra = shape[2:] if len(shape) == 3 else ()
    img = base[..., None] if extra else base
    img = img + rng.normal(0, 30, tuple(shape))
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _expect(
    img, k, boundary="symmetric", fillvalue=0, correlate=False, dtype=np.uint8, alpha=False
):
    """The float64 reference of `img` (2-D or channels-last), rounded and clipped."""
    if img.ndim == 2:
        ref = direct_reference(img, k, "same", boundary, fillvalue, correlate)
    else:
        planes = [
            direct_reference(img[..., c], k, "same", boundary, fillvalue, correlate)
            for c in range(img.shape[2])
        ]
        if alpha:
            planes[-1] = img[..., -1].astype(np.float64)
        ref = np.stack(planes, axis=-1)
    if np.dtype(dtype).kind in "iu":
        info = np.iinfo(dtype)
        return ref, np.clip(np.rint(ref), info.min, info.max)
    return ref, ref


def _assert_exact(out, ref, want):
    got = out.astype(np.float64)
    if want is ref:  # float output: float32 accumulation
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-4 * max(1.0, np.abs(ref).max()))
        return
    diff = np.abs(got - want)
    tie = np.abs(ref - np.floor(ref) - 0.5) < 1e-3
    assert diff.max() <= 1
    assert not np.any((diff > 0) & ~tie), "a pixel away from a rounding tie differs"


def _run(
    img,
    k,
    *,
    path=None,
    dtype=None,
    boundary="symmetric",
    fillvalue=0,
    correlate=False,
    threads=2,
    channel_kernels=None,
):
    dtype = np.dtype(dtype or img.dtype)
    plan = _stream.plan_stream(
        img.shape,
        img.dtype,
        k,
        boundary=boundary,
        fillvalue=fillvalue,
        correlate=correlate,
        out_dtype=dtype,
        threads=threads,
        channel_kernels=channel_kernels,
    )
    assert plan is not None
    src = io.open_image(path) if path is not None else img
    out = np.zeros(img.shape, dtype)
    prof = _stream.run_stream(plan, src, out, path=path)
    assert prof.pixels == img.shape[0] * img.shape[1]
    return out


@pytest.fixture
def small_bands(monkeypatch):
    """Bands and sub-bands of a few rows, so that small images cross many of them."""
    monkeypatch.setattr(_stream, "BAND", 12)
    monkeypatch.setattr(_stream, "RING_BYTES", 4096)  # strips of a few columns


@pytest.mark.parametrize("boundary", ["symmetric", "mirror", "nearest", "fill"])
@pytest.mark.parametrize("correlate", [False, True])
def test_boundaries_in_memory(boundary, correlate, small_bands):
    img = _photo((97, 83))
    g = np.exp(-0.5 * (np.arange(-4, 5) / 2.0) ** 2)
    k = np.outer(g, g[::-1] * np.linspace(1, 2, 9))  # separable, not symmetric
    k /= k.sum()
    out = _run(img, k, boundary=boundary, fillvalue=37, correlate=correlate)
    ref, want = _expect(img, k, boundary, 37, correlate)
    _assert_exact(out, ref, want)


@pytest.mark.parametrize("shape", [(4, 6), (6, 4), (1, 5), (8, 8)])
def test_even_and_odd_kernels(shape, small_bands):
    img = _photo((71, 64))
    k = np.outer(np.arange(1, shape[0] + 1), np.arange(shape[1], 0, -1)).astype(float)
    k /= k.sum()
    for correlate in (False, True):
        out = _run(img, k, correlate=correlate)
        _assert_exact(out, *_expect(img, k, correlate=correlate))


def test_kernel_larger_than_image():
    img = _photo((9, 12))
    k = K.gaussian(5.0)  # 41 x 41
    _assert_exact(_run(img, k), *_expect(img, k))


def test_gaussian_41_taps_many_bands(small_bands, tmp_path):
    img = _photo((150, 131))
    k = K.gaussian(5.0)
    p = tmp_path / "a.tif"
    tifffile.imwrite(p, img, tile=(48, 32))
    out = _run(img, k, path=str(p))
    _assert_exact(out, *_expect(img, k))


@pytest.mark.parametrize("channels", [3, 4])
def test_colour_and_alpha(channels, small_bands):
    img = _photo((60, 50, channels))
    k = K.gaussian(1.5)
    ck = None
    if channels == 4:
        delta = np.zeros_like(k)
        delta[k.shape[0] // 2, k.shape[1] // 2] = 1
        ck = np.stack([k, k, k, delta])
    out = _run(img, k, channel_kernels=ck)
    _assert_exact(out, *_expect(img, k, alpha=channels == 4))


def test_uint16_and_float32_out(small_bands):
    img = _photo((55, 47)).astype(np.uint16) * 257
    k = K.box(5)
    _assert_exact(_run(img, k), *_expect(img, k, dtype=np.uint16))
    out = _run(img, k, dtype=np.float32)
    _assert_exact(out, *_expect(img, k, dtype=np.float32))


def test_sharpen_clips(small_bands):
    img = _photo((40, 40))
    g = np.array([-0.5, 2.0, -0.5])
    k = np.outer(g, g)  # separable sharpening: negative and > 255 results
    out = _run(img, k)
    ref, want = _expect(img, k)
    assert want.min() == 0 and want.max() == 255
    _assert_exact(out, ref, want)


def test_not_for_this_path():
    assert _stream.plan_stream((50, 50), np.uint8, K.disk(3)) is None  # not separable
    assert _stream.plan_stream((50, 50), np.uint8, K.gaussian(2), mode="full") is None
    assert _stream.plan_stream((50, 50), np.uint8, K.gaussian(2), boundary="wrap") is None
    assert _stream.plan_stream((50, 50), np.float64, K.gaussian(2)) is None
    assert _stream.plan_stream((50, 50), np.uint8, K.scharr()) is None  # complex
    with pytest.raises(ValueError, match="boundary"):
        _stream.plan_stream((50, 50), np.uint8, K.gaussian(2), boundary="reflect")


# --------------------------------------------------------------------------- files


def _write(path, img, kind):
    if kind == "tiled":
        tifffile.imwrite(path, img, tile=(32, 48))
    elif kind == "strips":
        tifffile.imwrite(path, img, rowsperstrip=7)
    elif kind in ("deflate", "lzw"):
        if kind == "lzw":
            pytest.importorskip("imagecodecs")
        tifffile.imwrite(path, img, tile=(32, 32), compression=kind, predictor=True)
    elif kind == "jpeg-tiff":
        pytest.importorskip("imagecodecs")
        tifffile.imwrite(
            path,
            img,
            tile=(32, 32),
            compression="jpeg",
            compressionargs={"level": 90},
            photometric="rgb" if img.ndim == 3 else "minisblack",
        )
    elif kind == "zarr":
        zarr = pytest.importorskip("zarr")
        z = zarr.create_array(
            str(path), shape=img.shape, dtype=img.dtype, chunks=(24, 40) + img.shape[2:]
        )
        z[...] = img
    elif kind == "npy":
        np.save(path, img)
    else:
        from PIL import Image

        Image.fromarray(img).save(path, quality=95)


SUFFIX = {
    "tiled": ".tif",
    "strips": ".tif",
    "deflate": ".tif",
    "lzw": ".tif",
    "jpeg-tiff": ".tif",
    "zarr": ".zarr",
    "npy": ".npy",
    "png": ".png",
    "jpeg": ".jpg",
}


@pytest.mark.parametrize("kind", list(SUFFIX))
@pytest.mark.parametrize("channels", [1, 3])
def test_cli_files(kind, channels, tmp_path, small_bands, capsys):
    shape = (101, 90) if channels == 1 else (101, 90, 3)
    img = _photo(shape)
    src = tmp_path / f"in{SUFFIX[kind]}"
    _write(src, img, kind)
    decoded = np.asarray(io.open_image(src))  # what the file holds (JPEG is lossy)
    for out_suffix in (".tif", ".png"):
        dst = tmp_path / f"out{out_suffix}"
        rc = main(
            [
                "apply",
                str(src),
                str(dst),
                "--kernel",
                "gaussian:sigma=2.5",
                "--quiet",
                "--force",
                "--profile",
            ]
        )
        assert rc == 0
        assert "profile (stream" in capsys.readouterr().out  # not the tiled path
        out = np.asarray(io.open_image(dst))
        _assert_exact(out, *_expect(decoded, K.gaussian(2.5)))


def test_cli_profile_and_fallback(tmp_path, capsys):
    img = _photo((64, 80))
    src = tmp_path / "in.tif"
    tifffile.imwrite(src, img, tile=(32, 32))
    assert main(["apply", str(src), str(tmp_path / "a.tif"), "--kernel", "box:5", "--profile"]) == 0
    text = capsys.readouterr().out
    for word in ("read/decode", "compute", "encode/write", "waiting", "Mpixel/s", "cpu: "):
        assert word in text
    # a kernel that is not separable runs in tiles, as does --method fft; same answers
    for extra in (["--kernel", "disk:radius=3"], ["--kernel", "box:5", "--method", "fft"]):
        dst = tmp_path / "b.tif"
        assert main(["apply", str(src), str(dst), "--force", "--quiet", "--profile"] + extra) == 0
        k = K.disk(3) if "disk" in extra[1] else K.box(5)
        _assert_exact(np.asarray(io.open_image(dst)), *_expect(img, k))
        text = capsys.readouterr().out
        assert "compute" in text and "cpu: " in text


@pytest.mark.parametrize("kh", [1, 2, 3, 8, 41])
@pytest.mark.parametrize("n_out", [1, 2, 5, 40, 41, 100])
def test_emitted_matches_the_engine_schedule(kh, n_out):
    """`emitted` says which output rows `sep_rows` stores for a range of padded rows;
    the engine's own rule, replayed here, must agree for every way of cutting them."""
    from fftconv._stream import emitted

    n_pad = n_out + kh - 1

    def stored(i):
        o = i - kh
        rows = [o, o + 1] if o >= 0 and o % 2 == 0 else []
        if i == n_pad - 1 and n_out % 2 == 1:
            rows.append(n_out - 1)
        return rows

    rng = np.random.default_rng(kh * 1000 + n_out)
    for _ in range(20):
        cuts = sorted(set(rng.integers(1, max(2, n_pad), size=rng.integers(0, 5)).tolist()))
        cuts = [c for c in cuts if c < n_pad]
        bounds = [0] + cuts + [n_pad]
        seen = []
        for i0, i1 in zip(bounds[:-1], bounds[1:]):
            rows = [r for i in range(i0, i1) for r in stored(i)]
            a, b = emitted(i0, i1, kh, n_pad)
            assert sorted(rows) == list(range(a, b))
            seen += rows
        assert sorted(seen) == list(range(n_out))


def test_convolve_file_streams_and_plan_says_so(tmp_path, capsys):
    import fftconv

    img = _photo((70, 90, 3))
    src = tmp_path / "in.npy"
    np.save(src, img)
    res = fftconv.convolve_file(src, tmp_path / "out.npy", "gaussian:sigma=2")
    assert res["plan"].method == "stream" and res["profile"].engine == "stream"
    _assert_exact(np.load(tmp_path / "out.npy"), *_expect(img, K.gaussian(2.0)))
    tiled = fftconv.convolve_file(src, tmp_path / "t.npy", "gaussian:sigma=2", method="fft")
    assert tiled["profile"].engine == "tiles"
    assert main(["plan", str(src), "--kernel", "gaussian:sigma=2"]) == 0
    assert "apply streams this job" in capsys.readouterr().out
    assert main(["plan", str(src), "--kernel", "disk:radius=2"]) == 0
    assert "apply streams" not in capsys.readouterr().out


def test_profile_counts_cpu_time():
    """The profile's CPU seconds: the compute threads' own, within the process's."""
    img = _photo((300, 260))
    plan = _stream.plan_stream(img.shape, img.dtype, K.gaussian(3.0), threads=2)
    prof = _stream.run_stream(plan, img, np.zeros_like(img))
    assert 0 < prof.compute_cpu <= prof.cpu + 1e-3
    assert prof.compute_cpu <= prof.compute + 1e-3  # never more than the busy time
    assert "cpu: " in prof.lines()[-1] and "compute" in prof.lines()[-1]
    assert _stream.StreamProfile().lines()[-1].startswith("  waiting")  # none measured
