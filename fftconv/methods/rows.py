"""The compiled row engine shared by direct summation and the separable passes.

Every 2-D image of a batch (1-D problems are 2-D with one row) is split into
bands of output rows that run on threads of the executors' pool; each band
calls one compiled row kernel (numba, `_direct_kernels` and the generated
`_direct_small` / `_direct_taps`, whose settings `_jit` defines once).
`Geometry` holds the index maps that stand in for the padded image, which is
never built. `kernels` is the one switch between the two builds of the same
kernels: the ahead-of-time module that `fftconv precompile` builds for this
machine (`_aot`: loading it takes a millisecond and imports no numba) when
there is one, else numba's JIT (importing numba and loading its cached
kernels costs about a second in a fresh process); None when numba is missing.
"""

from __future__ import annotations

import functools
import importlib.util
import itertools
import math
import os
import threading
import types

import numpy as np

from .. import _fork
from .._pad import source_index
from .._problem import Problem
from . import run_on_cores

#: Set to False to force the numpy engine (tests use it to check the fallback).
USE_NUMBA = True

#: Set to False to use numba's JIT kernels even where an ahead-of-time module was
#: built (`fftconv precompile` compiles on the JIT; tests compare the two);
#: ``FFTCONV_AOT=0`` in the environment starts a process with it False.
USE_AOT = os.environ.get("FFTCONV_AOT", "1") != "0"

#: Held while numba and the compiled modules are imported: a fork waits for that.
_lock = _fork.lock(wait_at_fork=True)
_kernels_module = None
_kernels_tried = False

#: Below this many multiply-adds a call runs on one thread (thread start-up costs more).
MIN_PARALLEL_MADDS = 1 << 18


def kernels():
    """The compiled kernels (``_direct_kernels``' functions, and ``.small``, the generated
    unrolled ones): the ahead-of-time build when there is one for this machine, else
    numba's JIT (`jit_kernels`); None when numba is not installed (or disabled)."""
    if not USE_NUMBA:
        return None
    aot = _aot_kernels() if USE_AOT else None
    return aot[0] if aot is not None else jit_kernels()


def interleaved_kernels():
    """The compiled kernels of channels-last images (``DRIVERS``, ``load_rows``,
    ``store_rounded``; the strip-mined rank-one passes ``sep_rows`` and the
    channel-plane moves ``split_rows``, ``merge_rows``) from the same build as
    `kernels`; only when `kernels` is not None."""
    aot = _aot_kernels() if USE_AOT else None
    return aot[1] if aot is not None else interleaved_jit()


_aot_loaded = None  # None: not tried; else (grey, interleaved) or False


def aot_in_use() -> bool:
    """Whether `kernels` and `interleaved_kernels` are the ahead-of-time module's."""
    return USE_NUMBA and USE_AOT and _aot_kernels() is not None


def _aot_kernels():
    global _aot_loaded
    if _aot_loaded is None:
        with _lock:
            if _aot_loaded is None:
                loaded = None
                if _numba_installed():
                    from . import _aot

                    loaded = _aot.load(jit_kernels, interleaved_jit)
                _aot_loaded = loaded or False
    return _aot_loaded or None


def reset_aot() -> None:
    """Look for the ahead-of-time module again on the next call (after a build)."""
    global _aot_loaded
    with _lock:
        _aot_loaded = None


_il_jit = None


def interleaved_jit():
    """The JIT kernels of channels-last images: `_interleaved_kernels`' functions, with
    `_u8_kernels.sep_rows` and `_planar_kernels`' ``split_rows`` and ``merge_rows``
    (imports numba)."""
    global _il_jit
    if _il_jit is None:
        jit_kernels()  # numba's cache directory, as for the grey kernels
        from . import _interleaved_kernels, _planar_kernels, _u8_kernels

        names = {n: f for n, f in vars(_interleaved_kernels).items() if not n.startswith("_")}
        _il_jit = types.SimpleNamespace(
            **names,
            sep_rows=_u8_kernels.sep_rows,
            split_rows=_planar_kernels.split_rows,
            merge_rows=_planar_kernels.merge_rows,
        )
    return _il_jit


