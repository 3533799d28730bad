"""Convolution and correlation of Dask arrays, chunk by chunk through fftconv's planner.

Every output chunk is the 'valid' convolution of its input chunk plus the halo
the kernel needs, computed by a `fftconv.Convolver` (so the planner picks
direct, separable, FFT or overlap-add per chunk, and the kernel's spectrum and
the FFTW plans are kept between chunks of one worker process). The boundary is
applied once, to the whole array, so it holds at the array's true edges and
never at chunk edges.

This module is optional (``pip install fftconv[dask]``); ``import fftconv``
does not import it, nor Dask.
"""

from __future__ import annotations

import math
import os
import warnings
from collections import OrderedDict
from typing import NamedTuple

import dask
import dask.array as da
import numpy as np
from dask.array.overlap import ensure_minimum_chunksize, overlap

from . import _fork
from ._convolver import Convolver
from ._pad import source_index
from ._problem import (
    as_input,
    default_threads,
    make_problem,
    normalize_method,
    normalize_threads,
)

__all__ = [
    "CacheInfo",
    "ChunkWarning",
    "cache_info",
    "convolve",
    "convolve_file",
    "correlate",
    "is_complete",
    "match_template",
    "open_image",
    "to_zarr",
]

#: Halo overhead (samples read per sample written, minus one) above which a
#: chunking gets a suggestion.
WASTE_WARNING = 0.5

#: Convolvers kept per worker process (one per kernel and fixed arguments).
MAX_CONVOLVERS = 16

#: The attribute a finished output store carries (see `convolve_zarr`).
COMPLETE_ATTR = "fftconv_complete"


class ChunkWarning(UserWarning):
    """A chunking changed (chunks smaller than the halo) or worth changing (halo overhead)."""


# --------------------------------------------------------------------------- the per-worker cache

_lock = _fork.lock()
_convolvers: OrderedDict = OrderedDict()
_stats = {"hits": 0, "misses": 0}


class CacheInfo(NamedTuple):
    """Hits and misses of a process's Convolver cache, and how many it holds."""

    hits: int
    misses: int
    size: int


def cache_info() -> CacheInfo:
    """Hits and misses of this process's Convolver cache (one entry per kernel).

    A miss builds a `fftconv.Convolver`; a hit reuses its plans and kernel
    spectra. Run it on the workers with ``client.run(fftconv.dask.cache_info)``.
    """
    with _lock:
        return CacheInfo(_stats["hits"], _stats["misses"], len(_convolvers))


def _clear_cache() -> None:
    with _lock:
        _convolvers.clear()
        _stats.update(hits=0, misses=0)


def _convolver(kernel: np.ndarray, axes, correlate: bool, method: str, threads: int) -> Convolver:
    """The Convolver of this process for `kernel` and the fixed arguments."""
    key = (
        dask.base.tokenize(kernel),
        kernel.shape,
        kernel.dtype.str,
        axes,
        correlate,
        method,
        threads,
    )
    with _lock:
        conv = _convolvers.get(key)
        if conv is not None:
            _convolvers.move_to_end(key)
            _stats["hits"] += 1
            return conv
        _stats["misses"] += 1
        conv = Convolver(
            kernel, "valid", axes=axes, method=method, threads=threads, correlate=correlate
        )
        _convolvers[key] = conv
        while len(_convolvers) > MAX_CONVOLVERS:
            _convolvers.popitem(last=False)
        return conv


def _valid_block(block, kernel, *, axes, correlate, method, threads):
    """One output chunk: the 'valid' result of its padded input chunk."""
    return _convolver(kernel, axes, correlate, method, threads)(block)


def _whole(block, kernel, **kw):
    """The whole result at once ('valid' with an image smaller than the kernel)."""
    from . import api

    return (api.correlate if kw.pop("correlate") else api.convolve)(block, kernel, "valid", **kw)


# --------------------------------------------------------------------------- the graph


def _pad_axis(x, axis: int, before: int, after: int, boundary: str, fillvalue):
    """`x` padded on one axis as fftconv pads (`fftconv._pad`'s index maps, so pads
    wider than the array repeat exactly as in memory)."""
    if before == 0 and after == 0:
        return x
    n = x.shape[axis]
    if boundary == "fill":
        widths = [(0, 0)] * x.ndim
        widths[axis] = (before, after)
        return da.pad(x, widths, mode="constant", constant_values=fillvalue)
    parts = []
    for positions in (np.arange(-before, 0), None, np.arange(n, n + after)):
        if positions is None:
            parts.append(x)
        elif positions.size:
            idx = source_index(positions, n, boundary)
            parts.append(da.take(x, idx, axis=axis))
    return da.concatenate(parts, axis=axis)


