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

from ._problem import make_problem

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
    """The result of `policy` on `in1`; ``run(x, fillvalue, out)`` is one engine call
    with every other argument the caller's. Returns the result, or (result,
    weights) with `return_weights`: the fraction ``conv(m, k) / sum(k)`` of the
    kernel's weight that fell on valid samples (1 where nothing is missing)."""
    problem, a, k = make_problem(in1, in2, mode, boundary, fillvalue, axes, channel_axis, correlate)
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
    weights = None
    if policy == "fill":
        result = run(np.where(valid, data, problem.fillvalue), problem.fillvalue, out)
        if return_weights:
            weights = _weights(run, valid, real, pad_valid, _kernel_sum(problem, k))
        return (result, weights) if return_weights else result
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
    fill = 0 if not pad_valid else problem.fillvalue
    result = run(np.where(valid, data, 0), fill, out)
    weights = _weights(run, valid, real, pad_valid, ksum)
    small = np.abs(weights) <= (_rtol(real) * kabs / np.abs(ksum)).astype(real)
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(result, weights, out=result)
    np.copyto(result, np.nan, where=small)
    return (result, weights) if return_weights else result


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


def _weights(run, valid, real, pad_valid, ksum):
    """``conv(m, k) / sum(k)``: one engine call on the validity mask."""
    w = run(valid.astype(real), 1.0 if pad_valid else 0.0, None)
    w /= ksum.astype(real)
    return w
