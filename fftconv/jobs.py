"""The file-to-file job: an image file convolved into another, tile by tile.

`convolve_file` is what ``fftconv apply`` runs (the command only parses its
arguments and prints); `FileJob` is what it decides before touching pixels
(``fftconv plan`` prints it).
"""

from __future__ import annotations

import os
import time
import warnings
from typing import TYPE_CHECKING

import numpy as np

from . import io
from ._problem import (
    compute_dtype,
    default_threads,
    make_problem_from_shapes,
    normalize_threads,
)
from ._units import DEFAULT_MAX_MEMORY, parse_memory
from .kernels import parse_spec

# fftconv.tiles (and with it the planner and pyFFTW) is imported only by jobs that
# run in tiles: a job the streaming path runs (`fftconv._stream`) does not pay for it.
if TYPE_CHECKING:
    from .tiles import TilePlan

__all__ = ["FileJob", "JobError", "convolve_file"]


class JobError(ValueError):
    """A bad argument or input of a file job (the command exits 2 with its message)."""


def _rss() -> int:
    """This process's resident memory now, bytes."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _channel_kernel(kernel: np.ndarray, channels: int, correlate: bool) -> np.ndarray:
    """One kernel per channel: `kernel` for the colour channels, the identity for an
    alpha channel (the last of 2 or 4), so transparency is kept as it is."""
    delta = np.zeros(kernel.shape, kernel.dtype)
    centre = tuple((k // 2) if correlate else (k - 1) // 2 for k in kernel.shape)
    delta[centre] = 1
    ks = [kernel] * (channels - 1) + [delta]
    return np.stack(ks, axis=-1)


def _out_dtype(choice, in_dtype: np.dtype, compute) -> np.dtype:
    if choice is not None:
        return np.dtype(choice)
    if in_dtype.kind in "u" and in_dtype.itemsize <= 2:
        return in_dtype
    return np.dtype(compute).type(0).real.dtype if np.dtype(compute).kind == "c" else compute


def as_kernel(kernel, max_bytes: float | None = None) -> np.ndarray:
    """`kernel` as an array: a spec such as ``'gaussian:sigma=2'`` or a .npy path
    (`fftconv.kernels.parse_spec`, which refuses kernels of more than `max_bytes`
    before building them), or array-like."""
    if isinstance(kernel, (str, os.PathLike)):
        try:
            return parse_spec(os.fspath(kernel), max_bytes=max_bytes)
        except (ValueError, TypeError) as exc:
            hint = (
                " (a quarter of max_memory: the rest is for the tiles); raise max_memory"
                if "memory budget" in str(exc)
                else ""
            )
            raise JobError(f"{exc}{hint}") from None
    return np.asarray(kernel)


def _dtype_choice(dtype):
    if dtype is None or (isinstance(dtype, str) and dtype == "same"):
        return None
    return np.dtype(dtype)


def _capped_threads(threads) -> int:
    """`threads`, at most the cores this process may use (with a warning)."""
    threads = normalize_threads(threads)
    cores = default_threads()
    if threads > cores:
        # More workers than cores only cut the work smaller and slower.
        warnings.warn(
            f"threads={threads} is more than the {cores} core(s) this "
            f"process may use; using {cores}",
            stacklevel=4,
        )
        threads = cores
    return threads


def _budget(total: int, in_memory: int) -> int:
    """The working-memory budget left of `total` once this process's own resident
    memory (interpreter, libraries, images decoded in memory) is counted."""
    left = total - _rss() - in_memory
    if left <= 0:
        raise JobError(
            f"--max-memory {total / 1e6:.0f}MB is too small: the process already uses "
            f"{(_rss() + in_memory) / 1e6:.0f}MB before computing"
        )
    return left


class FileJob:
    """Everything a file job decides before touching pixels.

    Parameters
    ----------
    shape, in_dtype
        The input image's shape (2-d grey, or 3-d with channels last) and dtype.
    kernel : ndarray
        The 2-d kernel (2 or 4 channels: the last, alpha, is copied unchanged).
    mode, boundary, fillvalue, correlate, method, threads, dtype
        As for `convolve_file`.
    """

    def __init__(
        self,
        shape,
        in_dtype,
        kernel,
        *,
        mode="same",
        boundary="symmetric",
        fillvalue=0.0,
        correlate=False,
        method="auto",
        threads=None,
        dtype=None,
    ):
        self.shape = tuple(shape)
        self.in_dtype = np.dtype(in_dtype)
        wide = {"f": 8, "c": 16}.get(self.in_dtype.kind)
        if wide and self.in_dtype.itemsize > wide and _dtype_choice(dtype) is None:
            raise JobError(
                f"input holds {self.in_dtype} (long double) samples; fftconv computes in "
                "float64 at most and would round them: pass dtype='float64' (--dtype float64) "
                "to accept that"
            )
        if len(self.shape) not in (2, 3):
            raise JobError(f"input has shape {self.shape}; expected a 2-d grey or 3-d colour image")
        if kernel.ndim != 2:
            raise JobError(f"kernel has shape {kernel.shape}; a kernel must be 2-d")
        channels = self.shape[2] if len(self.shape) == 3 else 0
        self.complex = kernel.dtype.kind == "c"
        req = _dtype_choice(dtype)
        self.compute = compute_dtype(self.in_dtype, kernel.dtype, req)
        k = kernel.astype(self.compute)
        if channels in (2, 4):
            k = _channel_kernel(k, channels, correlate)
        self.kernel = k
        self.channel_axis = -1 if channels else None
        try:
            self.problem = make_problem_from_shapes(
                self.shape,
                k.shape,
                self.compute,
                mode=mode,
                boundary=boundary,
                fillvalue=fillvalue,
                channel_axis=self.channel_axis,
                correlate=correlate,
            )
        except (ValueError, TypeError) as exc:
            raise JobError(str(exc)) from None
        if self.problem.swapped:
            raise JobError(
                f"--mode valid needs an image at least as large as the kernel; got "
                f"image {self.shape} and kernel {kernel.shape}"
            )
        # The kernel as the Problem has it (with the image's number of dimensions).
        self.k = k if k.ndim == len(self.shape) else np.expand_dims(k, -1)
        self.out_dtype = _out_dtype(req, self.in_dtype, self.compute)
        if (
            self.problem.boundary == "fill"
            and self.out_dtype.kind in "biu"
            and not np.isfinite(self.problem.fillvalue)
        ):
            raise JobError(
                f"fillvalue={self.problem.fillvalue!r} cannot be written to a "
                f"{self.out_dtype} output (integers have no NaN or infinity); write a float "
                "output (--dtype float32) or pass a finite fill value"
            )
        self.threads = _capped_threads(threads)
        self.method = method

    def plan(self, max_memory, in_memory: int = 0) -> TilePlan:
        """The tiled plan within `max_memory` for the whole process, of which this
        process's resident memory and `in_memory` bytes held elsewhere are spent."""
        from .tiles import plan_tiles

        try:
            return plan_tiles(
                self.problem,
                max_memory=_budget(parse_memory(max_memory), in_memory),
                threads=self.threads,
                method=self.method,
                src_itemsize=self.in_dtype.itemsize,
                out_itemsize=self.out_dtype.itemsize,
                kernel=self.k,
            )
        except ValueError as exc:
            raise JobError(str(exc)) from None


