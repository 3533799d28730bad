"""Faults and hostile conditions: fork, signals, full disks, stale temporary files,
corrupt caches, threads sharing a Convolver. Every subprocess has a timeout, so a
hang fails the test instead of hanging CI."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from _slow_job import slow_job

import fftconv

POSIX = os.name == "posix"


def _python(
    code: str, timeout: float = 120, env=None, args=(), **kw
) -> subprocess.CompletedProcess:
    """Run `code` (with `args` in sys.argv) in a fresh interpreter (this checkout's
    fftconv) with a timeout."""
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(os.path.dirname(fftconv.__file__))]
        + e.get("PYTHONPATH", "").split(os.pathsep)
    )
    if env:
        e.update(env)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=e,
        check=False,
        **kw,
    )


# --------------------------------------------------------------------------- fork

_FORK_AFTER_THREADED = """
import multiprocessing as mp, numpy as np, fftconv

def work(i):
    x = np.random.default_rng(i).random((256, 256), dtype=np.float32)
    k = np.ones((31, 31), np.float32)
    got = fftconv.convolve(x, k, mode="same", method="fft", threads=2)
    ref = fftconv.convolve(x.astype(float), k.astype(float), mode="same", method="direct")
    return float(np.abs(got - ref).max())

if __name__ == "__main__":
    x = np.random.default_rng(0).random((512, 512), dtype=np.float32)
    # A multi-threaded FFTW plan executed in the parent: FFTW's worker threads exist
    # here and not in the children.
    fftconv.convolve(x, np.ones((41, 41), np.float32), mode="same", method="fft", threads=2)
    with mp.get_context("fork").Pool(2) as pool:
        errs = pool.map_async(work, range(4)).get(timeout=60)
    assert max(errs) < 1e-2, errs
    print("ok", fftconv._fftw.fork_safe_threads())
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_fork_pool_after_multithreaded_plan():
    r = _python(_FORK_AFTER_THREADED, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == ["ok", "None"]


_FORK_WHILE_BUSY = """
import os, threading, numpy as np, fftconv

stop = threading.Event()
def busy():
    rng = np.random.default_rng(1)
    while not stop.is_set():
        n = int(rng.integers(64, 200))
        x = rng.random((n, n))
        fftconv.convolve(x, np.ones((9, 9)), mode="same", method=("fft", "direct", "oa")[n % 3],
                         threads=2)

threads = [threading.Thread(target=busy) for _ in range(2)]
for t in threads:
    t.start()
x = np.random.default_rng(2).random((128, 128))
ref = fftconv.convolve(x, np.ones((5, 5)), mode="same", method="direct", threads=1)
bad = 0
for i in range(12):
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            for m in ("fft", "direct", "oa"):
                r = fftconv.convolve(x, np.ones((5, 5)), mode="same", method=m, threads=2)
                assert np.abs(r - ref).max() < 1e-9
            code = 0
        finally:
            os._exit(code)
    # A hung child is killed by the alarm below, which fails this test.
    _, status = os.waitpid(pid, 0)
    bad += status != 0
stop.set()
for t in threads:
    t.join()
print("bad", bad)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_fork_while_other_threads_compute():
    r = _python(
        "import signal; signal.alarm(100)\n" + textwrap.dedent(_FORK_WHILE_BUSY), timeout=120
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "bad 0"


# Each case forks while another thread is half way through work that takes a lock: the
# first import of pyFFTW or of the compiled kernels (made slow here by an import hook),
# numba's compiler, or any of fftconv's own locks. The child must compute (every
# method) and exit; before fftconv made its locks fork-safe it hung on the first.
_FORK_WHILE_HELD = """
import os, signal, sys, threading, time, warnings
signal.alarm(100)
import numpy as np, fftconv
import fftconv._cachedir, fftconv._fftw, fftconv.methods.rows, fftconv.planner.profile

inside, go_on = threading.Event(), threading.Event()

class SlowImport:
    def __init__(self, name):
        self.name = name
    def find_spec(self, name, path=None, target=None):
        if name == self.name:
            inside.set()
            time.sleep(0.5)
        return None

def hold(locks):
    for lk in locks:
        lk.acquire()
    inside.set()
    go_on.wait()
    for lk in locks:
        lk.release()

case = sys.argv[1]
x = np.random.default_rng(2).random((96, 96))
direct = lambda: fftconv.convolve(x, np.ones((5, 5)), mode="same", method="direct", threads=1)
# The reference compiles the direct kernels (numba) first, except where their import is
# the case: a cold numba cache could take long in the child.
ref = None if case == "kernels" else direct()
if case == "pyfftw":
    sys.meta_path.insert(0, SlowImport("pyfftw.builders"))
    worker = threading.Thread(target=fftconv._fftw._lib)
elif case == "kernels":
    sys.meta_path.insert(0, SlowImport("fftconv.methods._direct_kernels"))
    worker = threading.Thread(target=fftconv.methods.rows.kernels)
elif case == "compiler":
    fftconv.methods.rows.kernels()
    from numba.core.compiler_lock import global_compiler_lock
    def compiling():
        with global_compiler_lock:
            inside.set()
            time.sleep(0.5)
    worker = threading.Thread(target=compiling)
else:
    c = fftconv.Convolver(np.ones((5, 5)), mode="same")
    c(np.ones((32, 32)))
    warnings.simplefilter("ignore")
    fftconv._cachedir.warn_once("x", "x")
    from fftconv import _fork
    locks = [lk for lk in list(_fork._all) if lk not in _fork._waited]
    worker = threading.Thread(target=hold, args=(locks,))
worker.start()
inside.wait()
pid = os.fork()
if pid == 0:
    code = 1
    try:
        signal.alarm(80)
        ref = direct() if ref is None else ref
        for m in ("fft", "direct", "oa"):
            r = fftconv.convolve(x, np.ones((5, 5)), mode="same", method=m, threads=2)
            assert np.abs(r - ref).max() < 1e-9
        # float32: kernels this process has not compiled (or loaded) yet.
        r = fftconv.convolve(x.astype("f4"), np.ones((5, 5), "f4"), mode="same", method="direct")
        assert np.abs(r - ref).max() < 1e-4
        if case == "locks":
            assert np.abs(c(x) - ref).max() < 1e-9
            fftconv.planner.profile.reset_machine()
            fftconv._cachedir.warn_once("y", "y")
        code = 0
    finally:
        os._exit(code)
go_on.set()
_, status = os.waitpid(pid, 0)
worker.join()
print("child", os.waitstatus_to_exitcode(status))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
@pytest.mark.parametrize("case", ["pyfftw", "kernels", "compiler", "locks"])
def test_fork_while_another_thread_holds_a_lock(case):
    if case in ("kernels", "compiler"):
        pytest.importorskip("numba")
    r = _python(_FORK_WHILE_HELD, timeout=120, args=(case,))
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == ["child", "0"]


# --------------------------------------------------------------------------- numba cache

_NUMBA_FALLBACK = """
import warnings
warnings.simplefilter("always")
from numba.core import caching
# As when the package directory and the user's cache are not writable: numba has
# no place to cache but NUMBA_CACHE_DIR, which is not set.
caching.CacheImpl._locator_classes = [caching.UserProvidedCacheLocator]
from fftconv.methods import rows
with warnings.catch_warnings(record=True) as w:
    mod = rows.kernels()
import numba
print(mod is not None, numba.config.CACHE_DIR)
print("|".join(str(x.message) for x in w))
"""


def _fallback(tmp_path, planted_mode=None, owner=None):
    """Run _NUMBA_FALLBACK with TMPDIR=tmp_path, where `fftconv-numba-cache-<uid>` may
    be planted first (with `planted_mode`, owned by `owner`)."""
    pytest.importorskip("numba")
    tmp_path.chmod(0o1777)
    planted = tmp_path / f"fftconv-numba-cache-{os.getuid()}"
    if planted_mode is not None:
        planted.mkdir()
        planted.chmod(planted_mode)
        if owner is not None:
            os.chown(planted, owner, -1)
    r = _python(_NUMBA_FALLBACK, timeout=120, env={"TMPDIR": str(tmp_path), "NUMBA_CACHE_DIR": ""})
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stdout.splitlines()
    found, cache_dir = lines[0].split(" ", 1)
    return found == "True", cache_dir, lines[1] if len(lines) > 1 else "", planted


@pytest.mark.skipif(not POSIX, reason="POSIX permissions")
def test_numba_fallback_cache_is_private(tmp_path):
    found, cache_dir, warned, planted = _fallback(tmp_path)
    assert found and cache_dir == str(planted) and warned == ""
    st = os.lstat(planted)
    assert st.st_uid == os.getuid() and st.st_mode & 0o777 == 0o700
    # Reused by the next process, and a readable-only directory of ours is made private.
    planted.chmod(0o755)
    found, cache_dir, warned, _ = _fallback(tmp_path.parent / tmp_path.name)
    assert cache_dir == str(planted) and warned == ""
    assert os.lstat(planted).st_mode & 0o777 == 0o700


@pytest.mark.skipif(not POSIX, reason="POSIX permissions")
@pytest.mark.parametrize("mode, owner", [(0o777, None), (0o770, None), (0o700, 65534)])
def test_numba_fallback_refuses_a_planted_directory(tmp_path, mode, owner):
    # Another user made the predictable directory first, or made it writable for
    # others: numba must not load what is in it.
    if owner is not None and os.geteuid() != 0:
        pytest.skip("needs root to give a directory to another user")
    found, cache_dir, warned, planted = _fallback(tmp_path, mode, owner)
    assert found and cache_dir != str(planted) and "fftconv-numba-" in cache_dir
    assert "cache of compiled code is off" in warned
    assert warned.count("|") == 0  # one warning


@pytest.mark.skipif(not POSIX, reason="POSIX links")
def test_private_temp_dir_refuses_a_link(tmp_path, monkeypatch):
    from fftconv import _cachedir

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    (tmp_path / f"fftconv-test-{os.getuid()}").symlink_to(target)
    path, why = _cachedir.private_temp_dir("fftconv-test")
    assert path is None and "not a directory" in why
    path, why = _cachedir.private_temp_dir("fftconv-other")
    assert path == tmp_path / f"fftconv-other-{os.getuid()}" and why == ""
    assert os.stat(path).st_mode & 0o777 == 0o700


# --------------------------------------------------------------------------- full disk


@pytest.fixture
def small_disk(tmp_path):
    """A 30 MB tmpfs (needs root and mount); skipped where it cannot be made."""
    import shutil

    if not POSIX or os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root and mount for a small tmpfs")
    d = tmp_path / "disk"
    d.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=30M", "tmpfs", str(d)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield d
    finally:
        subprocess.run(["umount", "-l", str(d)], capture_output=True, timeout=30, check=False)


def _env():
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(os.path.dirname(fftconv.__file__))]
        + e.get("PYTHONPATH", "").split(os.pathsep)
    )
    return e


