"""fftconv: fast, exact, memory-bounded convolution and correlation of large images."""

from __future__ import annotations

from . import kernels
from ._convolver import Convolver
from ._problem import BOUNDARIES, BOUNDARY_ALIASES
from .api import convolve, correlate
from .jobs import convolve_file
from .planner import Plan, calibrate, plan
from .template import find_peaks, match_template
from .tiles import convolve_tiled

# fftconv.signal, fftconv.ndimage (SciPy drop-ins) and fftconv.io are submodules,
# imported on use: `import fftconv` does not load scipy.signal or Pillow.

__version__ = "0.1.0"

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
]