def convolve_file(
    src,
    dst,
    kernel,
    *,
    mode: str = "same",
    boundary: str = "symmetric",
    fillvalue=0.0,
    correlate: bool = False,
    method: str = "auto",
    max_memory=DEFAULT_MAX_MEMORY,
    threads: int | None = None,
    dtype=None,
    force: bool = False,
    progress=False,
    max_pixels: int | None = None,
) -> dict:
    """Convolve (or correlate) image file `src` with `kernel` into image file `dst`.

    Images larger than memory run tile by tile within `max_memory`; `dst`
    appears only when complete (written to a temporary file beside it, then
    renamed), and `src` is never modified.

    Parameters
    ----------
    src, dst : str or path
        Image files: .png .jpg .tif .npy .zarr (PNG, JPEG, TIFF and zarr need the
        ``io`` extra).
    kernel : str or array_like
        A 2-d kernel, or its spec: ``'gaussian:sigma=8'``, ``'box:31'``,
        ``'scharr'``, a .npy file... (`fftconv.kernels.parse_spec`).
    mode : {'same', 'full', 'valid'}
    boundary : {'symmetric', 'mirror', 'nearest', 'wrap', 'fill'}
    fillvalue : float
        The padding value for boundary='fill'.
    correlate : bool
        Cross-correlate instead of convolve.
    method : {'auto', 'fft', 'direct', 'oa', 'separable', 'lowrank'}
        The method of every tile.
    max_memory : int or str
        Peak resident memory of the whole process, e.g. ``'2GB'``.
    threads : int, optional
        Threads (default all cores).
    dtype : dtype or 'same', optional
        The output dtype; default `src`'s for uint8 and uint16 images (rounded
        and clipped), else the compute dtype.
    force : bool
        Replace `dst` if it exists.
    progress : bool or callable
        A progress bar (True) or ``progress(done, total)`` after each tile.
    max_pixels : int, optional
        Allow inputs with up to this many pixels (a guard against decompression
        bombs and headers that claim any size; default
        `fftconv.io.DEFAULT_MAX_PIXELS` for PNG/JPEG and
        `fftconv.io.DEFAULT_MAX_STORED_PIXELS` for .npy, TIFF and zarr).

    Returns
    -------
    dict
        ``plan`` (the `TilePlan`, or the `fftconv._stream.StreamPlan` of a job
        that streamed), ``seconds``, ``pixels``, ``shape`` and ``dtype`` of the
        output, ``complex`` (a complex result written as its modulus) and
        ``profile`` (a `fftconv._stream.StreamProfile`: the seconds spent reading,
        computing and writing).

    Notes
    -----
    With ``method='auto'``, a separable kernel in 'same' mode on a photo's
    dtypes streams through bands of rows (`fftconv._stream`; see
    docs/huge_photos.md), every other job runs in tiles.

    Raises
    ------
    JobError
        (a ValueError) for a bad argument, a missing or unreadable input, an
        existing `dst` without `force`, or a budget too small.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> import fftconv
    >>> d = tempfile.mkdtemp()
    >>> np.save(os.path.join(d, "in.npy"), np.arange(64.0).reshape(8, 8))
    >>> res = fftconv.convolve_file(os.path.join(d, "in.npy"), os.path.join(d, "out.npy"),
    ...                             "box:3", boundary="nearest")
    >>> res["shape"], res["plan"].tiles
    ((8, 8), 1)
    >>> float(np.load(os.path.join(d, "out.npy"))[3, 3])
    27.0
    """
    # The kernel, its copy in the compute dtype and its spectrum must leave room for
    # the tiles: a kernel of more than a quarter of the budget is refused unbuilt.
    try:
        budget = parse_memory(max_memory)
    except (ValueError, TypeError) as exc:
        raise JobError(str(exc)) from None
    kernel = as_kernel(kernel, max_bytes=budget / 4)
    src, dst = os.fspath(src), os.fspath(dst)
    if os.path.exists(dst) and os.path.exists(src) and os.path.samefile(src, dst):
        raise JobError(f"OUT {dst!r} is IN: fftconv never modifies its input; choose another OUT")
    image = None
    if method == "auto":
        from . import _stream

        # TIFFs are read by the streaming path's own reader, without zarr.
        rows = _stream.tiff_rows(src, normalize_threads(threads))
        if rows is not None:
            _check_stored(src, rows.shape, max_pixels)
        else:
            image = _open(src, max_pixels)
        # in a list that the stream empties once it has read the image, so that a
        # decoded input (PNG, JPEG) is freed before the output is encoded
        held, image = [image], None
        res = _stream_job(
            src,
            dst,
            held,
            rows,
            kernel,
            mode=mode,
            boundary=boundary,
            fillvalue=fillvalue,
            correlate=correlate,
            threads=threads,
            dtype=dtype,
            max_memory=max_memory,
            force=force,
            progress=progress,
        )
        if res is not None:
            return res
        image = held[0]
    if image is None:
        image = _open(src, max_pixels)
    from ._stream import StreamProfile
    from .tiles import run_tiled

    job = FileJob(
        image.shape,
        image.dtype,
        kernel,
        mode=mode,
        boundary=boundary,
        fillvalue=fillvalue,
        correlate=correlate,
        method=method,
        threads=threads,
        dtype=dtype,
    )
    shape = job.problem.out_shape
    # PNG and JPEG results are held in memory until they are encoded.
    encoded = dst.lower().endswith((".png", ".jpg", ".jpeg"))
    in_memory = int(np.prod(shape)) * job.out_dtype.itemsize if encoded else 0
    plan = job.plan(max_memory, in_memory)
    # zarr chunks of one tile each: every tile writes whole chunks, in parallel.
    chunks = tuple(plan.tile) + tuple(shape[2:])
    try:
        out = io.create_output(dst, shape, job.out_dtype, force=force, chunks=chunks)
    except (OSError, ValueError) as exc:
        raise JobError(str(exc)) from None
    pixels = int(np.prod(shape[:2]))
    prof = StreamProfile(engine="tiles", pixels=pixels, threads=plan.workers, bands=plan.tiles)
    with out:
        t0, c0 = time.perf_counter(), time.process_time()
        run_tiled(
            job.problem,
            image,
            job.k,
            out.array,
            max_memory=plan.budget,
            threads=job.threads,
            method=job.method,
            tile=plan.tile,
            progress=progress,
            magnitude=job.complex,
            profile=prof,
        )
        t1 = time.perf_counter()
        out.commit()
        seconds = time.perf_counter() - t0
    prof.write += time.perf_counter() - t1  # encoding PNG/JPEG, finishing the file
    prof.wall = seconds
    prof.cpu = time.process_time() - c0
    return dict(
        plan=plan,
        seconds=seconds,
        pixels=pixels,
        shape=shape,
        dtype=job.out_dtype,
        complex=job.complex,
        profile=prof,
    )


