"""fftconv: fast, exact, memory-bounded convolution and correlation of large images."""

from __future__ import annotations

from ._convolver import Convolver
from ._problem import BOUNDARIES, BOUNDARY_ALIASES
from .api import convolve, correlate
from .planner import Plan, calibrate, plan

__version__ = "0.1.0"

__all__ = [
    "BOUNDARIES",
    "BOUNDARY_ALIASES",
    "Convolver",
    "Plan",
    "__version__",
    "calibrate",
    "convolve",
    "correlate",
    "plan",
]