def _halo(problem, d: int, k: int) -> tuple[int, int]:
    """Samples each output chunk reads before and after its own input chunk on axis `d`.

    'same' reads the pads themselves, so output chunks are the input's chunks;
    'full' and 'valid' split ``k - 1`` evenly."""
    pb, pa = problem.pads()[problem.axes.index(d)]
    if problem.mode == "same":
        return pb, pa
    hb = (k - 1) // 2
    return hb, k - 1 - hb


def _axis_chunks(chunks, hb: int, ha: int, pb: int, pa: int):
    """Input chunks on one axis that every halo fits in (dask's overlap needs each
    chunk at least as large as the halo it gives), and the output chunks they give."""
    chunks = tuple(chunks)
    if len(chunks) > 1:
        need = max(hb, ha, 1)
        chunks = (sum(chunks),) if need > sum(chunks) else ensure_minimum_chunksize(need, chunks)
    # an edge output chunk shrinks by its missing halo ('valid'): merge until positive
    while len(chunks) > 1 and chunks[0] + pb - hb < 1:
        chunks = (chunks[0] + chunks[1],) + chunks[2:]
    while len(chunks) > 1 and chunks[-1] + pa - ha < 1:
        chunks = chunks[:-2] + (chunks[-2] + chunks[-1],)
    if len(chunks) == 1:
        return chunks, (chunks[0] + pb + pa - (hb + ha),)
    out = (chunks[0] + pb - hb,) + chunks[1:-1] + (chunks[-1] + pa - ha,)
    return chunks, out


def _suggest(problem, out_chunks) -> None:
    """Warn when the halos read more than WASTE_WARNING of the output again."""
    read = written = 1.0
    for d, k in zip(problem.axes, problem.kernel_shape):
        c = out_chunks[d]
        read *= sum(c) + len(c) * (k - 1)
        written *= sum(c)
    waste = read / written - 1
    if waste <= WASTE_WARNING:
        return
    # per axis, a chunk whose halo costs about a quarter in all
    grow = 1.25 ** (1 / len(problem.axes)) - 1
    better = []
    for d, k in zip(problem.axes, problem.kernel_shape):
        want = math.ceil((k - 1) / grow / 256) * 256
        better.append(min(max(want, max(out_chunks[d])), sum(out_chunks[d])))
    warnings.warn(
        f"chunks {tuple(max(out_chunks[d]) for d in problem.axes)} on axes {problem.axes} "
        f"are small for a {'x'.join(map(str, problem.kernel_shape))} kernel: the halos read "
        f"{waste:.0%} more samples than the chunks hold; chunks of about "
        f"{tuple(better)} would read about 25% more (x.rechunk(...))",
        ChunkWarning,
        stacklevel=5,
    )


def _run(x, kernel, mode, boundary, fillvalue, axes, channel_axis, method, threads, correlate):
    if not isinstance(x, da.Array):
        raise TypeError(
            f"x must be a dask array; got {type(x).__name__} (use fftconv.convolve for "
            "arrays in memory, or dask.array.from_array(x, chunks=...))"
        )
    if isinstance(kernel, da.Array):
        kernel = kernel.compute()
    kernel = as_input(kernel, "kernel")
    method = normalize_method(method)
    threads = 1 if threads is None else normalize_threads(threads)
    if x.ndim == 0 or 0 in x.shape:
        raise ValueError(
            f"x must be a non-empty array of at least one dimension; got shape {x.shape}"
        )
    dummy = np.broadcast_to(np.zeros((), x.dtype), x.shape)
    problem, _, k = make_problem(
        dummy, kernel, mode, boundary, fillvalue, axes, channel_axis, correlate
    )
    meta = np.empty((0,) * x.ndim, problem.dtype)
    fixed = dict(correlate=problem.correlate, method=method, threads=threads)
    if problem.swapped:
        # 'valid' with the image smaller than the kernel: a result smaller than the
        # image, computed in one piece.
        ind = "abcdefghijklmnopqrstuvwxyz"[: x.ndim]
        kd = da.from_array(kernel, chunks=kernel.shape)
        return da.blockwise(
            _whole,
            ind,
            x.rechunk(-1),
            ind,
            kd,
            ind.upper()[: kernel.ndim],
            dtype=problem.dtype,
            concatenate=True,
            align_arrays=False,
            meta=meta,
            adjust_chunks={c: (n,) for c, n in zip(ind, problem.out_shape)},
            axes=axes,
            channel_axis=channel_axis,
            **fixed,
        )
    return _graph(x, k, problem, fixed, meta)


