"""Argument validation and normalisation: every public call becomes one `Problem`.

This is the only module that checks arguments. Executors and the planner trust
what it produces.
"""

from __future__ import annotations

import difflib
import math
import numbers
import os
from dataclasses import dataclass, replace

import numpy as np

MODES = ("full", "same", "valid")

#: fftconv's boundary names (the keys) and the unambiguous spellings of other
#: libraries accepted as aliases.  See README "Boundary names".
BOUNDARIES = ("fill", "wrap", "symmetric", "mirror", "nearest")
BOUNDARY_ALIASES = {
    "fill": "fill",
    "constant": "fill",
    "zero": "fill",
    "wrap": "wrap",
    "periodic": "wrap",
    "circular": "wrap",
    "grid-wrap": "wrap",
    "symmetric": "symmetric",
    "symm": "symmetric",
    "grid-mirror": "symmetric",
    "mirror": "mirror",
    "reflect_101": "mirror",
    "reflect101": "mirror",
    "nearest": "nearest",
    "edge": "nearest",
    "replicate": "nearest",
}

_REFLECT_MSG = (
    "boundary='reflect' is ambiguous: scipy.ndimage's 'reflect' repeats the edge sample "
    "(b a | a b c d, fftconv's 'symmetric'), numpy.pad's 'reflect' does not "
    "(c b | a b c d, fftconv's 'mirror'). Pass boundary='symmetric' or boundary='mirror' "
    "(fftconv.ndimage keeps scipy.ndimage's meaning)."
)

METHODS = ("auto", "direct", "fft", "oa", "separable", "lowrank")

#: What convolve / correlate do with NaN in `in1` (see fftconv/_nan.py).
NAN_POLICIES = ("propagate", "interpolate", "fill")

_SUPPORTED_KINDS = "bool, integer, float16/32/64 or complex64/128"


def _choices(values) -> str:
    return ", ".join(repr(v) for v in values)


