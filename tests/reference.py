"""Reference implementations the tests compare against.

`direct_reference` is float64 (complex128) direct summation over a numpy.pad
padded image: the definition of every mode and boundary, written as plainly as
possible and sharing no code with fftconv.
"""

from __future__ import annotations

import itertools

import numpy as np

#: fftconv boundary -> numpy.pad mode
NUMPY_PAD = {
    "fill": "constant",
    "wrap": "wrap",
    "symmetric": "symmetric",
    "mirror": "reflect",
    "nearest": "edge",
}
#: fftconv boundary -> scipy.ndimage mode
NDIMAGE = {"fill": "constant", "wrap": "wrap", "symmetric": "reflect", "mirror": "mirror",
           "nearest": "nearest"}
#: fftconv boundary -> scipy.signal.convolve2d boundary
SIGNAL = {"fill": "fill", "wrap": "wrap", "symmetric": "symm"}


def np_pad(x, pad_width, boundary, fillvalue=0):
    if boundary == "fill":
        return np.pad(x, pad_width, mode="constant", constant_values=fillvalue)
    return np.pad(x, pad_width, mode=NUMPY_PAD[boundary])


def direct_reference(x, k, mode="full", boundary="fill", fillvalue=0, correlate=False):
    """n-D convolution (or correlation) over all axes by float64 direct summation."""
    x = np.asarray(x)
    k = np.asarray(k)
    wide = np.complex128 if (x.dtype.kind == "c" or k.dtype.kind == "c"
                             or isinstance(fillvalue, complex)) else np.float64
    x = x.astype(wide)
    k = k.astype(wide)
    if correlate:
        k = np.conj(k[(slice(None, None, -1),) * k.ndim])
    if mode == "valid":
        swap = not all(a >= b for a, b in zip(x.shape, k.shape))
        if swap:
            if correlate:
                k = np.conj(k[(slice(None, None, -1),) * k.ndim])
                x, k = k, np.conj(x[(slice(None, None, -1),) * x.ndim])
                res = direct_reference(x, k, "valid")
                return res[(slice(None, None, -1),) * res.ndim]
            x, k = k, x
        pads = [(0, 0)] * x.ndim
    elif mode == "full":
        pads = [(s - 1, s - 1) for s in k.shape]
    else:
        starts = [s // 2 if correlate else (s - 1) // 2 for s in k.shape]
        pads = [(s - 1 - st, st) for s, st in zip(k.shape, starts)]
    P = np_pad(x, pads, boundary, fillvalue) if any(p != (0, 0) for p in pads) else x
    oshape = [p - s + 1 for p, s in zip(P.shape, k.shape)]
    out = np.zeros(oshape, wide)
    with np.errstate(invalid="ignore", over="ignore"):
        for j in itertools.product(*(range(s) for s in k.shape)):
            win = tuple(slice(s - 1 - jj, s - 1 - jj + o) for s, jj, o in zip(k.shape, j, oshape))
            out += k[j] * P[win]
    return out


#: The name the method tests use.
reference = direct_reference


def tolerance(dtype) -> float:
    """The README's stated tolerance, relative to max|reference| (its finite part)."""
    return 1e-5 if np.dtype(dtype) in (np.float32, np.complex64) else 1e-10


def assert_close(result, ref, dtype=None):
    """Equal within the stated tolerance; non-finite values equal exactly."""
    dtype = result.dtype if dtype is None else dtype
    result = np.asarray(result)
    ref = np.asarray(ref)
    assert result.shape == ref.shape, (result.shape, ref.shape)
    if not ref.size:
        return
    fin = np.isfinite(ref)
    np.testing.assert_array_equal(np.isnan(result), np.isnan(ref))
    inf = ~fin & ~np.isnan(ref)
    np.testing.assert_array_equal(result[inf], ref[inf])
    scale = max(float(np.max(np.abs(ref[fin]))) if fin.any() else 1.0, 1e-300)
    err = float(np.max(np.abs(result[fin] - ref[fin]))) if fin.any() else 0.0
    assert err <= tolerance(dtype) * scale, f"max error {err:.3g} > {tolerance(dtype)} x {scale:.3g}"