def _graph(x, k, problem, fixed, meta):
    nd = x.ndim
    # broadcast non-convolved axes where the kernel is the larger
    shape = problem.batch_shape
    if any(x.shape[d] != shape[d] for d in range(nd) if d not in problem.axes):
        x = da.broadcast_to(
            x, tuple(x.shape[d] if d in problem.axes else shape[d] for d in range(nd))
        )
    x = x.astype(problem.dtype)  # padding with fillvalue, as in memory, in the result dtype

    in_chunks, out_chunks, depth = list(x.chunks), list(x.chunks), {}
    for d, kd, (pb, pa) in zip(problem.axes, problem.kernel_shape, problem.pads()):
        hb, ha = _halo(problem, d, kd)
        in_chunks[d], out_chunks[d] = _axis_chunks(x.chunks[d], hb, ha, pb, pa)
        depth[d] = (hb, ha) if len(in_chunks[d]) > 1 else 0
    if tuple(in_chunks) != x.chunks:
        changed = [d for d in problem.axes if in_chunks[d] != x.chunks[d]]
        warnings.warn(
            f"chunks on axes {tuple(changed)} are smaller than the halo of the "
            f"{'x'.join(map(str, problem.kernel_shape))} kernel; rechunked from "
            f"{tuple(x.chunks[d] for d in changed)} to {tuple(in_chunks[d] for d in changed)}",
            ChunkWarning,
            stacklevel=4,
        )
        x = x.rechunk(tuple(in_chunks))
    _suggest(problem, out_chunks)

    padded_chunks = list(in_chunks)
    for d, (pb, pa) in zip(problem.axes, problem.pads()):
        x = _pad_axis(x, d, pb, pa, problem.boundary, problem.fillvalue)
        c = in_chunks[d]
        padded_chunks[d] = (
            (c[0] + pb + pa,) if len(c) == 1 else (c[0] + pb,) + c[1:-1] + (c[-1] + pa,)
        )
    x = x.rechunk(tuple(padded_chunks))  # the pads join the edge chunks
    if any(depth.values()):
        x = overlap(
            x,
            depth={d: v for d, v in depth.items() if v},
            boundary={d: "none" for d, v in depth.items() if v},
        )

    # The kernel is one key (one per chunk of an axis it has one kernel per
    # sample on, such as per-channel kernels): never copied into every task.
    ind = "abcdefghijklmnopqrstuvwxyz"[:nd]
    kind, kchunks = "", []
    for d in range(nd):
        if d in problem.axes or k.shape[d] == 1:
            kind += ind[d].upper()
            kchunks.append((k.shape[d],))
        else:
            kind += ind[d]
            kchunks.append(x.chunks[d])
    kd = da.from_array(k, chunks=tuple(kchunks))
    return da.blockwise(
        _valid_block,
        ind,
        x,
        ind,
        kd,
        kind,
        dtype=problem.dtype,
        concatenate=True,
        align_arrays=False,
        meta=meta,
        adjust_chunks={ind[d]: out_chunks[d] for d in problem.axes},
        axes=problem.axes,
        **fixed,
    )


# --------------------------------------------------------------------------- public face


