"""Photos in their own dtype: `out=` uint8, uint16 or int16.

The result is computed in float32 (float64 for float64 images), clipped to the
output dtype's range and rounded half to even (`methods.interleaved.round_into`,
the rule `fftconv.io.cast_to` writes photos with), never as an image-sized
float array: direct and separable plans are summed band by band straight into
`out` (`methods.interleaved.convolve`), FFT plans run as overlap-add blocks each
rounded into `out` (circular plans too: the blocks read the image through its
'wrap' index map), and what neither covers (non-finite data) runs tile by tile.
"""

from __future__ import annotations

import numpy as np

from ._execute import overlaps
from ._problem import Problem, with_io
from ._units import parse_memory
from .methods import finite, interleaved
from .methods.blocks import convolve_oa
from .planner import plan_problem

#: Working memory of an integer `out=` call when no `max_memory` is given: tiles of a
#: few MB (the result is never held as an image-sized float array).
PHOTO_MEMORY = 64 << 20


def photo_out(problem: Problem, a, k, out, method: str, threads: int, max_memory=None):
    """Write `problem` into the integer array `out` (uint8, uint16, int16), a band, block
    or tile at a time (see the module docstring): each computed in float32 (float64 for
    float64 images), clipped to `out`'s range and rounded half to even.

    An `out` that overlaps the image or the kernel (``out=image``) gets the result
    through a temporary of its size: bands would otherwise read what others wrote."""
    if overlaps(out, a, k):
        tmp = np.empty(out.shape, out.dtype)
        photo_out(problem, a, k, tmp, method, threads, max_memory)
        np.copyto(out, tmp)
        return out
    work = with_io(problem, a.dtype, k.dtype, out.dtype)
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
    finite_data = (a.dtype.kind in "biu" or finite(a)) and np.isfinite(kk).all()
    if plan.method == "oa" and not work.swapped and finite_data and np.isfinite(work.fillvalue):
        # Overlap-add blocks, each rounded into `out`. The planner never chooses a
        # whole-array transform for an integer out= where blocks exist (it would hold
        # an image-sized float result): an 'fft' plan here means one block covers all.
        convolve_oa(work, a, kk, out, threads, plan.transform_shape)
        return out
    from .tiles import run_tiled  # imported when needed: `import fftconv` stays light

    budget = PHOTO_MEMORY if max_memory is None else parse_memory(max_memory)
    run_tiled(work, a, kk, out, max_memory=budget, threads=threads, method=method)
    return out
