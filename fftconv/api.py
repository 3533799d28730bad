"""The public entry points: validate, plan, execute, return."""

from __future__ import annotations

import math

import numpy as np

from ._problem import (
    Problem,
    check_out,
    make_problem,
    normalize_method,
    normalize_threads,
)
from .methods.direct import compiled_available, convolve_direct, direct_cost
from .methods.fft import convolve_fft, transform_lengths
from .methods.separable import convolve_separable, kernel_factors, separable_cost


def _kernel_2d(problem: Problem, k):
    """The one 2-D kernel of a problem with two convolved axes, else None."""
    if len(problem.axes) != 2 or any(
        k.shape[d] != 1 for d in range(k.ndim) if d not in problem.axes
    ):
        return None
    return k.reshape(problem.kernel_shape)


def _choose_method(problem: Problem, k, threads: int) -> tuple[str, list | None]:
    """A size rule until the planner lands: direct (or separable / low-rank)
    summation in seconds at default rates, against the FFT path at about
    ``12 N log2 N`` flops for its transforms at 2 GFlop/s per thread."""
    n_fft = math.prod(transform_lengths(problem)) * math.prod(problem.batch_shape)
    # plus about 0.1 ms of plan lookup and buffer set-up per call
    fft = 3 * 4 * n_fft * max(1.0, math.log2(n_fft)) / (2e9 * threads) + 1e-4
    if not compiled_available(problem):
        direct = math.prod(problem.out_shape) * math.prod(problem.kernel_shape) / 4e8
        return ("direct" if direct <= fft else "fft"), None
    best, factors = ("direct", direct_cost(problem, None, threads)[0]), None
    if fft < best[1]:
        best = ("fft", fft)
    k2 = _kernel_2d(problem, k)
    one = separable_cost(problem, 1, None, threads)[0]
    if k2 is not None and min(problem.kernel_shape) > 1 and one < best[1]:
        # only as many factors as could still beat the best so far (and no SVD
        # of a large kernel that the FFT runs faster anyway)
        factors = kernel_factors(k2, problem.dtype, max_rank=int(best[1] // one))
        if factors:
            sep = separable_cost(problem, len(factors), None, threads)[0]
            if sep < best[1]:
                best = ("separable" if len(factors) == 1 else "lowrank", sep)
    return best[0], factors


def _run(in1, in2, mode, boundary, fillvalue, axes, channel_axis, method, out, threads, correlate):
    problem, a, k = make_problem(in1, in2, mode, boundary, fillvalue, axes, channel_axis, correlate)
    method = normalize_method(method)
    threads = normalize_threads(threads)
    check_out(out, problem)
    factors = None
    if method == "auto":
        method, factors = _choose_method(problem, k, threads)
    result = out if out is not None else np.empty(problem.out_shape, problem.dtype)
    if method == "direct":
        convolve_direct(problem, a, k, result, threads)
    elif method in ("separable", "lowrank"):
        k2 = _kernel_2d(problem, k)
        if factors is None and k2 is not None:
            factors = kernel_factors(k2, problem.dtype, None if method == "lowrank" else 1)
        convolve_separable(problem, a, k, result, threads, factors if k2 is not None else None)
    else:
        convolve_fft(problem, a, k, result, threads)
    if problem.swapped and problem.correlate:
        # scipy.signal.correlate2d: correlate the swapped inputs, then reverse.
        flip = tuple(
            slice(None, None, -1) if d in problem.axes else slice(None) for d in range(result.ndim)
        )
        result[...] = result[flip].copy()
    return result


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
) -> np.ndarray:
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
        The padding value for boundary='fill'; complex allowed.
    axes : int or sequence of int, optional
        Axes to convolve over (default all); the others broadcast.
    channel_axis : int, optional
        The channel axis of `in1`: each channel is convolved with `in2`, or
        with its own kernel when `in2` has that axis too.
    method : {'auto', 'direct', 'fft', 'separable', 'lowrank'}
        'auto' picks the cheapest by a cost rule. 'separable' and 'lowrank'
        run the kernel as one or a few 1-D pass pairs when it factors within
        the dtype's tolerance, and sum directly otherwise.
    out : ndarray, optional
        Write the result here (shape and dtype must match the result's).
    threads : int, optional
        Threads for FFTW and the compiled direct kernels; default the cores
        this process may use.

    Returns
    -------
    ndarray
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
    """
    return _run(in1, in2, mode, boundary, fillvalue, axes, channel_axis, method, out, threads, False)


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
) -> np.ndarray:
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
    return _run(in1, in2, mode, boundary, fillvalue, axes, channel_axis, method, out, threads, True)