def _suggest(got: str, values) -> str:
    close = difflib.get_close_matches(got, list(values), n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else ""


def normalize_mode(mode) -> str:
    if not isinstance(mode, str):
        raise TypeError(f"mode must be a str, one of {_choices(MODES)}; got {mode!r}")
    m = mode.lower()
    if m not in MODES:
        raise ValueError(f"mode={mode!r} is not one of {_choices(MODES)}{_suggest(m, MODES)}")
    return m


def normalize_boundary(boundary) -> str:
    if not isinstance(boundary, str):
        raise TypeError(f"boundary must be a str, one of {_choices(BOUNDARIES)}; got {boundary!r}")
    b = boundary.lower()
    if b == "reflect":
        raise ValueError(_REFLECT_MSG)
    if b not in BOUNDARY_ALIASES:
        hint = _suggest(b, list(BOUNDARY_ALIASES) + ["reflect"])
        if hint.endswith("'reflect'?"):
            hint += " ('reflect' is ambiguous: use 'symmetric' or 'mirror')"
        raise ValueError(
            f"boundary={boundary!r} is not one of {_choices(BOUNDARIES)} "
            f"(aliases: {_choices(sorted(set(BOUNDARY_ALIASES) - set(BOUNDARIES)))}){hint}"
        )
    return BOUNDARY_ALIASES[b]


def normalize_method(method) -> str:
    if not isinstance(method, str) or method.lower() not in METHODS:
        got = method.lower() if isinstance(method, str) else str(method)
        raise ValueError(
            f"method={method!r} is not one of {_choices(METHODS)}{_suggest(got, METHODS)}"
        )
    return method.lower()


def normalize_nan_policy(nan_policy, mask=None, return_weights=False) -> str:
    if not isinstance(nan_policy, str) or nan_policy.lower() not in NAN_POLICIES:
        got = nan_policy.lower() if isinstance(nan_policy, str) else str(nan_policy)
        raise ValueError(
            f"nan_policy={nan_policy!r} is not one of {_choices(NAN_POLICIES)}"
            f"{_suggest(got, NAN_POLICIES)}"
        )
    policy = nan_policy.lower()
    if policy == "propagate" and (mask is not None or return_weights):
        given = "mask=" if mask is not None else "return_weights=True"
        raise ValueError(
            f"{given} needs nan_policy='interpolate' (leave the masked samples out) or "
            "nan_policy='fill' (take them as fillvalue); got nan_policy='propagate'"
        )
    if not isinstance(return_weights, (bool, np.bool_)):
        raise TypeError(f"return_weights must be True or False; got {return_weights!r}")
    return policy


def default_threads() -> int:
    """The number of cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def normalize_threads(threads) -> int:
    if threads is None:
        return default_threads()
    if isinstance(threads, bool) or not isinstance(threads, numbers.Integral):
        raise TypeError(f"threads must be a positive int or None; got {threads!r}")
    if threads < 1:
        raise ValueError(f"threads must be >= 1 or None; got {threads!r}")
    return int(threads)


def as_input(x, name: str) -> np.ndarray:
    """`x` as an ndarray of a supported dtype, without copying when possible."""
    if isinstance(x, np.ndarray):
        arr = x
    else:
        try:
            arr = np.asarray(x)
        except Exception as exc:  # ragged lists and the like
            raise TypeError(f"{name} must be array-like; got {type(x).__name__}: {exc}") from exc
    check_input(arr.shape, arr.dtype, name)
    return arr


def check_input(shape, dtype: np.dtype, name: str) -> None:
    """Check an input's dtype and shape (an array's, or a shape-only problem's)."""
    kind = dtype.kind
    if kind not in "biufc":
        raise TypeError(f"{name} has dtype {dtype} ({dtype.kind!r}); supported: {_SUPPORTED_KINDS}")
    if (kind == "f" and dtype.itemsize > 8) or (kind == "c" and dtype.itemsize > 16):
        raise TypeError(
            f"{name} has dtype {dtype} (long double); supported: {_SUPPORTED_KINDS}. "
            "Convert with .astype(np.float64) or .astype(np.complex128)."
        )
    if len(shape) == 0:
        raise ValueError(f"{name} must have at least one dimension; got a 0-d array")
    if math.prod(shape) == 0:
        raise ValueError(f"{name} must not be empty; got shape {tuple(shape)}")


def result_dtype(dt1: np.dtype, dt2: np.dtype) -> np.dtype:
    """The dtype of the result: numpy's promotion, with bool/int -> float64 like SciPy
    and float16 computed in float32."""
    rt = np.result_type(dt1, dt2)
    if rt.kind in "biu":
        return np.dtype(np.float64)
    if rt == np.float16:
        return np.dtype(np.float32)
    return rt.newbyteorder("=")


def compute_dtype(src_dtype, kernel_dtype, out_dtype=None) -> np.dtype:
    """The dtype tiles are computed in: float32 for photos (uint8, uint16, float32,
    ...), float64 when the image or the requested output is float64 (or a wide
    integer), complex when the image or the kernel is complex.

    Examples
    --------
    >>> compute_dtype(np.uint8, np.float64), compute_dtype(np.uint8, np.complex128)
    (dtype('float32'), dtype('complex64'))
    >>> compute_dtype(np.float32, np.float64, np.float64)
    dtype('float64')
    """
    dts = [np.dtype(src_dtype)] + ([np.dtype(out_dtype)] if out_dtype is not None else [])
    double = any(
        (d.kind in "fc" and d.itemsize >= (8 if d.kind == "f" else 16))
        or (d.kind in "iu" and d.itemsize >= 4)
        for d in dts
    )
    cplx = np.dtype(src_dtype).kind == "c" or np.dtype(kernel_dtype).kind == "c"
    if cplx:
        return np.dtype(np.complex128 if double else np.complex64)
    return np.dtype(np.float64 if double else np.float32)


def with_io(problem: Problem, src_dtype, kernel_dtype, out_dtype) -> Problem:
    """`problem` as a photo runs it: its image read in `src_dtype`, written into an
    `out` of `out_dtype`, summed in `compute_dtype` of the three (``io_dtypes``)."""
    src, od = np.dtype(src_dtype), np.dtype(out_dtype)
    return replace(problem, dtype=compute_dtype(src, kernel_dtype, od), io_dtypes=(src, od))


def normalize_axes(axes, ndim: int, name: str = "axes") -> tuple[int, ...]:
    if axes is None:
        return tuple(range(ndim))
    if isinstance(axes, numbers.Integral) and not isinstance(axes, bool):
        axes = (axes,)
    try:
        axes_list = list(axes)
    except TypeError:
        axes_list = None
    if (
        axes_list is None
        or isinstance(axes, str)
        or any(isinstance(a, bool) or not isinstance(a, numbers.Integral) for a in axes_list)
    ):
        raise TypeError(f"{name} must be an int, a sequence of ints or None; got {axes!r}")
    axes_list = [int(a) for a in axes_list]
    out = []
    for a in axes_list:
        if not -ndim <= a < ndim:
            raise ValueError(f"{name}={axes!r} is out of range for inputs with {ndim} dimensions")
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{name}={axes!r} repeats an axis")
    if not out:
        raise ValueError(f"{name}={axes!r} is empty; give at least one axis")
    return tuple(sorted(out))


@dataclass(frozen=True)
class Problem:
    """An immutable description of one convolution or correlation.

    All shapes are those of the arrays the executors see: `in2` already has
    `in1.ndim` dimensions (a channel axis added where needed), inputs are
    swapped when SciPy's 'valid' rule asks for it, and `correlate` kernels are
    still unflipped (the executors flip them).
    """

    in1_shape: tuple[int, ...]
    in2_shape: tuple[int, ...]
    axes: tuple[int, ...]
    dtype: np.dtype
    mode: str
    boundary: str
    fillvalue: complex
    correlate: bool = False
    swapped: bool = False
    #: The dtypes of the image as stored and of ``out`` where they are not `dtype`
    #: (a uint8 photo computed in float32 and written as uint8), else None.
    io_dtypes: tuple[np.dtype, np.dtype] | None = None

    @property
    def ndim(self) -> int:
        return len(self.in1_shape)

    @property
    def kernel_shape(self) -> tuple[int, ...]:
        return tuple(self.in2_shape[a] for a in self.axes)

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.in1_shape[a] for a in self.axes)

    @property
    def is_complex(self) -> bool:
        return self.dtype.kind == "c"

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """Shape of the broadcast non-convolved axes (1 where convolved)."""
        return tuple(
            1 if d in self.axes else max(self.in1_shape[d], self.in2_shape[d])
            for d in range(self.ndim)
        )

    def pads(self) -> tuple[tuple[int, int], ...]:
        """Samples of boundary padding before and after `in1` on each convolved axis.

        'full' pads ``k - 1`` on both sides; 'same' pads so that the result is
        the crop of 'full' that scipy.signal.convolve2d (``start = (k-1)//2``)
        and correlate2d (``start = k//2``) return; 'valid' pads nothing.
        """
        out = []
        for k in self.kernel_shape:
            if self.mode == "full":
                out.append((k - 1, k - 1))
            elif self.mode == "valid":
                out.append((0, 0))
            else:
                start = k // 2 if self.correlate else (k - 1) // 2
                out.append((k - 1 - start, start))
        return tuple(out)

    @property
    def out_shape(self) -> tuple[int, ...]:
        shape = list(self.batch_shape)
        for a, (pb, pa), k in zip(self.axes, self.pads(), self.kernel_shape):
            shape[a] = self.in1_shape[a] + pb + pa - k + 1
        return tuple(shape)


