"""Side-by-side comparison of a drop-in with the SciPy function it replaces."""

from __future__ import annotations

import warnings

import numpy as np


def tolerance(dtype: np.dtype) -> float:
    """Relative tolerance (times max|reference|) the project states per precision."""
    dtype = np.dtype(dtype)
    if dtype.kind in "biuO":
        return 0.0
    if dtype.kind in "fc" and np.finfo(dtype).bits <= 16:
        return 2e-3
    if np.finfo(dtype).resolution >= 1e-7:  # float32, complex64
        return 1e-5
    return 1e-10


def outcome(func, *args, **kwargs):
    """The result of ``func(*args, **kwargs)``, or the exception class it raised."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return func(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - the type is what is compared
            return type(exc)


def assert_same(ours, theirs, *args, **kwargs):
    """fftconv's `ours` and SciPy's `theirs` agree on these arguments: the same
    exception type, or results of the same type, dtype and shape whose values are
    equal (integers, bool) or within the stated tolerance (floats)."""
    args_before = [np.array(a, copy=True) if isinstance(a, np.ndarray) else a for a in args]
    got = outcome(ours, *args, **kwargs)
    for before, a in zip(args_before, args):
        if isinstance(a, np.ndarray):
            np.testing.assert_array_equal(a, before, err_msg="an input was modified")
    want = outcome(theirs, *args, **kwargs)
    if isinstance(want, type) or isinstance(got, type):
        assert got is want, f"fftconv gave {got!r}, SciPy {want!r}"
        return got
    got_a, want_a = np.asarray(got), np.asarray(want)
    assert type(got) is type(want) or (np.isscalar(got) and np.isscalar(want)), (
        type(got),
        type(want),
    )
    assert got_a.dtype == want_a.dtype, f"dtype: fftconv {got_a.dtype}, SciPy {want_a.dtype}"
    assert got_a.shape == want_a.shape, f"shape: fftconv {got_a.shape}, SciPy {want_a.shape}"
    if want_a.size == 0:
        return got
    if want_a.dtype.kind in "biuO":
        np.testing.assert_array_equal(got_a, want_a)
        return got
    scale = float(np.max(np.abs(want_a[np.isfinite(want_a)]), initial=0.0))
    # SciPy computes no more precisely than its least precise float input.
    rel = max(
        [tolerance(want_a.dtype)]
        + [tolerance(a.dtype) for a in args if isinstance(a, np.ndarray) and a.dtype.kind in "fc"]
    )
    tol = rel * max(scale, np.finfo(np.float64).tiny)
    np.testing.assert_allclose(
        got_a.astype(np.complex128 if want_a.dtype.kind == "c" else np.float64),
        want_a.astype(np.complex128 if want_a.dtype.kind == "c" else np.float64),
        rtol=0,
        atol=tol,
    )
    return got
