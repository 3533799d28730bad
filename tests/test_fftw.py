"""The FFTW plan cache (keys, LRU bound, thread safety) and the wisdom store."""

from __future__ import annotations

import json
import pickle
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyfftw
import pytest

import fftconv
from fftconv import _fftw
from fftconv._cachedir import CacheWarning
from reference import assert_close, reference


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """A private cache directory, wisdom forgotten before and after."""
    d = tmp_path / "cache"
    monkeypatch.setenv("FFTCONV_CACHE_DIR", str(d))
    monkeypatch.delenv("FFTCONV_NO_WISDOM", raising=False)
    assert _fftw.wait_for_upgrades(60)  # no measuring thread writes wisdom meanwhile
    old = _fftw.set_effort("estimate")
    _fftw._forget_wisdom()
    _fftw.clear_cache()
    yield d
    _fftw.set_effort(old)
    _fftw._forget_wisdom()
    _fftw.clear_cache()


# --- the plan cache -----------------------------------------------------------------------


def test_plans_are_reused_and_keyed_on_what_makes_them_different():
    _fftw.clear_cache()
    with _fftw.transform((32, 40), np.float32, (0, 1), "forward", 1) as p1:
        pass
    with _fftw.transform((32, 40), np.float32, (0, 1), "forward", 1) as p2:
        assert p2 is p1  # reused
    variants = [
        ((32, 40), np.float64, (0, 1), "forward", 1),
        ((32, 40), np.float32, (1,), "forward", 1),
        ((32, 40), np.float32, (0, 1), "backward", 1),
        ((32, 40), np.float32, (0, 1), "forward", 2),
        ((32, 41), np.float32, (0, 1), "forward", 1),
    ]
    for v in variants:
        with _fftw.transform(*v) as p:
            assert p is not p1
    key = _fftw._key((32, 40), np.float32, (0, 1), "forward", 1)
    assert pyfftw.simd_alignment in key  # alignment is part of the key


def test_concurrent_borrowers_get_distinct_plans():
    _fftw.clear_cache()
    with (
        _fftw.transform((16, 16), np.float64, (0, 1), "forward", 1) as a,
        _fftw.transform((16, 16), np.float64, (0, 1), "forward", 1) as b,
    ):
        assert a is not b
        assert not np.shares_memory(a.input_array, b.input_array)
    assert _fftw.cache_info()["plans"] == 2


def test_cache_is_bounded_lru(monkeypatch):
    _fftw.clear_cache()
    one = 64 * 64 * 8 + 64 * 33 * 16
    monkeypatch.setattr(_fftw, "MAX_CACHE_BYTES", 3 * one)
    shapes = [(64, 64), (64, 64 + 1), (64, 64 + 2), (64, 64 + 3)]
    for s in shapes[:3]:
        with _fftw.transform(s, np.float64, (0, 1), "forward", 1):
            pass
    with _fftw.transform(shapes[0], np.float64, (0, 1), "forward", 1):  # use the oldest again
        pass
    ev = _fftw.cache_info()["evictions"]
    with _fftw.transform(shapes[3], np.float64, (0, 1), "forward", 1):
        pass
    info = _fftw.cache_info()
    assert info["evictions"] > ev and info["bytes"] <= 3 * one
    keys = [k[0] for k in _fftw._idle]
    assert shapes[0] in keys and shapes[1] not in keys  # the least recently used went first
    _fftw.clear_cache()


def test_sixteen_threads_fifty_calls_mixed_shapes_all_correct():
    rng = np.random.default_rng(0)
    cases = []
    for i, (shape, ks, mode, boundary, method) in enumerate(
        [
            ((64, 80), 5, "same", "fill", "fft"),
            ((100, 37), 9, "full", "symmetric", "oa"),
            ((33, 33), 3, "valid", "wrap", "auto"),
            ((96, 64), 7, "same", "wrap", "fft"),
            ((50, 120), 11, "same", "mirror", "oa"),
            ((72, 72), 15, "full", "nearest", "auto"),
            ((40, 41), 4, "same", "fill", "direct"),
            ((128, 32), 6, "same", "wrap", "oa"),
        ]
    ):
        a = rng.standard_normal(shape).astype(np.float32 if i % 2 else np.float64)
        k = rng.standard_normal((ks, ks - 1 if ks > 3 else ks)).astype(a.dtype)
        cases.append((a, k, mode, boundary, method, reference(a, k, mode, boundary)))
    failures = []
    start = threading.Barrier(16)

    def worker(t):
        start.wait()
        for j in range(50):
            a, k, mode, boundary, method, ref = cases[(t + j) % len(cases)]
            got = fftconv.convolve(a, k, mode, boundary, method=method, threads=1 + j % 2)
            try:
                assert_close(got, ref, a.dtype)
            except AssertionError as exc:
                failures.append((t, j, str(exc)))

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(worker, range(16)))
    assert not failures, failures[:3]


# --- wisdom ---------------------------------------------------------------------------------


def _measure_small_plan():
    old = _fftw.set_effort("measure")
    try:
        with _fftw.transform((24, 20), np.float64, (0, 1), "forward", 1):
            pass
    finally:
        _fftw.set_effort(old)


