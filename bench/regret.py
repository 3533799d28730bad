"""Planner regret: time(planner's choice) / time(fastest method), over a grid of sizes.

Run ``python bench/regret.py`` (``--quick`` for a small grid, ``--sizes`` and
``--kernels`` to choose your own, ``--json FILE`` to keep the numbers). Every
method is timed on the same arrays, interleaved (direct, fft, oa, direct, ...),
after one warm-up call each (so FFTW plans are cached: these are warm times),
and the median of ``--repeat`` runs is kept (the best run too: on a shared,
busy machine it is the steadier estimate, and both regrets are printed). A method whose predicted time is
more than ``--skip-factor`` times the best prediction and above ``--skip-above``
seconds is not timed (direct summation with a 255x255 kernel on a 4096x4096
image would take hours); the table marks it '-'. Before timing, each method
is called a few times and the background measuring of FFTW plans that
repeated calls start is allowed to finish (warm means steady state).
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import sys
import time

import numpy as np
from _common import geomean, machine, save_json

import fftconv
from fftconv.planner import plan

METHODS = ("direct", "fft", "oa")

DEFAULT_SIZES = [
    (256, 256),
    (512, 384),
    (1000, 1000),
    (1024, 1024),
    (2048, 1536),
    (4099, 300),
    (2048, 2048),
    (4096, 4096),
    (8192, 8192),
]
DEFAULT_KERNELS = [1, 3, 7, 15, 31, 63, 127, 255, 511]
QUICK_SIZES = [(256, 256), (600, 1000), (2048, 2048)]
QUICK_KERNELS = [1, 5, 31, 127]


def _time(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def measure_case(
    shape, ksize, dtype, mode, boundary, repeat, skip_factor, skip_above, rng, threads=None
):
    kshape = (min(ksize, shape[0]), min(ksize, shape[1]))
    a = rng.standard_normal(shape).astype(dtype)
    k = rng.standard_normal(kshape).astype(dtype)
    chosen = plan(shape, kshape, dtype, mode, boundary, threads=threads)
    predicted = {}
    for m in METHODS:
        try:
            p = plan(shape, kshape, dtype, mode, boundary, method=m, threads=threads)
        except ValueError:
            continue
        if p.method == m:  # 'oa' with a single block is the 'fft' computation: not timed twice
            predicted[m] = p
    best_pred = min(p.seconds for p in predicted.values())
    run = [
        m
        for m, p in predicted.items()
        if not (p.seconds > skip_factor * best_pred and p.seconds > skip_above)
    ]
    if chosen.method not in run:
        run.append(chosen.method)
    # A method that falls back to another shape (oa with one block) is that method.
    out = np.empty(chosen.problem.out_shape, chosen.problem.dtype)
    calls = {
        m: (lambda m=m: fftconv.convolve(a, k, mode, boundary, method=m, out=out, threads=threads))
        for m in run
    }
    # Warm: plans cached, and the background measuring of FFTW plans that repeated
    # calls start (fftconv's planning policy 'auto') finished, so it competes with nothing.
    for _ in range(fftconv._fftw.UPGRADE_AFTER + 1):
        for m in run:
            if predicted[m].seconds < 0.5 or _ == 0:
                calls[m]()
    fftconv._fftw.wait_for_upgrades()
    times = {m: [] for m in run}
    for _ in range(repeat):
        for m in run:
            times[m].append(_time(calls[m]))
    med = {m: statistics.median(v) for m, v in times.items()}
    best = {m: min(v) for m, v in times.items()}
    fastest = min(med.values())
    return {
        "image": list(shape),
        "kernel": list(kshape),
        "dtype": np.dtype(dtype).name,
        "mode": mode,
        "boundary": boundary,
        "chosen": chosen.method,
        "chosen_shape": list(chosen.transform_shape or ()),
        "predicted": {m: p.seconds for m, p in predicted.items()},
        "measured": med,
        "skipped": sorted(set(predicted) - set(run)),
        "regret": med[chosen.method] / fastest,
        "best": best,
        "regret_best": best[chosen.method] / min(best.values()),
    }


def dedupe(rows, threads=None):
    """Drop, from rows measured before methods that fall back to another were skipped,
    the duplicate timing of that same computation."""
    out = []
    for r in rows:
        r = dict(r, measured=dict(r["measured"]), best=dict(r["best"]))
        for m in list(r["measured"]):
            p = plan(
                tuple(r["image"]),
                tuple(r["kernel"]),
                r["dtype"],
                r["mode"],
                r["boundary"],
                method=m,
                threads=threads,
            )
            if p.method != m:
                del r["measured"][m], r["best"][m]
        r["regret"] = r["measured"][r["chosen"]] / min(r["measured"].values())
        r["regret_best"] = r["best"][r["chosen"]] / min(r["best"].values())
        out.append(r)
    return out


def print_table(rows, file=sys.stdout) -> None:
    head = "| image | kernel | direct | fft | oa | chosen | regret (median) | regret (best) |"
    print(head, file=file)
    print("|" + "---|" * 8, file=file)
    for r in rows:
        cells = []
        for m in METHODS:
            t = r["measured"].get(m)
            cells.append(f"{t * 1e3:.1f} ms" if t is not None else "-")
        print(
            f"| {r['image'][0]}x{r['image'][1]} | {r['kernel'][0]}x{r['kernel'][1]} | "
            + " | ".join(cells)
            + f" | {r['chosen']} | {r['regret']:.2f} | "
            f"{r['regret_best']:.2f} |",
            file=file,
        )
    print(file=file)
    for key, label in (("regret", "medians"), ("regret_best", "best times")):
        regrets = [r[key] for r in rows]
        gm = geomean(regrets)
        worst = max(rows, key=lambda r: r[key])
        print(
            f"{len(rows)} cases, by {label}: geometric mean regret {gm:.3f}, worst "
            f"{worst[key]:.2f} ({worst['image'][0]}x{worst['image'][1]} with "
            f"{worst['kernel'][0]}x{worst['kernel'][1]}); regret <= 1.05 in "
            f"{sum(x <= 1.05 for x in regrets)} of {len(rows)}",
            file=file,
        )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a small grid (about a minute)")
    ap.add_argument("--sizes", nargs="*", help="image sizes as HxW, e.g. 4099x300")
    ap.add_argument("--kernels", nargs="*", type=int, help="square kernel sizes")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--mode", default="same")
    ap.add_argument("--boundary", default="fill")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None, help="default: all cores")
    ap.add_argument(
        "--max-pixels",
        type=float,
        default=2**26,
        help="skip images larger than this (8192^2 needs several GiB)",
    )
    ap.add_argument("--skip-factor", type=float, default=20.0)
    ap.add_argument("--skip-above", type=float, default=2.0)
    ap.add_argument("--json", help="write the rows to this file")
    args = ap.parse_args(argv)
    sizes = (
        [tuple(int(x) for x in s.split("x")) for s in args.sizes]
        if args.sizes
        else QUICK_SIZES
        if args.quick
        else DEFAULT_SIZES
    )
    kernels = args.kernels or (QUICK_KERNELS if args.quick else DEFAULT_KERNELS)
    rng = np.random.default_rng(0)
    m = fftconv.planner.machine()
    print(
        f"# fftconv {fftconv.__version__} planner regret, {machine()}, "
        f"python {platform.python_version()}, "
        f"{'calibrated' if m.calibrated else 'default'} constants, dtype {args.dtype}, "
        f"mode {args.mode!r}, boundary {args.boundary!r}, threads {args.threads or 'all'}, "
        f"median of {args.repeat}\n"
    )
    rows = []
    for shape in sizes:
        if math.prod(shape) > args.max_pixels:
            continue
        for ks in kernels:
            if ks > max(shape):
                continue
            r = measure_case(
                shape,
                ks,
                args.dtype,
                args.mode,
                args.boundary,
                args.repeat,
                args.skip_factor,
                args.skip_above,
                rng,
                args.threads,
            )
            rows.append(r)
            print(
                f"  {shape} k={ks}: chosen {r['chosen']}, regret {r['regret']:.2f}, "
                + ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in r["measured"].items()),
                file=sys.stderr,
                flush=True,
            )
    print_table(rows)
    save_json(args.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
