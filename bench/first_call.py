"""The first call in a fresh process against the warm call, and where the first call's time goes.

    python bench/first_call.py                       # every case, both engines, 5 processes each
    python bench/first_call.py --processes 7 --cases 3-random photo
    python bench/first_call.py --breakdown           # one process per case: imports, kernel load

Each run is a fresh Python process (caches warm: FFTW wisdom, numba's cache,
the ahead-of-time module when `fftconv precompile` built one) that imports
fftconv (timed), makes its data, touches its ``out=`` array (the caller's
memory is resident, as in the warm calls) and times the first
``fftconv.convolve(x, k, 'same', 'symmetric', out=out, ...)`` call and five
more (warm: their median).  Cases and engines are interleaved (A B C ...
A B C ...), ``--processes`` processes each; medians.  Engines: ``aot`` (the
default: the ahead-of-time module when there is one) and ``jit``
(``FFTCONV_AOT=0``: numba's JIT kernels).  ``import`` is the
median time of ``import numpy, scipy.fft`` and of ``import fftconv`` in fresh
interpreters, interleaved.

``--breakdown`` runs each case once more with ``python -X importtime`` and
reports, for the first call: the seconds spent importing, by top-level package
(numba, scipy, fftconv's own modules, the rest), from the start of the call to
the start of the first row band (planning, imports, loading the compiled
kernels' module), and the first band alone (numba loads the band's cached
machine code there; an ahead-of-time kernel just runs).

Cases: 4096x4096 float32 with a 3x3 random kernel (direct), a 31x31 rank-1
kernel (a Hann window's outer product: separable passes) and a 31x31 random
kernel (FFT); a 4000x6000x3 photo (channel_axis=-1) with a 3x3 random kernel,
float32 and uint8 (``out=`` uint8: rounded and clipped), and the uint8 photo
with a Gaussian (sigma 2, 17x17) and a 5x5 box kernel (``out=`` uint8: the
strip-mined rank-one passes).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys

from _common import machine

CASES = (
    "3-random",
    "31-rank1",
    "31-random",
    "photo",
    "photo-uint8",
    "photo-uint8-gaussian",
    "photo-uint8-box",
)
ENGINES = ("aot", "jit")

_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np
import fftconv
t_import = time.perf_counter() - t0
case, breakdown = sys.argv[1], sys.argv[2] == "1"
rng = np.random.default_rng(0)
kw = {}
if case.startswith("photo"):
    x = rng.random((4000, 6000, 3), dtype=np.float32)
    if case.startswith("photo-uint8"):
        x = (x * 255).astype(np.uint8)
    k = rng.random((3, 3)).astype(np.float32)
    if case.endswith("-gaussian"):
        k = fftconv.kernels.gaussian(2.0)
    elif case.endswith("-box"):
        k = fftconv.kernels.box(5)
    kw = dict(channel_axis=-1)
else:
    x = rng.random((4096, 4096), dtype=np.float32)
    n, kind = case.split("-")
    n = int(n)
    if kind == "random":
        k = rng.random((n, n)).astype(np.float32)
    else:
        g = np.hanning(n + 2)[1:-1]
        k = np.outer(g, g).astype(np.float32)
out = np.empty_like(x)
out[...] = 0
marks = {}
if breakdown:  # time stamps of the first row band (imports fftconv's executors early)
    from fftconv.methods import interleaved, rows

    def wrap(run_bands):
        def run(tasks, threads):
            def first(task=tasks[0]):
                marks.setdefault("band_start", time.perf_counter())
                task()
                marks.setdefault("band_end", time.perf_counter())
            return run_bands([first] + list(tasks[1:]), threads)
        return run
    rows.run_bands = wrap(rows.run_bands)
    interleaved.run_bands = wrap(interleaved.run_bands)
    sys.stderr.write("=====FIRST\n")
ts = []
for i in range(6):
    t = time.perf_counter()
    fftconv.convolve(x, k, "same", "symmetric", out=out, **kw)
    ts.append(time.perf_counter() - t)
    if i == 0:
        t_first_start = t
        if breakdown:
            sys.stderr.write("=====END\n")
res = dict(import_s=t_import, first=ts[0], warm=statistics.median(ts[1:]),
           numba="numba" in sys.modules)
if marks:
    res["to_band"] = marks["band_start"] - t_first_start
    res["band"] = marks["band_end"] - marks["band_start"]
print(json.dumps(res))
"""


