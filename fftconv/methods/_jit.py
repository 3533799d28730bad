"""The compiled kernels' numba settings, defined once (imported by `_direct_kernels` and
the files `tools/gen_direct_small.py` generates; this module itself imports no numba).

``nogil``: the executors run row bands on threads of their own pool (no numba
threading layer, so calls from several Python threads, or from a forked child,
are safe). ``cache``: the machine code goes to numba's on-disk cache, so
compiling is paid once per machine. Only the floating-point contraction flag
is set (fused multiply-add): NaN and infinity propagate exactly as the written
sums say.
"""

from __future__ import annotations

#: Options of every compiled kernel.
JIT = {"nogil": True, "cache": True}

#: numba ``fastmath`` flags of the arithmetic kernels.
FASTMATH = {"contract"}
