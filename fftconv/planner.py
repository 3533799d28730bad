"""The planner: which method, at which transform or block size, from shapes alone.

`plan` prices every applicable method with a cost model and returns a `Plan`
naming the cheapest, with every candidate it weighed (``print(plan)`` shows the
table). Planning is pure and cheap: no FFTW planning and no pixel work, so
``method='auto'`` costs microseconds per call.

The cost model
--------------
* An FFT of lengths ``L`` (``N = prod(L)`` samples) costs
  ``c_fft * N * sum_axes(flops(L_i)) * slow`` seconds, where ``flops(L)`` is
  ``log2(L)`` with each prime factor ``p`` of ``L`` weighted by how fast
  FFTW's codelets for it are: 1 for 2, about 1.2 for 3, 1.25 for 5, 2 for 7,
  and 4 for anything else (a large prime length such as 4099 goes through
  Rader's algorithm), and ``slow = 1 + slope * log2(bytes / cache)`` for
  buffers larger than the cache (measured: a 4096x4096 transform costs about
  3 times more per unit than a 256x256 one). Complex data cost twice real
  data. ``threads`` FFTW threads divide the time by ``1 + eff * (threads - 1)``.
* Streaming passes (padding, the spectrum product, cropping) cost ``c_mem``
  seconds per byte.
* Direct summation costs ``c_madd`` seconds per multiply-add (out x taps;
  measured for float32 and float64 on cache-sized arrays) plus ``c_tap`` per
  kernel tap; for results much larger than the cache the cost rises towards
  five streaming passes over the result per tap.
* Overlap-add prices its blocks: blocks x (two block FFTs + the block's
  passes + ``c_block``), spread over the cores, plus one kernel transform. The
  block shape is chosen by trying FFTW-fast block lengths on every axis.
* 'fft' also weighs the cheapest exact transform for the mode: with
  ``boundary='wrap'`` a circular convolution at the image's own size (no
  padding at all) when that size is fast; 'valid' never transforms more than
  the image.

The constants are measured on the machine by `calibrate` (about 10 s) and kept
in the cache directory (``$FFTCONV_CACHE_DIR`` or the user cache directory);
machines never calibrated use the shipped defaults below, measured on a
2-core x86-64 development machine.

Adding a method is one function: decorate ``f(problem, machine, threads,
kernel) -> Candidate | list[Candidate] | None`` with ``@candidate('name')``.
"""

from __future__ import annotations

import functools
import json
import math
import os
import platform
import threading
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields

import numpy as np

from . import _fftw
from ._cachedir import CacheWarning, atomic_write, cache_dir
from ._problem import Problem, make_problem, normalize_method, normalize_threads
from .methods import direct as _direct
from .methods.blocks import block_layout
from .methods.fft import circular_ok, transform_lengths
from .methods.separable import kernel_2d, kernel_factors, separable_cost

# --- machine constants ------------------------------------------------------------------


@dataclass(frozen=True)
class Machine:
    """Calibrated cost constants (seconds per unit of work), single-threaded."""

    fft32: float = 1.25e-10  # per weighted N log2 N unit, float32 real, in cache
    fft64: float = 1.5e-10  # same, float64
    fft_slope: float = 0.3  # extra cost per doubling of the buffer beyond `cache` bytes
    cache: float = 1.0e6  # bytes of buffer an FFT runs at in-cache speed
    parallel: float = 0.85  # FFTW thread efficiency: speedup 1 + parallel * (threads - 1)
    mem: float = 5.0e-11  # per byte of a streaming pass (copy, product, crop)
    madd32: float = 3.4e-10  # direct summation, per multiply-add, float32
    madd64: float = 7.5e-10  # same, float64 (complex counts as two)
    tap: float = 2.5e-6  # direct summation, per kernel tap (Python loop)
    block: float = 1.5e-5  # overlap-add, per block (slicing, lending)
    call: float = 1.0e-4  # per whole-array FFT call (plan lending, kernel buffer)
    calibrated: bool = False


_WEIGHTS = {2: 1.0, 3: 1.2, 5: 1.25, 7: 2.0, 11: 2.4, 13: 2.6}
_OTHER_WEIGHT = 4.0


@functools.lru_cache(maxsize=4096)
def _fast(n: int, real: bool) -> int:
    return _fftw.fast_length(n, real=real)


