"""Direct summation: the exact method for small kernels.

Two engines compute the same sums:

* compiled (numba, when installed): for one or two convolved axes, every
  2-D image of the batch is split into bands of output rows that run on
  `threads` threads.  Each output row is accumulated in a buffer that stays
  in L1 cache, four kernel taps per pass over it, from the image rows the
  boundary mode maps to; the padded image is never built (interior columns
  run as vectorised loops, the few border columns read through a column
  map).  See `_direct_kernels`.
* numpy, for three or more convolved axes and when numba is missing: the
  result is accumulated tap by tap, ``out += w[j] * P[j : j + m]``, over a
  padded copy ``P`` of the image that is only as large as the padding needs.

Non-finite samples propagate exactly as the sum says (no tap is skipped, no
fast-math beyond fused multiply-add), so this is also the method of last
resort for non-finite kernels.

Cost (for the planner): ``out_size * kernel_size`` multiply-adds at the rate
`calibrate` measures, but never faster than reading the image and writing
the result at memory speed (`direct_cost`).
"""

from __future__ import annotations

import functools
import importlib.util
import itertools
import math
import os
import tempfile
import threading
import time
from dataclasses import replace

import numpy as np

from .._pad import padded, source_index
from .._problem import Problem
from . import effective_kernel, finite, run_on_cores

#: Set to False to force the numpy engine (tests use it to check the fallback).
USE_NUMBA = True

_lock = threading.Lock()
_kernels_module = None
_kernels_tried = False

#: Below this many multiply-adds a call runs on one thread (thread start-up costs more).
_MIN_PARALLEL_MADDS = 1 << 18

#: Constants for an uncalibrated machine, a little below what `calibrate` measured on
#: one core of an AVX-512 AMD EPYC (the direct rates from 4096x4096 images with 7x7 to
#: 19x19 kernels, the range where direct summation competes with overlap-add): multiply-adds per second per thread, bytes per
#: second of memory traffic for all threads together, fixed cost of a call.
DEFAULT_CONSTS = {
    "direct_madds_per_s": {
        "float32": 2.5e10,
        "float64": 1.6e10,
        "complex64": 3e9,
        "complex128": 2e9,
    },
    "separable_madds_per_s": {
        "float32": 1e10,
        "float64": 7e9,
        "complex64": 4e9,
        "complex128": 2e9,
    },
    "numpy_madds_per_s": {
        "float32": 5e8,
        "float64": 4e8,
        "complex64": 2e8,
        "complex128": 1.5e8,
    },
    "copy_bytes_per_s": 1.5e10,
    "call_overhead_s": 2e-5,
}


def kernels():
    """The compiled kernels module, or None when numba is not installed (or disabled)."""
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
    try:
        from . import _direct_kernels
    except RuntimeError as exc:
        # numba found no writable cache directory (package directory, user cache,
        # NUMBA_CACHE_DIR): cache in a temporary directory instead.
        if "cannot cache" not in str(exc):
            raise
        numba.config.CACHE_DIR = os.path.join(
            tempfile.gettempdir(), f"fftconv-numba-cache-{os.getuid()}"
        )
        from . import _direct_kernels
    return _direct_kernels


def precompile(dtypes=("float32", "float64")) -> bool:
    """Compile every compiled kernel for `dtypes` into numba's on-disk cache.

    Complex problems run on the float32 / float64 kernels.  Compiling takes a
    few seconds per dtype, once per machine; afterwards a fresh process loads
    the machine code in well under a second.  Returns False when numba is not
    installed.

    Examples
    --------
    >>> precompile(["float64"]) in (True, False)
    True
    """
    if kernels() is None:
        return False
    from .._problem import make_problem
    from .separable import convolve_separable

    rng = np.random.default_rng(0)
    for name in dtypes:
        img = rng.random((12, 12)).astype(name)
        for kshape in ((3, 3), (5, 5), (4, 2)):
            p, a, k = make_problem(img, np.ones(kshape, name), "same", "fill", 0, None, None, False)
            out = np.empty(p.out_shape, p.dtype)
            convolve_direct(p, a, k, out)
            convolve_separable(p, a, k, out)
    return True


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


