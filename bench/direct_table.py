"""Small kernels: fftconv against OpenCV, scipy.ndimage and scipy.signal, and the copy floor.

Usage::

    python bench/direct_table.py                  # 4096x4096, float32+float64, all boundaries
    python bench/direct_table.py --size 2048 --repeat 3 --dtypes float32 --boundaries mirror

Every row is one (dtype, boundary, kernel) on the same image, mode 'same'.
The methods run interleaved (A B C ... A B C ...) after one warm-up each and
the median is reported, so a load change on a shared machine hits all of them
alike; the ratios are the numbers to read.  fftconv and OpenCV get the same
thread count (``cv2.setNumThreads``); scipy.ndimage.convolve and
scipy.signal.convolve2d have no threads option and run on one.  OpenCV's
filter2D correlates, so it gets the flipped kernel; sepFilter2D (separable
kernels only) gets the flipped factors.  Peers slower than ``--slow`` seconds
on their warm-up are timed once.  scipy.signal.convolve2d runs only for
kernels up to ``--convolve2d-max`` pixels and for the boundaries it has
(fill, wrap, symm), scipy.ndimage.convolve for kernels up to ``--ndimage-max``
pixels (both take seconds to minutes beyond).  The floor is ``np.copyto`` of the image into a
preallocated array: what moving the data once costs.  fftconv is timed twice:
as the peers are called (a new result array each call, whose pages the OS
must map and zero on first touch) and with ``out=`` a preallocated array,
which is what the floor is compared with.

Every fftconv result is checked against OpenCV's before it is timed; a peer
whose result differs (OpenCV's filter2D with BORDER_WRAP on kernels it runs
by DFT) is left out of that row and the row says so.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np
import scipy.ndimage as ndi
import scipy.signal as sig
from _common import machine

import fftconv
from fftconv._problem import make_problem
from fftconv.planner import plan_problem

try:
    import cv2
except ImportError:  # OpenCV is a benchmark-only extra
    cv2 = None

CV2_BORDER = {
    "fill": "BORDER_CONSTANT",
    "wrap": "BORDER_WRAP",
    "symmetric": "BORDER_REFLECT",
    "mirror": "BORDER_REFLECT_101",
    "nearest": "BORDER_REPLICATE",
}
NDI_MODE = {
    "fill": "constant",
    "wrap": "wrap",
    "symmetric": "reflect",
    "mirror": "mirror",
    "nearest": "nearest",
}
SIG_BOUNDARY = {"fill": "fill", "wrap": "wrap", "symmetric": "symm"}
BOUNDARIES = tuple(CV2_BORDER)


def gauss(n: int, sigma: float) -> np.ndarray:
    x = np.arange(n) - (n - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def kernels(names, rng):
    """name -> (2-D kernel, (col, row) factors or None)."""
    out = {}
    for name in names:
        if name.startswith("gauss"):
            n = int(name[5:])
            g = gauss(n, n / 6)
            out[name] = (np.outer(g, g), (g, g))
        elif name.startswith("box"):
            n = int(name[3:])
            b = np.full(n, 1.0 / n)
            out[name] = (np.outer(b, b), (b, b))
        else:
            n = int(name)
            out[name] = (rng.standard_normal((n, n)) / n, None)
    return out


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def measure(fns: dict, repeat: int, slow: float) -> dict:
    """Median seconds of each callable, run interleaved after one warm-up each."""
    times = {name: [] for name in fns}
    once = set()
    for name, fn in fns.items():
        t = timed(fn)
        if t > slow:
            times[name].append(t)
            once.add(name)
    for _ in range(repeat):
        for name, fn in fns.items():
            if name not in once:
                times[name].append(timed(fn))
    return {name: statistics.median(v) for name, v in times.items()}


def agrees(got, ref, dtype) -> bool:
    """fftconv's result equals the peer's within the project's tolerance."""
    tol = (1e-5 if np.dtype(dtype) == np.float32 else 1e-10) * np.abs(ref).max()
    return bool(np.abs(got.astype(np.float64) - ref).max() <= tol)


