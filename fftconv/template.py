"""Template matching: zero-normalised cross-correlation and its peaks.

`match_template` scores every placement of a template in an image by the
correlation coefficient of the template and the image window under it
(scikit-image's definition, output shape and alignment), with fftconv's
engine for the cross term and float64 running window sums for the window
means and energies; `find_peaks` returns the best placements.
"""

from __future__ import annotations

import difflib
import math
import numbers

import numpy as np

from ._problem import default_threads
from .api import correlate

__all__ = ["find_peaks", "match_template"]

#: numpy.pad modes accepted by `match_template` (scikit-image passes `mode` to numpy.pad).
PAD_MODES = (
    "constant",
    "edge",
    "reflect",
    "symmetric",
    "wrap",
    "mean",
    "median",
    "maximum",
    "minimum",
    "linear_ramp",
)
#: Modes whose padded samples copy image samples (the validity mask is padded the same way).
_INDEX_MODES = ("edge", "reflect", "symmetric", "wrap")

#: The compiled running sums restart every this many rows / columns (at least the
#: template's extent), which bounds their rounding error.
RESTART = 64

_EPS = float(np.finfo(np.float64).eps)
#: Masked scores: a window (or the template under it) is flat when its sum of squared
#: deviations is at most this times the largest such energy in the output (the
#: correlations run through FFTs, whose errors scale with the whole array),
#: the tolerance of scikit-image's cross_correlate_masked.
MASKED_RTOL = 1e3 * _EPS
#: A template is flat when its standard deviation is at most this times max|template|.
TEMPLATE_RTOL = 64 * _EPS


def _choices(values) -> str:
    return ", ".join(repr(v) for v in values)


def _float_dtype(dt: np.dtype) -> np.dtype:
    """scikit-image's rule: float16/float32 -> float32, everything else float64."""
    return np.dtype(np.float32) if dt in (np.float16, np.float32) else np.dtype(np.float64)


def _as_real(x, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"{name} must be a real (bool, integer or float) array; got dtype {arr.dtype}"
        )
    if arr.ndim == 0 or arr.size == 0:
        raise ValueError(
            f"{name} must be a non-empty array with at least one dimension; got shape {arr.shape}"
        )
    return arr


def _check_mode(mode) -> str:
    if not isinstance(mode, str) or mode not in PAD_MODES:
        got = mode if isinstance(mode, str) else str(mode)
        close = difflib.get_close_matches(got, PAD_MODES, n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"mode={mode!r} is not one of the numpy.pad modes {_choices(PAD_MODES)}{hint}"
        )
    return mode


def _validate(image, template, pad_input, mode, constant_values, mask, image_mask, channel_axis):
    """Arrays with the channel axis last (length 1 without channels)."""
    img = _as_real(image, "image")
    tpl = _as_real(template, "template")
    if not isinstance(pad_input, (bool, np.bool_)):
        raise TypeError(f"pad_input must be True or False; got {pad_input!r}")
    _check_mode(mode)
    if not isinstance(constant_values, numbers.Real) or isinstance(constant_values, bool):
        raise TypeError(f"constant_values must be a real scalar; got {constant_values!r}")
    if channel_axis is None:
        if img.ndim != tpl.ndim:
            raise ValueError(
                f"image and template must have the same number of dimensions; got image shape "
                f"{img.shape} and template shape {tpl.shape} (colour images: pass channel_axis=)"
            )
        img, tpl = img[..., None], tpl[..., None]
    else:
        if isinstance(channel_axis, bool) or not isinstance(channel_axis, numbers.Integral):
            raise TypeError(f"channel_axis must be an int or None; got {channel_axis!r}")
        if img.ndim < 2 or not -img.ndim <= channel_axis < img.ndim:
            raise ValueError(
                f"channel_axis={channel_axis!r} is out of range for image shape {img.shape}"
            )
        c = channel_axis % img.ndim
        img = np.moveaxis(img, c, -1)
        if tpl.ndim == img.ndim:
            tpl = np.moveaxis(tpl, c, -1)
            if tpl.shape[-1] not in (1, img.shape[-1]):
                raise ValueError(
                    f"template has {tpl.shape[-1]} channels on channel_axis="
                    f"{channel_axis}, image has {img.shape[-1]}"
                )
        elif tpl.ndim == img.ndim - 1:
            tpl = tpl[..., None]
        else:
            raise ValueError(
                f"with channel_axis={channel_axis}, template must have "
                f"{img.ndim} or {img.ndim - 1} dimensions; got shape {tpl.shape}"
            )
        tpl = np.broadcast_to(tpl, tpl.shape[:-1] + img.shape[-1:])
    spatial, tshape = img.shape[:-1], tpl.shape[:-1]
    if not pad_input and any(t > s for t, s in zip(tshape, spatial)):
        raise ValueError(
            f"template (spatial shape {tshape}) is larger than image (spatial "
            f"shape {spatial}); use a smaller template or pad_input=True"
        )
    w = None if mask is None else _weights(mask, tpl, tshape)
    v = None if image_mask is None else _validity(image_mask, img, spatial)
    return img, tpl, w, v


