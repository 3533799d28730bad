"""`Machine`: every rate the cost model uses, in one table.

The shipped defaults were measured on a quiet 2-core AVX-512 AMD EPYC VM (the
machine the project is developed and benchmarked on), at the sizes where the
methods compete: the FFT, streaming, block and numpy rates by `calibrate`; the
compiled direct rates from 2048x2048 and 4096x4096 float32 images with 5x5
to 31x31 kernels (`calibrate` measures them on a 1024x1024 image, where per-row
overhead makes them look 10-20% slower), and the separable rates from 15- to
63-tap Gaussians. `fftconv.calibrate` measures them all on this machine.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

#: Units of each constant, for printing.
UNITS = {
    "fft32": "s per weighted N log2 N unit, float32 real, in cache",
    "fft64": "s per weighted N log2 N unit, float64 real, in cache",
    "fft_slope": "extra FFT cost per doubling of the buffer beyond `cache`",
    "cache": "bytes of buffer an FFT runs at in-cache speed (shipped, not measured)",
    "parallel": "FFTW thread efficiency: speedup 1 + parallel * (threads - 1)",
    "mem": "s per byte of a streaming pass (copy, product, crop)",
    "madd32": "s per multiply-add, numpy direct summation, float32",
    "madd64": "s per multiply-add, numpy direct summation, float64 (complex: two)",
    "tap": "s per kernel tap, numpy direct summation (Python loop)",
    "block": "s per overlap-add block (slicing, lending)",
    "call": "s per whole-array FFT call (plan lending, kernel buffer; shipped, not measured)",
    "direct_float32": "multiply-adds per s per thread, compiled direct, float32",
    "direct_float64": "multiply-adds per s per thread, compiled direct, float64",
    "direct_complex64": "multiply-adds per s per thread, compiled direct, complex64",
    "direct_complex128": "multiply-adds per s per thread, compiled direct, complex128",
    "separable_float32": "multiply-adds per s per thread, compiled 1-D passes, float32",
    "separable_float64": "multiply-adds per s per thread, compiled 1-D passes, float64",
    "separable_complex64": "compiled 1-D passes, complex64 (unused: complex sums directly)",
    "separable_complex128": "compiled 1-D passes, complex128 (unused: complex sums directly)",
    "copy_rate": "bytes per s of memory traffic, all threads (compiled methods' floor)",
    "direct_call": "s per compiled direct or separable call (shipped, not measured)",
    "convert": "s per output sample of compiled direct summation into an integer `out` "
    "(rows converted into float bands, rounded out; shipped, not measured)",
    "round_store": "s per output sample per thread of the compiled 3x3, 5x5 and 7x7 drivers "
    "and the separable passes that read a photo as it is and round into an integer `out` as "
    "they store, beyond their float work",
    "separable_sample": "s per output sample per thread per pair of compiled 1-D passes, "
    "beyond their multiply-adds (the column pass's row stored and read back)",
    "interleaved_sample": "s per output sample per thread per pair of compiled 1-D passes "
    "of a channels-last photo (2 to 4 channels sharing one kernel), beyond their "
    "multiply-adds",
    "strips_sample": "s per output sample per thread of the strip-mined rank-one passes of "
    "a photo into an integer `out`, beyond their multiply-adds (converted, filtered through "
    "a ring of rows, rounded as stored)",
}


@dataclass(frozen=True)
class Machine:
    """The cost model's constants: seconds per unit of work (single-threaded) and the
    compiled engine's rates (per second); `UNITS` says what each one counts.

    Examples
    --------
    >>> from fftconv.planner import Machine
    >>> Machine().rate("direct", "float32")
    15000000000.0
    >>> print(Machine().describe().splitlines()[0])
    fft32                    2.4e-10  s per weighted N log2 N unit, float32 real, in cache
    """

    fft32: float = 2.4e-10
    fft64: float = 2.7e-10
    fft_slope: float = 0.2
    cache: float = 1.0e6
    parallel: float = 0.5
    mem: float = 8.5e-11
    madd32: float = 8.0e-10
    madd64: float = 9.0e-10
    tap: float = 2.5e-6
    block: float = 3.5e-5
    call: float = 1.0e-4
    direct_float32: float = 1.5e10
    direct_float64: float = 1.0e10
    direct_complex64: float = 3e9
    direct_complex128: float = 2e9
    separable_float32: float = 1e10
    separable_float64: float = 7e9
    separable_complex64: float = 4e9
    separable_complex128: float = 2e9
    copy_rate: float = 1.0e10
    direct_call: float = 2e-5
    convert: float = 1.5e-9
    round_store: float = 4e-10
    separable_sample: float = 4e-10
    interleaved_sample: float = 6e-10
    strips_sample: float = 3e-10
    calibrated: bool = False

    def rate(self, engine: str, dtype) -> float:
        """Multiply-adds per second per thread of the compiled `engine` ('direct' or
        'separable'; complex problems never take the separable passes) for `dtype`."""
        return getattr(self, f"{engine}_{np.dtype(dtype).name}")

    def describe(self) -> str:
        """One line per constant: name, value, unit."""
        return "\n".join(
            f"{f.name:22s} {getattr(self, f.name):>9.3g}  {UNITS[f.name]}"
            for f in fields(self)
            if f.name != "calibrated"
        )


def constant_names() -> tuple[str, ...]:
    """Every constant's name (all fields but `calibrated`)."""
    return tuple(f.name for f in fields(Machine) if f.name != "calibrated")