def _open(src: str, max_pixels):
    given = max_pixels is not None
    try:
        return io.open_image(
            src,
            max_pixels=max_pixels if given else io.DEFAULT_MAX_PIXELS,
            max_stored_pixels=max_pixels if given else io.DEFAULT_MAX_STORED_PIXELS,
        )
    except (FileNotFoundError, ValueError, ImportError) as exc:
        raise JobError(str(exc)) from None


def _check_stored(src: str, shape, max_pixels) -> None:
    """The guard `io.open_image` applies to a TIFF header's claimed size, for the
    streaming path's own TIFF reader."""
    limit = max_pixels if max_pixels is not None else io.DEFAULT_MAX_STORED_PIXELS
    pixels = int(shape[0]) * int(shape[1])
    if pixels > limit:
        dims = "x".join(str(int(n)) for n in shape)
        raise JobError(
            f"input {src!r} claims {dims} = {pixels:,} pixels, more than "
            f"max_stored_pixels={limit:,}; if that is right, pass a larger "
            f"limit (--max-pixels {pixels} on the command line)"
        )


def _stream_job(src, dst, held, rows, kernel, **options) -> dict | None:
    """`convolve_file` through the streaming band path (`fftconv._stream`) when it can
    run the job (a separable kernel, 'same' mode, photo dtypes), else None (after
    closing `rows`, the path's own reader of `src`, or None to read ``held[0]``, the
    image, which a run that streams removes from `held` once it is read)."""
    res = None
    try:
        res = _stream_run(src, dst, held, rows, kernel, **options)
    finally:
        if res is None and rows is not None:
            rows.close()
    return res


