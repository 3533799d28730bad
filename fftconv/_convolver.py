"""`Convolver`: one kernel, many images, each transform paid once."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from . import _fork
from ._execute import compute, prepare_kernel
from ._photo import photo_out
from ._problem import (
    check_out,
    kernel_as_problem,
    make_problem,
    make_problem_from_shapes,
    normalize_method,
    normalize_nan_policy,
    normalize_threads,
)
from .planner import plan_problem

#: Image shapes a Convolver keeps plans and kernel spectra for.
MAX_SHAPES = 8


class Convolver:
    """A callable that convolves (or correlates) many images with one kernel.

    The first image of a shape and dtype is planned like `fftconv.convolve`;
    the plan and the kernel's spectrum at that plan's transform shape are
    kept, so later images of that shape cost no planning and no kernel
    transform, only their own transforms (whose FFTW plans the plan cache
    keeps).

    Parameters
    ----------
    kernel : array_like
        The kernel (copied: changing the array later does not change the
        Convolver).
    mode, boundary, fillvalue, axes, channel_axis, method, threads
        As for `fftconv.convolve`, fixed for every image.
    correlate : bool
        Cross-correlate instead of convolve (`fftconv.correlate`).
    nan_policy : {'propagate', 'interpolate', 'fill'}
        As for `fftconv.convolve`, fixed for every image; a call may add
        ``mask=`` and ``return_weights=True``. The two engine calls of
        'interpolate' (data and validity, stacked) keep their plans and
        kernel spectra too.

    Examples
    --------
    >>> import numpy as np
    >>> import fftconv
    >>> blur = fftconv.Convolver(np.ones((3, 3)) / 9, mode="same", boundary="nearest")
    >>> image = np.arange(16.0).reshape(4, 4)
    >>> np.allclose(blur(image), fftconv.convolve(image, np.ones((3, 3)) / 9, "same", "nearest"))
    True
    >>> blur(np.ones((2, 5))).round(6)
    array([[1., 1., 1., 1., 1.],
           [1., 1., 1., 1., 1.]])
    >>> mean3 = fftconv.Convolver(np.ones((1, 3)) / 3, mode="same", boundary="nearest",
    ...                           nan_policy="interpolate")
    >>> mean3(np.array([[1.0, np.nan, 3.0]]))
    array([[1., 2., 3.]])
    """

    def __init__(
        self,
        kernel,
        mode: str = "full",
        boundary: str = "fill",
        fillvalue=0,
        *,
        axes=None,
        channel_axis: int | None = None,
        method: str = "auto",
        threads: int | None = None,
        correlate: bool = False,
        nan_policy: str = "propagate",
    ) -> None:
        kernel = np.array(kernel, copy=True)
        kernel.setflags(write=False)
        self.kernel = kernel
        self.mode = mode
        self.boundary = boundary
        self.fillvalue = fillvalue
        self.axes = axes
        self.channel_axis = channel_axis
        self.method = normalize_method(method)
        self.threads = normalize_threads(threads)
        self.correlate = bool(correlate)
        self.nan_policy = normalize_nan_policy(nan_policy)
        # Validate the fixed arguments now, against an image the kernel's own size.
        make_problem_from_shapes(
            _image_like(kernel, channel_axis),
            kernel.shape,
            kernel.dtype,
            mode=mode,
            boundary=boundary,
            fillvalue=fillvalue,
            axes=axes,
            channel_axis=channel_axis,
            correlate=correlate,
        )
        self._lock = _fork.lock()
        # plan and kernel spectrum per image shape; a spectrum can be as large as the
        # image, so only the most recently used shapes are kept
        self._prepared: OrderedDict = OrderedDict()
        # nan_policy's engine calls other than the plain one (the stacked data and
        # validity, or another fill value), each a Convolver of its own
        self._policy_calls: dict = {}

    def __call__(
        self, image, out: np.ndarray | None = None, *, mask=None, return_weights: bool = False
    ):
        """Convolve `image` with the kernel; `out`, `mask` and `return_weights` as for
        `fftconv.convolve` (the last two need a `nan_policy` other than 'propagate')."""
        if normalize_nan_policy(self.nan_policy, mask, return_weights) != "propagate":
            from ._nan import run_with_nan_policy

            return run_with_nan_policy(
                self._policy_call, image, *self._spec(), self.nan_policy, mask, return_weights, out
            )
        return self._call(image, out)

    def _policy_call(self, x, k, fill, dst, axes, channel_axis):
        """One engine call of the NaN layer: this Convolver's own where the arguments
        are its own, else a kept Convolver for the stacked kernel or fill value."""
        fill = complex(fill)
        if (
            k is self.kernel
            and str(fill) == str(complex(self.fillvalue))
            and axes == self.axes
            and channel_axis == self.channel_axis
        ):
            return self._call(x, dst)
        key = (k.shape, str(fill), axes, channel_axis)
        with self._lock:
            conv = self._policy_calls.get(key)
        if conv is None:
            conv = Convolver(
                k,
                self.mode,
                self.boundary,
                fill if fill.imag else fill.real,
                axes=axes,
                channel_axis=channel_axis,
                method=self.method,
                threads=self.threads,
                correlate=self.correlate,
            )
            with self._lock:
                conv = self._policy_calls.setdefault(key, conv)
        return conv._call(x, dst)

    def _spec(self) -> tuple:
        """The arguments after the image of `make_problem` (and of the NaN layer)."""
        return (
            self.kernel,
            self.mode,
            self.boundary,
            self.fillvalue,
            self.axes,
            self.channel_axis,
            self.correlate,
        )

    def _call(self, image, out):
        problem, a, k = make_problem(image, *self._spec())
        check_out(out, problem)
        if out is not None and out.dtype != problem.dtype:
            return photo_out(problem, a, k, out, self.method, self.threads)
        plan, prepared = self._prepare(problem, k)
        return compute(problem, plan, a, k, out, self.threads, prepared)

    def plan_for(self, shape, dtype=None):
        """The `Plan` used for images of `shape` (and `dtype`, default the kernel's)."""
        dt = np.dtype(dtype) if dtype is not None else self.kernel.dtype
        problem = make_problem_from_shapes(
            tuple(shape),
            self.kernel.shape,
            dt,
            mode=self.mode,
            boundary=self.boundary,
            fillvalue=self.fillvalue,
            axes=self.axes,
            channel_axis=self.channel_axis,
            correlate=self.correlate,
            dtype2=self.kernel.dtype,
        )
        # A swapped 'valid' problem's "kernel" is the image: planned from shapes then.
        k = None if problem.swapped else kernel_as_problem(self.kernel, problem, self.channel_axis)
        return self._prepare(problem, k)[0]

    def _prepare(self, problem, k):
        with self._lock:
            got = self._prepared.get(problem)
            if got is not None:
                self._prepared.move_to_end(problem)
                return got
        plan = plan_problem(problem, self.threads, self.method, kernel=k)
        # Swapped 'valid' inputs make the image the "kernel": nothing to keep then.
        prepared = None if problem.swapped else prepare_kernel(problem, plan, k, self.threads)
        with self._lock:
            self._prepared[problem] = (plan, prepared)
            while len(self._prepared) > MAX_SHAPES:
                self._prepared.popitem(last=False)
        return plan, prepared

    def __repr__(self) -> str:
        kind = "correlate" if self.correlate else "convolve"
        return (
            f"Convolver({kind} with kernel {self.kernel.shape} {self.kernel.dtype}, "
            f"mode={self.mode!r}, boundary={self.boundary!r}, method={self.method!r}, "
            + (f"nan_policy={self.nan_policy!r}, " if self.nan_policy != "propagate" else "")
            + f"{len(self._prepared)} image shapes prepared)"
        )

    def _repr_html_(self) -> str:
        from ._html import table

        with self._lock:
            plans = list(self._prepared.items())
        rows = [
            [
                str(problem.in1_shape),
                str(problem.dtype),
                plan.method,
                "x".join(map(str, plan.transform_shape or ())) or "-",
                f"{plan.seconds * 1e3:.1f} ms",
            ]
            for problem, (plan, _) in plans
        ]
        notes = [
            f"mode={self.mode!r}, boundary={self.boundary!r}, method={self.method!r}, "
            f"threads={self.threads}, channel_axis={self.channel_axis!r}"
        ]
        kind = "correlate" if self.correlate else "convolve"
        return table(
            f"Convolver: {kind} with kernel {self.kernel.shape} {self.kernel.dtype}",
            ["image shape", "dtype", "method", "transform", "predicted"],
            rows,
            notes,
        )


def _image_like(kernel, channel_axis):
    if channel_axis is None:
        return kernel.shape
    shape = list(kernel.shape)
    shape.insert(channel_axis % (kernel.ndim + 1), 1)
    return tuple(shape)
