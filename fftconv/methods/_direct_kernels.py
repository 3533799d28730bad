"""Compiled (numba) row kernels for 2-D direct and separable convolution.

This module imports numba; import it only through `fftconv.methods.rows.kernels()`,
which returns None when numba is missing so that fftconv works without it.

Every kernel works on a band of output rows ``[i0, i1)`` of one 2-D image and
is compiled with the settings of `_jit` (``nogil``: the executors run bands
on threads of their own pool; ``cache``: the machine code goes to numba's
on-disk cache, ``__pycache__`` beside this file, or numba's user-wide cache
directory when that is not writable, or ``NUMBA_CACHE_DIR``, so compiling is
paid once per machine, not once per process).

Geometry, shared by all kernels, in *correlation* form (the executors flip
convolution kernels): output ``out[i, j] = sum_{r,c} w[r, c] * P[i + r, j + c]``
where ``P`` is the image padded in its boundary mode.  ``P`` is never built:
``rowmap[p]`` and ``colmap[q]`` give the image row / column that padded row
``p`` / column ``q`` copies, or -1 for the fill value.  Output columns
``[jl, jr)`` read only real columns ``j + c - px`` and run as plain vectorised
loops; the few border columns go through ``colmap``.

Only the floating-point contraction flag is set (fused multiply-add, `_jit.FASTMATH`):
NaN and infinity propagate exactly as the written sums say.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._direct_taps import taps_row as _taps_row
from ._direct_taps import taps_row2 as _taps_row2
from ._direct_taps import taps_row4 as _taps_row4
from ._jit import FASTMATH, JIT

#: Output columns accumulated at once: the accumulator stays in L1 cache.
CHUNK = 1024


@njit(**JIT, fastmath=FASTMATH, inline="always")
def border_row(acc, row, w, r, kw, colmap, fill, ja, jb, base):
    """The border outputs [ja, jb): each tap's column through `colmap`."""
    for j in range(ja, jb):
        s = acc[j - base]
        for c in range(kw):
            q = colmap[j + c]
            s += w[r, c] * (row[q] if q >= 0 else fill)
        acc[j - base] = s


@njit(**JIT, fastmath=FASTMATH, inline="always")
def _fill_row(acc, w, r, kw, fv, n):
    """Row r of `w` applied to a padded row that is all fill value."""
    for j in range(n):
        s = acc[j]
        for c in range(kw):
            s += w[r, c] * fv
        acc[j] = s


