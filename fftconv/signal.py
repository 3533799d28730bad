"""Drop-in replacements for scipy.signal's convolution functions.

Change ``from scipy import signal`` to ``from fftconv import signal`` (or
``from scipy.signal import convolve`` to ``from fftconv.signal import
convolve``): each function here takes SciPy's arguments with SciPy's defaults,
returns SciPy's shapes and dtypes, raises SciPy's exception types for the
inputs SciPy rejects, and runs on fftconv's engine (`fftconv.api`).

What differs, on purpose:

- Results of the FFT path are equal to SciPy's within round-off (float64:
  ``1e-10 * max|result|``, float32: ``1e-5 * max|result|``), not bit for bit;
  integer results are exact (see `convolve`).
- NaN and infinity propagate as direct summation says on every method (SciPy's
  FFT path spreads them over the whole result and warns).
- Empty, long-double and object-dtype inputs, which fftconv's engine has no
  path for, are passed to SciPy's own function, so their results are SciPy's.
"""

from __future__ import annotations

import numbers
import operator
import timeit
import warnings

import numpy as np
import scipy.signal as _scipy_signal

from ._problem import make_problem, normalize_threads, result_dtype, valid_swap
from ._scipy_compat import engine_unsupported, run_engine
from .planner import plan_problem

__all__ = [
    "choose_conv_method",
    "convolve",
    "convolve2d",
    "correlate",
    "correlate2d",
    "fftconvolve",
    "oaconvolve",
]

# SciPy's own functions, bound now so that replacing scipy.signal's names with
# these drop-ins (as the SciPy test-suite run does) cannot make a hand-over recurse.
_SCIPY = {
    name: getattr(_scipy_signal, name)
    for name in (
        "convolve",
        "correlate",
        "fftconvolve",
        "oaconvolve",
        "convolve2d",
        "correlate2d",
        "choose_conv_method",
    )
}

_MODES = ("valid", "same", "full")
_MODE_MSG = "Acceptable mode flags are 'valid', 'same', or 'full'."
_METHOD_MSG = "Acceptable method flags are 'auto', 'direct', or 'fft'."
_BOUNDARIES = {
    "fill": "fill",
    "pad": "fill",
    "wrap": "wrap",
    "circular": "wrap",
    "symm": "symmetric",
    "symmetric": "symmetric",
}
_BOUNDARY_MSG = (
    "Acceptable boundary flags are 'fill', 'circular' (or 'wrap'), and 'symmetric' (or 'symm')."
)


def _check_mode(mode, message: str = _MODE_MSG) -> None:
    if not isinstance(mode, str) or mode not in _MODES:
        raise ValueError(f"{message} Got mode={mode!r}.")


def _swap_needed(mode, shape1, shape2, axes=None) -> bool:
    """SciPy's rule for 'valid' mode (`_problem.valid_swap`): the larger input goes
    first; neither larger raises."""
    if mode != "valid" or not shape1:
        return False
    return valid_swap(shape1, shape2, range(len(shape1)) if axes is None else axes)


def _reverse_and_conj(x: np.ndarray) -> np.ndarray:
    rev = x[(slice(None, None, -1),) * x.ndim]
    return np.conj(rev) if rev.dtype.kind == "c" else rev


def _np_conv_ok(volume, kernel, mode) -> bool:
    """Whether SciPy's direct method takes numpy.convolve's 1-D fast path."""
    if volume.ndim == kernel.ndim == 1:
        return mode in ("full", "valid") or (mode == "same" and volume.size >= kernel.size)
    return False


def _check_direct_dtype(volume, kernel, mode, method, out_dtype) -> None:
    """SciPy's N-d direct method has no bool, float16 or object kernel: it raises there."""
    if out_dtype not in (np.dtype(np.bool_), np.dtype(np.float16)):
        return
    if _np_conv_ok(volume, kernel, mode):
        return
    if method == "direct" or (
        method == "auto" and _SCIPY["choose_conv_method"](volume, kernel, mode) == "direct"
    ):
        raise ValueError(
            f"Unsupported type: scipy.signal's direct method has no {out_dtype} path for "
            f"{volume.ndim}-d inputs (use method='fft', or cast the inputs)"
        )


