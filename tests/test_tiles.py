from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fftconv
from fftconv import io
from fftconv import kernels as K
from fftconv.tiles import (
    compute_dtype,
    convolve_tiled,
    parse_memory,
    plan_tiles,
    tile_shape,
    whole_array_bytes,
)

MODES = ("full", "same", "valid")
BOUNDARIES = ("fill", "wrap", "symmetric", "mirror", "nearest")


def _ref(img, k, mode, boundary, correlate=False, fillvalue=0, channel_axis=None):
    f = fftconv.correlate if correlate else fftconv.convolve
    return f(img, k, mode, boundary, fillvalue, method="direct", channel_axis=channel_axis)


def _close(out, ref, tol):
    scale = max(1.0, float(np.max(np.abs(ref))))
    assert out.shape == ref.shape
    err = float(np.max(np.abs(out - ref))) / scale
    assert err <= tol, err


@pytest.mark.parametrize("mode, boundary", list(itertools.product(MODES, BOUNDARIES)))
@pytest.mark.parametrize("correlate", [False, True])
def test_tiles_equal_in_memory_every_mode_and_boundary(mode, boundary, correlate):
    # Tiles (3 x 2) smaller than the halo (kernel 4 x 7, even and odd), so blocks
    # reach across several tiles and, at the edges, into the boundary.
    rng = np.random.default_rng(hash((mode, boundary, correlate)) % 2**32)
    img = rng.standard_normal((23, 19))
    k = rng.standard_normal((4, 7))
    ref = _ref(img, k, mode, boundary, correlate, fillvalue=0.25)
    for method in ("direct", "fft"):
        out = convolve_tiled(
            img,
            k,
            mode=mode,
            boundary=boundary,
            fillvalue=0.25,
            correlate=correlate,
            method=method,
            tile=(3, 2),
            threads=2,
        )
        _close(out, ref, 1e-10)


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_kernel_larger_than_image_pads_repeatedly(boundary):
    # Pads wider than the image: wrap/symmetric/mirror repeat it several times.
    rng = np.random.default_rng(3)
    img = rng.random((5, 4))
    k = rng.random((13, 11))
    for mode in ("same", "full"):
        out = convolve_tiled(img, k, mode=mode, boundary=boundary, tile=2, method="fft")
        _close(out, _ref(img, k, mode, boundary), 1e-10)


def test_large_tiles_and_one_tile():
    rng = np.random.default_rng(4)
    img = rng.random((40, 33))
    k = rng.random((5, 5))
    ref = _ref(img, k, "same", "symmetric")
    for tile in [(40, 33), (64, 64), (17, 33), (1, 1)]:
        _close(convolve_tiled(img, k, tile=tile), ref, 1e-10)


def test_photo_dtypes_round_and_clip():
    rng = np.random.default_rng(5)
    img = (rng.random((31, 27, 3)) * 255).astype(np.uint8)
    k = K.sharpen()  # overshoots: outputs below 0 and above 255
    ref = _ref(img.astype(np.float64), k, "same", "mirror", channel_axis=-1)
    assert ref.min() < 0 and ref.max() > 255
    out = convolve_tiled(img, k, boundary="mirror", channel_axis=-1, tile=(8, 5))
    assert out.dtype == np.uint8
    expect = np.clip(np.rint(ref), 0, 255)
    # computed in float32: a value within float32 rounding of .5 may round either way
    assert np.abs(out.astype(float) - expect).max() <= 1
    assert np.mean(out.astype(float) != expect) < 1e-3
    img16 = (rng.random((20, 20)) * 65535).astype(np.uint16)
    out16 = convolve_tiled(img16, K.box(3), tile=7)
    assert out16.dtype == np.uint16
    ref16 = _ref(img16.astype(np.float64), K.box(3), "same", "symmetric")
    assert np.abs(out16.astype(float) - np.rint(ref16)).max() <= 1
    f32 = convolve_tiled(img16, K.box(3), tile=7, dtype=np.float32)
    _close(f32, ref16, 1e-5)


def test_float32_and_float64_precision():
    rng = np.random.default_rng(6)
    img = rng.random((50, 45)).astype(np.float32)
    k = K.gaussian(3.0)
    out = convolve_tiled(img, k, tile=16, method="fft")
    assert out.dtype == np.float32
    _close(out, _ref(img.astype(np.float64), k, "same", "symmetric"), 1e-5)
    out64 = convolve_tiled(img.astype(np.float64), k, tile=16, method="fft")
    assert out64.dtype == np.float64
    _close(out64, _ref(img.astype(np.float64), k, "same", "symmetric"), 1e-10)


