"""fftconv: fast, exact, memory-bounded convolution and correlation of large images."""

from __future__ import annotations

from . import _fftw, kernels
from ._convolver import Convolver
from ._precompile import precompile
from ._problem import BOUNDARIES, BOUNDARY_ALIASES
from .api import convolve, correlate
from .jobs import convolve_file
from .planner import Plan, calibrate, plan
from .template import find_peaks, match_template
from .tiles import convolve_tiled

# fftconv.signal, fftconv.ndimage (SciPy drop-ins) and fftconv.io are submodules,
# imported on use: `import fftconv` does not load scipy.signal or Pillow.

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
