"""Compiled (numba) moves between channels-last rows and channel planes of a band.

`split_rows` reads rows of a channels-last image, seen as (rows, W * C), into the
C planes of a band, converted to the band's dtype (a photo's uint8 samples to
float32); `merge_rows` writes the C planes of a band of results back into
channels-last rows, rounded half to even and clipped to an integer output's
range.  With them the grey engine sums a photo band by band, plane by plane
(one kernel per channel, or more channels than the interleaved drivers exist
for): nothing image-sized is allocated, and the planes of a band stay in cache
between the split, the sums and the merge (`methods.interleaved`).

Imported only by `methods.interleaved` when the compiled engine is present.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._direct_kernels import clip
from ._jit import JIT


@njit(**JIT)
def split_rows(planes, img, rows):
    """``planes[ch, r, x] = img[rows[r], x * C + ch]`` for the C planes of `planes`
    (3 and 4 channels written out, so that LLVM vectorises the interleaved loads)."""
    nc, nr, w = planes.shape
    for r in range(nr):
        s = img[rows[r]]
        if nc == 3:
            p0, p1, p2 = planes[0, r], planes[1, r], planes[2, r]
            for x in range(w):
                p0[x] = s[3 * x]
                p1[x] = s[3 * x + 1]
                p2[x] = s[3 * x + 2]
        elif nc == 4:
            p0, p1, p2, p3 = planes[0, r], planes[1, r], planes[2, r], planes[3, r]
            for x in range(w):
                p0[x] = s[4 * x]
                p1[x] = s[4 * x + 1]
                p2[x] = s[4 * x + 2]
                p3[x] = s[4 * x + 3]
        else:
            for ch in range(nc):
                p = planes[ch, r]
                for x in range(w):
                    p[x] = s[x * nc + ch]


@njit(**JIT)
def merge_rows(dst, planes, lo, hi, rnd):
    """``dst[r, x * C + ch] = planes[ch, r, x]``; with `rnd`, clipped to [lo, hi] and
    rounded half to even (NaN written as `lo`), as `interleaved.round_into` does."""
    nc, nr, w = planes.shape
    for r in range(nr):
        d = dst[r]
        if nc == 3 and not rnd:
            p0, p1, p2 = planes[0, r], planes[1, r], planes[2, r]
            for x in range(w):
                d[3 * x] = p0[x]
                d[3 * x + 1] = p1[x]
                d[3 * x + 2] = p2[x]
        elif nc == 3:
            p0, p1, p2 = planes[0, r], planes[1, r], planes[2, r]
            for x in range(w):
                d[3 * x] = np.rint(clip(p0[x], lo, hi))
                d[3 * x + 1] = np.rint(clip(p1[x], lo, hi))
                d[3 * x + 2] = np.rint(clip(p2[x], lo, hi))
        else:
            for ch in range(nc):
                p = planes[ch, r]
                if rnd:
                    for x in range(w):
                        d[x * nc + ch] = np.rint(clip(p[x], lo, hi))
                else:
                    for x in range(w):
                        d[x * nc + ch] = p[x]
