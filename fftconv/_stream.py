"""Streaming execution of separable kernels on image files: bands of rows, file to file.

For the most common huge-photo job (a separable kernel such as a Gaussian or a
box, 'same' mode, a photo's own integer dtype in and out) the tiled path's
general machinery (2-D tiles, the planner per tile, float copies, numpy casts)
costs more than the arithmetic. This module runs such a job as a pipeline of
whole-width bands of rows:

* a reader thread decodes bands aligned to the file's own tiles or strips (TIFF
  segments decoded in parallel by tifffile's codecs, which release the GIL;
  uncompressed files read with ``pread`` straight into the band), each band
  once;
* compute threads run the compiled band engine (`methods._u8_kernels`; from
  its shared library, `methods._u8_native`, when one is built, so that the
  process never imports numba) on ranges of columns: source dtype in, output dtype out, rounded half to even
  and clipped in the engine, float32 accumulation. Each range keeps its
  horizontally filtered rows from band to band, so bands need no halo and no
  row is filtered twice;
* a writer thread writes finished bands (``pwrite`` into uncompressed outputs,
  slices into zarr; in-memory outputs such as PNG and JPEG are computed in
  place).

All three overlap; `SLOTS` bands of input and of output are in memory.
`plan_stream` decides whether a job can run here (returns None otherwise, and
the caller runs the tiled path); `run_stream` runs it and returns a
`StreamProfile` of where the time went.

Exactness: taps are the kernel's rank-1 factors in float32, sums accumulate in
float32, so every output equals the float64 result rounded half to even except
where that result lies within float32's rounding error of a half-integer (a
tie), where it may differ by one level.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from ._cpu import aligned, ring_bytes, strip_columns
from ._pad import source_index

__all__ = ["StreamPlan", "StreamProfile", "plan_stream", "run_stream"]

#: Band height (source rows read, computed and written at a time) where the file
#: allows any; compressed TIFFs and zarr stores use whole rows of their tiles or
#: chunks instead. Rows are never filtered twice, so small bands cost little.
BAND = 192

#: Bands of input (and of output) in memory at once: one being read (written), the
#: rest for the compute threads, which may be a band apart.
SLOTS = 3

#: Chunk height of zarr outputs.
ZARR_ROWS = 512

#: The ring of ``kh + 1`` horizontally filtered rows kept per strip of columns is
#: sized to this many bytes (half the L2 cache of one core: `fftconv._cpu.ring_bytes`).
RING_BYTES = ring_bytes()

#: Separable direct summation costs about (kh + kw) multiply-adds per sample;
#: beyond this many taps the tiled FFT path is cheaper.
MAX_TAPS = 400

_IN_DTYPES = ("uint8", "uint16", "int16", "float32")
_OUT_DTYPES = ("uint8", "uint16", "float32")


@dataclass(frozen=True)
class StreamPlan:
    """How a streaming run computes: the factors, the bands, the memory."""

    shape: tuple[int, ...]
    in_dtype: np.dtype
    out_dtype: np.dtype
    u: np.ndarray = field(repr=False)  # vertical taps, correlation order, float32
    v: np.ndarray = field(repr=False)  # horizontal taps
    pads: tuple[tuple[int, int], tuple[int, int]]
    boundary: str
    fillvalue: float
    copy_channels: tuple[int, ...]  # channels whose kernel is the identity: copied
    threads: int

    #: the name reports give this path (a separable direct sum, streamed in bands)
    method = "stream"

    @property
    def channels(self) -> int:
        return self.shape[2] if len(self.shape) == 3 else 1

    @property
    def tiles(self) -> int:
        """Bands of rows, for a file without its own row granularity."""
        kh = self.u.shape[0]
        return len(_bands(self.shape[0], min(self.shape[0], _band_height(1, kh)), kh))


@dataclass
class StreamProfile:
    """Seconds spent in each stage of a streaming run (busy time, summed over the
    threads of a stage) and waiting, and what they moved. The tiled path fills
    the same fields (``engine='tiles'``): each tile reads, computes and writes on
    one worker, so its waiting is the workers' idle time."""

    wall: float = 0.0
    read: float = 0.0
    compute: float = 0.0
    write: float = 0.0
    read_wait: float = 0.0  # the reader waiting for a free window
    compute_wait: float = 0.0  # the compute stage waiting for a window to be read
    write_wait: float = 0.0  # the writer waiting for computed bands
    pixels: int = 0
    in_bytes: int = 0
    out_bytes: int = 0
    threads: int = 1
    bands: int = 0
    engine: str = "stream"
    compiled: str = ""  # the stream's engine: "library" (`methods._u8_native`) or "numba"
    cpu: float = 0.0  # CPU seconds of the whole process over `wall` (every thread)
    compute_cpu: float = 0.0  # CPU seconds of the compute threads (busy time less preemption)

    def lines(self) -> list[str]:
        """The report ``fftconv apply --profile`` prints."""
        mp = self.pixels / 1e6

        def rate(sec):
            return f"{mp / sec:9.0f}" if sec > 0 else "        -"

        unit = "band" if self.engine == "stream" else "tile"
        moved = (lambda n: f"  ({n / 1e6:.0f} MB)") if self.engine == "stream" else (lambda n: "")
        if self.engine == "stream":
            waiting = (
                f"  waiting: reader {self.read_wait:.3f} s for free memory, compute "
                f"{self.compute_wait:.3f} s for input, writer {self.write_wait:.3f} s "
                "for results"
            )
        else:
            idle = max(0.0, self.threads * self.wall - self.read - self.compute - self.write)
            waiting = f"  waiting: workers idle {idle:.3f} s (threads x wall - busy)"
        how = f", {self.compiled} engine" if self.compiled else ""
        return [
            f"profile ({self.engine}: {self.bands} {unit}(s), {self.threads} compute "
            f"thread(s){how}): wall {self.wall:.3f} s, {rate(self.wall).strip()} Mpixel/s",
            "  stage          busy s  Mpixel/s per busy s",
            f"  read/decode  {self.read:8.3f} {rate(self.read)}{moved(self.in_bytes)}",
            f"  compute      {self.compute:8.3f} {rate(self.compute)}  (summed over "
            f"{self.threads} thread(s): {rate(self.compute / self.threads).strip()} together)",
            f"  encode/write {self.write:8.3f} {rate(self.write)}{moved(self.out_bytes)}",
            waiting,
        ] + ([self._cpu_line()] if self.cpu > 0 else [])

    def _cpu_line(self) -> str:
        """CPU time, which other processes on the machine do not inflate as they do
        the busy times (a stage that waits for a core counts as busy)."""
        cores = os.cpu_count() or 1
        line = (
            f"  cpu: {self.cpu:.3f} s ({self.cpu / max(self.wall, 1e-9):.1f} of {cores} "
            "core(s) on average)"
        )
        if self.compute_cpu > 0:
            rest = max(0.0, self.cpu - self.compute_cpu)
            line += (
                f": compute {self.compute_cpu:.3f} s, reading, writing and the rest {rest:.3f} s"
            )
        return line