def stream_plan(
    shape,
    in_dtype,
    kernel,
    *,
    mode="same",
    boundary="symmetric",
    fillvalue=0.0,
    correlate=False,
    threads=None,
    dtype=None,
):
    """The `fftconv._stream.StreamPlan` `convolve_file` follows for an image of `shape`
    and `in_dtype` with `method='auto'`, or None when the job runs in tiles."""
    from . import _stream

    shape, in_dtype = tuple(shape), np.dtype(in_dtype)
    req = _dtype_choice(dtype)
    if len(shape) not in (2, 3) or kernel.ndim != 2 or (req is not None and req.kind == "c"):
        return None
    out_dtype = _out_dtype(req, in_dtype, np.dtype(np.float32))
    channels = shape[2] if len(shape) == 3 else 0
    ck = None
    if channels in (2, 4):
        ck = np.moveaxis(_channel_kernel(kernel, channels, correlate), -1, 0)
    try:
        return _stream.plan_stream(
            shape,
            in_dtype,
            kernel,
            mode=mode,
            boundary=boundary,
            fillvalue=fillvalue,
            correlate=correlate,
            out_dtype=out_dtype,
            threads=normalize_threads(threads),
            channel_kernels=ck,
        )
    except (ValueError, TypeError) as exc:
        raise JobError(str(exc)) from None


