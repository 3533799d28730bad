"""fftconv beside its peers, interleaved in one process: a table of ratios, every sample, plots.

``python bench/compare.py [--quick] [--out DIR]``

For every cell (image size, kernel size, dtype, kernel kind) the contenders run on the
same arrays: fftconv as a user calls it (``method='auto'``), fftconv forced to each
method, and the peers (scipy.signal.fftconvolve, oaconvolve and convolve2d,
scipy.ndimage.convolve, cv2.filter2D, and cv2.sepFilter2D for separable kernels), all
computing the same convolution (mode 'same', zeros outside the image). Each result is
checked against fftconv's first (that call is the warm-up), then ``--repeat`` rounds in
which every contender is called once, in turn, each round starting one contender later
(A B C, B C A, C A B, ...); the table quotes medians.

Columns, per cell:

* ``vs fastest peer``: fftconv / the fastest peer (below 1: fftconv is faster);
* ``vs fftconvolve``: fftconv / scipy.signal.fftconvolve;
* ``vs FFT floor``: fftconv / pre-planned FFTW forward and inverse transforms of the
  padded image at the fast length fftconv would use, on all cores (the cost of any
  whole-array FFT convolution; below 1 for small kernels, where no FFT is needed);
* ``cold / warm``: fftconv's first call in a fresh process (imports done, FFTW wisdom
  off) over the median of its later calls in that process;
* ``regret``: fftconv's time over its fastest forced method's (1.00: the planner chose
  the fastest).

Writes ``compare.md`` (the table, the machine, the command), ``compare.json`` (every
sample) and ``compare-<size>-<dtype>-<kind>.png`` (time against kernel size per method
and per peer) into ``--out`` (default ``bench/results``); existing files are kept unless
``--force``. Template-matching cells (``--templates``, none to skip) time fftconv.match_template
beside skimage.feature.match_template and cv2.matchTemplate in a second table.
``--quick`` (1 and 4 megapixels, float32 and uint8, four kernel sizes, one template size)
takes a couple of minutes on two cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _peers  # noqa: E402
from _common import geomean, machine  # noqa: E402

import fftconv  # noqa: E402

FULL = dict(
    sizes=[1024, 2048, 4096, 8192],
    kernels=[3, 5, 7, 11, 15, 31, 63, 127, 255],
    dtypes=["float32", "float64", "complex64", "uint8"],
    kinds=["random", "gaussian"],
    templates=[15, 63],
)
QUICK = dict(
    sizes=[1024, 2048],
    kernels=[3, 9, 31, 127],
    dtypes=["float32", "uint8"],
    kinds=["random"],
    templates=[31],
)

#: One colour per contender, the same in every plot.
COLOURS = {
    "fftconv": "black",
    "FFT floor": "grey",
    "fftconv[direct]": "tab:blue",
    "fftconv[separable]": "tab:cyan",
    "fftconv[fft]": "tab:orange",
    "fftconv[oa]": "tab:green",
    "scipy.signal.fftconvolve": "tab:red",
    "scipy.signal.oaconvolve": "tab:purple",
    "scipy.signal.convolve2d": "tab:brown",
    "scipy.ndimage.convolve": "tab:pink",
    "cv2.filter2D": "tab:olive",
    "cv2.sepFilter2D": "gold",
}

COLD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np, _peers, fftconv
n, ks, dtype, kind = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
a, k = _peers.image(n, dtype), _peers.kernel(ks, kind, dtype)
t = time.perf_counter(); fftconv.convolve(a, k, "same"); cold = time.perf_counter() - t
warm = []
for _ in range(5):
    t = time.perf_counter(); fftconv.convolve(a, k, "same"); warm.append(time.perf_counter() - t)
print(json.dumps({"cold": cold, "warm": sorted(warm)[2]}))
"""