def convolve_direct(problem: Problem, a, k, out, threads: int = 1,
                    finite_data: bool | None = None) -> None:
    """Write the convolution `problem` of `a` and `k` into `out`.

    Parameters
    ----------
    problem : Problem
        What to compute; `a`, `k` and `out` have its shapes and `out` its dtype.
    a, k : ndarray
        The image and the (unflipped) kernel.
    out : ndarray
        Receives the result.
    threads : int
        Threads for the compiled engine.
    finite_data : bool, optional
        Whether `a`, `k` and the fill value are all finite, when the caller has
        checked (`fftconv._execute.for_data`); only complex problems use it (their
        non-finite data take the numpy engine). None checks here.

    Examples
    --------
    >>> import numpy as np
    >>> from fftconv._problem import make_problem
    >>> p, a, k = make_problem(np.arange(5.0), [1.0, 1.0], "same", "nearest", 0, None, None, False)
    >>> out = np.empty(p.out_shape, p.dtype)
    >>> convolve_direct(p, a, k, out)
    >>> out
    array([0., 1., 3., 5., 7.])
    """
    if not compiled_available(problem) or kernels() is None:
        _convolve_numpy(problem, a, k, out)
    elif problem.is_complex:
        _convolve_complex(problem, a, k, out, threads, finite_data)
    else:
        _run_2d(problem, a, effective_kernel(problem, k), out, threads, _direct_task)


def _convolve_complex(problem: Problem, a, k, out, threads: int, finite_data=None) -> None:
    """Complex convolution as real ones: (ar + i ai) * (kr + i ki) is
    ``ar*kr - ai*ki + i (ar*ki + ai*kr)``, two real convolutions when one side is
    real.  The compiled kernels are then built for float32 and float64 only (half
    the compile time), and the real loops vectorise better than complex ones.
    The fill value splits the same way.  Complex arithmetic turns ``inf * 0``
    into NaN in the other part too, which the split does not; non-finite complex
    data therefore take the numpy engine."""
    rd = np.dtype(np.float32) if problem.dtype == np.complex64 else np.dtype(np.float64)
    kk = effective_kernel(problem, k)
    fv = complex(problem.fillvalue)
    if finite_data is None:
        finite_data = finite(a) and finite(kk) and np.isfinite(fv)
    if not finite_data:
        _convolve_numpy(problem, a, k, out)
        return
    a_parts = (a.real, a.imag if a.dtype.kind == "c" else None)
    k_parts = (kk.real, kk.imag if kk.dtype.kind == "c" else None)
    fills = (fv.real, fv.imag)
    re = np.zeros(out.shape, rd)
    im = np.zeros(out.shape, rd)
    tmp = np.empty(out.shape, rd)
    for ia, ap in enumerate(a_parts):
        if ap is None and fills[ia] == 0:
            continue
        if ap is None:
            ap = np.zeros(a.shape, rd)
        part = replace(problem, dtype=rd, fillvalue=fills[ia])
        for ik, kp in enumerate(k_parts):
            if kp is None:
                continue
            _run_2d(part, ap, kp, tmp, threads, _direct_task)
            if ia == ik:  # real*real adds to the real part, imag*imag subtracts
                (re.__iadd__ if ia == 0 else re.__isub__)(tmp)
            else:
                im += tmp
    out.real = re
    out.imag = im



def _convolve_numpy(problem: Problem, a, k, out) -> None:
    dtype = problem.dtype
    pads = problem.pads()
    if any(pb or pa for pb, pa in pads):
        P = padded(a, problem.axes, pads, problem.boundary, problem.fillvalue, dtype=dtype)
    else:
        P = a
    kk = effective_kernel(problem, k).astype(dtype, copy=False)
    osize = [out.shape[ax] for ax in problem.axes]
    ksize = problem.kernel_shape
    acc = out if out.dtype == dtype and out.flags.writeable else np.empty(out.shape, dtype)
    acc[...] = 0
    term = np.empty(out.shape, dtype)
    win = [slice(None)] * P.ndim
    tap = [slice(None)] * kk.ndim
    with np.errstate(invalid="ignore", over="ignore"):  # inf * 0 is NaN, as summed
        for j in itertools.product(*(range(s) for s in ksize)):
            # Convolution: output t takes P[t + (k-1) - j] * w[j].
            for ax, jj, kn, o in zip(problem.axes, j, ksize, osize):
                start = kn - 1 - jj
                win[ax] = slice(start, start + o)
                tap[ax] = slice(jj, jj + 1)
            np.multiply(P[tuple(win)], kk[tuple(tap)], out=term)
            acc += term
    if acc is not out:
        np.copyto(out, acc)