def convolve(in1, in2, mode: str = "full", method: str = "auto") -> np.ndarray:
    """Convolve two N-dimensional arrays; scipy.signal.convolve on fftconv's engine.

    Parameters
    ----------
    in1 : array_like
        First input.
    in2 : array_like
        Second input, with as many dimensions as `in1`.
    mode : {'full', 'valid', 'same'}
        'full' is the whole linear convolution, 'same' the crop of the size of
        `in1` centred as SciPy centres it, 'valid' only the outputs that need
        no zero padding (one input must be at least as large as the other on
        every axis; the inputs are swapped when `in2` is the larger).
    method : {'auto', 'direct', 'fft'}
        'auto' lets fftconv's planner choose; 'direct' sums directly; 'fft'
        uses the FFT.

    Returns
    -------
    ndarray
        ``numpy.result_type(in1, in2)``, as in SciPy: integer inputs give
        integer results (exact: computed in float64 and rounded while every
        partial sum is below 2**50, by int64 direct summation above, which
        wraps like C integer arithmetic), bool inputs give bool.

    See Also
    --------
    fftconv.convolve : boundary modes, channel axes, threads, ``out=``.

    Examples
    --------
    >>> import numpy as np
    >>> from fftconv import signal
    >>> signal.convolve([3, 4, 5, 6], [1, 2, 3])
    array([ 3, 10, 22, 28, 27, 18])
    >>> signal.convolve(np.array([1.0, 2.0, 3.0]), np.array([0.0, 1.0, 0.5]), "same")
    array([1. , 2.5, 4. ])
    """
    volume = np.asarray(in1)
    kernel = np.asarray(in2)
    if volume.ndim == kernel.ndim == 0:
        return volume * kernel
    if volume.ndim != kernel.ndim:
        raise ValueError(
            "volume and kernel should have the same dimensionality; got "
            f"{volume.ndim} and {kernel.ndim} dimensions"
        )
    _check_mode(mode)
    if method not in ("auto", "direct", "fft"):
        raise ValueError(f"{_METHOD_MSG} Got method={method!r}.")
    if volume.size == 0 or kernel.size == 0 or engine_unsupported(volume, kernel):
        return _SCIPY["convolve"](volume, kernel, mode, method)
    if _swap_needed(mode, volume.shape, kernel.shape):
        volume, kernel = kernel, volume
    out_dtype = np.result_type(volume, kernel)
    _check_direct_dtype(volume, kernel, mode, method, out_dtype)
    if out_dtype.kind in "fc":
        # SciPy's FFT path transforms an integer input in float64 even when the
        # result is float32 (uint8 with float32): compute at that precision.
        volume, kernel = _to_engine_dtype(volume, kernel, _fft_dtype(volume.dtype, kernel.dtype))
    return run_engine(volume, kernel, mode=mode, out_dtype=out_dtype, method=method)


def correlate(in1, in2, mode: str = "full", method: str = "auto") -> np.ndarray:
    """Cross-correlate two N-dimensional arrays; scipy.signal.correlate on fftconv's engine.

    The definition is SciPy's: ``convolve(in1, in2[::-1, ...].conj(), mode,
    method)``, so 'same' is centred as `convolve` centres it (which differs
    from `correlate2d` by one sample for even-sized `in2`). The arguments and
    dtype rules are those of `convolve`.

    Examples
    --------
    >>> import numpy as np
    >>> from fftconv import signal
    >>> signal.correlate([1, 2, 3], [4, 5, 6])
    array([ 6, 17, 32, 23, 12])
    >>> signal.correlate(np.array([1.0, 2.0, 3.0]), np.array([4.0, 5.0]), "same")
    array([ 5., 14., 23.])
    """
    a = np.asarray(in1)
    k = np.asarray(in2)
    if a.ndim == k.ndim == 0:
        return a * (np.conj(k) if k.dtype.kind == "c" else k)
    if a.ndim != k.ndim:
        raise ValueError(
            f"in1 and in2 should have the same dimensionality; got {a.ndim} and {k.ndim} dimensions"
        )
    if a.size == 0 or k.size == 0 or engine_unsupported(a, k):
        return _SCIPY["correlate"](a, k, mode, method)
    return convolve(a, _reverse_and_conj(k), mode, method)  # checks mode and method


