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
NDIMAGE = {
    "fill": "constant",
    "wrap": "wrap",
    "symmetric": "reflect",
    "mirror": "mirror",
    "nearest": "nearest",
}
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
    wide = (
        np.complex128
        if (x.dtype.kind == "c" or k.dtype.kind == "c" or isinstance(fillvalue, complex))
        else np.float64
    )
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
    assert err <= tolerance(dtype) * scale, (
        f"max error {err:.3g} > {tolerance(dtype)} x {scale:.3g}"
    )


def zncc_reference(image, template, weights=None, valid=None, flat_rtol=1e-20):
    """Zero-normalised cross-correlation by brute force in float64, 'valid' placements.

    `image` and `template` carry the channels on their last axis; `weights`
    (template-shaped) and `valid` (image-shaped, bool) give the weighted,
    masked correlation coefficient of the pixels valid in both (Padfield's
    definition; plain ZNCC when both are None). Each channel is centred on its
    own weighted mean under the window; numerator and energies are summed over
    channels. A window or template whose energy is at most `flat_rtol` times
    its own sum of squares scores 0 (that is: flat), as does a placement with
    fewer than two valid pixels.
    """
    x = np.asarray(image, np.float64)
    t = np.asarray(template, np.float64)
    w = (
        np.ones(t.shape)
        if weights is None
        else np.broadcast_to(np.asarray(weights, float), t.shape)
    )
    v = np.isfinite(x) if valid is None else (np.broadcast_to(valid, x.shape) & np.isfinite(x))
    w = np.where(np.isfinite(t), w, 0.0)
    t = np.where(w > 0, t, 0.0)
    x = np.where(v, x, 0.0)
    ts = t.shape[:-1]
    out_shape = tuple(a - b + 1 for a, b in zip(x.shape[:-1], ts))
    out = np.zeros(out_shape)
    for o in itertools.product(*(range(s) for s in out_shape)):
        win = tuple(slice(a, a + b) for a, b in zip(o, ts))
        xw, ww = x[win], w * v[win]
        num = ex = et = 0.0
        for c in range(x.shape[-1]):
            wc = ww[..., c]
            n = wc.sum()
            if n <= 0:
                continue
            xc = xw[..., c] - (wc * xw[..., c]).sum() / n
            tc = t[..., c] - (wc * t[..., c]).sum() / n
            num += (wc * xc * tc).sum()
            ex += (wc * xc * xc).sum()
            et += (wc * tc * tc).sum()
        count = (ww > 0).sum()
        scale_x = (ww * xw * xw).sum()
        scale_t = (ww * t * t).sum()
        if count < 2 or ex <= flat_rtol * scale_x or et <= flat_rtol * scale_t:
            continue
        out[o] = num / np.sqrt(ex * et)
    return np.clip(out, -1, 1)


def peaks_reference(score, min_distance=1, threshold=None, num_peaks=None, border=0):
    """find_peaks by brute force: every sample that is the largest (NaN ignored)
    within Chebyshev distance `min_distance`, `border` samples away from the edge,
    at least `threshold` (or, without one, above the smallest score); then, best first (ties in C order), each kept unless a
    kept one is within `min_distance`."""
    s = np.asarray(score, np.float64)
    lowest = np.nanmin(s) if np.isfinite(s).any() else np.inf
    cands = []
    for idx in itertools.product(*(range(n) for n in s.shape)):
        val = s[idx]
        if np.isnan(val) or any(i < border or i >= n - border for i, n in zip(idx, s.shape)):
            continue
        if (val < threshold) if threshold is not None else not (val > lowest):
            continue
        win = tuple(slice(max(0, i - min_distance), i + min_distance + 1) for i in idx)
        if np.nanmax(s[win]) == val:
            cands.append((-val, idx))
    cands.sort()
    kept = []
    for _negval, idx in cands:
        if all(max(abs(a - b) for a, b in zip(idx, k)) > min_distance for k in kept):
            kept.append(idx)
    if num_peaks is not None:
        kept = kept[:num_peaks]
    return np.array(kept, dtype=int).reshape(len(kept), s.ndim)


def normalized_reference(
    x, k, mode="same", boundary="fill", fillvalue=0, valid=None, correlate=False
):
    """Normalised convolution by float64 direct summation: NaN (and `valid` False)
    samples are left out and the kernel renormalised over the samples left,
    ``sum(k * x * m) / sum(k * m) * sum(k)``; padded samples are valid for the index
    boundaries where the sample they copy is, and valid for 'fill'. Returns
    (result, weights sum(k * m) / sum(k)); result NaN where the weight is 0."""
    x = np.asarray(x, np.float64)
    m = np.isfinite(x) if valid is None else (np.asarray(valid, bool) & np.isfinite(x))
    data = np.where(m, x, 0.0)
    ksum = float(np.sum(k))
    num = direct_reference(data, k, mode, boundary, fillvalue, correlate)
    if boundary == "fill":
        den = direct_reference(m.astype(float), k, mode, "fill", 1.0, correlate)
    else:
        den = direct_reference(m.astype(float), k, mode, boundary, 0, correlate)
    wts = den / ksum
    with np.errstate(invalid="ignore", divide="ignore"):
        res = np.where(den != 0, num / den * ksum, np.nan)
    return res, wts