def test_compute_dtype_rules():
    assert compute_dtype(np.uint8, np.float64) == np.float32
    assert compute_dtype(np.uint16, np.float64) == np.float32
    assert compute_dtype(np.float64, np.float64) == np.float64
    assert compute_dtype(np.uint8, np.float64, np.float64) == np.float64
    assert compute_dtype(np.float32, np.complex128) == np.complex64


def test_complex_kernel_magnitude_and_complex_output():
    rng = np.random.default_rng(7)
    img = (rng.random((30, 30)) * 255).astype(np.uint8)
    k = K.scharr()
    ref = _ref(img.astype(np.float64), k, "same", "nearest")
    out = convolve_tiled(img, k, boundary="nearest", tile=9)
    assert out.dtype == np.complex64
    _close(out, ref, 1e-5)
    mag = convolve_tiled(
        img, k, np.empty((30, 30), np.float32), boundary="nearest", tile=9, magnitude=True
    )
    _close(mag, np.abs(ref), 1e-5)
    with pytest.raises(ValueError, match="magnitude=True"):
        convolve_tiled(img, k, np.empty((30, 30), np.float32), boundary="nearest")


def test_non_finite_samples_propagate_as_in_memory():
    rng = np.random.default_rng(8)
    img = rng.random((30, 30))
    img[4, 20] = np.nan
    img[25, 3] = np.inf
    k = rng.random((5, 5)) - 0.3
    ref = _ref(img, k, "same", "fill")
    out = convolve_tiled(img, k, boundary="fill", tile=7, method="fft")
    np.testing.assert_array_equal(np.isnan(out), np.isnan(ref))
    np.testing.assert_array_equal(np.isinf(out), np.isinf(ref))
    fin = np.isfinite(ref)
    _close(out[fin], ref[fin], 1e-10)


def test_memmap_npy_tiff_zarr_round_trips(tmp_path):
    zarr = pytest.importorskip("zarr")
    tifffile = pytest.importorskip("tifffile")
    rng = np.random.default_rng(9)
    img = (rng.random((70, 90)) * 255).astype(np.uint8)
    k = K.gaussian(2.0)
    ref = np.clip(np.rint(_ref(img.astype(np.float64), k, "same", "wrap")), 0, 255)
    np.save(tmp_path / "in.npy", img)
    tifffile.imwrite(tmp_path / "tiled.tif", img, tile=(32, 32), compression="zlib")
    tifffile.imwrite(tmp_path / "big.tif", img, bigtiff=True, rowsperstrip=16)
    z = zarr.open_array(
        str(tmp_path / "in.zarr"), mode="w", shape=img.shape, chunks=(16, 16), dtype=img.dtype
    )
    z[:] = img
    sources = [io.open_image(tmp_path / n) for n in ("in.npy", "tiled.tif", "big.tif", "in.zarr")]
    assert isinstance(sources[0], np.memmap) and isinstance(sources[2], np.memmap)
    assert not isinstance(sources[1], np.ndarray)  # tiled + compressed: read through zarr
    for i, src in enumerate(sources):
        for suffix in (".npy", ".tif", ".zarr"):
            path = tmp_path / f"out{i}{suffix}"
            with io.create_output(path, img.shape, np.uint8, chunks=(20, 20)) as dst:
                convolve_tiled(src, k, dst.array, boundary="wrap", tile=(13, 11), threads=2)
            got = np.asarray(io.open_image(path)[:])
            assert np.abs(got.astype(float) - ref).max() <= 1
    np.testing.assert_array_equal(np.load(tmp_path / "in.npy"), img)  # IN untouched


def test_progress_callback_counts_every_tile():
    calls = []
    convolve_tiled(
        np.ones((20, 20)),
        np.ones((3, 3)),
        tile=(6, 7),
        progress=lambda done, total: calls.append((done, total)),
    )
    assert calls[-1] == (12, 12) and len(calls) == 12


