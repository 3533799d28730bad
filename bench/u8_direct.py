"""uint8 photos with small random kernels into a uint8 ``out=``: the rounding drivers
against the float bands they replace and OpenCV, interleaved in one process.

    python bench/u8_direct.py --size 1500x2000 --ksizes 3 5 --repeat 15

Cells (A B C A B C ..., median of ``--repeat`` runs after a warm-up, 3 channels,
boundary symmetric, mode same, default threads): ``fftconv`` as it runs
(`rows_KxK_sC_r`: the photo read as it is, each sum rounded and clipped as it
is stored), ``float bands`` the path before it (rows converted into float32
bands, summed, the band rounded into ``out``; `methods.interleaved._rounded_run`
turned off), and ``cv2.filter2D`` (uint8 in and out, the kernel flipped:
filter2D correlates).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
from _common import machine

import fftconv
from fftconv.methods import interleaved


def cell(x, k, repeat: int) -> dict:
    """Median milliseconds of the three paths on `x` and `k`, interleaved."""
    import cv2

    out = {name: np.empty_like(x) for name in ("fused", "bands", "cv2")}
    real = interleaved._rounded_run

    def fused():
        fftconv.convolve(x, k, "same", "symmetric", channel_axis=-1, out=out["fused"])

    def bands():
        interleaved._rounded_run = lambda *a: False
        try:
            fftconv.convolve(x, k, "same", "symmetric", channel_axis=-1, out=out["bands"])
        finally:
            interleaved._rounded_run = real

    def ocv():
        flipped = k[::-1, ::-1].copy()
        cv2.filter2D(x, -1, flipped, dst=out["cv2"], borderType=cv2.BORDER_REFLECT)

    cells = {"fused": fused, "bands": bands, "cv2": ocv}
    times = {name: [] for name in cells}
    for fn in cells.values():  # warm-up
        fn()
    for _ in range(repeat):
        for name, fn in cells.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    assert np.array_equal(out["fused"], out["bands"])
    return {name: statistics.median(v) * 1e3 for name, v in times.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="1500x2000")
    ap.add_argument("--ksizes", nargs="+", type=int, default=[3, 5])
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args(argv)

    h, w = map(int, args.size.split("x"))
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (h, w, 3), endpoint=True).astype(np.uint8)
    print(f"# {machine()}, load {os.getloadavg()[0]:.1f}, {h}x{w}x3 uint8, repeat {args.repeat}")
    print(
        "\n| kernel | fftconv ms | float bands ms | cv2.filter2D ms | fftconv / bands | "
        "fftconv / filter2D |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for n in args.ksizes:
        k = rng.random((n, n)).astype(np.float32)
        k /= k.sum()
        med = cell(x, k, args.repeat)
        print(
            f"| random {n}x{n} | {med['fused']:.1f} | {med['bands']:.1f} | {med['cv2']:.1f} | "
            f"{med['fused'] / med['bands']:.2f} | {med['fused'] / med['cv2']:.2f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