# --- shared 2-D machinery (also used by methods.separable) -------------------------------


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
        self.rowmap = _index_map(shape[0], pads[0], self.out[0] + kshape[0] - 1, problem.boundary)
        self.colmap = _index_map(shape[1], pads[1], self.out[1] + kshape[1] - 1, problem.boundary)
        self.px = pads[1][0]
        self.jl = min(self.px, self.out[1])
        self.jr = max(self.jl, min(self.out[1], shape[1] - kshape[1] + 1 + self.px))


def _index_map(n: int, pad: tuple[int, int], length: int, boundary: str) -> np.ndarray:
    pos = np.arange(length, dtype=np.int64) - pad[0]
    if boundary == "fill":
        return np.where((pos >= 0) & (pos < n), pos, -1)
    return source_index(pos, n, boundary).astype(np.int64)


def _to_2d_last(problem: Problem, x: np.ndarray) -> np.ndarray:
    """`x` with the convolved axes last (and a leading length-1 axis for 1-D problems)."""
    nax = len(problem.axes)
    x = np.moveaxis(x, problem.axes, tuple(range(x.ndim - nax, x.ndim)))
    if nax == 1:
        x = x[..., np.newaxis, :]
    return x


def _batch(problem: Problem, a, k, out):
    """(image index, image, kernel, out) per batch index; broadcast axes repeat."""
    a_m, k_m, o_m = (_to_2d_last(problem, x) for x in (a, k, out))
    bshape = o_m.shape[:-2]
    for idx in np.ndindex(*bshape):
        ai = tuple(i if s > 1 else 0 for i, s in zip(idx, a_m.shape[:-2]))
        ki = tuple(i if s > 1 else 0 for i, s in zip(idx, k_m.shape[:-2]))
        yield ai, a_m[ai], k_m[ki], o_m[idx]


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


