"""The public entry points: validate, plan, execute, return."""

from __future__ import annotations

import numpy as np

from ._convolver import Convolver  # noqa: F401  (exported from here, as DESIGN.md lays out)
from ._execute import compute
from ._photo import photo_out
from ._problem import (
    check_out,
    make_problem,
    normalize_method,
    normalize_nan_policy,
    normalize_threads,
)
from .planner import plan_problem


def _run(
    in1,
    in2,
    mode,
    boundary,
    fillvalue,
    axes,
    channel_axis,
    method,
    out,
    threads,
    correlate,
    max_memory=None,
    nan_policy="propagate",
    mask=None,
    return_weights=False,
):
    if normalize_nan_policy(nan_policy, mask, return_weights) != "propagate":
        from ._nan import run_with_nan_policy

        def run(x, k, fill, dst, x_axes, x_channel_axis):
            return _run(
                x,
                k,
                mode,
                boundary,
                fill,
                x_axes,
                x_channel_axis,
                method,
                dst,
                threads,
                correlate,
                max_memory,
            )

        return run_with_nan_policy(
            run,
            in1,
            in2,
            mode,
            boundary,
            fillvalue,
            axes,
            channel_axis,
            correlate,
            nan_policy.lower(),
            mask,
            return_weights,
            out,
        )
    problem, a, k = make_problem(in1, in2, mode, boundary, fillvalue, axes, channel_axis, correlate)
    method = normalize_method(method)
    threads = normalize_threads(threads)
    check_out(out, problem)
    if out is not None and out.dtype != problem.dtype:
        return photo_out(problem, a, k, out, method, threads, max_memory)
    if max_memory is not None:
        from .tiles import maybe_tiled  # imported when needed: `import fftconv` stays light

        tiled = maybe_tiled(problem, a, k, out, method, threads, max_memory)
        if tiled is not None:
            return tiled
    return compute(problem, plan_problem(problem, threads, method, kernel=k), a, k, out, threads)


