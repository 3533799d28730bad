"""Direct summation: the reference-exact method for small kernels.

The result is accumulated tap by tap, ``out += w[j] * P[j : j + m]``, over a
padded copy ``P`` of the image that is only as large as the padding needs
(none at all in 'valid' mode). Non-finite samples propagate exactly as the
sum says, so this is also the method of last resort for non-finite kernels.
"""

from __future__ import annotations

import itertools

import numpy as np

from .._pad import padded
from .._problem import Problem
from . import effective_kernel


def convolve_direct(problem: Problem, a, k, out) -> None:
    """Write the convolution `problem` of `a` and `k` into `out`."""
    dtype = problem.dtype
    pads = problem.pads()
    if any(pb or pa for pb, pa in pads):
        P = padded(a, problem.axes, pads, problem.boundary, problem.fillvalue, dtype=dtype)
    else:
        P = a
    kk = effective_kernel(problem, k).astype(dtype, copy=False)
    osize = [out.shape[ax] for ax in problem.axes]
    ksize = problem.kernel_shape
    acc = out if out.dtype == dtype and out.flags.writeable else np.empty(out.shape, dtype)
    acc[...] = 0
    term = np.empty(out.shape, dtype)
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf is NaN, as it should be
        _accumulate(P, kk, acc, term, problem.axes, ksize, osize)
    if acc is not out:
        np.copyto(out, acc)


def _accumulate(P, kk, acc, term, axes, ksize, osize) -> None:
    win = [slice(None)] * P.ndim
    tap = [slice(None)] * kk.ndim
    for j in itertools.product(*(range(s) for s in ksize)):
        # Convolution: output t takes P[t + (k-1) - j] * w[j].
        for ax, jj, kn, o in zip(axes, j, ksize, osize):
            start = kn - 1 - jj
            win[ax] = slice(start, start + o)
            tap[ax] = slice(jj, jj + 1)
        np.multiply(P[tuple(win)], kk[tuple(tap)], out=term)
        acc += term
