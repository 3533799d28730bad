"""fftconv.convolve_file: the file job with keyword arguments (what `fftconv apply` runs)."""

from __future__ import annotations

import numpy as np
import pytest

import fftconv
from fftconv import kernels
from fftconv.jobs import JobError


def test_convolve_file_equals_the_in_memory_result(tmp_path):
    rng = np.random.default_rng(0)
    img = rng.random((90, 70))
    np.save(tmp_path / "in.npy", img)
    calls = []
    res = fftconv.convolve_file(
        tmp_path / "in.npy",
        tmp_path / "out.npy",
        "gaussian:sigma=2",
        boundary="mirror",
        max_memory="8GB",  # counts this process's RSS, which the suite grows past 1 GB
        threads=1,
        progress=lambda done, total: calls.append((done, total)),
    )
    got = np.load(tmp_path / "out.npy")
    want = fftconv.convolve(img, kernels.gaussian(2.0), "same", "mirror")
    assert res["shape"] == got.shape == img.shape and got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    assert calls and calls[-1][0] == calls[-1][1] == res["plan"].tiles


def test_convolve_file_refuses_to_overwrite_and_to_modify_its_input(tmp_path):
    np.save(tmp_path / "in.npy", np.ones((8, 8)))
    np.save(tmp_path / "out.npy", np.zeros((2, 2)))
    with pytest.raises(JobError, match="exists"):
        fftconv.convolve_file(tmp_path / "in.npy", tmp_path / "out.npy", "box:3")
    with pytest.raises(JobError, match="is IN"):
        fftconv.convolve_file(tmp_path / "in.npy", tmp_path / "in.npy", "box:3", force=True)
    with pytest.raises(JobError, match="kernel"):
        fftconv.convolve_file(tmp_path / "in.npy", tmp_path / "x.npy", np.ones(3))
    assert np.load(tmp_path / "out.npy").shape == (2, 2)


def test_stream_frees_a_decoded_input_before_encoding(tmp_path, monkeypatch):
    """A PNG input (decoded whole) is no longer held when the PNG output is encoded,
    so the two never sit in memory together with the encoder's copy."""
    pytest.importorskip("numba")
    Image = pytest.importorskip("PIL.Image")
    import weakref

    from fftconv import io, jobs

    img = np.random.default_rng(0).integers(0, 256, (40, 30, 3), dtype=np.uint8)
    Image.fromarray(img).save(tmp_path / "in.png")
    refs, alive = [], []
    opened = jobs._open

    def _open(*a, **k):
        arr = opened(*a, **k)
        refs.append(weakref.ref(arr))
        return arr

    commit = io.AtomicOutput.commit

    def check(self):
        alive.append(refs[0]() is not None)
        return commit(self)

    monkeypatch.setattr(jobs, "_open", _open)
    monkeypatch.setattr(io.AtomicOutput, "commit", check)
    res = fftconv.convolve_file(tmp_path / "in.png", tmp_path / "out.png", "gaussian:sigma=1")
    assert res["plan"].method == "stream" and alive and not any(alive)
    want = fftconv.convolve(img.astype(np.float64), kernels.gaussian(1.0)[..., None], "same",
                            boundary="symmetric")  # fmt: skip
    got = io.open_image(tmp_path / "out.png").astype(np.float64)
    assert np.abs(got - want).max() <= 0.5 + 1e-6