def _fft_dtype(dt1: np.dtype, dt2: np.dtype) -> np.dtype:
    """fftconvolve's result dtype: each input as scipy.fft sees it (the engine's rule for
    one input), then promoted; uint8 with float32 gives float64 here, float32 in fftconv."""
    return result_dtype(result_dtype(dt1, dt1), result_dtype(dt2, dt2))


def _to_engine_dtype(a: np.ndarray, k: np.ndarray, target: np.dtype):
    """Cast integer and float16 inputs up when fftconv's own promotion would compute
    in lower precision than SciPy (float32 with an integer input: SciPy uses float64)."""
    if result_dtype(a.dtype, k.dtype) == target:
        return a, k
    real = np.finfo(target).dtype
    cast = [x.astype(real) if x.dtype.kind in "biu" or x.dtype == np.float16 else x for x in (a, k)]
    return cast[0], cast[1]


def _normalize_freq_axes(axes, ndim: int) -> list[int]:
    """SciPy's axes rules for fftconvolve/oaconvolve, with its messages."""
    if axes is None:
        return list(range(ndim))
    if np.isscalar(axes) and not isinstance(axes, str):
        axes = [axes]
    try:
        axes = list(axes)
    except TypeError:
        raise ValueError(f"axes must be a scalar or iterable of integers; got {axes!r}") from None
    if not axes:
        raise ValueError("when provided, axes cannot be empty")
    out = []
    for a in axes:
        if isinstance(a, bool) or not isinstance(a, numbers.Integral):
            raise ValueError(f"axes must be a scalar or iterable of integers; got {axes!r}")
        a = operator.index(a)
        if not -ndim <= a < ndim:
            raise ValueError(f"axes exceeds dimensionality of input; got axes={axes!r}")
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"all axes must be unique; got axes={axes!r}")
    return out