def test_argument_errors():
    img = np.ones((10, 10))
    with pytest.raises(ValueError, match="dst has shape"):
        convolve_tiled(img, np.ones((3, 3)), np.empty((9, 9)))
    with pytest.raises(ValueError, match="valid"):
        convolve_tiled(img, np.ones((12, 3)), mode="valid")
    with pytest.raises(ValueError, match="boundary"):
        convolve_tiled(img, np.ones((3, 3)), boundary="reflect")
    with pytest.raises(ValueError, match="too small"):
        convolve_tiled(img, np.ones((3, 3)), max_memory="1MB")
    with pytest.raises(ValueError, match="tile"):
        convolve_tiled(img, np.ones((3, 3)), tile=(0, 3))
    with pytest.raises(ValueError, match="max_memory"):
        parse_memory("2 gigs")


def test_parse_memory_units():
    assert parse_memory("2GB") == 2 * 10**9
    assert parse_memory("512MiB") == 512 * 2**20
    assert parse_memory("1.5 G") == 1_500_000_000
    assert parse_memory(123) == 123


def test_tile_shape_fits_and_grows_with_the_budget():
    shape, k = (65536, 65536), (31, 31)
    prev = 0
    for budget in (100e6, 500e6, 2e9, 8e9):
        t = tile_shape(shape, k, 4, int(budget), 2, src_itemsize=1, out_itemsize=1, prefer=None)
        assert t[0] == t[1] > prev
        prev = t[0]
        # blocks have FFT-fast lengths
        assert fftconv._fftw.fast_length(t[0] + 30) == t[0] + 30
    prob = fftconv._problem.make_problem(
        np.broadcast_to(np.float32(0), shape),
        np.ones(k, np.float32),
        "same",
        "fill",
        0,
        None,
        None,
        False,
    )[0]
    plan = plan_tiles(prob, max_memory=500 * 10**6, threads=2, src_itemsize=1, out_itemsize=1)
    assert plan.memory <= 500 * 10**6
    assert "tiles" in str(plan) and plan.tiles == plan.grid[0] * plan.grid[1]
    assert tile_shape((300, 200), (9, 9), 4, 2 * 10**9, 2) == (300, 200)
    # By default blocks stay near the cache-friendly side, however large the budget,
    # and grow with large kernels (4 (k - 1)).
    t = tile_shape(shape, k, 4, 8 * 10**9, 2)
    assert t[0] + 30 <= 768
    big = tile_shape(shape, (301, 301), 4, 8 * 10**9, 2)
    assert 900 <= big[0] + 300 <= 1200


