"""Channels-last images on the compiled row engine, without a channels-first copy.

An image ``(..., H, W, C)`` convolved over its axes ``H, W`` (``channel_axis=-1``,
or ``axes=`` with a ``(kh, kw, 1)`` kernel) is, row by row, a grey image of
``W * C`` interleaved samples: a tap at column offset ``c`` reads the sample
``c * C`` further on.  The compiled drivers in `_interleaved_kernels` sum every
channel of a row in one pass at that stride, so a photo runs at the speed of
a grey image with as many samples.  The boundary modes go through the grey
column map expanded per channel (padded sample ``q * C + ch`` copies image
sample ``colmap[q] * C + ch``).  One kernel for every channel keeps its taps
in registers as the grey engine does.  Leading axes (a batch of photos) are
looped over.

One kernel per channel, and more than 4 channels (up to `MAX_PLANAR`), run
as bands of rows split into channel planes (`_planar_kernels`), each plane
summed by the grey engine with its own kernel and the planes merged back:
band-sized buffers only, the grey engine's speed plus a split and a merge.
Rank-one separable kernels on photos in their own dtype (an integer image or
`out=`) run on the strip-mined engine of `_u8_kernels.sep_rows`, which
converts each sample once in the kernel and rounds as it stores.

`layout` says whether a problem runs here: two neighbouring convolved axes,
the axes after them holding 2 to `MAX_PLANAR` samples per pixel, a kernel
that is the same for every leading index and either shared by the channels
or one per channel, and the compiled engine present.  Otherwise the callers
use the grey engine on a batch.
"""

from __future__ import annotations

import itertools
import math
import threading
from dataclasses import dataclass

import numpy as np

from .._cpu import aligned, ring_bytes, strip_columns
from .._problem import Problem
from . import _u8_native, effective_kernel, finite, store_range
from ._aot import SMALL
from .rows import (
    MIN_PARALLEL_MADDS,
    Geometry,
    band_edges,
    compiled_available,
    interleaved_kernels,
    kernels,
    run_bands,
)

#: Samples per pixel the compiled interleaved drivers exist for (one kernel for all
#: channels); other counts, and one kernel per channel, run as channel planes of bands.
CHANNELS = (2, 3, 4)
#: Most samples per pixel run here (beyond, a batch of grey images).
MAX_PLANAR = 64
#: One kernel per channel costs this many times one shared kernel (bands split into
#: channel planes and merged back; measured 1.1 to 2.5x, most for 3x3,
#: docs/photos.md): the planner's factor.
PER_CHANNEL_COST = 1.5


@dataclass(frozen=True)
class Layout:
    """How a channels-last problem maps onto interleaved rows."""

    first: int  #: the first convolved axis (the rows); the columns follow it
    channels: int  #: samples per pixel: the product of the axes after the columns
    per_channel: bool  #: one kernel per channel (else one kernel for all)
    planar: bool = False  #: bands split into channel planes for the grey engine


def layout(problem: Problem, k=None, grey: bool = False) -> Layout | None:
    """The `Layout` `problem` runs in here, or None.

    With `k` (the kernel as the Problem has it), one kernel per channel whose
    channels are all equal counts as one shared kernel.  `grey` accepts one
    sample per pixel too (the grey engine's drivers then run the bands: the
    path of integer outputs).

    Examples
    --------
    >>> import numpy as np
    >>> from fftconv._problem import make_problem
    >>> p, a, k = make_problem(np.zeros((8, 8, 3)), np.ones((3, 3)), "same", "fill", 0,
    ...                        None, -1, False)
    >>> layout(p)
    Layout(first=0, channels=3, per_channel=False, planar=False)
    """
    axes = problem.axes
    if len(axes) != 2 or axes[1] != axes[0] + 1 or problem.is_complex:
        return None
    d0 = axes[0]
    tail = problem.in1_shape[d0 + 2 :]
    ktail = problem.in2_shape[d0 + 2 :]
    c = math.prod(tail)
    if (c == 1 and not grey) or c > MAX_PLANAR or not compiled_available(problem):
        return None
    if any(s != 1 for s in problem.in2_shape[:d0]):
        return None  # a kernel per leading index: the batch path
    if all(s == 1 for s in ktail):
        per_channel = False
    elif tuple(ktail) == tuple(tail):
        per_channel = True
        if k is not None and _all_equal(k, d0 + 2):
            per_channel = False
    else:
        return None
    return Layout(d0, c, per_channel, c > 1 and (per_channel or c not in CHANNELS))


