"""Compiled (numba) band engine of the streaming path: separable kernels, integer in and out.

`sep_rows` computes output rows of a separable 2-D correlation ``out = sum_ij
u[i] v[j] src[row(o + i), col(x + j)]`` straight from the source's own dtype
(uint8, uint16, int16, float32) into the output's (uint8 and uint16 rounded half
to even and clipped, float32 stored), with float32 accumulation. Rows and columns
reach the source through index maps (`rowmap`, `colmap`: -1 reads `fill`), so
every boundary is exact and nothing is padded in memory.

The work is strip-mined: for a strip of columns, each padded row is converted
once to float32 and filtered horizontally into a ring of ``kh + 1`` rows that
stays in the core's L2 cache and lives between calls, so bands of rows are fed
in order and no row is filtered twice; output rows are then vertical sums of
ring rows, two at a time (each ring row loaded once for both), rounded and
stored. Every pass sums up to eight taps per sweep over a row (one view per
tap, every index provably non-negative: numba emits no wraparound test and
LLVM vectorises; the sweeps are unrolled per tap count, so the taps stay in
registers), so the accumulator is loaded and stored once per eight fused
multiply-adds. The first sweep of a row stores (nothing is zeroed first), and
for integer outputs the last vertical sweep rounds, clips and stores the two
output rows itself: a kernel of up to 8x8 taps makes one sweep per row in each
direction and writes no vertical accumulator. Those sweeps, unrolled per tap
count, are generated (`_u8_sweeps`, by tools/gen_direct_small.py).

This module is self-contained (the direct engine's row kernels are in
`_direct_kernels`, `_direct_small`, `_direct_taps`); it imports numba, so import
it only through `fftconv._stream`, which falls back when numba is missing, and
`methods.interleaved` (in-memory photos), which runs only when it is present.
``nogil=True``: callers run one range of strips per thread.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._direct_kernels import clip
from ._jit import FASTMATH, JIT
from ._u8_sweeps import hsweep, vstore2


@njit(**JIT, fastmath=FASTMATH, error_model="numpy")
def _hpass(acc, tmp, v, n, C):
    """``acc[p] = sum_j v[j] * tmp[p + j C]`` for ``p < n`` (one padded row, C channels):
    one sweep per eight taps, the first storing, the others adding."""
    kw = v.shape[0]
    t = min(8, kw)
    hsweep(acc, tmp, v[:t], n, C, False)
    while t < kw:
        m = min(8, kw - t)
        hsweep(acc, tmp[t * C :], v[t : t + m], n, C, True)
        t += m


@njit(**JIT, fastmath=FASTMATH, error_model="numpy")
def _vpass(acc, ring, first, u, n):
    """``acc[p] = sum_i u[i] * ring[(first + i) % R][p]`` for ``p < n`` (R ring rows)."""
    kh = u.shape[0]
    R = ring.shape[0]
    for p in range(n):
        acc[p] = 0.0
    i = 0
    while kh - i >= 8:
        w0, w1, w2, w3 = u[i], u[i + 1], u[i + 2], u[i + 3]
        w4, w5, w6, w7 = u[i + 4], u[i + 5], u[i + 6], u[i + 7]
        a0 = ring[(first + i) % R]
        a1 = ring[(first + i + 1) % R]
        a2 = ring[(first + i + 2) % R]
        a3 = ring[(first + i + 3) % R]
        a4 = ring[(first + i + 4) % R]
        a5 = ring[(first + i + 5) % R]
        a6 = ring[(first + i + 6) % R]
        a7 = ring[(first + i + 7) % R]
        for p in range(n):
            acc[p] += (
                w0 * a0[p]
                + w1 * a1[p]
                + w2 * a2[p]
                + w3 * a3[p]
                + w4 * a4[p]
                + w5 * a5[p]
                + w6 * a6[p]
                + w7 * a7[p]
            )
        i += 8
    while kh - i >= 4:
        w0, w1, w2, w3 = u[i], u[i + 1], u[i + 2], u[i + 3]
        a0 = ring[(first + i) % R]
        a1 = ring[(first + i + 1) % R]
        a2 = ring[(first + i + 2) % R]
        a3 = ring[(first + i + 3) % R]
        for p in range(n):
            acc[p] += w0 * a0[p] + w1 * a1[p] + w2 * a2[p] + w3 * a3[p]
        i += 4
    while i < kh:
        w0 = u[i]
        a0 = ring[(first + i) % R]
        for p in range(n):
            acc[p] += w0 * a0[p]
        i += 1


@njit(**JIT, fastmath=FASTMATH, error_model="numpy")
def _vpass2(acc0, acc1, ring, first, u, n):
    """`_vpass` for two consecutive output rows at once (rows ``first`` and ``first + 1``):
    each ring row is loaded once for both, so the pass is bound by the multiply-adds,
    not by the loads."""
    kh = u.shape[0]
    R = ring.shape[0]
    for p in range(n):
        acc0[p] = 0.0
        acc1[p] = 0.0
    i = 0
    while kh - i >= 8:
        w0, w1, w2, w3 = u[i], u[i + 1], u[i + 2], u[i + 3]
        w4, w5, w6, w7 = u[i + 4], u[i + 5], u[i + 6], u[i + 7]
        a0 = ring[(first + i) % R]
        a1 = ring[(first + i + 1) % R]
        a2 = ring[(first + i + 2) % R]
        a3 = ring[(first + i + 3) % R]
        a4 = ring[(first + i + 4) % R]
        a5 = ring[(first + i + 5) % R]
        a6 = ring[(first + i + 6) % R]
        a7 = ring[(first + i + 7) % R]
        a8 = ring[(first + i + 8) % R]
        for p in range(n):
            x1, x2, x3, x4 = a1[p], a2[p], a3[p], a4[p]
            x5, x6, x7 = a5[p], a6[p], a7[p]
            acc0[p] += (
                w0 * a0[p] + w1 * x1 + w2 * x2 + w3 * x3 + w4 * x4 + w5 * x5 + w6 * x6 + w7 * x7
            )
            acc1[p] += (
                w0 * x1 + w1 * x2 + w2 * x3 + w3 * x4 + w4 * x5 + w5 * x6 + w6 * x7 + w7 * a8[p]
            )
        i += 8
    while kh - i >= 4:
        w0, w1, w2, w3 = u[i], u[i + 1], u[i + 2], u[i + 3]
        a0 = ring[(first + i) % R]
        a1 = ring[(first + i + 1) % R]
        a2 = ring[(first + i + 2) % R]
        a3 = ring[(first + i + 3) % R]
        a4 = ring[(first + i + 4) % R]
        for p in range(n):
            x1, x2, x3 = a1[p], a2[p], a3[p]
            acc0[p] += w0 * a0[p] + w1 * x1 + w2 * x2 + w3 * x3
            acc1[p] += w0 * x1 + w1 * x2 + w2 * x3 + w3 * a4[p]
        i += 4
    while i < kh:
        w0 = u[i]
        a0 = ring[(first + i) % R]
        a1 = ring[(first + i + 1) % R]
        for p in range(n):
            acc0[p] += w0 * a0[p]
            acc1[p] += w0 * a1[p]
        i += 1


@njit(**JIT, fastmath=FASTMATH, error_model="numpy")
def _store(orow, acc, n, lo, hi, rnd):
    if rnd:
        for p in range(n):
            orow[p] = clip(np.rint(acc[p]), lo, hi)
    else:
        for p in range(n):
            orow[p] = acc[p]


@njit(**JIT, fastmath=FASTMATH, error_model="numpy")
def _load(tmp, row, colmap, xs, m, C, fill, qa, qb, base):
    """Padded columns ``xs .. xs + m`` of `row` into `tmp` as float32: the contiguous
    interior run ``[qa, qb)`` (source pixel ``base`` onwards) converted in one loop,
    the edges through `colmap`."""
    for q in range(qa):
        c0 = colmap[xs + q]
        for c in range(C):
            tmp[q * C + c] = fill if c0 < 0 else row[c0 * C + c]
    run = tmp[qa * C :]
    src = row[base * C :]
    for t in range((qb - qa) * C):
        run[t] = src[t]
    for q in range(qb, m):
        c0 = colmap[xs + q]
        for c in range(C):
            tmp[q * C + c] = fill if c0 < 0 else row[c0 * C + c]


@njit(**JIT, error_model="numpy")
def _interior(colmap, xs, m):
    """The longest run ``[qa, qb)`` of ``colmap[xs + q]`` (q < m) that steps by one
    (the part of a strip inside the image), and its first source column."""
    best_a, best_b = 0, 0
    q = 0
    while q < m:
        a = q
        while q + 1 < m and colmap[xs + q] >= 0 and colmap[xs + q + 1] == colmap[xs + q] + 1:
            q += 1
        if colmap[xs + a] >= 0 and q + 1 - a > best_b - best_a:
            best_a, best_b = a, q + 1
        q += 1
    base = colmap[xs + best_a] if best_b > best_a else 0
    return best_a, best_b, base


@njit(**JIT, fastmath=FASTMATH, error_model="numpy")
def _identity(ring_row, tmp, copy, nx, C, pl):
    """Channels in `copy` (an alpha channel) take the centre tap's sample unfiltered."""
    for c in copy:
        for x in range(nx):
            ring_row[x * C + c] = tmp[(x + pl) * C + c]