def test_measured_plans_are_saved_atomically_and_reused(cache_dir):
    _measure_small_plan()
    path = _fftw.wisdom_path()
    assert path.parent == cache_dir and pyfftw.fftw_version in path.name
    doc = json.loads(path.read_text())
    assert doc["fftw_version"] == pyfftw.fftw_version and doc["wisdom"]["double"]
    assert [p.name for p in cache_dir.iterdir()] == [path.name]  # no temporary left behind
    # A fresh process: no wisdom in memory, the file loaded on first use.
    _fftw._forget_wisdom()
    _fftw.clear_cache()
    with _fftw.transform((24, 20), np.float64, (0, 1), "forward", 1) as p:
        assert "FFTW_WISDOM_ONLY" in p.flags  # the measured plan, without measuring
    with _fftw.transform((24, 22), np.float64, (0, 1), "forward", 1) as p:
        assert p.flags[0] == "FFTW_ESTIMATE"  # no wisdom for this one: estimate, no waiting


def _write_valid_wisdom(cache_dir):
    _measure_small_plan()
    _fftw._forget_wisdom()
    return _fftw.wisdom_path()


def _corrupt(path):
    path.write_bytes(b"\x00\xff not json at all")


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _edit(path):
    doc = json.loads(path.read_text())
    doc["wisdom"]["double"] = doc["wisdom"]["double"].replace("fftw", "fftv")
    path.write_text(json.dumps(doc))


def _foreign(path):
    doc = json.loads(path.read_text())
    doc["fftw_version"] = "2.1.5"
    path.write_text(json.dumps(doc))


def _pickled(path):
    path.write_bytes(pickle.dumps({"wisdom": ("x",)}))


@pytest.mark.parametrize(
    "damage,match",
    [
        (_corrupt, "ignoring FFTW wisdom"),
        (_truncate, "ignoring FFTW wisdom"),
        (_edit, "checksum"),
        (_foreign, "written by FFTW '2.1.5'"),
        (_pickled, "ignoring FFTW wisdom"),
    ],
)
def test_damaged_wisdom_warns_and_never_crashes(cache_dir, damage, match):
    path = _write_valid_wisdom(cache_dir)
    damage(path)
    _fftw.clear_cache()
    rng = np.random.default_rng(1)
    a, k = rng.standard_normal((30, 30)), rng.standard_normal((5, 5))
    with pytest.warns(CacheWarning, match=match):
        got = fftconv.convolve(a, k, "same", method="fft")
    assert_close(got, reference(a, k, "same"), np.float64)


def test_read_only_cache_dir_warns_and_carries_on(cache_dir, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("a file where the cache directory should be")
    monkeypatch.setenv("FFTCONV_CACHE_DIR", str(blocker / "cache"))
    _fftw._forget_wisdom()
    _fftw.clear_cache()
    with pytest.warns(CacheWarning, match="cannot save FFTW wisdom"):
        _measure_small_plan()
    got = fftconv.convolve(np.ones((10, 10)), np.ones((3, 3)), method="fft")
    assert got[5, 5] == pytest.approx(9.0)
    _fftw._forget_wisdom()


def test_read_only_directory_permissions(cache_dir):
    import os

    cache_dir.mkdir()
    cache_dir.chmod(0o500)
    try:
        if os.access(cache_dir, os.W_OK):
            pytest.skip("running as a user who can write anywhere (root)")
        with pytest.warns(CacheWarning, match="cannot save FFTW wisdom"):
            assert not _fftw.save_wisdom()
    finally:
        cache_dir.chmod(0o700)


def test_no_wisdom_env_turns_it_off(cache_dir, monkeypatch):
    monkeypatch.setenv("FFTCONV_NO_WISDOM", "1")
    _measure_small_plan()
    assert not cache_dir.exists()
    cache_dir.mkdir()
    _corrupt(_fftw.wisdom_path())
    assert _fftw.load_wisdom(force=True) is False  # not even read


def test_set_effort_validates():
    with pytest.raises(ValueError, match="effort='fast'"):
        _fftw.set_effort("fast")


def test_cold_plans_are_cheap(cache_dir):
    # The first transform of a size must not spend seconds planning (FFTW_MEASURE).
    t = time.perf_counter()
    with _fftw.transform((1536, 1536), np.float32, (0, 1), "forward", 1) as p:
        pass
    assert time.perf_counter() - t < 1.0 and "FFTW_MEASURE" not in p.flags


def test_often_used_small_transforms_are_measured_in_the_background(cache_dir):
    old = _fftw.set_effort("auto")
    try:
        key = ((48, 40), np.float32, (0, 1), "forward", 1)
        for _ in range(_fftw.UPGRADE_AFTER):
            with _fftw.transform(*key) as p:
                assert p.flags[0] == "FFTW_ESTIMATE"  # the first calls never wait for FFTW
        assert _fftw.wait_for_upgrades(60)
        with _fftw.transform(*key) as p:
            assert "FFTW_ESTIMATE" not in p.flags
            p.input_array[...] = 1
            p.execute()
            assert p.output_array[0, 0] == pytest.approx(48 * 40)
        assert _fftw.wisdom_path().exists()  # later processes get the measured plan at once
        # Large transforms are not measured behind the caller's back.
        big = ((2048, 1024), np.float32, (0, 1), "forward", 1)
        for _ in range(_fftw.UPGRADE_AFTER + 1):
            with _fftw.transform(*big):
                pass
        assert _fftw.wait_for_upgrades(1)
        with _fftw.transform(*big) as p:
            assert p.flags[0] == "FFTW_ESTIMATE"
    finally:
        _fftw.set_effort(old)