def convolve(
    in1,
    in2,
    mode: str = "full",
    boundary: str = "fill",
    fillvalue=0,
    *,
    axes=None,
    channel_axis: int | None = None,
    method: str = "auto",
    out: np.ndarray | None = None,
    threads: int | None = None,
    max_memory: int | str | None = None,
    nan_policy: str = "propagate",
    mask=None,
    return_weights: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Convolve `in1` with `in2`, exactly, by the fastest method for the sizes.

    Parameters
    ----------
    in1 : array_like
        The image (any number of dimensions).
    in2 : array_like
        The kernel, with as many dimensions as `in1` (or one fewer with
        `channel_axis`).
    mode : {'full', 'same', 'valid'}
        'full' returns every output the kernel overlaps the padded image at,
        'same' the centred crop of the size of `in1` (as
        scipy.signal.convolve2d crops it, even kernels included), 'valid'
        only the outputs that need no padding (SciPy's rule: one input must
        be at least as large as the other on every convolved axis).
    boundary : {'fill', 'wrap', 'symmetric', 'mirror', 'nearest'}
        How `in1` is padded; aliases 'constant', 'symm', 'edge', 'replicate',
        'periodic', 'grid-wrap', 'grid-mirror' are accepted. 'reflect' is
        ambiguous and raises.
    fillvalue : scalar
        The padding value for boundary='fill'; complex allowed (a complex fill
        makes the result complex). It is ignored, and leaves the result's dtype
        alone, for the other boundaries and for mode='valid' (nothing is padded).
    axes : int or sequence of int, optional
        Axes to convolve over (default all); the others broadcast.
    channel_axis : int, optional
        The channel axis of `in1`: each channel is convolved with `in2`, or
        with its own kernel when `in2` has that axis too.
    method : {'auto', 'direct', 'fft', 'oa', 'separable', 'lowrank'}
        'auto' follows `fftconv.plan` (a cost model over every method); 'oa'
        convolves block by block (overlap-add), for images much larger than
        the kernel; 'separable' and 'lowrank' run a 2-D kernel as one or a few
        pairs of 1-D passes when it factors within the dtype's tolerance (and
        sum directly when it does not, or below 2**16 outputs, where passes
        save microseconds and direct sums stay bit-exact: the Plan's
        ``substituted`` says so).
    out : ndarray, optional
        Write the result here (shape and dtype must match the result's). `out`
        may overlap the input or the kernel (``out=in1``, or a view of it):
        fftconv then computes into a temporary and copies it into `out`
        (memory for one more result).
    threads : int, optional
        FFTW threads; default the cores this process may use.
    max_memory : int or str, optional
        A budget (bytes, or e.g. ``'2GB'``) for the call's working memory
        besides its input and output; when the in-memory plan would exceed
        it, the call runs tile by tile (`fftconv.tiles.convolve_tiled`). The
        budget includes a fixed 16 MiB (16.8 MB) for FFTW's plans, thread stacks
        and bookkeeping; one that admits only tiles smaller than 32x32 outputs
        is refused with a ValueError naming the smallest budget that works.
    nan_policy : {'propagate', 'interpolate', 'fill'}
        NaN in `in1`: 'propagate' lets it spread to every output it reaches;
        'interpolate' leaves missing samples out and renormalises the kernel
        over the valid ones (normalised convolution, as astropy's
        ``nan_treatment='interpolate'``; NaN where no valid sample is under
        the kernel); 'fill' takes them as `fillvalue`. See the NaN page of
        the documentation (docs/template.md) for the definition at the
        boundaries.
    mask : array_like of bool, optional
        `in1`'s shape, True where a sample is valid: the samples it excludes
        are missing, as NaN are (needs 'interpolate' or 'fill').
    return_weights : bool
        With 'interpolate' or 'fill', also return the fraction of the
        kernel's weight that fell on valid samples (1 where nothing is
        missing), of the result's shape.

    Returns
    -------
    ndarray, or (ndarray, ndarray) with `return_weights`
        float32 for float32 inputs, float64 for bool, integer and float64
        inputs, complex for complex inputs (numpy's promotion otherwise).

    Examples
    --------
    >>> import numpy as np
    >>> import fftconv
    >>> fftconv.convolve(np.array([1.0, 2.0, 3.0]), np.array([0.0, 1.0, 0.5]))
    array([0. , 1. , 2.5, 4. , 1.5])
    >>> fftconv.convolve(np.eye(3), np.ones((2, 2)), mode="same", boundary="wrap")
    array([[2., 1., 1.],
           [1., 2., 1.],
           [1., 1., 2.]])
    >>> fftconv.convolve([1.0, np.nan, 3.0, 4.0], [1.0, 1.0, 1.0], "same", "nearest",
    ...                  nan_policy="interpolate")
    array([ 3. ,  6. , 10.5, 11. ])
    """
    return _run(
        in1,
        in2,
        mode,
        boundary,
        fillvalue,
        axes,
        channel_axis,
        method,
        out,
        threads,
        False,
        max_memory,
        nan_policy,
        mask,
        return_weights,
    )


def correlate(
    in1,
    in2,
    mode: str = "full",
    boundary: str = "fill",
    fillvalue=0,
    *,
    axes=None,
    channel_axis: int | None = None,
    method: str = "auto",
    out: np.ndarray | None = None,
    threads: int | None = None,
    max_memory: int | str | None = None,
    nan_policy: str = "propagate",
    mask=None,
    return_weights: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Cross-correlate `in1` with `in2`; the arguments are those of `convolve`.

    The definition is scipy.signal.correlate2d's: convolution with `in2`
    reversed on the convolved axes and conjugated, with 'same' centred at
    ``k // 2`` on each axis (as correlate2d and scipy.ndimage centre it).

    Examples
    --------
    >>> import numpy as np
    >>> import fftconv
    >>> fftconv.correlate(np.array([0.0, 0.0, 1.0, 0.0]), np.array([1.0, 2.0, 3.0]), "same")
    array([0., 3., 2., 1.])
    """
    return _run(
        in1,
        in2,
        mode,
        boundary,
        fillvalue,
        axes,
        channel_axis,
        method,
        out,
        threads,
        True,
        max_memory,
        nan_policy,
        mask,
        return_weights,
    )