def _engine():
    """numba's band engine (`methods._u8_kernels`), or None without numba."""
    try:
        from .methods import _u8_kernels
    except ImportError:
        return None
    return _u8_kernels


def _engine_for(in_dtype, out_dtype):
    """The engine of a dtype pair: its shared library when one is built
    (`methods._u8_native`: no numba import), else numba's, else None."""
    from .methods import _u8_native

    return _u8_native.load(in_dtype, out_dtype) or _engine()


def _factors(k: np.ndarray):
    """(u, v) with ``outer(u, v) == k`` to float64 rounding, or None (not rank 1)."""
    k = np.asarray(k, np.float64)
    if k.ndim != 2 or not np.all(np.isfinite(k)):
        return None
    i, j = np.unravel_index(np.argmax(np.abs(k)), k.shape)
    if k[i, j] == 0:
        return None
    u = k[:, j].copy()
    v = k[i, :] / k[i, j]
    if np.max(np.abs(np.outer(u, v) - k)) > 1e-12 * abs(k[i, j]):
        return None
    return u, v


def plan_stream(
    shape,
    in_dtype,
    kernel,
    *,
    mode="same",
    boundary="symmetric",
    fillvalue=0.0,
    correlate=False,
    out_dtype=None,
    threads=1,
    channel_kernels=None,
):
    """The StreamPlan for convolving an image of `shape` and `in_dtype` with the 2-D
    `kernel`, or None when this path cannot run it (the tiled path then does).

    It runs 'same' mode with a real rank-1 (separable) kernel of at most `MAX_TAPS`
    taps in all, on 2-D or channels-last images of uint8, uint16, int16 or float32,
    written as uint8, uint16 or float32, with numba installed. `channel_kernels`
    (channels, kh, kw) may give one kernel per channel where each is `kernel` or
    the identity (an alpha channel, copied).
    """
    from ._problem import normalize_boundary

    boundary = normalize_boundary(boundary)
    if mode != "same" or boundary == "wrap":
        return None
    shape = tuple(int(s) for s in shape)
    in_dtype, out_dtype = np.dtype(in_dtype), np.dtype(out_dtype or in_dtype)
    if len(shape) not in (2, 3) or in_dtype.name not in _IN_DTYPES:
        return None
    if out_dtype.name not in _OUT_DTYPES or min(shape[:2]) < 1:
        return None
    if _engine_for(in_dtype, out_dtype) is None:
        return None
    kernel = np.asarray(kernel)
    if kernel.dtype.kind not in "biuf" or kernel.ndim != 2:
        return None
    kh, kw = kernel.shape
    if kh + kw > MAX_TAPS or not isinstance(fillvalue, (int, float)):
        return None
    if not np.isfinite(fillvalue) and (boundary == "fill" or out_dtype.kind != "f"):
        return None  # the tiled path explains what cannot be written
    fac = _factors(kernel)
    if fac is None:
        return None
    u, v = fac
    k = kernel[::-1, ::-1] if not correlate else kernel
    u, v = (u[::-1], v[::-1]) if not correlate else (u, v)
    channels = shape[2] if len(shape) == 3 else 1
    copy = []
    if channel_kernels is not None:
        ck = np.asarray(channel_kernels)
        if ck.shape != (channels, kh, kw):
            return None
        delta = np.zeros((kh, kw))
        centre = tuple((n // 2) if correlate else (n - 1) // 2 for n in (kh, kw))
        delta[centre] = 1
        for c in range(channels):
            if np.array_equal(ck[c], delta) and not np.array_equal(ck[c], kernel):
                copy.append(c)
            elif not np.array_equal(ck[c], kernel):
                return None
    del k
    pads = []
    for n in (kh, kw):
        start = n // 2 if correlate else (n - 1) // 2
        pads.append((n - 1 - start, start))
    return StreamPlan(
        shape=shape,
        in_dtype=in_dtype,
        out_dtype=out_dtype,
        u=np.ascontiguousarray(u, np.float32),
        v=np.ascontiguousarray(v, np.float32),
        pads=tuple(pads),
        boundary=boundary,
        fillvalue=float(fillvalue),
        copy_channels=tuple(copy),
        threads=max(1, int(threads)),
    )


def _index(n_out: int, pb: int, k: int, n: int, boundary: str) -> np.ndarray:
    """Source index of each padded position ``-pb .. n_out - pb + k - 1`` (-1: fill)."""
    pos = np.arange(-pb, n_out - pb + k - 1)
    if boundary == "fill":
        return np.where((pos >= 0) & (pos < n), pos, -1).astype(np.int64)
    return source_index(pos, n, boundary).astype(np.int64)


# --------------------------------------------------------------------------- sources


class _Rows:
    """Rows of an image as (rows, columns * channels) blocks."""

    unit = 1  # the file's own row granularity (tile or strip height)
    in_memory = None  # the whole image as one 2-D array when it is in memory

    def read(self, y0: int, y1: int, out: np.ndarray) -> int:
        """Rows ``[y0, y1)`` into ``out[:y1 - y0]``; returns the bytes read from the file."""
        raise NotImplementedError

    def close(self) -> None:
        pass


class _ArrayRows(_Rows):
    """Any array sliced by rows (zarr arrays, planar-TIFF views, memmaps of odd layout)."""

    def __init__(self, arr):
        self.arr = arr
        chunks = getattr(arr, "chunks", None)
        self.unit = int(chunks[0]) if chunks else 1

    def read(self, y0, y1, out):
        block = np.asarray(self.arr[y0:y1])
        out[: y1 - y0] = block.reshape(y1 - y0, -1)
        return block.nbytes


class _FileRows(_Rows):
    """A C-ordered block of rows at an offset in a file (.npy, uncompressed contiguous
    TIFF): read with ``preadv`` into the band, no memory map (whose pages would count
    as this process's memory)."""

    def __init__(self, filename, offset, row_bytes):
        self.fd = os.open(filename, os.O_RDONLY)
        self.offset = int(offset)
        self.row_bytes = int(row_bytes)

    def read(self, y0, y1, out):
        want = (y1 - y0) * self.row_bytes
        view = memoryview(out[: y1 - y0].reshape(-1).view(np.uint8))[:want]
        got = 0
        while got < want:
            n = os.preadv(self.fd, [view[got:]], self.offset + y0 * self.row_bytes + got)
            if n <= 0:
                raise OSError(f"unexpected end of file reading rows {y0}-{y1}")
            got += n
        return want

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class _TiffRows(_Rows):
    """A tiled or stripped (contiguous-planar) TIFF page: the segments of a band read
    with ``pread`` and decoded in parallel (tifffile's codecs release the GIL);
    uncompressed segments are not decoded at all."""

    def __init__(self, path, threads):
        from concurrent.futures import ThreadPoolExecutor

        import tifffile

        self.tif = tifffile.TiffFile(path)
        page = self.tif.pages[0]
        self.page = page
        self.fd = os.open(path, os.O_RDONLY)
        _, depth, self.h, self.w, self.c = page.shaped
        if page.is_tiled:
            self.th, self.tw = page.tilelength, page.tilewidth
        else:
            self.th, self.tw = page.rowsperstrip, self.w
        self.th = min(self.th, self.h) if not page.is_tiled else self.th
        self.across = -(-self.w // self.tw)
        self.raw = (
            page.compression == 1
            and page.predictor == 1
            and page.fillorder == 1
            and page.bitspersample == 8 * page.dtype.itemsize
        )
        # uncompressed segments are read row by row: bands of any height
        self.unit = 1 if self.raw else self.th
        self.offsets = page.dataoffsets
        self.counts = page.databytecounts
        self.dtype = np.dtype(page.dtype).newbyteorder(self.tif.byteorder)
        self.pool = ThreadPoolExecutor(max_workers=max(1, threads)) if threads > 1 else None
        self.shape = (self.h, self.w) + ((self.c,) if self.c > 1 else ())

    @classmethod
    def open(cls, path, threads=1):
        """The reader of the TIFF at `path`, or None when its layout is not one this
        reader handles (several pages, planar colour, odd sample layouts)."""
        try:
            import tifffile

            with tifffile.TiffFile(path) as tif:
                if len(tif.series) < 1 or len(tif.series[0].pages) != 1:
                    return None
                page = tif.pages[0]
                ok = (
                    page.planarconfig == 1
                    and page.shaped[0] == 1
                    and page.shaped[1] == 1
                    and len(page.dataoffsets) > 0
                    and page.dtype is not None
                    and tuple(tif.series[0].shape) in (page.shaped[2:4], page.shaped[2:])
                    and page.shaped[4] in (1, 2, 3, 4)
                )
                # a truncated file goes the general way, which explains it
                size = os.path.getsize(path)
                ends = [int(o) + int(c) for o, c in zip(page.dataoffsets, page.databytecounts)]
                ok = ok and max(ends) <= size
            return cls(path, threads) if ok else None
        except Exception:  # anything tifffile cannot describe goes the general way
            return None

    def _segment(self, index: int, r0: int, r1: int) -> np.ndarray:
        """Rows ``[r0, r1)`` of segment `index` as (rows, width, channels); an
        uncompressed segment reads only those rows."""
        off, count = int(self.offsets[index]), int(self.counts[index])
        row = self.tw * self.c * self.dtype.itemsize
        if self.raw and count >= self.th * row:
            data = os.pread(self.fd, (r1 - r0) * row, off + r0 * row)
            return np.frombuffer(data, self.dtype).reshape(r1 - r0, self.tw, self.c)
        data = os.pread(self.fd, count, off) if count else b""
        seg = self.page.decode(data, index, jpegtables=self.page.jpegtables)[0]
        if seg is None:  # a missing segment reads as zeros
            return np.zeros((r1 - r0, self.tw, self.c), self.dtype)
        return seg.reshape(seg.shape[-3:])[r0:r1]

    def read(self, y0, y1, out):
        band = out[: y1 - y0].reshape(y1 - y0, self.w, self.c)
        rows = range(y0 // self.th, (y1 - 1) // self.th + 1)
        jobs = [(r, x) for r in rows for x in range(self.across)]

        def one(job):
            r, x = job
            sy0 = r * self.th
            a, b = max(y0, sy0), min(y1, sy0 + self.th, self.h)
            seg = self._segment(r * self.across + x, a - sy0, b - sy0)
            c0, c1 = x * self.tw, min(self.w, (x + 1) * self.tw)
            band[a - y0 : b - y0, c0:c1] = seg[:, : c1 - c0]
            return seg.nbytes

        if self.pool is None:
            return sum(map(one, jobs))
        return sum(self.pool.map(one, jobs))

    def close(self):
        if self.fd is None:
            return
        if self.pool is not None:
            self.pool.shutdown()
        os.close(self.fd)
        self.fd = None
        self.tif.close()


def source_rows(src, path=None, threads=1) -> _Rows:
    """The fastest reader of `src` (what `io.open_image` returned for `path`)."""
    if (
        path is not None
        and str(path).lower().endswith((".tif", ".tiff"))
        and not isinstance(src, np.ndarray)
    ):
        rows = _TiffRows.open(path, threads)
        if rows is not None:
            return rows
    if isinstance(src, np.memmap) and src.flags.c_contiguous and getattr(src, "filename", None):
        return _FileRows(src.filename, src.offset, src.strides[0])
    if isinstance(src, np.ndarray) and src.flags.c_contiguous:
        rows = _ArrayRows(src)
        rows.in_memory = src.reshape(src.shape[0], -1)
        return rows
    return _ArrayRows(src)


def tiff_rows(path, threads=1):
    """A reader of the TIFF at `path` that needs neither zarr nor a memory map (tiled
    or stripped, compressed or not), or None."""
    if not str(path).lower().endswith((".tif", ".tiff")) or not os.path.isfile(path):
        return None
    return _TiffRows.open(path, threads)


# --------------------------------------------------------------------------- sinks


class _Sink:
    in_memory = None  # the output as one 2-D array when results are computed in place

    def write(self, y0: int, y1: int, band: np.ndarray) -> int:
        raise NotImplementedError

    def close(self) -> None:
        pass


class _FileSink(_Sink):
    """Rows written with ``pwrite`` at their place in an uncompressed output file."""

    def __init__(self, filename, offset, row_bytes):
        self.fd = os.open(filename, os.O_WRONLY)
        self.offset, self.row_bytes = int(offset), int(row_bytes)

    def write(self, y0, y1, band):
        data = memoryview(np.ascontiguousarray(band[: y1 - y0]).reshape(-1).view(np.uint8))
        done = 0
        while done < len(data):
            done += os.pwrite(self.fd, data[done:], self.offset + y0 * self.row_bytes + done)
        return len(data)

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class _ArraySink(_Sink):
    def __init__(self, arr):
        self.arr = arr

    def write(self, y0, y1, band):
        self.arr[y0:y1] = band[: y1 - y0].reshape((y1 - y0,) + tuple(self.arr.shape[1:]))
        return band[: y1 - y0].nbytes


def written_by_file(dst) -> bool:
    """True when a run writes `dst` (a memory map) with pwrite, never through the map."""
    return (
        isinstance(dst, np.memmap)
        and dst.flags.c_contiguous
        and bool(getattr(dst, "filename", None))
    )


def sink_rows(dst) -> _Sink:
    if written_by_file(dst):
        return _FileSink(dst.filename, dst.offset, dst.strides[0])
    if isinstance(dst, np.ndarray) and dst.flags.c_contiguous and dst.flags.writeable:
        s = _Sink()
        s.in_memory = dst.reshape(dst.shape[0], -1)
        return s
    return _ArraySink(dst)


# --------------------------------------------------------------------------- the run


def _band_height(unit: int, kh: int) -> int:
    """A multiple of the file's row unit, at least the kernel's height (so that the
    halos lie in the neighbouring bands) and about `BAND` rows."""
    want = max(BAND, kh)
    return max(unit, -(-want // unit) * unit) if unit > 1 else want


def _bands(H: int, B: int, kh: int) -> list[tuple[int, int]]:
    """Row ranges of `B` rows; a last band shorter than the kernel joins the one before
    (the boundary's reflections at the bottom must lie in its window)."""
    bands = [(y, min(H, y + B)) for y in range(0, H, B)]
    if len(bands) > 1 and bands[-1][1] - bands[-1][0] < kh:
        bands[-2:] = [(bands[-2][0], H)]
    return bands


def emitted(i0: int, i1: int, kh: int, n_pad: int) -> tuple[int, int]:
    """The output rows ``[a, b)`` that `methods._u8_kernels.sep_rows` stores while it
    feeds padded rows ``[i0, i1)`` (the caller sizes its output buffer with it)."""
    n_out = n_pad - kh + 1
    a = max(0, (i0 - kh) + (i0 - kh) % 2)
    last = i1 - 1 - (i1 - 1 - kh) % 2  # the last padded row of the range that stores a pair
    b = min(n_out, last - kh + 2) if last - kh >= 0 else 0
    if i1 == n_pad and n_out % 2 == 1:
        b = n_out
    return a, max(a, b)


def stream_memory(plan: StreamPlan, unit: int = 1) -> int:
    """Bytes a run holds besides the interpreter: `SLOTS` bands of source rows and of
    output rows, the strips' rings and, for compressed files, the segments being
    decoded (one band's worth at most)."""
    H, W = plan.shape[:2]
    C = plan.channels
    kh = plan.u.shape[0]
    B = min(H, _band_height(unit, kh))
    rows = max(b - a for a, b in _bands(H, B, kh)) + kh
    src = rows * W * C * plan.in_dtype.itemsize
    out = (rows + 2) * W * C * plan.out_dtype.itemsize
    return (SLOTS + 1) * src + SLOTS * out + (kh + 1) * W * C * 4


def run_stream(
    plan: StreamPlan, src, dst, *, path=None, progress=None, rows: _Rows | None = None
) -> StreamProfile:
    """Compute `plan` from `src` (as `io.open_image` returns it; `path` its file, for
    the TIFF reader; or `rows`, a reader from `tiff_rows`) into `dst` (an array of the
    output's shape and dtype: a memmap, zarr array or ndarray); returns the profile."""
    K = _engine_for(plan.in_dtype, plan.out_dtype)
    t_start, c_start = time.perf_counter(), time.process_time()
    H, W = plan.shape[:2]
    C = plan.channels
    kh, kw = plan.u.shape[0], plan.v.shape[0]
    (pt, _), (pl, _) = plan.pads
    n_pad = H + kh - 1
    T = plan.threads
    prof = StreamProfile(pixels=H * W, threads=T)
    rows = rows or source_rows(src, path, T)
    sink = None
    try:
        sink = sink_rows(dst)
        B = min(H, _band_height(rows.unit, kh))
        bands = _bands(H, B, kh)
        prof.bands = len(bands)
        whole = [a for a in (rows.in_memory, sink.in_memory) if a is not None]
        if hasattr(K, "accepts") and not K.accepts(*whole):
            K = _engine()  # an array the library's pointers cannot describe
        prof.compiled = "library" if hasattr(K, "accepts") else "numba"
        rowmap_all = _index(H, pt, kh, H, plan.boundary)
        colmap = _index(W, pl, kw, W, plan.boundary)
        # Band j feeds padded rows [i0, i1): those that read its own source rows.
        feeds = []
        for j, (y0, y1) in enumerate(bands):
            i0 = 0 if j == 0 else y0 + pt
            i1 = n_pad if j == len(bands) - 1 else y1 + pt
            rm = rowmap_all[i0:i1]
            if np.any((rm >= 0) & ((rm < y0) | (rm >= y1))):
                raise RuntimeError("a band's padded rows read outside it")  # not for 'wrap'
            feeds.append((i0, i1) + emitted(i0, i1, kh, n_pad))
        is_int = plan.out_dtype.kind in "iu"
        if is_int:
            info = np.iinfo(plan.out_dtype)
            lo, hi = np.float32(info.min), np.float32(info.max)
        else:
            lo, hi = np.float32(-np.inf), np.float32(np.inf)
        fill = np.float32(plan.fillvalue)
        copy = np.array(plan.copy_channels, np.int64)
        # Strips whose ring of kh + 1 filtered rows fits RING_BYTES; whole strips per
        # thread, each range of strips with its own rings, kept from band to band.
        S = strip_columns(W, kh, C, RING_BYTES)
        strips = -(-W // S)
        per = -(-strips // T)
        ranges = [(i * per * S, min(W, (i + 1) * per * S)) for i in range(T) if i * per * S < W]
        rings = [aligned((-(-(x1 - x0) // S), kh + 1, S * C)) for x0, x1 in ranges]
        failure: list = []
        stop = threading.Event()
        win_q: queue.Queue = queue.Queue()
        out_q: queue.Queue = queue.Queue()
        free_wins: queue.Queue = queue.Queue()
        free_out: queue.Queue = queue.Queue()
        work_qs = [queue.Queue() for _ in ranges]
        lock = threading.Lock()
        streamed = rows.in_memory is None
        if streamed:
            for _ in range(SLOTS):
                free_wins.put(np.empty((B + kh, W * C), plan.in_dtype))
        if sink.in_memory is None:
            most = max(b - a for _, _, a, b in feeds)
            for _ in range(SLOTS):
                free_out.put(np.empty((max(1, most), W * C), plan.out_dtype))

        def worker(r):
            """Feeds every band through range `r`'s strips, in order; whichever worker
            finishes a band last hands its rows to the writer and its window back."""
            tmp = aligned(((S + kw - 1) * C,))
            acc = aligned((2 * S * C,))
            x0, x1 = ranges[r]
            try:
                while True:
                    t0 = time.perf_counter()
                    item = work_qs[r].get()
                    waited = time.perf_counter() - t0
                    if item is None:
                        return
                    if stop.is_set():
                        continue
                    win, rm, out2d, row0, i0, i1, buf, a, b, left = item
                    t0, c0 = time.perf_counter(), time.thread_time()
                    K.sep_rows(
                        win,
                        rm,
                        colmap,
                        plan.u,
                        plan.v,
                        fill,
                        copy,
                        pt,
                        pl,
                        n_pad,
                        out2d,
                        row0,
                        i0,
                        i1,
                        x0,
                        x1,
                        C,
                        lo,
                        hi,
                        is_int,
                        rings[r],
                        tmp,
                        acc,
                    )
                    dt, dc = time.perf_counter() - t0, time.thread_time() - c0
                    with lock:
                        prof.compute += dt
                        prof.compute_cpu += dc
                        prof.compute_wait += waited
                        left[0] -= 1
                        last = left[0] == 0
                    if last:
                        if streamed:
                            free_wins.put(win)
                        out_q.put((buf, a, b))
            except BaseException as exc:
                failure.append(exc)
                stop.set()
                free_out.put(None)
                win_q.put(None)

        def reader():
            try:
                for y0, y1 in bands:
                    t0 = time.perf_counter()
                    win = free_wins.get()
                    prof.read_wait += time.perf_counter() - t0
                    if stop.is_set():
                        return
                    t0 = time.perf_counter()
                    prof.in_bytes += rows.read(y0, y1, win)
                    prof.read += time.perf_counter() - t0
                    win_q.put(win)
            except BaseException as exc:  # handed to the main thread
                failure.append(exc)
                win_q.put(None)

        def writer():
            try:
                while True:
                    t0 = time.perf_counter()
                    item = out_q.get()
                    prof.write_wait += time.perf_counter() - t0
                    if item is None:
                        return
                    buf, a, b = item
                    if buf is not None and b > a:
                        t0 = time.perf_counter()
                        prof.out_bytes += sink.write(a, b, buf)
                        prof.write += time.perf_counter() - t0
                    if buf is not None:
                        free_out.put(buf)
                    if progress is not None:
                        progress(b, H)
            except BaseException as exc:
                failure.append(exc)
                stop.set()
                free_out.put(None)

        writer_thread = threading.Thread(target=writer, name="fftconv-write", daemon=True)
        workers = [
            threading.Thread(target=worker, args=(r,), name=f"fftconv-compute-{r}", daemon=True)
            for r in range(len(ranges))
        ]
        others = (
            [threading.Thread(target=reader, name="fftconv-read", daemon=True)] if streamed else []
        )
        for t in [writer_thread] + workers + others:
            t.start()
        try:
            for (y0, _), (i0, i1, a, b) in zip(bands, feeds):
                if streamed:
                    win = win_q.get()
                    if win is None:
                        raise failure[0]
                    rm = np.where(rowmap_all >= 0, rowmap_all - y0, -1)
                else:
                    win, rm = rows.in_memory, rowmap_all
                if sink.in_memory is not None:
                    buf, out2d, row0 = None, sink.in_memory, 0
                else:
                    buf = free_out.get()
                    if buf is None:
                        raise failure[0]
                    out2d, row0 = buf, a
                item = (win, rm, out2d, row0, i0, i1, buf, a, b, [len(ranges)])
                for q in work_qs:
                    q.put(item)
            for q in work_qs:
                q.put(None)
            for t in workers:
                t.join()
            if failure:
                raise failure[0]
        except BaseException:
            stop.set()
            raise
        finally:
            for q in work_qs:
                q.put(None)
            if streamed:
                free_wins.put(np.empty((0, W * C), plan.in_dtype))  # unblocks the reader
            for t in workers + others:
                t.join()
            out_q.put(None)
            writer_thread.join()
        if failure:
            raise failure[0]
        prof.compute_wait /= max(1, len(ranges))
    finally:
        rows.close()
        if sink is not None:
            sink.close()
    prof.wall = time.perf_counter() - t_start
    prof.cpu = time.process_time() - c_start
    return prof
