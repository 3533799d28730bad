"""Faults and hostile conditions: fork, signals, full disks, stale temporary files,
corrupt caches, threads sharing a Convolver. Every subprocess has a timeout, so a
hang fails the test instead of hanging CI."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

import fftconv

POSIX = os.name == "posix"


def _python(code: str, timeout: float = 120, env=None, **kw) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter (this checkout's fftconv) with a timeout."""
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(os.path.dirname(fftconv.__file__))]
        + e.get("PYTHONPATH", "").split(os.pathsep)
    )
    if env:
        e.update(env)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
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