def _all_equal(k, first_tail: int) -> bool:
    flat = np.asarray(k).reshape(k.shape[:first_tail] + (-1,))
    return bool((flat == flat[..., :1]).all())


def shared_kernel(lay: Layout, k) -> np.ndarray:
    """The ``(kh, kw)`` kernel of the first channel, as passed (not flipped)."""
    d0 = lay.first
    return np.asarray(k).reshape(k.shape[d0 : d0 + 2] + (-1,))[:, :, 0]


def sample_colmap(colmap: np.ndarray, c: int) -> np.ndarray:
    """The grey column map expanded to samples: padded sample ``q * c + ch`` copies
    image sample ``colmap[q] * c + ch`` (-1, the fill value, stays -1)."""
    cm = colmap[:, None]
    return np.where(cm >= 0, cm * c + np.arange(c), -1).reshape(-1).astype(np.int64)


def _weights(problem: Problem, lay: Layout, k, dtype) -> np.ndarray:
    """The drivers' weights in correlation form: ``(kh, kw)`` shared, or
    ``(kh, kw * C)`` with ``w[r, col * C + ch]`` per channel."""
    kk = effective_kernel(problem, k)
    kh, kw = problem.kernel_shape
    d0 = lay.first
    kk = kk.reshape(kk.shape[d0 : d0 + 2] + (-1,))  # (kh, kw, 1 or C)
    w = kk[::-1, ::-1]
    if not lay.per_channel:
        return np.ascontiguousarray(w[:, :, 0], dtype=dtype)
    return np.ascontiguousarray(w.reshape(kh, kw * lay.channels), dtype=dtype)


def _rows_of(x, lay: Layout, dtype=None):
    """(leading index, the (rows, samples) view of one image) for every leading index."""
    d0 = lay.first
    lead = x.shape[:d0]
    for idx in np.ndindex(*lead):
        one = x[idx]
        if dtype is not None:
            one = np.ascontiguousarray(one, dtype=dtype)
        yield idx, one


