"""Block convolution ('oa'): many small transforms of one size instead of one huge one.

For an image much larger than the kernel, one transform of the whole padded
image costs ``N log N`` with a large ``N`` and a large buffer; cutting the
output into blocks of ``B`` samples per axis costs ``(N / B) * L log L`` with
``L = B + k - 1``, which is less when ``L`` is much smaller than the image.

Each block reads the ``B + k - 1`` padded-image samples its outputs need
(boundary padding is computed on the fly from the whole image's index map, so
no padded copy of the image is ever made), transforms them at the block
length ``L``, multiplies by the one kernel spectrum, transforms back and keeps
the ``B`` samples that circular convolution leaves exact (samples ``k - 1 ..
L - 1``). This is the overlap-save form of overlap-add: it has the same cost,
but every block writes its own disjoint part of the output, so blocks run in
parallel without locks or accumulation.

All blocks share one transform length, one kernel spectrum and one cached FFTW
plan pair per worker thread. With ``threads = T`` and ``W`` blocks in flight,
each plan gets ``max(1, T // W)`` FFTW threads, so the cores are never
oversubscribed. pyFFTW releases the GIL while it executes.
"""

from __future__ import annotations

import itertools
import math
import sys
import threading

import numpy as np

from .. import _fftw
from .._pad import source_index
from .._problem import Problem
from . import run_on_cores, store_range
from .fft import buffer_shape, lent_kernel_spectrum, product_shape, zero_tail
from .interleaved import round_into


