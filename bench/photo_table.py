"""Colour photos (H, W, 3), channels last: fftconv against its peers, cell by cell.

    python bench/photo_table.py                       # 2000x3000x3, float32 and uint8
    python bench/photo_table.py --size 4000x6000 --ksizes 3 5 15 63 --kinds random
    python bench/photo_table.py --no-grid --many 20           # apply DIR --out-dir vs a loop
    python bench/photo_table.py --no-grid --layouts           # channels last vs planes
    python bench/photo_table.py --no-grid --channels          # 5 and 8 channels, per channel

Peers, on the same arrays in the same process, interleaved (A B C A B C),
median of ``--repeat`` runs after one warm-up: ``cv2.filter2D`` (all channels
at once; the kernel flipped, since it correlates; borders mapped),
``cv2.sepFilter2D`` for separable kernels (Gaussian, box),
``scipy.signal.fftconvolve(axes=(0, 1))`` (zero boundary only) and
``scipy.ndimage.convolve`` with a ``(k, k, 1)`` kernel (up to 15 taps a
side, beyond which it takes minutes).  fftconv is timed as a user calls it (``convolve(..., channel_axis=-1,
out=)``) and as a reused ``Convolver``.  uint8 photos: fftconv writes a uint8
``out=`` (float32, rounded, clipped); cv2 writes uint8 (its own fixed-point
arithmetic); ndimage writes uint8.  Every fftconv result is checked against a
per-channel float64 reference (each channel alone, contiguous); for uint8 the
rounded, clipped reference within one unit.

``ratio`` is fftconv's median over the fastest peer's (below 1: fftconv wins).
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import subprocess
import sys
import time

import numpy as np
from _common import machine

BORDERS = {  # fftconv boundary -> (cv2 borderType name, scipy.ndimage mode)
    "fill": ("BORDER_CONSTANT", "constant"),
    "symmetric": ("BORDER_REFLECT", "reflect"),
    "mirror": ("BORDER_REFLECT_101", "mirror"),
    "nearest": ("BORDER_REPLICATE", "nearest"),
    "wrap": (None, "wrap"),  # cv2.filter2D has no BORDER_WRAP
}


def photo(h: int, w: int, dtype) -> np.ndarray:
    rng = np.random.default_rng(0)
    img = np.empty((h, w, 3), np.float32)
    for r in range(0, h, 512):
        img[r : r + 512] = rng.random((min(512, h - r), w, 3), dtype=np.float32)
    if np.dtype(dtype) == np.uint8:
        return (img * 255).round().astype(np.uint8)
    return img


def kernel(kind: str, k: int):
    """(2-D kernel float32, its (column, row) factors or None)."""
    if kind == "gaussian":
        y = np.arange(k) - k // 2
        g = np.exp(-0.5 * (y / (k / 6)) ** 2)
        g /= g.sum()
        return np.outer(g, g).astype(np.float32), (g, g)
    if kind == "box":
        b = np.full(k, 1.0 / k)
        return np.outer(b, b).astype(np.float32), (b, b)
    rng = np.random.default_rng(k)
    kk = rng.random((k, k))
    return (kk / kk.sum()).astype(np.float32), None


def reference(img, k2, boundary):
    """Each channel alone, contiguous, in float64 (fftconv's grey engine on planes; the
    grey engine is itself tested against float64 direct summation)."""
    import fftconv

    planes = [np.ascontiguousarray(img[..., c], np.float64) for c in range(img.shape[-1])]
    return np.stack(
        [fftconv.convolve(p, k2.astype(np.float64), "same", boundary) for p in planes], -1
    )


def check(got, img, k2, boundary) -> str:
    ref = reference(img, k2, boundary)
    if got.dtype == np.uint8:
        want = np.clip(np.rint(ref), 0, 255)
        d = np.abs(got.astype(np.float64) - want)
        return "ok" if d.max() <= 1 else f"BAD (max {d.max():.0f})"
    err = np.max(np.abs(got - ref)) / max(np.max(np.abs(ref)), 1e-30)
    return "ok" if err <= 1e-5 else f"BAD ({err:.1e})"


def contenders(img, k2, factors, boundary, u8: bool, ndimage_max: int = 15):
    import cv2
    import scipy.ndimage
    import scipy.signal

    import fftconv

    out = np.empty_like(img)
    conv = fftconv.Convolver(k2, "same", boundary, channel_axis=-1)
    runs = {
        "fftconv": lambda: fftconv.convolve(img, k2, "same", boundary, channel_axis=-1, out=out),
        "Convolver": lambda: conv(img, out=out),
    }
    border, nd_mode = BORDERS[boundary]
    flipped = np.ascontiguousarray(k2[::-1, ::-1])
    if border is not None:
        bt = getattr(cv2, border)
        runs["cv2.filter2D"] = lambda: cv2.filter2D(img, -1, flipped, borderType=bt)
        if factors is not None:
            kx = np.ascontiguousarray(factors[1][::-1], np.float32)
            ky = np.ascontiguousarray(factors[0][::-1], np.float32)
            runs["cv2.sepFilter2D"] = lambda: cv2.sepFilter2D(img, -1, kx, ky, borderType=bt)
    if boundary == "fill" and not u8:
        k3 = k2[..., None]
        runs["fftconvolve"] = lambda: scipy.signal.fftconvolve(img, k3, "same", axes=(0, 1))
    if k2.shape[0] <= ndimage_max:
        k3 = k2[..., None]
        runs["ndimage"] = lambda: scipy.ndimage.convolve(img, k3, mode=nd_mode)
    return runs, out


def timed(runs: dict, repeat: int) -> dict:
    for f in runs.values():  # warm-up (plans, compiled kernels, FFTW plans)
        f()
    times = {name: [] for name in runs}
    for _ in range(repeat):
        for name, f in runs.items():
            t0 = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def grid(args) -> list[dict]:
    h, w = (int(v) for v in args.size.split("x"))
    rows = []
    for dt in args.dtypes:
        img = photo(h, w, dt)
        for kind, k, boundary in itertools.product(args.kinds, args.ksizes, args.boundaries):
            k2, factors = kernel(kind, k)
            runs, out = contenders(img, k2, factors, boundary, dt == "uint8", args.ndimage_max)
            med = timed(runs, args.repeat)
            status = check(out, img, k2, boundary)
            chosen = _chosen(img, k2, boundary)
            peers = {n: t for n, t in med.items() if n not in FFTCONV}
            best = min(peers, key=peers.get) if peers else None
            row = dict(
                size=f"{h}x{w}x3",
                dtype=dt,
                kernel=kind,
                k=k,
                boundary=boundary,
                ms={n: round(t * 1e3, 2) for n, t in med.items()},
                fastest_peer=best,
                ratio=round(med["fftconv"] / peers[best], 2) if best else None,
                convolver_ratio=round(med["Convolver"] / peers[best], 2) if best else None,
                check=status,
                plan=chosen.method,
                predicted_ms=round(chosen.seconds * 1e3, 2),
            )
            rows.append(row)
            print(_line(row), flush=True)
    return rows


def _chosen(img, k2, boundary):
    """The plan `fftconv.convolve` runs (a uint8 photo with a uint8 `out`: computed in
    float32, written rounded)."""
    import fftconv

    out_dtype = img.dtype if img.dtype.kind in "iu" else None
    return fftconv.plan(
        img.shape,
        k2.shape,
        img.dtype,
        "same",
        boundary,
        channel_axis=-1,
        kernel=k2,
        out_dtype=out_dtype,
    )


FFTCONV = ("fftconv", "Convolver")
COLUMNS = ("fftconv", "Convolver", "cv2.filter2D", "cv2.sepFilter2D", "fftconvolve", "ndimage")


def _line(r) -> str:
    cells = [f"{r['ms'][c]:.1f}" if c in r["ms"] else "" for c in COLUMNS]
    return (
        f"| {r['size']} {r['dtype']} | {r['kernel']} {r['k']}x{r['k']} | {r['boundary']} | "
        + " | ".join(cells)
        + f" | {r['ratio']} | {r['convolver_ratio']} | {r['check']}"
        + f" | {r['plan']} | {r['predicted_ms']:.1f} |"
    )


def header() -> str:
    cols = " | ".join(f"{c} ms" for c in COLUMNS)
    sep = " | ".join("---:" for _ in COLUMNS)
    return (
        f"| photo | kernel | boundary | {cols} | ratio | Convolver ratio | check | plan "
        f"| predicted ms |\n| --- | --- | --- | {sep} | ---: | ---: | --- | --- | ---: |"
    )


def layouts(repeat: int) -> list[dict]:
    """One thread, direct summation: a 1000x1500x3 photo channels last (one kernel for
    all channels, and one per channel) against the same samples as 3 contiguous planes
    and as one grey 1000x4500 image."""
    import fftconv

    rng = np.random.default_rng(0)
    x = rng.random((1000, 1500, 3), dtype=np.float32)
    planes = np.ascontiguousarray(np.moveaxis(x, -1, 0))
    grey = np.ascontiguousarray(x.reshape(1000, 4500))
    out, po, go = np.empty_like(x), np.empty_like(planes[0]), np.empty_like(grey)
    rows = []
    opts = dict(mode="same", boundary="symmetric", method="direct", threads=1)
    for k in (3, 5, 7, 15):
        w = rng.random((k, k)).astype(np.float32)
        wc = rng.random((k, k, 3)).astype(np.float32)
        runs = {
            "channels last": lambda w=w: fftconv.convolve(x, w, channel_axis=-1, out=out, **opts),
            "3 planes": lambda w=w: [fftconv.convolve(p, w, out=po, **opts) for p in planes],
            "grey W*C": lambda w=w: fftconv.convolve(grey, w, out=go, **opts),
            "per channel": lambda wc=wc: fftconv.convolve(x, wc, channel_axis=-1, out=out, **opts),
            "3 planes, own kernels": lambda wc=wc: [
                fftconv.convolve(p, wc[..., c], out=po, **opts) for c, p in enumerate(planes)
            ],
        }
        med = timed(runs, repeat)
        row = dict(k=k, ms={n: round(t * 1e3, 2) for n, t in med.items()})
        rows.append(row)
        print(f"| {k}x{k} | " + " | ".join(f"{row['ms'][n]:.1f}" for n in runs) + " |", flush=True)
    return rows


def many_channels(repeat: int) -> list[dict]:
    """1000x1500 images of 5 and 8 channels, float32 and uint8 (uint8 `out=`): fftconv
    (bands split into channel planes) against the grey engine on a batch of channel
    planes (`interleaved.MAX_PLANAR = 4`: the path before) and cv2; on 3 channels, one
    kernel per channel against one shared kernel."""
    rows = []
    rng = np.random.default_rng(0)
    for c, dt, (kind, k) in itertools.product(
        (3, 5, 8), ("float32", "uint8"), (("random", 5), ("gaussian", 9))
    ):
        x = rng.random((1000, 1500, c), dtype=np.float32)
        if dt == "uint8":
            x = (x * 255).round().astype(np.uint8)
        med = timed(_channel_runs(x, *kernel(kind, k)), repeat)
        row = dict(channels=c, dtype=dt, kernel=f"{kind} {k}x{k}")
        row["ms"] = {n: round(t * 1e3, 1) for n, t in med.items()}
        rows.append(row)
        cells = "; ".join(f"{n} {t}" for n, t in row["ms"].items())
        print(f"| {c} | {dt} | {kind} {k}x{k} | {cells} |", flush=True)
    return rows


def _channel_runs(x, k2, factors) -> dict:
    import cv2

    import fftconv
    from fftconv.methods import interleaved

    def before():
        keep = interleaved.MAX_PLANAR
        interleaved.MAX_PLANAR = 4
        try:
            fftconv.convolve(x, k2, **opts)
        finally:
            interleaved.MAX_PLANAR = keep

    c = x.shape[-1]
    opts = dict(mode="same", boundary="symmetric", channel_axis=-1, out=np.empty_like(x))
    if c == 3:
        kc = np.stack([k2 * (0.5 + 0.1 * i) for i in range(c)], -1)
        runs = {
            "shared kernel": lambda: fftconv.convolve(x, k2, **opts),
            "one kernel per channel": lambda: fftconv.convolve(x, kc, **opts),
        }
    else:
        runs = {"fftconv": lambda: fftconv.convolve(x, k2, **opts), "grey batch (before)": before}
    fl = np.ascontiguousarray(k2[::-1, ::-1])
    bt = cv2.BORDER_REFLECT
    runs["cv2.filter2D"] = lambda: cv2.filter2D(x, -1, fl, borderType=bt)
    if factors is not None:
        kx = np.ascontiguousarray(factors[1][::-1], np.float32)
        ky = np.ascontiguousarray(factors[0][::-1], np.float32)
        runs["cv2.sepFilter2D"] = lambda: cv2.sepFilter2D(x, -1, kx, ky, borderType=bt)
    return runs


def many_files(n: int, size: int = 512) -> dict:
    """`fftconv apply DIR --out-dir OUT` on `n` JPEGs in one process, against a shell loop
    of `n` commands (one process each)."""
    import os
    import tempfile

    from PIL import Image

    d = tempfile.mkdtemp(prefix="fftconv-many-")
    src = os.path.join(d, "in")
    os.makedirs(src)
    rng = np.random.default_rng(0)
    for i in range(n):
        img = (rng.random((size, size * 3 // 2, 3)) * 255).astype(np.uint8)
        Image.fromarray(img).save(os.path.join(src, f"p{i:03d}.jpg"), quality=90)
    cmd = [sys.executable, "-m", "fftconv", "apply"]
    kern = ["--kernel", "gaussian:sigma=2", "--quiet"]
    t0 = time.perf_counter()
    subprocess.run(cmd + [src, "--out-dir", os.path.join(d, "one")] + kern, check=True)
    one = time.perf_counter() - t0
    os.makedirs(os.path.join(d, "loop"))
    t0 = time.perf_counter()
    for name in sorted(os.listdir(src)):
        subprocess.run(
            cmd + [os.path.join(src, name), os.path.join(d, "loop", name)] + kern, check=True
        )
    loop = time.perf_counter() - t0
    row = dict(
        files=n,
        one_process_s=round(one, 2),
        shell_loop_s=round(loop, 2),
        speedup=round(loop / one, 1),
    )
    print(
        f"| {n} JPEGs {size * 3 // 2}x{size} | {row['one_process_s']} s | "
        f"{row['shell_loop_s']} s | {row['speedup']}x |",
        flush=True,
    )
    return row


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="2000x3000", help="HxW of the photo (3 channels)")
    ap.add_argument("--dtypes", nargs="+", default=["float32", "uint8"])
    ap.add_argument("--kinds", nargs="+", default=["random", "gaussian", "box"])
    ap.add_argument("--ksizes", nargs="+", type=int, default=[3, 5, 7, 15, 31, 63, 255])
    ap.add_argument("--boundaries", nargs="+", default=["symmetric"])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument(
        "--ndimage-max",
        type=int,
        default=15,
        help="largest kernel side scipy.ndimage is timed for (slow beyond)",
    )
    ap.add_argument("--no-grid", action="store_true")
    ap.add_argument(
        "--many",
        type=int,
        default=0,
        metavar="N",
        help="N JPEGs through one `apply --out-dir` against a shell loop",
    )
    ap.add_argument(
        "--layouts",
        action="store_true",
        help="channels last against planes and grey rows (one thread)",
    )
    ap.add_argument(
        "--channels",
        action="store_true",
        help="5 and 8 channels, and one kernel per channel (1000x1500)",
    )
    ap.add_argument("--json", help="write the rows here")
    args = ap.parse_args(argv)
    print(f"machine: {machine()}", flush=True)
    result = {}
    if not args.no_grid:
        print(header(), flush=True)
        result["grid"] = grid(args)
    if args.layouts:
        print(
            "| kernel | channels last | 3 planes | grey W*C | per channel | "
            "3 planes, own kernels |\n| --- | ---: | ---: | ---: | ---: | ---: |"
        )
        result["layouts"] = layouts(args.repeat)
    if args.channels:
        print("| channels | dtype | kernel | ms (median) |\n| --- | --- | --- | --- |")
        result["channels"] = many_channels(args.repeat)
    if args.many:
        print("| files | one process | shell loop | speedup |\n| --- | ---: | ---: | ---: |")
        result["many"] = many_files(args.many)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