def valid_swap(shape1, shape2, axes) -> bool:
    """SciPy's rule (`_inputs_swap_needed`) for 'valid' mode."""
    ok1 = all(shape1[a] >= shape2[a] for a in axes)
    ok2 = all(shape2[a] >= shape1[a] for a in axes)
    if not (ok1 or ok2):
        raise ValueError(
            "For 'valid' mode, one must be at least as large as the other in every "
            f"dimension (of the convolved axes {tuple(axes)}); got in1 shape {tuple(shape1)} "
            f"and in2 shape {tuple(shape2)}"
        )
    return not ok1


def make_problem(
    in1, in2, mode, boundary, fillvalue, axes, channel_axis, correlate
) -> tuple[Problem, np.ndarray, np.ndarray]:
    """Validate every argument and return the Problem and the two arrays to use."""
    a = as_input(in1, "in1")
    k = as_input(in2, "in2")
    problem, expand = _problem(
        a.shape, a.dtype, k.shape, k.dtype, mode, boundary, fillvalue, axes, channel_axis, correlate
    )
    if expand is not None:
        k = np.expand_dims(k, expand)
    if problem.swapped:
        a, k = k, a
    return problem, a, k


def make_problem_from_shapes(
    shape1,
    shape2,
    dtype,
    *,
    mode="full",
    boundary="fill",
    fillvalue=0,
    axes=None,
    channel_axis=None,
    correlate=False,
    dtype2=None,
) -> Problem:
    """The Problem `make_problem` returns for arrays of these shapes and dtypes (`dtype2`
    for `in2`, default `dtype`), validated the same way, without any array."""
    dt1 = np.dtype(dtype)
    dt2 = dt1 if dtype2 is None else np.dtype(dtype2)
    shape1, shape2 = tuple(int(n) for n in shape1), tuple(int(n) for n in shape2)
    check_input(shape1, dt1, "in1")
    check_input(shape2, dt2, "in2")
    return _problem(
        shape1, dt1, shape2, dt2, mode, boundary, fillvalue, axes, channel_axis, correlate
    )[0]


def kernel_as_problem(k: np.ndarray, problem: Problem, channel_axis) -> np.ndarray:
    """The kernel `k` (not swapped) as `problem`'s executors see it: with the channel
    axis added when it is one kernel for every channel (as `make_problem` returns it)."""
    if k.ndim == problem.ndim - 1 and channel_axis is not None:
        return np.expand_dims(k, channel_axis % problem.ndim)
    return k


