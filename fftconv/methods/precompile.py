"""Compile the row engine's kernels ahead of time (numba's on-disk cache)."""

from __future__ import annotations

import numpy as np

from .._problem import make_problem
from .direct import convolve_direct
from .rows import kernels
from .separable import convolve_separable


def precompile(dtypes=("float32", "float64")) -> bool:
    """Compile every compiled kernel for `dtypes` into numba's on-disk cache.

    Complex problems run on the float32 / float64 kernels.  Compiling takes a
    few seconds per dtype, once per machine; afterwards a fresh process loads
    the machine code in well under a second.  Returns False when numba is not
    installed.

    Examples
    --------
    >>> precompile(["float64"]) in (True, False)
    True
    """
    if kernels() is None:
        return False
    rng = np.random.default_rng(0)
    for name in dtypes:
        img = rng.random((12, 12)).astype(name)
        for kshape in ((3, 3), (5, 5), (4, 2)):
            p, a, k = make_problem(img, np.ones(kshape, name), "same", "fill", 0, None, None, False)
            out = np.empty(p.out_shape, p.dtype)
            convolve_direct(p, a, k, out)
            convolve_separable(p, a, k, out)
    return True
