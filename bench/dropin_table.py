"""Speed-ups of fftconv's SciPy drop-ins over SciPy on typical calls.

Each row calls SciPy's function and fftconv's drop-in on the same arrays, in
one process, interleaved (SciPy, fftconv, SciPy, fftconv, ...) after one
warm-up call each; the table shows the medians and their ratio, and the
drop-in's first call (the one that plans its FFTs) separately.

    python bench/dropin_table.py            # markdown table on stdout
    python bench/dropin_table.py --repeat 9 --quick

SciPy's functions run single-threaded (scipy.fft's default); fftconv uses the
cores this process may run on, as it does by default. Quote the machine with
the numbers: they move with core count and with other load.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np
import scipy
import scipy.ndimage
import scipy.signal
from _common import machine

import fftconv
from fftconv import ndimage as f_ndimage
from fftconv import signal as f_signal


def _gauss(n: int) -> np.ndarray:
    x = np.arange(n) - (n - 1) / 2
    g = np.exp(-0.5 * (x / (n / 6)) ** 2)
    return np.outer(g, g) / g.sum() ** 2


def cases(quick: bool):
    rng = np.random.default_rng(0)
    s = 512 if quick else 1024
    img = rng.random((s, s))
    img32 = img.astype(np.float32)
    img_u8 = (img * 255).astype(np.uint8)
    sig = rng.standard_normal(200_000 if quick else 1_000_000)
    half = img[: s // 2, : s // 2]
    k3, k5, k15, k31 = rng.random((3, 3)), rng.random((5, 5)), _gauss(15), _gauss(31)
    return [
        ("signal.fftconvolve", f"{s}x{s} f8, 31x31, same", "fftconvolve", (img, k31, "same"), {}),
        (
            "signal.fftconvolve",
            f"{s}x{s} f4, 15x15, same",
            "fftconvolve",
            (img32, k15.astype(np.float32), "same"),
            {},
        ),
        ("signal.oaconvolve", f"{s}x{s} f8, 15x15, full", "oaconvolve", (img, k15), {}),
        ("signal.convolve", f"{s}x{s} f8, 5x5, same", "convolve", (img, k5, "same"), {}),
        ("signal.convolve", f"{s}x{s} f8, 31x31, same", "convolve", (img, k31, "same"), {}),
        (
            "signal.correlate",
            f"1-D {sig.size} f8, 257 taps, full",
            "correlate",
            (sig, sig[:257]),
            {},
        ),
        (
            "signal.convolve2d",
            f"{s // 2}x{s // 2} f8, 5x5, same, symm",
            "convolve2d",
            (half, k5, "same", "symm"),
            {},
        ),
        (
            "signal.correlate2d",
            f"{s // 2}x{s // 2} f8, 15x15, same",
            "correlate2d",
            (half, k15, "same"),
            {},
        ),
        ("ndimage.convolve", f"{s}x{s} f8, 3x3, reflect", "nd:convolve", (img, k3), {}),
        ("ndimage.convolve", f"{s}x{s} f4, 15x15, reflect", "nd:convolve", (img32, k15), {}),
        (
            "ndimage.correlate",
            f"{s}x{s} u8, 31x31, nearest",
            "nd:correlate",
            (img_u8, k31),
            {"mode": "nearest"},
        ),
    ]


def resolve(name: str):
    if name.startswith("nd:"):
        n = name[3:]
        return getattr(scipy.ndimage, n), getattr(f_ndimage, n)
    return getattr(scipy.signal, name), getattr(f_signal, name)


def timed(func, args, kwargs) -> float:
    t0 = time.perf_counter()
    func(*args, **kwargs)
    return time.perf_counter() - t0


def measure(name, args, kwargs, repeat: int):
    theirs, ours = resolve(name)
    first = timed(ours, args, kwargs)
    timed(theirs, args, kwargs)  # warm-up
    a, b = [], []
    for _ in range(repeat):
        a.append(timed(theirs, args, kwargs))
        b.append(timed(ours, args, kwargs))
    ref = theirs(*args, **kwargs)
    got = ours(*args, **kwargs)
    scale = float(np.max(np.abs(ref))) or 1.0
    err = float(np.max(np.abs(got.astype(np.float64) - ref.astype(np.float64)))) / scale
    return statistics.median(a), statistics.median(b), first, err


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=7, help="interleaved timed calls per row")
    p.add_argument("--quick", action="store_true", help="smaller arrays (CI smoke run)")
    opts = p.parse_args(argv)
    print(
        f"machine: {machine()}; "
        f"python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}, "
        f"fftconv {fftconv.__version__}; median of {opts.repeat} interleaved calls\n"
    )
    print(
        "| SciPy call | inputs | SciPy (ms) | fftconv (ms) | speed-up | fftconv first call (ms) "
        "| max rel. diff |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for label, desc, name, args, kwargs in cases(opts.quick):
        t_s, t_f, first, err = measure(name, args, kwargs, opts.repeat)
        print(
            f"| `{label}` | {desc} | {t_s * 1e3:.1f} | {t_f * 1e3:.1f} | {t_s / t_f:.2f}x "
            f"| {first * 1e3:.1f} | {err:.1e} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