def convolve(
    x,
    kernel,
    mode: str = "same",
    boundary: str = "fill",
    fillvalue=0,
    *,
    axes=None,
    channel_axis: int | None = None,
    method: str = "auto",
    threads: int | None = None,
):
    """Convolve a Dask array with a kernel, chunk by chunk; lazy.

    The result equals ``fftconv.convolve(x.compute(), kernel, ...)`` (within
    the project's tolerances): the boundary holds at the array's edges, and
    'same' is centred as scipy.signal.convolve2d centres it, even kernels
    included.

    Parameters
    ----------
    x : dask.array.Array
        The image (or a stack, with batch or channel axes), chunked anyhow.
        Chunks smaller than the kernel's halo are merged (with a
        `ChunkWarning`); chunks whose halos read more than half as many
        samples again as they hold get a `ChunkWarning` naming a better size.
    kernel : array_like
        The kernel, as for `fftconv.convolve` (in memory; it is sent to each
        worker once).
    mode, boundary, fillvalue, axes, channel_axis, method
        As for `fftconv.convolve`; note the default mode here is 'same'.
        `method` applies to every chunk ('auto': the planner decides per chunk).
    threads : int, optional
        FFTW threads per chunk; default 1, as Dask runs chunks in parallel.

    Returns
    -------
    dask.array.Array
        The result, chunked as `x` on the other axes and, for 'same', on the
        convolved axes too; dtype as for `fftconv.convolve`.

    Examples
    --------
    >>> import numpy as np
    >>> import dask.array as da
    >>> import fftconv, fftconv.dask
    >>> image = np.arange(4096.0).reshape(64, 64)
    >>> x = da.from_array(image, chunks=(32, 32))
    >>> y = fftconv.dask.convolve(x, np.ones((3, 4)) / 12, boundary="nearest")
    >>> y.chunks
    ((32, 32), (32, 32))
    >>> np.allclose(y.compute(), fftconv.convolve(image, np.ones((3, 4)) / 12, "same", "nearest"))
    True
    """
    return _run(x, kernel, mode, boundary, fillvalue, axes, channel_axis, method, threads, False)


def correlate(
    x,
    kernel,
    mode: str = "same",
    boundary: str = "fill",
    fillvalue=0,
    *,
    axes=None,
    channel_axis: int | None = None,
    method: str = "auto",
    threads: int | None = None,
):
    """Cross-correlate a Dask array with a kernel; the arguments are `convolve`'s.

    The definition is `fftconv.correlate`'s ('same' centred at ``k // 2``).

    Examples
    --------
    >>> import numpy as np
    >>> import dask.array as da
    >>> import fftconv.dask
    >>> x = da.from_array(np.eye(16)[2], chunks=8)
    >>> y = fftconv.dask.correlate(x, np.array([1.0, 2.0, 3.0]))
    >>> y.compute()[:6]
    array([0., 3., 2., 1., 0., 0.])
    """
    return _run(x, kernel, mode, boundary, fillvalue, axes, channel_axis, method, threads, True)


#: numpy.pad modes of `match_template` (pad_input=True) and fftconv's names for them;
#: the others ('mean', 'median', 'linear_ramp', ...) depend on the whole image.
_TEMPLATE_MODES = {
    "constant": "fill",
    "edge": "nearest",
    "reflect": "mirror",
    "symmetric": "symmetric",
    "wrap": "wrap",
}


def _match_block(block, template, **kw):
    from .template import match_template as match

    return match(block, template, **kw)


