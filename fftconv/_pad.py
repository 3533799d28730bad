"""Boundary padding into preallocated buffers.

Padding is computed from an index map per axis (which source sample each
padded position copies), so pads wider than the image repeat exactly as
numpy.pad does, and a padded array is written straight into the buffer an
executor transforms: no intermediate padded copy.
"""

from __future__ import annotations

import numpy as np


def source_index(positions: np.ndarray, n: int, boundary: str) -> np.ndarray:
    """Index into an axis of length `n` that padded position `positions` copies.

    `positions` count from the first real sample (negative before it). Not
    defined for 'fill', whose padding copies no sample.

    >>> source_index(np.arange(-3, 7), 4, "symmetric")
    array([2, 1, 0, 0, 1, 2, 3, 3, 2, 1])
    >>> source_index(np.arange(-3, 7), 4, "mirror")
    array([3, 2, 1, 0, 1, 2, 3, 2, 1, 0])
    """
    i = np.asarray(positions, dtype=np.int64)
    if boundary == "wrap":
        return i % n
    if boundary == "nearest":
        return np.clip(i, 0, n - 1)
    if boundary == "symmetric":
        j = i % (2 * n)
        return np.where(j < n, j, 2 * n - 1 - j)
    if boundary == "mirror":
        if n == 1:
            return np.zeros_like(i)
        j = i % (2 * n - 2)
        return np.where(j < n, j, 2 * n - 2 - j)
    raise ValueError(f"no index map for boundary {boundary!r}")


def pad_into(dst, src, axes, pads, boundary: str, fillvalue=0) -> None:
    """Write `src` padded by `pads` on `axes` into the leading corner of `dst`.

    `dst` has ``src.shape[a] + pb + pa`` samples (or more; the rest is left
    untouched) on each axis `a` of `axes`, and `src`'s size elsewhere.
    Axes are padded one after the other, each reading the samples already
    written, so corners match numpy.pad.
    """
    region = [slice(0, s) for s in src.shape]
    for a, (pb, _) in zip(axes, pads):
        region[a] = slice(pb, pb + src.shape[a])
    dst[tuple(region)] = src
    for a, (pb, pa) in zip(axes, pads):
        n = src.shape[a]
        if pb == 0 and pa == 0:
            continue
        total = n + pb + pa
        if boundary == "fill":
            for sl in (slice(0, pb), slice(pb + n, total)):
                region[a] = sl
                dst[tuple(region)] = fillvalue
        else:
            positions = np.concatenate([np.arange(-pb, 0), np.arange(n, n + pa)])
            take = source_index(positions, n, boundary) + pb
            where = np.concatenate([np.arange(0, pb), np.arange(pb + n, total)])
            region[a] = take
            block = dst[tuple(region)]
            region[a] = where
            dst[tuple(region)] = block
        region[a] = slice(0, total)


def padded(src, axes, pads, boundary: str, fillvalue=0, dtype=None) -> np.ndarray:
    """A new array holding `src` padded; for small arrays and references."""
    shape = list(src.shape)
    for a, (pb, pa) in zip(axes, pads):
        shape[a] += pb + pa
    dst = np.empty(shape, dtype=dtype or src.dtype)
    pad_into(dst, src, axes, pads, boundary, fillvalue)
    return dst
