"""Whole-array FFT convolution with cached pyFFTW plans.

For each convolved axis with image length ``n``, kernel length ``k`` and
boundary pads ``pb``, ``pa``: the padded image ``P`` (length ``n + pb + pa``)
is written into a transform buffer of length ``L``, the product of spectra is
inverted, and the result is samples ``k - 1 .. n + pb + pa - 1`` of the linear
convolution, which circular convolution of length ``L >= n + pb + pa`` leaves
untouched.  Zero padding ('fill' with fillvalue 0) need not be written at all:
the buffer is zero there, and the result then starts at ``k - 1 - pb``, which
only needs ``L >= n + max(pb, pa)`` (less than 'full' asks for in 'same'
mode).  Real data use real-to-complex transforms; single precision stays
single precision throughout.

Non-finite inputs would spread over the whole result through the transform.
They are zeroed for the transform, and the outputs whose window holds one are
set afterwards to what direct summation gives there (NaN, +inf or -inf),
found by convolving masks of the non-finite samples (`convolve_fft_nonfinite`,
the path `fftconv._execute.for_data` chooses for such data; `convolve_fft`,
`convolve_circular` and the blocks take finite data only).
"""

from __future__ import annotations

import itertools
import math
from contextlib import contextmanager
from dataclasses import replace

import numpy as np

from .. import _fftw
from .._pad import pad_into, padded
from .._problem import Problem
from . import effective_kernel


def virtual_padding(problem: Problem) -> bool:
    """True when the padding is zeros, which the transform buffer already holds."""
    return problem.boundary == "fill" and problem.fillvalue == 0


def transform_lengths(problem: Problem) -> tuple[int, ...]:
    """The FFTW-fast transform length on each convolved axis."""
    virtual = virtual_padding(problem)
    real = not problem.is_complex
    lengths = []
    for n, k, (pb, pa) in zip(problem.image_shape, problem.kernel_shape, problem.pads()):
        need = n + max(pb, pa) if virtual else n + pb + pa
        lengths.append(_fftw.fast_length(max(need, k), real=real))
    return tuple(lengths)


def buffer_shape(shape, problem: Problem, lengths) -> tuple[int, ...]:
    out = list(shape)
    for a, n in zip(problem.axes, lengths):
        out[a] = n
    return tuple(out)


def product_shape(a_shape, kspec_shape, problem: Problem, lengths) -> tuple[int, ...]:
    """Shape of the spectrum product (and of the inverse transform): the image's and the
    kernel's non-convolved axes broadcast, `lengths` on the convolved ones."""
    ones = [1] * len(lengths)
    shape = np.broadcast_shapes(
        buffer_shape(a_shape, problem, ones), buffer_shape(kspec_shape, problem, ones)
    )
    return buffer_shape(shape, problem, lengths)


def zero_tail(buf, problem: Problem, used) -> None:
    """Zero the buffer beyond the first `used` samples on each convolved axis."""
    for a, u in zip(problem.axes, used):
        if u < buf.shape[a]:
            idx = [slice(None)] * buf.ndim
            idx[a] = slice(u, None)
            buf[tuple(idx)] = 0


