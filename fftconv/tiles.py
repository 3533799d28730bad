"""Out-of-core tiled execution under a memory budget.

The output is cut into tiles; each tile is computed from a block of the source
that holds the tile and its halo (the ``k - 1`` extra samples the kernel reaches
on each convolved axis), as a 'valid' convolution by the same executors an
in-memory call uses. Blocks are built from the source through `_pad`'s index
maps, so the boundary is applied exactly where the image really ends and tiles
agree with the in-memory result for every mode and boundary. Only blocks,
transform buffers and tile outputs are ever in memory; the source and the
destination may be memory maps, zarr arrays or anything else that is sliced
like an array.

All tiles have the same shape (the last tile on each axis is moved back so that
it ends at the edge and writes only what its neighbour did not), so each worker
reuses one pair of cached FFTW plans and one kernel spectrum serves them all.
"""

from __future__ import annotations

import itertools
import math
import mmap
import threading
import time
from collections import OrderedDict
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace

import numpy as np

from . import _fftw
from ._execute import execute, overlaps, prepare_kernel
from ._pad import source_index
from ._problem import (
    Problem,
    compute_dtype,
    kernel_as_problem,
    make_problem_from_shapes,
    normalize_method,
    normalize_threads,
)
from ._units import DEFAULT_MAX_MEMORY, parse_memory
from ._units import fmt_bytes as _fmt_bytes
from .io import cast_to
from .methods import interleaved
from .methods.fft import transform_lengths
from .planner import Plan, plan_problem

__all__ = [
    "MIN_TILE",
    "TilePlan",
    "compute_dtype",
    "convolve_tiled",
    "parse_memory",
    "plan_for",
    "plan_tiles",
    "tile_shape",
]

#: Memory kept aside from the budget for what the tiles do not account for: the
#: FFTW plans' own tables, thread stacks, the kernel and bookkeeping.
_OVERHEAD = 16 * 2**20