def jit_kernels():
    """`kernels` from numba's JIT (imports numba), or None when numba is missing."""
    global _kernels_module, _kernels_tried
    if not USE_NUMBA:
        return None
    if not _kernels_tried:
        with _lock:
            if not _kernels_tried:
                _kernels_module = _import_kernels()
                _kernels_tried = True
    return _kernels_module


def _import_kernels():
    try:
        import numba
    except ImportError:
        return None
    from numba.core.compiler_lock import global_compiler_lock

    from .. import _compile_notice

    # A child forked while another thread compiles (or loads from numba's cache) would
    # wait forever for numba's compiler lock the first time it dispatches a kernel.
    _fork.wait_for(global_compiler_lock._lock)
    _compile_notice.install()
    try:
        from . import _direct_kernels, _direct_small
    except RuntimeError as exc:
        # numba found no writable cache directory (package directory, user cache,
        # NUMBA_CACHE_DIR): cache in a private temporary directory instead.
        if "cannot cache" not in str(exc):
            raise
        from .._cachedir import numba_fallback_cache_dir

        numba.config.CACHE_DIR = str(numba_fallback_cache_dir())
        from . import _direct_kernels, _direct_small
    # The compiled functions of `_direct_kernels` (numba dispatchers), and the generated
    # unrolled ones as `.small`: one object, so no kernel module imports another's.
    compiled = {
        n: f
        for n, f in vars(_direct_kernels).items()
        if not n.startswith("_") and hasattr(f, "py_func")
    }
    return types.SimpleNamespace(**compiled, small=_direct_small)


def compiled_available(problem: Problem) -> bool:
    """True when the compiled engine runs `problem` (numba present, 1 or 2 axes).

    Asking does not import numba (about 0.3 s and 70 MB): planning a call that
    the FFT wins costs neither.
    """
    if len(problem.axes) > 2 or not USE_NUMBA:
        return False
    if _kernels_tried:
        return _kernels_module is not None
    return _numba_installed()


@functools.lru_cache(maxsize=1)
def _numba_installed() -> bool:
    return importlib.util.find_spec("numba") is not None


class Geometry:
    """Index maps of one 2-D problem: which image row / column each padded one copies."""

    def __init__(self, problem: Problem):
        shape = problem.image_shape
        kshape = problem.kernel_shape
        pads = problem.pads()
        if len(shape) == 1:  # a 1-D problem is a 2-D one with one row
            shape, kshape, pads = (1,) + shape, (1,) + kshape, ((0, 0),) + pads
        self.shape, self.kshape, self.pads = shape, kshape, pads
        self.out = tuple(n + pb + pa - kn + 1 for n, kn, (pb, pa) in zip(shape, kshape, pads))
        self.rowmap = index_map(shape[0], pads[0], self.out[0] + kshape[0] - 1, problem.boundary)
        self.colmap = index_map(shape[1], pads[1], self.out[1] + kshape[1] - 1, problem.boundary)
        self.px = pads[1][0]
        self.jl = min(self.px, self.out[1])
        self.jr = max(self.jl, min(self.out[1], shape[1] - kshape[1] + 1 + self.px))


@functools.lru_cache(maxsize=256)
def index_map(n: int, pad: tuple[int, int], length: int, boundary: str) -> np.ndarray:
    """The image index each of `length` padded positions copies (-1: the fill value).

    Cached (a small image's call would spend a third of its time here), so the
    array is shared between calls: the kernels only read it. It stays writeable
    because the ahead-of-time kernels' signatures take writeable arrays.
    """
    pos = np.arange(length, dtype=np.int64) - pad[0]
    if boundary == "fill":
        return np.where((pos >= 0) & (pos < n), pos, -1)
    return source_index(pos, n, boundary).astype(np.int64)