@njit(**JIT, fastmath=FASTMATH, error_model="numpy")
def _identity_v(acc, ring_row, copy, nx, C):
    for c in copy:
        for x in range(nx):
            acc[x * C + c] = ring_row[x * C + c]


@njit(**JIT, fastmath=FASTMATH, error_model="numpy")
def sep_rows(
    src,
    rowmap,
    colmap,
    u,
    v,
    fill,
    copy,
    pt,
    pl,
    n_pad,
    out,
    out_row0,
    i0,
    i1,
    x0,
    x1,
    C,
    lo,
    hi,
    rnd,
    rings,
    tmp,
    acc,
):
    """Feed padded rows ``[i0, i1)`` through the strips of columns ``[x0, x1)`` and store
    the output rows they complete.

    Each strip keeps its ring of ``kh + 1`` horizontally filtered rows in `rings`
    between calls, so a caller feeds the image's padded rows in bands, in order,
    and nothing is filtered twice. Padded row ``i`` completes output rows in pairs:
    at ``i = o + kh`` (o even) rows o and o + 1, and the last padded row
    (``n_pad - 1``) a last odd row; output row o is stored in ``out[o - out_row0]``.

    Parameters
    ----------
    src : 2-D array (rows x columns*C) of any real dtype: the band of source rows.
    rowmap : int64, ``rowmap[i]`` is the `src` row padded row i reads (-1: `fill`).
    colmap : int64, ``colmap[x + j]`` is the source column of output column x's tap j
        (-1: `fill`); length ``columns + kw - 1``.
    u, v : float32 taps (kh,), (kw,) in correlation order.
    copy : int64 channels copied unfiltered (the centre tap: ``pt``, ``pl``).
    n_pad : padded rows in all (output rows + kh - 1).
    out : 2-D array (rows x columns*C) for output rows ``out_row0 ...``.
    lo, hi, rnd : clip range, and whether to round half to even (integer outputs).
    rings : float32 (strips of [x0, x1), kh + 1, S*C), kept between calls.
    tmp, acc : float32 scratch of ((S + kw - 1)*C,) and (2*S*C,); S the strip width.
    """
    kh = u.shape[0]
    kw = v.shape[0]
    R = rings.shape[1]  # kh + 1: the rows of two output rows
    S = rings.shape[2] // C
    n_out = n_pad - kh + 1
    acc0 = acc[: S * C]
    acc1 = acc[S * C :]
    # Integer outputs without copied channels: the last vertical sweep (its `last` taps)
    # rounds and stores.
    fused = rnd and copy.shape[0] == 0
    last = kh - (kh - 1) // 8 * 8
    for si in range(rings.shape[0]):
        xs = x0 + si * S
        if xs >= x1:
            break
        ring = rings[si]
        nx = min(S, x1 - xs)
        n = nx * C
        m = nx + kw - 1
        qa, qb, base = _interior(colmap, xs, m)
        for i in range(i0, i1):
            s = rowmap[i]
            if s < 0:
                for q in range(m * C):
                    tmp[q] = fill
            else:
                _load(tmp, src[s], colmap, xs, m, C, fill, qa, qb, base)
            _hpass(ring[i % R], tmp, v, n, C)
            _identity(ring[i % R], tmp, copy, nx, C, pl)
            o = i - kh  # (at most n_out - 2: o + 1 is a row)
            if o >= 0 and o % 2 == 0 and fused:  # rows o and o + 1 are complete
                o0, o1 = out[o - out_row0, xs * C :], out[o + 1 - out_row0, xs * C :]
                if kh > 8:
                    _vpass2(acc0, acc1, ring, o % R, u[: kh - last], n)
                vstore2(
                    o0, o1, ring, (o + kh - last) % R, u[kh - last :], n, lo, hi, acc0, acc1, kh > 8
                )
            elif o >= 0 and o % 2 == 0:
                _vpass2(acc0, acc1, ring, o % R, u, n)
                _identity_v(acc0, ring[(o + pt) % R], copy, nx, C)
                _identity_v(acc1, ring[(o + 1 + pt) % R], copy, nx, C)
                _store(out[o - out_row0, xs * C :], acc0, n, lo, hi, rnd)
                _store(out[o + 1 - out_row0, xs * C :], acc1, n, lo, hi, rnd)
            if i == n_pad - 1 and n_out % 2 == 1:
                o = n_out - 1  # an odd last row, completed by the last padded row
                _vpass(acc0, ring, o % R, u, n)
                _identity_v(acc0, ring[(o + pt) % R], copy, nx, C)
                _store(out[o - out_row0, xs * C :], acc0, n, lo, hi, rnd)