def child(case: str, engine: str, breakdown: bool = False) -> dict:
    env = dict(os.environ, FFTCONV_AOT="0" if engine == "jit" else "1")
    cmd = [sys.executable] + (["-X", "importtime"] if breakdown else [])
    res = subprocess.run(
        cmd + ["-c", "import statistics\n" + _CHILD, case, "1" if breakdown else "0"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    out = json.loads(res.stdout.strip().splitlines()[-1])
    if breakdown:
        out["imports"] = _imports_of_first_call(res.stderr)
    return out


def _imports_of_first_call(stderr: str) -> dict:
    """Seconds of import (self time) during the first call, by top-level package."""
    part = stderr.split("=====FIRST\n", 1)[-1].split("=====END\n", 1)[0]
    got: dict = {}
    for line in part.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|\s*(\S+)", line)
        if m:
            root = m[3].split(".")[0]
            root = root if root in ("numba", "llvmlite", "scipy", "fftconv", "numpy") else "other"
            got[root] = got.get(root, 0.0) + int(m[1]) * 1e-6
    return got


def import_times(processes: int) -> dict:
    stmts = {"numpy, scipy.fft": "import numpy, scipy.fft", "fftconv": "import fftconv"}
    code = "import time; t = time.perf_counter(); {}; print(time.perf_counter() - t)"
    got = {name: [] for name in stmts}
    for _ in range(processes):
        for name, stmt in stmts.items():
            res = subprocess.run(
                [sys.executable, "-c", code.format(stmt)],
                capture_output=True,
                text=True,
                check=True,
            )
            got[name].append(float(res.stdout))
    return {name: statistics.median(v) for name, v in got.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--processes", type=int, default=5, help="fresh processes per cell")
    ap.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    ap.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    ap.add_argument("--breakdown", action="store_true", help="also break each first call down")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)
    print(f"# first calls in fresh processes, {machine()}, load {os.getloadavg()[0]:.1f}")
    runs: dict = {(c, e): [] for c in args.cases for e in args.engines}
    for _ in range(args.processes):  # interleaved: every cell once per round
        for key in runs:
            runs[key].append(child(*key))
    rows = []
    print(
        "\n| case | engine | numba imported | import fftconv | first ms | warm ms | first / warm |"
    )
    print("| --- | --- | --- | ---: | ---: | ---: | ---: |")
    for (case, engine), got in runs.items():
        med = {f: statistics.median(r[f] for r in got) for f in ("import_s", "first", "warm")}
        ratio = statistics.median(r["first"] / r["warm"] for r in got)
        row = dict(case=case, engine=engine, numba=any(r["numba"] for r in got), ratio=ratio, **med)
        rows.append(row)
        print(
            f"| {case} | {engine} | {'yes' if row['numba'] else 'no'} | {med['import_s']:.3f} s "
            f"| {med['first'] * 1e3:.1f} | {med['warm'] * 1e3:.1f} | {ratio:.2f} |",
            flush=True,
        )
    imp = import_times(args.processes)
    print("\n| cold interpreter | seconds |\n| --- | ---: |")
    for name, v in imp.items():
        print(f"| `import {name}` | {v:.3f} |")
    result = {"first_calls": rows, "import": imp, "load": os.getloadavg()}
    if args.breakdown:
        print(
            "\n| case | engine | first ms | to first band ms | first band ms | imports in the "
            "call: numba+llvmlite / scipy / fftconv / numpy / other ms |"
        )
        print("| --- | --- | ---: | ---: | ---: | --- |")
        result["breakdown"] = []
        for case in args.cases:
            for engine in args.engines:
                r = child(case, engine, breakdown=True)
                im = r["imports"]
                nb = im.get("numba", 0) + im.get("llvmlite", 0)
                parts = " / ".join(
                    f"{v * 1e3:.0f}"
                    for v in (nb, *(im.get(p, 0) for p in ("scipy", "fftconv", "numpy", "other")))
                )
                print(
                    f"| {case} | {engine} | {r['first'] * 1e3:.0f} | {r.get('to_band', 0) * 1e3:.0f} "
                    f"| {r.get('band', 0) * 1e3:.0f} | {parts} |",
                    flush=True,
                )
                result["breakdown"].append(dict(case=case, engine=engine, **r))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
