"""Executors: one module per method. Each takes a Problem and arrays and writes the result."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .. import _fork
from .._problem import Problem, default_threads

_pool_lock = _fork.lock()
_pool: ThreadPoolExecutor | None = None
_pool_pid: int | None = None


def run_on_cores(work, workers: int) -> None:
    """Run `work` (which takes its jobs from a shared queue until none is left) on the
    caller's thread and ``workers - 1`` threads of one process-wide pool.

    The caller works too, so a call finishes even when every pool thread is busy with
    other callers' work; helpers that start late find the queue empty. The pool is
    rebuilt in a forked child, whose copies of the parent's threads never run.
    """
    global _pool, _pool_pid
    if workers <= 1:
        work()
        return
    with _pool_lock:
        if _pool is None or _pool_pid != os.getpid():
            _pool = ThreadPoolExecutor(max(1, default_threads()), thread_name_prefix="fftconv")
            _pool_pid = os.getpid()
        pool = _pool
    helpers = [pool.submit(work) for _ in range(workers - 1)]
    try:
        work()
    finally:
        for f in helpers:
            f.result()


def _after_fork_child() -> None:
    # The parent's pool threads do not exist in the child (`_fork` released the lock).
    global _pool
    _pool = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_child)


def finite(x) -> bool:
    """Whether every sample of `x` is finite, from one sum: a sum is non-finite when
    any term is (or on overflow, which only costs the slower exact path), and unlike
    ``np.isfinite(x).all()`` it allocates nothing image-sized."""
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.isfinite(np.add.reduce(x, axis=None)))


def effective_kernel(problem: Problem, k: np.ndarray) -> np.ndarray:
    """The kernel to *convolve* with: `k`, or for a correlation `k` flipped on the
    convolved axes and conjugated (scipy.signal.correlate2d's definition)."""
    if not problem.correlate:
        return k
    flip = tuple(slice(None, None, -1) if d in problem.axes else slice(None) for d in range(k.ndim))
    kk = k[flip]
    return np.conj(kk) if kk.dtype.kind == "c" else kk


def store_range(out_dtype, dtype):
    """``(lo, hi, rnd)`` in `dtype` for storing sums into an array of `out_dtype`: an
    integer `out` is clipped to its range and rounded (``rnd``), any other is stored
    as it is (``lo, hi = -inf, inf``)."""
    t = np.dtype(dtype).type
    if np.dtype(out_dtype).kind in "biu":
        info = np.iinfo(out_dtype)
        return t(info.min), t(info.max), True
    return t(-np.inf), t(np.inf), False