def match_template(
    image,
    template,
    pad_input: bool = False,
    mode: str = "constant",
    constant_values=0,
    *,
    mask=None,
    method: str = "auto",
    channel_axis: int | None = None,
):
    """`fftconv.match_template` of a Dask array, chunk by chunk; lazy.

    Each output chunk scores the placements whose windows lie in its input
    chunk plus a halo of the template's size; padding (``pad_input=True``) is
    applied once, at the image's true edges.

    Parameters
    ----------
    image : dask.array.Array
        The image, chunked anyhow (a channel axis is joined into one chunk: the
        score sums over channels).
    template, pad_input, mask, method, channel_axis
        As for `fftconv.match_template`.
    mode : {'constant', 'edge', 'reflect', 'symmetric', 'wrap'}
        numpy.pad's mode for ``pad_input=True`` (the modes that need the whole
        image, such as 'mean', are not available here).
    constant_values : scalar
        The padding value for mode='constant'.

    Returns
    -------
    dask.array.Array
        The scores (as `fftconv.match_template`'s, within its tolerances: each
        chunk centres its own pixels, which changes the rounding only; with
        `mask` or NaN pixels a window counts as flat relative to the largest
        energy of its chunk rather than of the whole image).

    Examples
    --------
    >>> import numpy as np
    >>> import dask.array as da
    >>> import fftconv, fftconv.dask
    >>> image = np.random.default_rng(0).random((60, 50))
    >>> template = image[20:27, 30:35].copy()
    >>> scores = fftconv.dask.match_template(da.from_array(image, chunks=30), template)
    >>> np.unravel_index(int(scores.argmax().compute()), scores.shape)
    (np.int64(20), np.int64(30))
    >>> np.allclose(scores.compute(), fftconv.match_template(image, template))
    True
    """
    from . import template as _template  # noqa: F401  (fails clearly where it is missing)

    if not isinstance(image, da.Array):
        raise TypeError(
            f"image must be a dask array; got {type(image).__name__} (use "
            "fftconv.match_template for arrays in memory)"
        )
    if not isinstance(mode, str) or mode not in _TEMPLATE_MODES:
        raise ValueError(
            f"mode={mode!r} is not one of {', '.join(map(repr, _TEMPLATE_MODES))} "
            "(fftconv.dask pads chunk by chunk; the other numpy.pad modes need "
            "the whole image)"
        )
    tpl = as_input(template, "template")
    nd = image.ndim
    c = None if channel_axis is None else channel_axis % nd
    spatial = [d for d in range(nd) if d != c]
    tshape = [tpl.shape[i] for i in range(tpl.ndim) if tpl.ndim == len(spatial) or i != c]
    if len(tshape) != len(spatial):
        raise ValueError(
            f"template has shape {tpl.shape}; image {image.shape} needs "
            f"{len(spatial)} spatial dimensions"
        )
    x = image if c is None else image.rechunk({c: -1})
    if pad_input:
        fill = np.asarray(constant_values).item()
        for d, m in zip(spatial, tshape):
            x = _pad_axis(x, d, m // 2, m - 1 - m // 2, _TEMPLATE_MODES[mode], fill)
    if any(x.shape[d] < m for d, m in zip(spatial, tshape)):
        raise ValueError(
            f"template {tpl.shape} is larger than image {image.shape}; pass "
            "pad_input=True or a larger image"
        )
    in_chunks, out_chunks, depth = list(x.chunks), list(x.chunks), {}
    for d, m in zip(spatial, tshape):
        hb = (m - 1) // 2
        in_chunks[d], out_chunks[d] = _axis_chunks(x.chunks[d], hb, m - 1 - hb, 0, 0)
        depth[d] = (hb, m - 1 - hb) if len(in_chunks[d]) > 1 else 0
    x = x.rechunk(tuple(in_chunks))
    if any(depth.values()):
        x = overlap(
            x,
            depth={d: v for d, v in depth.items() if v},
            boundary={d: "none" for d, v in depth.items() if v},
        )
    dtype = (
        np.dtype(np.float32) if image.dtype in (np.float16, np.float32) else np.dtype(np.float64)
    )
    ind = "abcdefghijklmnopqrstuvwxyz"[:nd]
    out_ind = "".join(ind[d] for d in spatial)
    td = da.from_array(tpl, chunks=tpl.shape)
    kw = dict(method=method, channel_axis=channel_axis)
    if mask is not None:
        kw["mask"] = dask.delayed(np.asarray(mask))  # one key, as the template
    return da.blockwise(
        _match_block,
        out_ind,
        x,
        ind,
        td,
        ind.upper()[: tpl.ndim],
        dtype=dtype,
        concatenate=True,
        align_arrays=False,
        meta=np.empty((0,) * len(spatial), dtype),
        adjust_chunks={ind[d]: out_chunks[d] for d in spatial},
        **kw,
    )


# --------------------------------------------------------------------------- zarr and files


def is_complete(path) -> bool:
    """Whether `path` is a zarr store that `to_zarr` finished.

    `to_zarr` writes into a temporary store beside `path`, marks it complete
    (the ``fftconv_complete`` attribute, written after every chunk) and only
    then renames it to `path`; a run that fails or is killed leaves no store
    at `path`, or the one that was there before.
    """
    import zarr

    try:
        arr = zarr.open_array(os.fspath(path), mode="r")
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return False
    except Exception as exc:  # zarr's own "nothing here" errors
        if type(exc).__name__ in (
            "GroupNotFoundError",
            "ArrayNotFoundError",
            "NodeTypeValidationError",
        ):
            return False
        raise
    return arr.attrs.get(COMPLETE_ATTR) is True


def _regular(y):
    """`y` with chunks zarr can hold (all equal but a smaller last one, on each axis)."""

    def ok(c):
        return len(c) == 1 or (len(set(c[:-1])) == 1 and c[-1] <= c[0])

    return y if all(map(ok, y.chunks)) else y.rechunk(tuple(max(c) for c in y.chunks))


def to_zarr(y, path, *, force: bool = False, dtype=None, magnitude: bool = False):
    """Compute `y` into a new zarr store at `path`, which appears only when complete.

    Chunks are computed and written in parallel by the current scheduler (a
    `distributed.Client`, when one is active, writes from its workers: `path`
    must then be on a file system they share). The store is written beside
    `path` under a temporary name, marked complete, and renamed into place;
    on any failure (a worker lost for good, an interrupt) the temporary store
    is removed and `path` is left as it was.

    Parameters
    ----------
    y : dask.array.Array
        The result to write (usually `convolve`'s).
    path : str or os.PathLike
        The store, ending in ``.zarr``.
    force : bool
        Replace an existing store at `path` (only once the new one is complete).
    dtype : dtype, optional
        Write in this dtype: integers rounded and clipped (`fftconv.io.cast_to`).
    magnitude : bool
        Write the modulus of complex values.

    Returns
    -------
    pathlib.Path
        `path`.
    """
    from . import io

    if not isinstance(y, da.Array):
        raise TypeError(f"y must be a dask array; got {type(y).__name__}")
    dtype = (
        np.dtype(dtype)
        if dtype is not None
        else (np.empty(0, y.dtype).real.dtype if magnitude and y.dtype.kind == "c" else y.dtype)
    )
    if dtype != y.dtype or magnitude:
        y = y.map_blocks(io.cast_to, dtype, magnitude, dtype=dtype)
    y = _regular(y)
    with io.create_output(
        path, y.shape, dtype, force=force, chunks=tuple(c[0] for c in y.chunks)
    ) as dst:
        da.store(y, dst.array, lock=False)
        dst.array.attrs[COMPLETE_ATTR] = True
    return dst.path


_open_lock = _fork.lock()
_open_images: OrderedDict = OrderedDict()


def _read_region(block_info=None, *, path, stamp):
    """One chunk of an image file, read in the worker (each process opens the file once)."""
    from . import io

    key = (path, stamp)
    with _open_lock:
        src = _open_images.get(key)
        if src is None:
            src = io.open_image(path, max_pixels=None)
            _open_images[key] = src
            while len(_open_images) > 4:
                _open_images.popitem(last=False)
    loc = block_info[None]["array-location"]
    return np.asarray(src[tuple(slice(a, b) for a, b in loc)])


def open_image(path, chunks=None):
    """An image file as a Dask array, read chunk by chunk where it is used.

    A zarr store is opened with `dask.array.from_zarr` (chunks default to the
    store's); a TIFF (tiled, striped or contiguous, BigTIFF included) is read
    region by region through `fftconv.io.open_image` in each worker (chunks
    default to 1024 rows and columns, all channels). Nothing is read now.
    """
    from . import io

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"input {path!r} does not exist")
    if path.lower().rstrip("/").endswith(".zarr"):
        import zarr

        arr = zarr.open_array(path, mode="r")
        return da.from_zarr(arr, chunks=chunks if chunks is not None else arr.chunks)
    if not path.lower().endswith((".tif", ".tiff")):
        raise ValueError(f"input {path!r}: a Dask run reads .zarr stores and .tif/.tiff files")
    shape, dtype = io.probe(path, max_pixels=None)
    if chunks is None:
        chunks = tuple(min(s, 1024) for s in shape[:2]) + tuple(shape[2:])
    st = os.stat(path)
    return da.map_blocks(
        _read_region,
        dtype=dtype,
        chunks=da.core.normalize_chunks(chunks, shape),
        meta=np.empty((0,) * len(shape), dtype),
        path=os.path.abspath(path),
        stamp=(st.st_mtime_ns, st.st_size),
    )


