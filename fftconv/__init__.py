"""fftconv: fast, exact, memory-bounded convolution and correlation of large images."""

from __future__ import annotations

from ._problem import BOUNDARIES, BOUNDARY_ALIASES
from .api import convolve, correlate

__version__ = "0.1.0"

__all__ = ["convolve", "correlate", "BOUNDARIES", "BOUNDARY_ALIASES", "__version__"]