def _stream_run(
    src,
    dst,
    held,
    rows,
    kernel,
    *,
    mode,
    boundary,
    fillvalue,
    correlate,
    threads,
    dtype,
    max_memory,
    force,
    progress,
):
    from . import _stream

    image = held[0]
    shape = tuple(rows.shape if rows is not None else image.shape)
    in_dtype = np.dtype(rows.dtype if rows is not None else image.dtype)
    plan = stream_plan(
        shape,
        in_dtype,
        kernel,
        mode=mode,
        boundary=boundary,
        fillvalue=fillvalue,
        correlate=correlate,
        threads=min(normalize_threads(threads), default_threads()),
        dtype=dtype,
    )
    if plan is None:
        return None
    _capped_threads(threads)  # the word FileJob would say, said once
    out_dtype = plan.out_dtype
    encoded = dst.lower().endswith((".png", ".jpg", ".jpeg"))
    in_memory = int(np.prod(shape)) * out_dtype.itemsize if encoded else 0
    unit = rows.unit if rows is not None else 1
    if _stream.stream_memory(plan, unit) > _budget(parse_memory(max_memory), in_memory):
        return None
    try:
        out = io.create_output(
            dst,
            shape,
            out_dtype,
            force=force,
            chunks=(_stream.ZARR_ROWS, min(shape[1], 1024)) + shape[2:],
        )
    except (OSError, ValueError) as exc:
        raise JobError(str(exc)) from None
    if progress is True:
        progress = _row_progress()
    elif not callable(progress):
        progress = None
    with out:
        t0, c0 = time.perf_counter(), time.process_time()
        held.clear()
        prof = _stream.run_stream(plan, image, out.array, path=src, rows=rows, progress=progress)
        image = None  # read: a decoded input is freed before the output is encoded
        if _stream.written_by_file(out.array):
            # Written with pwrite, not through the mapping: nothing to flush, and
            # the mapping's msync would force the whole file to disk first.
            out.array = None
        t1 = time.perf_counter()
        out.commit()
        seconds = time.perf_counter() - t0
    prof.write += time.perf_counter() - t1  # encoding PNG/JPEG, finishing the file
    prof.wall = seconds
    prof.cpu = time.process_time() - c0
    return dict(
        plan=plan,
        seconds=seconds,
        pixels=shape[0] * shape[1],
        shape=shape,
        dtype=out_dtype,
        complex=False,
        profile=prof,
    )


def _row_progress():
    """A progress(done, total) callable drawing a tqdm bar on runs longer than a second."""
    state = {"t0": time.perf_counter()}

    def update(done, total):
        bar = state.get("bar")
        if bar is None:
            if time.perf_counter() - state["t0"] < 1.0:
                return  # no bar in the first second: a short run imports no tqdm
            try:
                from tqdm import tqdm
            except ImportError:
                state["bar"] = bar = False
            else:
                state["bar"] = bar = tqdm(total=total, unit="row", leave=False, desc="fftconv")
        if bar:
            bar.update(done - bar.n)
            if done >= total:
                bar.close()

    return update