def to_2d_last(problem: Problem, x: np.ndarray) -> np.ndarray:
    """`x` with the convolved axes last (and a leading length-1 axis for 1-D problems)."""
    nax = len(problem.axes)
    last = tuple(range(x.ndim - nax, x.ndim))
    if tuple(problem.axes) != last:
        x = np.moveaxis(x, problem.axes, last)
    if nax == 1:
        x = x[..., np.newaxis, :]
    return x


def batch_items(problem: Problem, a, k, out):
    """(image index, image, kernel, out) per batch index; broadcast axes repeat."""
    a_m, k_m, o_m = (to_2d_last(problem, x) for x in (a, k, out))
    bshape = o_m.shape[:-2]
    for idx in np.ndindex(*bshape):
        ai = tuple(i if s > 1 else 0 for i, s in zip(idx, a_m.shape[:-2]))
        ki = tuple(i if s > 1 else 0 for i, s in zip(idx, k_m.shape[:-2]))
        yield ai, a_m[ai], k_m[ki], o_m[idx]


def band_edges(n: int, parts: int) -> list[tuple[int, int]]:
    """`parts` consecutive ``(start, stop)`` row ranges covering ``0 .. n`` (empty ones
    where ``parts > n``), in integers: the executors' bands. Inner edges are even, so
    that the drivers that sum output rows in pairs pair the same rows whatever the
    number of bands: results do not depend on the number of threads."""
    edges = [0] + [n * i // parts // 2 * 2 for i in range(1, parts)] + [n]
    return list(itertools.pairwise(edges))


def run_bands(tasks, threads: int) -> None:
    """Run the zero-argument callables `tasks` on `threads` threads.

    The caller's thread and ``threads - 1`` pool threads take the next task
    until none is left, so a thread that the OS delays costs one small band,
    not a fixed share of the work.
    """
    order = iter(tasks)
    take = threading.Lock()

    def worker():
        while True:
            with take:
                task = next(order, None)
            if task is None:
                return
            task()

    run_on_cores(worker, min(threads, len(tasks)))


def run_2d(problem: Problem, a, kk, out, threads: int, make_task) -> None:
    """Split every 2-D image of the batch into row bands and run ``make_task`` bands.

    ``make_task(geometry, image, kernel, out2d, fill, i0, i1)`` returns a callable.
    Images, kernels and outputs are handed over C-contiguous in the problem's dtype;
    outputs that are not are computed in a temporary and copied.
    """
    dtype = problem.dtype
    geo = Geometry(problem)
    fill = np.array([problem.fillvalue], dtype=dtype)
    items = list(batch_items(problem, a, kk, out))
    ho, wo = geo.out
    madds = ho * wo * math.prod(geo.kshape) * len(items)
    threads = max(1, min(threads, madds // MIN_PARALLEL_MADDS))
    # A few bands per thread (each of at least 16 rows) balance a shared machine.
    bands = 1 if threads == 1 else 4 * threads
    bands_per_image = max(1, min(-(-bands // len(items)), ho // 16))
    tasks, copies, cache = [], [], {}
    for ai, a2, k2, o2 in items:
        img = cache.get(ai)
        if img is None:
            img = cache[ai] = np.ascontiguousarray(a2, dtype=dtype)
        ker = np.ascontiguousarray(k2, dtype=dtype)
        if o2.flags.c_contiguous and o2.dtype == dtype and o2.flags.writeable:
            dst = o2
        else:
            dst = np.empty(o2.shape, dtype)
            copies.append((o2, dst))
        for i0, i1 in band_edges(ho, bands_per_image):
            if i1 > i0:
                tasks.append(make_task(geo, img, ker, dst, fill, i0, i1))
    run_bands(tasks, threads)
    for o2, dst in copies:
        np.copyto(o2, dst, casting="unsafe")
