"""Peak memory of one call, and an out-of-core run on a multi-gigapixel image.

Two benchmarks (``pip install -e '.[bench]'``):

``python bench/memory.py inmem [--size 16384] [--kernel 63]``
    For each contender, a fresh Python process generates a float32 image of
    ``size x size`` (1 GiB at 16384), imports everything, records its resident
    memory (the baseline), resets the kernel's peak counter (``/proc/self/
    clear_refs``), makes one call with a ``kernel x kernel`` kernel in 'same'
    mode, and reads the peak (``VmHWM``). The extra memory is peak minus
    baseline (output included), reported as a multiple of the input's size.
    Contenders: fftconv.convolve in memory, fftconv.convolve with
    ``max_memory`` (tiled), scipy.signal.fftconvolve, scipy.signal.oaconvolve
    and cv2.filter2D.

``python bench/memory.py ooc [--side 65536] [--max-memory 2GB] [--timeout 5400]``
    Generates a ``side x side`` uint8 image tile by tile into a tiled BigTIFF
    (4 GiB at 65536), then runs ``fftconv apply big.tif out.tif --kernel
    gaussian:sigma=3.75`` (a 31x31 Gaussian) under ``/usr/bin/time -v`` and
    reports the maximum resident set size, the wall time and the throughput
    in megapixels per second, and checks a window of the output against the
    in-memory call.

Both print a Markdown table and write JSON next to this file
(``memory_results.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import machine  # noqa: E402

CHILD = textwrap.dedent("""
    import json, sys, time
    import numpy as np
    name, n, ksize = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

    def status(key):
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) * 1024 for l in f if l.startswith(key + ":"))

    import scipy.signal
    import fftconv
    from _common import gaussian_kernel, test_image
    if name.startswith("cv2"):
        import cv2
    img = test_image(n)
    k = gaussian_kernel(ksize)
    base = status("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    t0 = time.perf_counter()
    if name == "fftconv":
        out = fftconv.convolve(img, k, mode="same")
    elif name.startswith("fftconv-tiled"):
        out = fftconv.convolve(img, k, mode="same", max_memory=name.split(":")[1])
    elif name == "scipy.fftconvolve":
        out = scipy.signal.fftconvolve(img, k, mode="same")
    elif name == "scipy.oaconvolve":
        out = scipy.signal.oaconvolve(img, k, mode="same")
    elif name == "cv2.filter2D":
        out = cv2.filter2D(img, -1, k[::-1, ::-1].copy(), borderType=cv2.BORDER_CONSTANT)
    seconds = time.perf_counter() - t0
    peak = status("VmHWM")
    c = n // 2
    print(json.dumps(dict(name=name, seconds=seconds, base=base, peak=peak,
                          input=img.nbytes, dtype=str(out.dtype),
                          probe=float(out[c - 2:c + 2, c - 2:c + 2].astype(np.float64).sum()))))
""")


def _save(key: str, value) -> None:
    path = HERE / "memory_results.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data[key] = value
    path.write_text(json.dumps(data, indent=1) + "\n")


def inmem(args) -> None:
    names = args.only or [
        "fftconv-tiled:" + args.tiled_budget,
        "fftconv-tiled:256MB",
        "fftconv",
        "scipy.fftconvolve",
        "scipy.oaconvolve",
        "cv2.filter2D",
    ]
    rows = []
    for name in names:
        env = dict(os.environ)
        t0 = time.time()
        res = subprocess.run(
            [
                sys.executable,
                "-c",
                f"import sys; sys.path.insert(0, {str(HERE)!r})\n" + CHILD,
                name,
                str(args.size),
                str(args.kernel),
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=args.timeout,
            check=False,
        )
        if res.returncode != 0:
            print(f"{name}: failed ({res.returncode}): {res.stderr.strip()[-300:]}")
            rows.append(dict(name=name, failed=res.stderr.strip()[-300:]))
            continue
        m = json.loads(res.stdout.strip().splitlines()[-1])
        m["extra_x_input"] = (m["peak"] - m["base"]) / m["input"]
        rows.append(m)
        print(
            f"{name:28s} extra {m['extra_x_input']:.2f} x input, {m['seconds']:.1f} s "
            f"(process {time.time() - t0:.0f} s), probe {m['probe']:.6f}",
            flush=True,
        )
    print()
    print(
        f"{args.size}x{args.size} float32 ({args.size**2 * 4 / 2**30:.2f} GiB), "
        f"{args.kernel}x{args.kernel} kernel, mode 'same'; {machine()}"
    )
    print()
    print("| call | extra peak memory (x input, output included) | time (s) |")
    print("| --- | --- | --- |")
    for m in rows:
        if "failed" in m:
            print(f"| {m['name']} | failed | |")
        else:
            print(f"| {m['name']} | {m['extra_x_input']:.2f} | {m['seconds']:.1f} |")
    key = f"inmem_{args.size}_{args.kernel}"
    path = HERE / "memory_results.json"
    old = json.loads(path.read_text()).get(key, {}).get("rows", []) if path.exists() else []
    names = {m["name"] for m in rows}
    _save(key, dict(machine=machine(), rows=[m for m in old if m["name"] not in names] + rows))


def _generate(path: Path, side: int, tile: int = 1024) -> float:
    """A photo-like uint8 image written tile by tile into a tiled BigTIFF."""
    import numpy as np
    import tifffile

    rng = np.random.default_rng(0)

    def tiles():
        for r in range(0, side, tile):
            for c in range(0, side, tile):
                y = (r + np.arange(tile, dtype=np.float32)[:, None]) / side
                x = (c + np.arange(tile, dtype=np.float32)[None, :]) / side
                v = 80 + 60 * x + 40 * y + 30 * np.sin(400 * x) * np.cos(250 * y)
                v += rng.integers(0, 24, (tile, tile), dtype=np.uint8)
                yield np.clip(v, 0, 255).astype(np.uint8)

    t0 = time.perf_counter()
    tifffile.imwrite(
        path,
        tiles(),
        shape=(side, side),
        dtype=np.uint8,
        tile=(tile, tile),
        bigtiff=True,
        photometric="minisblack",
    )
    return time.perf_counter() - t0


def ooc(args) -> None:
    import numpy as np

    workdir = Path(args.dir)
    workdir.mkdir(parents=True, exist_ok=True)
    src = workdir / f"big_{args.side}.tif"
    out = workdir / f"big_{args.side}_blur.tif"
    if not src.exists() or args.regenerate:
        secs = _generate(src, args.side)
        print(f"generated {src} ({src.stat().st_size / 2**30:.2f} GiB) in {secs:.0f} s", flush=True)
    if out.exists():
        out.unlink()
    cmd = [
        "/usr/bin/time",
        "-v",
        sys.executable,
        "-m",
        "fftconv",
        "apply",
        str(src),
        str(out),
        "--kernel",
        "gaussian:sigma=3.75",
        "--max-memory",
        args.max_memory,
        "--quiet",
    ]
    print(" ".join(cmd), flush=True)
    t0 = time.perf_counter()
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, check=False)
    except subprocess.TimeoutExpired:
        print(f"did not finish within {args.timeout} s; {out} exists: {out.exists()}")
        _save(
            f"ooc_{args.side}",
            dict(machine=machine(), timeout=args.timeout, finished=False, out_exists=out.exists()),
        )
        return
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        print(res.stdout, res.stderr)
        raise SystemExit(f"fftconv apply failed ({res.returncode})")
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", res.stderr).group(1))
    elapsed = re.search(r"Elapsed \(wall clock\) time.*: (\S+)", res.stderr).group(1)
    user = float(re.search(r"User time \(seconds\): (\S+)", res.stderr).group(1))
    system = float(re.search(r"System time \(seconds\): (\S+)", res.stderr).group(1))
    pixels = args.side**2
    # Check a window (away from and at the edge) against the in-memory call.
    import fftconv
    from fftconv import io, kernels

    k = kernels.gaussian(3.75).astype(np.float32)
    img = io.open_image(src)
    res_img = io.open_image(out)
    worst = 0
    for r0, c0 in ((args.side // 2 - 300, args.side // 3 - 200), (0, 0)):
        win = np.asarray(img[max(0, r0 - 15) : r0 + 615, max(0, c0 - 15) : c0 + 615]).astype(
            np.float32
        )
        if r0 == 0:
            ref = fftconv.convolve(win, k, "same", "symmetric")[:600, :600]
        else:
            ref = fftconv.convolve(win, k, "valid")[:600, :600]
        ref8 = np.clip(np.rint(ref), 0, 255)
        got = np.asarray(res_img[r0 : r0 + 600, c0 : c0 + 600]).astype(np.float32)
        worst = max(worst, float(np.abs(got - ref8).max()))
    row = dict(
        machine=machine(),
        side=args.side,
        pixels=pixels,
        input_bytes=src.stat().st_size,
        max_memory=args.max_memory,
        max_rss_bytes=rss_kb * 1024,
        wall_s=wall,
        elapsed=elapsed,
        user_s=user,
        system_s=system,
        mpixel_per_s=pixels / wall / 1e6,
        max_level_diff=worst,
    )
    _save(f"ooc_{args.side}", row)
    print(
        f"\n{args.side}x{args.side} uint8 ({pixels / 1e9:.2f} Gpixel, tiled BigTIFF "
        f"{src.stat().st_size / 2**30:.2f} GiB) -> 31x31 Gaussian -> striped BigTIFF; "
        f"{machine()}"
    )
    print(
        "| image | --max-memory | max RSS (/usr/bin/time -v) | wall | throughput | "
        "CPU (user+sys) | max level diff vs in-memory |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    print(
        f"| {args.side}x{args.side} uint8 | {args.max_memory} | {rss_kb / 1e6:.2f} GB | "
        f"{wall:.0f} s | {pixels / wall / 1e6:.1f} Mpixel/s | {user + system:.0f} s | "
        f"{worst:.0f} |"
    )
    if not args.keep:
        out.unlink()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="which", required=True)
    a = sub.add_parser("inmem", help="peak memory of one call, fftconv vs SciPy and OpenCV")
    a.add_argument("--size", type=int, default=16384)
    a.add_argument("--kernel", type=int, default=63)
    a.add_argument("--tiled-budget", default="512MB")
    a.add_argument("--only", nargs="*")
    a.add_argument("--timeout", type=int, default=3600)
    b = sub.add_parser("ooc", help="out-of-core blur of a multi-gigapixel TIFF")
    b.add_argument("--side", type=int, default=65536)
    b.add_argument("--dir", default="/tmp/fftconv-bench")
    b.add_argument("--max-memory", default="2GB")
    b.add_argument("--timeout", type=int, default=5400)
    b.add_argument("--regenerate", action="store_true")
    b.add_argument("--keep", action="store_true", help="keep the output file")
    args = p.parse_args()
    inmem(args) if args.which == "inmem" else ooc(args)


if __name__ == "__main__":
    main()
