"""Shared helpers of the SciPy drop-ins (`fftconv.signal`, `fftconv.ndimage`).

The drop-ins only translate SciPy's arguments and dtype rules; every
convolution runs through `fftconv.api` (or, for exact integer arithmetic, the
direct executor with an integer accumulator). This module holds the two
pieces both need: the engine call with SciPy's result dtype, and the
hand-over to SciPy itself for the inputs fftconv's engine has no path for.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from . import api
from ._execute import unswap
from ._problem import make_problem
from .methods.direct import convolve_numpy

#: Integer results whose every partial sum stays below this bound are computed
#: in float64 and rounded: the FFT path's round-off is then far below 0.5.
_EXACT_FLOAT_BOUND = 2**50


def engine_unsupported(*arrays: np.ndarray) -> bool:
    """True for dtypes fftconv's engine has no path for: long double and object."""
    for a in arrays:
        dt = a.dtype
        if dt.kind == "O":
            return True
        if (dt.kind == "f" and dt.itemsize > 8) or (dt.kind == "c" and dt.itemsize > 16):
            return True
    return False


def _int_bound(a: np.ndarray, k: np.ndarray, axes, fillvalue=0) -> int:
    """An upper bound on any partial sum of an integer convolution of `a` and `k`."""

    def largest(x):  # max |x| without a full-size temporary
        return max(abs(int(x.min())), abs(int(x.max()))) if x.size else 0

    amax = max(largest(a), int(abs(fillvalue)))
    kmax = largest(k)
    taps = min(math.prod(a.shape[d] for d in axes), math.prod(k.shape[d] for d in axes))
    return (amax + 1) * (kmax + 1) * max(taps, 1)


def _exact_integer(a, k, mode, boundary, fillvalue, axes, correlate) -> np.ndarray:
    """Direct summation in int64 (wrapping modulo 2**64 like C integer arithmetic)."""
    problem, aa, kk = make_problem(a, k, mode, boundary, 0, axes, None, correlate)
    problem = replace(problem, dtype=np.dtype(np.int64), fillvalue=int(fillvalue))
    out = np.empty(problem.out_shape, np.int64)
    # numpy's tap-by-tap summation: integer arithmetic in any dtype (the compiled
    # executors are built for floats); it casts the kernel itself
    convolve_numpy(problem, aa.astype(np.int64, copy=False), kk, out)
    unswap(problem, out)
    return out


def to_integer(values: np.ndarray, dtype: np.dtype, how: str) -> np.ndarray:
    """Cast float results to an integer (or bool) dtype as SciPy's C code does.

    ``how='round'`` rounds to nearest (scipy.signal's FFT path); ``how='trunc'``
    truncates toward zero (a C cast, scipy.ndimage) after snapping values that
    are within round-off of an integer onto it, so that an exact integer result
    computed by FFT is not truncated to the integer below. Out-of-range values
    wrap modulo 2**64 through int64, as C integer arithmetic does.
    """
    if values.dtype.kind in "iu":
        r = values
    else:
        with np.errstate(invalid="ignore", over="ignore"):
            if how == "round":
                r = np.rint(values)
            else:
                near = np.rint(values)
                scale = float(np.max(np.abs(values))) if values.size else 0.0
                tol = 1e-12 * max(1.0, scale)
                r = np.where(np.abs(values - near) <= tol, near, np.trunc(values))
    if dtype == np.bool_:
        return r != 0
    with np.errstate(invalid="ignore", over="ignore"):
        if r.dtype.kind == "f" and dtype == np.uint64:
            # values in [2**63, 2**64) fit uint64 only; negative ones wrap through int64
            r = np.where(r >= 2.0**63, r.astype(np.uint64), r.astype(np.int64).astype(np.uint64))
        elif r.dtype.kind == "f":
            r = r.astype(np.int64)
    return r.astype(dtype, copy=False)


def run_engine(
    a: np.ndarray,
    k: np.ndarray,
    *,
    mode: str,
    out_dtype: np.dtype,
    boundary: str = "fill",
    fillvalue=0,
    axes=None,
    method: str = "auto",
    correlate: bool = False,
) -> np.ndarray:
    """fftconv's convolution (or correlate2d-style correlation) with SciPy's output dtype.

    Float and complex results come from `fftconv.api` with `method`; integer
    and bool results are exact: float64 and rounding while every partial sum
    is below 2**50, int64 direct summation above.
    """
    out_dtype = np.dtype(out_dtype)
    func = api.correlate if correlate else api.convolve
    if out_dtype.kind in "biu":
        ax = tuple(range(a.ndim)) if axes is None else axes
        if (
            a.dtype.kind in "biu"
            and k.dtype.kind in "biu"
            and (_int_bound(a, k, ax, fillvalue) > _EXACT_FLOAT_BOUND)
        ):
            res = _exact_integer(a, k, mode, boundary, fillvalue, axes, correlate)
        else:
            res = func(a, k, mode, boundary, fillvalue, axes=axes, method=method)
        return to_integer(res, out_dtype, "round")
    res = func(a, k, mode, boundary, fillvalue, axes=axes, method=method)
    if res.dtype != out_dtype:
        if res.dtype.kind == "c" and out_dtype.kind != "c":
            res = res.real
        res = res.astype(out_dtype)
    return res
