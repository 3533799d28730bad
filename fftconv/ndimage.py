"""Drop-in replacements for scipy.ndimage's `convolve` and `correlate`.

Change ``from scipy import ndimage`` to ``from fftconv import ndimage`` for
these two functions: they take scipy.ndimage's arguments (``input, weights,
output=None, mode='reflect', cval=0.0, origin=0, axes=None``), return
scipy.ndimage's dtypes (the input's, or `output`'s), raise its exception types,
and run on fftconv's engine, which picks direct summation or the FFT by size.

The output is always the size of `input`. Each kernel is centred at
``weights.shape[k] // 2 + origin[k]``; the engine's 'same' crop is used when
that is where it centres, otherwise its 'full' result is cropped.

What differs, on purpose: on the FFT path results equal SciPy's within
round-off, not bit for bit; integer outputs are truncated toward zero as
SciPy's C cast does, after values within round-off of an integer are taken as
that integer (so an exact integer result never truncates to the one below).
"""

from __future__ import annotations

import operator
import warnings
from collections.abc import Iterable

import numpy as np

from ._scipy_compat import run_engine, to_integer

__all__ = ["convolve", "correlate"]

#: scipy.ndimage's boundary modes and fftconv's names for them (for filters,
#: 'grid-wrap' is 'wrap' and 'grid-constant' is 'constant' in SciPy too).
MODES = {
    "reflect": "symmetric",
    "grid-mirror": "symmetric",
    "mirror": "mirror",
    "nearest": "nearest",
    "wrap": "wrap",
    "grid-wrap": "wrap",
    "constant": "fill",
    "grid-constant": "fill",
}

# dtypes scipy.ndimage's C filters read and write ("array type not supported" otherwise)
_NDIMAGE_KINDS = "biu"
_NDIMAGE_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _supported(dt: np.dtype) -> bool:
    return dt.kind in _NDIMAGE_KINDS or dt.newbyteorder("=") in _NDIMAGE_FLOATS


def _check_axes(axes, ndim: int) -> tuple[int, ...]:
    if axes is None:
        return tuple(range(ndim))
    if np.isscalar(axes):
        axes = (operator.index(axes),)
    elif isinstance(axes, Iterable):
        axes = tuple(operator.index(ax) for ax in axes)
        for ax in axes:
            if ax < -ndim or ax > ndim - 1:
                raise ValueError(f"specified axis: {ax} is out of range for {ndim}-d input")
        axes = tuple(ax % ndim for ax in axes)
    else:
        raise ValueError(f"axes must be an integer, iterable of integers, or None; got {axes!r}")
    if len(set(axes)) != len(axes):
        raise ValueError(f"axes must be unique; got {axes!r}")
    return axes


def _normalize_sequence(value, rank: int) -> list:
    if not isinstance(value, str) and np.iterable(value):
        out = list(value)
        if len(out) != rank:
            raise RuntimeError(
                f"sequence argument must have length equal to input rank ({rank}); got {value!r}"
            )
        return out
    return [value] * rank


def _get_output(output, input: np.ndarray, complex_output: bool) -> np.ndarray:
    """scipy.ndimage's `output` rules: None, a dtype (or its name), or an array."""
    shape = input.shape
    if output is None:
        # allocated by the caller only if the result needs a cast (no zero-filled copy)
        # SciPy allocates by dtype name: native byte order
        dtype = np.promote_types(input.dtype, np.complex64) if complex_output else input.dtype.name
        return np.empty((0,) * len(shape), dtype=dtype)
    if isinstance(output, (type, np.dtype)):
        if complex_output and np.dtype(output).kind != "c":
            warnings.warn("promoting specified output dtype to complex", stacklevel=4)
            output = np.promote_types(output, np.complex64)
        return np.empty((0,) * len(shape), dtype=output)  # a dtype carrier, as for None
    if isinstance(output, str):
        dt = np.dtype(output)
        if complex_output and dt.kind != "c":
            raise RuntimeError(f"output must have complex dtype; got output={output!r}")
        if not issubclass(dt.type, np.number):
            raise RuntimeError(f"output must have numeric dtype; got output={output!r}")
        return np.empty((0,) * len(shape), dtype=dt)
    out = np.asarray(output)
    if out.shape != shape:
        raise RuntimeError(f"output shape not correct: got {out.shape}, input has {shape}")
    if complex_output and out.dtype.kind != "c":
        raise RuntimeError(f"output must have complex dtype; got {out.dtype}")
    return out


