"""Interleaved timing of one 16384x16384 float32 image and a 63x63 kernel, mode 'same'.

fftconv's tiled call (``max_memory="512MB"``) against scipy.signal.fftconvolve,
oaconvolve and cv2.filter2D, in one process on the same arrays: a warm-up of
each, then A B C D three times; medians. Needs about 8 GB of RAM.
"""

from __future__ import annotations

import json
import time

import cv2
import numpy as np
import scipy.signal
from _common import gaussian_kernel, test_image

import fftconv


def main(n: int = 16384, ks: int = 63, repeats: int = 3) -> dict:
    img = test_image(n)
    k = gaussian_kernel(ks)
    flipped = np.ascontiguousarray(k[::-1, ::-1])  # filter2D correlates
    calls = {
        "fftconv max_memory=512MB": lambda: fftconv.convolve(img, k, "same", max_memory="512MB"),
        "scipy.signal.fftconvolve": lambda: scipy.signal.fftconvolve(img, k, "same"),
        "scipy.signal.oaconvolve": lambda: scipy.signal.oaconvolve(img, k, "same"),
        "cv2.filter2D": lambda: cv2.filter2D(img, -1, flipped, borderType=cv2.BORDER_CONSTANT),
    }
    for f in calls.values():
        f()
    times: dict = {name: [] for name in calls}
    for _ in range(repeats):
        for name, f in calls.items():
            t0 = time.perf_counter()
            out = f()
            times[name].append(time.perf_counter() - t0)
            del out
    for name, v in times.items():
        print(f"{name:28s} median {np.median(v):6.2f} s  runs {[round(x, 2) for x in v]}")
    print(json.dumps(times))
    return times


if __name__ == "__main__":
    main()