class _Scheduler:
    """``None`` (Dask's current scheduler), ``'local'`` (an in-process LocalCluster of
    threads, closed at the end) or a scheduler address (a Client, closed at the end)."""

    def __init__(self, scheduler):
        self.scheduler, self.client, self.cluster = scheduler, None, None

    def __enter__(self):
        if self.scheduler is None:
            return self
        import distributed

        if self.scheduler == "local":
            with warnings.catch_warnings():  # "port 8787 is already in use" and the like
                warnings.simplefilter("ignore", UserWarning)
                self.cluster = distributed.LocalCluster(
                    n_workers=1,
                    processes=False,
                    threads_per_worker=default_threads(),
                    dashboard_address=None,
                )
            self.client = distributed.Client(self.cluster, set_as_default=False)
        else:
            try:
                self.client = distributed.Client(
                    self.scheduler, set_as_default=False, timeout="10s"
                )
            except (OSError, TimeoutError, ValueError) as exc:
                raise ConnectionError(
                    f"cannot reach the Dask scheduler at {self.scheduler!r} ({exc}); give an "
                    "address such as tcp://host:8786, or 'local'"
                ) from None
        self._ctx = self.client.as_current()
        self._ctx.__enter__()
        self._cfg = dask.config.set(scheduler=self.client)
        self._cfg.__enter__()
        return self

    def __exit__(self, *exc):
        if self.client is not None:
            self._cfg.__exit__(*exc)
            self._ctx.__exit__(*exc)
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
        return False


