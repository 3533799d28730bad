"""Photos in their own dtype: `out=` uint8, uint16 or int16.

The result is computed in float32 (float64 for float64 images), clipped to the
output dtype's range and rounded half to even (`methods.interleaved.round_into`,
the rule `fftconv.io.cast_to` writes photos with), never as an image-sized
float array: direct and separable plans are summed band by band straight into
`out` (`methods.interleaved.convolve`), the others run tile by tile.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ._problem import Problem
from .methods import finite, interleaved
from .planner import plan_problem
from .tiles import compute_dtype, parse_memory, run_tiled

#: Working memory of an integer `out=` call when no `max_memory` is given: tiles of a
#: few MB (the result is never held as an image-sized float array).
PHOTO_MEMORY = 64 << 20


def photo_out(problem: Problem, a, k, out, method: str, threads: int, max_memory=None):
    """Write `problem` into the integer array `out` (uint8, uint16, int16), tile by tile:
    each tile is computed in float32 (float64 for float64 images), rounded half to even
    and clipped to `out`'s range (`fftconv.io.cast_to`, as the command writes photos)."""
    work = replace(problem, dtype=compute_dtype(a.dtype, k.dtype, out.dtype))
    kk = np.ascontiguousarray(k.astype(work.dtype, copy=False))
    plan = plan_problem(work, threads, method, kernel=kk)
    lay = interleaved.layout(work, kk, grey=True)
    if (
        lay is not None
        and plan.method in ("direct", "separable", "lowrank")
        and (not work.swapped and (a.dtype.kind in "biu" or finite(a)) and out.flags.c_contiguous)
    ):
        # Summed band by band straight into `out` (see `methods.interleaved.convolve`).
        factors = plan.factors if plan.method != "direct" else None
        interleaved.convolve(work, lay, a, kk, out, threads, factors)
        return out
    budget = PHOTO_MEMORY if max_memory is None else parse_memory(max_memory)
    run_tiled(work, a, kk, out, max_memory=budget, threads=threads, method=method)
    return out