@functools.lru_cache(maxsize=4096)
def fft_flops(n: int) -> float:
    """Weighted ``log2(n)``: sum over the prime factors ``p`` of `n` of ``w(p) log2(p)``.

    >>> fft_flops(1024)
    10.0
    >>> round(fft_flops(4099), 1)  # a prime: Rader's algorithm
    48.0
    """
    total, m, p = 0.0, int(n), 2
    while p * p <= m:
        while m % p == 0:
            total += _WEIGHTS.get(p, _OTHER_WEIGHT) * math.log2(p)
            m //= p
        p += 1
    if m > 1:
        total += _WEIGHTS.get(m, _OTHER_WEIGHT) * math.log2(m)
    return max(total, 1.0)


def fft_seconds(lengths, count: float, dtype: np.dtype, m: Machine, threads: int) -> float:
    """Predicted time of `count` transforms of `lengths` (forward or backward)."""
    n = math.prod(lengths)
    dt = np.dtype(dtype)
    single = dt in (np.dtype(np.float32), np.dtype(np.complex64))
    work = n * sum(fft_flops(x) for x in lengths)
    nbytes = n * dt.itemsize
    # Transforms that outgrow the cache pay for memory traffic on every pass.
    slow = 1.0 + m.fft_slope * max(0.0, math.log2(nbytes / m.cache))
    t = count * (m.fft32 if single else m.fft64) * work * slow
    if dt.kind == "c":
        t *= 2.0
    return t / _speedup(m, threads, n)


