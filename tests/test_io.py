from __future__ import annotations

import os

import numpy as np
import pytest

from fftconv import io

PIL = pytest.importorskip("PIL.Image")
tifffile = pytest.importorskip("tifffile")
zarr = pytest.importorskip("zarr")


@pytest.fixture
def rgb():
    return (np.random.default_rng(0).random((40, 50, 3)) * 255).astype(np.uint8)


def _roundtrip(tmp_path, name, arr, **kw):
    p = tmp_path / name
    with io.create_output(p, arr.shape, arr.dtype, **kw) as out:
        out.array[...] = arr
    return p, io.open_image(p)


@pytest.mark.parametrize("name", ["a.npy", "a.tif", "a.tiff", "a.zarr", "a.png"])
@pytest.mark.parametrize(
    "shape, dtype",
    [((40, 50), np.uint8), ((40, 50, 3), np.uint8), ((40, 50, 4), np.uint8), ((40, 50), np.uint16)],
)
def test_lossless_round_trips(tmp_path, name, shape, dtype):
    arr = (np.random.default_rng(1).random(shape) * np.iinfo(dtype).max).astype(dtype)
    p, back = _roundtrip(tmp_path, name, arr)
    assert back.shape == arr.shape and back.dtype == arr.dtype
    np.testing.assert_array_equal(np.asarray(back[:]), arr)
    assert io.probe(p) == (arr.shape, np.dtype(dtype))


def test_float_round_trips_and_bigtiff(tmp_path):
    arr = np.random.default_rng(2).standard_normal((30, 20)).astype(np.float64)
    for name in ("f.npy", "f.tif", "f.zarr"):
        _, back = _roundtrip(tmp_path, name, arr)
        np.testing.assert_array_equal(np.asarray(back[:]), arr)
    tifffile.imwrite(tmp_path / "b.tif", arr, bigtiff=True)
    back = io.open_image(tmp_path / "b.tif")
    assert isinstance(back, np.memmap)
    np.testing.assert_array_equal(back, arr)


def test_jpeg_is_close(tmp_path, rgb):
    smooth = np.repeat(np.repeat(rgb[::8, ::8], 8, 0), 8, 1)[:40, :50]
    _, back = _roundtrip(tmp_path, "a.jpg", np.ascontiguousarray(smooth))
    assert back.dtype == np.uint8 and back.shape == smooth.shape
    assert np.abs(back.astype(int) - smooth).mean() < 8


def test_readers_do_not_load_large_formats(tmp_path):
    arr = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64)
    np.save(tmp_path / "a.npy", arr)
    tifffile.imwrite(tmp_path / "strip.tif", arr)
    tifffile.imwrite(tmp_path / "tiled.tif", arr, tile=(16, 16), compression="zlib")
    a = io.open_image(tmp_path / "a.npy")
    s = io.open_image(tmp_path / "strip.tif")
    t = io.open_image(tmp_path / "tiled.tif")
    assert isinstance(a, np.memmap) and not a.flags.writeable
    assert isinstance(s, np.memmap) and not s.flags.writeable
    assert isinstance(t, zarr.Array)
    np.testing.assert_array_equal(t[10:40, 5:60], arr[10:40, 5:60])


def test_decompression_bomb_guard_is_per_call(tmp_path, rgb):
    PIL.fromarray(rgb).save(tmp_path / "a.png")
    before = PIL.MAX_IMAGE_PIXELS
    with pytest.raises(io.ImageTooLargeError, match="max_pixels=2000"):
        io.open_image(tmp_path / "a.png", max_pixels=100)
    with pytest.raises(ValueError, match="decompression bombs"):
        io.probe(tmp_path / "a.png", max_pixels=100)
    assert io.open_image(tmp_path / "a.png", max_pixels=2000).shape == (40, 50, 3)
    assert PIL.MAX_IMAGE_PIXELS == before  # never changed globally
    # Lifting it also works above Pillow's own limit, without touching the global.
    PIL.MAX_IMAGE_PIXELS = 10
    try:
        assert io.open_image(tmp_path / "a.png", max_pixels=None).shape == (40, 50, 3)
        with pytest.raises(PIL.DecompressionBombError):
            PIL.open(tmp_path / "a.png")
    finally:
        PIL.MAX_IMAGE_PIXELS = before


