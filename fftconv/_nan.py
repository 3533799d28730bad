"""NaN policies of `convolve` and `correlate`: a layer over the engine.

'fill' replaces the missing samples (NaN, or ``mask == False``) by `fillvalue`
and runs the engine once. 'interpolate' is normalised convolution (Knutsson
and Westin, 1993): the engine runs twice, on the data with the missing
samples zeroed and on the validity mask, and the result is

    ``conv(x * m, k) / conv(m, k) * sum(k)``

so missing samples are left out and the kernel is renormalised over the
valid ones; where nothing is missing this is the plain convolution. Both
calls are ordinary engine calls (any method, tiles under `max_memory`, every
boundary), so the policy works wherever the engine does.

Padding: for the index boundaries ('wrap', 'symmetric', 'mirror', 'nearest')
the mask is padded like the data, so a padded sample is valid where the
sample it copies is. For 'fill', padded samples are data of value
`fillvalue` and count as valid, as in astropy's ``boundary='fill'``; with
``fillvalue=nan`` they are missing instead (astropy's ``fill_value=np.nan``).
"""

from __future__ import annotations

import numpy as np

from ._problem import check_out, make_problem, normalize_axes

#: 'interpolate': where the valid samples carry at most this fraction of the
#: kernel's absolute sum, the weight is within the engine's rounding of 0 and the
#: result is NaN; a kernel whose sum is this close to 0 cannot be renormalised.
WEIGHT_RTOL = {"f": {4: 1e-5, 8: 1e-10}, "c": {8: 1e-5, 16: 1e-10}}


def _rtol(dtype: np.dtype) -> float:
    return WEIGHT_RTOL[dtype.kind][dtype.itemsize]


def run_with_nan_policy(
    run,
    in1,
    in2,
    mode,
    boundary,
    fillvalue,
    axes,
    channel_axis,
    correlate,
    policy: str,
    mask,
    return_weights: bool,
    out,
):
    """The result of `policy` on `in1`; ``run(x, k, fillvalue, out, axes, channel_axis)``
    is one engine call with every other argument the caller's. Returns the result,
    or (result, weights) with `return_weights`: the fraction ``conv(m, k) / sum(k)``
    of the kernel's weight that fell on valid samples (1 where nothing is missing)."""
    problem, a, k = make_problem(in1, in2, mode, boundary, fillvalue, axes, channel_axis, correlate)
    check_out(out, problem)
    if problem.swapped:  # 'valid' with the kernel larger: the engine swapped them
        a, k = k, a
    data = np.asarray(in1)
    # x == x is False exactly at NaN (complex: either part), in one pass
    valid = data == data if data.dtype.kind in "fc" else np.ones(data.shape, bool)
    if mask is not None:
        valid &= _mask(mask, data.shape)
    real = np.dtype(problem.dtype.char.lower()) if problem.is_complex else problem.dtype
    fv = complex(problem.fillvalue)
    pad_valid = not (problem.boundary == "fill" and np.isnan(fv))

    def call(x, fill, dst):
        return run(x, in2, fill, dst, axes, channel_axis)

    if policy == "fill":
        # The Problem keeps the fill value only where padding reads it; the missing
        # samples take the caller's value whatever the boundary.
        missing = np.asarray(fillvalue).item()
        result = call(np.where(valid, data, missing), fillvalue, out)
        if not return_weights:
            return result
        weights = call(valid.astype(real), 1.0 if pad_valid else 0.0, None)
        weights /= _kernel_sum(problem, k).astype(real)
        return result, weights
    if np.dtype(k.dtype).kind == "c":
        raise TypeError(f"nan_policy='interpolate' needs a real kernel; got dtype {k.dtype}")
    ksum = _kernel_sum(problem, k)
    kabs = _kernel_sum(problem, np.abs(k))
    if np.any(np.abs(ksum) <= _rtol(real) * kabs):
        raise ValueError(
            "nan_policy='interpolate' renormalises the kernel over the valid samples, "
            f"but the kernel sums to {np.ravel(ksum)[0]:.3g} (about 0 next to its absolute "
            f"sum {np.ravel(kabs)[0]:.3g}); use nan_policy='fill' for zero-sum kernels"
        )
    if problem.swapped or problem.is_complex or (problem.boundary == "fill" and fv != 0):
        num = call(np.where(valid, data, 0), problem.fillvalue if pad_valid else 0, None)
        weights = call(valid.astype(real), 1.0 if pad_valid else 0.0, None)
    else:
        num, weights = _stacked(run, problem, data, valid, in2, axes, channel_axis, ksum)
    weights /= ksum.astype(real)
    small = np.abs(weights) <= (_rtol(real) * kabs / np.abs(ksum)).astype(real)
    if out is not None:
        result = out
    elif num.base is None:
        result = num
    else:  # a slab of the stack: do not keep the stack alive through the result
        result = np.empty(num.shape, num.dtype)
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(num, weights, out=result)
    np.copyto(result, np.nan, where=small)
    return (result, weights) if return_weights else result


def _stacked(run, problem, data, valid, in2, axes, channel_axis, ksum):
    """``conv(x * m, k)`` and ``conv(m, k)`` from one engine call on the two stacked
    along a new first axis (one kernel spectrum, one plan). Padding with 0 serves both
    for the index boundaries and for 'fill' with fillvalue 0 (padded samples valid):
    there the stack holds the invalid mask ``1 - m`` and ``conv(m, k) = sum(k) -
    conv(1 - m, k)``."""
    stack = np.empty((2,) + data.shape, problem.dtype)
    np.copyto(stack[0], data, casting="unsafe")
    np.copyto(stack[0], 0, where=~valid)
    fill_padded = problem.boundary == "fill"
    np.copyto(stack[1], ~valid if fill_padded else valid, casting="unsafe")
    k = np.asarray(in2)
    if channel_axis is not None:
        ch = channel_axis % data.ndim + 1
        ax = None
    else:
        ch = None
        ax = tuple(d + 1 for d in normalize_axes(axes, data.ndim))
    res = run(stack, k[None], 0, None, ax, ch)
    num, weights = res[0], res[1]
    if fill_padded:
        np.subtract(ksum.astype(weights.dtype), weights, out=weights)
    return num, weights


def _mask(mask, shape) -> np.ndarray:
    m = np.asarray(mask)
    if m.dtype.kind not in "biu":
        raise TypeError(f"mask must be a boolean array (True = valid); got dtype {m.dtype}")
    if m.shape != shape:
        raise ValueError(f"mask must have in1's shape {shape}; got {m.shape}")
    return m.astype(bool)


def _kernel_sum(problem, k):
    """The kernel's sum over the convolved axes, shaped to broadcast with the result."""
    return np.sum(k, axis=problem.axes, keepdims=True, dtype=np.float64)