def convolve_file(
    inp,
    out,
    kernel,
    *,
    mode: str = "same",
    boundary: str = "symmetric",
    fillvalue=0,
    method: str = "auto",
    correlate: bool = False,
    dtype=None,
    force: bool = False,
    scheduler=None,
    chunks=None,
    threads: int | None = None,
) -> dict:
    """Convolve (or correlate) a zarr store or TIFF into a zarr store, on Dask.

    The image is never in one place: each worker reads its chunks plus halos,
    convolves them and writes its output chunks (`open_image`, `convolve`,
    `to_zarr`). `out` appears only when complete (see `to_zarr`).

    Parameters
    ----------
    inp : str or os.PathLike
        A ``.zarr`` store or a ``.tif``/``.tiff`` file: rows x columns, or rows x
        columns x channels (each channel convolved; an alpha channel, the last
        of 2 or 4, copied unchanged).
    out : str or os.PathLike
        The output ``.zarr`` store.
    kernel : str or array_like
        A 2-d kernel, or its spec (``'gaussian:sigma=8'``, ``'box:31'``, a .npy
        file: `fftconv.kernels.parse_spec`).
    mode, boundary, fillvalue, method, correlate
        As for `fftconv.convolve` (default boundary 'symmetric', as the command's).
    dtype : dtype or 'same', optional
        Output dtype; default the input's for uint8 and uint16 images (rounded and
        clipped), else the dtype computed in (float32 for photos; complex results
        are written as their modulus).
    force : bool
        Replace an existing `out`.
    scheduler : None, 'local' or str
        None: Dask's current scheduler (an active `distributed.Client` included);
        'local': a LocalCluster of threads in this process; else the address of a
        `distributed` scheduler (``tcp://host:8786``), whose workers must see
        `inp` and `out` at the same paths.
    chunks : tuple of int, optional
        Chunks to compute in (default: the store's, or 1024 x 1024 for TIFF).
    threads : int, optional
        FFTW threads per chunk (default 1: Dask runs chunks in parallel; 'local'
        runs one thread per core this process may use).

    Returns
    -------
    dict
        ``shape``, ``dtype``, ``chunks`` and ``seconds`` of the run.
    """
    import time

    from .jobs import FileJob, as_kernel

    if not os.fspath(out).lower().rstrip("/").endswith(".zarr"):
        raise ValueError(f"out {os.fspath(out)!r}: a Dask run writes .zarr stores")
    x = open_image(inp, chunks)
    # the command's rules: compute dtype, alpha channel, output dtype
    job = FileJob(
        x.shape,
        x.dtype,
        as_kernel(kernel),
        mode=mode,
        boundary=boundary,
        fillvalue=fillvalue,
        correlate=correlate,
        method=method,
        dtype=dtype,
    )
    if os.path.exists(out) and os.path.samefile(inp, out):
        raise ValueError(f"out {os.fspath(out)!r} is inp: fftconv never modifies its input")
    y = _run(
        x.astype(job.compute),
        job.kernel,
        mode,
        boundary,
        fillvalue,
        None,
        job.channel_axis,
        method,
        threads,
        correlate,
    )
    t0 = time.perf_counter()
    with _Scheduler(scheduler):
        path = to_zarr(y, out, force=force, dtype=job.out_dtype, magnitude=job.complex)
    return dict(
        path=path,
        shape=y.shape,
        dtype=job.out_dtype,
        chunks=y.chunksize,
        seconds=time.perf_counter() - t0,
    )
