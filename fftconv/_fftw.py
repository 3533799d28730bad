"""The FFTW plan cache: plans built once, reused by every later call.

A pyFFTW ``FFTW`` object owns its input and output buffers, so two threads
must never execute one object at once. The cache therefore lends plans out:
`transform` takes an idle plan for the key (or builds one), the caller uses
its buffers exclusively, and the plan goes back to the idle pool afterwards.
Concurrent calls with the same key simply get distinct plans. The pool is an
LRU bounded by the bytes its buffers hold.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from contextlib import contextmanager

import numpy as np
import pyfftw
import scipy.fft

_FLAGS = ("FFTW_ESTIMATE", "FFTW_DESTROY_INPUT")

#: The idle plans may hold at most this many bytes of buffers.
MAX_CACHE_BYTES = 1 << 30

_lock = threading.Lock()
_idle: OrderedDict[tuple, list] = OrderedDict()
_idle_bytes = 0
_stats = {"hits": 0, "misses": 0, "evictions": 0}


def fast_length(n: int, real: bool = True) -> int:
    """The smallest length >= `n` whose transform FFTW computes fast (factors 2, 3, 5, 7)."""
    return scipy.fft.next_fast_len(int(n), real=real)


def complex_dtype(dtype) -> np.dtype:
    return np.result_type(dtype, np.complex64)


def real_dtype(dtype) -> np.dtype:
    return np.empty(0, dtype).real.dtype


def _key(shape, dtype, axes, direction, threads):
    return (tuple(int(s) for s in shape), np.dtype(dtype).str, tuple(axes), direction, int(threads))


def _build(shape, dtype, axes, direction, threads):
    """A new FFTW object. `shape` and `dtype` describe the real (or complex) signal side."""
    dtype = np.dtype(dtype)
    cshape = list(shape)
    if dtype.kind == "f":
        cshape[axes[-1]] = shape[axes[-1]] // 2 + 1
    signal = pyfftw.empty_aligned(shape, dtype=dtype)
    spectrum = pyfftw.empty_aligned(tuple(cshape), dtype=complex_dtype(dtype))
    if direction == "forward":
        a, b = signal, spectrum
        fftw_dir = "FFTW_FORWARD"
    else:
        a, b = spectrum, signal
        fftw_dir = "FFTW_BACKWARD"
    return pyfftw.FFTW(a, b, axes=axes, direction=fftw_dir, flags=_FLAGS, threads=threads)


def _nbytes(plan) -> int:
    return plan.input_array.nbytes + plan.output_array.nbytes


@contextmanager
def transform(shape, dtype, axes, direction: str, threads: int):
    """Lend an FFTW plan for exclusive use inside the ``with`` block.

    Parameters
    ----------
    shape, dtype : the signal side: the real array for real-to-complex
        transforms (the spectrum has ``shape[axes[-1]] // 2 + 1`` there), or the
        complex array for complex transforms.
    axes : transformed axes, increasing.
    direction : 'forward' (signal -> spectrum) or 'backward' (spectrum ->
        signal, unnormalised: divide by the product of the transformed lengths).

    Yields the ``pyfftw.FFTW`` object; fill ``.input_array``, call
    ``.execute()``, read ``.output_array``. The input buffer is destroyed.
    """
    global _idle_bytes
    key = _key(shape, dtype, axes, direction, threads)
    with _lock:
        pool = _idle.get(key)
        plan = pool.pop() if pool else None
        if plan is not None:
            _idle_bytes -= _nbytes(plan)
            _stats["hits"] += 1
            if not pool:
                del _idle[key]
        else:
            _stats["misses"] += 1
    if plan is None:
        plan = _build(key[0], dtype, key[2], direction, threads)
    try:
        yield plan
    finally:
        _give_back(key, plan)


def _give_back(key, plan) -> None:
    global _idle_bytes
    size = _nbytes(plan)
    if size > MAX_CACHE_BYTES:
        return
    with _lock:
        _idle.setdefault(key, []).append(plan)
        _idle.move_to_end(key)
        _idle_bytes += size
        while _idle_bytes > MAX_CACHE_BYTES:
            old_key, old_pool = next(iter(_idle.items()))
            victim = old_pool.pop(0)
            _idle_bytes -= _nbytes(victim)
            _stats["evictions"] += 1
            if not old_pool:
                del _idle[old_key]


def cache_info() -> dict:
    """Hits, misses, evictions, idle plans and the bytes they hold."""
    with _lock:
        return dict(_stats, plans=sum(len(p) for p in _idle.values()), bytes=_idle_bytes)


def clear_cache() -> None:
    """Drop every idle plan; plans lent out return to the pool when released."""
    global _idle_bytes
    with _lock:
        _idle.clear()
        _idle_bytes = 0
