"""Direct summation: the exact method for small kernels.

Two engines compute the same sums:

* compiled (numba, when installed): for one or two convolved axes, every
  2-D image of the batch is split into bands of output rows that run on
  `threads` threads.  Each output row is accumulated in a buffer that stays
  in L1 cache, four kernel taps per pass over it, from the image rows the
  boundary mode maps to; the padded image is never built (interior columns
  run as vectorised loops, the few border columns read through a column
  map).  See `_direct_kernels`.
* numpy, for three or more convolved axes and when numba is missing: the
  result is accumulated tap by tap, ``out += w[j] * P[j : j + m]``, over a
  padded copy ``P`` of the image that is only as large as the padding needs.

Non-finite samples propagate exactly as the sum says (no tap is skipped, no
fast-math beyond fused multiply-add), so this is also the method of last
resort for non-finite kernels.

The compiled engine (row bands, index maps, the numba loader) is
`fftconv.methods.rows`, shared with the separable passes; the cost model is
the planner's (`fftconv.planner.costs.direct_cost`).
"""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np

from .._pad import padded
from .._problem import Problem
from . import effective_kernel, finite, interleaved
from .rows import Geometry, compiled_available, kernels, run_2d


def convolve_direct(
    problem: Problem, a, k, out, threads: int = 1, finite_data: bool | None = None
) -> None:
    """Write the convolution `problem` of `a` and `k` into `out`.

    Parameters
    ----------
    problem : Problem
        What to compute; `a`, `k` and `out` have its shapes and `out` its dtype.
    a, k : ndarray
        The image and the (unflipped) kernel.
    out : ndarray
        Receives the result.
    threads : int
        Threads for the compiled engine.
    finite_data : bool, optional
        Whether `a`, `k` and the fill value are all finite, when the caller has
        checked (`fftconv._execute.for_data`); only complex problems use it (their
        non-finite data take the numpy engine). None checks here.

    Examples
    --------
    >>> import numpy as np
    >>> from fftconv._problem import make_problem
    >>> p, a, k = make_problem(np.arange(5.0), [1.0, 1.0], "same", "nearest", 0, None, None, False)
    >>> out = np.empty(p.out_shape, p.dtype)
    >>> convolve_direct(p, a, k, out)
    >>> out
    array([0., 1., 3., 5., 7.])
    """
    if not compiled_available(problem) or kernels() is None:
        convolve_numpy(problem, a, k, out)
    elif problem.is_complex:
        _convolve_complex(problem, a, k, out, threads, finite_data)
    elif (lay := interleaved.layout(problem, k)) is not None:
        interleaved.convolve(problem, lay, a, k, out, threads)
    else:
        run_2d(problem, a, effective_kernel(problem, k), out, threads, _direct_task)


def _convolve_complex(problem: Problem, a, k, out, threads: int, finite_data=None) -> None:
    """Complex convolution as real ones: (ar + i ai) * (kr + i ki) is
    ``ar*kr - ai*ki + i (ar*ki + ai*kr)``, two real convolutions when one side is
    real.  The compiled kernels are then built for float32 and float64 only (half
    the compile time), and the real loops vectorise better than complex ones.
    The fill value splits the same way.  Complex arithmetic turns ``inf * 0``
    into NaN in the other part too, which the split does not; non-finite complex
    data therefore take the numpy engine."""
    rd = np.dtype(np.float32) if problem.dtype == np.complex64 else np.dtype(np.float64)
    kk = effective_kernel(problem, k)
    fv = complex(problem.fillvalue)
    if finite_data is None:
        finite_data = finite(a) and finite(kk) and np.isfinite(fv)
    if not finite_data:
        convolve_numpy(problem, a, k, out)
        return
    a_parts = (a.real, a.imag if a.dtype.kind == "c" else None)
    k_parts = (kk.real, kk.imag if kk.dtype.kind == "c" else None)
    fills = (fv.real, fv.imag)
    re = np.zeros(out.shape, rd)
    im = np.zeros(out.shape, rd)
    tmp = np.empty(out.shape, rd)
    for ia, ap in enumerate(a_parts):
        if ap is None and fills[ia] == 0:
            continue
        if ap is None:
            ap = np.zeros(a.shape, rd)
        part = replace(problem, dtype=rd, fillvalue=fills[ia])
        for ik, kp in enumerate(k_parts):
            if kp is None:
                continue
            run_2d(part, ap, kp, tmp, threads, _direct_task)
            if ia == ik:  # real*real adds to the real part, imag*imag subtracts
                (re.__iadd__ if ia == 0 else re.__isub__)(tmp)
            else:
                im += tmp
    out.real = re
    out.imag = im


def convolve_numpy(problem: Problem, a, k, out) -> None:
    """Direct summation tap by tap in numpy, in `problem`'s dtype (integers too: the
    SciPy drop-ins sum exactly in int64 with it)."""
    dtype = problem.dtype
    pads = problem.pads()
    if any(pb or pa for pb, pa in pads):
        P = padded(a, problem.axes, pads, problem.boundary, problem.fillvalue, dtype=dtype)
    else:
        P = a
    kk = effective_kernel(problem, k).astype(dtype, copy=False)
    osize = [out.shape[ax] for ax in problem.axes]
    ksize = problem.kernel_shape
    acc = out if out.dtype == dtype and out.flags.writeable else np.empty(out.shape, dtype)
    acc[...] = 0
    term = np.empty(out.shape, dtype)
    win = [slice(None)] * P.ndim
    tap = [slice(None)] * kk.ndim
    with np.errstate(invalid="ignore", over="ignore"):  # inf * 0 is NaN, as summed
        for j in itertools.product(*(range(s) for s in ksize)):
            # Convolution: output t takes P[t + (k-1) - j] * w[j].
            for ax, jj, kn, o in zip(problem.axes, j, ksize, osize):
                start = kn - 1 - jj
                win[ax] = slice(start, start + o)
                tap[ax] = slice(jj, jj + 1)
            np.multiply(P[tuple(win)], kk[tuple(tap)], out=term)
            acc += term
    if acc is not out:
        np.copyto(out, acc)


def _direct_task(geo: Geometry, img, ker, dst, fill, i0, i1):
    kern = kernels()
    w = np.ascontiguousarray(ker[::-1, ::-1])  # convolution -> correlation form
    rows = kern.small.ROWS.get(w.shape, kern.direct_rows)
    return lambda: rows(img, w, dst, geo.rowmap, geo.colmap, fill, geo.px, geo.jl, geo.jr, i0, i1)