def fft_floor(a: np.ndarray, ks: int, threads: int, effort: str):
    """A callable running pre-planned FFTW forward + inverse transforms of the padded image."""
    import pyfftw

    from fftconv import _fftw

    real = a.dtype.kind != "c"
    dt = (
        np.complex64
        if a.dtype in (np.complex64,)
        else (np.float64 if a.dtype in (np.float64, np.complex128) else np.float32)
    )
    shape = tuple(_fftw.fast_length(n + ks - 1, real) for n in a.shape)
    x = pyfftw.zeros_aligned(shape, dt)
    flags = (f"FFTW_{effort.upper()}",)
    if real:
        fwd = pyfftw.builders.rfftn(x, threads=threads, planner_effort=flags[0])
        inv = pyfftw.builders.irfftn(
            fwd.output_array, s=shape, threads=threads, planner_effort=flags[0]
        )
    else:
        fwd = pyfftw.builders.fftn(x, threads=threads, planner_effort=flags[0])
        inv = pyfftw.builders.ifftn(fwd.output_array, threads=threads, planner_effort=flags[0])

    def run():
        fwd()
        inv()

    return run, shape


def time_interleaved(calls: dict, repeat: int, warm: bool = True) -> dict:
    """One warm-up call each (unless `warm` is False: done), then `repeat` rounds of
    every call in turn. Each round starts one contender later (A B C, B C A, C A B, ...),
    so that none always runs right after the same neighbour (a threaded FFT leaves the
    caches cold and the cores busy for the next call)."""
    for f in calls.values() if warm else ():
        f()
    names = list(calls)
    samples = {name: [] for name in names}
    for r in range(repeat):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            t = time.perf_counter()
            calls[name]()
            samples[name].append(time.perf_counter() - t)
    return samples


