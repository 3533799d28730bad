"""Collection rules for the whole repository (the doctests of `fftconv` included)."""

from __future__ import annotations

import importlib.util

import pytest

collect_ignore: list[str] = []
HAVE_NUMBA = importlib.util.find_spec("numba") is not None

#: Doctests whose output shows the compiled engine's choices.
_NUMBA_DOCTESTS = {
    "fftconv.signal.choose_conv_method",
    "fftconv.planner.costs.separable_cost",
    "fftconv.methods.interleaved.layout",
}

if not HAVE_NUMBA:
    # The compiled kernels import numba at module level; fftconv never imports them
    # without it (`fftconv.methods.rows.kernels` returns None), and neither do the doctests.
    collect_ignore += [
        "fftconv/methods/_direct_kernels.py",
        "fftconv/methods/_direct_small.py",
        "fftconv/methods/_direct_taps.py",
        "fftconv/_template_kernels.py",
        "fftconv/methods/_u8_kernels.py",
        "fftconv/methods/_u8_sweeps.py",
        "fftconv/methods/_interleaved_kernels.py",
        "fftconv/methods/_planar_kernels.py",
        "fftconv/_compile_notice.py",
    ]

if importlib.util.find_spec("dask") is None:
    # fftconv.dask needs the dask extra; tests/test_dask.py skips itself likewise.
    collect_ignore.append("fftconv/dask.py")


def pytest_collection_modifyitems(config, items):
    if HAVE_NUMBA:
        return
    skip = pytest.mark.skip(reason="shows the compiled engine's choices; numba is not installed")
    for item in items:
        if item.name in _NUMBA_DOCTESTS:
            item.add_marker(skip)
