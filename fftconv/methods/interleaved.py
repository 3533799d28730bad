"""Channels-last images on the compiled row engine, without a channels-first copy.

An image ``(..., H, W, C)`` convolved over its axes ``H, W`` (``channel_axis=-1``,
or ``axes=`` with a ``(kh, kw, 1)`` kernel) is, row by row, a grey image of
``W * C`` interleaved samples: a tap at column offset ``c`` reads the sample
``c * C`` further on.  The compiled drivers in `_interleaved_kernels` sum every
channel of a row in one pass at that stride, so a photo runs at the speed of
a grey image with as many samples.  The boundary modes go through the grey
column map expanded per channel (padded sample ``q * C + ch`` copies image
sample ``colmap[q] * C + ch``).  One kernel for every channel keeps its taps
in registers as the grey engine does; one kernel per channel (``w[r, c * C +
ch]``) runs pixel by pixel with the channels unrolled.  Leading axes (a batch
of photos) are looped over.

`layout` says whether a problem runs here: two neighbouring convolved axes,
the axes after them holding 2 to 4 samples per pixel, a kernel that is the
same for every leading index and either shared by the channels or one per
channel, and the compiled engine present.  Otherwise the callers use the
grey engine on a batch, as before.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._problem import Problem
from . import effective_kernel
from .rows import (
    MIN_PARALLEL_MADDS,
    Geometry,
    compiled_available,
    interleaved_kernels,
    kernels,
    run_bands,
)

#: Samples per pixel the compiled interleaved drivers exist for.
CHANNELS = (2, 3, 4)
#: Pixels per period of the per-channel weight rows (``PERIOD * C`` samples: whole
#: vectors and whole pixels).
PERIOD = 64
#: One kernel per channel costs this many times one shared kernel (each tap's weight
#: read per sample; measured ~2x, docs/photos.md): the planner's factor.
PER_CHANNEL_COST = 2.0


@dataclass(frozen=True)
class Layout:
    """How a channels-last problem maps onto interleaved rows."""

    first: int  #: the first convolved axis (the rows); the columns follow it
    channels: int  #: samples per pixel: the product of the axes after the columns
    per_channel: bool  #: one kernel per channel (else one kernel for all)


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
    Layout(first=0, channels=3, per_channel=False)
    """
    axes = problem.axes
    if len(axes) != 2 or axes[1] != axes[0] + 1 or problem.is_complex:
        return None
    d0 = axes[0]
    tail = problem.in1_shape[d0 + 2 :]
    ktail = problem.in2_shape[d0 + 2 :]
    c = math.prod(tail)
    if (c not in CHANNELS and not (grey and c == 1)) or not compiled_available(problem):
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
    return Layout(d0, c, per_channel)


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
    into `out`; nothing image-sized is allocated.
    """
    dtype = problem.dtype
    c = lay.channels
    geo = Geometry(problem)
    table = _drivers(c)
    w = _weights(problem, lay, k, dtype)
    extra = ()
    if lay.per_channel:
        rows_fn = table["per_channel"]
        kh = w.shape[0]
        w3 = w.reshape(kh, -1, c)
        extra = (np.ascontiguousarray(np.tile(w3, (1, 1, PERIOD))),)
    else:
        rows_fn = table["small"].get(w.shape, table["direct"])
    sep = None
    if factors and not lay.per_channel:
        sep = _factor_arrays(problem, factors, dtype)
    run = _Rows(rows_fn, table["separable"], sep, w, extra)
    cms = sample_colmap(geo.colmap, c)
    fill = np.array([problem.fillvalue], dtype=dtype)
    cols = (cms, fill, geo.px * c, geo.jl * c, geo.jr * c)
    ho, wo = geo.out
    lead = math.prod(a.shape[: lay.first])
    taps = math.prod(geo.kshape) if sep is None else len(sep[0]) * sum(geo.kshape)
    threads = max(1, min(threads, ho * wo * c * lead * taps // MIN_PARALLEL_MADDS))
    banded = out.dtype != dtype
    if banded:
        per_image = max(1, -(-ho // BAND_ROWS))
    else:
        per_image = max(1, min(-(-(1 if threads == 1 else 4 * threads) // lead), ho // 16))
    tasks, copies = [], []
    for idx, img in _rows_of(a, lay, None if banded else dtype):
        img2 = img.reshape(img.shape[0], -1)
        o = out[idx]
        if banded or (o.flags.c_contiguous and o.dtype == dtype and o.flags.writeable):
            dst = o.reshape(o.shape[0], -1)
        else:
            tmp = np.empty(o.shape, dtype)
            copies.append((o, tmp))
            dst = tmp.reshape(tmp.shape[0], -1)
        edges = np.linspace(0, ho, per_image + 1).astype(int)
        for i0, i1 in zip(edges[:-1], edges[1:]):
            if i1 > i0:
                if banded:
                    tasks.append(run.band(img2, dst, geo.rowmap, cols, int(i0), int(i1), dtype))
                else:
                    tasks.append(run.rows(img2, dst, geo.rowmap, cols, int(i0), int(i1)))
    run_bands(tasks, threads)
    for o, tmp in copies:
        np.copyto(o, tmp, casting="unsafe")


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
            "per_channel": grey.direct_rows,
        }
    return interleaved_kernels().DRIVERS[c]


@dataclass(frozen=True)
class _Rows:
    """The driver calls of one problem, as zero-argument band tasks."""

    direct: object
    separable: object
    sep: tuple | None
    w: np.ndarray
    extra: tuple

    def _sum(self, img, dst, rowmap, cols, i0, i1):
        args = (dst, rowmap, *cols, i0, i1)
        if self.sep is None or self.separable(img, self.sep[0], self.sep[1], *args):
            self.direct(img, self.w, *args, *self.extra)

    def rows(self, img, dst, rowmap, cols, i0, i1):
        return lambda: self._sum(img, dst, rowmap, cols, i0, i1)

    def band(self, img, dst, rowmap, cols, i0, i1, dtype):
        kh = self.w.shape[0]
        il = interleaved_kernels()

        def task():
            need = rowmap[i0 : i1 + kh - 1]
            real = need >= 0
            rows, local = np.unique(need[real], return_inverse=True)
            band_map = np.full(len(need), -1, np.int64)
            band_map[real] = local
            src = np.empty((len(rows), img.shape[1]), dtype)
            il.load_rows(src, img, rows)
            buf = np.empty((i1 - i0, dst.shape[1]), dtype)
            self._sum(src, buf, band_map, cols, 0, i1 - i0)
            round_into(dst[i0:i1], buf)

        return task


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