def _round_up(n: int) -> int:
    """`n` rounded up to what `_fmt_bytes` prints (3 significant figures), so that the
    budget a message names is enough."""
    step = 10 ** max(0, len(str(int(n))) - 3)
    return -(-int(n) // step) * step


def _bytes_per_sample(itemsize: int, src_itemsize: int, out_itemsize: int) -> int:
    """Bytes one worker holds per sample of its padded block (per channel).

    The block is read from the source (`src_itemsize`, a copy for zarr and TIFF
    stores), made into the padded block in the compute dtype and, at the
    image's edges, gathered through the index maps once or twice more (3 x
    `itemsize` at worst). The FFT path then holds four transform buffers of the
    transform shape L >= the block (forward in and out, backward in and out:
    a half spectrum of complex samples is as large as the real signal), 4 x
    `itemsize` per sample of L. The tile's result (`itemsize`) and its cast to
    the output dtype (`out_itemsize`) are at most the block's size. Direct
    summation needs less (the block, the result and one product term), so
    this bounds both methods.
    """
    return src_itemsize + 3 * itemsize + 4 * itemsize + itemsize + out_itemsize


#: Tiles are at least this many outputs a side (or the whole axis): smaller ones
#: spend their time on halos and per-tile work (a budget just above the overhead
#: gave 1x1 tiles, 88,200 of them, 2000 times slower than one call in memory), so a
#: budget that admits only smaller tiles is refused, naming the one that works.
MIN_TILE = 32

#: The block side (tile plus halo) tiles aim for when the budget allows more:
#: blocks of about 512-768 samples a side keep the transforms in cache. Measured
#: here (2 threads, 31x31 kernel, 8192x8192): blocks of 512 ran 71 Mpixel/s,
#: 1024 43, 2048 22 and 4096 11; with 129x129 kernels 512-768 still won
#: despite the halo.
PREFERRED_BLOCK = 768


def tile_shape(
    image_shape,
    kernel_shape,
    itemsize,
    max_memory,
    workers,
    *,
    channels=1,
    src_itemsize=None,
    out_itemsize=None,
    prefer: int | None = PREFERRED_BLOCK,
) -> tuple[int, ...]:
    """The tile (in output samples per convolved axis) for `workers` tiles in flight
    at once within `max_memory` bytes: blocks of about `prefer` samples a side
    (or ``4 (k - 1)`` for large kernels), smaller when the budget needs it.

    Parameters
    ----------
    image_shape : tuple of int
        The output's extent on each convolved axis (the tiles cover it).
    kernel_shape : tuple of int
        The kernel's extent on each convolved axis: a tile of ``t`` outputs
        needs a block of ``t + k - 1`` source samples.
    itemsize : int
        Bytes per sample of the compute dtype (4 for float32).
    max_memory : int
        The budget in bytes for all workers together.
    workers : int
        Tiles computed at the same time.
    channels : int
        Samples per pixel carried whole through each tile (the non-convolved axes).
    src_itemsize, out_itemsize : int, optional
        Bytes per sample of the source and of the output (default `itemsize`).
    prefer : int or None
        The preferred block side; None takes the largest tile that fits.

    Returns
    -------
    tuple of int
        The tile's extent per convolved axis, never more than the image's.
        Where the tile is smaller than the image, ``t + k - 1`` is a length
        FFTW transforms fast.

    Raises
    ------
    ValueError
        When tiles of `MIN_TILE` outputs a side do not fit (the message names
        the smallest budget that works).

    Notes
    -----
    With ``B`` the bytes per padded sample that `_bytes_per_sample` derives
    (about ``src + 8 c + out`` for compute itemsize ``c``), a square tile
    ``t`` takes ``B * channels * prod(fast(t + k - 1))`` bytes per worker, and
    the kernel spectrum, shared by the workers, ``c * channels * prod(fast(t + k
    - 1))`` more. The tile side is the largest ``t`` with
    ``(workers * B + c) * channels * prod(fast(t + k - 1)) + overhead <=
    max_memory``, found by bisection (the cost grows with ``t``), then rounded
    down so that ``t + k - 1`` is 2-3-5-7-smooth, and finally evened out: the
    smallest such ``t`` that covers the axis in as many tiles (so the last
    tile, moved back to end at the edge, recomputes little of its neighbour). The block overhead is the
    halo: a tile wastes ``prod(t + k - 1) / prod(t) - 1`` of its transform on
    it, so bigger budgets are faster.

    Examples
    --------
    >>> tile_shape((65536, 65536), (31, 31), 4, 2 * 10**9, 2)
    (738, 738)
    >>> tile_shape((65536, 65536), (31, 31), 4, 2 * 10**9, 2, prefer=None)
    (4770, 4770)
    >>> tile_shape((500, 400), (31, 31), 4, 2 * 10**9, 2)
    (500, 400)
    """
    image_shape = tuple(int(n) for n in image_shape)
    kernel_shape = tuple(int(k) for k in kernel_shape)
    src_itemsize = itemsize if src_itemsize is None else src_itemsize
    out_itemsize = itemsize if out_itemsize is None else out_itemsize
    per = _bytes_per_sample(itemsize, src_itemsize, out_itemsize)
    budget = int(max_memory) - _OVERHEAD

    def cost(t: int) -> int:
        samples = math.prod(
            _fftw.fast_length(min(t, n) + k - 1) for n, k in zip(image_shape, kernel_shape)
        )
        return (workers * per + itemsize) * channels * samples

    if cost(MIN_TILE) > budget:
        side = "x".join(str(min(MIN_TILE, n)) for n in image_shape)
        raise ValueError(
            f"max_memory={_fmt_bytes(max_memory)} is too small for a kernel of shape "
            f"{kernel_shape} with {workers} worker(s): tiles of {side} outputs, the smallest "
            f"worth running, need max_memory={_fmt_bytes(_round_up(cost(MIN_TILE) + _OVERHEAD))} "
            f"({_fmt_bytes(_OVERHEAD)} of it fixed overhead); raise max_memory or use fewer "
            "threads"
        )
    lo, hi = 1, max(image_shape)
    if prefer is not None:
        hi = min(hi, max(1, max(max(prefer, 4 * (k - 1)) - k + 1 for k in kernel_shape)))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if cost(mid) <= budget:
            lo = mid
        else:
            hi = mid - 1
    out = []
    for n, k in zip(image_shape, kernel_shape):
        t = min(lo, n)
        if t < n:
            p = t + k - 1
            while p > k and _fftw.fast_length(p) != p:
                p -= 1
            t = max(1, p - k + 1)
            # As many tiles, evened out: the smallest fast tile that still covers
            # the axis in that many (the last tile recomputes less of its neighbour).
            count = -(-n // t)
            even = _fftw.fast_length(-(-n // count) + k - 1) - k + 1
            t = min(t, max(1, even))
        out.append(t)
    return tuple(out)


@dataclass(frozen=True)
class TilePlan:
    """How a tiled run cuts its output and runs the tiles.

    Attributes
    ----------
    out_shape : the whole output's shape.
    axes : the convolved (tiled) axes.
    tile : the tile's extent on each axis of `axes`.
    grid : tiles per axis of `axes`.
    workers : tiles computed at once; `fft_threads` FFTW threads each.
    method : the planner's method for every tile (direct, separable, lowrank, fft or oa).
    memory : the predicted peak of the working memory, bytes.
    budget : the budget it was planned for, bytes.
    """

    out_shape: tuple[int, ...]
    axes: tuple[int, ...]
    tile: tuple[int, ...]
    kernel: tuple[int, ...]
    grid: tuple[int, ...]
    workers: int
    fft_threads: int
    method: str
    dtype: np.dtype
    memory: int
    budget: int
    #: the planner's Plan for one tile, channels first, as `run_tiled` executes it
    tile_plan: Plan | None = field(default=None, compare=False, repr=False)

    @property
    def tiles(self) -> int:
        return math.prod(self.grid)

    def __str__(self) -> str:
        block = tuple(t + k - 1 for t, k in zip(self.tile, self.kernel))
        halo = math.prod(block) / math.prod(self.tile) - 1
        lines = [
            f"tiled plan: output {'x'.join(map(str, self.out_shape))}, computed in {self.dtype}",
            (
                f"  tiles      {self.tiles} = {' x '.join(map(str, self.grid))} of "
                f"{'x'.join(map(str, self.tile))} outputs (blocks of {'x'.join(map(str, block))}, "
                f"halo overhead {100 * halo:.1f}%)"
            ),
            f"  method     {self.method} per tile",
            f"  workers    {self.workers} tile(s) at once x {self.fft_threads} FFTW thread(s)",
            (
                f"  memory     {_fmt_bytes(self.memory)} predicted working memory, budget "
                f"{_fmt_bytes(self.budget)}"
            ),
        ]
        return "\n".join(lines)

    def _repr_pretty_(self, printer, cycle) -> None:
        printer.text(str(self))

    def _repr_html_(self) -> str:
        from ._html import table

        lines = str(self).split("\n")
        rows = [ln.strip().split(None, 1) for ln in lines[1:]]
        return table(lines[0], ["", ""], rows)


def _tile_problem(problem: Problem, tile) -> Problem:
    shape = list(problem.in1_shape)
    for a, t, k in zip(problem.axes, tile, problem.kernel_shape):
        shape[a] = t + k - 1
    # A tile's result is a float tile (rounded into an integer out= by this module).
    return replace(
        problem, in1_shape=tuple(shape), mode="valid", boundary="fill", fillvalue=0, io_dtypes=None
    )


def _channels_first(problem: Problem, tile, k=None):
    """One tile's 'valid' problem with the non-convolved axes first (and `k` so
    transposed), and that permutation: interleaved channels as the innermost axis make
    FFTW's batched transforms strided and direct summation's rows three samples long."""
    conv = problem.axes
    perm = tuple(d for d in range(problem.ndim) if d not in conv) + conv
    tp = _tile_problem(problem, tile)
    if interleaved.layout(tp) is not None:
        # 2 to 4 channels last: the executors run interleaved rows (and FFTW's strided
        # batches are as fast as planes), so the tile keeps its layout.
        perm = tuple(range(problem.ndim))
    if perm != tuple(range(problem.ndim)):
        tp = replace(
            tp,
            in1_shape=tuple(tp.in1_shape[d] for d in perm),
            in2_shape=tuple(tp.in2_shape[d] for d in perm),
            axes=tuple(range(problem.ndim - len(conv), problem.ndim)),
        )
        if k is not None:
            k = np.ascontiguousarray(np.asarray(k).transpose(perm))
    return tp, k, perm


def plan_tiles(
    problem: Problem,
    *,
    max_memory,
    threads: int,
    method: str = "auto",
    src_itemsize: int | None = None,
    out_itemsize: int | None = None,
    tile=None,
    kernel=None,
) -> TilePlan:
    """The TilePlan for `problem` (its dtype is the compute dtype) under `max_memory` bytes;
    `tile` forces the tile shape (per convolved axis) instead of deriving it."""
    out_shape = problem.out_shape
    axes = problem.axes
    extents = tuple(out_shape[a] for a in axes)
    channels = math.prod(problem.batch_shape)
    c = problem.dtype.itemsize
    workers = max(1, threads)
    if tile is None:
        tile = tile_shape(
            extents,
            problem.kernel_shape,
            c,
            max_memory,
            workers,
            channels=channels,
            src_itemsize=src_itemsize,
            out_itemsize=out_itemsize,
        )
    else:
        tile = _check_tile(tile, extents)
    grid = tuple(-(-n // t) for n, t in zip(extents, tile))
    workers = max(1, min(workers, math.prod(grid)))
    fft_threads = max(1, threads // workers)
    tp, kp, _ = _channels_first(problem, tile, kernel)
    tile_plan = plan_problem(tp, fft_threads, method, kernel=kp)
    per = _bytes_per_sample(c, src_itemsize or c, out_itemsize or c)
    samples = math.prod(_fftw.fast_length(t + k - 1) for t, k in zip(tile, problem.kernel_shape))
    memory = (workers * per + c) * channels * samples + _OVERHEAD
    return TilePlan(
        out_shape=out_shape,
        axes=axes,
        tile=tile,
        kernel=problem.kernel_shape,
        grid=grid,
        workers=workers,
        fft_threads=fft_threads,
        method=tile_plan.method,
        dtype=problem.dtype,
        memory=memory,
        budget=int(max_memory),
        tile_plan=tile_plan,
    )


def _check_tile(tile, extents) -> tuple[int, ...]:
    if isinstance(tile, (int, np.integer)):
        tile = (tile,) * len(extents)
    tile = tuple(tile)
    if len(tile) != len(extents) or not all(
        isinstance(t, (int, np.integer)) and not isinstance(t, bool) and t >= 1 for t in tile
    ):
        raise ValueError(
            f"tile must be a positive int or one per convolved axis ({len(extents)}); got {tile!r}"
        )
    return tuple(min(int(t), n) for t, n in zip(tile, extents))


def _spans(n_out: int, t: int):
    """(compute start, write start, write stop) of each tile along one axis."""
    out = []
    for i in range(-(-n_out // t)):
        ws, we = i * t, min((i + 1) * t, n_out)
        out.append((min(ws, n_out - t), ws, we))
    return out


def _runs(idx: np.ndarray):
    """Sorted unique values of `idx` as contiguous (start, stop) runs, and the map
    from `idx` into their concatenation (None when `idx` is itself one run)."""
    if idx.size and idx[-1] - idx[0] == idx.size - 1 and np.all(np.diff(idx) == 1):
        return [(int(idx[0]), int(idx[-1]) + 1)], None
    u, inv = np.unique(idx, return_inverse=True)
    cuts = np.flatnonzero(np.diff(u) != 1) + 1
    runs = [(int(r[0]), int(r[-1]) + 1) for r in np.split(u, cuts)]
    return runs, inv


def _read_block(src, problem: Problem, starts, tile, release=None) -> np.ndarray:
    """The padded source block for the tile whose outputs start at `starts`: source
    positions ``start - pb`` to ``start - pb + t + k - 1`` on each convolved axis,
    the boundary applied where they fall outside the image."""
    dtype = problem.dtype
    shape = list(src.shape)
    pos = {}
    for a, s, t, k, (pb, _) in zip(
        problem.axes, starts, tile, problem.kernel_shape, problem.pads()
    ):
        pos[a] = (s - pb, s - pb + t + k - 1)
        shape[a] = t + k - 1
    if problem.boundary == "fill":
        block = np.empty(shape, dtype)
        dst, srcsl, outside = [], [], False
        for d, n in enumerate(src.shape):
            if d not in pos:
                dst.append(slice(None))
                srcsl.append(slice(None))
                continue
            p0, p1 = pos[d]
            lo, hi = max(p0, 0), min(p1, n)
            outside |= p0 < 0 or p1 > n
            if lo >= hi:
                block[...] = problem.fillvalue
                return block
            dst.append(slice(lo - p0, hi - p0))
            srcsl.append(slice(lo, hi))
        if outside:
            block[...] = problem.fillvalue
        block[tuple(dst)] = src[tuple(srcsl)]
        if release is not None:
            release(tuple(srcsl))
        return block
    runs, maps = [], []
    for d, n in enumerate(src.shape):
        if d not in pos:
            runs.append([(0, n)])
            maps.append(None)
            continue
        idx = source_index(np.arange(*pos[d]), n, problem.boundary)
        r, inv = _runs(idx)
        runs.append(r)
        maps.append(inv)
    cshape = [sum(b - a for a, b in r) for r in runs]
    compact = np.empty(cshape, dtype)
    offsets = [np.cumsum([0] + [b - a for a, b in r]) for r in runs]
    for combo in itertools.product(*(range(len(r)) for r in runs)):
        dst = tuple(slice(offsets[d][i], offsets[d][i + 1]) for d, i in enumerate(combo))
        srcsl = tuple(slice(*runs[d][i]) for d, i in enumerate(combo))
        compact[dst] = src[srcsl]
        if release is not None:
            release(srcsl)
    block, compact = compact, None
    for d, inv in enumerate(maps):
        if inv is not None:
            block = np.take(block, inv, axis=d)
    return block


class _Releaser:
    """Drops pages of an np.memmap that a tile is done with.

    Pages of a file mapping that a process touched count in its resident memory
    until the kernel needs them back, so streaming a 4 GB memmap through would
    show a 4 GB resident set. MADV_DONTNEED unmaps them (for a shared mapping
    dirty pages stay in the page cache and are written back: nothing is lost,
    and a later read faults them in again). Each tile releases the region it
    read and the region it wrote, so at most the tiles in flight hold pages.
    """

    def __init__(self, arr):
        self.ok = (
            isinstance(arr, np.memmap)
            and getattr(arr, "_mmap", None) is not None
            and hasattr(mmap, "MADV_DONTNEED")
            and arr.ndim >= 1
            and all(st > 0 for st in arr.strides)
        )
        if not self.ok:
            return
        self.arr = arr
        self.mm = arr._mmap
        view = np.frombuffer(self.mm, np.uint8)
        self.offset = arr.__array_interface__["data"][0] - view.ctypes.data
        del view
        self.rows = arr.ndim >= 2 and arr.flags.c_contiguous

    def region(self, index) -> None:
        """Release the pages under ``arr[index]`` (a tuple of slices)."""
        if not self.ok:
            return
        arr = self.arr
        bounds = [sl.indices(n)[:2] for sl, n in zip(index, arr.shape)]
        bounds += [(0, n) for n in arr.shape[len(bounds) :]]
        if any(b <= a for a, b in bounds):
            return
        first = self.offset + sum(a * st for (a, _), st in zip(bounds, arr.strides))
        last = self.offset + sum((b - 1) * st for (_, b), st in zip(bounds, arr.strides))
        last += arr.itemsize
        page = mmap.PAGESIZE
        (r0, r1), (c0, c1) = (bounds + [(0, 1)])[:2]
        width = (c1 - c0) * arr.strides[1] if arr.ndim >= 2 else 0
        if self.rows and width >= 4 * page and r1 - r0 > 1:
            # One range per row: the bounding range would also drop the pages of
            # the neighbouring tiles, which are being read or written now.
            s0 = arr.strides[0]
            ranges = [(first + r * s0, first + r * s0 + width) for r in range(r1 - r0)]
        else:
            ranges = [(first, last)]
        try:
            for lo, hi in ranges:
                lo -= lo % page
                hi = min(hi, len(self.mm))
                if hi > lo:
                    self.mm.madvise(mmap.MADV_DONTNEED, lo, hi - lo)
        except (OSError, ValueError):
            self.ok = False


def _progress_bar(progress, total: int):
    if progress is None or progress is False:
        return None
    if callable(progress):
        return progress
    try:
        from tqdm import auto, std
    except ImportError:
        return None
    # delay=1: the bar only appears when the run lasts longer than a second. tqdm.auto
    # draws a widget in a notebook, which stays when done; a terminal's line goes away.
    return auto.tqdm(
        total=total, unit="tile", delay=1.0, leave=auto.tqdm is not std.tqdm, desc="fftconv"
    )


def run_tiled(
    problem: Problem,
    src,
    k: np.ndarray,
    dst,
    *,
    max_memory,
    threads: int,
    method: str = "auto",
    progress=None,
    magnitude: bool = False,
    tile=None,
    profile=None,
) -> TilePlan:
    """Compute `problem` from `src` into `dst` tile by tile; returns the plan used.

    `problem` describes the whole call with its compute dtype; `k` is the kernel
    as the Problem has it (with `src`'s number of dimensions), in that dtype.
    A `dst` that overlaps `src` (an ndarray written in place) gets the result
    through a temporary of its size: tiles would otherwise read what others wrote.
    `profile`, an object with ``read``, ``compute`` and ``write`` attributes (such
    as `fftconv._stream.StreamProfile`), gets the seconds the tiles spent in each,
    summed over the workers.
    """
    if isinstance(dst, np.ndarray) and overlaps(dst, src, k):
        tmp = np.empty(dst.shape, dst.dtype)
        plan = run_tiled(
            problem,
            src,
            k,
            tmp,
            max_memory=max_memory,
            threads=threads,
            method=method,
            progress=progress,
            magnitude=magnitude,
            tile=tile,
            profile=profile,
        )
        dst[...] = tmp
        return plan
    if problem.swapped:
        raise ValueError(
            f"mode='valid' with a kernel larger than the image (in1 {problem.in2_shape}, "
            f"in2 {problem.in1_shape}) cannot run in tiles"
        )
    out_dtype = np.dtype(dst.dtype)
    if problem.dtype.kind == "c" and out_dtype.kind != "c" and not magnitude:
        raise ValueError(
            f"the result is complex ({problem.dtype}) but the output has dtype {out_dtype}; "
            "write a complex output, or pass magnitude=True to write its modulus"
        )
    sizes = dict(src_itemsize=np.dtype(src.dtype).itemsize, out_itemsize=out_dtype.itemsize)
    plan = plan_tiles(
        problem, max_memory=max_memory, threads=threads, method=method, tile=tile, kernel=k, **sizes
    )
    chunks = getattr(dst, "chunks", None)
    if tile is None and not _aligned(dst, problem.axes, plan.tile) and chunks:
        # Shrink the tile to whole chunks of the output where it holds one.
        fit = tuple(
            t // chunks[a] * chunks[a] if t >= chunks[a] else t
            for a, t in zip(problem.axes, plan.tile)
        )
        plan = plan_tiles(
            problem,
            max_memory=max_memory,
            threads=threads,
            method=method,
            tile=fit,
            kernel=k,
            **sizes,
        )
    src, cache_bytes = _with_chunk_cache(src, max_memory - plan.memory)
    plan = replace(plan, memory=plan.memory + cache_bytes)
    tp, k, perm = _channels_first(problem, plan.tile, k)
    identity = perm == tuple(range(problem.ndim))
    inverse = tuple(int(i) for i in np.argsort(perm))
    # Every tile runs the plan made for one tile: one method, one kernel spectrum (or
    # one set of factors), the same answer as the whole-array call within tolerance.
    tile_plan = plan.tile_plan
    prepared = prepare_kernel(tp, tile_plan, k, plan.fft_threads)
    tile_out = list(problem.out_shape)
    for a, t in zip(problem.axes, plan.tile):
        tile_out[a] = t
    tile_out = [tile_out[d] for d in perm]
    spans = [_spans(problem.out_shape[a], t) for a, t in zip(problem.axes, plan.tile)]
    # zarr and other stores write whole chunks: tiles that share a chunk would
    # read, modify and write it at once, so writes are serialised unless every
    # tile covers whole chunks.
    lock = None if _aligned(dst, problem.axes, plan.tile) else threading.Lock()

    rel_src, rel_dst = _Releaser(src), _Releaser(dst)

    clock = threading.Lock()

    def work(combo):
        t0 = time.perf_counter()
        starts = [s[0] for s in combo]
        block = _read_block(src, problem, starts, plan.tile, rel_src.region)
        if not identity:
            block = np.ascontiguousarray(block.transpose(perm))
        t1 = time.perf_counter()
        res = np.empty(tile_out, problem.dtype)
        execute(tp, tile_plan, block, k, res, plan.fft_threads, prepared)
        del block
        t2 = time.perf_counter()
        if not identity:
            res = res.transpose(inverse)
        crop = [slice(None)] * res.ndim
        region = [slice(None)] * res.ndim
        for a, (cs, ws, we) in zip(problem.axes, combo):
            crop[a] = slice(ws - cs, we - cs)
            region[a] = slice(ws, we)
        val = cast_to(res[tuple(crop)], out_dtype, magnitude)
        if lock is None:
            dst[tuple(region)] = val
        else:
            with lock:
                dst[tuple(region)] = val
        rel_dst.region(tuple(region))
        if profile is not None:
            t3 = time.perf_counter()
            with clock:
                profile.read += t1 - t0
                profile.compute += t2 - t1
                profile.write += t3 - t2

    tiles = list(itertools.product(*spans))
    bar = _progress_bar(progress, len(tiles))
    # At most two tiles per worker are queued, so that a failure or an interrupt
    # stops the run after the tiles in flight; on an interrupt the pool is not
    # waited for (the caller removes its temporary output at once).
    pool = ThreadPoolExecutor(max_workers=plan.workers)
    queue = iter(tiles)
    pending = {}
    done_count = 0
    try:
        for t in itertools.islice(queue, 2 * plan.workers):
            pending[pool.submit(work, t)] = t
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for f in finished:
                pending.pop(f)
                f.result()
                done_count += 1
                nxt = next(queue, None)
                if nxt is not None:
                    pending[pool.submit(work, nxt)] = nxt
                if hasattr(bar, "update"):
                    bar.update(1)
                elif bar is not None:
                    bar(done_count, len(tiles))
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    else:
        pool.shutdown(wait=True)
    finally:
        if hasattr(bar, "close"):
            bar.close()
    return plan


class _ChunkCache:
    """Slices of a chunked store (zarr, a tiled TIFF) served from decoded chunks kept
    in a shared LRU, so that each chunk is decoded about once although several
    blocks and their halos overlap it."""

    def __init__(self, store, max_bytes: int):
        self.store = store
        self.shape = tuple(store.shape)
        self.dtype = np.dtype(store.dtype)
        self.chunks = tuple(store.chunks)
        self.max_bytes = max_bytes
        self.lru: OrderedDict = OrderedDict()
        self.bytes = 0
        self.lock = threading.Lock()

    def _chunk(self, key) -> np.ndarray:
        with self.lock:
            arr = self.lru.get(key)
            if arr is not None:
                self.lru.move_to_end(key)
                return arr
        sl = tuple(
            slice(i * c, min((i + 1) * c, n)) for i, c, n in zip(key, self.chunks, self.shape)
        )
        arr = np.asarray(self.store[sl])
        with self.lock:
            if key not in self.lru:
                self.lru[key] = arr
                self.bytes += arr.nbytes
                while self.bytes > self.max_bytes and len(self.lru) > 1:
                    _, old = self.lru.popitem(last=False)
                    self.bytes -= old.nbytes
        return arr

    def __getitem__(self, index) -> np.ndarray:
        bounds = [sl.indices(n)[:2] for sl, n in zip(index, self.shape)]
        bounds += [(0, n) for n in self.shape[len(bounds) :]]
        out = np.empty([b - a for a, b in bounds], self.dtype)
        ranges = [range(a // c, (b - 1) // c + 1) for (a, b), c in zip(bounds, self.chunks)]
        for key in itertools.product(*ranges):
            chunk = self._chunk(key)
            src, dst = [], []
            for (a, b), i, c in zip(bounds, key, self.chunks):
                lo, hi = max(a, i * c), min(b, (i + 1) * c)
                src.append(slice(lo - i * c, hi - i * c))
                dst.append(slice(lo - a, hi - a))
            out[tuple(dst)] = chunk[tuple(src)]
        return out


def _with_chunk_cache(src, room: int):
    """`src` behind a `_ChunkCache` of up to three rows of its chunks, when it is a
    chunked store and `room` bytes of the budget are left for it; and its size."""
    chunks = getattr(src, "chunks", None)
    if isinstance(src, np.ndarray) or not chunks or len(chunks) != len(src.shape):
        return src, 0
    per_chunk = math.prod(chunks) * np.dtype(src.dtype).itemsize
    row = per_chunk * math.prod(-(-n // c) for n, c in zip(src.shape[1:], chunks[1:]))
    size = min(3 * row, room)
    if size < row:
        return src, 0
    return _ChunkCache(src, size), size


def _aligned(dst, axes, tile) -> bool:
    """True when `dst` can take tiles' writes concurrently: an ndarray, or a chunked
    store whose chunks divide the tile on every tiled axis."""
    if isinstance(dst, np.ndarray):
        return True
    chunks = getattr(dst, "chunks", None)
    if not chunks or len(chunks) != len(dst.shape):
        return False
    return all(t % chunks[a] == 0 or t >= dst.shape[a] for a, t in zip(axes, tile))


def convolve_tiled(
    src,
    kernel,
    dst=None,
    *,
    mode: str = "same",
    boundary: str = "symmetric",
    fillvalue=0,
    channel_axis: int | None = None,
    method: str = "auto",
    max_memory=DEFAULT_MAX_MEMORY,
    threads: int | None = None,
    correlate: bool = False,
    dtype=None,
    magnitude: bool = False,
    progress=None,
    tile=None,
):
    """Convolve (or correlate) an image of any size, tile by tile, within `max_memory`.

    Parameters
    ----------
    src : array-like
        The image: an ndarray, np.memmap, zarr array or anything with
        ``shape``, ``dtype`` and NumPy slicing. Only blocks are read; it is never
        modified.
    kernel : array_like
        The kernel, with `src`'s number of dimensions, or one fewer with
        `channel_axis` (one kernel for every channel).
    dst : array-like, optional
        Where to write the result (an np.memmap or zarr array for results
        larger than memory); its dtype decides the output's. Integer outputs
        are rounded and clipped to their range. Default: a new ndarray of
        dtype `dtype`.
    mode : {'same', 'full', 'valid'}
    boundary : {'symmetric', 'fill', 'wrap', 'mirror', 'nearest'}
        Applied at the image's edges only, as in `fftconv.convolve`.
    fillvalue : scalar
    channel_axis : int, optional
        The channel axis of `src` (e.g. -1 for RGB images); channels are carried
        whole through each tile.
    method : {'auto', 'direct', 'fft', 'oa', 'separable', 'lowrank'}
        The method of every tile; 'auto' chooses by the tile's cost.
    max_memory : int or str
        Budget in bytes (or e.g. ``'2GB'``) for the working memory of the call:
        blocks, transform buffers, tile results, plus a fixed 16 MiB (16.8 MB)
        for FFTW's plans, thread stacks and bookkeeping. `src` and `dst` are not
        counted (they are not in memory when they are memory maps or stores). A
        budget that admits only tiles smaller than 32x32 outputs is refused with
        a ValueError that names the smallest budget that works.
    threads : int, optional
        Total threads; tiles run in parallel on ``workers`` threads with
        ``threads // workers`` FFTW threads each.
    correlate : bool
        Cross-correlate instead (as `fftconv.correlate`).
    dtype : dtype, optional
        The output dtype when `dst` is None; default `src`'s dtype for integer
        images (photos stay photos), else the compute dtype.
    magnitude : bool
        For complex results into a real output: write the modulus.
    progress : bool or callable, optional
        True shows a tqdm progress bar on runs longer than a second; a callable
        is called as ``progress(done, total)`` after each tile.
    tile : int or tuple of int, optional
        Force the tile's extent (in output samples per convolved axis) instead
        of the largest that fits `max_memory`; e.g. to match a zarr output's
        chunks.

    Returns
    -------
    The output array (`dst` when given).

    Notes
    -----
    Tiles are computed in float32 for uint8, uint16 and float32 images and in
    float64 for float64 images or outputs (see `compute_dtype`), and match
    the in-memory call within float32's, resp. float64's, tolerance.

    Examples
    --------
    >>> import numpy as np
    >>> import fftconv
    >>> from fftconv.tiles import convolve_tiled
    >>> img = np.random.default_rng(0).random((300, 200))
    >>> k = np.ones((9, 9)) / 81
    >>> out = convolve_tiled(img, k, max_memory="24MB", threads=2)
    >>> ref = fftconv.convolve(img, k, mode="same", boundary="symmetric")
    >>> bool(np.allclose(out, ref, rtol=0, atol=1e-12))
    True
    """
    shape = getattr(src, "shape", None)
    sdtype = getattr(src, "dtype", None)
    if shape is None or sdtype is None:
        src = np.asarray(src)
        shape, sdtype = src.shape, src.dtype
    sdtype = np.dtype(sdtype)
    problem, k, threads, method, budget = _tiled_problem(
        shape,
        sdtype,
        kernel,
        dst.dtype if dst is not None else dtype,
        mode,
        boundary,
        fillvalue,
        channel_axis,
        method,
        max_memory,
        threads,
        correlate,
    )
    if dst is None:
        if dtype is None:
            dtype = sdtype if sdtype.kind in "iu" and problem.dtype.kind != "c" else problem.dtype
        dst = np.empty(problem.out_shape, dtype)
    else:
        if tuple(dst.shape) != problem.out_shape:
            raise ValueError(
                f"dst has shape {tuple(dst.shape)}; this call writes shape {problem.out_shape}"
            )
        if isinstance(dst, np.ndarray) and not dst.flags.writeable:
            raise ValueError("dst is read-only")
    run_tiled(
        problem,
        src,
        k,
        dst,
        max_memory=budget,
        threads=threads,
        method=method,
        progress=progress,
        magnitude=magnitude,
        tile=tile,
    )
    return dst


def _tiled_problem(
    shape,
    sdtype,
    kernel,
    out_dtype,
    mode,
    boundary,
    fillvalue,
    channel_axis,
    method,
    max_memory,
    threads,
    correlate,
):
    """`convolve_tiled`'s arguments, checked: the Problem (in the compute dtype), the
    kernel as the Problem has it, the threads, the method and the budget in bytes."""
    if isinstance(correlate, np.bool_):
        correlate = bool(correlate)
    kern = np.asarray(kernel)
    if kern.dtype.kind not in "biufc":
        raise TypeError(f"kernel has dtype {kern.dtype}; it must be numeric")
    cdtype = compute_dtype(sdtype, kern.dtype, out_dtype)
    problem = make_problem_from_shapes(
        shape,
        kern.shape,
        cdtype,
        mode=mode,
        boundary=boundary,
        fillvalue=fillvalue,
        channel_axis=channel_axis,
        correlate=correlate,
    )
    if problem.swapped:
        raise ValueError(
            f"mode='valid' needs an image at least as large as the kernel on every axis; "
            f"got image {tuple(shape)} and kernel {kern.shape}"
        )
    k = np.ascontiguousarray(kernel_as_problem(kern.astype(cdtype), problem, channel_axis))
    return (
        problem,
        k,
        normalize_threads(threads),
        normalize_method(method),
        parse_memory(max_memory),
    )


def plan_for(
    shape,
    dtype,
    kernel,
    *,
    mode: str = "same",
    boundary: str = "symmetric",
    fillvalue=0,
    channel_axis: int | None = None,
    method: str = "auto",
    max_memory=DEFAULT_MAX_MEMORY,
    threads: int | None = None,
    correlate: bool = False,
    out_dtype=None,
) -> TilePlan:
    """The `TilePlan` that `convolve_tiled` follows for an image of `shape` and `dtype`.

    The arguments are `convolve_tiled`'s (`out_dtype` is the output's dtype: the
    source's for integer images by default); nothing is read or computed. For an
    ndarray output this is exactly the plan the call runs; a chunked output (zarr)
    may get tiles shrunk to whole chunks.

    Examples
    --------
    >>> import numpy as np
    >>> from fftconv import tiles
    >>> p = tiles.plan_for((4000, 6000), np.uint8, np.ones((31, 31)) / 961,
    ...                    max_memory="64MB", threads=2)
    >>> p.tiles > 1 and p.memory <= p.budget
    True
    """
    sdtype = np.dtype(dtype)
    problem, k, threads, method, budget = _tiled_problem(
        tuple(shape),
        sdtype,
        kernel,
        out_dtype,
        mode,
        boundary,
        fillvalue,
        channel_axis,
        method,
        max_memory,
        threads,
        correlate,
    )
    if out_dtype is None:
        out_dtype = sdtype if sdtype.kind in "iu" and problem.dtype.kind != "c" else problem.dtype
    return plan_tiles(
        problem,
        max_memory=budget,
        threads=threads,
        method=method,
        src_itemsize=sdtype.itemsize,
        out_itemsize=np.dtype(out_dtype).itemsize,
        kernel=k,
    )


def whole_array_bytes(problem: Problem) -> int:
    """Working memory of an in-memory FFT call (besides input and output): the four
    transform buffers of the padded shape, the kernel spectrum and the padded image."""
    samples = math.prod(transform_lengths(problem)) * math.prod(problem.batch_shape)
    return 6 * samples * problem.dtype.itemsize


def maybe_tiled(problem: Problem, a, k, out, method: str, threads: int, max_memory):
    """For `fftconv.convolve(..., max_memory=)`: the tiled result when the in-memory
    plan would not fit `max_memory`, else None (run in memory)."""
    budget = parse_memory(max_memory)
    # 'valid' with the kernel larger than the image (SciPy swaps them) has no
    # tiling here; its output is the small one, so it runs in memory.
    if problem.swapped or whole_array_bytes(problem) + _OVERHEAD <= budget:
        return None
    result = out if out is not None else np.empty(problem.out_shape, problem.dtype)
    run_tiled(
        problem,
        a,
        np.ascontiguousarray(k.astype(problem.dtype, copy=False)),
        result,
        max_memory=budget,
        threads=threads,
        method=method,
    )
    return result
