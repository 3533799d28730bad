"""Template matching and NaN-aware convolution: fftconv against scikit-image, OpenCV, astropy.

Usage::

    python bench/template_table.py                      # both tables, 4096^2 and 2048^2
    python bench/template_table.py --part template --size 2048 --repeat 3

Table 1: `fftconv.match_template` against `skimage.feature.match_template`
and ``cv2.matchTemplate(..., cv2.TM_CCOEFF_NORMED)`` on one random float32
image with templates cut from it (plus noise), 16^2, 64^2 and 256^2.

Table 2: ``fftconv.convolve(..., nan_policy='interpolate')`` against astropy's
``convolve`` and ``convolve_fft`` (``nan_treatment='interpolate'``,
``normalize_kernel=False``, ``boundary='fill'``: the same definition) on a
float32 image with 10% NaN and Gaussian kernels 11^2 and 63^2.

In each row the contenders run interleaved (A B C A B C ...) after one warm-up
each and the median is reported; a contender slower than ``--slow`` seconds on
its warm-up is timed once (its warm-up is the measurement; the row says so).
fftconv's first call in this process (numba's cached machine code loaded,
FFTW plans made) is reported apart. OpenCV gets the same thread count as
fftconv; scikit-image and astropy's convolve run on one core (they have no
threads option; astropy's convolve_fft uses numpy's FFT). Every result is
checked against fftconv's before it is timed (largest difference shown).
"""

from __future__ import annotations

import argparse
import statistics
import time
from functools import partial

import numpy as np
from _common import gaussian_kernel, machine, test_image

import fftconv
from fftconv._problem import default_threads


def _time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def interleaved(contenders: dict, repeat: int, slow: float, warm=None) -> dict:
    """Median seconds per contender: one warm-up each (or the seconds `warm` gives
    for the ones already run), then `repeat` rounds A B C."""
    warm = dict(warm or {})
    for name, fn in contenders.items():
        if name not in warm:
            warm[name] = _time(fn)
    times = {name: [] for name in contenders}
    for _ in range(repeat):
        for name, fn in contenders.items():
            if warm[name] <= slow:
                times[name].append(_time(fn))
    return {
        name: (statistics.median(t) if t else warm[name], bool(t)) for name, t in times.items()
    } | {"_warm": warm}


def _fmt(seconds: float, repeated: bool) -> str:
    return f"{seconds:.3f}" + ("" if repeated else "*")


def template_table(size: int, repeat: int, slow: float, threads: int) -> None:
    import cv2
    from skimage.feature import match_template as sk_match

    cv2.setNumThreads(threads)
    img = test_image(size)
    rng = np.random.default_rng(1)
    print(f"\n## match_template, {size}x{size} float32 ({machine()}, {threads} threads)\n")
    print(
        "| template | fftconv first call s | fftconv s | scikit-image s | OpenCV s "
        "| skimage / fftconv | OpenCV / fftconv | max diff vs skimage, OpenCV |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    first = True
    for m in (16, 64, 256):
        t = img[size // 3 : size // 3 + m, size // 5 : size // 5 + m].copy()
        t += 0.1 * rng.random(t.shape, dtype=np.float32)
        cold = _time(partial(fftconv.match_template, img, t)) if first else None
        first = False
        ours = fftconv.match_template(img, t)
        d_sk = float(np.abs(ours - sk_match(img, t)).max())
        d_cv = float(np.abs(ours - cv2.matchTemplate(img, t, cv2.TM_CCOEFF_NORMED)).max())
        res = interleaved(
            {
                "fftconv": partial(fftconv.match_template, img, t),
                "skimage": partial(sk_match, img, t),
                "opencv": partial(cv2.matchTemplate, img, t, cv2.TM_CCOEFF_NORMED),
            },
            repeat,
            slow,
        )
        f, s, c = (res[k][0] for k in ("fftconv", "skimage", "opencv"))
        print(
            f"| {m}x{m} | {'' if cold is None else f'{cold:.3f}'} | {_fmt(*res['fftconv'])} "
            f"| {_fmt(*res['skimage'])} | {_fmt(*res['opencv'])} | {s / f:.1f} | {c / f:.2f} "
            f"| {d_sk:.1e}, {d_cv:.1e} |",
            flush=True,
        )


def nan_table(size: int, repeat: int, slow: float, threads: int) -> None:
    from astropy.convolution import convolve, convolve_fft

    img = test_image(size)
    rng = np.random.default_rng(2)
    img[rng.random(img.shape) < 0.1] = np.nan
    print(
        f"\n## nan_policy='interpolate', {size}x{size} float32, 10% NaN ({machine()}, "
        f"{threads} threads)\n"
    )
    print(
        "| kernel | fftconv s | astropy convolve s | astropy convolve_fft s "
        "| faster astropy / fftconv | dtypes (fftconv, astropy) | max diff vs convolve, "
        "convolve_fft |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for m in (11, 63):
        k = gaussian_kernel(m)

        def ours(k=k):
            return fftconv.convolve(
                img, k, "same", "fill", nan_policy="interpolate", threads=threads
            )

        def direct(k=k):
            return convolve(
                img, k, boundary="fill", nan_treatment="interpolate", normalize_kernel=False
            )

        def fft(k=k):
            return convolve_fft(
                img,
                k,
                boundary="fill",
                nan_treatment="interpolate",
                normalize_kernel=False,
                allow_huge=True,
            )

        a = ours()
        out, warm = {}, {}
        for name, fn in (("convolve_fft", fft), ("convolve", direct)):
            t0 = time.perf_counter()
            out[name] = fn()
            warm[name] = time.perf_counter() - t0
        diffs = []
        for name in ("convolve", "convolve_fft"):
            b = out[name]
            fin = np.isfinite(a) & np.isfinite(b)
            diffs.append(f"{float(np.abs(a[fin] - b[fin]).max()):.1e}")
        b_dtype = out["convolve_fft"].dtype
        del out
        contenders = {"fftconv": ours, "convolve_fft": fft, "convolve": direct}
        res = interleaved(contenders, repeat, slow, warm)
        f = res["fftconv"][0]
        best = min(res["convolve"][0], res["convolve_fft"][0])
        print(
            f"| {m}x{m} | {_fmt(*res['fftconv'])} | {_fmt(*res['convolve'])} "
            f"| {_fmt(*res['convolve_fft'])} | {best / f:.1f} | {a.dtype}, {b_dtype} "
            f"| {', '.join(diffs)} |",
            flush=True,
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=["template", "nan", "both"], default="both")
    ap.add_argument(
        "--size",
        type=int,
        default=None,
        help="image side (default 4096 for template, 2048 for nan)",
    )
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--slow", type=float, default=8.0)
    ap.add_argument("--threads", type=int, default=default_threads())
    args = ap.parse_args()
    if args.part in ("template", "both"):
        template_table(args.size or 4096, args.repeat, args.slow, args.threads)
    if args.part in ("nan", "both"):
        nan_table(args.size or 2048, args.repeat, args.slow, args.threads)
    print("\n(* timed once: slower than --slow on its warm-up)")


if __name__ == "__main__":
    main()
