"""Collection rules for the whole repository (the doctests of `fftconv` included)."""

from __future__ import annotations

import importlib.util

collect_ignore: list[str] = []

if importlib.util.find_spec("numba") is None:
    # The compiled kernels import numba at module level; fftconv never imports them
    # without it (`fftconv.methods.rows.kernels` returns None), and neither do the doctests.
    collect_ignore += [
        "fftconv/methods/_direct_kernels.py",
        "fftconv/methods/_direct_small.py",
        "fftconv/methods/_direct_taps.py",
    ]