def rows(args):
    rng = np.random.default_rng(0)
    if cv2 is not None:
        cv2.setNumThreads(args.threads)
    ks = kernels(args.kernels, rng)
    for dtype in args.dtypes:
        img = rng.random((args.size, args.size)).astype(dtype)
        floor_dst = np.empty_like(img)
        for boundary in args.boundaries:
            for name, (k2, factors) in ks.items():
                k = k2.astype(dtype)
                p, _, kk = make_problem(img, k, "same", boundary, 0, None, None, False)
                chosen = plan_problem(p, args.threads, kernel=kk).method
                fns = {
                    "fftconv": lambda k=k, b=boundary, img=img: fftconv.convolve(
                        img, k, "same", b, threads=args.threads
                    )
                }
                ours = fns["fftconv"]()
                notes = []
                pre = np.empty_like(img)
                fns["fftconv out="] = lambda k=k, b=boundary, o=pre, img=img: fftconv.convolve(
                    img, k, "same", b, out=o, threads=args.threads
                )
                flipped = np.ascontiguousarray(k[::-1, ::-1])
                border = getattr(cv2, CV2_BORDER[boundary]) if cv2 is not None else None
                if cv2 is not None:
                    try:
                        ref = cv2.filter2D(img, -1, flipped, borderType=border)
                        fns["cv2.filter2D"] = lambda f=flipped, b=border, img=img: cv2.filter2D(
                            img, -1, f, borderType=b
                        )
                    except cv2.error:
                        ref = None  # filter2D has no BORDER_WRAP
                    if ref is not None and not agrees(ours, ref, dtype):
                        # OpenCV's DFT path (kernels >= 11x11) does not wrap as
                        # BORDER_WRAP says; a different result is not a peer
                        del fns["cv2.filter2D"]
                        notes.append("filter2D result differs")
                    if factors is not None:
                        col = factors[0][::-1].astype(dtype)
                        row = factors[1][::-1].astype(dtype)
                        try:
                            ref = cv2.sepFilter2D(img, -1, row, col, borderType=border)
                            fns["cv2.sepFilter2D"] = lambda r=row, c=col, b=border, img=img: (
                                cv2.sepFilter2D(img, -1, r, c, borderType=b)
                            )
                            if not agrees(ours, ref, dtype):
                                del fns["cv2.sepFilter2D"]
                                notes.append("sepFilter2D result differs")
                        except cv2.error:
                            pass
                if not args.no_ndimage and k.size <= args.ndimage_max:
                    fns["ndimage"] = lambda k=k, m=NDI_MODE[boundary], img=img: ndi.convolve(
                        img, k, mode=m
                    )
                if boundary in SIG_BOUNDARY and k.size <= args.convolve2d_max:
                    fns["convolve2d"] = lambda k=k, b=SIG_BOUNDARY[boundary], img=img: (
                        sig.convolve2d(img, k, "same", b)
                    )
                fns["copy floor"] = lambda d=floor_dst, img=img: np.copyto(d, img)
                med = measure(fns, args.repeat, args.slow)
                yield dict(
                    dtype=np.dtype(dtype).name,
                    boundary=boundary,
                    kernel=name,
                    method=chosen,
                    notes="; ".join(notes),
                    **med,
                )


COLUMNS = [
    "fftconv",
    "fftconv out=",
    "cv2.filter2D",
    "cv2.sepFilter2D",
    "ndimage",
    "convolve2d",
    "copy floor",
]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--dtypes", type=lambda s: s.split(","), default=["float32", "float64"])
    ap.add_argument("--boundaries", type=lambda s: s.split(","), default=list(BOUNDARIES))
    ap.add_argument(
        "--kernels", type=lambda s: s.split(","), default=["3", "5", "7", "11", "gauss31", "box15"]
    )
    ap.add_argument("--slow", type=float, default=0.5)
    ap.add_argument("--convolve2d-max", type=int, default=25)
    ap.add_argument("--ndimage-max", type=int, default=121)
    ap.add_argument("--no-ndimage", action="store_true")
    args = ap.parse_args(argv)
    print(
        f"# {args.size}x{args.size}, mode 'same', threads={args.threads}, "
        f"median of {args.repeat} interleaved runs; {machine()}; numpy {np.__version__}, "
        f"OpenCV {cv2.__version__ if cv2 else 'absent'}; python {sys.version.split()[0]}"
    )
    print(
        "# times in ms; 'vs cv2' = fftconv / best OpenCV (below 1: fftconv faster); "
        "'vs floor' = fftconv with out= / copy floor (both write into a preallocated array)"
    )
    head = ["dtype", "boundary", "kernel", "method"] + COLUMNS + ["vs cv2", "vs floor", "notes"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    sys.stdout.flush()
    for r in rows(args):
        cvs = [r[c] for c in ("cv2.filter2D", "cv2.sepFilter2D") if c in r]
        vs_cv2 = f"{r['fftconv'] / min(cvs):.2f}" if cvs else "n/a"
        cells = [r["dtype"], r["boundary"], r["kernel"], r["method"]]
        cells += [f"{r[c] * 1e3:.1f}" if c in r else "n/a" for c in COLUMNS]
        cells += [vs_cv2, f"{r['fftconv out='] / r['copy floor']:.2f}", r["notes"]]
        print("| " + " | ".join(cells) + " |")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
