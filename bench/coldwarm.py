"""Cold and warm times of fftconv.convolve beside scipy.signal.fftconvolve and oaconvolve.

``python bench/coldwarm.py`` (``--quick``: 2048^2 only). float32 images,
mode 'same', square kernels. *Warm*: the same arrays, after one call of each,
interleaved (fftconv, fftconvolve, oaconvolve, fftconv, ...), median of
``--repeat``. *Cold*: the first call in a fresh Python process (after the
imports and the random data), for fftconv and for SciPy, each in its own
process; the same process then makes three more calls, waits for the
background measuring of FFTW plans (fftconv's policy 'auto') and times warm
calls, so cold/warm compares the first call with the steady state. FFTW wisdom is switched off for the cold runs (FFTCONV_NO_WISDOM=1)
so they are as cold as a new machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
from _common import geomean, machine, save_json

CHILD = r"""
import json, sys, time
import numpy as np
which, n, m, ks, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
threads = None if threads == "all" else int(threads)
rng = np.random.default_rng(0)
a = rng.standard_normal((n, m)).astype(np.float32)
k = rng.standard_normal((ks, ks)).astype(np.float32)
if which == "fftconv":
    import fftconv
    f = lambda: fftconv.convolve(a, k, "same", threads=threads)
else:
    import scipy.signal
    f = lambda: scipy.signal.fftconvolve(a, k, "same")
t = time.perf_counter(); f(); cold = time.perf_counter() - t
for _ in range(3):
    f()
if which == "fftconv":
    fftconv._fftw.wait_for_upgrades()  # warm: the background-measured plans in use
warm = []
for _ in range(5):
    t = time.perf_counter(); f(); warm.append(time.perf_counter() - t)
warm.sort()
print(json.dumps({"cold": cold, "warm": warm[len(warm) // 2]}))
"""


def cold_run(which, shape, ks, threads):
    env = dict(os.environ, FFTCONV_NO_WISDOM="1")
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            which,
            str(shape[0]),
            str(shape[1]),
            str(ks),
            str(threads or "all"),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def warm_run(shape, ks, repeat, threads):
    import scipy.signal

    import fftconv

    rng = np.random.default_rng(0)
    a = rng.standard_normal(shape).astype(np.float32)
    k = rng.standard_normal((ks, ks)).astype(np.float32)
    calls = {
        "fftconv": lambda: fftconv.convolve(a, k, "same", threads=threads),
        "fftconvolve": lambda: scipy.signal.fftconvolve(a, k, "same"),
        "oaconvolve": lambda: scipy.signal.oaconvolve(a, k, "same"),
    }
    ref = calls["fftconvolve"]()
    for _ in range(3):
        got = calls["fftconv"]()
    fftconv._fftw.wait_for_upgrades()
    err = float(np.max(np.abs(got - ref)) / np.max(np.abs(ref)))
    assert err < 1e-4, err
    calls["oaconvolve"]()
    times = {name: [] for name in calls}
    for _ in range(repeat):
        for name, f in calls.items():
            t = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - t)
    p = fftconv.plan(shape, (ks, ks), np.float32, "same", threads=threads)
    return {name: statistics.median(v) for name, v in times.items()}, p


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--sizes", nargs="*", help="HxW")
    ap.add_argument("--kernels", nargs="*", type=int)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--no-cold", action="store_true")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    sizes = (
        [tuple(int(x) for x in s.split("x")) for s in args.sizes]
        if args.sizes
        else [(2048, 2048)]
        if args.quick
        else [(2048, 2048), (4096, 4096)]
    )
    kernels = args.kernels or ([15, 63] if args.quick else [15, 31, 63, 127])
    import fftconv

    print(
        f"# fftconv {fftconv.__version__} vs scipy, {machine()}, "
        f"float32, mode 'same', fftconv threads {args.threads or 'all'}, SciPy single-threaded "
        f"(its default), warm = median of {args.repeat} interleaved\n"
    )
    rows = []
    for shape in sizes:
        for ks in kernels:
            warm, p = warm_run(shape, ks, args.repeat, args.threads)
            row = {"image": list(shape), "kernel": ks, "method": p.method, "warm": warm}
            if not args.no_cold:
                row["cold_fftconv"] = cold_run("fftconv", shape, ks, args.threads)
                row["cold_scipy"] = cold_run("scipy", shape, ks, args.threads)
            rows.append(row)
            print(f"  {shape} k={ks}: {row}", file=sys.stderr, flush=True)
    print(
        "| image | kernel | fftconv method | fftconv warm | fftconvolve | oaconvolve | "
        "speed-up vs fftconvolve | vs oaconvolve | fftconv cold | cold / warm | "
        "fftconvolve cold |"
    )
    print("|" + "---|" * 11)
    sp, so, cw = [], [], []
    for r in rows:
        w = r["warm"]
        s1, s2 = w["fftconvolve"] / w["fftconv"], w["oaconvolve"] / w["fftconv"]
        sp.append(s1)
        so.append(s2)
        cells = [
            f"{r['image'][0]}x{r['image'][1]}",
            f"{r['kernel']}",
            r["method"],
            f"{w['fftconv'] * 1e3:.0f} ms",
            f"{w['fftconvolve'] * 1e3:.0f} ms",
            f"{w['oaconvolve'] * 1e3:.0f} ms",
            f"{s1:.2f}x",
            f"{s2:.2f}x",
        ]
        if "cold_fftconv" in r:
            c = r["cold_fftconv"]
            cw.append(c["cold"] / c["warm"])
            cells += [
                f"{c['cold'] * 1e3:.0f} ms",
                f"{c['cold'] / c['warm']:.2f}",
                f"{r['cold_scipy']['cold'] * 1e3:.0f} ms",
            ]
        else:
            cells += ["-", "-", "-"]
        print("| " + " | ".join(cells) + " |")

    print(
        f"\ngeometric mean warm speed-up: {geomean(sp):.2f}x vs fftconvolve, {geomean(so):.2f}x vs "
        f"oaconvolve"
        + (f"; cold/warm geometric mean {geomean(cw):.2f}, worst {max(cw):.2f}" if cw else "")
    )
    save_json(args.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