@njit(**JIT, fastmath=FASTMATH)
def direct_rows(a, w, out, rowmap, colmap, fill, px, jl, jr, i0, i1):
    """Correlate `a` with `w` into output rows [i0, i1) of `out`.

    `fill` is a length-1 array holding the fill value; `px` the padding before
    column 0; `[jl, jr)` the output columns whose taps all read real columns.
    Output rows are done four at a time: padded row ``i + q`` is kernel row
    ``q - o`` of output row ``i + o``, so each image row is loaded once for
    every output row that needs it (four, two or one at a time, as many as
    the kernel has rows for).  Interior columns are accumulated in chunks of
    an L1-resident buffer; border columns straight in `out`.
    """
    kh, kw = w.shape
    wo = out.shape[1]
    # rows 4 KiB + 64 B apart: stores to one and loads from another must not
    # share their low 12 address bits (4K aliasing stalls the loads)
    acc = np.empty((4, CHUNK + 64 // out.itemsize), out.dtype)
    fv = fill[0]
    i = i0
    while i < i1:
        nout = min(4, i1 - i)
        for ja in range(jl, jr, CHUNK):
            n = min(CHUNK, jr - ja)
            for o in range(nout):
                row_acc = acc[o]
                for j in range(n):  # explicit loops: numba's slice assignment is slow
                    row_acc[j] = 0
            for q in range(kh + nout - 1):
                olo = max(0, q - kh + 1)
                ohi = min(nout - 1, q)
                p = rowmap[i + q]
                if p < 0:
                    for o in range(olo, ohi + 1):
                        _fill_row(acc[o], w, q - o, kw, fv, n)
                    continue
                src = a[p][ja - px :]
                if ohi - olo == 3:
                    _taps_row4(acc, src, w, q, kw, n)
                    continue
                o = olo
                while o <= ohi:
                    if o < ohi:
                        _taps_row2(acc[o], acc[o + 1], src, w, q - o, q - o - 1, kw, n)
                        o += 2
                    else:
                        _taps_row(acc[o], src, w, q - o, kw, n)
                        o += 1
            for o in range(nout):
                dst = out[i + o][ja:]
                row_acc = acc[o]
                for j in range(n):
                    dst[j] = row_acc[j]
        for o in range(nout):
            dst = out[i + o]
            for j in range(jl):
                dst[j] = 0
            for j in range(jr, wo):
                dst[j] = 0
            for r in range(kh):
                p = rowmap[i + o + r]
                if p < 0:
                    _fill_row(dst, w, r, kw, fv, jl)
                    _fill_row(dst[jr:], w, r, kw, fv, wo - jr)
                else:
                    row = a[p]
                    border_row(dst, row, w, r, kw, colmap, fv, 0, jl, 0)
                    border_row(dst, row, w, r, kw, colmap, fv, jr, wo, 0)
        i += nout


@njit(**JIT, inline="always")
def clip(x, lo, hi):
    """`x` clipped to [lo, hi], NaN as `lo`: by IEEE comparisons, not ``min(max(x, lo),
    hi)``, whose NaN depends on the arguments' order and on numba's version (numba 0.68.1
    follows CPython, ``max(nan, lo)`` is NaN; the numba this was first written on gave
    `lo`)."""
    return (x if x <= hi else hi) if x >= lo else lo


@njit(**JIT, fastmath=FASTMATH | {"reassoc"})
def nonfinite(x, n):
    """True when x[:n] holds a NaN or an infinity (x - x is 0 only for finite x)."""
    s = x[0] - x[0]
    for j in range(n):
        s += x[j] - x[j]
    return s != 0


@njit(**JIT, fastmath=FASTMATH)
def column_pass1(v, a, cols, f, rowmap, i, kh, w, fv):
    """v[x] = sum_r cols[f, r] * P[i + r, x] for one output row (fill rows allowed)."""
    for x in range(w):
        v[x] = 0
    r = 0
    while r < kh:
        if r + 4 <= kh and min(rowmap[i + r : i + r + 4]) >= 0:
            c0 = cols[f, r]
            c1 = cols[f, r + 1]
            c2 = cols[f, r + 2]
            c3 = cols[f, r + 3]
            row0 = a[rowmap[i + r]]
            row1 = a[rowmap[i + r + 1]]
            row2 = a[rowmap[i + r + 2]]
            row3 = a[rowmap[i + r + 3]]
            for x in range(w):
                v[x] += c0 * row0[x] + c1 * row1[x] + c2 * row2[x] + c3 * row3[x]
            r += 4
            continue
        cr = cols[f, r]
        p = rowmap[i + r]
        if p < 0:
            for x in range(w):
                v[x] += cr * fv
        else:
            row = a[p]
            for x in range(w):
                v[x] += cr * row[x]
        r += 1


@njit(**JIT, fastmath=FASTMATH)
def column_pass2(v, a, cols, f, rowmap, i, kh, w):
    """Rows 0 and 1 of `v`: the column pass for output rows i and i + 1 together,
    four kernel taps per pass, each image row loaded once for both (no fill rows)."""
    r = 0
    while r < kh:
        if r + 4 <= kh:
            c0 = cols[f, r]
            c1 = cols[f, r + 1]
            c2 = cols[f, r + 2]
            c3 = cols[f, r + 3]
            row0 = a[rowmap[i + r]]
            row1 = a[rowmap[i + r + 1]]
            row2 = a[rowmap[i + r + 2]]
            row3 = a[rowmap[i + r + 3]]
            row4 = a[rowmap[i + r + 4]]
            if r == 0:
                for x in range(w):
                    x1 = row1[x]
                    x2 = row2[x]
                    x3 = row3[x]
                    v[0, x] = c0 * row0[x] + c1 * x1 + c2 * x2 + c3 * x3
                    v[1, x] = c0 * x1 + c1 * x2 + c2 * x3 + c3 * row4[x]
            else:
                for x in range(w):
                    x1 = row1[x]
                    x2 = row2[x]
                    x3 = row3[x]
                    v[0, x] += c0 * row0[x] + c1 * x1 + c2 * x2 + c3 * x3
                    v[1, x] += c0 * x1 + c1 * x2 + c2 * x3 + c3 * row4[x]
            r += 4
            continue
        if kh - r == 3:
            c0 = cols[f, r]
            c1 = cols[f, r + 1]
            c2 = cols[f, r + 2]
            row0 = a[rowmap[i + r]]
            row1 = a[rowmap[i + r + 1]]
            row2 = a[rowmap[i + r + 2]]
            row3 = a[rowmap[i + r + 3]]
            if r == 0:
                for x in range(w):
                    x1 = row1[x]
                    x2 = row2[x]
                    v[0, x] = c0 * row0[x] + c1 * x1 + c2 * x2
                    v[1, x] = c0 * x1 + c1 * x2 + c2 * row3[x]
            else:
                for x in range(w):
                    x1 = row1[x]
                    x2 = row2[x]
                    v[0, x] += c0 * row0[x] + c1 * x1 + c2 * x2
                    v[1, x] += c0 * x1 + c1 * x2 + c2 * row3[x]
            break
        cr = cols[f, r]
        row0 = a[rowmap[i + r]]
        row1 = a[rowmap[i + r + 1]]
        if r == 0:
            for x in range(w):
                v[0, x] = cr * row0[x]
                v[1, x] = cr * row1[x]
        else:
            for x in range(w):
                v[0, x] += cr * row0[x]
                v[1, x] += cr * row1[x]
        r += 1


@njit(**JIT, fastmath=FASTMATH)
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
    # two row buffers, 4 KiB + 64 B apart against 4K aliasing
    v = np.empty((2, w + 64 // out.itemsize), out.dtype)
    rw = np.empty((1, kw), out.dtype)
    fv = fill[0]
    bad = False
    i = i0
    while i < i1:
        # two output rows share kh - 1 image rows: one column pass for both
        nr = 2 if i + 1 < i1 and min(rowmap[i : i + kh + 1]) >= 0 else 1
        for o in range(nr):
            acc = out[i + o]  # accumulate in place: the row stays in cache
            for j in range(wo):  # explicit loops: numba's slice assignment is slow
                acc[j] = 0
        for f in range(rank):
            vfill = fv - fv
            for r in range(kh):
                vfill += cols[f, r] * fv
            if nr == 2:
                column_pass2(v, a, cols, f, rowmap, i, kh, w)
            else:
                column_pass1(v[0], a, cols, f, rowmap, i, kh, w, fv)
            for c in range(kw):
                rw[0, c] = rows[f, c]
            ja = min(max(0, jl), wo)
            jb = max(min(wo, jr), ja)
            for o in range(nr):
                acc = out[i + o]
                vo = v[o]
                if jb > ja:
                    _taps_row(acc[ja:], vo[ja - px :], rw, 0, kw, jb - ja)
                border_row(acc, vo, rw, 0, kw, colmap, vfill, 0, ja, 0)
                border_row(acc, vo, rw, 0, kw, colmap, vfill, jb, wo, 0)
        for o in range(nr):
            if nonfinite(out[i + o], wo):
                bad = True
        i += nr
    return bad
