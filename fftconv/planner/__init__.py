"""The planner: which method, at which transform or block size, from shapes alone.

`plan` prices every applicable method with a cost model and returns a `Plan`
naming the cheapest, with every candidate it weighed (``print(plan)`` shows the
table). Planning is pure and cheap: no FFTW planning and no pixel work, so
``method='auto'`` costs microseconds per call.

The cost model
--------------
* An FFT of lengths ``L`` (``N = prod(L)`` samples) costs
  ``c_fft * N * sum_axes(flops(L_i)) * slow`` seconds, where ``flops(L)`` is
  ``log2(L)`` with each prime factor ``p`` of ``L`` weighted by how fast
  FFTW's codelets for it are: 1 for 2, about 1.2 for 3, 1.25 for 5, 2 for 7,
  and 4 for anything else (a large prime length such as 4099 goes through
  Rader's algorithm), and ``slow = 1 + slope * log2(bytes / cache)`` for
  buffers larger than the cache (measured: a 4096x4096 transform costs about
  3 times more per unit than a 256x256 one). Complex data cost twice real
  data. ``threads`` FFTW threads divide the time by ``1 + eff * (threads - 1)``.
* Streaming passes (padding, the spectrum product, cropping) cost ``c_mem``
  seconds per byte.
* Direct summation, compiled: out x taps multiply-adds at the engine's rate
  per thread for the dtype, never faster than reading the image and writing
  the result at ``copy_rate``; the separable passes likewise with
  ``rank * (kh + kw)`` multiply-adds per output. numpy's engine (three or more
  axes, or no numba) costs ``c_madd`` seconds per multiply-add plus ``c_tap``
  per kernel tap, rising towards five streaming passes over the result per
  tap for results much larger than the cache.
* Overlap-add prices its blocks: blocks x (two block FFTs + the block's
  passes + ``c_block``), spread over the cores, plus one kernel transform. The
  block shape is chosen by trying FFTW-fast block lengths on every axis.
* 'fft' also weighs the cheapest exact transform for the mode: with
  ``boundary='wrap'`` a circular convolution at the image's own size (no
  padding at all) when that size is fast; 'valid' never transforms more than
  the image.

The constants are measured on the machine by `calibrate` (about 10 s) and kept
in the cache directory (``$FFTCONV_CACHE_DIR`` or the user cache directory);
machines never calibrated use the shipped defaults below, measured on a
2-core x86-64 development machine.

Adding a method is one function: decorate ``f(problem, machine, threads,
kernel) -> Candidate | list[Candidate] | None`` with ``@candidate('name')``.

Layout: `machine` (the `Machine` table of every constant), `costs` (the
cost functions), `profile` (the saved profile and `calibrate`), `_plan`
(`plan`, `Plan` and the registry of candidates).
"""

from __future__ import annotations

from ._plan import CANDIDATES, Plan, candidate, plan, plan_problem
from .costs import Candidate, direct_cost, fft_flops, fft_seconds, separable_cost
from .machine import Machine
from .profile import calibrate, machine, profile_path, reset_machine

__all__ = [
    "CANDIDATES",
    "Candidate",
    "Machine",
    "Plan",
    "calibrate",
    "candidate",
    "direct_cost",
    "fft_flops",
    "fft_seconds",
    "machine",
    "plan",
    "plan_problem",
    "profile_path",
    "reset_machine",
    "separable_cost",
]
