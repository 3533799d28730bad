"""fftconv.dask: Dask arrays chunk by chunk, on the threaded scheduler and on a real
two-process distributed.LocalCluster; zarr in and out; a worker killed mid-run."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import threading
import time
import warnings

import numpy as np
import pytest

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
zarr = pytest.importorskip("zarr")

import fftconv  # noqa: E402
import fftconv.dask as fd  # noqa: E402
from reference import assert_close, direct_reference  # noqa: E402

# The chunkings here are small or ragged on purpose; the tests that check the warnings
# catch them themselves.
pytestmark = pytest.mark.filterwarnings("ignore::fftconv.dask.ChunkWarning")

BOUNDARIES = ("fill", "wrap", "symmetric", "mirror", "nearest")
MODES = ("same", "full", "valid")

#: Each worker's memory limit. A worker process holding numpy, scipy, pyFFTW, numba
#: and Dask is about 240 MB resident already; the nanny kills a worker past 95%.
WORKER_MEMORY = 650e6


@pytest.fixture(scope="module")
def client():
    # Pausing and spilling are off so that the limit is a hard one (the nanny's kill
    # at 95%), not a slowdown.
    cfg = {
        "distributed.worker.memory.pause": False,
        "distributed.worker.memory.spill": False,
        "distributed.worker.memory.target": False,
        "distributed.logging.distributed": "error",
    }
    with dask.config.set(cfg):
        cluster = distributed.LocalCluster(
            n_workers=2,
            processes=True,
            threads_per_worker=1,
            dashboard_address=None,
            host="127.0.0.1",
            memory_limit=WORKER_MEMORY,
        )
        cl = distributed.Client(cluster)
        try:
            yield cl
        finally:
            cl.close()
            cluster.close()
    assert cluster.status.name == "closed"


def _pids(client) -> dict:
    return client.run(os.getpid)


def _func(correlate: bool):
    return (fd.correlate, fftconv.correlate) if correlate else (fd.convolve, fftconv.convolve)


def _quiet(f, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fd.ChunkWarning)
        return f(*args, **kw)


# --------------------------------------------------------------------------- optional


def test_import_fftconv_does_not_import_dask():
    # pyFFTW itself imports dask.array.fft when Dask is installed; fftconv must add
    # nothing to that, and must work where Dask is not installed at all.
    code = (
        "import sys\n"
        "import pyfftw\n"
        "before = {m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')}\n"
        "import fftconv, numpy as np\n"
        "fftconv.convolve(np.ones((4, 4)), np.ones((2, 2)))\n"
        "after = {m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')}\n"
        "assert after == before, sorted(after - before)\n"
        "assert 'fftconv.dask' not in sys.modules\n"
    )
    blocked = (
        "import sys\n"
        "sys.modules['dask'] = None\n"  # as if Dask were not installed
        "import fftconv, numpy as np\n"
        "assert fftconv.convolve(np.ones(3), np.ones(2)).tolist() == [1, 2, 2, 1]\n"
        "try:\n"
        "    import fftconv.dask\n"
        "except ImportError:\n"
        "    pass\n"
        "else:\n"
        "    raise AssertionError('fftconv.dask imported without dask')\n"
    )
    for c in (code, blocked):
        res = subprocess.run(
            [sys.executable, "-c", c],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        assert res.returncode == 0, res.stderr


# --------------------------------------------------------------------------- results


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_every_mode_through_the_cluster(client, rng, boundary):
    """Ragged chunks, an odd and an even kernel, convolve and correlate, against the
    in-memory call, computed by the worker processes."""
    image = rng.standard_normal((61, 47))
    x = da.from_array(image, chunks=(24, 20))
    lazy, want = [], []
    for kshape, corr in (((6, 3), False), ((5, 5), True)):
        k = rng.standard_normal(kshape)
        f, g = _func(corr)
        for mode in MODES:
            lazy.append(_quiet(f, x, k, mode, boundary, 2.5))
            want.append(g(image, k, mode, boundary, 2.5))
    got = client.gather(client.compute(lazy))
    for r, w in zip(got, want):
        assert_close(r, w)


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_every_mode_threaded(rng, boundary):
    image = rng.standard_normal((37, 29))
    lazy, want = [], []
    for chunks in ((10, 8), (37, 29), (5, 29)):
        x = da.from_array(image, chunks=chunks)
        for kshape in ((1, 1), (3, 4), (6, 5), (12, 2)):
            k = rng.standard_normal(kshape)
            for mode in MODES:
                for corr in (False, True):
                    f, g = _func(corr)
                    lazy.append(_quiet(f, x, k, mode, boundary, 1.5))
                    want.append(g(image, k, mode, boundary, 1.5))
    for r, w in zip(dask.compute(*lazy, scheduler="threads"), want):
        assert_close(r, w)


def test_against_the_reference(rng):
    image = rng.standard_normal((30, 26))
    k = rng.standard_normal((7, 4))
    x = da.from_array(image, chunks=(9, 10))
    for boundary in BOUNDARIES:
        for mode in MODES:
            got = _quiet(fd.correlate, x, k, mode, boundary, -1.0).compute(scheduler="threads")
            assert_close(got, direct_reference(image, k, mode, boundary, -1.0, correlate=True))


@pytest.mark.parametrize("chunks", [(3, 2), (1, 50), (40, 50), (13, 50), (39, 7)])
def test_odd_chunkings(rng, chunks):
    """Chunks smaller than the halo (rechunked, with a warning), ragged last chunks,
    one chunk; a kernel larger than a chunk in every mode."""
    image = rng.standard_normal((40, 50))
    k = rng.standard_normal((9, 8))
    x = da.from_array(image, chunks=chunks)
    for mode in MODES:
        for boundary in ("symmetric", "wrap"):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                y = fd.convolve(x, k, mode, boundary)
            small = [w for w in caught if "smaller than the halo" in str(w.message)]
            if chunks in ((3, 2), (1, 50), (13, 50)):  # (13, 13, 13, 1): the last
                assert small, (mode, chunks)
            elif chunks == (40, 50):
                assert not caught
            assert all(issubclass(w.category, fd.ChunkWarning) for w in caught)
            assert_close(y.compute(scheduler="threads"), fftconv.convolve(image, k, mode, boundary))


def test_chunks_smaller_than_halo_are_merged(rng):
    x = da.from_array(rng.standard_normal((20, 20)), chunks=2)
    with pytest.warns(fd.ChunkWarning, match=r"smaller than the halo of the 9x9 kernel"):
        y = fd.convolve(x, np.ones((9, 9)))
    assert y.chunks == ((4, 4, 4, 4, 4), (4, 4, 4, 4, 4))
    assert_close(
        y.compute(scheduler="threads"), fftconv.convolve(x.compute(), np.ones((9, 9)), "same")
    )


def test_wasteful_chunks_get_a_suggestion():
    x = da.zeros((4096, 4096), chunks=256, dtype=np.float32)
    with pytest.warns(
        fd.ChunkWarning, match=r"read 123% more samples.*chunks of about \(1280, 1280\)"
    ):
        fd.convolve(x, np.ones((127, 127), np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fd.convolve(x.rechunk(1280), np.ones((127, 127), np.float32))
        fd.convolve(x, np.ones((7, 7), np.float32))


def test_valid_with_an_image_smaller_than_the_kernel(rng):
    image = rng.standard_normal((5, 6))
    k = rng.standard_normal((9, 8))
    for corr in (False, True):
        f, g = _func(corr)
        got = f(da.from_array(image, chunks=2), k, "valid").compute(scheduler="threads")
        assert_close(got, g(image, k, "valid"))


def test_channel_and_batch_axes(rng):
    rgb = rng.standard_normal((33, 29, 3))
    x = da.from_array(rgb, chunks=(10, 10, 2))
    k2, k3 = rng.standard_normal((5, 4)), rng.standard_normal((5, 4, 3))
    for k in (k2, k3):
        for mode in MODES:
            got = _quiet(fd.convolve, x, k, mode, "mirror", channel_axis=-1)
            assert got.chunks[2] == (2, 1)
            assert_close(
                got.compute(scheduler="threads"),
                fftconv.convolve(rgb, k, mode, "mirror", channel_axis=-1),
            )
    stack = rng.standard_normal((4, 20, 21))
    xs = da.from_array(stack, chunks=(1, 8, 21))
    ks = rng.standard_normal((1, 3, 6))
    got = _quiet(fd.correlate, xs, ks, "full", "nearest", axes=(1, 2))
    assert_close(
        got.compute(scheduler="threads"),
        fftconv.correlate(stack, ks, "full", "nearest", axes=(1, 2)),
    )


def test_dtypes_follow_the_in_memory_call(rng):
    img = rng.integers(0, 255, (30, 31), dtype=np.uint8)
    x = da.from_array(img, chunks=16)
    for k, fill in (
        (np.ones((3, 3), np.float32), 0.5),
        (np.ones((3, 3)), 2 + 1j),
        (rng.standard_normal((4, 4)) + 1j, 0),
    ):
        # one method for both: the dtype rules do not depend on it, and FFT needs no
        # compiled engine for each dtype
        got = fd.convolve(x, k, "same", "fill", fill, method="fft")
        want = fftconv.convolve(img, k, "same", "fill", fill, method="fft")
        assert got.dtype == want.dtype
        assert_close(got.compute(scheduler="threads"), want)


def test_bad_arguments():
    x = da.zeros((8, 8), chunks=4)
    with pytest.raises(TypeError, match="x must be a dask array; got ndarray"):
        fd.convolve(np.zeros((8, 8)), np.ones((3, 3)))
    with pytest.raises(ValueError, match="boundary='reflect' is ambiguous"):
        fd.convolve(x, np.ones((3, 3)), boundary="reflect")
    with pytest.raises(ValueError, match="mode='sam' is not one of"):
        fd.convolve(x, np.ones((3, 3)), mode="sam")
    with pytest.raises(ValueError, match="same number of dimensions"):
        fd.convolve(x, np.ones(3))


# --------------------------------------------------------------------------- the graph and reuse


def test_kernel_is_one_key_and_the_graph_grows_linearly():
    kernel = np.random.default_rng(0).standard_normal((63, 63))
    keys, sizes = [], []
    for n in (4, 8):
        x = da.zeros((n * 256, n * 256), chunks=256)
        y = _quiet(fd.convolve, x, kernel, boundary="symmetric")
        graph = dict(y.__dask_graph__())
        keys.append(len(graph))
        sizes.append(len(pickle.dumps(graph)))
        holding = [key for key, v in graph.items() if kernel.tobytes() in pickle.dumps(v)]
        assert len(holding) == 1, holding
    # 4x the chunks: about 4x the keys, and the graph's bytes grow far less than
    # another copy of the kernel per chunk would make them
    assert 3 < keys[1] / keys[0] < 5
    assert sizes[1] - sizes[0] < 48 * kernel.nbytes / 4


def test_convolvers_are_reused_in_each_worker(client):
    client.run(fd._clear_cache)
    x = da.random.default_rng(1).random((1024, 1024), chunks=256)
    k = np.ones((15, 15)) / 225
    client.compute(fd.convolve(x, k).sum()).result()
    info = client.run(fd.cache_info)
    assert sum(i.hits + i.misses for i in info.values()) == 16  # one lookup per chunk
    assert all(i.misses <= 1 and i.size <= 1 for i in info.values()), info


# --------------------------------------------------------------------------- zarr and files


def _store(path, a, chunks):
    z = zarr.open_array(str(path), mode="w", shape=a.shape, chunks=chunks, dtype=a.dtype)
    z[:] = a
    return z


def test_zarr_to_zarr_on_the_cluster(client, rng, tmp_path):
    image = rng.random((300, 260)).astype(np.float32)
    _store(tmp_path / "in.zarr", image, (128, 128))
    k = rng.random((17, 16)).astype(np.float32)
    out = tmp_path / "out.zarr"
    res = fd.convolve_file(tmp_path / "in.zarr", out, k, boundary="nearest", correlate=True)
    assert res["shape"] == image.shape and fd.is_complete(out)
    assert_close(zarr.open_array(str(out))[:], fftconv.correlate(image, k, "same", "nearest"))
    assert zarr.open_array(str(out)).chunks == (128, 128)
    with pytest.raises(FileExistsError, match="exists; pass force=True"):
        fd.convolve_file(tmp_path / "in.zarr", out, k)
    fd.convolve_file(tmp_path / "in.zarr", out, k, mode="full", force=True)
    assert_close(zarr.open_array(str(out))[:], fftconv.convolve(image, k, "full", "symmetric"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.zarr", "out.zarr"]
    assert not fd.is_complete(tmp_path / "in.zarr") and not fd.is_complete(tmp_path / "no.zarr")


def test_command_with_a_scheduler_address_and_local(client, rng, tmp_path):
    tifffile = pytest.importorskip("tifffile")
    from fftconv import cli

    rgba = (rng.random((200, 150, 4)) * 255).astype(np.uint8)
    tifffile.imwrite(
        tmp_path / "in.tif", rgba, tile=(64, 64), photometric="rgb", extrasamples=["unassalpha"]
    )
    k = fftconv.kernels.parse_spec("box:5").astype(np.float32)
    want = fftconv.io.cast_to(
        fftconv.convolve(
            rgba[..., :3].astype(np.float32), k[..., None], "same", "symmetric", axes=(0, 1)
        ),
        np.uint8,
    )
    addr = client.scheduler.address
    for where, out in ((addr, "a.zarr"), ("local", "b.zarr")):
        assert (
            cli.main(
                [
                    "apply",
                    str(tmp_path / "in.tif"),
                    str(tmp_path / out),
                    "--kernel",
                    "box:5",
                    "--dask",
                    where,
                    "--quiet",
                ]
            )
            == 0
        )
        got = zarr.open_array(str(tmp_path / out))[:]
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got[..., 3], rgba[..., 3])
        assert np.abs(got[..., :3].astype(int) - want).max() <= 1  # rounding of float32 sums
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "fftconv",
            "apply",
            str(tmp_path / "in.tif"),
            str(tmp_path / "a.zarr"),
            "-k",
            "box:5",
            "--dask",
            addr,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "exists" in res.stderr


@pytest.mark.slow
def test_store_larger_than_a_worker_memory_limit(client, tmp_path):
    """An 839 MB float64 store, 1.3 times each worker's 650 MB limit (and 2 times
    what a worker can hold beside its libraries), convolved store to store without a
    worker passing its limit, and right at its corners and inside. Each fresh worker
    peaks at about 510 MB resident here (240 MB of it libraries): some 30 chunks
    and halos of 8 MB in flight."""
    client.restart()  # fresh workers: no caches or plans from the tests before
    n = 10240
    x = da.random.default_rng(7).random((n, n), chunks=1024)
    x.to_zarr(str(tmp_path / "big.zarr"))
    assert n * n * 8 > 1.25 * WORKER_MEMORY
    before = _pids(client)
    k = fftconv.kernels.gaussian(2.0).astype(np.float32)
    out = tmp_path / "big-out.zarr"
    fd.convolve_file(tmp_path / "big.zarr", out, k, boundary="mirror")
    assert _pids(client) == before  # no worker passed its limit (the nanny would restart it)
    assert fd.is_complete(out)
    src, dst = zarr.open_array(str(tmp_path / "big.zarr")), zarr.open_array(str(out))
    h = k.shape[0] // 2
    for r, c in ((0, 0), (n - 300, n - 200), (1000, 5000), (4090, 1020)):
        r0, c0 = max(r - h, 0), max(c - h, 0)
        r1, c1 = min(r + 300 + h, n), min(c + 200 + h, n)
        want = fftconv.convolve(src[r0:r1, c0:c1], k, "same", "mirror")
        want = want[r - r0 : r - r0 + 300, c - c0 : c - c0 + 200]
        # at the true edges the crop above is the whole image's padding; inside, every
        # output sample read only real samples
        assert_close(dst[r : r + 300, c : c + 200], want)


def _slow(block):
    time.sleep(0.15)
    return block


def test_worker_killed_mid_run(client, rng, tmp_path):
    image = rng.random((1024, 1024))
    _store(tmp_path / "in.zarr", image, (128, 128))
    x = da.from_zarr(str(tmp_path / "in.zarr")).map_blocks(_slow)
    k = rng.random((9, 9))
    out = tmp_path / "out.zarr"
    outcome = {}

    def run():
        try:
            fd.to_zarr(fd.convolve(x, k, boundary="wrap"), out)
            outcome["ok"] = True
        except Exception as exc:  # the run may fail: then clearly, and with no store
            outcome["error"] = exc

    pids = _pids(client)
    t = threading.Thread(target=run)
    t.start()
    time.sleep(1.5)  # 64 chunks of 0.15 s on two workers: about 5 s in all
    assert t.is_alive() and not out.exists()
    os.kill(next(iter(pids.values())), signal.SIGKILL)
    t.join(120)
    assert not t.is_alive()
    if "ok" in outcome:
        assert fd.is_complete(out)
        assert_close(zarr.open_array(str(out))[:], fftconv.convolve(image, k, "same", "wrap"))
    else:
        assert isinstance(outcome["error"], Exception)
        assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if "fftconv-tmp" in p.name] == []
    client.wait_for_workers(2, timeout=60)
    assert set(_pids(client).values()) != set(pids.values())  # the nanny restarted it


def _fail_on_last(block, block_info=None):
    if block_info[0]["chunk-location"] == (1, 1):
        raise RuntimeError("disk on fire")
    return block


def test_a_failed_run_leaves_no_store(rng, tmp_path):
    x = da.from_array(rng.random((64, 64)), chunks=32).map_blocks(_fail_on_last, dtype=float)
    out = tmp_path / "out.zarr"
    with pytest.raises(RuntimeError, match="disk on fire"):
        fd.to_zarr(fd.convolve(x, np.ones((3, 3))), out)
    assert list(tmp_path.iterdir()) == []
    _store(out, np.zeros((4, 4)), (2, 2))  # an earlier store stays as it was
    with pytest.raises(RuntimeError, match="disk on fire"):
        fd.to_zarr(fd.convolve(x, np.ones((3, 3))), out, force=True)
    assert [p.name for p in tmp_path.iterdir()] == ["out.zarr"]
    assert zarr.open_array(str(out)).shape == (4, 4) and not fd.is_complete(out)


# --------------------------------------------------------------------------- match_template


@pytest.mark.parametrize("mode", ["constant", "edge", "reflect", "symmetric", "wrap"])
def test_match_template_against_the_in_memory_call(rng, mode):
    image = rng.random((45, 38))
    lazy, want = [], []
    for tshape in ((6, 4), (1, 3)):
        template = rng.random(tshape)
        mask = rng.random(tshape) > 0.3
        for chunks in ((12, 10), (4, 38)):
            x = da.from_array(image, chunks=chunks)
            for pad in (False, True):
                kw = dict(pad_input=pad, mode=mode, constant_values=0.25)
                lazy.append(_quiet(fd.match_template, x, template, **kw))
                want.append(fftconv.match_template(image, template, **kw))
                lazy.append(_quiet(fd.match_template, x, template, mask=mask, **kw))
                want.append(fftconv.match_template(image, template, mask=mask, **kw))
    # Each chunk centres its own pixels, which changes the rounding only; masked windows
    # of two or three pixels (the 1x3 template) amplify it most.
    for r, w in zip(dask.compute(*lazy, scheduler="threads"), want):
        assert r.shape == w.shape and r.dtype == w.dtype
        np.testing.assert_allclose(r, w, rtol=0, atol=1e-8)


def test_match_template_channels_on_the_cluster(client, rng):
    rgb = rng.random((40, 36, 3)).astype(np.float32)
    template = rgb[10:19, 5:12].copy()
    x = da.from_array(rgb, chunks=(16, 16, 1))
    got = client.compute(_quiet(fd.match_template, x, template, channel_axis=-1)).result()
    want = fftconv.match_template(rgb, template, channel_axis=-1)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-5)
    assert np.unravel_index(got.argmax(), got.shape) == (10, 5)
    with pytest.raises(ValueError, match="mode='mean' is not one of"):
        fd.match_template(x, template, True, "mean", channel_axis=-1)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_gets_the_dask_caches_locks_released():
    # Held at the fork (as by another thread caching a Convolver), a plain lock would
    # stay held in the child for ever.
    held = [fd._lock, fd._open_lock]
    for lk in held:
        lk.acquire()
    try:
        pid = os.fork()
        if pid == 0:
            ok = all(lk.acquire(timeout=5) for lk in held)
            os._exit(0 if ok else 1)
    finally:
        for lk in held:
            lk.release()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