def test_public_api_max_memory_routes_to_tiles(monkeypatch):
    from fftconv import tiles

    rng = np.random.default_rng(10)
    img = rng.random((600, 500))
    k = rng.random((21, 21))
    ref = fftconv.convolve(img, k, "same", "mirror")
    calls = []
    real = tiles.run_tiled
    monkeypatch.setattr(tiles, "run_tiled", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    budget = 24 * 10**6
    assert (
        whole_array_bytes(
            fftconv._problem.make_problem(img, k, "same", "mirror", 0, None, None, False)[0]
        )
        > budget - 16 * 2**20
    )
    out = fftconv.convolve(img, k, "same", "mirror", max_memory=budget)
    assert calls, "expected a tiled run"
    _close(out, ref, 1e-10)
    outc = fftconv.correlate(img, k, "same", "wrap", max_memory=budget)
    _close(outc, fftconv.correlate(img, k, "same", "wrap"), 1e-10)
    calls.clear()
    fftconv.convolve(img, k, "same", "mirror", max_memory="4GB")
    assert not calls  # fits: runs in memory


_PEAK_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    from fftconv import io
    from fftconv.tiles import convolve_tiled
    import fftconv
    # Load the compiled code first: the budget bounds data, and numba's code and
    # LLVM (about 60 MB, once per process) are not data.
    for m in ("direct", "separable"):
        fftconv.convolve(np.ones((64, 64), np.float32), np.ones((31, 31), np.float32),
                         "valid", method=m)
    src = io.open_image(sys.argv[1])
    def status(key):
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) * 1024 for l in f if l.startswith(key + ":"))
    base = status("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:  # reset the peak (VmHWM) to now
        f.write("5")
    with io.create_output(sys.argv[2], src.shape, np.float32) as out:
        plan = convolve_tiled(src, np.ones((31, 31), np.float32) / 961, out.array,
                              max_memory=int(sys.argv[3]), threads=2)
    peak = status("VmHWM")
    print(json.dumps(dict(base=base, peak=peak)))
""")


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux /proc")
def test_peak_memory_stays_within_the_budget(tmp_path):
    # A 3072x3072 float32 image (36 MiB) and its output, both memory-mapped files,
    # with a 24 MB budget: the resident memory the run adds must stay within it
    # (memory-mapped pages are released behind the tiles).
    img = np.lib.format.open_memmap(tmp_path / "in.npy", "w+", np.float32, (3072, 3072))
    rng = np.random.default_rng(11)
    for r in range(0, 3072, 512):
        img[r : r + 512] = rng.random((512, 3072), dtype=np.float32)
    img.flush()
    del img
    budget = 24 * 10**6
    res = subprocess.run(
        [
            sys.executable,
            "-c",
            _PEAK_SCRIPT,
            str(tmp_path / "in.npy"),
            str(tmp_path / "out.npy"),
            str(budget),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    )
    assert res.returncode == 0, res.stderr
    m = json.loads(res.stdout.strip().splitlines()[-1])
    extra = m["peak"] - m["base"]
    assert extra <= budget, (extra / 1e6, budget / 1e6)
    out = np.load(tmp_path / "out.npy", mmap_mode="r")
    src = np.load(tmp_path / "in.npy", mmap_mode="r")
    ref = fftconv.convolve(
        np.asarray(src[:200, :200]), np.ones((31, 31), np.float32) / 961, "valid"
    )
    _close(np.asarray(out[15:185, 15:185]), ref, 1e-5)


def test_chunk_cache_serves_any_slice_and_stays_bounded(tmp_path):
    zarr = pytest.importorskip("zarr")
    from fftconv.tiles import _ChunkCache, _with_chunk_cache

    arr = np.arange(50 * 70 * 2, dtype=np.uint16).reshape(50, 70, 2)
    z = zarr.open_array(
        str(tmp_path / "c.zarr"), mode="w", shape=arr.shape, chunks=(16, 16, 2), dtype=arr.dtype
    )
    z[:] = arr
    one_chunk = 16 * 16 * 2 * 2
    cache = _ChunkCache(z, 3 * one_chunk)
    rng = np.random.default_rng(12)
    for _ in range(40):
        r0, c0 = rng.integers(0, 49), rng.integers(0, 69)
        r1, c1 = rng.integers(r0 + 1, 51), rng.integers(c0 + 1, 71)
        np.testing.assert_array_equal(cache[r0:r1, c0:c1], arr[r0:r1, c0:c1])
        assert cache.bytes <= 3 * one_chunk or len(cache.lru) == 1
    wrapped, size = _with_chunk_cache(z, 10**9)
    assert isinstance(wrapped, _ChunkCache) and size == 3 * one_chunk * 5
    assert _with_chunk_cache(z, 10)[1] == 0  # no room: read the store directly
    assert _with_chunk_cache(arr, 10**9)[0] is arr


@pytest.mark.parametrize(
    "value", ["1e400GB", "1e400", "99999999999999999999999999999TB", 10**400, 2**63]
)
def test_parse_memory_refuses_absurd_sizes(value):
    # OverflowError before.
    with pytest.raises(ValueError, match="more than any machine has") as e:
        parse_memory(value)
    assert len(str(e.value)) < 150


def test_budget_that_admits_only_absurd_tiles_is_refused_naming_one_that_works():
    # 16850356 bytes gave 1x1 tiles: 88,200 of them, 60 s against 0.03 s in memory.
    rng = np.random.default_rng(0)
    x = rng.standard_normal((145, 553)) + 1j * rng.standard_normal((145, 553))
    k = rng.standard_normal((6, 36))
    with pytest.raises(ValueError, match=r"tiles of 32x32 outputs.*need max_memory=") as e:
        fftconv.convolve(x, k, mode="same", max_memory=16850356, threads=2)
    import re

    need = float(re.search(r"need max_memory=([0-9.]+) MB", str(e.value)).group(1)) * 1e6
    got = fftconv.convolve(x, k, mode="same", max_memory=int(need) + 1, threads=2)
    ref = fftconv.convolve(x, k, mode="same")
    assert np.abs(got - ref).max() <= 1e-10 * np.abs(x).max() * np.abs(k).sum()