def _problem(
    ashape, adtype, kshape, kdtype, mode, boundary, fillvalue, axes, channel_axis, correlate
) -> tuple[Problem, int | None]:
    """The Problem, and the axis to add to `in2` (a kernel shared by the channels)."""
    ashape, kshape = tuple(ashape), tuple(kshape)
    andim = len(ashape)
    expand = None
    mode = normalize_mode(mode)
    boundary = normalize_boundary(boundary)
    if not isinstance(fillvalue, numbers.Number) or isinstance(fillvalue, bool):
        fv = np.asarray(fillvalue)
        if fv.ndim != 0 or fv.dtype.kind not in "iufc":
            raise TypeError(f"fillvalue must be a real or complex scalar; got {fillvalue!r}")
        fillvalue = fv.item()
    dtype = result_dtype(adtype, kdtype)
    if boundary != "fill" or mode == "valid":
        # The fill value is never read: it changes neither the result nor its dtype.
        fillvalue = 0
    elif isinstance(fillvalue, complex) and fillvalue.imag != 0:
        if dtype.kind != "c":
            dtype = np.result_type(dtype, np.complex64)

    if channel_axis is not None:
        if axes is not None:
            raise ValueError(
                f"give axes= or channel_axis=, not both; got axes={axes!r}, "
                f"channel_axis={channel_axis!r}"
            )
        if isinstance(channel_axis, bool) or not isinstance(channel_axis, numbers.Integral):
            raise TypeError(f"channel_axis must be an int or None; got {channel_axis!r}")
        if not -andim <= channel_axis < andim or andim < 2:
            raise ValueError(
                f"channel_axis={channel_axis!r} is out of range for in1 with shape {ashape}"
            )
        c = channel_axis % andim
        if len(kshape) == andim - 1:
            expand = c
            kshape = kshape[:c] + (1,) + kshape[c:]
        elif len(kshape) == andim:
            if kshape[c] not in (1, ashape[c]):
                raise ValueError(
                    f"in2 has {kshape[c]} channels on channel_axis={channel_axis}, in1 has "
                    f"{ashape[c]}: give one kernel per channel, or a kernel without a "
                    "channel axis"
                )
        else:
            raise ValueError(
                f"with channel_axis={channel_axis}, in2 must have {andim - 1} dimensions "
                f"(one kernel for all channels) or {andim} (one per channel); got shape {kshape}"
            )
        axes_t = tuple(d for d in range(andim) if d != c)
    else:
        if andim != len(kshape):
            raise ValueError(
                f"in1 and in2 must have the same number of dimensions; got in1 shape {ashape} "
                f"and in2 shape {kshape} (for a kernel shared by the channels of an image, "
                "pass channel_axis=)"
            )
        axes_t = normalize_axes(axes, andim)
    for d in range(andim):
        if d not in axes_t and ashape[d] != kshape[d] and 1 not in (ashape[d], kshape[d]):
            raise ValueError(
                f"in1 shape {ashape} and in2 shape {kshape} do not broadcast on axis {d}, "
                f"which is not convolved (axes={axes_t})"
            )

    swapped = False
    if mode == "valid":
        swapped = valid_swap(ashape, kshape, axes_t)
        if swapped:
            ashape, kshape = kshape, ashape
    problem = Problem(
        in1_shape=ashape,
        in2_shape=kshape,
        axes=axes_t,
        dtype=np.dtype(dtype),
        mode=mode,
        boundary=boundary,
        fillvalue=fillvalue,
        correlate=bool(correlate),
        swapped=swapped,
    )
    return problem, expand


#: Integer `out=` dtypes (photos kept in their own dtype): the result is computed in
#: float32 tile by tile, rounded half to even and clipped to the dtype's range.
PHOTO_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.int16))


def check_out(out, problem: Problem) -> None:
    if out is None:
        return
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy array (np.memmap allowed) or None; got {type(out)}")
    photo = out.dtype in PHOTO_DTYPES and problem.dtype.kind == "f"
    if out.shape != problem.out_shape or (out.dtype != problem.dtype and not photo):
        also = (
            ""
            if problem.is_complex
            else " (or uint8, uint16 or int16: computed in float32, rounded and clipped)"
        )
        raise ValueError(
            f"out has shape {out.shape} and dtype {out.dtype}; this call needs shape "
            f"{problem.out_shape} and dtype {problem.dtype}{also}"
        )
    if not out.flags.writeable:
        raise ValueError("out is read-only")
