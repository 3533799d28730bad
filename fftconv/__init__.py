"""fftconv: fast, exact, memory-bounded convolution and correlation of large images."""

from __future__ import annotations

import importlib
import os as _os
import sys as _sys

_argv = list(getattr(_sys, "orig_argv", None) or getattr(_sys, "argv", None) or [""])
_script = (getattr(_sys, "argv", None) or [""])[0]
_command = _os.path.basename(_script).startswith("fftconv") or any(
    a == "-m" and b == "fftconv" for a, b in zip(_argv, _argv[1:])
)
if _command:
    # The command does no matrix algebra on images (its one BLAS call is the SVD of
    # a kernel), and OpenBLAS's thread pool, started when numpy loads, spins on the
    # cores the streaming engine needs (0.1-0.3 CPU s of a 2-second run; 2 cores).
    _os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from . import kernels  # noqa: E402

# The public names are bound on first use (PEP 562). What a call needs (`api`: the
# planner, the executors, scipy.fft) is imported at the end of this module, so that
# the first call in a process does not pay for it (docs/first_call.md); the rest
# (tiles, jobs, template matching) on use. fftconv.signal, fftconv.ndimage (SciPy
# drop-ins) and fftconv.io are submodules, imported on use: `import fftconv` does not
# load scipy.signal or Pillow; pyFFTW is imported on the first FFT and numba (when no
# ahead-of-time kernels were built) on the first compiled call.
_LAZY = {
    "BOUNDARIES": "._problem",
    "BOUNDARY_ALIASES": "._problem",
    "Convolver": "._convolver",
    "convolve": ".api",
    "correlate": ".api",
    "Plan": ".planner",
    "calibrate": ".planner",
    "plan": ".planner",
    "convolve_tiled": ".tiles",
    "convolve_file": ".jobs",
    "find_peaks": ".template",
    "match_template": ".template",
    "precompile": "._precompile",
}

__version__ = "0.1.0"


def set_fftw_effort(effort: str) -> str:
    """Set how hard FFTW plans new transforms for the rest of the process.

    Parameters
    ----------
    effort : {'estimate', 'auto', 'measure', 'patient'}
        'estimate' (the default) plans in milliseconds and never measures, so a
        process always computes with the same plans; 'auto' also re-plans small,
        often used transforms with FFTW_MEASURE on a background thread; 'measure'
        and 'patient' time candidate algorithms for every new transform (seconds
        for large ones). Measured plans are saved as wisdom in the cache directory,
        so later processes start with them. The environment variable
        ``FFTCONV_FFTW_EFFORT`` sets the same at start-up.

    Returns
    -------
    str
        The previous setting.

    Examples
    --------
    >>> import fftconv
    >>> old = fftconv.set_fftw_effort("measure")
    >>> fftconv.set_fftw_effort(old)
    'measure'
    """
    from . import _fftw

    return _fftw.set_effort(effort)


__all__ = [
    "BOUNDARIES",
    "BOUNDARY_ALIASES",
    "Convolver",
    "Plan",
    "__version__",
    "calibrate",
    "convolve",
    "convolve_file",
    "convolve_tiled",
    "correlate",
    "find_peaks",
    "kernels",
    "match_template",
    "plan",
    "precompile",
    "set_fftw_effort",
]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fftconv' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))


# Imported last: the modules of a call (planner, executors, scipy.fft), so that the
# first call costs a warm one; not for the `fftconv` command, whose streaming path
# needs none of them (0.3 s of its start-up, docs/first_call.md).
if not _command:
    from . import api as _api  # noqa: E402, F401
del _argv, _script, _command