def test_palette_and_grey_alpha_pngs(tmp_path, rgb):
    PIL.fromarray(rgb).convert("P").save(tmp_path / "p.png")
    PIL.fromarray(rgb[..., 0]).convert("LA").save(tmp_path / "la.png")
    assert io.open_image(tmp_path / "p.png").shape == (40, 50, 3)
    assert io.open_image(tmp_path / "la.png").shape == (40, 50, 2)
    assert io.probe(tmp_path / "la.png")[0] == (40, 50, 2)


def test_read_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        io.open_image(tmp_path / "missing.png")
    with pytest.raises(ValueError, match="unknown image format '.bmp'"):
        io.open_image(tmp_path / "x.bmp")
    (tmp_path / "bad.png").write_bytes(b"not a png at all")
    with pytest.raises(ValueError, match="cannot read as png"):
        io.open_image(tmp_path / "bad.png")
    np.save(tmp_path / "obj.npy", np.array([None], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="cannot read as npy"):
        io.open_image(tmp_path / "obj.npy")


def test_output_is_atomic_and_never_overwritten_silently(tmp_path):
    p = tmp_path / "o.npy"
    np.save(p, np.zeros(3))
    with pytest.raises(FileExistsError, match="--force"):
        io.create_output(p, (2, 2), np.uint8)
    with pytest.raises(RuntimeError), io.create_output(p, (2, 2), np.uint8, force=True) as out:
        out.array[...] = 5
        raise RuntimeError("fails half-way")
    np.testing.assert_array_equal(np.load(p), np.zeros(3))  # the old file is intact
    assert os.listdir(tmp_path) == ["o.npy"]  # no temporary left behind
    q = tmp_path / "new.tif"
    with pytest.raises(RuntimeError), io.create_output(q, (2, 2), np.uint8) as out:
        assert out.temp.parent == tmp_path and out.temp.exists() and not q.exists()
        raise RuntimeError
    assert not q.exists()
    with io.create_output(p, (2, 2), np.uint8, force=True) as out:
        out.array[...] = 5
    np.testing.assert_array_equal(np.load(p), np.full((2, 2), 5))


def test_zarr_output_replaced_with_force(tmp_path):
    p = tmp_path / "o.zarr"
    for v in (1, 2):
        with io.create_output(p, (4, 4), np.uint8, force=True) as out:
            out.array[...] = v
        assert int(io.open_image(p)[0, 0]) == v
    assert sorted(os.listdir(tmp_path)) == ["o.zarr"]


def test_output_errors_before_writing(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        io.create_output(tmp_path / "no" / "o.npy", (2, 2), np.uint8)
    with pytest.raises(ValueError, match="JPEG cannot hold"):
        io.create_output(tmp_path / "o.jpg", (2, 2), np.float32)
    with pytest.raises(ValueError, match="PNG cannot hold 3 channel"):
        io.create_output(tmp_path / "o.png", (2, 2, 3), np.uint16)
    with pytest.raises(ValueError, match="unknown image format"):
        io.create_output(tmp_path / "o.gif", (2, 2), np.uint8)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if not os.access(ro, os.W_OK):  # root can write anywhere
            with pytest.raises(PermissionError, match="not writable"):
                io.create_output(ro / "o.npy", (2, 2), np.uint8)
    finally:
        ro.chmod(0o700)
    assert os.listdir(tmp_path) == ["ro"]


def test_cast_to_rounds_and_clips():
    x = np.array([-1.0, 0.49, 0.5, 1.5, 2.5, 65535.4, 1e9])
    np.testing.assert_array_equal(io.cast_to(x, np.uint16), [0, 0, 0, 2, 2, 65535, 65535])
    np.testing.assert_array_equal(io.cast_to(x, np.uint8), [0, 0, 0, 2, 2, 255, 255])
    assert io.cast_to(x, np.float32).dtype == np.float32


def test_planar_colour_tiff_reads_as_channels_last(tmp_path, rgb):
    planar = np.ascontiguousarray(np.moveaxis(rgb, -1, 0))
    tifffile.imwrite(tmp_path / "p.tif", planar, photometric="rgb", planarconfig="separate")
    tifffile.imwrite(
        tmp_path / "pt.tif",
        planar,
        photometric="rgb",
        planarconfig="separate",
        tile=(16, 16),
        compression="zlib",
    )
    for name in ("p.tif", "pt.tif"):
        img = io.open_image(tmp_path / name)
        assert img.shape == rgb.shape
        np.testing.assert_array_equal(img[5:30, 7:44], rgb[5:30, 7:44])
        np.testing.assert_array_equal(np.asarray(img), rgb)


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA", "P", "P+transparency", "I;16", "1"])
def test_probe_agrees_with_open_image(tmp_path, mode):
    Image = pytest.importorskip("PIL.Image")
    im = Image.new(mode.split("+")[0], (7, 5))
    if mode.endswith("+transparency"):
        im.info["transparency"] = 0
    path = tmp_path / "x.png"
    im.save(path)
    arr = io.open_image(path)
    assert io.probe(path) == (tuple(arr.shape), arr.dtype)


def _dead_pid() -> int:
    import subprocess
    import sys

    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait(timeout=60)
    return p.pid


def test_stale_temps_of_dead_processes_are_removed(tmp_path):
    host = io._host_tag()
    dead = _dead_pid()
    stale = tmp_path / f".out.npy.{dead}@{host}.0123456789ab.fftconv-tmp.npy"
    stale.write_bytes(b"x")
    stale_dir = tmp_path / f".out.zarr.{dead}@{host}.0123456789ac.fftconv-tmp.zarr"
    (stale_dir / "c").mkdir(parents=True)
    live = tmp_path / f".b.npy.{os.getppid()}@{host}.0123456789ab.fftconv-tmp.npy"
    live.write_bytes(b"x")
    mine = tmp_path / f".c.npy.{os.getpid()}@{host}.0123456789ab.fftconv-tmp.npy"
    mine.write_bytes(b"x")
    elsewhere = (
        tmp_path
        / f".d.npy.{dead}@{'0' * 8 if host != '0' * 8 else '1' * 8}.0123456789ab.fftconv-tmp.npy"
    )
    elsewhere.write_bytes(b"x")
    unrelated = tmp_path / f".e.npy.{dead}@{host}.fftconv-tmp.npy"
    unrelated.write_bytes(b"x")
    old = tmp_path / ".f.tif.0123456789ab.fftconv-tmp.tif"
    old.write_bytes(b"x")
    assert sorted(io.remove_stale_temps(tmp_path)) == sorted([stale, stale_dir])
    assert {p.name for p in tmp_path.iterdir()} == {
        live.name,
        mine.name,
        elsewhere.name,
        unrelated.name,
        old.name,
    }
    assert io.remove_stale_temps(tmp_path, older_than=3600) == []
    os.utime(old, (0, 0))
    assert io.remove_stale_temps(tmp_path, older_than=3600) == [old]


def test_create_output_removes_stale_temps_beside_it(tmp_path):
    stale = tmp_path / f".x.npy.{_dead_pid()}@{io._host_tag()}.0123456789ab.fftconv-tmp.npy"
    stale.write_bytes(b"x")
    with io.create_output(tmp_path / "y.npy", (2, 2), np.uint8) as out:
        out.array[:] = 1
    assert not stale.exists()


@pytest.mark.skipif(os.name != "posix" or os.geteuid() != 0, reason="needs root for chown")
def test_stale_temps_of_other_users_are_kept(tmp_path):
    other = tmp_path / f".x.npy.{_dead_pid()}@{io._host_tag()}.0123456789ab.fftconv-tmp.npy"
    other.write_bytes(b"x")
    os.chown(other, 65534, -1)
    assert io.remove_stale_temps(tmp_path) == [] and other.exists()


def test_stored_images_claiming_huge_sizes_are_refused(tmp_path):
    zarr = pytest.importorskip("zarr")
    zarr.open_array(
        str(tmp_path / "big.zarr"),
        mode="w",
        shape=(10**6, 10**6),
        chunks=(1000, 1000),
        dtype="uint8",
    )
    with pytest.raises(io.ImageTooLargeError, match="claims 1000000x1000000"):
        io.open_image(tmp_path / "big.zarr")
    assert io.open_image(tmp_path / "big.zarr", max_stored_pixels=None).shape == (10**6, 10**6)
    with pytest.raises(io.ImageTooLargeError):
        io.open_image(tmp_path / "big.zarr", max_stored_pixels=10**11)


@pytest.mark.parametrize("kind", ["striped", "tiled-zlib"])
def test_truncated_tiff_is_refused_when_opened(tmp_path, kind):
    tifffile = pytest.importorskip("tifffile")
    x = (np.arange(300 * 400) % 251).astype(np.uint8).reshape(300, 400)
    p = tmp_path / "a.tif"
    if kind == "striped":
        tifffile.imwrite(p, x, rowsperstrip=16)
    else:
        pytest.importorskip("imagecodecs")
        tifffile.imwrite(p, x, tile=(64, 64), compression="zlib")
    data = p.read_bytes()
    p.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(ValueError, match="truncated"):
        io.open_image(p)


@pytest.mark.parametrize("shape, mode", [((37, 23), "L"), ((37, 23, 3), "RGB"),
                                         ((37, 23, 4), "RGBA"), ((37, 23, 2), "LA")])  # fmt: skip
def test_pillow_images_in_strips(tmp_path, monkeypatch, shape, mode):
    """Decoded PNGs are copied out in strips and encoded from the array's own memory
    (no bytes copy of the whole image): the same pixels either way."""
    Image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, shape, dtype=np.uint8)
    monkeypatch.setattr(io, "_codecs", lambda: None)  # Pillow decodes (no imagecodecs)
    monkeypatch.setattr(io, "STRIP_BYTES", 5 * 23 * 4 * (shape[2] if len(shape) == 3 else 1))
    im = io._to_pillow(img, Image)
    assert im.mode == mode and im.size == (23, 37)
    np.testing.assert_array_equal(np.asarray(im), img)
    path = tmp_path / "a.png"
    with io.create_output(path, shape, np.uint8) as out:
        out.array[...] = img
        out.commit()
    back = io.open_image(path)
    assert back.flags.c_contiguous
    np.testing.assert_array_equal(back, img)
    assert back.base is None  # one array, filled strip by strip


def test_uint16_png_round_trip(tmp_path, monkeypatch):
    pytest.importorskip("PIL.Image")
    monkeypatch.setattr(io, "STRIP_BYTES", 64)
    img = np.arange(30 * 7, dtype=np.uint16).reshape(30, 7) * 300
    with io.create_output(tmp_path / "b.png", img.shape, np.uint16) as out:
        out.array[...] = img
        out.commit()
    np.testing.assert_array_equal(io.open_image(tmp_path / "b.png"), img)


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA", "P", "I;16", "RGB;16", "1"])
@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_imagecodecs_decodes_what_pillow_decodes(tmp_path, monkeypatch, mode, fmt):
    """Where imagecodecs is installed it decodes 8-bit grey, grey-alpha, RGB and RGBA
    PNGs and grey and RGB JPEGs (faster); every file gives Pillow's array, and the
    other modes (palettes, 16 bits, bilevel, CMYK) are left to Pillow."""
    ic = pytest.importorskip("imagecodecs")
    Image = pytest.importorskip("PIL.Image")
    if fmt == "jpeg" and mode not in ("L", "RGB", "CMYK"):
        mode = "CMYK"
    rng = np.random.default_rng(2)
    base = Image.fromarray(rng.integers(0, 256, (29, 31, 3), dtype=np.uint8))
    path = tmp_path / f"a.{'jpg' if fmt == 'jpeg' else 'png'}"
    if mode == "RGB;16":  # 16-bit RGB PNG (Pillow reads it as 8 bits)
        arr16 = rng.integers(0, 65536, (29, 31, 3), dtype=np.uint16)
        path.write_bytes(ic.png_encode(arr16))
    else:
        base.convert(mode).save(path)
    with Image.open(path) as im:
        fast_used = io._decode_fast(path, fmt, im) is not None
    fast = io.open_image(path)
    monkeypatch.setattr(io, "_codecs", lambda: None)
    slow = io.open_image(path)
    np.testing.assert_array_equal(fast, slow)
    assert fast.dtype == slow.dtype and fast.flags.c_contiguous
    expected = mode in {"png": ("L", "LA", "RGB", "RGBA"), "jpeg": ("L", "RGB")}[fmt]
    assert fast_used == expected
