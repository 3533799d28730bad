"""Float64 direct-summation reference for the direct and separable tests.

Padding comes from numpy.pad (not fftconv._pad), the sum runs tap by tap in
float64 / complex128, so it shares no code with the executors under test.
"""

from __future__ import annotations

import itertools

import numpy as np

NUMPY_PAD = {
    "fill": "constant",
    "wrap": "wrap",
    "symmetric": "symmetric",
    "mirror": "reflect",
    "nearest": "edge",
}


def reference(a, k, mode, boundary, fillvalue=0, correlate=False):
    """N-d convolution (or correlate2d-style correlation) of `a` with `k` by direct sum."""
    a = np.asarray(a)
    k = np.asarray(k)
    work = (
        np.complex128
        if (a.dtype.kind == "c" or k.dtype.kind == "c" or isinstance(fillvalue, complex))
        else np.float64
    )
    a = a.astype(work)
    k = k.astype(work)
    if correlate:
        k = np.conj(k[(slice(None, None, -1),) * k.ndim])
    if mode == "valid":
        P = a
    else:
        pads = [(s - 1, s - 1) for s in k.shape]
        kw = {"constant_values": fillvalue} if boundary == "fill" else {}
        if boundary == "fill":
            P = np.pad(a, pads, mode="constant", **kw)
        else:
            P = np.pad(a, pads, mode=NUMPY_PAD[boundary])
    oshape = tuple(p - s + 1 for p, s in zip(P.shape, k.shape))
    out = np.zeros(oshape, work)
    with np.errstate(invalid="ignore", over="ignore"):
        for j in itertools.product(*(range(s) for s in k.shape)):
            win = tuple(slice(s - 1 - jj, s - 1 - jj + o) for s, jj, o in zip(k.shape, j, oshape))
            out += k[j] * P[win]
    if mode == "same":
        starts = [(s // 2 if correlate else (s - 1) // 2) for s in k.shape]
        out = out[tuple(slice(st, st + n) for st, n in zip(starts, a.shape))]
    return out


def tol(dtype, ref) -> float:
    """The project's tolerance: 1e-5 (single) or 1e-10 (double) times max|ref|."""
    single = np.dtype(dtype) in (np.float32, np.complex64)
    finite = np.abs(ref[np.isfinite(ref)])
    scale = finite.max() if finite.size else 1.0
    return (1e-5 if single else 1e-10) * max(scale, 1e-300)


def assert_close(got, ref, dtype):
    """Equal within the project's tolerance; non-finite values equal exactly."""
    got = np.asarray(got)
    assert got.shape == ref.shape, (got.shape, ref.shape)
    fin = np.isfinite(ref)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    np.testing.assert_array_equal(got[~fin & ~np.isnan(ref)], ref[~fin & ~np.isnan(ref)])
    err = np.abs(got[fin] - ref[fin]).max() if fin.any() else 0.0
    assert err <= tol(dtype, ref), f"max error {err:.3g} > {tol(dtype, ref):.3g}"