def fold_kernel(kk: np.ndarray, axes, lengths) -> np.ndarray:
    """`kk` wrapped modulo `lengths` on `axes`: the kernel of a circular convolution
    of that length (taps ``j`` and ``j + L`` land on the same sample).

    The taps are summed in double precision (a kernel-sized array): folded in a
    float32 kernel's own precision they would lose the accuracy a float64 result
    promises."""
    if any(kk.shape[ax] > n for ax, n in zip(axes, lengths)):
        kk = kk.astype(np.result_type(kk.dtype, np.float64), copy=False)
    for ax, n in zip(axes, lengths):
        k = kk.shape[ax]
        if k > n:
            m = -(-k // n)
            pad = [(0, 0)] * kk.ndim
            pad[ax] = (0, m * n - k)
            kk = np.pad(kk, pad)
            shape = kk.shape[:ax] + (m, n) + kk.shape[ax + 1 :]
            kk = kk.reshape(shape).sum(axis=ax)
    return kk


def kernel_spectrum(
    problem: Problem, k: np.ndarray, lengths, threads: int, circular: bool = False
) -> np.ndarray:
    """The spectrum of the convolution kernel at `lengths`, scaled by 1/prod(lengths).

    With `circular`, kernels longer than a transform length are folded onto it
    (see `fold_kernel`) instead of being an error.
    """
    with lent_kernel_spectrum(problem, k, lengths, threads, circular) as spec:
        return spec.copy()


@contextmanager
def lent_kernel_spectrum(problem: Problem, k, lengths, threads: int, circular: bool = False):
    """`kernel_spectrum` in the lent plan's own output buffer, valid inside the block:
    a one-off call allocates no spectrum-sized array (for a 4320x4320 float32
    transform that saves 75 MB of fresh pages)."""
    kk = effective_kernel(problem, k)
    if circular:
        kk = fold_kernel(kk, problem.axes, lengths)
        k = kk
    shape = buffer_shape(k.shape, problem, lengths)
    with _fftw.transform(shape, problem.dtype, problem.axes, "forward", threads) as fwd:
        buf = fwd.input_array
        zero_tail(buf, problem, [k.shape[a] for a in problem.axes])
        buf[tuple(slice(0, s) for s in k.shape)] = kk
        fwd.execute()
        spec = fwd.output_array
        np.multiply(spec, 1.0 / math.prod(lengths), out=spec)
        yield spec


def convolve_fft(problem: Problem, a, k, out, threads: int, lengths, kspec=None) -> None:
    """Write the convolution `problem` of finite `a` and `k` into `out` by one transform
    of the padded image at `lengths` (the plan's ``transform_shape``, as
    `transform_lengths` gives it).

    `kspec`, when given, is ``kernel_spectrum(problem, k, lengths, ...)`` computed
    earlier (a `Convolver` keeps it). Non-finite data take `convolve_fft_nonfinite`
    (the execute layer decides which, once).
    """
    lengths = tuple(int(x) for x in lengths)
    if kspec is not None:
        return _convolve_finite(problem, a, kspec, lengths, out, threads)
    with lent_kernel_spectrum(problem, k, lengths, threads) as spec:
        _convolve_finite(problem, a, spec, lengths, out, threads)


def _convolve_finite(problem: Problem, a, kspec, lengths, out, threads: int) -> None:
    virtual = virtual_padding(problem)
    pads = problem.pads()
    explicit = tuple((0, 0) for _ in pads) if virtual else pads
    used = [n + pb + pa for n, (pb, pa) in zip(problem.image_shape, explicit)]
    shape = buffer_shape(a.shape, problem, lengths)
    yshape = product_shape(a.shape, kspec.shape, problem, lengths)
    dtype = problem.dtype
    with _fftw.transform(shape, dtype, problem.axes, "forward", threads) as fwd:
        buf = fwd.input_array
        zero_tail(buf, problem, used)
        pad_into(buf, a, problem.axes, explicit, problem.boundary, problem.fillvalue)
        fwd.execute()
        with _fftw.transform(yshape, dtype, problem.axes, "backward", threads) as inv:
            np.multiply(fwd.output_array, kspec, out=inv.input_array)
            inv.execute()
            y = inv.output_array
            crop = [slice(None)] * y.ndim
            for ax, k, (pb, _) in zip(problem.axes, problem.kernel_shape, pads):
                start = k - 1 - (pb if virtual else 0)
                crop[ax] = slice(start, start + out.shape[ax])
            np.copyto(out, y[tuple(crop)], casting="unsafe")


def convolve_fft_nonfinite(problem: Problem, a, k, out, threads: int) -> None:
    """Exact non-finite propagation for an image (or fill value) holding NaN or infinity
    and a finite kernel: transform the finite part of the padded image, then fix the
    outputs whose window holds a NaN or an infinity, as direct summation gives them.
    Each transform is of a finite 'valid' problem at that problem's own lengths."""
    cdtype = problem.dtype
    pads = problem.pads()
    P = padded(a, problem.axes, pads, problem.boundary, problem.fillvalue, dtype=cdtype)
    bad = ~np.isfinite(P)
    clean = np.where(bad, 0, P)
    valid = replace(problem, in1_shape=P.shape, mode="valid", boundary="fill", fillvalue=0)
    convolve_fft(valid, clean, k, out, threads, transform_lengths(valid))
    kk = effective_kernel(problem, k)
    plain = replace(valid, correlate=False, dtype=np.dtype(np.float64))

    def hits(mask, kmask):
        if not mask.any() or not kmask.any():
            return np.zeros(out.shape, bool)
        res = np.empty(plain.out_shape, np.float64)
        sub = replace(plain, in2_shape=kmask.shape)
        convolve_fft(
            sub,
            mask.astype(np.float64),
            kmask.astype(np.float64),
            res,
            threads,
            transform_lengths(sub),
        )
        return np.broadcast_to(res > 0.5, out.shape)

    if problem.is_complex:
        touched = hits(bad, np.ones(kk.shape, bool))
        out[touched] = complex(np.nan, np.nan)
        return
    nan = hits(np.isnan(P), np.ones(kk.shape, bool))
    pos_inf, neg_inf = np.isposinf(P), np.isneginf(P)
    up = hits(pos_inf, kk > 0) | hits(neg_inf, kk < 0)
    down = hits(pos_inf, kk < 0) | hits(neg_inf, kk > 0)
    zero_times_inf = hits(pos_inf | neg_inf, kk == 0)
    out[up] = np.inf
    out[down] = -np.inf
    out[nan | zero_times_inf | (up & down)] = np.nan


def circular_ok(problem: Problem) -> bool:
    """True when the result is a circular convolution at the image's own size: 'wrap'
    padding repeats the image, so ``full`` and ``same`` read a periodic signal."""
    return problem.boundary == "wrap" and problem.mode != "valid"


def convolve_circular(problem: Problem, a, k, out, threads: int, kspec=None) -> None:
    """Write the 'wrap' convolution `problem` into `out` by one circular convolution at
    the image's own size (no padded buffer): output ``t`` on an axis of length ``n``
    is sample ``(t + k - 1 - pb) mod n`` of the circular result.

    `kspec`, when given, is ``kernel_spectrum(problem, k, problem.image_shape, ...,
    circular=True)``. Finite data only (as `convolve_fft`).
    """
    if not circular_ok(problem):
        raise ValueError(
            f"circular convolution needs boundary='wrap' and mode 'full' or "
            f"'same'; got boundary={problem.boundary!r}, mode={problem.mode!r}"
        )
    if kspec is None:
        with lent_kernel_spectrum(problem, k, problem.image_shape, threads, circular=True) as spec:
            return _circular(problem, a, spec, out, threads)
    _circular(problem, a, kspec, out, threads)


def _circular(problem: Problem, a, kspec, out, threads: int) -> None:
    lengths = problem.image_shape
    yshape = product_shape(a.shape, kspec.shape, problem, lengths)
    with _fftw.transform(a.shape, problem.dtype, problem.axes, "forward", threads) as fwd:
        fwd.input_array[...] = a
        fwd.execute()
        with _fftw.transform(yshape, problem.dtype, problem.axes, "backward", threads) as inv:
            np.multiply(fwd.output_array, kspec, out=inv.input_array)
            inv.execute()
            _copy_periodic(out, inv.output_array, problem)


def _copy_periodic(out, y, problem: Problem) -> None:
    """out[t] = y[(t + shift) mod n] on each convolved axis, as a few slice copies."""
    runs_per_axis = []
    for ax, kn, (pb, _), n in zip(
        problem.axes, problem.kernel_shape, problem.pads(), problem.image_shape
    ):
        o = out.shape[ax]
        src = (kn - 1 - pb) % n
        runs, t = [], 0
        while t < o:
            m = min(n - src, o - t)
            runs.append((ax, slice(src, src + m), slice(t, t + m)))
            t += m
            src = 0
        runs_per_axis.append(runs)
    for combo in itertools.product(*runs_per_axis):
        si = [slice(None)] * out.ndim
        di = [slice(None)] * out.ndim
        for ax, s_sl, d_sl in combo:
            si[ax], di[ax] = s_sl, d_sl
        np.copyto(out[tuple(di)], y[tuple(si)], casting="unsafe")
