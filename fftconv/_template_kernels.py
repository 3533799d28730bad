"""Compiled (numba) window statistics for `fftconv.template.match_template`.

This module imports numba; import it only through `fftconv.template._compiled()`,
which returns None when numba is missing. The numba settings are the row engine's
(`fftconv.methods._jit`), with numpy's error model: a division by zero gives inf
rather than raising, which lets the scoring loop vectorise.

`zncc_band` turns the numerator of the zero-normalised cross-correlation into
the score for a band of output rows ``[i0, i1)``, in one pass over the image:
running sums of the window's samples and squares over each column
(vertical), then over the columns (horizontal), in float64, without ever
building a summed-area table.  The running sums restart from scratch every
`bv` rows and every `bh` columns, so rounding accumulates over at most
``bv + m0`` (vertical) and ``bh + m1`` (horizontal) additions, and the scale
that error is measured against, the largest square that entered the sums
since the last restart, is tracked alongside (``cmax``, ``smax``): the
tolerance below which a window counts as flat is local to the window, not
set by the brightest pixel of the whole image.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .methods._jit import JIT


@njit(**JIT, inline="always", error_model="numpy")
def _finish_row(num_row, var, tol, tssd):  # pragma: no cover - compiled
    """Scores of one output row from its window variances: a plain loop that
    vectorises (division and square root of several windows at once)."""
    for j in range(num_row.shape[0]):
        r = num_row[j] / math.sqrt(max(var[j], 1e-300) * tssd)
        r = min(1.0, max(-1.0, r))
        num_row[j] = r if var[j] > tol[j] else 0.0


@njit(**JIT, error_model="numpy")
def zncc_band(x, num, m0, m1, tssd, rtol, i0, i1, bv, bh):  # pragma: no cover - compiled
    """Score rows ``[i0, i1)`` of `num` in place.

    `x` is the (padded, mean-subtracted) image, shape ``(nc, hp, wp)`` (channels first); `num`
    the numerator summed over channels, shape ``(hp - m0 + 1, wp - m1 + 1)``;
    `tssd` the template's sum of squared deviations (over channels); a window
    whose channel-summed ``sum (x - mean)^2`` is at most ``rtol * smax`` is flat
    and scores 0.
    """
    nc = x.shape[0]
    wp = x.shape[2]
    wo = num.shape[1]
    n = m0 * m1
    cs1 = np.zeros((nc, wp))
    cs2 = np.zeros((nc, wp))
    cmax = np.zeros(wp)
    var = np.empty(wo)
    tol = np.empty(wo)
    for ib in range(i0, i1, bv):
        cs1[:, :] = 0.0
        cs2[:, :] = 0.0
        cmax[:] = 0.0
        for r in range(ib, ib + m0):
            for c in range(nc):
                for j in range(wp):
                    v = np.float64(x[c, r, j])
                    cs1[c, j] += v
                    cs2[c, j] += v * v
                    cmax[j] = max(cmax[j], v * v)
        for i in range(ib, min(ib + bv, i1)):
            if i > ib:
                for c in range(nc):
                    for j in range(wp):
                        a = np.float64(x[c, i + m0 - 1, j])
                        b = np.float64(x[c, i - 1, j])
                        cs1[c, j] += a - b
                        cs2[c, j] += a * a - b * b
                        cmax[j] = max(cmax[j], a * a)
            var[:] = 0.0
            tol[:] = 0.0
            for c in range(nc):
                _row_var(cs1[c], cs2[c], cmax, var, tol, m1, n, bh, rtol)
            _finish_row(num[i], var, tol, tssd)


@njit(**JIT, inline="always", error_model="numpy")
def _row_var(cs1, cs2, cmax, var, tol, m1, n, bh, rtol):  # pragma: no cover - compiled
    """Add one channel's window sums of squared deviations along a row to `var`
    (running sums over the column sums, restarted every `bh` columns) and set
    `tol` from the largest square they saw."""
    wo = var.shape[0]
    inv_n = 1.0 / n
    for jb in range(0, wo, bh):
        s1 = 0.0
        s2 = 0.0
        smax = 0.0
        for j in range(jb, jb + m1):
            s1 += cs1[j]
            s2 += cs2[j]
            smax = max(smax, cmax[j])
        var[jb] += s2 - s1 * s1 * inv_n
        tol[jb] = max(tol[jb], rtol * smax)
        for jo in range(jb + 1, min(jb + bh, wo)):
            j = jo + m1 - 1
            s1 += cs1[j] - cs1[jo - 1]
            s2 += cs2[j] - cs2[jo - 1]
            smax = max(smax, cmax[j])
            var[jo] += s2 - s1 * s1 * inv_n
            tol[jo] = max(tol[jo], rtol * smax)