def block_layout(problem: Problem, lengths) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Outputs per block and number of blocks on each convolved axis for block
    transform `lengths` (each at least the kernel's length)."""
    steps, counts = [], []
    for L, k, ax in zip(lengths, problem.kernel_shape, problem.axes):
        if L < k:
            raise ValueError(f"block length {L} is shorter than the kernel ({k}) on axis {ax}")
        b = L - k + 1
        o = problem.out_shape[ax]
        steps.append(b)
        counts.append(-(-o // b))
    return tuple(steps), tuple(counts)


def convolve_oa(
    problem: Problem, a, k, out, threads: int, lengths, kspec=None, workers: int | None = None
) -> None:
    """Write the convolution `problem` of `a` and `k` into `out`, block by block.

    Parameters
    ----------
    lengths : the block transform length on each convolved axis (the planner's
        ``Plan.transform_shape``); ``lengths[i] - k_i + 1`` outputs per block.
    kspec : optional, ``kernel_spectrum(problem, k, lengths, ...)`` computed
        earlier (a `Convolver` keeps it).
    workers : blocks in flight at once; default ``min(threads, blocks)``.

    Finite data only: the execute layer sends non-finite data to the whole-array
    path (`fft.convolve_fft_nonfinite`), which propagates them exactly.
    """
    lengths = tuple(int(x) for x in lengths)
    layout = block_layout(problem, lengths)  # checks `lengths` before any transform
    if kspec is None:
        with lent_kernel_spectrum(problem, k, lengths, threads) as spec:
            return _blocks(problem, a, spec, out, threads, lengths, layout, workers)
    _blocks(problem, a, kspec, out, threads, lengths, layout, workers)


def _blocks(problem: Problem, a, kspec, out, threads: int, lengths, layout, workers) -> None:
    steps, counts = layout
    nblocks = math.prod(counts)
    workers = max(1, min(threads if workers is None else workers, nblocks))
    fftw_threads = max(1, threads // workers)
    starts = list(itertools.product(*(range(0, c * s, s) for c, s in zip(counts, steps))))
    shape = buffer_shape(a.shape, problem, lengths)
    yshape = product_shape(a.shape, kspec.shape, problem, lengths)
    pending = iter(starts)
    lock = threading.Lock()
    axes, one_block = problem.axes, _one_block
    if _planes(problem, a, kspec, out):
        # (H, W, C) blocks transformed as C planes (C, H, W): see `_one_block_planes`.
        shape, yshape = shape[-1:] + shape[:-1], yshape[-1:] + yshape[:-1]
        axes, one_block = (1, 2), _one_block_planes
        kspec = np.moveaxis(kspec, -1, 0)

    def work() -> None:
        dtype = problem.dtype
        with (
            _fftw.transform(shape, dtype, axes, "forward", fftw_threads) as fwd,
            _fftw.transform(yshape, dtype, axes, "backward", fftw_threads) as inv,
        ):
            while True:
                with lock:
                    t0 = next(pending, None)
                if t0 is None:
                    return
                one_block(problem, a, kspec, out, t0, steps, fwd, inv)

    run_on_cores(work, workers)


def _one_block(problem: Problem, a, kspec, out, t0, steps, fwd, inv) -> None:
    """Outputs ``t0 .. t0 + step`` (clipped to the output) on every convolved axis."""
    pads = problem.pads()
    buf = fwd.input_array
    used, sizes, first = [], [], []
    for ax, t, s, kn, (pb, _) in zip(problem.axes, t0, steps, problem.kernel_shape, pads):
        b = min(s, out.shape[ax] - t)
        sizes.append(b)
        used.append(b + kn - 1)
        first.append(t - pb)  # image position of the block's first padded sample
    zero_tail(buf, problem, used)
    _load(buf, a, problem, first, used)
    fwd.execute()
    np.multiply(fwd.output_array, kspec, out=inv.input_array)
    inv.execute()
    y = inv.output_array
    src = [slice(None)] * y.ndim
    dst = [slice(None)] * out.ndim
    for ax, t, b, kn in zip(problem.axes, t0, sizes, problem.kernel_shape):
        src[ax] = slice(kn - 1, kn - 1 + b)
        dst[ax] = slice(t, t + b)
    if out.dtype.kind in "iu":  # a photo's own dtype: rounded and clipped, block by block
        round_into(out[tuple(dst)], y[tuple(src)])
    else:
        np.copyto(out[tuple(dst)], y[tuple(src)], casting="unsafe")


def _planes(problem: Problem, a, kspec, out) -> bool:
    """Whether the blocks of `problem` run as channel planes: one (H, W, C) photo with
    2 to 64 channels, real, an `out` whose rows are contiguous (each block's rows are
    written as ``W * C`` samples), and the compiled engine's split and merge at hand:
    the ahead-of-time module's (`fftconv precompile` exports them), or numba's once
    it is loaded (a process that needs no other compiled kernel does not pay numba's
    start-up for them, and runs the interleaved blocks).

    FFTW transforms a block of C planes faster than the same samples interleaved
    (``howmany = C``, stride 1): with FFTW_ESTIMATE and three channels, 1.2 to 1.9x
    for blocks of 200x320 to 320x768 (the copies into and out of a block reorder the
    samples in the same pass that converts them; numpy's copies there cost more than
    the transforms save)."""
    from .rows import aot_in_use, kernels

    return (
        problem.ndim == 3
        and problem.axes == (0, 1)
        and 2 <= a.shape[2] <= 64
        and kspec.shape[2] in (1, a.shape[2])
        and out.strides[2] == out.itemsize
        and out.strides[1] == out.shape[2] * out.itemsize
        and not problem.is_complex
        and kernels() is not None
        and ("numba" in sys.modules or aot_in_use())
    )


def _one_block_planes(problem: Problem, a, kspec, out, t0, steps, fwd, inv) -> None:
    """`_one_block` on C planes: the block's samples (H, W, C) split into the planes
    (C, H, W) of the transform buffer as they are converted, and the planes of the
    result merged back into `out`'s interleaved rows (rounded and clipped for an
    integer `out`) as they are stored."""
    from .rows import interleaved_kernels

    PK = interleaved_kernels()  # split_rows, merge_rows: ahead of time, else numba's
    buf = fwd.input_array
    used, sizes, first = [], [], []
    for ax, t, s, kn, (pb, _) in zip(problem.axes, t0, steps, problem.kernel_shape, problem.pads()):
        b = min(s, out.shape[ax] - t)
        sizes.append(b)
        used.append(b + kn - 1)
        first.append(t - pb)
    buf[:, used[0] :] = 0
    buf[:, : used[0], used[1] :] = 0
    n0, n1 = problem.image_shape
    rows_only = (
        problem.boundary != "fill"
        and 0 <= first[1]
        and first[1] + used[1] <= n1
        and a.strides[2] == a.itemsize
        and a.strides[1] == a.shape[2] * a.itemsize
    )
    if rows_only:
        # Columns inside the image: the rows the boundary maps to are read through their
        # index (no gathered copy of the block).
        rows = source_index(np.arange(first[0], first[0] + used[0]), n0, problem.boundary)
        img = a[:, first[1] : first[1] + used[1]].reshape(n0, -1)
        PK.split_rows(buf[:, : used[0], : used[1]], img, rows)
        src = None
    else:
        src, region, slabs = _block_source(a, problem, first, used)
    if src is None and not rows_only:
        buf[:, : used[0], : used[1]] = problem.fillvalue
    elif src is not None:
        rows = src.shape[0]
        PK.split_rows(buf[:, region[0], region[1]], src.reshape(rows, -1), np.arange(rows))
        for ax, *sls in slabs:
            for sl in sls:
                if sl.stop > sl.start:
                    idx = [slice(None), slice(0, used[0]), slice(0, used[1])]
                    idx[ax + 1] = sl
                    buf[tuple(idx)] = problem.fillvalue
    fwd.execute()
    np.multiply(fwd.output_array, kspec, out=inv.input_array)
    inv.execute()
    (k0, k1), (b0, b1) = problem.kernel_shape, sizes
    y = inv.output_array[:, k0 - 1 : k0 - 1 + b0, k1 - 1 : k1 - 1 + b1]
    dst = out[t0[0] : t0[0] + b0, t0[1] : t0[1] + b1].reshape(b0, -1)
    lo, hi, rnd = store_range(out.dtype, y.dtype)
    PK.merge_rows(dst, y, lo, hi, rnd)


def _block_source(a, problem: Problem, first, used):
    """What `_load` writes: (the block's image samples, the region of the buffer they
    fill, the fill slabs around them), or (None, ...) when the block lies wholly in
    the fill padding."""
    src = a
    region = [slice(None)] * a.ndim
    fill_slabs, gathers = [], []
    for ax, lo, u, n in zip(problem.axes, first, used, problem.image_shape):
        hi = lo + u
        region[ax] = slice(0, u)
        if 0 <= lo and hi <= n:
            src = src[(slice(None),) * ax + (slice(lo, hi),)]
        elif problem.boundary == "fill":
            ilo, ihi = max(lo, 0), min(hi, n)
            if ilo >= ihi:
                return None, region, fill_slabs
            src = src[(slice(None),) * ax + (slice(ilo, ihi),)]
            region[ax] = slice(ilo - lo, ihi - lo)
            fill_slabs.append((ax, slice(0, ilo - lo), slice(ihi - lo, u)))
        else:
            gathers.append((ax, source_index(np.arange(lo, hi), n, problem.boundary)))
    # Gathered last, once every other axis is cut to the block: a block on the top edge
    # gathers its own columns' rows, not whole image rows.
    for ax, idx in gathers:
        src = np.take(src, idx, axis=ax)
    return src, region, fill_slabs


def _load(buf, a, problem: Problem, first, used) -> None:
    """Write padded-image samples ``first .. first + used`` (image coordinates, any
    sign) on each convolved axis into the leading corner of `buf`."""
    src, region, fill_slabs = _block_source(a, problem, first, used)
    whole = [slice(None)] * buf.ndim
    for ax, u in zip(problem.axes, used):
        whole[ax] = slice(0, u)
    if src is None:  # the block lies wholly in the fill padding
        buf[tuple(whole)] = problem.fillvalue
        return
    buf[tuple(region)] = src
    for ax, *slabs in fill_slabs:
        for sl in slabs:
            if sl.stop > sl.start:
                idx = list(whole)
                idx[ax] = sl
                buf[tuple(idx)] = problem.fillvalue