def _run_2d(problem: Problem, a, kk, out, threads: int, make_task) -> None:
    """Split every 2-D image of the batch into row bands and run ``make_task`` bands.

    ``make_task(geometry, image, kernel, out2d, fill, i0, i1)`` returns a callable.
    Images, kernels and outputs are handed over C-contiguous in the problem's dtype;
    outputs that are not are computed in a temporary and copied.
    """
    dtype = problem.dtype
    geo = Geometry(problem)
    fill = np.array([problem.fillvalue], dtype=dtype)
    items = list(_batch(problem, a, kk, out))
    ho, wo = geo.out
    madds = ho * wo * math.prod(geo.kshape) * len(items)
    threads = max(1, min(threads, madds // _MIN_PARALLEL_MADDS))
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
        edges = np.linspace(0, ho, bands_per_image + 1).astype(int)
        for i0, i1 in itertools.pairwise(edges):
            if i1 > i0:
                tasks.append(make_task(geo, img, ker, dst, fill, int(i0), int(i1)))
    run_bands(tasks, threads)
    for o2, dst in copies:
        np.copyto(o2, dst, casting="unsafe")


def _direct_task(geo: Geometry, img, ker, dst, fill, i0, i1):
    kern = kernels()
    w = np.ascontiguousarray(ker[::-1, ::-1])  # convolution -> correlation form
    rows = kern.small.ROWS.get(w.shape, kern.direct_rows)
    return lambda: rows(img, w, dst, geo.rowmap, geo.colmap, fill, geo.px, geo.jl, geo.jr, i0, i1)


# --- cost model and calibration ----------------------------------------------------------


def _rate(consts: dict, table: str, dtype) -> float:
    rates = consts.get(table) or DEFAULT_CONSTS[table]
    name = np.dtype(dtype).name
    return rates.get(name) or DEFAULT_CONSTS[table].get(name, min(rates.values()))


def traffic_bytes(problem: Problem) -> int:
    """Bytes a direct method must move at least: read the image, write the result."""
    item = problem.dtype.itemsize
    return item * (math.prod(problem.in1_shape) + math.prod(problem.out_shape))


def direct_cost(problem: Problem, consts: dict | None = None, threads: int = 1):
    """Predicted (seconds, peak extra bytes) of `convolve_direct` on `problem`.

    Compute at ``consts['direct_madds_per_s'][dtype]`` per thread (the numpy
    rate when the compiled engine does not apply), bounded below by the memory
    traffic at ``consts['copy_bytes_per_s']``.

    Examples
    --------
    >>> from fftconv._problem import make_problem
    >>> import numpy as np
    >>> p, _, _ = make_problem(np.zeros((64, 64)), np.ones((3, 3)), "same", "fill", 0, None,
    ...                        None, False)
    >>> seconds, peak = direct_cost(p)
    >>> 0 < seconds < 1
    True
    """
    consts = consts or DEFAULT_CONSTS
    out_size = math.prod(problem.out_shape)
    madds = out_size * math.prod(problem.kernel_shape)
    item = problem.dtype.itemsize
    compiled = compiled_available(problem)
    table = "direct_madds_per_s" if compiled else "numpy_madds_per_s"
    threads = max(1, min(threads, madds // _MIN_PARALLEL_MADDS)) if compiled else 1
    compute = madds / (_rate(consts, table, problem.dtype) * threads)
    memory = traffic_bytes(problem) / consts.get("copy_bytes_per_s", 8e9)
    seconds = max(compute, memory) + consts.get("call_overhead_s", 2e-5)
    if compiled:
        # Per-thread row buffers. (An input of another dtype or layout is converted
        # once, a copy of the image this shape-only model cannot see.)
        peak = threads * 4096 * item
    else:
        padded_size = math.prod(
            n + pb + pa if d in problem.axes else n
            for d, n, (pb, pa) in zip(range(problem.ndim), problem.in1_shape, _pads_by_dim(problem))
        )
        peak = (padded_size + out_size) * item
    return seconds, peak


def _pads_by_dim(problem: Problem):
    pads = dict(zip(problem.axes, problem.pads()))
    return [pads.get(d, (0, 0)) for d in range(problem.ndim)]


def _best_time(fn, repeat: int) -> float:
    fn()
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def calibrate(size: int = 512, repeat: int = 3) -> dict:
    """Measure this machine's constants for `direct_cost` and `separable_cost` (one thread).

    Runs each compiled kernel once per dtype on a ``size x size`` image
    (11x11 kernel; 31-tap separable pair) and one large copy; about a second in
    all once the kernels are compiled.  Returns a dict shaped like
    `DEFAULT_CONSTS`.
    """
    from .._problem import make_problem

    consts = {k: (dict(v) if isinstance(v, dict) else v) for k, v in DEFAULT_CONSTS.items()}
    rng = np.random.default_rng(0)
    big = rng.random(1 << 22)  # 32 MiB: beyond the caches
    dst = np.empty_like(big)
    consts["copy_bytes_per_s"] = 2 * big.nbytes / _best_time(lambda: np.copyto(dst, big), repeat)
    if kernels() is None:
        return consts
    from .separable import convolve_separable, kernel_factors

    for name in ("float32", "float64", "complex64", "complex128"):
        img = rng.random((size, size)).astype(name)
        # 11x11: where direct summation and overlap-add meet, so the rate that decides
        # between them is measured there (small kernels run at lower rates, bound by memory).
        p, a, k = make_problem(
            img, rng.random((11, 11)).astype(name), "same", "fill", 0, None, None, False
        )
        out = np.empty(p.out_shape, p.dtype)
        t = _best_time(lambda p=p, a=a, k=k, out=out: convolve_direct(p, a, k, out, 1), repeat)
        consts["direct_madds_per_s"][name] = size * size * 121 / t
        if name.startswith("complex"):  # run as real problems, not by passes
            continue
        g = np.exp(-(np.linspace(-2, 2, 31) ** 2))
        kg = np.outer(g, g).astype(name)
        p, a, k = make_problem(img, kg, "same", "fill", 0, None, None, False)
        factors = kernel_factors(kg, p.dtype)
        t = _best_time(
            lambda p=p, a=a, k=k, out=out, f=factors: convolve_separable(p, a, k, out, 1, f),
            repeat,
        )
        consts["separable_madds_per_s"][name] = size * size * 62 / t
    return consts
