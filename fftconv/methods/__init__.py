"""Executors: one module per method. Each takes a Problem and arrays and writes the result."""

from __future__ import annotations

import numpy as np

from .._problem import Problem


def effective_kernel(problem: Problem, k: np.ndarray) -> np.ndarray:
    """The kernel to *convolve* with: `k`, or for a correlation `k` flipped on the
    convolved axes and conjugated (scipy.signal.correlate2d's definition)."""
    if not problem.correlate:
        return k
    flip = tuple(slice(None, None, -1) if d in problem.axes else slice(None) for d in range(k.ndim))
    kk = k[flip]
    return np.conj(kk) if kk.dtype.kind == "c" else kk
