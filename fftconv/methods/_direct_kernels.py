"""Compiled (numba) row kernels for 2-D direct and separable convolution.

This module imports numba; import it only through `fftconv.methods.direct.kernels()`,
which returns None when numba is missing so that fftconv works without it.

Every kernel works on a band of output rows ``[i0, i1)`` of one 2-D image and
is compiled with ``nogil=True``, so the executors run bands on threads of
their own pool (no numba threading layer: calls from several Python threads,
or from a forked child, are safe).  ``cache=True`` writes the compiled machine
code to numba's on-disk cache (``__pycache__`` beside this file, or numba's
user-wide cache directory when that is not writable, or ``NUMBA_CACHE_DIR``),
so compiling is paid once per machine, not once per process.

Geometry, shared by all kernels, in *correlation* form (the executors flip
convolution kernels): output ``out[i, j] = sum_{r,c} w[r, c] * P[i + r, j + c]``
where ``P`` is the image padded in its boundary mode.  ``P`` is never built:
``rowmap[p]`` and ``colmap[q]`` give the image row / column that padded row
``p`` / column ``q`` copies, or -1 for the fill value.  Output columns
``[jl, jr)`` read only real columns ``j + c - px`` and run as plain vectorised
loops; the few border columns go through ``colmap``.

Only the floating-point contraction flag is set (fused multiply-add):
NaN and infinity propagate exactly as the written sums say.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_FLAGS = {"contract"}
#: Output columns accumulated at once: the accumulator stays in L1 cache.
CHUNK = 1024


@njit(nogil=True, cache=True, fastmath=_FLAGS)
def _taps_row(acc, src, w, r, kw, n):
    """acc[j] += sum_c w[r, c] * src[j + c] for j in range(n), four taps per pass.

    Indices start at 0 and the shifted rows are separate views, so every index
    is provably non-negative: numba then emits no wraparound test and LLVM
    vectorises the loops.
    """
    c = 0
    while c + 4 <= kw:
        w0 = w[r, c]
        w1 = w[r, c + 1]
        w2 = w[r, c + 2]
        w3 = w[r, c + 3]
        s0 = src[c:]
        s1 = src[c + 1:]
        s2 = src[c + 2:]
        s3 = src[c + 3:]
        for j in range(n):
            acc[j] += w0 * s0[j] + w1 * s1[j] + w2 * s2[j] + w3 * s3[j]
        c += 4
    left = kw - c
    if left == 3:
        w0 = w[r, c]
        w1 = w[r, c + 1]
        w2 = w[r, c + 2]
        s0 = src[c:]
        s1 = src[c + 1:]
        s2 = src[c + 2:]
        for j in range(n):
            acc[j] += w0 * s0[j] + w1 * s1[j] + w2 * s2[j]
    elif left == 2:
        w0 = w[r, c]
        w1 = w[r, c + 1]
        s0 = src[c:]
        s1 = src[c + 1:]
        for j in range(n):
            acc[j] += w0 * s0[j] + w1 * s1[j]
    elif left == 1:
        w0 = w[r, c]
        s0 = src[c:]
        for j in range(n):
            acc[j] += w0 * s0[j]


@njit(nogil=True, cache=True, fastmath=_FLAGS)
def _border_row(acc, row, w, r, kw, colmap, fill, ja, jb, base):
    """The border outputs [ja, jb): each tap's column through `colmap`."""
    for j in range(ja, jb):
        s = acc[j - base]
        for c in range(kw):
            q = colmap[j + c]
            s += w[r, c] * (row[q] if q >= 0 else fill)
        acc[j - base] = s


@njit(nogil=True, cache=True, fastmath=_FLAGS)
def direct_rows(a, w, out, rowmap, colmap, fill, px, jl, jr, i0, i1):
    """Correlate `a` with `w` into output rows [i0, i1) of `out`.

    `fill` is a length-1 array holding the fill value; `px` the padding before
    column 0; `[jl, jr)` the output columns whose taps all read real columns.
    """
    kh, kw = w.shape
    wo = out.shape[1]
    acc = np.empty(min(CHUNK, wo), out.dtype)
    fv = fill[0]
    for i in range(i0, i1):
        for j0 in range(0, wo, CHUNK):
            j1 = min(j0 + CHUNK, wo)
            acc[: j1 - j0] = 0
            ja = min(max(j0, jl), j1)
            jb = max(min(j1, jr), ja)
            for r in range(kh):
                p = rowmap[i + r]
                if p < 0:
                    for j in range(j0, j1):
                        s = acc[j - j0]
                        for c in range(kw):
                            s += w[r, c] * fv
                        acc[j - j0] = s
                    continue
                row = a[p]
                if jb > ja:
                    # Output j (acc[j - j0]) reads row[j + c - px].
                    _taps_row(acc[ja - j0:], row[ja - px:], w, r, kw, jb - ja)
                _border_row(acc, row, w, r, kw, colmap, fv, j0, ja, j0)
                _border_row(acc, row, w, r, kw, colmap, fv, jb, j1, j0)
            out[i, j0:j1] = acc[: j1 - j0]


@njit(nogil=True, cache=True, fastmath={"contract", "reassoc"})
def _nonfinite(x, n):
    """True when x[:n] holds a NaN or an infinity (x - x is 0 only for finite x)."""
    s = x[0] - x[0]
    for j in range(n):
        s += x[j] - x[j]
    return s != s


@njit(nogil=True, cache=True, fastmath=_FLAGS)
def separable_rows(a, cols, rows, out, rowmap, colmap, fill, px, jl, jr, i0, i1):
    """Sum over factors f of (column pass with cols[f], then row pass with rows[f]).

    Output rows [i0, i1) of `out`.  Returns True when an output is NaN or
    infinite: the factored sum need not propagate non-finite samples exactly
    as the 2-D sum does, so the caller recomputes those rows directly.
    """
    rank, kh = cols.shape
    kw = rows.shape[1]
    w = a.shape[1]
    wo = out.shape[1]
    v = np.empty(w, out.dtype)
    acc = np.empty(wo, out.dtype)
    rw = np.empty((1, kw), out.dtype)
    fv = fill[0]
    bad = False
    for i in range(i0, i1):
        acc[:] = 0
        for f in range(rank):
            v[:] = 0
            vfill = fv - fv
            for r in range(kh):
                cr = cols[f, r]
                vfill += cr * fv
                p = rowmap[i + r]
                if p < 0:
                    for x in range(w):
                        v[x] += cr * fv
                else:
                    row = a[p]
                    for x in range(w):
                        v[x] += cr * row[x]
            rw[0, :] = rows[f, :]
            ja = min(max(0, jl), wo)
            jb = max(min(wo, jr), ja)
            if jb > ja:
                _taps_row(acc[ja:], v[ja - px:], rw, 0, kw, jb - ja)
            _border_row(acc, v, rw, 0, kw, colmap, vfill, 0, ja, 0)
            _border_row(acc, v, rw, 0, kw, colmap, vfill, jb, wo, 0)
        out[i, :] = acc
        if _nonfinite(acc, wo):
            bad = True
    return bad