def _weights(mask, tpl, tshape):
    w = _as_real(mask, "mask")
    if w.shape != tshape:
        raise ValueError(
            f"mask must have the template's shape {tshape} (without a channel axis); got {w.shape}"
        )
    w = np.broadcast_to(w.astype(np.float64)[..., None], tpl.shape)
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError("mask must hold finite, non-negative weights (True/1 = use the pixel)")
    if not w.any():
        raise ValueError("mask is zero everywhere: no template pixel is left to match")
    return w


def _validity(image_mask, img, spatial):
    v = np.asarray(image_mask)
    if v.dtype.kind not in "biu":
        raise TypeError(
            f"image_mask must be a boolean array (True = use the pixel); got dtype {v.dtype}"
        )
    if v.shape != spatial:
        raise ValueError(
            f"image_mask must have the image's shape {spatial} (without a channel axis); "
            f"got {v.shape}"
        )
    return np.broadcast_to(v.astype(bool)[..., None], img.shape)


def _pad(x, tshape, mode, constant_values, pad_input):
    """The image as scikit-image pads it (windows starting ``m // 2`` before each
    output sample), or `x` itself without padding."""
    if not pad_input:
        return x
    pads = [(m // 2, m - 1 - m // 2) for m in tshape] + [(0, 0)]
    if mode == "linear_ramp":  # the ramp depends on the pad width: pad as skimage does (m)
        full = np.pad(x, [(m, m) for m in tshape] + [(0, 0)], mode=mode)
        return full[
            tuple(
                slice(m - b, full.shape[d] - m + a)
                for d, (m, (b, a)) in enumerate(zip(tshape, pads))
            )
        ]
    if mode == "constant":
        return np.pad(x, pads, mode=mode, constant_values=constant_values)
    return np.pad(x, pads, mode=mode)


def _pad_validity(v, padded, tshape, mode, pad_input):
    """Which samples of the padded image are data: copies of valid samples for the
    index modes, every padded sample for the others, and never a non-finite one."""
    if pad_input:
        pads = [(m // 2, m - 1 - m // 2) for m in tshape] + [(0, 0)]
        v = np.pad(
            v,
            pads,
            mode=mode if mode in _INDEX_MODES else "constant",
            **({} if mode in _INDEX_MODES else {"constant_values": True}),
        )
    return v & np.isfinite(padded)


def match_template(
    image,
    template,
    pad_input: bool = False,
    mode: str = "constant",
    constant_values=0,
    *,
    mask=None,
    image_mask=None,
    method: str = "auto",
    channel_axis: int | None = None,
    max_memory: int | str | None = None,
) -> np.ndarray:
    """Match a template to an image by zero-normalised cross-correlation.

    The score at each placement is the correlation coefficient of the
    template and the image window under it, in [-1, 1]: scikit-image's
    `skimage.feature.match_template`, with its output shape and alignment,
    computed exactly where scikit-image loses precision.

    Parameters
    ----------
    image : array_like
        The image, any number of dimensions (channels too with
        `channel_axis`); NaN and infinite pixels are left out of every window (see
        `image_mask`).
    template : array_like
        The template, as many dimensions as `image` (or one fewer with
        `channel_axis`: one template for every channel). Non-finite pixels are left
        out (weight 0).
    pad_input : bool
        False: the output has shape ``image.shape - template.shape + 1`` and
        entry ``[i, j]`` scores the template with its top-left corner at
        ``image[i, j]``. True: the image is padded (with `mode`) so that the
        output has the image's shape and entry ``[i, j]`` scores the template
        centred (``template.shape // 2``) on ``image[i, j]``.
    mode : str
        numpy.pad's padding mode for ``pad_input=True``: 'constant', 'edge',
        'reflect' (numpy's: ``c b | a b c``), 'symmetric', 'wrap', 'mean',
        'median', 'maximum', 'minimum' or 'linear_ramp'.
    constant_values : scalar
        The padding value for mode='constant'.
    mask : array_like, optional
        Non-negative weights of the template's pixels (bool: which pixels
        count), the template's shape without a channel axis. The score
        becomes the weighted correlation coefficient.
    image_mask : array_like of bool, optional
        Which image pixels count (True = use), the image's shape without a
        channel axis. With
        `mask` and `image_mask` the score is Padfield's masked normalised
        cross-correlation: each placement correlates only the pixels valid in
        both.
    method : {'auto', 'direct', 'fft', 'oa', 'separable', 'lowrank'}
        How the correlations run (`fftconv.correlate`'s `method`).
    channel_axis : int, optional
        The image's channel axis. One score is summed over the channels, as
        OpenCV's ``TM_CCOEFF_NORMED`` does for colour: numerator and both
        energies are sums over channels (each channel centred on its own
        mean).
    max_memory : int or str, optional
        Passed to `fftconv.correlate`: its working memory, beyond which the
        correlations run tile by tile.

    Returns
    -------
    ndarray
        The scores, float32 for float16/float32 images, else float64.

    Raises
    ------
    ValueError
        A template larger than the image without `pad_input`, mismatched
        dimensions or mask shapes, an unknown `mode`, a mask that is all zero.
    TypeError
        Complex or non-numeric arrays, non-scalar `constant_values`.

    See Also
    --------
    find_peaks : the best placements in the scores.
    fftconv.correlate : the engine.

    Notes
    -----
    With ``x = image - mean(image)`` (per channel; the score does not change,
    the rounding does) and ``t' = template - mean(template)``, the score is
    ``sum(x_w t') / sqrt(sum((x_w - mean x_w)^2) * sum(t'^2))`` over each
    window ``x_w``. The numerator is one call of `fftconv.correlate` (mode
    'valid' on the padded image; the planner picks direct summation, FFT or
    overlap-add); the window sums of ``x`` and ``x^2`` are float64 running
    sums (compiled, for two spatial axes; numpy cumulative sums otherwise).

    Tolerances: a window is flat, and scores 0, when its sum of squared
    deviations is at most ``4 eps n c L s`` (``eps`` float64's epsilon, ``n``
    the template's size, ``c`` its channels, ``s`` the largest ``x^2`` that
    entered the running sums since they last restarted, ``L = bv + m0 + bh +
    m1`` the additions those sums made, ``bv = max(64, m0)``, ``bh = max(64,
    m1)``), which bounds their rounding; for the numpy path ``L`` is the sum
    of the padded image's lengths and ``s`` the largest ``x^2``. A template is
    flat (every score 0) when its standard deviation is at most ``64 eps
    max|template|``. Scores are clipped to [-1, 1]. float32 images run the
    numerator in float32 (the scores are within about 1e-5 of float64 ones).

    With `mask`, `image_mask` or NaN the score is the weighted correlation
    coefficient of the pixels valid in both, from six correlations (the
    validity, the image and its square with the weights; the validity with
    the weighted template and its square; the image with the weighted
    template), all in float64 as in Padfield (2012); here a
    window, or the template under it, is flat when its energy is at most
    ``1e3 eps`` times the largest one in the output (scikit-image's
    tolerance). Placements with fewer than two valid pixels score 0. Padded
    samples are data like the image's (mode='constant': valid; index modes:
    valid where the sample they copy is).

    References
    ----------
    .. [1] J. P. Lewis, "Fast Normalized Cross-Correlation", Industrial Light
           and Magic (1995).
    .. [2] D. Padfield, "Masked Object Registration in the Fourier Domain",
           IEEE Trans. Image Processing 21(5), 2706-2718 (2012).

    Examples
    --------
    >>> import numpy as np
    >>> import fftconv
    >>> template = np.zeros((3, 3))
    >>> template[1, 1] = 1
    >>> image = np.zeros((6, 6))
    >>> image[1, 1] = 1
    >>> image[4, 4] = -1
    >>> np.round(fftconv.match_template(image, template), 3)
    array([[ 1.   , -0.125,  0.   ,  0.   ],
           [-0.125, -0.125,  0.   ,  0.   ],
           [ 0.   ,  0.   ,  0.125,  0.125],
           [ 0.   ,  0.   ,  0.125, -1.   ]])
    >>> fftconv.match_template(image, template, pad_input=True).shape
    (6, 6)
    """
    img, tpl, w, v = _validate(
        image, template, pad_input, mode, constant_values, mask, image_mask, channel_axis
    )
    dt = _float_dtype(img.dtype)
    has_nan = img.dtype.kind == "f" and not np.isfinite(np.add.reduce(img, axis=None))
    tnan = tpl.dtype.kind == "f" and not np.isfinite(tpl).all()
    if w is not None or v is not None or has_nan or tnan:
        return _masked(img, tpl, w, v, dt, pad_input, mode, constant_values, method, max_memory)
    return _plain(img, tpl, dt, pad_input, mode, constant_values, method, max_memory)


def _correlate(x, k, method, max_memory):
    """'valid' correlation over the spatial axes of channels-first `x` and `k`,
    summed over the channels: one engine call."""
    if x.shape[0] == 1:
        return correlate(x[0], k[0], "valid", method=method, max_memory=max_memory)
    res = correlate(x, k, "valid", method=method, max_memory=max_memory, channel_axis=0)
    return res.sum(axis=0, dtype=res.dtype)


def _centred_template(tpl):
    t = tpl.astype(np.float64)
    axes = tuple(range(t.ndim - 1))
    tc = t - t.mean(axis=axes)
    tc -= tc.mean(axis=axes)  # the first mean's rounding, times the image, would bias the score
    tssd = float(np.sum(tc * tc))
    flat = tssd <= tc.size * (TEMPLATE_RTOL * float(np.max(np.abs(t)))) ** 2
    return tc, tssd, flat


def _plain(img, tpl, dt, pad_input, mode, constant_values, method, max_memory):
    tshape = tpl.shape[:-1]
    xp = _pad(img.astype(dt, copy=False), tshape, mode, constant_values, pad_input)
    centre = xp.mean(axis=tuple(range(xp.ndim - 1)), dtype=np.float64)
    # Channels first, less the mean: sums of squares keep the variance of
    # near-flat data, and the cross term's rounding scales with the deviations.
    x = np.subtract(
        np.moveaxis(xp, -1, 0),
        centre.astype(dt).reshape((-1,) + (1,) * len(tshape)),
        dtype=dt,
        order="C",  # channel planes contiguous, as the compiled sums read them
    )
    tc, tssd, flat = _centred_template(tpl)
    out_shape = tuple(p - m + 1 for p, m in zip(x.shape[1:], tshape))
    if flat:
        return np.zeros(out_shape, dt)
    num = _correlate(x, np.moveaxis(tc, -1, 0).astype(dt), method, max_memory)
    num = np.ascontiguousarray(num, dtype=dt)
    kern = _compiled() if len(tshape) == 2 else None
    if kern is not None:
        _score_compiled(kern, x, num, tshape, tssd)
    else:
        _score_numpy(x, num, tshape, tssd)
    return num


def _compiled():
    """The compiled kernels module, or None without numba (the numpy path runs)."""
    from .methods.rows import jit_kernels

    if jit_kernels() is None:  # also points numba's cache somewhere writable
        return None
    from . import _template_kernels

    return _template_kernels


def _score_compiled(kern, x, num, tshape, tssd):
    """Scores from the numerator `num` in place, by row bands on the cores."""
    from .methods import run_on_cores

    m0, m1 = tshape
    bv, bh = max(RESTART, m0), max(RESTART, m1)
    rtol = 4 * _EPS * m0 * m1 * x.shape[0] * (bv + m0 + bh + m1)
    ho = num.shape[0]
    threads = max(1, min(default_threads(), num.size // 2**16))
    rows = max(bv, -(-ho // (4 * threads)))
    jobs = [(i, min(i + rows, ho)) for i in range(0, ho, rows)]
    jobs.reverse()

    def work():
        while True:
            try:
                i0, i1 = jobs.pop()
            except IndexError:
                return
            kern.zncc_band(x, num, m0, m1, tssd, rtol, i0, i1, bv, bh)

    run_on_cores(work, min(threads, len(jobs)))


def _window_sums(a, tshape):
    """Sums of `a` over every window of shape `tshape` on its trailing axes
    (float64 cumulative sums)."""
    lead = a.ndim - len(tshape)
    for d, m in enumerate(tshape, start=lead):
        c = np.cumsum(a, axis=d, dtype=np.float64)
        c = np.concatenate([np.zeros_like(c.take([0], axis=d)), c], axis=d)
        a = c.take(range(m, c.shape[d]), axis=d) - c.take(range(0, c.shape[d] - m), axis=d)
    return a


def _score_numpy(x, num, tshape, tssd):
    """The scores by numpy (any number of spatial axes, or numba missing)."""
    n = math.prod(tshape)
    x64 = x.astype(np.float64)
    s1 = _window_sums(x64, tshape)
    s2 = _window_sums(x64 * x64, tshape)
    var = (s2 - s1 * s1 / n).sum(axis=0)
    scale = float(np.max(x64 * x64))
    tol = 4 * _EPS * n * x.shape[0] * (sum(x.shape[1:]) + sum(tshape)) * scale
    with np.errstate(invalid="ignore", divide="ignore"):
        r = num / np.sqrt(np.maximum(var, 0) * tssd)
    r[var <= tol] = 0
    np.clip(r, -1, 1, out=num, casting="unsafe")


def _masked(img, tpl, w, v, dt, pad_input, mode, constant_values, method, max_memory):
    """Weighted correlation coefficient over the pixels valid in image and template."""
    tshape = tpl.shape[:-1]
    if v is None:
        v = np.ones(img.shape, bool)
    padded = _pad(img.astype(np.float64), tshape, mode, constant_values, pad_input)
    v = _pad_validity(v, padded, tshape, mode, pad_input)
    t = tpl.astype(np.float64)
    w = np.ones(t.shape) if w is None else np.array(w)
    w[~np.isfinite(t)] = 0
    if not w.any():
        raise ValueError("the template has no valid pixel (NaN or mask 0 everywhere)")
    axes = tuple(range(t.ndim - 1))
    wsum = np.maximum(w.sum(axis=axes), np.finfo(np.float64).tiny)
    t = np.where(w > 0, t - (np.where(w > 0, t, 0) * w).sum(axis=axes) / wsum, 0)
    vals = np.where(v, padded, 0)
    counts = v.sum(axis=axes)
    x = np.where(v, padded - vals.sum(axis=axes) / np.maximum(counts, 1), 0)
    vf = v.astype(np.float64)
    wt = w * t

    def corr(a, k):
        if a.shape[-1] == 1:
            return correlate(a[..., 0], k[..., 0], "valid", method=method, max_memory=max_memory)[
                ..., None
            ]
        return correlate(a, k, "valid", method=method, max_memory=max_memory, channel_axis=-1)

    count = corr(vf, w)
    binary = np.array_equal(w, w.astype(bool))
    if binary:
        count = np.round(count)  # integer counts: rounding removes the FFT's error
    pixels = count if binary else np.round(corr(vf, (w > 0).astype(np.float64)))
    sx, sy = corr(x, w), corr(vf, wt)
    sxy, sxx, syy = corr(x, wt), corr(x * x, w), corr(vf, wt * t)
    with np.errstate(invalid="ignore", divide="ignore"):
        inv = np.where(pixels > 0.5, 1.0 / count, 0.0)
    num = (sxy - sx * sy * inv).sum(axis=-1)
    dx = np.maximum(sxx - sx * sx * inv, 0).sum(axis=-1)
    dy = np.maximum(syy - sy * sy * inv, 0).sum(axis=-1)
    ok = dx > MASKED_RTOL * max(float(sxx.sum(axis=-1).max()), 0.0)
    ok &= dy > MASKED_RTOL * max(float(syy.sum(axis=-1).max()), 0.0)
    ok &= pixels.sum(axis=-1) > 1.5
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(ok, num / np.sqrt(dx * dy), 0.0)
    return np.clip(r, -1, 1).astype(dt)


def find_peaks(
    score, *, min_distance: int = 1, threshold=None, num_peaks=None, exclude_border=True
) -> np.ndarray:
    """The best matches in a score map: coordinates of its local maxima, best first.

    Parameters
    ----------
    score : array_like
        Real scores (`match_template`'s output), any number of dimensions.
        NaN scores are ignored.
    min_distance : int
        A peak is the largest score within this Chebyshev distance (a
        ``2 * min_distance + 1`` square), and peaks are more than this far
        apart (scikit-image's `peak_local_max` rule). Equal maxima closer
        than that (a plateau, or twins) are reported once: the first in C
        order.
    threshold : float, optional
        Report only peaks with score >= threshold. Without one, peaks must be
        above the smallest score (a flat background is no peak, as in
        `peak_local_max`).
    num_peaks : int, optional
        Report at most this many (the best).
    exclude_border : bool or int
        Leave out peaks within this many samples of the edge; True means
        `min_distance`, False none.

    Returns
    -------
    ndarray of int, shape (n, score.ndim)
        Coordinates, by score descending (ties in C order).

    Examples
    --------
    >>> import numpy as np
    >>> import fftconv
    >>> s = np.zeros((7, 7))
    >>> s[2, 2], s[4, 5], s[5, 5], s[1, 5] = 0.9, 0.5, 0.5, np.nan
    >>> fftconv.find_peaks(s, exclude_border=False)
    array([[2, 2],
           [4, 5]])
    >>> fftconv.find_peaks(s, min_distance=3, exclude_border=False)
    array([[2, 2]])
    """
    from scipy import ndimage

    s = np.asarray(score)
    if s.dtype.kind not in "biuf" or s.ndim == 0:
        raise TypeError(
            f"score must be a real array with at least one dimension; got dtype "
            f"{s.dtype}, shape {s.shape}"
        )
    md = _nonneg_int(min_distance, "min_distance")
    if md < 1:
        raise ValueError(f"min_distance must be >= 1; got {min_distance!r}")
    border = (
        md
        if exclude_border is True
        else (0 if exclude_border is False else _nonneg_int(exclude_border, "exclude_border"))
    )
    if num_peaks is not None:
        num_peaks = _nonneg_int(num_peaks, "num_peaks")
    s = s.astype(np.float64)
    s = np.where(np.isnan(s), -np.inf, s)
    size = 2 * md + 1
    peak = s == ndimage.maximum_filter(s, size=size, mode="constant", cval=-np.inf)
    peak &= s > -np.inf
    if threshold is not None:
        peak &= s >= float(threshold)
    elif peak.any():
        peak &= s > s[s > -np.inf].min()
    if border:
        inner = np.zeros_like(peak)
        inner[tuple(slice(border, max(border, n - border)) for n in s.shape)] = True
        peak &= inner
    coords = np.argwhere(peak)
    if len(coords) == 0:
        return coords.astype(np.intp).reshape(0, s.ndim)
    values = s[tuple(coords.T)]
    # Two maxima within md of each other are equal (each is the other's window
    # maximum), so only they compete: keep the first in C order of each group.
    crowd = ndimage.uniform_filter(peak.astype(np.float64), size=size, mode="constant")
    crowded = crowd[tuple(coords.T)] * size**s.ndim > 1.5
    keep = np.ones(len(coords), bool)
    if crowded.any():
        from scipy.spatial import cKDTree

        idx = np.flatnonzero(crowded)
        tree = cKDTree(coords[idx])
        gone = np.zeros(len(idx), bool)
        for a in range(len(idx)):  # C order: argwhere's order
            if gone[a]:
                continue
            for b in tree.query_ball_point(coords[idx[a]], r=md, p=np.inf):
                if b != a and values[idx[b]] == values[idx[a]]:
                    gone[b] = True
        keep[idx[gone]] = False
    coords, values = coords[keep], values[keep]
    order = np.argsort(-values, kind="stable")
    if num_peaks is not None:
        order = order[:num_peaks]
    return coords[order].astype(np.intp)


def _nonneg_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise (
            TypeError
            if not isinstance(value, numbers.Integral) or isinstance(value, bool)
            else ValueError
        )(f"{name} must be a non-negative int; got {value!r}")
    return int(value)
