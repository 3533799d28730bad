"""Separable and low-rank kernels: a 2-D kernel as a sum of outer products.

A ``kh x kw`` kernel ``K`` equal to ``col ⊗ row`` (box, Gaussian, Sobel and
Scharr parts...) convolves in ``kh + kw`` multiply-adds per output instead
of ``kh * kw``: a column pass, then a row pass.  A kernel of rank ``r`` is a
sum of ``r`` such pairs (from its singular value decomposition) and costs
``r * (kh + kw)``.

`kernel_factors` decides whether a kernel is such a sum *within a tolerance
tied to the dtype*: every tap of ``sum col ⊗ row`` is within
``8 * eps(dtype) * max|K|`` of ``K`` (rounding the kernel to the dtype
already moves it by half a unit; the factored sum's own rounding is of the
order of the direct sum's).  A kernel that is only almost separable (off by
more than that) gets more factors, or none.

Its cost model is the planner's (`fftconv.planner.costs.separable_cost`).
`convolve_separable` runs the passes row by row in compiled code: for each
output row the column pass fills one image-wide row buffer from the image
rows the boundary mode maps to, and the row pass reads it through the
column map, so neither the padded image nor an intermediate image is ever
built, and kernels larger than the image and even sizes need no special
case.  The factored sum does not propagate NaN and infinity exactly as the
2-D sum does (``0 * inf`` lands in other outputs), so bands with a
non-finite result are recomputed by direct summation.
"""

from __future__ import annotations

import math

import numpy as np

from .._problem import Problem
from . import effective_kernel, interleaved
from .direct import convolve_direct
from .rows import compiled_available, kernels, run_2d

#: Factors may deviate from the kernel by this many units of the dtype's epsilon
#: times the largest tap.
ULPS = 8


def kernel_2d(problem: Problem, k):
    """The one 2-D kernel of a problem with two convolved axes (one kernel for the
    whole batch), else None."""
    if len(problem.axes) != 2 or any(
        k.shape[d] != 1 for d in range(k.ndim) if d not in problem.axes
    ):
        return None
    return k.reshape(problem.kernel_shape)


def tolerance(kernel, dtype) -> float:
    """Largest deviation per tap of the factored kernel from `kernel` that is accepted."""
    eps = np.finfo(np.dtype(dtype)).eps
    return float(ULPS * eps * np.max(np.abs(kernel)))


