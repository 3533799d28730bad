"""The planner's predicted time beside the measured time of every method.

For each case, every method that applies is planned with ``method=...`` and
timed on the same arrays (one warm-up call, then the median of ``--repeat``
calls; methods interleaved), so a wrong cost constant shows up as a ratio far
from 1 and a wrong choice as a chosen method that is not the fastest::

    python bench/predicted.py [--repeat 5] [--threads 2]

This is how the shipped defaults in ``fftconv/planner/machine.py`` were
checked; run it after ``fftconv calibrate`` to check a calibrated profile.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from _common import gaussian_kernel, machine

import fftconv

CASES = [  # (image shape, kernel side, 'gaussian' or 'random')
    ((2048, 2048), 63, "gaussian"),
    ((2048, 2048), 127, "gaussian"),
    ((4096, 4096), 15, "gaussian"),
    ((4096, 4096), 31, "gaussian"),
    ((4096, 4096), 31, "random"),
    ((4096, 4096), 63, "gaussian"),
    ((4096, 4096), 255, "gaussian"),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    print(f"# predicted / measured ms, float32, mode 'same' ({machine()})")
    print("| image | kernel | chosen | method: predicted / measured ms (ratio) |")
    print("| --- | --- | --- | --- |")
    for shape, m, kind in CASES:
        x = rng.standard_normal(shape).astype(np.float32)
        k = gaussian_kernel(m) if kind == "gaussian" else rng.standard_normal((m, m)).astype("f4")
        chosen = fftconv.plan(shape, k.shape, "float32", "same", kernel=k, threads=args.threads)
        methods = ["separable"] if kind == "gaussian" else []
        methods += ["fft", "oa"] + (["direct"] if m <= 31 else [])
        plans = {
            meth: fftconv.plan(
                shape, k.shape, "float32", "same", kernel=k, method=meth, threads=args.threads
            )
            for meth in methods
        }
        times: dict[str, list[float]] = {meth: [] for meth in methods}
        for meth in methods:  # warm-up: FFTW plans, compiled kernels
            fftconv.convolve(x, k, "same", method=meth, threads=args.threads)
        for _ in range(args.repeat):
            for meth in methods:
                t0 = time.perf_counter()
                fftconv.convolve(x, k, "same", method=meth, threads=args.threads)
                times[meth].append(time.perf_counter() - t0)
        cells = []
        for meth in methods:
            pred, meas = plans[meth].seconds * 1e3, statistics.median(times[meth]) * 1e3
            cells.append(f"{meth}: {pred:.0f} / {meas:.0f} ({pred / meas:.2f})")
        print(f"| {shape[0]}x{shape[1]} | {m}x{m} {kind} | {chosen.method} | {'; '.join(cells)} |")


if __name__ == "__main__":
    main()
