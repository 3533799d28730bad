"""Reference results for the planner's tests: numpy.pad, then float64 direct summation."""

from __future__ import annotations

import numpy as np
import scipy.signal

_NUMPY_PAD = {"wrap": "wrap", "symmetric": "symmetric", "mirror": "reflect", "nearest": "edge"}


def reference(a, k, mode="full", boundary="fill", fillvalue=0, correlate=False):
    """The definition, for arrays convolved on every axis: pad by k-1 on each side in the
    boundary mode, valid-convolve (float64 direct summation), crop for 'same'."""
    a = np.asarray(a)
    k = np.asarray(k)
    cplx = np.iscomplexobj(a) or np.iscomplexobj(k) or np.iscomplexobj(fillvalue)
    work = np.complex128 if cplx else np.float64
    a = a.astype(work)
    k = k.astype(work)
    if correlate:
        k = np.conj(k[(slice(None, None, -1),) * k.ndim])
    if mode == "valid":
        return scipy.signal.convolve(a, k, mode="valid", method="direct")
    pad = [(n - 1, n - 1) for n in k.shape]
    if boundary == "fill":
        p = np.pad(a, pad, mode="constant", constant_values=fillvalue)
    else:
        p = np.pad(a, pad, mode=_NUMPY_PAD[boundary])
    full = scipy.signal.convolve(p, k, mode="valid", method="direct")
    if mode == "full":
        return full
    crop = []
    for n, kn in zip(a.shape, k.shape):
        start = kn // 2 if correlate else (kn - 1) // 2
        crop.append(slice(start, start + n))
    return full[tuple(crop)]


def assert_close(got, ref, dtype) -> None:
    """The project's tolerance: 1e-5 (single) or 1e-10 (double) times max|ref|."""
    tol = 1e-5 if np.dtype(dtype) in (np.float32, np.complex64) else 1e-10
    assert got.shape == ref.shape, (got.shape, ref.shape)
    scale = max(float(np.max(np.abs(ref))), 1e-300)
    err = float(np.max(np.abs(got - ref)))
    assert err <= tol * scale, f"max error {err:.3g} > {tol:g} * {scale:.3g}"