def cold_warm(n, ks, dtype, kind):
    env = dict(os.environ, FFTCONV_NO_WISDOM="1")
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            COLD,
            str(Path(__file__).resolve().parent),
            str(n),
            str(ks),
            dtype,
            kind,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    if run.returncode != 0:
        raise RuntimeError(f"cold run failed: {run.stderr.strip().splitlines()[-1:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def run_cell(n, ks, dtype, kind, args) -> dict:
    a, k = _peers.image(n, dtype), _peers.kernel(ks, kind, dtype)
    ours = _peers.fftconv_methods(a, k)
    others = _peers.peers(a, k, kind)
    reference = ours["fftconv"]()
    errors = _peers.check({name: f() for name, f in {**ours, **others}.items()}, reference)
    tol = 1e-4 if np.dtype(dtype) in (np.float32, np.complex64, np.uint8) else 1e-9
    wrong = sorted(name for name, e in errors.items() if e > tol)
    for name in wrong:  # computing something else: not a peer for this cell
        others.pop(name, None)
    floor, floor_shape = fft_floor(
        a,
        ks,
        len(os.sched_getaffinity(0)) if args.threads is None else args.threads,
        args.floor_effort,
    )
    floor()  # the others' warm-up call was the check above
    calls = {**ours, **others, "FFT floor": floor}
    samples = time_interleaved(calls, args.repeat, warm=False)
    med = {name: statistics.median(s) for name, s in samples.items()}
    chosen = fftconv.plan(a.shape, k.shape, a.dtype, "same", kernel=k).method
    forced = {name: t for name, t in med.items() if name.startswith("fftconv[")}
    peer_med = {name: med[name] for name in others}
    fastest_peer = min(peer_med, key=peer_med.get)
    cell = dict(
        size=n,
        kernel=ks,
        dtype=dtype,
        kind=kind,
        chosen=chosen,
        samples=samples,
        medians=med,
        errors=errors,
        excluded=wrong,
        floor_shape=floor_shape,
        fastest_peer=fastest_peer,
        ratios=dict(
            fastest_peer=med["fftconv"] / peer_med[fastest_peer],
            fftconvolve=med["fftconv"] / med["scipy.signal.fftconvolve"],
            fft_floor=med["fftconv"] / med["FFT floor"],
            regret=med["fftconv"] / min(forced.values()),
        ),
    )
    if not args.no_cold:
        cw = cold_warm(n, ks, dtype, kind)
        cell["cold"] = cw
        cell["ratios"]["cold_warm"] = cw["cold"] / cw["warm"]
    return cell


def run_template_cell(n, ts, dtype, args) -> dict:
    """Template matching (zero-normalised cross-correlation, 'valid' positions): fftconv,
    scikit-image and OpenCV on the same image and template; each must find the template
    where it was cut from."""
    a = _peers.image(n, dtype)
    r0, c0 = n // 3, n // 4
    t = np.ascontiguousarray(a[r0 : r0 + ts, c0 : c0 + ts])
    calls = _peers.template_peers(a, t)
    found = {}
    for name, f in calls.items():  # the check, and the warm-up
        score = np.asarray(f())
        found[name] = tuple(int(i) for i in np.unravel_index(np.argmax(score), score.shape))
    wrong = sorted(name for name, p in found.items() if p != (r0, c0))
    calls = {name: f for name, f in calls.items() if name not in wrong}
    samples = time_interleaved(calls, args.repeat, warm=False)
    med = {name: statistics.median(v) for name, v in samples.items()}
    cell = dict(
        size=n, template=ts, dtype=dtype, samples=samples, medians=med, found=found, excluded=wrong
    )
    ours = med.get("fftconv.match_template")
    peers = {name: v for name, v in med.items() if name != "fftconv.match_template"}
    if ours is not None and peers:
        best = min(peers, key=peers.get)
        cell.update(fastest_peer=best, ratios=dict(fastest_peer=ours / peers[best]))
        if "skimage.feature.match_template" in peers:
            cell["ratios"]["skimage"] = ours / peers["skimage.feature.match_template"]
    return cell


def template_table(cells) -> str:
    head = (
        "| image | dtype | template | fftconv (ms) | skimage (ms) | cv2.matchTemplate (ms) "
        "| vs fastest peer | vs skimage |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for c in cells:
        m, r = c["medians"], c.get("ratios", {})

        def cell_ms(name, m=m):
            return ms(m[name]) if name in m else "-"

        def ratio(key, r=r):
            return f"{r[key]:.2f}" if key in r else "-"

        lines.append(
            f"| {c['size']}x{c['size']} | {c['dtype']} | {c['template']}x{c['template']} "
            f"| {cell_ms('fftconv.match_template')} | {cell_ms('skimage.feature.match_template')} "
            f"| {cell_ms('cv2.matchTemplate')} | {ratio('fastest_peer')} | {ratio('skimage')} |"
        )
    return "\n".join(lines)


def ms(t) -> str:
    return f"{t * 1e3:.1f}" if t < 10 else f"{t * 1e3:.0f}"


def table(cells) -> str:
    head = (
        "| image | dtype | kernel | chosen | fftconv (ms) | fastest peer (ms) | vs fastest peer "
        "| vs fftconvolve | vs FFT floor | cold / warm | regret |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for c in cells:
        r = c["ratios"]
        peer = c["fastest_peer"]
        cold = f"{r['cold_warm']:.2f}" if "cold_warm" in r else "-"
        lines.append(
            f"| {c['size']}x{c['size']} | {c['dtype']} | {c['kernel']}x{c['kernel']} {c['kind']} "
            f"| {c['chosen']} | {ms(c['medians']['fftconv'])} | {peer} {ms(c['medians'][peer])} "
            f"| {r['fastest_peer']:.2f} | {r['fftconvolve']:.2f} | {r['fft_floor']:.2f} | {cold} "
            f"| {r['regret']:.2f} |"
        )
    return "\n".join(lines)


def summary(cells) -> str:
    out = []
    for key, label in [
        ("fastest_peer", "fftconv / fastest peer"),
        ("fftconvolve", "fftconv / scipy.signal.fftconvolve"),
        ("regret", "planner regret"),
        ("cold_warm", "cold / warm"),
    ]:
        vals = [c["ratios"][key] for c in cells if key in c["ratios"]]
        if vals:
            out.append(
                f"- {label}: geometric mean {geomean(vals):.2f}, worst {max(vals):.2f}, "
                f"best {min(vals):.2f} ({len(vals)} cells)"
            )
    big = [c["ratios"]["fftconvolve"] for c in cells if c["kernel"] >= 15]
    if big:
        out.append(
            f"- kernels of 15 and more: fftconv is {1 / geomean(big):.1f}x faster than "
            f"scipy.signal.fftconvolve (geometric mean)"
        )
    return "\n".join(out)


def plot(cells, out: Path, force: bool) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    groups = sorted({(c["size"], c["dtype"], c["kind"]) for c in cells})
    for n, dtype, kind in groups:
        sel = sorted(
            (c for c in cells if (c["size"], c["dtype"], c["kind"]) == (n, dtype, kind)),
            key=lambda c: c["kernel"],
        )
        names = sorted({name for c in sel for name in c["medians"]})
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), sharey=True, layout="constrained")
        panels = [
            (
                axes[0],
                "fftconv: the planner's choice and each method",
                [x for x in names if x.startswith("fftconv")] + ["FFT floor"],
            ),
            (
                axes[1],
                "fftconv beside the peers",
                ["fftconv"]
                + [x for x in names if not x.startswith("fftconv") and x != "FFT floor"],
            ),
        ]
        for ax, title, which in panels:
            for name in which:
                xs = [c["kernel"] for c in sel if name in c["medians"]]
                ys = [c["medians"][name] * 1e3 for c in sel if name in c["medians"]]
                style = dict(color=COLOURS.get(name, "tab:cyan"))
                if name == "fftconv":
                    style["lw"] = 2.5
                ax.plot(xs, ys, "--" if name == "FFT floor" else "o-", label=name, **style)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("kernel size (k x k)")
            ks = [c["kernel"] for c in sel]
            ax.set_xticks(ks, [str(k) for k in ks])
            ax.minorticks_off()
            ax.set_title(title)
            ax.legend(fontsize=8)
        axes[0].set_ylabel("median time per call (ms)")
        fig.suptitle(f"{n}x{n} {dtype}, {kind} kernels, mode='same' ({machine()})", fontsize=10)
        path = out / f"compare-{n}-{dtype}-{kind}.png"
        save(path, lambda f, fig=fig: fig.savefig(f, dpi=80, format="png"), force)
        plt.close(fig)
        written.append(path)
    return written


def save(path: Path, write, force: bool) -> None:
    """Write through a temporary file renamed into place; never replace unless `force`."""
    if path.exists() and not force:
        raise FileExistsError(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's files are private; results are not
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="1 and 4 megapixels, float32 and uint8")
    ap.add_argument("--sizes", type=int, nargs="+", help="image sides (n x n)")
    ap.add_argument("--kernels", type=int, nargs="+", help="kernel sides (odd)")
    ap.add_argument("--dtypes", nargs="+", choices=FULL["dtypes"])
    ap.add_argument("--kinds", nargs="+", choices=FULL["kinds"])
    ap.add_argument(
        "--templates",
        type=int,
        nargs="*",
        help="template sides for the template-matching cells (none: skip them)",
    )
    ap.add_argument("--repeat", type=int, help="interleaved rounds (default 5; --quick 3)")
    ap.add_argument("--threads", type=int, help="threads of the FFT floor (default: all cores)")
    ap.add_argument(
        "--floor-effort",
        default="estimate",
        choices=["estimate", "measure"],
        help="FFTW planning of the FFT floor (default estimate, as fftconv plans)",
    )
    ap.add_argument("--no-cold", action="store_true", help="skip the fresh-process first calls")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    ap.add_argument("--force", action="store_true", help="replace existing result files")
    args = ap.parse_args(argv)
    grid = dict(QUICK if args.quick else FULL)
    if args.repeat is None:
        args.repeat = 3 if args.quick else 5
    for key in ("sizes", "kernels", "dtypes", "kinds", "templates"):
        if getattr(args, key) is not None:
            grid[key] = getattr(args, key)
    if any(k % 2 == 0 for k in grid["kernels"]):
        print(
            "compare.py: --kernels must be odd (OpenCV centres even kernels differently)",
            file=sys.stderr,
        )
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    targets = [args.out / "compare.md", args.out / "compare.json"]
    if not args.force and any(p.exists() for p in targets):
        print(
            f"compare.py: {args.out} already holds results; pass --force to replace them, "
            "or --out DIR",
            file=sys.stderr,
        )
        return 2
    command = "python bench/compare.py " + " ".join(argv if argv is not None else sys.argv[1:])
    started = time.time()
    load_start = os.getloadavg()[0]
    cells = []
    for n in grid["sizes"]:
        for dtype in grid["dtypes"]:
            for kind in grid["kinds"]:
                for ks in grid["kernels"]:
                    if ks > n:
                        continue
                    cell = run_cell(n, ks, dtype, kind, args)
                    cells.append(cell)
                    r = cell["ratios"]
                    print(
                        f"{n}x{n} {dtype} {ks}x{ks} {kind}: {cell['chosen']} "
                        f"{ms(cell['medians']['fftconv'])} ms, vs {cell['fastest_peer']} "
                        f"{r['fastest_peer']:.2f}, vs fftconvolve {r['fftconvolve']:.2f}, "
                        f"regret {r['regret']:.2f}",
                        flush=True,
                    )
    template_cells = []
    for n in grid["sizes"]:
        for dtype in [d for d in grid["dtypes"] if d in ("float32", "uint8")]:
            for ts in grid["templates"]:
                if ts < n:
                    template_cells.append(run_template_cell(n, ts, dtype, args))
                    print(
                        f"{n}x{n} {dtype} template {ts}x{ts}:",
                        template_cells[-1].get("ratios"),
                        flush=True,
                    )
    load = os.getloadavg()
    desc = (
        f"{machine()}; Python {platform.python_version()}, numpy {np.__version__}, "
        f"fftconv {fftconv.__version__}; load average {load_start:.1f} at the start, "
        f"{load[0]:.1f} at the end; "
        f"{time.time() - started:.0f} s"
    )
    md = "\n".join(
        [
            "# fftconv beside its peers",
            "",
            f"`{command.strip()}`",
            "",
            f"Machine: {desc}.",
            "",
            "mode 'same', zeros outside the image; medians of "
            f"{args.repeat} interleaved rounds after a warm-up; ratios below 1 mean fftconv is faster.",
            "",
            table(cells),
            "",
            summary(cells),
            "",
        ]
        + (
            [
                "## Template matching",
                "",
                "fftconv.match_template beside skimage.feature.match_template and "
                "cv2.matchTemplate (TM_CCOEFF_NORMED), same image and template, interleaved; "
                "each must find the template where it was cut from.",
                "",
                template_table(template_cells),
                "",
            ]
            if template_cells
            else []
        )
    )
    save(args.out / "compare.md", lambda f: f.write(md.encode()), args.force)
    doc = {
        "command": command.strip(),
        "machine": desc,
        "repeat": args.repeat,
        "cells": cells,
        "template_cells": template_cells,
    }
    save(
        args.out / "compare.json", lambda f: f.write(json.dumps(doc, indent=1).encode()), args.force
    )
    pngs = plot(cells, args.out, args.force)
    print(md)
    print("wrote", ", ".join(str(p) for p in targets + pngs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
