"""The FFTW plan cache: plans built once, reused by every later call.

A pyFFTW ``FFTW`` object owns its input and output buffers, so two threads
must never execute one object at once. The cache therefore lends plans out:
`transform` takes an idle plan for the key (or builds one), the caller uses
its buffers exclusively, and the plan goes back to the idle pool afterwards.
Concurrent calls with the same key simply get distinct plans. The pool is an
LRU bounded by the bytes its buffers hold.

Planning effort fits the call. By default (policy ``'estimate'``) a new plan
is built with FFTW_ESTIMATE (milliseconds) unless FFTW wisdom already holds a
measured plan for it, which FFTW then returns as cheaply (FFTW_WISDOM_ONLY):
a first call never pays for measuring, and one process always computes with
the same plans, so repeated calls give bit-identical results.
``set_effort('measure')`` (or ``FFTCONV_FFTW_EFFORT=measure``) plans every new
transform with FFTW_MEASURE inline and saves the wisdom, so later processes
get the measured plans at once. Policy ``'auto'`` (opt-in) re-plans a
transform that is used again and again (the third lend of one key) and is
small enough to measure in about a second (at most 2**20 samples) with
FFTW_MEASURE on a background thread and swaps it into the pool. Measured on
the development machine: FFTW_MEASURE took 0.25-0.6 s for 256x256 to 512x512
real transforms and made them 1.05-1.4x faster; for 4320x4320 it took 15 s
(1.4x faster), far too long for a first call. It is not the default because
results then change in the last bits once a plan is swapped (SciPy's
threading tests compare calls bit for bit), and measuring holds FFTW's
planner, which is not thread-safe, while other threads wait to plan.
Wisdom is stored as JSON text (never pickled), keyed to the FFTW version,
written atomically, loaded on first use, and ignored with a warning when it
is corrupt, truncated or foreign. ``FFTCONV_NO_WISDOM=1`` turns the file off
(nothing is read or written; plans measured in this process are still reused).

A forked child starts with an empty pool and released locks (`_fork`); a fork
waits while another thread is inside FFTW's planner or importing pyFFTW.
FFTW keeps its own pool of worker threads for multi-threaded plans, and a
child has none of the parent's threads: once the parent has executed a
multi-threaded plan, FFTW in the child would wait forever for workers that do
not exist, and FFTW offers no way to reset that pool. Such a child therefore
plans every transform single-threaded (its other threads, the direct
executors' pool included, are rebuilt and work as before).
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import sys
import threading
import warnings
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import scipy.fft

from . import _fork
from ._cachedir import CacheWarning, atomic_write, cache_dir, read_json, warn_once

_EFFORTS = {
    "auto": "FFTW_ESTIMATE",
    "estimate": "FFTW_ESTIMATE",
    "measure": "FFTW_MEASURE",
    "patient": "FFTW_PATIENT",
}
_effort = os.environ.get("FFTCONV_FFTW_EFFORT", "estimate").lower()
if _effort not in _EFFORTS:
    _effort = "estimate"

#: FFTW's planner, wisdom import and export are not thread-safe. pyFFTW serialises
#: plan creation only, so every planner call of ours (plans and wisdom) holds this.
_planner_lock = _fork.lock(reentrant=True, wait_at_fork=True)

#: Policy 'auto': re-plan with FFTW_MEASURE on this lend of a key ...
UPGRADE_AFTER = 3
#: ... when the transform has at most this many samples.
UPGRADE_MAX_SAMPLES = 1 << 20

#: The idle plans may hold at most this many bytes of buffers.
MAX_CACHE_BYTES = 1 << 30

_lock = _fork.lock(wait_at_fork=True)
#: True once this process executed (built) a multi-threaded FFTW plan: a child
#: forked after that must not use FFTW's threads (see the module's docstring).
_threads_used = False
#: The most FFTW threads a plan of this process may use (1 in such a child).
_max_threads: int | None = None
_idle: OrderedDict[tuple, list] = OrderedDict()
_idle_bytes = 0
_stats = {"hits": 0, "misses": 0, "evictions": 0, "measured": 0}


#: Held while pyFFTW is imported: a child forked half way through the import would
#: find it half initialised, so a fork waits for the import to end.
_lib_lock = _fork.lock(wait_at_fork=True)
_pyfftw = None


def _lib():
    """pyFFTW, imported on first use: `import fftconv` then costs no more than numpy and
    scipy.fft, and a call that the planner sends to direct summation never loads it."""
    global _pyfftw
    if _pyfftw is None:
        with _lib_lock:
            if _pyfftw is None:
                _pyfftw = _import_pyfftw()
    return _pyfftw


def _import_pyfftw():
    # pyfftw/__init__ imports pyfftw.interfaces, which imports dask.array (0.3-1 s)
    # when dask is installed, only to offer its optional dask wrappers, which fftconv
    # never uses. Hiding dask during that import skips them; a dask already imported
    # is left alone, and the entry is removed again so that dask imports normally later.
    hide = "dask" not in sys.modules
    if hide:
        sys.modules["dask"] = None
    try:
        import pyfftw
    finally:
        if hide and sys.modules.get("dask", False) is None:
            del sys.modules["dask"]
    return pyfftw


def fast_length(n: int, real: bool = True) -> int:
    """The smallest length >= `n` whose transform FFTW computes fast (factors 2, 3, 5, 7)."""
    return scipy.fft.next_fast_len(int(n), real=real)


def complex_dtype(dtype) -> np.dtype:
    return np.result_type(dtype, np.complex64)


def _key(shape, dtype, axes, direction, threads):
    # Everything that makes two plans different; the buffers are always C-contiguous
    # and allocated here, so their strides follow from the shape and the alignment.
    return (
        tuple(int(s) for s in shape),
        np.dtype(dtype).str,
        tuple(axes),
        direction,
        int(threads),
        _lib().simd_alignment,
    )


def set_effort(effort: str) -> str:
    """Set how hard FFTW plans new transforms; returns the previous setting.

    'estimate' (the default) plans in milliseconds and never measures; 'auto'
    (opt-in) also measures small, often used transforms in the background; 'measure' and
    'patient' time candidate algorithms for every new transform (seconds for
    large ones). Measured plans are saved as wisdom, so later processes reuse
    them without planning again.

    >>> old = set_effort("estimate")
    >>> set_effort(old)
    'estimate'
    """
    global _effort
    if not isinstance(effort, str) or effort.lower() not in _EFFORTS:
        raise ValueError(
            f"effort={effort!r} is not one of 'auto', 'estimate', 'measure', 'patient'"
        )
    old, _effort = _effort, effort.lower()
    return old


def _build(shape, dtype, axes, direction, threads, flag=None):
    """A new FFTW object. `shape` and `dtype` describe the real (or complex) signal side."""
    global _threads_used
    dtype = np.dtype(dtype)
    cshape = list(shape)
    if dtype.kind == "f":
        cshape[axes[-1]] = shape[axes[-1]] // 2 + 1
    signal = _lib().empty_aligned(shape, dtype=dtype)
    spectrum = _lib().empty_aligned(tuple(cshape), dtype=complex_dtype(dtype))
    if direction == "forward":
        a, b = signal, spectrum
        fftw_dir = "FFTW_FORWARD"
    else:
        a, b = spectrum, signal
        fftw_dir = "FFTW_BACKWARD"
    kw = {"axes": axes, "direction": fftw_dir, "threads": threads}
    if threads > 1:
        _threads_used = True
    try:
        # Free when wisdom (loaded, or measured in this process) holds a measured plan;
        # fails at once otherwise.
        with _planner_lock:
            return _lib().FFTW(
                a, b, flags=("FFTW_MEASURE", "FFTW_DESTROY_INPUT", "FFTW_WISDOM_ONLY"), **kw
            )
    except RuntimeError:
        pass
    effort = _EFFORTS[_effort] if flag is None else flag
    with _planner_lock:
        plan = _lib().FFTW(a, b, flags=(effort, "FFTW_DESTROY_INPUT"), **kw)
    if effort != "FFTW_ESTIMATE":
        with _lock:
            _stats["measured"] += 1
        save_wisdom()
    return plan


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
    if _max_threads is not None:
        threads = min(int(threads), _max_threads)
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
        load_wisdom()
        plan = _build(key[0], dtype, key[2], direction, threads)
    if _effort == "auto" and "FFTW_ESTIMATE" in plan.flags:
        _count_use(key, dtype)
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
        if key in _upgraded and "FFTW_ESTIMATE" in plan.flags:
            return  # a measured plan has replaced it
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


# --- background measuring (policy 'auto') -----------------------------------------------

_uses: dict[tuple, int] = {}
_upgraded: set[tuple] = set()
_upgrades: list = []  # keys waiting for the measuring thread
_measuring = 0  # keys being measured now (0 or 1)
_stopping = False
_upgrade_cv = threading.Condition(_lock)
_upgrader: threading.Thread | None = None


def _count_use(key, dtype) -> None:
    global _upgrader
    if _effort != "auto":
        return
    n_samples = 1
    for x in key[0]:
        n_samples *= x
    if n_samples > UPGRADE_MAX_SAMPLES:
        return
    with _lock:
        if key in _upgraded or _stopping:
            return
        n = _uses.get(key, 0) + 1
        _uses[key] = n
        if n != UPGRADE_AFTER:
            return
        _upgrades.append((key, np.dtype(dtype)))
        if _upgrader is None:
            _upgrader = threading.Thread(
                target=_upgrade_loop, name="fftconv-fftw-measure", daemon=True
            )
            _upgrader.start()
        _upgrade_cv.notify_all()


def _upgrade_loop() -> None:
    global _idle_bytes, _upgrader, _measuring
    while True:
        with _lock:
            if _stopping or (not _upgrades and not _upgrade_cv.wait(timeout=30)):
                _upgrader = None
                _upgrade_cv.notify_all()
                return
            if not _upgrades:
                continue
            key, dtype = _upgrades.pop(0)
            _measuring = 1
        try:
            plan = _build(key[0], dtype, key[2], key[3], key[4], flag="FFTW_MEASURE")
        except Exception:  # noqa: BLE001 - an upgrade is optional; keep the estimated plan
            plan = None
        with _lock:
            _measuring = 0
            if plan is not None:
                _upgraded.add(key)
                _uses.pop(key, None)
                old = _idle.pop(key, [])
                _idle_bytes -= sum(_nbytes(p) for p in old)
            _upgrade_cv.notify_all()
        if plan is not None:
            _give_back(key, plan)


def wait_for_upgrades(timeout: float = 60.0) -> bool:
    """Wait until background measuring is done; True if nothing is left to measure."""
    with _lock:
        return _upgrade_cv.wait_for(lambda: not _upgrades and not _measuring, timeout=timeout)


@atexit.register
def _stop_upgrades() -> None:
    """At exit, drop queued upgrades and let the one in progress finish: a thread
    frozen inside FFTW's planner would hold pyFFTW's plan lock, and freeing the
    cached plans would then wait for it forever."""
    global _stopping
    with _lock:
        _stopping = True
        _upgrades.clear()
        t = _upgrader
        _upgrade_cv.notify_all()
    if t is not None:
        t.join(timeout=60)


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
        _uses.clear()
        _upgraded.clear()


# --- fork ----------------------------------------------------------------------------------


def _after_fork_child() -> None:
    # `_fork` has released the locks (a fork waits for the pool's and the planner's);
    # the idle plans' buffers are the parent's copies, and no measuring thread exists.
    global _idle_bytes, _upgrade_cv, _upgrader, _measuring, _max_threads
    _upgrade_cv = threading.Condition(_lock)
    _idle.clear()
    _idle_bytes = 0
    _uses.clear()
    _upgrades.clear()
    _upgrader = None
    _measuring = 0
    if _threads_used:
        _max_threads = 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_child)


def fork_safe_threads() -> int | None:
    """The most FFTW threads this process may use: 1 in a child forked after its parent
    ran a multi-threaded transform, else None (no limit)."""
    return _max_threads


# --- FFTW wisdom ----------------------------------------------------------------------

_WISDOM_FORMAT = "fftconv-fftw-wisdom/1"
_PRECISIONS = ("double", "single", "long double")
_wisdom_lock = _fork.lock()
_wisdom_loaded = False


def _wisdom_enabled() -> bool:
    return os.environ.get("FFTCONV_NO_WISDOM", "").strip() not in ("1", "true", "yes", "on")


def wisdom_path() -> Path:
    """The wisdom file of this FFTW version in the cache directory."""
    return cache_dir() / f"fftw-wisdom-{_lib().fftw_version}.json"


def _digest(wisdom: dict) -> str:
    return hashlib.sha256(json.dumps(wisdom, sort_keys=True).encode()).hexdigest()


def _warn(key, msg: str) -> None:
    warn_once(key, msg, stacklevel=4)


def _wisdom_strings(doc) -> tuple[str, ...]:
    """The three precisions' wisdom strings of a wisdom document, checked field by
    field; ValueError says what is wrong."""
    if not isinstance(doc, dict) or doc.get("format") != _WISDOM_FORMAT:
        raise ValueError("not an fftconv wisdom file")
    wisdom = doc.get("wisdom")
    if not isinstance(wisdom, dict) or set(wisdom) != set(_PRECISIONS):
        raise ValueError(f"'wisdom' must map {', '.join(_PRECISIONS)} to text")
    strings = tuple(wisdom[p] for p in _PRECISIONS)
    if not all(isinstance(x, str) and x.isascii() for x in strings):
        raise ValueError("the wisdom of each precision must be ASCII text")
    if doc.get("sha256") != _digest(wisdom):
        raise ValueError("checksum mismatch (truncated or edited)")
    if doc.get("fftw_version") != _lib().fftw_version:
        raise ValueError(
            f"written by FFTW {doc.get('fftw_version')!r}, this is FFTW {_lib().fftw_version}"
        )
    return strings


def load_wisdom(force: bool = False) -> bool:
    """Import the saved wisdom once per process (again with `force`).

    Returns True when wisdom was imported. A missing file is silently
    nothing; an unreadable, corrupt, truncated, hostile (too large, nested too
    deeply, wrong types) or foreign one is ignored with a `CacheWarning`, once
    per process.
    """
    global _wisdom_loaded
    if not _wisdom_enabled():
        return False
    with _wisdom_lock:
        if _wisdom_loaded and not force:
            return False
        _wisdom_loaded = True
        path = wisdom_path()
        try:
            strings = _wisdom_strings(read_json(path))
        except FileNotFoundError:
            return False
        except OSError as exc:
            _warn(
                ("wisdom-read", str(path)),
                f"cannot read FFTW wisdom {path}: {exc}; planning without it",
            )
            return False
        except ValueError as exc:
            _warn(("wisdom-read", str(path)), f"ignoring FFTW wisdom file {path}: {exc}")
            return False
        with _planner_lock:
            done = _lib().import_wisdom(tuple(x.encode("ascii") for x in strings))
        if not all(d for d, x in zip(done, strings) if x):
            _warn(
                ("wisdom-rejected", str(path)),
                f"FFTW rejected part of the wisdom in {path}; it was ignored",
            )
        return any(done)


def save_wisdom() -> bool:
    """Write all the wisdom this process holds (including what it loaded) atomically.

    Returns True when written; a read-only or missing cache directory gives a
    `CacheWarning` and False.
    """
    if not _wisdom_enabled():
        return False
    _merge_saved()
    with _wisdom_lock:
        with _planner_lock:
            exported = _lib().export_wisdom()
        wisdom = {p: w.decode("ascii") for p, w in zip(_PRECISIONS, exported)}
        doc = {
            "format": _WISDOM_FORMAT,
            "fftw_version": _lib().fftw_version,
            "libraries": dict(getattr(_lib(), "_fftw_version_dict", {})),
            "wisdom": wisdom,
            "sha256": _digest(wisdom),
        }
        path = wisdom_path()
        try:
            atomic_write(path, json.dumps(doc, indent=1).encode())
        except OSError as exc:
            _warn(
                ("wisdom-save", str(path)),
                f"cannot save FFTW wisdom to {path}: {exc}; set FFTCONV_CACHE_DIR to a "
                "writable directory or FFTCONV_NO_WISDOM=1 (said once per process)",
            )
            return False
        return True


def _merge_saved() -> None:
    """Import what another process may have saved since we loaded, so saving keeps it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CacheWarning)
        load_wisdom(force=True)


def _forget_wisdom() -> None:
    """Forget all wisdom in memory and allow the file to be loaded again (for tests)."""
    global _wisdom_loaded
    with _wisdom_lock:
        with _planner_lock:
            _lib().forget_wisdom()
        _wisdom_loaded = False