def _fftconv(*args, timeout=120):
    """The command in a subprocess: `python -m fftconv ARGS`."""
    return subprocess.run(
        [sys.executable, "-m", "fftconv", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=_env(),
    )


@pytest.mark.parametrize("suffix", [".npy", ".tif", ".zarr"])
def test_full_disk_is_a_one_line_error(small_disk, tmp_path, suffix):
    if suffix != ".npy":
        pytest.importorskip("tifffile" if suffix == ".tif" else "zarr")
    src = tmp_path / "in.npy"
    np.save(src, np.zeros((3000, 3000), np.float32))  # 36 MB of output: more than the disk
    r = _fftconv("apply", src, small_disk / f"out{suffix}", "-k", "box:15", "-q")
    assert r.returncode in (1, 2), r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "not enough disk space" in lines[0], r.stderr
    assert "Traceback" not in r.stderr and os.listdir(small_disk) == []


@pytest.mark.parametrize("suffix", [".npy", ".tif"])
def test_memory_mapped_outputs_reserve_their_blocks(small_disk, monkeypatch, suffix):
    # When the up-front check passes but the disk fills before the blocks are written
    # (another process, or a free-space figure that lies), the reservation fails at
    # once instead of a SIGBUS half way.
    from fftconv import io

    if suffix == ".tif":
        pytest.importorskip("tifffile")
    monkeypatch.setattr(io, "_free_bytes", lambda d: None)
    with pytest.raises(OSError, match="not enough disk space") as e:
        io.create_output(small_disk / f"out{suffix}", (3000, 3000), np.float32)
    assert e.value.errno == 28
    assert os.listdir(small_disk) == []
    # What fits is reserved: the blocks are counted as used at once.
    with io.create_output(small_disk / f"ok{suffix}", (1000, 1000), np.float32) as out:
        import shutil

        assert shutil.disk_usage(small_disk).used >= 4_000_000
        out.array[:] = 1
    assert os.listdir(small_disk) == [f"ok{suffix}"]


# --------------------------------------------------------------------------- signals


def _start_and_signal(tmp_path, sig):
    import signal
    import time

    args = slow_job(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "fftconv", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not any("fftconv-tmp" in n for n in os.listdir(tmp_path)):
            time.sleep(0.05)
        time.sleep(0.3)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    return proc.returncode, err, signal


@pytest.mark.skipif(not POSIX, reason="POSIX signals")
@pytest.mark.parametrize("name, code", [("SIGINT", 130), ("SIGTERM", 143), ("SIGHUP", 129)])
def test_interrupted_run_removes_its_temporary_file(tmp_path, name, code):
    import signal

    rc, err, _ = _start_and_signal(tmp_path, getattr(signal, name))
    assert rc == code, err
    assert "Traceback" not in err and err.strip().splitlines() == [
        "fftconv apply: interrupted; no output written"
    ]
    assert os.listdir(tmp_path) == ["in.npy"]


@pytest.mark.skipif(not POSIX, reason="POSIX signals")
def test_sigkill_leaves_a_temporary_file_that_clean_and_the_next_run_remove(tmp_path):
    import signal

    rc, err, _ = _start_and_signal(tmp_path, signal.SIGKILL)
    assert rc == -signal.SIGKILL
    left = [n for n in os.listdir(tmp_path) if n != "in.npy"]
    assert len(left) == 1 and ".fftconv-tmp" in left[0] and not (tmp_path / "out.npy").exists()
    r = _fftconv("clean", tmp_path)
    assert r.returncode == 0 and "removed 1 stale" in r.stdout, r.stderr
    assert os.listdir(tmp_path) == ["in.npy"]
    # The next run into the directory removes what a killed one left, too.
    (tmp_path / left[0]).write_bytes(b"x")
    np.save(tmp_path / "small.npy", np.ones((8, 8), np.float32))
    r = _fftconv("apply", tmp_path / "small.npy", tmp_path / "o.npy", "-k", "box:3", "-q")
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(tmp_path)) == ["in.npy", "o.npy", "small.npy"]


def test_clean_refuses_what_is_not_a_directory(tmp_path):
    r = _fftconv("clean", tmp_path / "nope")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "not a directory" in r.stderr


# --------------------------------------------------------------------------- hostile caches

_HOSTILE_JSON = {
    "deep-list": "[" * 200000,
    "deep-dict": '{"a":' * 100000 + "1" + "}" * 100000,
    "not-utf8": b"\xff\xfe\x00",
    "truncated": '{"format": "fftconv-fftw-wisdom/1", "wisdom": {"dou',
    "a-string": '"x"',
    "a-list": "[]",
    "null": "null",
    "huge-number": "1e999999",
    "wrong-types": '{"format": "fftconv-fftw-wisdom/1", "wisdom": {"double": 1, "single": [],'
    ' "long double": {}}, "sha256": 5}',
    "numeric-strings": '{"format": "fftconv-fftw-wisdom/1", "wisdom": "1e10"}',
    "extra-precision": '{"format": "fftconv-fftw-wisdom/1", "wisdom": {"double": "", "single": '
    '"", "long double": "", "quad": ""}}',
    "non-ascii": '{"format": "fftconv-fftw-wisdom/1", "wisdom": {"double": "\\u00e9", '
    '"single": "", "long double": ""}}',
    "empty": "",
}


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    from fftconv import _cachedir, _fftw

    monkeypatch.setenv("FFTCONV_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("FFTCONV_NO_WISDOM", raising=False)
    _cachedir._warned.clear()
    (tmp_path / "cache").mkdir()
    yield tmp_path / "cache"
    _cachedir._warned.clear()
    _fftw._forget_wisdom()


@pytest.mark.parametrize("name", sorted(_HOSTILE_JSON))
def test_hostile_wisdom_file_warns_once_and_is_ignored(cache_dir, name):
    import warnings

    from fftconv import _cachedir, _fftw

    data = _HOSTILE_JSON[name]
    _fftw.wisdom_path().write_bytes(data if isinstance(data, bytes) else data.encode())
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        for _ in range(3):
            assert _fftw.load_wisdom(force=True) is False
    msgs = [str(x.message) for x in w if issubclass(x.category, _cachedir.CacheWarning)]
    assert len(msgs) == 1 and "ignoring FFTW wisdom file" in msgs[0], msgs
    assert "\n" not in msgs[0] and len(msgs[0]) < 400


def test_oversized_wisdom_file_is_not_read(cache_dir):
    import warnings

    from fftconv import _cachedir, _fftw

    with open(_fftw.wisdom_path(), "wb") as f:
        f.truncate(_cachedir.MAX_CACHE_FILE_BYTES + 1)
    with pytest.warns(_cachedir.CacheWarning, match="larger than"):
        assert _fftw.load_wisdom(force=True) is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x = np.random.default_rng(0).random((64, 64))
        fftconv.convolve(x, np.ones((9, 9)), method="fft")


@pytest.mark.parametrize("what", ["file-in-the-way", "read-only"])
def test_unwritable_cache_dir_warns_once_per_process(tmp_path, monkeypatch, what):
    import warnings

    from fftconv import _cachedir, _fftw

    if what == "file-in-the-way":
        target = tmp_path / "cache"
        target.write_text("not a directory")
    else:
        if POSIX and os.geteuid() == 0:
            pytest.skip("root writes into read-only directories")
        target = tmp_path / "ro"
        target.mkdir(mode=0o500)
    monkeypatch.setenv("FFTCONV_CACHE_DIR", str(target))
    _cachedir._warned.clear()
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        for _ in range(5):
            assert _fftw.save_wisdom() is False
    msgs = [str(x.message) for x in w if issubclass(x.category, _cachedir.CacheWarning)]
    assert len(msgs) == 1 and "cannot save FFTW wisdom" in msgs[0], msgs
    _cachedir._warned.clear()


# --------------------------------------------------------------------------- threads


@pytest.mark.parametrize("method", ["auto", "fft", "direct", "oa"])
def test_threads_sharing_a_convolver_get_right_answers(method):
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(7)
    k = rng.standard_normal((7, 5))
    conv = fftconv.Convolver(k, mode="same", boundary="symmetric", method=method)
    images = [rng.standard_normal((int(n), 90)) for n in rng.integers(40, 120, size=8)]
    refs = [
        fftconv.convolve(x, k, mode="same", boundary="symmetric", method="direct") for x in images
    ]
    copies = [x.copy() for x in images]

    def one(i):
        got = conv(images[i % len(images)])
        return float(np.abs(got - refs[i % len(images)]).max())

    with ThreadPoolExecutor(8) as ex:
        errs = list(ex.map(one, range(96), timeout=120))
    scale = max(float(np.abs(x).max()) for x in images) * float(np.abs(k).sum())
    assert max(errs) <= 1e-12 * scale
    assert all(np.array_equal(a, b) for a, b in zip(images, copies))  # inputs untouched


_GOOD_CONSTANTS = None


def _profile_doc(**changes):
    from fftconv.planner import profile as prof

    doc = {
        "format": prof._PROFILE_FORMAT,
        "host": prof._host(),
        "constants": {n: 1.0 for n in prof._FIRST_NAMES},
        "direct": {
            "direct_madds_per_s": {d: 1e10 for d in prof._DTYPES},
            "separable_madds_per_s": {d: 1e10 for d in prof._DTYPES},
            "copy_bytes_per_s": 1e10,
            "call_overhead_s": 1e-5,
        },
    }
    doc.update(changes)
    return doc


def _hostile_profiles():
    import json

    out = dict(_HOSTILE_JSON)
    out["numeric-string-rate"] = json.dumps(
        _profile_doc(direct={"direct_madds_per_s": {"float32": "1e10"}})
    )
    out["numeric-string-constant"] = json.dumps(_profile_doc(constants={"fft32": "1e10"}))
    out["bool-constant"] = json.dumps(_profile_doc(constants={"fft32": True}))
    out["negative"] = json.dumps(_profile_doc(constants={"fft32": -1.0}))
    out["constants-a-list"] = json.dumps(_profile_doc(constants=[1, 2]))
    out["direct-a-string"] = json.dumps(_profile_doc(direct="fast"))
    out["nan"] = json.dumps(_profile_doc(constants={n: float("nan") for n in ("fft32",)}))
    return out


@pytest.mark.parametrize("name", sorted(_hostile_profiles()))
def test_hostile_planner_profile_warns_once_and_plans_with_defaults(cache_dir, name):
    import warnings

    from fftconv import _cachedir
    from fftconv.planner import Machine, profile

    data = _hostile_profiles()[name]
    profile.profile_path().write_bytes(data if isinstance(data, bytes) else data.encode())
    profile.reset_machine()
    try:
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            x = np.random.default_rng(0).random((40, 50))
            for _ in range(3):
                got = fftconv.convolve(x, np.ones((3, 3)), mode="same")
            for _ in range(3):
                profile.reset_machine()
                assert profile.machine() == Machine()
        msgs = [str(m.message) for m in w if issubclass(m.category, _cachedir.CacheWarning)]
        assert len(msgs) == 1 and "ignoring planner profile" in msgs[0], msgs
        assert "\n" not in msgs[0]
        np.testing.assert_allclose(
            got, fftconv.convolve(x, np.ones((3, 3)), mode="same", method="direct"), atol=1e-12
        )
    finally:
        profile.reset_machine()


def test_well_formed_profile_is_still_read(cache_dir):
    import json

    from fftconv.planner import profile

    profile.profile_path().write_text(json.dumps(_profile_doc()))
    profile.reset_machine()
    try:
        assert profile.machine().calibrated
    finally:
        profile.reset_machine()


def test_command_with_corrupt_caches_runs_and_warns_in_one_line(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "planner-profile.json").write_text("[" * 200000)
    import pyfftw

    (cache / f"fftw-wisdom-{pyfftw.fftw_version}.json").write_text('{"a":' * 100000)
    np.save(tmp_path / "in.npy", np.random.default_rng(0).random((64, 64)).astype(np.float32))
    e = _env()
    e["FFTCONV_CACHE_DIR"] = str(cache)
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "fftconv",
            "apply",
            str(tmp_path / "in.npy"),
            str(tmp_path / "out.npy"),
            "-k",
            # not separable: it runs in tiles, which read the planner profile
            # (a separable kernel streams and reads no cache at all)
            "disk:radius=3",
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=e,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    lines = r.stderr.strip().splitlines()
    assert "Traceback" not in r.stderr
    assert all(line.startswith("fftconv: warning: ") for line in lines), lines
    assert sum("planner profile" in line for line in lines) == 1


# --------------------------------------------------------------------------- tolerance


@pytest.mark.parametrize("method", ["direct", "fft", "oa", "separable", "auto"])
@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-10), (np.float32, 1e-5)])
def test_tolerance_statement_holds_where_the_exact_result_is_zero(method, dtype, tol):
    # A derivative of a constant image is exactly 0: no method can be within
    # tol x max|reference| = 0 there, every one is within tol x max|image| x sum|kernel|.
    x = np.full((300, 280), 1234.5, dtype)
    k = np.outer([1.0, 2.0, 1.0], [1.0, 0.0, -1.0]).astype(dtype)
    for mode, boundary in (("valid", "fill"), ("same", "nearest"), ("same", "wrap")):
        got = fftconv.convolve(x, k, mode, boundary, method=method)
        bound = tol * float(np.abs(x).max()) * float(np.abs(k).sum())
        assert float(np.abs(got).max()) <= bound, (mode, boundary)