def _speedup(m: Machine, threads: int, n: int) -> float:
    # Small transforms gain little from FFTW threads.
    useful = max(1, min(threads, n // 16384 + 1))
    return 1.0 + m.parallel * (useful - 1)


# --- plans and candidates ------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """One way to compute the problem and its predicted cost."""

    method: str
    seconds: float
    peak_bytes: int
    transform_shape: tuple[int, ...] | None = None
    block_shape: tuple[int, ...] | None = None
    n_blocks: int = 1
    circular: bool = False
    note: str = ""
    #: 'separable' / 'lowrank': the kernel's (col, row) factor pairs, found while pricing.
    factors: tuple | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Plan:
    """The planner's decision for one problem; ``print(plan)`` explains it.

    Attributes
    ----------
    method : 'direct', 'separable', 'lowrank', 'fft' or 'oa' (or a method registered with `candidate`).
    transform_shape : the FFT lengths on the convolved axes: of the whole
        (padded) image for 'fft', of one block for 'oa'; None for 'direct'.
    block_shape : outputs per block on each convolved axis ('oa' only).
    n_blocks : number of blocks (1 unless 'oa').
    circular : 'fft' by circular convolution at the image's size ('wrap').
    seconds : predicted time of the chosen candidate.
    peak_bytes : predicted working memory beyond the inputs and the output.
    candidates : every candidate weighed, cheapest first.
    threads : the threads the plan was priced for.
    calibrated : whether the constants were measured on this machine.
    problem : the `Problem` planned for.
    factors : 'separable' / 'lowrank' only: the kernel's ``(col, row)`` factor
        pairs, so that executing the plan does not factor the kernel again.
    finite : False for the exact path of data holding NaN or infinity, which the
        execute layer (`fftconv._execute.for_data`) substitutes for the planner's
        choice; the planner's own plans are True.
    """

    method: str
    transform_shape: tuple[int, ...] | None
    block_shape: tuple[int, ...] | None
    n_blocks: int
    circular: bool
    seconds: float
    peak_bytes: int
    candidates: tuple[Candidate, ...]
    threads: int
    calibrated: bool
    problem: Problem = field(repr=False)
    factors: tuple | None = field(default=None, compare=False, repr=False)
    finite: bool = True

    def explain(self) -> str:
        """A table of every candidate, its predicted time and memory; the choice marked."""
        p = self.problem
        lines = [
            (f"fftconv plan: {'correlate' if p.correlate else 'convolve'} image {p.in1_shape} "
             f"with kernel {p.in2_shape} on axes {p.axes}, {p.dtype}, mode={p.mode!r}, "
             f"boundary={p.boundary!r}, threads={self.threads}"),
            (f"chosen: {self.method} ({self._how()}), "
             f"predicted {_secs(self.seconds)} and {_bytes(self.peak_bytes)} of working memory"),
            "",
            ("candidates (predicted time, its ratio to the best, working memory beyond the "
             "inputs and output):"),
            f"  {'method':<9} {'predicted':>10} {'x best':>7} {'memory':>10}  how",
        ]
        best = self.candidates[0].seconds if self.candidates else 1.0
        for c in self.candidates:
            mark = "*" if _same(c, self) else " "
            lines.append(
                f"{mark} {c.method:<9} {_secs(c.seconds):>10} {c.seconds / best:>7.2f} "
                f"{_bytes(c.peak_bytes):>10}  {_describe(c, p)}"
            )
        src = ("calibrated on this machine" if self.calibrated
               else "shipped defaults (run fftconv.calibrate() to measure this machine)")
        lines.append("")
        lines.append(f"cost constants: {src}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.explain()

    def _how(self) -> str:
        if self.finite:
            return _describe(_chosen(self), self.problem)
        if self.method == "fft":
            return ("non-finite data: one FFT of the finite part of the padded image, then "
                    "the outputs a NaN or infinity reaches set as direct summation gives them")
        return "non-finite data: direct summation, which propagates NaN and infinity exactly"


def _chosen(p: Plan) -> Candidate:
    return next((c for c in p.candidates if _same(c, p)), p.candidates[0])


def _describe(c: Candidate, p: Problem) -> str:
    """What the candidate does, in words."""
    if c.method == "direct":
        taps = math.prod(p.kernel_shape)
        how = "compiled direct summation" if c.note == "compiled" else "direct summation"
        return f"{how}, {taps} taps x {math.prod(p.out_shape):,} outputs"
    if c.method == "fft" and c.circular:
        return f"one circular FFT at the image's size {_shape(c.transform_shape)}, no padding"
    if c.method == "fft":
        extra = (", zero padding not written"
                 if p.boundary == "fill" and p.fillvalue == 0 else "")
        return f"one FFT of the padded image at {_shape(c.transform_shape)}{extra}"
    if c.method == "oa":
        return (f"overlap-add: {c.n_blocks} blocks of {_shape(c.block_shape)} outputs, "
                f"each a {_shape(c.transform_shape)} FFT")
    return c.note or c.method


def _same(c: Candidate, p: Plan) -> bool:
    return (c.method, c.transform_shape, c.circular) == (p.method, p.transform_shape, p.circular)


def _shape(s) -> str:
    return "x".join(str(x) for x in s) if s else "-"


def _secs(s: float) -> str:
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.1f} ms"
    return f"{s * 1e6:.0f} us"


def _bytes(b: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if b >= size:
            return f"{b / size:.1f} {unit}"
    return f"{b} B"


CostFunction = Callable[[Problem, Machine, int, "np.ndarray | None"],
                        "Candidate | Iterable[Candidate] | None"]
CANDIDATES: dict[str, CostFunction] = {}


def candidate(name: str) -> Callable[[CostFunction], CostFunction]:
    """Register a cost function for method `name` (one function per method)."""

    def register(fn: CostFunction) -> CostFunction:
        CANDIDATES[name] = fn
        return fn

    return register


def _complex_item(dtype) -> int:
    return _fftw.complex_dtype(dtype).itemsize


def _spectrum_len(lengths, problem: Problem) -> int:
    n = math.prod(lengths)
    if problem.is_complex:
        return n
    return n // lengths[-1] * (lengths[-1] // 2 + 1)


def _batches(problem: Problem) -> tuple[int, int, int]:
    """Non-convolved sizes of the image, the kernel and the result."""
    conv = set(problem.axes)
    ba = math.prod(s for d, s in enumerate(problem.in1_shape) if d not in conv)
    bk = math.prod(s for d, s in enumerate(problem.in2_shape) if d not in conv)
    by = math.prod(s for d, s in enumerate(problem.batch_shape) if d not in conv)
    return ba, bk, by


@candidate("direct")
def _direct_cost(problem: Problem, m: Machine, threads: int, kernel) -> Candidate:
    if _direct.compiled_available(problem):
        seconds, peak = _direct.direct_cost(problem, _direct_consts, threads)
        return Candidate("direct", seconds, int(peak), note="compiled")
    return _numpy_direct_cost(problem, m)


#: Below this many outputs 1-D passes save microseconds, and summing directly keeps small
#: results bit-exact (SciPy's tests compare convolve2d's small results exactly).
_SEPARABLE_MIN_OUTPUTS = 1 << 16


@candidate("separable")
def _separable_cost(problem: Problem, m: Machine, threads: int, kernel) -> Candidate | None:
    """One pair of 1-D passes per factor of the kernel's SVD ('lowrank' beyond one)."""
    if kernel is None or not _direct.compiled_available(problem):
        return None
    if math.prod(problem.out_shape) < _SEPARABLE_MIN_OUTPUTS:
        return None
    k2 = kernel_2d(problem, kernel)
    if k2 is None or min(k2.shape) < 2:
        return None
    factors = kernel_factors(k2, problem.dtype)
    if not factors:
        return None
    seconds, peak = separable_cost(problem, len(factors), _direct_consts, threads)
    name = "separable" if len(factors) == 1 else "lowrank"
    return Candidate(name, seconds, int(peak),
                     note=f"{len(factors)} pair(s) of 1-D passes ({k2.shape[0]} + {k2.shape[1]}"
                          f" taps each), the kernel's rank {len(factors)} factors",
                     factors=tuple(factors))


def _numpy_direct_cost(problem: Problem, m: Machine) -> Candidate:
    out = math.prod(problem.out_shape)
    taps = math.prod(problem.kernel_shape)
    isz = problem.dtype.itemsize
    padded = 0
    if any(pb or pa for pb, pa in problem.pads()):
        padded = math.prod(problem.in1_shape) // math.prod(problem.image_shape) * math.prod(
            n + pb + pa for n, (pb, pa) in zip(problem.image_shape, problem.pads())
        )
    single = problem.dtype in (np.dtype(np.float32), np.dtype(np.complex64))
    madd = (m.madd32 if single else m.madd64) * (2 if problem.is_complex else 1)
    # Each tap streams five result-sized arrays (read the window, write the term, read
    # it and the sum, write the sum): memory bound once they outgrow the caches. The
    # cost per multiply-add rises from the in-cache rate to five streaming passes
    # between 4x and 64x the cache (measured: 4e-10 s at 5 MB, 1.2e-9 s at 67 MB).
    spill = min(1.0, max(0.0, math.log2(max(out * isz, 1) / (4 * m.cache)) / 4))
    madd += spill * max(0.0, 5 * isz * m.mem - madd)
    seconds = madd * out * taps + m.tap * taps + m.mem * 2 * padded * isz
    return Candidate("direct", seconds, (padded + out) * isz)


def _fft_like(problem: Problem, m: Machine, threads: int, lengths, circular: bool) -> Candidate:
    ba, bk, by = _batches(problem)
    isz = problem.dtype.itemsize
    n = math.prod(lengths)
    nc = _spectrum_len(lengths, problem)
    csz = _complex_item(problem.dtype)
    out = math.prod(problem.out_shape)
    t = fft_seconds(lengths, ba + by + bk, problem.dtype, m, threads)
    passes = (2 * n * ba * isz            # pad / load the image into the buffer
              + 3 * nc * by * csz         # spectrum product
              + 2 * out * isz)            # crop into the result
    t += m.mem * passes / _speedup(m, min(threads, 2), n) + m.call
    peak = (n * ba * isz + nc * ba * csz) + (n * by * isz + nc * by * csz) + nc * bk * csz
    note = "circular at image size" if circular else (
        "zero padding not written" if problem.boundary == "fill" and problem.fillvalue == 0
        else "")
    return Candidate("fft", t, peak, tuple(lengths), circular=circular, note=note)


@candidate("fft")
def _fft_cost(problem: Problem, m: Machine, threads: int, kernel) -> list[Candidate]:
    out = [_fft_like(problem, m, threads, transform_lengths(problem), False)]
    if circular_ok(problem):
        out.append(_fft_like(problem, m, threads, problem.image_shape, True))
    return out


def _block_lengths(k: int, o: int, real: bool, limit: int) -> list[int]:
    """FFTW-fast block lengths for an axis: from about 2k up to one block for all."""
    top = _fast(o + k - 1, real)
    out, x = set(), max(2 * k, 16)
    while x < top:
        out.add(_fast(x, real))
        x = int(x * 1.25) + 1
    out.add(top)
    vals = sorted(out)
    if len(vals) > limit:
        step = (len(vals) - 1) / (limit - 1)
        vals = sorted({vals[round(i * step)] for i in range(limit)})
    return vals


@candidate("oa")
def _oa_cost(problem: Problem, m: Machine, threads: int, kernel) -> Candidate | None:
    ba, bk, by = _batches(problem)
    isz = problem.dtype.itemsize
    csz = _complex_item(problem.dtype)
    real = not problem.is_complex
    per_axis = max(4, round(400 ** (1 / len(problem.axes))))
    options = [
        _block_lengths(k, problem.out_shape[ax], real, per_axis)
        for k, ax in zip(problem.kernel_shape, problem.axes)
    ]
    best = None
    outs = [problem.out_shape[ax] for ax in problem.axes]
    ks = problem.kernel_shape
    for lengths in _product(options):
        steps = tuple(L - k + 1 for L, k in zip(lengths, ks))
        nblocks = math.prod(-(-o // b) for o, b in zip(outs, steps))
        if nblocks < 2:
            continue
        workers = min(threads, nblocks)
        n = math.prod(lengths)
        nc = _spectrum_len(lengths, problem)
        one = _block_seconds(problem, m, lengths, steps) + m.block
        t = nblocks * one / (1.0 + m.parallel * (workers - 1))
        t += fft_seconds(lengths, bk, problem.dtype, m, threads) + m.call + 1e-4 * (workers > 1)
        if best is None or t < best[0]:
            peak = workers * (n * (ba + by) * isz + nc * (ba + by) * csz) + nc * bk * csz
            best = (t, peak, tuple(lengths), steps, nblocks)
    if best is None:
        return None
    t, peak, lengths, steps, nblocks = best
    return Candidate("oa", t, peak, lengths, block_shape=steps, n_blocks=nblocks)


def _block_seconds(problem: Problem, m: Machine, lengths, steps) -> float:
    """One overlap-add block on one thread: its two transforms and its streaming passes
    (load the block, the spectrum product, write its outputs). `calibrate` fits
    ``m.block`` against this same model."""
    ba, _, by = _batches(problem)
    isz, csz = problem.dtype.itemsize, _complex_item(problem.dtype)
    n, nc = math.prod(lengths), _spectrum_len(lengths, problem)
    return fft_seconds(lengths, ba + by, problem.dtype, m, 1) + m.mem * (
        2 * n * ba * isz + 3 * nc * by * csz + 2 * math.prod(steps) * by * isz)


def _product(options):
    if not options:
        yield ()
        return
    for head in options[0]:
        for rest in _product(options[1:]):
            yield (head,) + rest


# --- plan() ----------------------------------------------------------------------------------


def plan(
    in1_shape,
    in2_shape,
    dtype=np.float64,
    mode: str = "full",
    boundary: str = "fill",
    fillvalue=0,
    *,
    axes=None,
    channel_axis: int | None = None,
    threads: int | None = None,
    correlate: bool = False,
    method: str = "auto",
    kernel=None,
) -> Plan:
    """Choose how to convolve arrays of these shapes, from the shapes alone.

    Parameters
    ----------
    in1_shape, in2_shape : tuple of int
        Shapes of the image and the kernel, as `convolve` would get them.
    dtype : dtype
        The inputs' dtype (both; the result's dtype follows `convolve`).
    mode, boundary, fillvalue, axes, channel_axis, threads, correlate
        As for `convolve` / `correlate`.
    method : {'auto', 'direct', 'fft', 'oa'}
        'auto' picks the cheapest candidate; a method name prices only that
        method (with its best transform or block shape).
    kernel : ndarray, optional
        The kernel's values, for candidates whose cost depends on them
        (separable or low-rank kernels); the shapes are enough otherwise.

    Returns
    -------
    Plan
        The choice, its predicted time and memory, and every candidate.

    Examples
    --------
    >>> import fftconv
    >>> p = fftconv.plan((4096, 4096), (31, 31), "float32", mode="same")
    >>> p.method in ("fft", "oa")
    True
    >>> [c.method for c in p.candidates][:1] == [p.method]
    True
    >>> fftconv.plan((512, 512), (1, 1)).method  # a 1x1 kernel is a scaled copy
    'direct'
    >>> print(fftconv.plan((256, 256), (255, 255)).explain())  # doctest: +ELLIPSIS
    fftconv plan: convolve image (256, 256) with kernel (255, 255) on axes (0, 1), float64, ...
    chosen: fft (one FFT of the padded image at 512x512, zero padding not written), ...
    <BLANKLINE>
    candidates (predicted time, its ratio to the best, working memory beyond the inputs and output):
      method     predicted  x best     memory  how
    * fft ...
    """
    shape1, shape2 = _as_shape(in1_shape, "in1_shape"), _as_shape(in2_shape, "in2_shape")
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"dtype must be a numpy dtype; got {dtype!r}") from exc
    zero = np.zeros((), dt)
    problem, _, _ = make_problem(
        np.broadcast_to(zero, shape1), np.broadcast_to(zero, shape2), mode, boundary,
        fillvalue, axes, channel_axis, correlate,
    )
    return plan_problem(problem, normalize_threads(threads), normalize_method(method), kernel)


def _as_shape(s, name: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(x) for x in s)
        ok = all(int(x) == x for x in s)
    except TypeError:
        raise TypeError(f"{name} must be a tuple of ints; got {s!r}") from None
    if not ok or not shape or any(x < 1 for x in shape):
        raise ValueError(f"{name} must be a non-empty tuple of positive ints; got {s!r}")
    return shape


#: Kernels with more taps than this are planned from their shape alone: their 1-D
#: passes would not beat the transforms, and hashing them per call would cost.
_VALUE_PLANNING_TAPS = 128 * 128


class _KernelKey:
    """A kernel as a cache key: equal when shape, dtype and values are.

    It holds the values as bytes, never the caller's array (which may be a view of
    a large one): `live` lends the array to the candidates during the one call that
    plans, and is cleared after it.
    """

    __slots__ = ("live", "_key")

    def __init__(self, array: np.ndarray):
        self.live = array
        self._key = (array.shape, array.dtype.str, array.tobytes())

    def __hash__(self) -> int:
        return hash(self._key)

    def __eq__(self, other) -> bool:
        return isinstance(other, _KernelKey) and self._key == other._key


def plan_problem(problem: Problem, threads: int, method: str = "auto", kernel=None) -> Plan:
    """`plan` for a validated `Problem` (what `convolve` calls)."""
    m = machine()
    if kernel is None or np.size(kernel) > _VALUE_PLANNING_TAPS or len(problem.axes) != 2:
        return _plan_cached(problem, threads, method, m, None)
    key = _KernelKey(np.asarray(kernel))
    try:
        return _plan_cached(problem, threads, method, m, key)
    finally:
        key.live = None


@functools.lru_cache(maxsize=1024)
def _plan_cached(problem: Problem, threads: int, method: str, m: Machine, key) -> Plan:
    # Plans depend only on their arguments; repeated calls of one shape skip the search.
    return _plan(problem, threads, method, None if key is None else key.live, m)


def _plan(problem: Problem, threads: int, method: str, kernel, m: Machine) -> Plan:
    cands: list[Candidate] = []
    for fn in CANDIDATES.values():
        got = fn(problem, m, threads, kernel)
        if got is None:
            continue
        cands.extend([got] if isinstance(got, Candidate) else got)
    cands.sort(key=lambda c: c.seconds)
    pool = cands if method == "auto" else [c for c in cands if c.method == method]
    if not pool and method in ("separable", "lowrank"):
        # Rank one is also low rank; a kernel that does not factor is summed directly.
        pool = [c for c in cands if c.method in ("separable", "lowrank")] or [
            c for c in cands if c.method == "direct"]
    if not pool:
        if method == "oa":
            # One block covers everything: block convolution is the whole-array FFT.
            pool = [c for c in cands if c.method == "fft" and not c.circular]
        if not pool:
            raise ValueError(f"method={method!r} cannot compute this problem")
    best = pool[0]
    return Plan(
        method=best.method,
        transform_shape=best.transform_shape,
        block_shape=best.block_shape,
        n_blocks=best.n_blocks,
        circular=best.circular,
        seconds=best.seconds,
        peak_bytes=best.peak_bytes,
        candidates=tuple(cands),
        threads=threads,
        calibrated=m.calibrated,
        problem=problem,
        factors=best.factors,
    )


# --- calibration profile -----------------------------------------------------------------------

_PROFILE_FORMAT = "fftconv-planner-profile/1"
_machine_lock = threading.Lock()
_machine: Machine | None = None
#: Rates of the compiled direct and separable kernels (methods.direct.calibrate's
#: dict); None means methods.direct.DEFAULT_CONSTS.
_direct_consts: dict | None = None


def profile_path():
    """The calibration profile in the cache directory."""
    return cache_dir() / "planner-profile.json"


def _host() -> dict:
    return {"machine": platform.machine(), "system": platform.system(),
            "cores": os.cpu_count(), "node": platform.node()}


def machine() -> Machine:
    """The cost constants: this machine's calibration if saved, else the defaults."""
    global _machine
    with _machine_lock:
        if _machine is None:
            _machine = _load_profile()
        return _machine


def _load_profile() -> Machine:
    path = profile_path()
    try:
        raw = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return Machine()
    except OSError as exc:
        warnings.warn(f"cannot read {path}: {exc}; using default cost constants", CacheWarning,
                      stacklevel=4)
        return Machine()
    try:
        doc = json.loads(raw.decode("utf-8"))
        if doc["format"] != _PROFILE_FORMAT:
            raise ValueError(f"format {doc['format']!r}")
        names = {f.name for f in fields(Machine)} - {"calibrated"}
        consts = {k: float(v) for k, v in doc["constants"].items() if k in names}
        if set(consts) != names or not all(math.isfinite(v) and v > 0 for v in consts.values()):
            raise ValueError("constants missing or not positive")
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as exc:
        warnings.warn(f"ignoring planner profile {path}: {exc}; using default cost constants",
                      CacheWarning, stacklevel=4)
        return Machine()
    if doc.get("host") != _host():
        return Machine()  # calibrated on another machine sharing this cache directory
    _set_direct_consts(doc.get("direct"))
    return Machine(**consts, calibrated=True)


def _set_direct_consts(consts) -> None:
    """Use `consts` for the compiled kernels if it has every rate, positive and finite."""
    global _direct_consts
    ref = _direct.DEFAULT_CONSTS
    try:
        ok = all(
            all(math.isfinite(float(consts[k][d])) and float(consts[k][d]) > 0 for d in v)
            if isinstance(v, dict) else math.isfinite(float(consts[k])) and float(consts[k]) > 0
            for k, v in ref.items()
        )
    except (KeyError, TypeError, ValueError):
        ok = False
    _direct_consts = consts if ok else None


def _reset_machine() -> None:
    """Forget the loaded constants so the next plan reads the profile again (tests)."""
    global _machine, _direct_consts
    with _machine_lock:
        _machine = None
        _direct_consts = None
    _plan_cached.cache_clear()


def calibrate(save: bool = True, budget_s: float = 20.0) -> Machine:
    """Measure this machine's cost constants (about 10 s) and keep them.

    Times FFTW transforms of a few sizes at one thread and at all cores,
    streaming copies, the direct-summation kernel and the per-block overhead
    of overlap-add, fits the constants of the cost model, and saves them to
    ``planner-profile.json`` in the cache directory (atomically; a read-only
    directory gives a warning and the constants are used for this process).

    Returns the fitted `Machine`.
    """
    global _machine
    _plan_cached.cache_clear()
    # Time the plans a first call gets, with no background measuring competing.
    _fftw.wait_for_upgrades()
    effort = _fftw.set_effort("estimate")
    try:
        m, vals = _calibrate(budget_s)
    finally:
        _fftw.set_effort(effort)
    direct = _direct.calibrate()
    _set_direct_consts(direct)
    if save:
        doc = {"format": _PROFILE_FORMAT, "host": _host(),
               "constants": {k: v for k, v in vals.items() if k != "calibrated"},
               "direct": direct,
               "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        try:
            atomic_write(profile_path(), json.dumps(doc, indent=1).encode())
        except OSError as exc:
            warnings.warn(f"cannot save the planner profile to {profile_path()}: {exc}; "
                          "the constants hold for this process only", CacheWarning, stacklevel=2)
    with _machine_lock:
        _machine = m
    return m


def _calibrate(budget_s: float) -> tuple[Machine, dict]:
    deadline = time.perf_counter() + budget_s
    d = Machine()
    vals = asdict(d)
    slopes = []
    for prec, dt in (("32", np.float32), ("64", np.float64)):
        small = [_fft_rate(L, dt) for L in ((128, 128), (256, 256), (200, 210))]
        vals["fft" + prec] = c = float(np.median(small))
        for L in ((1024, 1024), (2048, 2048)):
            if time.perf_counter() > deadline - 6:
                break
            nbytes = math.prod(L) * np.dtype(dt).itemsize
            slopes.append((_fft_rate(L, dt) / c - 1) / math.log2(nbytes / d.cache))
    if slopes:
        vals["fft_slope"] = float(min(2.0, max(0.0, np.median(slopes))))
    threads = normalize_threads(None)
    if threads > 1 and time.perf_counter() < deadline - 4:
        # Best of several: on a shared machine the median says more about the neighbours.
        t1 = _time_fft((1024, 1024), np.float64, 1, best=True)
        tt = _time_fft((1024, 1024), np.float64, threads, best=True)
        vals["parallel"] = float(min(1.0, max(0.05, (t1 / tt - 1) / (threads - 1))))
    a = np.ones(1 << 22)
    b = np.empty_like(a)
    vals["mem"] = _median_time(lambda: np.copyto(b, a)) / (2 * a.nbytes)
    vals.update(_time_direct())
    vals.update(_time_blocks(vals))
    vals["calibrated"] = True
    return Machine(**vals), vals


def _median_time(fn, repeat: int = 5, best: bool = False) -> float:
    fn()
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return float(min(ts) if best else np.median(ts))


def _time_fft(L, dtype, threads, best: bool = False) -> float:
    """Seconds for one forward plus one backward real transform of `L`."""
    with _fftw.transform(L, dtype, (0, 1), "forward", threads) as f, \
            _fftw.transform(L, dtype, (0, 1), "backward", threads) as b:
        f.input_array[...] = 1
        b.input_array[...] = 1
        return _median_time(lambda: (f.execute(), b.execute()), 7 if best else 5, best)


def _fft_rate(L, dtype) -> float:
    """Seconds per weighted N log2 N unit of one transform of `L`, single-threaded."""
    n = math.prod(L)
    return _time_fft(L, dtype, 1) / 2 / (n * sum(fft_flops(x) for x in L))


def _time_direct() -> dict:
    from .methods.direct import convolve_direct

    out = {}
    for name, dt in (("madd32", np.float32), ("madd64", np.float64)):
        per = []
        for n, k in ((160, 3), (200, 5)):
            problem, a, kern = make_problem(np.ones((n, n), dt), np.ones((k, k), dt), "valid",
                                            "fill", 0, None, None, False)
            res = np.empty(problem.out_shape, dt)
            t = _median_time(lambda p=problem, a=a, k=kern, r=res: convolve_direct(p, a, k, r), 3)
            per.append(t / (res.size * k * k))
        out[name] = float(np.median(per))
    problem, a, kern = make_problem(np.ones((8, 8)), np.ones((8, 8)), "valid", "fill", 0,
                                    None, None, False)
    res = np.empty(problem.out_shape)
    out["tap"] = _median_time(lambda: convolve_direct(problem, a, kern, res), 5) / 64
    return out


def _time_blocks(vals: dict) -> dict:
    from .methods.blocks import convolve_oa

    a = np.ones((1024, 1024), np.float32)
    kern = np.ones((9, 9), np.float32)
    problem, a, kern = make_problem(a, kern, "same", "fill", 0, None, None, False)
    res = np.empty(problem.out_shape, np.float32)
    lengths = (64, 64)
    _, counts = block_layout(problem, lengths)
    nblocks = math.prod(counts)
    t = _median_time(lambda: convolve_oa(problem, a, kern, res, 1, lengths), 3)
    m = Machine(**{**vals, "block": 0.0, "call": 0.0})
    model = _oa_fixed_lengths(problem, m, lengths)
    return {"block": float(max(1e-6, (t - model) / nblocks))}


def _oa_fixed_lengths(problem: Problem, m: Machine, lengths) -> float:
    steps, counts = block_layout(problem, lengths)
    return math.prod(counts) * _block_seconds(problem, m, lengths, steps)
