"""Runs a Plan: prepares the kernel, picks the executor, computes, unswaps.

The one layer between the planner's decision and the executors, shared by
`fftconv.api`, `Convolver`, the tiles of an out-of-core run and the SciPy
drop-ins (numpy's ``_raw_fft`` is the model: one engine under thin public
functions). Executors take every decision from the Plan they are handed;
the one decision that depends on the pixels, whether the data are finite, is
made here, once per call (or tile), by `for_data`, and the Plan it returns
says which path runs (``print(plan)`` shows it).
"""

from __future__ import annotations

import mmap
import os
from dataclasses import replace

import numpy as np

try:
    from numpy.lib.array_utils import byte_bounds
except ImportError:  # numpy < 2
    from numpy import byte_bounds

from ._problem import Problem
from .methods import finite
from .methods.blocks import convolve_oa
from .methods.direct import convolve_direct
from .methods.fft import (
    convolve_circular,
    convolve_fft,
    convolve_fft_nonfinite,
    kernel_spectrum,
)
from .methods.separable import convolve_separable
from .planner import Plan


def prepare_kernel(problem: Problem, plan: Plan, k, threads: int):
    """What executing `plan` computes from the kernel alone, computed once: the kernel's
    spectrum at the plan's transform shape ('fft', 'oa'), its factor pairs
    ('separable', 'lowrank', found by the planner), or None (direct summation, and
    non-finite kernels, which every executor sums directly)."""
    if plan.method in ("separable", "lowrank"):
        return plan.factors
    if plan.method not in ("fft", "oa") or not np.isfinite(k).all():
        return None
    return kernel_spectrum(problem, k, plan.transform_shape, threads, circular=plan.circular)


def for_data(problem: Problem, plan: Plan, a, k) -> Plan:
    """`plan`, or the exact path for data holding NaN or infinity (``finite=False``).

    Transforms would spread a non-finite sample over the whole result: a non-finite
    kernel is summed directly, a non-finite image (or fill value) takes the
    whole-array FFT's exact non-finite path. The factored passes cannot carry a
    non-finite fill value, so they sum directly then. Direct summation is exact as
    it stands (complex data take its numpy engine, see `convolve_direct`).
    """
    method = plan.method
    if method in ("fft", "oa"):
        if not np.isfinite(k).all():
            return _nonfinite(plan, "direct")
        fill_used = not plan.circular  # a circular transform never reads the fill value
        if not finite(a) or (fill_used and not np.isfinite(problem.fillvalue)):
            return _nonfinite(plan, "fft")
        return plan
    if method in ("separable", "lowrank") and not np.isfinite(problem.fillvalue):
        return _nonfinite(plan, "direct")
    if (
        method == "direct"
        and problem.is_complex
        and not (finite(a) and finite(k) and np.isfinite(problem.fillvalue))
    ):
        return replace(plan, finite=False)
    return plan


def _nonfinite(plan: Plan, method: str) -> Plan:
    return replace(
        plan,
        method=method,
        transform_shape=None,
        block_shape=None,
        n_blocks=1,
        circular=False,
        factors=None,
        finite=False,
    )


def execute(problem: Problem, plan: Plan, a, k, out, threads: int, prepared=None) -> None:
    """Run the executor `plan` names (after `for_data`) into `out`; `prepared` is
    `prepare_kernel`'s result when the caller kept one (a `Convolver`, the tiles of
    one call)."""
    run = for_data(problem, plan, a, k)
    if run is not plan:
        prepared = None  # made for the finite path
    method = run.method
    if method == "direct":
        convolve_direct(problem, a, k, out, threads, finite_data=run.finite)
    elif method in ("separable", "lowrank"):
        # No factors (the kernel does not factor) sums directly: still exact.
        factors = prepared if prepared is not None else run.factors
        convolve_separable(problem, a, k, out, threads, None if factors is None else list(factors))
    elif method == "oa":
        convolve_oa(problem, a, k, out, threads, run.transform_shape, kspec=prepared)
    elif method == "fft" and not run.finite:
        convolve_fft_nonfinite(problem, a, k, out, threads)
    elif method == "fft" and run.circular:
        convolve_circular(problem, a, k, out, threads, kspec=prepared)
    elif method == "fft":
        convolve_fft(problem, a, k, out, threads, run.transform_shape, kspec=prepared)
    else:
        raise ValueError(f"no executor for method {method!r}")


def overlaps(out, *arrays) -> bool:
    """Whether `out` shares memory with any of `arrays` (exactly; when numpy cannot
    tell within a bounded effort, it is taken to), or maps bytes of the same file as
    one of them (two `numpy.memmap` of one file are two mappings, which numpy does
    not see as shared: their byte ranges in the file are compared instead)."""
    out_file = _file_bytes(out)
    for x in arrays:
        if not isinstance(x, np.ndarray):
            continue
        if np.may_share_memory(out, x):
            try:
                if np.shares_memory(out, x, max_work=1 << 20):
                    return True
            except np.exceptions.TooHardError:
                return True
        if out_file is not None:
            x_file = _file_bytes(x)
            if x_file is not None and x_file[0] == out_file[0]:
                if x_file[1] < out_file[2] and out_file[1] < x_file[2]:
                    return True
    return False


def _file_bytes(x):
    """``((st_dev, st_ino), start, stop)``: the file and the bytes of it that `x` spans,
    when `x` is a `numpy.memmap` of a named file or a view of one; else None."""
    root = x
    while not (isinstance(root, np.memmap) and isinstance(root.base, mmap.mmap)):
        root = getattr(root, "base", None)
        if not isinstance(root, np.ndarray):
            return None
    if root.filename is None:
        return None
    try:
        st = os.stat(root.filename)
    except OSError:
        return None
    lo, hi = byte_bounds(x)
    first = root.offset - byte_bounds(root)[0]  # file position of address 0
    return (st.st_dev, st.st_ino), first + lo, first + hi


def compute(problem: Problem, plan: Plan, a, k, out, threads: int, prepared=None):
    """Execute `plan` into `out` (or a new array) and undo SciPy's 'valid' swap.

    An `out` that overlaps the image or the kernel (``out=x``, or a view of it)
    would be read after it is written: the result is computed into a temporary,
    then copied into `out`.
    """
    if out is not None and overlaps(out, a, k):
        result = compute(problem, plan, a, k, None, threads, prepared)
        np.copyto(out, result, casting="unsafe")
        return out
    result = out if out is not None else np.empty(problem.out_shape, problem.dtype)
    execute(problem, plan, a, k, result, threads, prepared)
    unswap(problem, result)
    return result


def unswap(problem: Problem, result) -> None:
    """scipy.signal.correlate2d's 'valid' rule: correlating swapped inputs, then
    reversing the result on the convolved axes (numpy buffers the overlap)."""
    if problem.swapped and problem.correlate:
        flip = tuple(
            slice(None, None, -1) if d in problem.axes else slice(None) for d in range(result.ndim)
        )
        result[...] = result[flip]
