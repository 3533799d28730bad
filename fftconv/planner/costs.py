"""The cost model: predicted seconds and working memory of every method.

Each function prices one way to compute a `Problem` from its shapes (and, for
the factored passes, the kernel's values) with the rates of a
`fftconv.planner.machine.Machine`; `fftconv.planner._plan` weighs them. The
model is described in `fftconv.planner`'s docstring.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field, replace

import numpy as np

from .. import _fftw
from .._problem import Problem
from ..methods import interleaved
from ..methods.fft import circular_ok, transform_lengths
from ..methods.rows import MIN_PARALLEL_MADDS, compiled_available
from ..methods.separable import kernel_2d, kernel_factors
from .machine import Machine

_WEIGHTS = {2: 1.0, 3: 1.2, 5: 1.25, 7: 2.0, 11: 2.4, 13: 2.6}
_OTHER_WEIGHT = 4.0


@functools.lru_cache(maxsize=4096)
def fast_length(n: int, real: bool) -> int:
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
    """Predicted time of `count` transforms of `lengths` (forward or backward).

    `lengths` may hold integer arrays, one per axis (broadcast together): the time of
    every shape at once, as the overlap-add search prices its block shapes."""
    n = math.prod(lengths)
    dt = np.dtype(dtype)
    single = dt in (np.dtype(np.float32), np.dtype(np.complex64))
    work = n * sum(_flops(x) for x in lengths)
    nbytes = n * dt.itemsize
    # Transforms that outgrow the cache pay for memory traffic on every pass.
    slow = 1.0 + m.fft_slope * np.maximum(0.0, np.log2(nbytes / m.cache))
    t = count * (m.fft32 if single else m.fft64) * work * slow
    if dt.kind == "c":
        t *= 2.0
    return t / speedup(m, threads, n)


def _flops(x):
    """`fft_flops` of a length, or of every length in an integer array."""
    if np.ndim(x) == 0:
        return fft_flops(int(x))
    # The overlap-add search prices hundreds of shapes from a few lengths per axis.
    lengths, inverse = np.unique(x, return_inverse=True)
    return np.array([fft_flops(int(v)) for v in lengths])[inverse].reshape(np.shape(x))


def speedup(m: Machine, threads: int, n):
    # Small transforms gain little from FFTW threads.
    useful = np.clip(n // 16384 + 1, 1, max(1, threads))
    return 1.0 + m.parallel * (useful - 1)


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
    #: False for a way the executors do not run this problem (a whole-array transform of
    #: a photo written into an integer `out=`): priced and shown, never chosen.
    runs: bool = True
    #: 'separable' / 'lowrank': the kernel's (col, row) factor pairs, found while pricing.
    factors: tuple | None = field(default=None, compare=False, repr=False)
    #: True when `seconds` is only a lower bound (`transform_lower_bound`): a transform
    #: method not searched because summing is cheaper than its bound; never chosen.
    bound: bool = False


def complex_item(dtype) -> int:
    return _fftw.complex_dtype(dtype).itemsize


def spectrum_len(lengths, problem: Problem) -> int:
    n = math.prod(lengths)
    if problem.is_complex:
        return n
    return n // lengths[-1] * (lengths[-1] // 2 + 1)


def batches(problem: Problem) -> tuple[int, int, int]:
    """Non-convolved sizes of the image, the kernel and the result."""
    conv = set(problem.axes)
    ba = math.prod(s for d, s in enumerate(problem.in1_shape) if d not in conv)
    bk = math.prod(s for d, s in enumerate(problem.in2_shape) if d not in conv)
    by = math.prod(s for d, s in enumerate(problem.batch_shape) if d not in conv)
    return ba, bk, by


def traffic_bytes(problem: Problem) -> int:
    """Bytes a direct method must move at least: read the image, write the result, each
    in its own dtype (a uint8 photo moves one byte per sample each way)."""
    src, dst = problem.io_dtypes or (problem.dtype, problem.dtype)
    return src.itemsize * math.prod(problem.in1_shape) + dst.itemsize * math.prod(problem.out_shape)


def direct_cost(problem: Problem, m: Machine | None = None, threads: int = 1):
    """Predicted (seconds, peak extra bytes) of the compiled `convolve_direct` on `problem`.

    ``out_size * kernel_size`` multiply-adds at ``m.direct_<dtype>`` per thread,
    bounded below by the memory traffic at ``m.copy_rate`` (never faster than
    reading the image and writing the result), plus ``m.direct_call``. The numpy
    engine is `numpy_direct_cost`.

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
    m = m or Machine()
    out_size = math.prod(problem.out_shape)
    madds = out_size * math.prod(problem.kernel_shape)
    threads = max(1, min(threads, madds // MIN_PARALLEL_MADDS))
    compute = madds / (m.rate("direct", problem.dtype) * threads)
    lay = interleaved.layout(problem)
    if lay is not None and lay.per_channel:
        compute *= interleaved.PER_CHANNEL_COST
    memory = traffic_bytes(problem) / m.copy_rate
    seconds = max(compute, memory) + m.direct_call
    if integer_out(problem):
        # Summed in float bands: rows converted in, sums rounded out (the separable
        # passes of an integer photo convert in their own kernel, and so do the 3x3 and
        # 5x5 drivers of a shared kernel: `m.round_store`).
        per = m.round_store if interleaved.rounds_in_kernel(problem, lay) else m.convert
        seconds += out_size * per / threads
    # Per-thread row buffers. (An input of another dtype or layout is converted
    # once, a copy of the image this shape-only model cannot see.)
    peak = threads * 4096 * problem.dtype.itemsize
    return seconds, peak


def separable_cost(problem: Problem, rank: int, m: Machine | None = None, threads: int = 1):
    """Predicted (seconds, peak extra bytes) of `convolve_separable` with `rank` factors.

    ``rank * (kh + kw)`` multiply-adds per output at
    ``m.separable_<dtype>`` per thread and ``rank * m.separable_sample`` per
    output (each pair's column row stored and read back), bounded below by the
    memory traffic (see `direct_cost`); into an integer `out`, ``m.round_store``
    per output, or, for one pair, ``m.strips_sample`` per output in place of both
    (the strip-mined engine, `interleaved.strips_priced`); a channels-last photo's
    pairs cost ``m.interleaved_sample`` each instead of ``m.separable_sample``.
    Infinite when the method does not apply.

    Examples
    --------
    >>> import numpy as np
    >>> from fftconv._problem import make_problem
    >>> p, _, _ = make_problem(np.zeros((256, 256)), np.ones((15, 15)), "same", "fill", 0,
    ...                        None, None, False)
    >>> separable_cost(p, 1)[0] < separable_cost(p, 3)[0]
    True
    """
    m = m or Machine()
    if len(problem.axes) != 2 or rank < 1 or problem.is_complex or not compiled_available(problem):
        return math.inf, 0
    kh, kw = problem.kernel_shape
    out_size = math.prod(problem.out_shape)
    # The column pass runs over whole image rows, the row pass over output rows.
    wide = max(problem.image_shape[1], problem.out_shape[problem.axes[1]])
    madds = rank * out_size * (kh * wide / problem.out_shape[problem.axes[1]] + kw)
    threads = max(1, threads)
    lay = interleaved.layout(problem, grey=True)
    strips = interleaved.strips_priced(problem, lay, rank)
    # A photo into its own dtype runs the strip-mined engine, which converts, filters
    # and rounds in one pass (`m.strips_sample`); the other passes store each column
    # row and read it back, priced on the layout they run (channels-last rows:
    # `m.interleaved_sample`, grey rows and channel planes: `m.separable_sample`),
    # and round as they store.
    if strips:
        extra = m.strips_sample
    elif lay is not None and lay.channels > 1 and not (lay.planar or lay.per_channel):
        extra = rank * m.interleaved_sample
    else:
        extra = rank * m.separable_sample
    compute = (madds / m.rate("separable", problem.dtype) + out_size * extra) / threads
    memory = traffic_bytes(problem) / m.copy_rate
    seconds = max(compute, memory) + m.direct_call
    if integer_out(problem) and not strips:
        seconds += out_size * m.round_store / threads
    peak = threads * (wide + problem.out_shape[problem.axes[1]]) * problem.dtype.itemsize
    return seconds, peak


def direct_candidate(problem: Problem, m: Machine, threads: int, kernel) -> Candidate:
    """Direct summation: the compiled engine's cost where it runs, else numpy's."""
    if compiled_available(problem):
        seconds, peak = direct_cost(problem, m, threads)
        return Candidate("direct", seconds, int(peak), note="compiled")
    return numpy_direct_cost(problem, m)


#: Below this many outputs 1-D passes save microseconds, and summing directly keeps small
#: results bit-exact (SciPy's tests compare convolve2d's small results exactly).
SEPARABLE_MIN_OUTPUTS = 1 << 16


def separable_candidate(problem: Problem, m: Machine, threads: int, kernel) -> Candidate | None:
    """One pair of 1-D passes per factor of the kernel's SVD ('lowrank' beyond one)."""
    if kernel is None or not compiled_available(problem):
        return None
    if math.prod(problem.out_shape) < SEPARABLE_MIN_OUTPUTS:
        return None
    k2 = kernel_2d(problem, kernel)
    if k2 is None or min(k2.shape) < 2:
        return None
    factors = kernel_factors(k2, problem.dtype)
    if not factors:
        return None
    seconds, peak = separable_cost(problem, len(factors), m, threads)
    name = "separable" if len(factors) == 1 else "lowrank"
    return Candidate(
        name,
        seconds,
        int(peak),
        note=f"{len(factors)} pair(s) of 1-D passes ({k2.shape[0]} + {k2.shape[1]}"
        f" taps each), the kernel's rank {len(factors)} factors",
        factors=tuple(factors),
    )


def numpy_direct_cost(problem: Problem, m: Machine) -> Candidate:
    """numpy's tap-by-tap summation (three or more axes, or no numba)."""
    out = math.prod(problem.out_shape)
    taps = math.prod(problem.kernel_shape)
    isz = problem.dtype.itemsize
    padded = 0
    if any(pb or pa for pb, pa in problem.pads()):
        padded = (
            math.prod(problem.in1_shape)
            // math.prod(problem.image_shape)
            * math.prod(n + pb + pa for n, (pb, pa) in zip(problem.image_shape, problem.pads()))
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


def fft_like(problem: Problem, m: Machine, threads: int, lengths, circular: bool) -> Candidate:
    """One whole-array transform at `lengths` (circular: at the image's own size)."""
    ba, bk, by = batches(problem)
    isz = problem.dtype.itemsize
    n = math.prod(lengths)
    nc = spectrum_len(lengths, problem)
    csz = complex_item(problem.dtype)
    out = math.prod(problem.out_shape)
    t = fft_seconds(lengths, ba + by + bk, problem.dtype, m, threads)
    passes = (
        2 * n * ba * isz  # pad / load the image into the buffer
        + 3 * nc * by * csz  # spectrum product
        + 2 * out * isz
    )  # crop into the result
    t += m.mem * passes / speedup(m, min(threads, 2), n) + m.call
    peak = (n * ba * isz + nc * ba * csz) + (n * by * isz + nc * by * csz) + nc * bk * csz
    note = (
        "circular at image size"
        if circular
        else (
            "zero padding not written"
            if problem.boundary == "fill" and problem.fillvalue == 0
            else ""
        )
    )
    return Candidate("fft", t, peak, tuple(lengths), circular=circular, note=note)


def fft_candidates(problem: Problem, m: Machine, threads: int, kernel) -> list[Candidate]:
    out = [fft_like(problem, m, threads, transform_lengths(problem), False)]
    if circular_ok(problem):
        out.append(fft_like(problem, m, threads, problem.image_shape, True))
    if integer_out(problem):
        # The result of one transform is an image-sized float array, which an integer
        # out= never gets (fftconv._photo): its FFT plans run as overlap-add blocks.
        out = [replace(c, runs=False) for c in out]
    return out


def transform_lower_bound(problem: Problem, m: Machine, threads: int) -> float:
    """Seconds that neither 'fft' nor 'oa' can beat on `problem`: their forward and
    inverse transforms alone, priced as if every transform length were its kernel's
    (each is at least that: ``fft_flops(L) >= log2(L)``) and the transforms covered the
    output once, on every thread at full efficiency.  The planner skips their search
    when summing is cheaper (a 3x3 kernel on a large image), which spares a fresh
    process's first call the block-length search.

    >>> from fftconv._problem import make_problem
    >>> p, _, _ = make_problem(np.zeros((4096, 4096), np.float32), np.ones((3, 3)), "same",
    ...                        "fill", 0, None, None, False)
    >>> lower = transform_lower_bound(p, Machine(), 2)
    >>> bool(lower <= fft_candidates(p, Machine(), 2, None)[0].seconds)
    True
    >>> bool(lower <= oa_candidate(p, Machine(), 2, None).seconds)
    True
    """
    ba, _, by = batches(problem)
    single = problem.dtype in (np.dtype(np.float32), np.dtype(np.complex64))
    work = math.prod(problem.out_shape[ax] for ax in problem.axes) * sum(
        max(1.0, math.log2(max(k, 2))) for k in problem.kernel_shape
    )
    t = (ba + by) * (m.fft32 if single else m.fft64) * work
    if problem.is_complex:
        t *= 2.0
    return t / (1.0 + m.parallel * (max(1, threads) - 1))


def integer_out(problem: Problem) -> bool:
    """Whether `problem` writes a photo's integer dtype (`Problem.io_dtypes`)."""
    return problem.io_dtypes is not None and problem.io_dtypes[1].kind in "biu"


def _block_lengths(k: int, o: int, real: bool, limit: int) -> list[int]:
    """FFTW-fast block lengths for an axis: from about 2k up to one block for all."""
    top = fast_length(o + k - 1, real)
    out, x = set(), max(2 * k, 16)
    while x < top:
        out.add(fast_length(x, real))
        x = int(x * 1.25) + 1
    out.add(top)
    vals = sorted(out)
    if len(vals) > limit:
        step = (len(vals) - 1) / (limit - 1)
        vals = sorted({vals[round(i * step)] for i in range(limit)})
    return vals


def oa_candidate(problem: Problem, m: Machine, threads: int, kernel) -> Candidate | None:
    ba, bk, by = batches(problem)
    isz = problem.dtype.itemsize
    csz = complex_item(problem.dtype)
    real = not problem.is_complex
    per_axis = max(4, round(400 ** (1 / len(problem.axes))))
    options = [
        _block_lengths(k, problem.out_shape[ax], real, per_axis)
        for k, ax in zip(problem.kernel_shape, problem.axes)
    ]
    outs = [problem.out_shape[ax] for ax in problem.axes]
    ks = problem.kernel_shape
    # Every combination of one length per axis, priced at once (arrays, axis 0 outermost).
    grid = [g.ravel() for g in np.meshgrid(*map(np.asarray, options), indexing="ij")]
    steps = [L - k + 1 for L, k in zip(grid, ks)]
    nblocks = math.prod(-(-o // s) for o, s in zip(outs, steps))
    keep = nblocks >= 2
    if not keep.any():
        return None
    grid, steps, nblocks = [g[keep] for g in grid], [s[keep] for s in steps], nblocks[keep]
    workers = np.minimum(threads, nblocks)
    one = block_seconds(problem, m, grid, steps) + m.block
    t = nblocks * one / (1.0 + m.parallel * (workers - 1))
    t = t + fft_seconds(grid, bk, problem.dtype, m, threads) + m.call + 1e-4 * (workers > 1)
    i = int(np.argmin(t))  # the first of equal times, in the order of `options`
    lengths = tuple(int(g[i]) for g in grid)
    steps = tuple(int(s[i]) for s in steps)
    n, nc, w = math.prod(lengths), spectrum_len(lengths, problem), int(workers[i])
    peak = w * (n * (ba + by) * isz + nc * (ba + by) * csz) + nc * bk * csz
    t, nblocks = float(t[i]), int(nblocks[i])
    return Candidate("oa", t, peak, lengths, block_shape=steps, n_blocks=nblocks)


def block_seconds(problem: Problem, m: Machine, lengths, steps) -> float:
    """One overlap-add block on one thread: its two transforms and its streaming passes
    (load the block, the spectrum product, write its outputs). `calibrate` fits
    ``m.block`` against this same model."""
    ba, _, by = batches(problem)
    isz, csz = problem.dtype.itemsize, complex_item(problem.dtype)
    n, nc = math.prod(lengths), spectrum_len(lengths, problem)
    return fft_seconds(lengths, ba + by, problem.dtype, m, 1) + m.mem * (
        2 * n * ba * isz + 3 * nc * by * csz + 2 * math.prod(steps) * by * isz
    )