def _freq_conv(in1, in2, mode, axes, name: str) -> np.ndarray:
    """fftconvolve and oaconvolve: both are fftconv's convolution with 'auto'."""
    a = np.asarray(in1)
    k = np.asarray(in2)
    if a.ndim == k.ndim == 0:
        return a * k
    if a.ndim != k.ndim:
        raise ValueError(
            f"in1 and in2 should have the same dimensionality; got {a.ndim} and {k.ndim} dimensions"
        )
    if a.size == 0 or k.size == 0:
        return np.asarray([])
    lower = "acceptable mode flags are 'valid', 'same', or 'full'"
    if not isinstance(mode, str) or mode not in _MODES:
        raise ValueError(f"{lower}; got mode={mode!r}")
    if engine_unsupported(a, k):
        return _SCIPY[name](a, k, mode, axes)
    s1, s2 = a.shape, k.shape
    axes_l = [d for d in _normalize_freq_axes(axes, a.ndim) if s1[d] != 1 and s2[d] != 1]
    if not all(s1[d] == s2[d] or 1 in (s1[d], s2[d]) for d in range(a.ndim) if d not in axes_l):
        raise ValueError(f"incompatible shapes for in1 and in2: {s1} and {s2}")
    if _swap_needed(mode, s1, s2, axes=axes_l):
        a, k = k, a
        s1, s2 = s2, s1
    out_dtype = _fft_dtype(a.dtype, k.dtype)
    if not axes_l:
        ret = a * k  # SciPy: nothing to transform, the product keeps its dtype
    else:
        aa, kk = _to_engine_dtype(a, k, out_dtype)
        ret = run_engine(aa, kk, mode=mode, out_dtype=out_dtype, axes=tuple(axes_l))
    if mode == "same":
        # SciPy crops every axis to in1's size, broadcast ones included.
        crop = tuple(
            slice((ret.shape[d] - s1[d]) // 2, (ret.shape[d] - s1[d]) // 2 + s1[d])
            for d in range(ret.ndim)
        )
        if any(ret.shape[d] != s1[d] for d in range(ret.ndim)):
            ret = ret[crop].copy()
    return ret


def fftconvolve(in1, in2, mode: str = "full", axes=None) -> np.ndarray:
    """Convolve two N-dimensional arrays; scipy.signal.fftconvolve on fftconv's engine.

    fftconv chooses the method (FFT, overlap-add or direct summation) by
    size, as ``fftconv.convolve(..., method='auto')`` does; the result is the
    same convolution within round-off.

    Parameters
    ----------
    in1, in2 : array_like
        Inputs with the same number of dimensions.
    mode : {'full', 'valid', 'same'}
        As in `convolve`.
    axes : int or sequence of int, optional
        Axes to convolve over (default all). Other axes must be equal or 1
        in one input, and broadcast.

    Returns
    -------
    ndarray
        Float (or complex) as scipy.fft computes: float64 for integer and
        bool inputs, float32 for float16 and float32.

    Examples
    --------
    >>> import numpy as np
    >>> from fftconv import signal
    >>> signal.fftconvolve([1, 2, 3], [0, 1, 0.5])
    array([0. , 1. , 2.5, 4. , 1.5])
    >>> signal.fftconvolve(np.ones((2, 4)), np.ones((2, 2)), "valid", axes=1).shape
    (2, 3)
    """
    return _freq_conv(in1, in2, mode, axes, "fftconvolve")


def oaconvolve(in1, in2, mode: str = "full", axes=None) -> np.ndarray:
    """Convolve two N-dimensional arrays; scipy.signal.oaconvolve on fftconv's engine.

    The arguments, shapes and dtypes are `fftconvolve`'s; fftconv's planner
    decides when overlap-add blocks are faster than one transform.

    Examples
    --------
    >>> from fftconv import signal
    >>> signal.oaconvolve([1.0, 2.0, 3.0, 4.0], [1.0, -1.0])
    array([ 1.,  1.,  1.,  1., -4.])
    """
    return _freq_conv(in1, in2, mode, axes, "oaconvolve")


def _fillvalue(fillvalue, out_dtype: np.dtype):
    """convolve2d's fillvalue rules: converted to the output dtype as numpy converts
    a Python object (an array only by a safe cast), then exactly one element."""
    cast_msg = (
        "could not cast `fillvalue` directly to the output type (it was first converted to "
        f"complex); got fillvalue={fillvalue!r} for output dtype {out_dtype}"
    )
    fv = None
    if isinstance(fillvalue, np.ndarray):
        if np.can_cast(fillvalue.dtype, out_dtype, "safe"):
            fv = fillvalue.astype(out_dtype)
    else:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fv = np.array(fillvalue, dtype=out_dtype)
                src = np.asarray(fillvalue)
            if out_dtype.kind in "iu" and src.dtype.kind in "fc" and not np.isfinite(src).all():
                fv = None
        except (TypeError, ValueError, OverflowError):
            fv = None
    if fv is None:
        np.array(fillvalue, dtype=np.complex128)  # SciPy's second try; its error if it fails
        raise ValueError(cast_msg)
    if fv.size == 0:
        raise ValueError("`fillvalue` cannot be an empty array.")
    if fv.size != 1:
        raise ValueError(
            f"`fillvalue` must be scalar or an array with one element; got shape {fv.shape}."
        )
    return fv.reshape(-1)[0].item()


def _conv2d(in1, in2, mode, boundary, fillvalue, correlate: bool) -> np.ndarray:
    name = "correlate2d" if correlate else "convolve2d"
    a = np.asarray(in1)
    k = np.asarray(in2)
    if not a.ndim == k.ndim == 2:
        raise ValueError(
            f"{name} inputs must both be 2-D arrays; got shapes {a.shape} and {k.shape}"
        )
    _swap_needed(mode, a.shape, k.shape)
    _check_mode(mode)
    if boundary == "reflect":
        raise ValueError(
            "Incorrect boundary value. scipy.signal's convolve2d has no 'reflect' boundary; "
            "use 'symm' (or fftconv.convolve with boundary='mirror')"
        )
    if not isinstance(boundary, str) or boundary not in _BOUNDARIES:
        raise ValueError(f"{_BOUNDARY_MSG} Got boundary={boundary!r}.")
    if (
        a.size == 0
        and _BOUNDARIES[boundary] != "fill"
        and mode == "full"
        and all(n + m > 1 for n, m in zip(a.shape, k.shape))
    ):
        # SciPy's C code divides by the empty image's length here (SIGFPE: the
        # process dies); there is nothing to repeat or mirror.
        raise ValueError(
            f"{name}: boundary={boundary!r} pads in1 with its own samples and in1 has none "
            f"(shape {a.shape}); use boundary='fill' or a non-empty in1"
        )
    if a.size == 0 or k.size == 0 or engine_unsupported(a, k):
        return _SCIPY[name](a, k, mode, boundary, fillvalue)
    out_dtype = np.result_type(a, k)
    if out_dtype in (np.dtype(np.bool_), np.dtype(np.float16)):
        raise ValueError(f"{name} not available for this type: {out_dtype}.")
    # SciPy reads fillvalue only for boundary='fill' and ignores it otherwise.
    fv = _fillvalue(fillvalue, out_dtype) if _BOUNDARIES[boundary] == "fill" else 0
    return run_engine(
        a,
        k,
        mode=mode,
        out_dtype=out_dtype,
        boundary=_BOUNDARIES[boundary],
        fillvalue=fv,
        correlate=correlate,
    )


def convolve2d(in1, in2, mode: str = "full", boundary: str = "fill", fillvalue=0) -> np.ndarray:
    """Convolve two 2-D arrays; scipy.signal.convolve2d on fftconv's engine.

    Parameters
    ----------
    in1, in2 : array_like
        2-D inputs. In 'valid' mode one must be at least as large as the
        other on both axes; the inputs are swapped when `in2` is the larger.
    mode : {'full', 'valid', 'same'}
        As in `convolve`.
    boundary : {'fill', 'wrap', 'symm'}
        How `in1` is padded: with `fillvalue`, periodically ('circular' is
        an alias), or by reflection repeating the edge ('symmetric').
    fillvalue : scalar
        The padding value for 'fill'; cast to the output dtype.

    Returns
    -------
    ndarray
        ``numpy.result_type(in1, in2)``; integer results are exact.

    Examples
    --------
    >>> import numpy as np
    >>> from fftconv import signal
    >>> signal.convolve2d([[1, 2], [3, 4]], [[1, 1]], boundary="symm", mode="same")
    array([[2, 3],
           [6, 7]])
    """
    return _conv2d(in1, in2, mode, boundary, fillvalue, False)


def correlate2d(in1, in2, mode: str = "full", boundary: str = "fill", fillvalue=0) -> np.ndarray:
    """Cross-correlate two 2-D arrays; scipy.signal.correlate2d on fftconv's engine.

    The arguments are `convolve2d`'s; 'same' is centred at ``k // 2`` on each
    axis, and swapped 'valid' inputs give SciPy's reversed result.

    Examples
    --------
    >>> from fftconv import signal
    >>> signal.correlate2d([[0.0, 0.0, 1.0, 0.0]], [[1.0, 2.0, 3.0]], "same")
    array([[0., 3., 2., 1.]])
    """
    return _conv2d(in1, in2, mode, boundary, fillvalue, True)


_SPATIAL = ("direct", "separable", "lowrank")


def _engine_method(volume: np.ndarray, kernel: np.ndarray, mode: str) -> str | None:
    """'direct' or 'fft': what fftconv's engine runs for these inputs with method='auto'
    (direct summation in any form is 'direct'; FFT and overlap-add are 'fft')."""
    try:
        problem, _, k = make_problem(volume, kernel, mode, "fill", 0, None, None, False)
    except (TypeError, ValueError):
        return None
    chosen = plan_problem(problem, normalize_threads(None), "auto", kernel=k).method
    return "direct" if chosen in _SPATIAL else "fft"


def _timeit_fast(func, repeat: int = 3) -> float:
    """Seconds per call: enough calls for about 5 ms per timing, best of `repeat`."""
    timer = timeit.Timer(func)
    number = 1
    for p in range(10):
        number = 10**p
        if timer.timeit(number) >= 5e-4:
            break
    number *= 10
    return min(timer.repeat(repeat, number)) / number


def choose_conv_method(in1, in2, mode: str = "full", measure: bool = False):
    """The faster method of `convolve`/`correlate` for these inputs: 'direct' or 'fft'.

    The answer is fftconv's engine's choice (so ``method=choose_conv_method(...)``
    runs what ``method='auto'`` runs), with SciPy's two overrides: 'direct'
    for bool inputs and for integers too large for float64 to hold their sums.

    Parameters
    ----------
    in1, in2 : array_like
        The arguments of the convolution.
    mode : {'full', 'valid', 'same'}
        Its mode.
    measure : bool
        Time both methods with `convolve` and return ``(method, times)``,
        `times` a dict of seconds per call, as SciPy does.

    Returns
    -------
    str or (str, dict)
        'direct' or 'fft'; with ``measure=True`` also the timings.

    Examples
    --------
    >>> import numpy as np
    >>> from fftconv import signal
    >>> signal.choose_conv_method(np.ones(8), np.ones(3))
    'direct'
    >>> rng = np.random.default_rng(0)
    >>> signal.choose_conv_method(np.ones((512, 512)), rng.random((41, 41)))
    'fft'
    >>> signal.choose_conv_method(np.ones((512, 512)), np.ones((41, 41)))  # separable: 1-D passes
    'direct'
    """
    volume = np.asarray(in1)
    kernel = np.asarray(in2)
    if measure:
        times = {
            m: _timeit_fast(lambda m=m: convolve(volume, kernel, mode=mode, method=m))
            for m in ("fft", "direct")
        }
        return ("fft" if times["fft"] < times["direct"] else "direct"), times
    _check_mode(mode)
    degenerate = (
        volume.ndim == 0
        or kernel.ndim == 0
        or volume.ndim != kernel.ndim
        or volume.size == 0
        or kernel.size == 0
        or engine_unsupported(volume, kernel)
    )
    if degenerate:
        return _SCIPY["choose_conv_method"](volume, kernel, mode)
    if volume.dtype.kind in "ui" or kernel.dtype.kind in "ui":
        max_value = int(np.max(np.abs(volume))) * int(np.max(np.abs(kernel)))
        max_value *= int(min(volume.size, kernel.size))
        if max_value > 2 ** np.finfo("float").nmant - 1:
            return "direct"
    if volume.dtype.kind == "b" and kernel.dtype.kind == "b":
        return "direct"
    chosen = _engine_method(volume, kernel, mode)
    if chosen is None:
        return _SCIPY["choose_conv_method"](volume, kernel, mode)
    return chosen