def max_useful_rank(kh: int, kw: int) -> int:
    """The largest rank whose passes cost fewer multiply-adds than the 2-D sum, with a
    margin of 1.5 for the extra pass over the row buffer."""
    return int((kh * kw) // (1.5 * (kh + kw)))


def kernel_factors(kernel, dtype, max_rank: int | None = None) -> list:
    """Factor pairs ``(col, row)`` with ``kernel ≈ sum(np.outer(col, row))``.

    Parameters
    ----------
    kernel : array_like, 2-D
        The kernel.
    dtype : dtype
        The dtype the convolution is computed in; sets the tolerance (see
        `tolerance`).
    max_rank : int, optional
        Most factors to return; default `max_useful_rank`, beyond which the
        passes cost more than the 2-D sum.

    Returns
    -------
    list of (ndarray, ndarray)
        The fewest factor pairs that reproduce `kernel` within the tolerance,
        float64 (complex128 for complex kernels); empty when more than
        `max_rank` would be needed or the kernel is not finite.

    Examples
    --------
    >>> import numpy as np
    >>> sobel = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]])
    >>> [(c.tolist(), r.tolist()) for c, r in kernel_factors(sobel, np.float64)]
    [([1.0, 2.0, 1.0], [1.0, 0.0, -1.0])]
    >>> almost = sobel + np.array([[0, 1e-9, 0], [0, 0, 0], [0, 0, 0]])
    >>> kernel_factors(almost, np.float64)
    []
    """
    K = np.asarray(kernel)
    if K.ndim != 2:
        raise ValueError(f"kernel must be 2-D; got shape {K.shape}")
    kh, kw = K.shape
    if max_rank is None:
        max_rank = max_useful_rank(kh, kw)
    work = np.complex128 if K.dtype.kind == "c" else np.float64
    Kd = K.astype(work)
    if max_rank < 1 or not np.isfinite(Kd).all():
        return []
    tol = tolerance(Kd, dtype)
    # Rank one from a row and a column of the kernel itself: exact (zeros stay
    # zeros, integers stay integers) for kernels built as outer products.
    i, j = np.unravel_index(np.argmax(np.abs(Kd)), Kd.shape)
    if Kd[i, j] == 0:
        return [(np.zeros(kh, work), np.zeros(kw, work))]
    col, row = Kd[:, j].copy(), Kd[i, :] / Kd[i, j]
    cross = np.max(np.abs(Kd - np.outer(col, row)))
    if cross <= tol:
        return [(col, row)]
    if max_rank == 1 and cross > 4 * math.sqrt(Kd.size) * tol:
        # No rank-one approximation is within `tol` per tap: that residual would bound
        # the second singular value by sqrt(size) * tol, and the cross approximation on
        # the largest entry is within 2 sigma_2 of the kernel (Goreinov and Tyrtyshnikov,
        # 2001), so the SVD (its first call costs a fresh process 0.3 ms) would say no.
        return []
    U, s, Vh = np.linalg.svd(Kd)
    approx = np.zeros_like(Kd)
    for r in range(min(max_rank, len(s))):
        approx += s[r] * np.outer(U[:, r], Vh[r])
        if np.max(np.abs(Kd - approx)) <= tol:
            root = np.sqrt(s[: r + 1])
            return [(U[:, q] * root[q], Vh[q] * root[q]) for q in range(r + 1)]
    return []


def convolve_separable(problem: Problem, a, k, out, threads: int = 1, factors=None) -> None:
    """Write the convolution `problem` of `a` and `k` into `out` by 1-D passes.

    Parameters
    ----------
    problem : Problem
        A problem with two convolved axes.
    a, k, out : ndarray
        Image, kernel (unflipped) and result, as for `convolve_direct`.
    threads : int
        Threads for the row bands.
    factors : list of (col, row), optional
        ``kernel_factors(k2d, problem.dtype)`` of the 2-D kernel `k` as passed,
        when one kernel serves the whole batch; computed here otherwise.
        Kernels without factors, and complex problems, are summed directly.
        The fill value must be finite (the execute layer sums directly otherwise).

    Examples
    --------
    >>> import numpy as np
    >>> from fftconv._problem import make_problem
    >>> img = np.arange(16.0).reshape(4, 4)
    >>> p, a, k = make_problem(img, np.ones((3, 3)), "same", "symmetric", 0, None, None, False)
    >>> out = np.empty(p.out_shape, p.dtype)
    >>> convolve_separable(p, a, k, out)
    >>> out[0]
    array([15., 21., 30., 36.])
    """
    if (
        len(problem.axes) != 2
        or problem.is_complex  # complex kernels: real direct passes (see convolve_direct)
        or not compiled_available(problem)
        or kernels() is None
    ):
        return convolve_direct(problem, a, k, out, threads)
    lay = interleaved.layout(problem, k)
    if lay is not None:
        if factors is None and not lay.per_channel:
            factors = kernel_factors(interleaved.shared_kernel(lay, k), problem.dtype)
        return interleaved.convolve(problem, lay, a, k, out, threads, factors)
    kk = effective_kernel(problem, k)
    dtype = problem.dtype
    found: dict = {}

    def per_kernel(ker):
        # `ker` is the convolution kernel of one batch item; the compiled passes
        # correlate, so the factors and the fallback's weights are reversed. Computed
        # once per kernel, not per row band; `ker` is kept so that its id stays unique.
        key = id(ker)
        if key not in found:
            if factors is not None:
                fs = factors
                if problem.correlate:  # factors of k; ker = conj(k) reversed
                    fs = [(np.conj(c)[::-1], np.conj(r)[::-1]) for c, r in fs]
            else:
                fs = kernel_factors(ker, dtype)
            sep = None
            if fs:
                sep = (
                    np.ascontiguousarray([c[::-1] for c, _ in fs], dtype=dtype),
                    np.ascontiguousarray([r[::-1] for _, r in fs], dtype=dtype),
                )
            found[key] = (ker, sep, np.ascontiguousarray(ker[::-1, ::-1]))
        return found[key][1:]

    def make_task(geo, img, ker, dst, fill, i0, i1):
        kern = kernels()
        fs, w = per_kernel(ker)
        args = (dst, geo.rowmap, geo.colmap, fill, geo.px, geo.jl, geo.jr, i0, i1)

        def task():
            if fs is None or kern.separable_rows(img, fs[0], fs[1], *args):
                kern.direct_rows(img, w, *args)

        return task

    run_2d(problem, a, kk, out, threads, make_task)