def _correlate_or_convolve(input, weights, output, mode, cval, origin, convolution, axes):
    input = np.asarray(input)
    weights = np.asarray(weights)
    complex_input = input.dtype.kind == "c"
    complex_weights = weights.dtype.kind == "c"
    complex_output = complex_input or complex_weights
    if complex_output:
        if complex_weights and not convolution:
            weights = weights.conj()  # as numpy.correlate: conjugate the weights
        if not complex_input and np.iscomplexobj(cval):
            raise ValueError(
                f"Cannot provide a complex-valued cval when the input is real; got cval={cval!r}"
            )
        parts = [input.real.dtype, weights.real.dtype]
    else:
        if np.iscomplexobj(cval):
            raise TypeError(f"cval must be a real number, not complex; got cval={cval!r}")
        parts = [input.dtype]

    axes = _check_axes(axes, input.ndim)
    work = np.complex128 if complex_output else np.float64
    weights = np.asarray(weights, dtype=work)
    if len(axes) < input.ndim:
        if weights.ndim != len(axes):
            raise RuntimeError(f"weights.ndim ({weights.ndim}) must match len(axes) ({len(axes)})")
        weights = np.expand_dims(weights, tuple(d for d in range(input.ndim) if d not in axes))
    origins = _normalize_sequence(origin, len(axes))
    full_origins = [0] * input.ndim
    for o, ax in zip(origins, axes):
        full_origins[ax] = operator.index(o)
    wshape = [n for n in weights.shape if n > 0]
    if len(wshape) != input.ndim:
        raise RuntimeError(f"weights.ndim ({len(wshape)}) must match len(axes) ({len(axes)})")

    # Index of the input sample that weight 0 multiplies, relative to the output
    # sample, as scipy.ndimage defines it (convolution: reversed weights, and the
    # origin mirrored, one further for even sizes).
    for d, (o, n) in enumerate(zip(full_origins, weights.shape)):
        oc = (-o - (0 if n & 1 else 1)) if convolution else o
        if oc < -(n // 2) or oc > (n - 1) // 2:
            raise ValueError(
                "Invalid origin; origin must satisfy -(weights.shape[k] // 2) <= origin[k] <= "
                f"(weights.shape[k]-1) // 2; got origin {o} for weights of size {n} on axis {d}"
            )

    out = _get_output(output, input, complex_output)
    if not isinstance(mode, str) and isinstance(mode, Iterable):
        raise RuntimeError(f"A sequence of modes is not supported; got mode={mode!r}")
    if mode not in MODES:
        raise RuntimeError(
            f"boundary mode not supported: {mode!r}; use one of {', '.join(map(repr, MODES))}"
        )
    out_parts = [out.real.dtype] if complex_output else [out.dtype]
    if not all(_supported(np.dtype(dt)) for dt in parts + out_parts):
        raise RuntimeError(
            f"array type not supported: scipy.ndimage filters read and write bool, integer, "
            f"float32 and float64 (or complex of those); got input {input.dtype}, "
            f"output {out.dtype}"
        )

    # SciPy's C filter drops weights with |w| <= DBL_EPSILON (NaN included); complex
    # data it filters as real and imaginary parts, so each part of the weights drops
    # its own tiny values.
    if complex_output:
        tiny_re, tiny_im = _tiny(weights.real), _tiny(weights.imag)
        tiny = tiny_re | tiny_im
        weights = _complex(np.where(tiny_re, 0, weights.real), np.where(tiny_im, 0, weights.imag))
    else:
        tiny = _tiny(weights)
        if tiny.any():
            weights = np.where(tiny, 0, weights)

    # `out` is only a dtype carrier until the result exists, unless the caller gave an array
    fresh = output is None or isinstance(output, (type, np.dtype, str))
    if input.size == 0:
        return np.zeros(input.shape, out.dtype) if fresh else out
    if input.ndim == 0:
        res = input * weights
    elif complex_output and not _finite(input, weights, mode, cval):
        res = _complex_by_parts(
            input, weights, complex_weights, axes, full_origins, mode, cval, convolution
        )
    elif tiny.any() and not complex_output:
        res = _drop_tiny(input, weights, axes, full_origins, mode, cval, convolution)
    else:
        res = _engine(input, weights, axes, full_origins, mode, cval, convolution, out.dtype)
    if out.dtype.kind in "biu" and res.dtype.kind not in "biu":
        res = to_integer(res, out.dtype, "trunc")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", np.exceptions.ComplexWarning)
        if fresh:
            res = np.asarray(res)
            if res.dtype.kind == "c" and out.dtype.kind != "c":
                res = res.real
            res = res.astype(out.dtype, copy=False)
            return res if res.flags.c_contiguous else res.copy()
        out[...] = res
    return out


def _tiny(w: np.ndarray) -> np.ndarray:
    return ~(np.abs(w) > np.finfo(np.float64).eps)


def _finite(input, weights, mode, cval) -> bool:
    """Whether no NaN or inf takes part: the input, the weights, and a used `cval`."""
    used_cval = MODES[mode] == "fill" and not np.isfinite(cval)
    return not used_cval and bool(np.isfinite(input).all() and np.isfinite(weights).all())


def _complex_by_parts(input, weights, complex_weights, axes, origins, mode, cval, convolution):
    """A complex result with NaN or inf about, as SciPy computes it: real filters of the
    real and imaginary parts (of the input, and of the weights when they are complex),
    so a NaN or inf stays in the parts it is in (a complex product would spread it to
    both) and each part drops its own tiny weights.

    `weights` are complex128 with their tiny parts zeroed.
    """

    def part(x, w, c):
        return _drop_tiny(x, w, axes, origins, mode, c, convolution)

    if input.dtype.kind != "c":  # complex weights: cval is real
        return _complex(part(input, weights.real, cval), part(input, weights.imag, cval))
    xr, xi, cr, ci = input.real, input.imag, np.real(cval), np.imag(cval)
    if not complex_weights:
        return _complex(part(xr, weights.real, cr), part(xi, weights.real, ci))
    wr, wi = weights.real, weights.imag
    return _complex(part(xr, wr, cr) - part(xi, wi, ci), part(xr, wi, cr) + part(xi, wr, ci))


def _complex(re, im) -> np.ndarray:
    """``re + 1j * im`` without its arithmetic, which makes ``1j * inf`` NaN + inf j."""
    z = np.empty(np.shape(re), np.complex128)
    z.real, z.imag = re, im
    return z


def _drop_tiny(input, weights, axes, origins, mode, cval, convolution):
    """The result with the zeroed (tiny) weights left out, not multiplied: SciPy skips
    them, so a NaN or inf that only they reach leaves the output alone, where a zero
    weight would spread it (0 x inf is NaN).

    The finite part runs on the engine with the non-finite samples zeroed. An output
    that a kept weight reaches a non-finite sample from is the sum of those terms:
    +inf, -inf, or NaN (a NaN term, or infinities of both signs), found by filtering
    indicator masks with the kept weights' signs.
    """
    constant = MODES[mode] == "fill"
    fin = np.isfinite(input)
    cval_fin = not constant or bool(np.isfinite(cval))
    if fin.all() and cval_fin:
        return _engine(input, weights, axes, origins, mode, cval, convolution, np.float64)
    clean = np.where(fin, input, 0)
    res = np.array(
        _engine(
            clean, weights, axes, origins, mode, cval if cval_fin else 0.0, convolution, np.float64
        )
    )
    pos, neg = (weights > 0).astype(np.float64), (weights < 0).astype(np.float64)

    def reached(mask, cval_in_mask, w):
        fill = 1.0 if constant and cval_in_mask else 0.0
        hit = _engine(
            mask.astype(np.float64), w, axes, origins, mode, fill, convolution, np.float64
        )
        return np.asarray(hit) > 0.5

    cv = float(cval) if constant else 0.0
    up_in, down_in = input == np.inf, input == -np.inf
    up = reached(up_in, cv == np.inf, pos) | reached(down_in, cv == -np.inf, neg)
    down = reached(up_in, cv == np.inf, neg) | reached(down_in, cv == -np.inf, pos)
    nan = reached(np.isnan(input), np.isnan(cv), pos + neg) | (up & down)
    res[up] = np.inf
    res[down] = -np.inf
    res[nan] = np.nan
    return res


def _engine(input, weights, axes, origins, mode, cval, convolution, out_dtype):
    """The ndimage result on fftconv's engine: a convolution 'same' or a crop of 'full'.

    With ``u`` the kernel to convolve with (the weights, or for a correlation
    the weights reversed), output ``i`` is full-convolution sample ``i + s``:
    ``s = n//2 + origin`` for convolve, ``s = (n-1)//2 - origin`` for
    correlate. The engine's convolution 'same' starts at ``(n-1)//2`` and its
    correlation 'same' at ``n//2``.
    """
    boundary = MODES[mode]
    conv_axes = tuple(axes)
    if convolution:
        u = weights
        starts = [weights.shape[d] // 2 + origins[d] for d in range(input.ndim)]
    else:
        u = weights[(slice(None, None, -1),) * weights.ndim]
        starts = [(weights.shape[d] - 1) // 2 - origins[d] for d in range(input.ndim)]
    work = np.result_type(input.dtype, u.dtype)  # the weights are float64 or complex128
    kw = dict(boundary=boundary, fillvalue=cval, axes=conv_axes, out_dtype=work)
    if all(starts[d] == (u.shape[d] - 1) // 2 for d in conv_axes):
        return run_engine(input, u, mode="same", **kw)
    if all(starts[d] == u.shape[d] // 2 for d in conv_axes):
        # correlate2d-style: full correlation with conj(reverse(v)) is convolution with v
        v = u[(slice(None, None, -1),) * u.ndim]
        v = np.conj(v) if v.dtype.kind == "c" else v
        return run_engine(input, v, mode="same", correlate=True, **kw)
    full = run_engine(input, u, mode="full", **kw)
    crop = tuple(
        slice(starts[d], starts[d] + input.shape[d]) if d in conv_axes else slice(None)
        for d in range(input.ndim)
    )
    return full[crop]


def correlate(input, weights, output=None, mode="reflect", cval=0.0, origin=0, *, axes=None):
    """Multidimensional correlation; scipy.ndimage.correlate on fftconv's engine.

    Parameters
    ----------
    input : array_like
        The image.
    weights : array_like
        The kernel: as many dimensions as `input`, or as `axes` names.
        Complex weights are conjugated (as numpy.correlate does).
    output : array or dtype, optional
        The array to write into, or the dtype of the result (default the
        input's; complex when either input is complex).
    mode : {'reflect', 'constant', 'nearest', 'mirror', 'wrap', 'grid-constant', 'grid-mirror', 'grid-wrap'}
        How the input is extended past its edges: 'reflect' (= 'grid-mirror')
        repeats the edge sample (``d c b a | a b c d``), 'mirror' does not
        (``d c b | a b c d``), 'nearest' repeats it (``a a a | a b c d``),
        'wrap' (= 'grid-wrap') is periodic, 'constant' (= 'grid-constant')
        pads with `cval`.
    cval : scalar
        The padding value of 'constant'.
    origin : int or sequence of int
        Shifts the kernel: it is centred at ``weights.shape[k] // 2 + origin[k]``
        (positive origins move it left).
    axes : int or sequence of int, optional
        The axes to filter (default all).

    Returns
    -------
    ndarray
        `output` when given as an array, else a new array. Integer outputs are
        truncated toward zero, as SciPy's C code casts.

    Examples
    --------
    >>> import numpy as np
    >>> from fftconv import ndimage
    >>> ndimage.correlate(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 0.0, 0.0]))
    array([1., 1., 2., 3.])
    >>> ndimage.correlate(np.arange(5), [1, 1, 1], mode="wrap")
    array([5, 3, 6, 9, 7])
    """
    return _correlate_or_convolve(input, weights, output, mode, cval, origin, False, axes)


def convolve(input, weights, output=None, mode="reflect", cval=0.0, origin=0, *, axes=None):
    """Multidimensional convolution; scipy.ndimage.convolve on fftconv's engine.

    The arguments are those of `correlate`; the weights are reversed (and not
    conjugated), and the kernel is centred at ``weights.shape[k] // 2 + origin[k]``
    of the reversed weights' indexing, as SciPy does.

    Examples
    --------
    >>> import numpy as np
    >>> from fftconv import ndimage
    >>> ndimage.convolve(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 0.0, 0.0]))
    array([2., 3., 4., 4.])
    >>> ndimage.convolve(np.eye(3), np.ones((2, 2)), mode="constant")
    array([[2., 1., 0.],
           [1., 2., 1.],
           [0., 1., 1.]])
    """
    return _correlate_or_convolve(input, weights, output, mode, cval, origin, True, axes)