def convolve(problem: Problem, lay: Layout, a, k, out, threads: int = 1, factors=None) -> None:
    """Write the convolution `problem` of `a` and `k` into `out` on interleaved rows.

    `factors` (``(col, row)`` pairs of the shared 2-D kernel as passed, from
    `kernel_factors`) selects the separable passes; bands whose factored sum
    is not finite are summed directly, as in the grey engine.  An integer
    `out` (a photo's dtype) is written band by band: each band of at most
    `BAND_ROWS` output rows reads its image rows converted to the problem's
    dtype, is summed into a band buffer, rounded half to even and clipped
    into `out`; nothing image-sized is allocated.  3x3, 5x5 and 7x7 kernels into an
    integer `out` skip the float bands (`_rounded_run`): their drivers read
    the photo as it is and round each sum as they store it.  Rank-one separable passes
    with an integer image or `out` run in `_strips`; one kernel per channel,
    and more channels than `CHANNELS`, in `_planar`.
    """
    dtype = problem.dtype
    c = lay.channels
    geo = Geometry(problem)
    sep = None
    if factors and not lay.per_channel:
        sep = _factor_arrays(problem, factors, dtype)
    if sep is not None and _strips_run(problem, lay, a, sep, out):
        _strips(problem, geo, a, lay, sep, out, threads)
        return
    if lay.planar or lay.per_channel:
        _planar(problem, geo, lay, a, k, out, threads, sep)
        return
    table = _drivers(c)
    w = _weights(problem, lay, k, dtype)
    rows_fn = table["small"].get(w.shape, table["direct"])
    run = _Rows(rows_fn, table["separable"], sep, w)
    cms = sample_colmap(geo.colmap, c)
    fill = np.array([problem.fillvalue], dtype=dtype)
    cols = (cms, fill, geo.px * c, geo.jl * c, geo.jr * c)
    ho, wo = geo.out
    lead = math.prod(a.shape[: lay.first])
    taps = math.prod(geo.kshape) if sep is None else len(sep[0]) * sum(geo.kshape)
    threads = max(1, min(threads, ho * wo * c * lead * taps // MIN_PARALLEL_MADDS))
    banded = out.dtype != dtype
    rounded = None
    if sep is None and _rounded_run(problem, a, out):
        rounded = table.get("rounded", {}).get(w.shape)
    if rounded is not None:
        lo, hi, _ = store_range(out.dtype, dtype)
        banded = False
    if banded:
        per_image = max(1, -(-ho // BAND_ROWS))
    else:
        per_image = max(1, min(-(-(1 if threads == 1 else 4 * threads) // lead), ho // 16))
    tasks, copies = [], []
    mine = threading.local()  # each thread's band buffers (see `_reused`)
    for idx, img in _rows_of(a, lay, None if banded or rounded is not None else dtype):
        img2 = img.reshape(img.shape[0], -1)
        o = out[idx]
        if (
            banded
            or rounded is not None
            or (o.flags.c_contiguous and o.dtype == dtype and o.flags.writeable)
        ):
            dst = o.reshape(o.shape[0], -1)
        else:
            tmp = np.empty(o.shape, dtype)
            copies.append((o, tmp))
            dst = tmp.reshape(tmp.shape[0], -1)
        for i0, i1 in band_edges(ho, per_image):
            if i1 > i0:
                if rounded is not None:
                    band = (int(i0), int(i1), lo, hi, mine)
                    tasks.append(run.rounded(rounded, img2, dst, geo.rowmap, cols, *band))
                elif banded:
                    band = (int(i0), int(i1), dtype, mine)
                    tasks.append(run.band(img2, dst, geo.rowmap, cols, *band))
                else:
                    tasks.append(run.rows(img2, dst, geo.rowmap, cols, int(i0), int(i1)))
    run_bands(tasks, threads)
    for o, tmp in copies:
        np.copyto(o, tmp, casting="unsafe")


#: Kernel shapes with unrolled drivers (among them the rounding ones).
UNROLLED = tuple((n, n) for n in SMALL)

#: Image dtypes the rounding drivers read as they are (each sample converted to float32
#: in the kernel, exactly).
ROUNDED_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.int16), np.dtype(np.float32))


def rounds_in_kernel(problem: Problem, lay: Layout | None) -> bool:
    """Whether `convolve` runs `problem` of `layout` `lay`, a photo into an integer
    `out` (``problem.io_dtypes``), on the drivers that round as they store (when the
    arrays are C-contiguous, `_rounded_run`): for the planner's price."""
    src = problem.io_dtypes[0] if problem.io_dtypes else problem.dtype
    return (
        lay is not None
        and not (lay.planar or lay.per_channel)
        and lay.channels in CHANNELS
        and tuple(problem.kernel_shape) in UNROLLED
        and problem.dtype == np.float32
        and src in ROUNDED_DTYPES
    )


def strips_priced(problem: Problem, lay: Layout | None, rank: int) -> bool:
    """Whether `convolve` runs the separable passes of `problem` of `layout` `lay` (with
    ``grey=True``) with `rank` factors in `_strips` (see `_strips_run`) when its photo is
    written into an integer `out` (``problem.io_dtypes``) and the arrays are
    C-contiguous: for the planner's price."""
    return (
        rank == 1
        and problem.dtype == np.float32
        and problem.io_dtypes is not None
        and problem.io_dtypes[1].kind in "biu"
        and lay is not None
        and not lay.per_channel
    )


def _rounded_run(problem: Problem, a, out) -> bool:
    """True when the drivers that read the photo as it is and store rounded
    (``DRIVERS[c]["rounded"]``, 3x3, 5x5 and 7x7) may run: float32 sums of an image of
    `ROUNDED_DTYPES` into an integer `out`, both C-contiguous."""
    return (
        problem.dtype == np.float32
        and out.dtype.kind in "iu"
        and a.dtype in ROUNDED_DTYPES
        and a.flags.c_contiguous
        and out.flags.c_contiguous
        and out.flags.writeable
    )


def _factor_arrays(problem: Problem, factors, dtype):
    """Column and row taps of the factor pairs in correlation form, ``(rank, kh)`` and
    ``(rank, kw)``: the convolution kernel's factors (reversed and conjugated for a
    correlation, as `effective_kernel` does) reversed once more."""
    cols, rows = [], []
    for col, row in factors:
        if problem.correlate:
            cols.append(np.conj(col))
            rows.append(np.conj(row))
        else:
            cols.append(col[::-1])
            rows.append(row[::-1])
    return (np.ascontiguousarray(cols, dtype=dtype), np.ascontiguousarray(rows, dtype=dtype))


def _planar(problem: Problem, geo: Geometry, lay: Layout, a, k, out, threads: int, sep):
    """Bands of output rows summed plane by plane by the grey engine: each band's image
    rows are split into C channel planes (converted to the problem's dtype), each plane
    summed with its channel's kernel (or the shared one, or the separable passes `sep`),
    and the planes merged back into `out`'s interleaved rows, rounded and clipped for
    an integer `out`.  A band's planes are about `PLANAR_BYTES`: nothing image-sized."""
    PK = interleaved_kernels()  # split_rows, merge_rows
    dtype = problem.dtype
    c = lay.channels
    grey = kernels()
    w = _weights(problem, lay, k, dtype)
    kh, kw = problem.kernel_shape
    if lay.per_channel:
        ws = [np.ascontiguousarray(w.reshape(kh, kw, c)[:, :, ch]) for ch in range(c)]
    else:
        ws = [w] * c
    direct = grey.small.ROWS.get((kh, kw), grey.direct_rows)
    fill = np.array([problem.fillvalue], dtype=dtype)
    cols = (geo.colmap, fill, geo.px, geo.jl, geo.jr)
    ho, wo = geo.out
    w_in = geo.shape[1]
    lo, hi, rnd = store_range(out.dtype, dtype)
    lead = math.prod(a.shape[: lay.first])
    taps = kh * kw if sep is None else len(sep[0]) * (kh + kw)
    threads = max(1, min(threads, ho * wo * c * lead * taps // MIN_PARALLEL_MADDS))
    rows = PLANAR_BYTES // (c * w_in * dtype.itemsize) - kh + 1
    rows = max(16, 2 * kh, rows // 4 * 4)
    if threads > 1:
        rows = min(rows, max(16, -(-ho * lead // (4 * threads))))
    edges = list(range(0, ho, rows)) + [ho]
    rowmap = geo.rowmap
    mine = threading.local()  # each thread's band buffers (see `_reused`)

    def task(img, dst, i0, i1):
        def run():
            used, band_map = _band_rows(rowmap, i0, i1, kh)
            planes = _reused(mine, "planes", (c, len(used), w_in), dtype)
            res = _reused(mine, "res", (c, i1 - i0, wo), dtype)
            PK.split_rows(planes, img, used)
            for ch in range(c):
                args = (res[ch], band_map, *cols, 0, i1 - i0)
                if sep is None or grey.separable_rows(planes[ch], sep[0], sep[1], *args):
                    direct(planes[ch], ws[ch], *args)
            PK.merge_rows(dst[i0:i1], res, lo, hi, rnd)

        return run

    tasks, copies = [], []
    for idx, one in _rows_of(a, lay):
        img = one.reshape(one.shape[0], -1)
        o = out[idx]
        if o.flags.c_contiguous and o.flags.writeable:
            dst = o.reshape(ho, -1)
        else:
            tmp = np.empty(o.shape, o.dtype)
            copies.append((o, tmp))
            dst = tmp.reshape(ho, -1)
        tasks += [task(img, dst, i0, i1) for i0, i1 in itertools.pairwise(edges)]
    run_bands(tasks, threads)
    for o, tmp in copies:
        np.copyto(o, tmp)


#: Bytes of the channel planes of one band of `_planar` (about the L2 cache of a core).
PLANAR_BYTES = 1 << 20


def _strips_run(problem: Problem, lay: Layout, a, sep, out) -> bool:
    """True when `_strips` runs the separable passes: one factor pair, float32 sums,
    both arrays C-contiguous, and a photo in its own dtype (an integer image or
    `out`) or more channels than the interleaved drivers have, finite (the engine
    does not fall back to direct sums where the factored sum is not finite)."""
    return (
        len(sep[0]) == 1
        and problem.dtype == np.float32
        and a.flags.c_contiguous
        and out.flags.c_contiguous
        and out.flags.writeable
        and (
            a.dtype.kind in "biu"
            or out.dtype.kind in "biu"
            or (lay.planar and a.dtype.kind == "f" and finite(a))
        )
    )


def _strips(problem: Problem, geo: Geometry, a, lay: Layout, sep, out, threads: int) -> None:
    """Rank-one separable passes read and written in the photo's own dtypes by the
    strip-mined engine of `_u8_kernels.sep_rows`: each padded row is converted to
    float32 and filtered along the columns once into a ring of ``kh + 1`` rows that
    stays in cache, each output row is a vertical sum of ring rows, rounded half to
    even and clipped as it is stored. The engine's shared library runs it where one is
    built for the dtypes (`_u8_native`; `fftconv precompile` builds them), else numba."""
    K = _u8_native.load(a.dtype, out.dtype)  # sep_rows: the shared library, when built
    if K is None or not K.accepts(a, out):
        K = interleaved_kernels()
    c = lay.channels
    u = np.ascontiguousarray(sep[0][0], np.float32)
    v = np.ascontiguousarray(sep[1][0], np.float32)
    kh, kw = len(u), len(v)
    ho, wo = geo.out
    lo, hi, rnd = store_range(out.dtype, np.float32)
    threads = max(1, min(threads, ho * wo * c * (kh + kw) // MIN_PARALLEL_MADDS))
    # Strips of whole rows' columns whose ring fits STRIP_BYTES (a strip narrower than
    # the row reads every image row in pieces: slower); tasks are bands of output rows,
    # each its own problem of ``rows + kh - 1`` padded rows (its first kh - 1 rows are
    # filtered along the columns by the band above too), 4 per thread at least.
    s = strip_columns(wo, kh, c, STRIP_BYTES)
    strips = -(-wo // s)
    rows = ho if threads == 1 else max(4 * kh, 16, -(-ho // (4 * threads)))
    edges = list(range(0, ho, rows)) + [ho]
    fill = np.float32(problem.fillvalue)
    nocopy = np.zeros(0, np.int64)  # no channel copied unfiltered

    def task(src, dst, o0, o1):
        def run():
            rings = _reused(_STRIP_BUFFERS, "rings", (strips, kh + 1, s * c), np.float32)
            tmp = _reused(_STRIP_BUFFERS, "tmp", ((s + kw - 1) * c,), np.float32)
            acc = _reused(_STRIP_BUFFERS, "acc", (2 * s * c,), np.float32)
            n = o1 - o0 + kh - 1
            taps = (geo.rowmap[o0 : o0 + n], geo.colmap, u, v, fill, nocopy, 0, 0, n)
            band = (dst[o0:o1], 0, 0, n, 0, wo, c, lo, hi, rnd)
            K.sep_rows(src, *taps, *band, rings, tmp, acc)

        return run

    tasks = []
    for idx, img in _rows_of(a, lay):
        src = img.reshape(img.shape[0], -1)
        dst = out[idx].reshape(ho, -1)
        tasks += [task(src, dst, o0, o1) for o0, o1 in itertools.pairwise(edges)]
    run_bands(tasks, threads)


#: Bytes of the ring of filtered rows kept per strip of columns by `_strips` (half the
#: L2 cache of one core, as the streaming path's: `fftconv._cpu.ring_bytes`).
STRIP_BYTES = ring_bytes()

#: Each thread's rings and scratch rows of `_strips`, kept from call to call (about
#: `STRIP_BYTES` a thread): fresh ones cost their page faults on every call.
_STRIP_BUFFERS = threading.local()

#: Output rows per band when the result is rounded into an integer `out`.
BAND_ROWS = 32


def _drivers(c: int) -> dict:
    """The compiled drivers for `c` samples per pixel (the grey engine's for 1)."""
    grey = kernels()
    if c == 1:
        return {
            "direct": grey.direct_rows,
            "small": grey.small.ROWS,
            "separable": grey.separable_rows,
        }
    return interleaved_kernels().DRIVERS[c]


@dataclass(frozen=True)
class _Rows:
    """The driver calls of one problem, as zero-argument band tasks."""

    direct: object
    separable: object
    sep: tuple | None
    w: np.ndarray

    def _sum(self, img, dst, rowmap, cols, i0, i1):
        args = (dst, rowmap, *cols, i0, i1)
        if self.sep is None or self.separable(img, self.sep[0], self.sep[1], *args):
            self.direct(img, self.w, *args)

    def rows(self, img, dst, rowmap, cols, i0, i1):
        return lambda: self._sum(img, dst, rowmap, cols, i0, i1)

    def band(self, img, dst, rowmap, cols, i0, i1, dtype, mine):
        kh = self.w.shape[0]
        il = interleaved_kernels()

        def task():
            rows, band_map = _band_rows(rowmap, i0, i1, kh)
            src = _reused(mine, "src", (len(rows), img.shape[1]), dtype)
            il.load_rows(src, img, rows)
            buf = _reused(mine, "buf", (i1 - i0, dst.shape[1]), dtype)
            self._sum(src, buf, band_map, cols, 0, i1 - i0)
            round_into(dst[i0:i1], buf)

        return task

    def rounded(self, rows_r, img, dst, rowmap, cols, i0, i1, lo, hi, mine):
        """Rows ``i0 .. i1`` of a photo in its own dtype summed by the rounding driver
        `rows_r` straight into the integer `dst` (float32 scratch of a few rows)."""
        kh = self.w.shape[0]

        def task():
            buf = _reused(mine, "rbuf", (2, dst.shape[1]), np.float32)
            scr = _reused(mine, "rscr", (kh, img.shape[1]), np.float32)
            rows_r(img, self.w, dst, rowmap, *cols, i0, i1, lo, hi, buf, scr)

        return task


def _band_rows(rowmap, i0: int, i1: int, kh: int):
    """The image rows that output rows ``i0 .. i1`` read (each once, in order), and the
    band's row map: padded row ``i0 + r`` reads band row ``band_map[r]`` (-1: fill)."""
    need = rowmap[i0 : i1 + kh - 1]
    real = need >= 0
    rows, local = np.unique(need[real], return_inverse=True)
    band_map = np.full(len(need), -1, np.int64)
    band_map[real] = local
    return rows, band_map


def _reused(mine: threading.local, name: str, shape: tuple, dtype) -> np.ndarray:
    """An array of `shape` on this thread's buffer `name` of `mine`, grown when too small:
    a band's buffers are allocated once per thread, not per band (fresh band-sized
    arrays pay their page faults on every band: measured 3x slower), on 64-byte
    boundaries (`fftconv._cpu.aligned`)."""
    size = math.prod(shape)
    buf = getattr(mine, name, None)
    if buf is None or buf.size < size or buf.dtype != dtype:
        buf = aligned(size, dtype)
        setattr(mine, name, buf)
    return buf[:size].reshape(shape)


def round_into(dst: np.ndarray, res: np.ndarray) -> None:
    """``dst[...] = res`` for an integer `dst` (uint8, uint16, int16 ...): clipped to the
    dtype's range, rounded half to even, NaN written as the dtype's minimum (0 for
    unsigned dtypes).  Compiled in one pass when numba is present; `res` may be
    overwritten.  The one rule for photos (`fftconv.io.cast_to` uses it too).

    Examples
    --------
    >>> dst = np.empty(6, np.uint8)
    >>> round_into(dst, np.array([-3.0, 0.5, 1.5, 254.6, 300.0, np.nan]))
    >>> dst
    array([  0,   0,   2, 255, 255,   0], dtype=uint8)
    """
    info = np.iinfo(dst.dtype)
    res = np.asarray(res)
    if res.dtype.kind != "f":
        res = res.astype(np.float64)
    lo, hi = res.dtype.type(info.min), res.dtype.type(info.max)
    if kernels() is not None and res.shape == dst.shape and res.size and dst.flags.writeable:
        il = interleaved_kernels()
        # Rows of samples as 2-D views (a block of a channels-last photo merges its
        # columns and channels); an array that needs a copy for that takes numpy's path.
        shape = (dst.shape[0], -1) if dst.ndim > 1 else (1, -1)
        try:
            d2 = dst.reshape(shape, copy=False)
            r2 = res.reshape(shape, copy=False)
        except ValueError:
            pass
        else:
            il.store_rounded(d2, r2, lo, hi)
            return
    r = np.clip(res, lo, hi)
    np.rint(r, out=r)
    r[np.isnan(r)] = lo
    np.copyto(dst, r, casting="unsafe")
