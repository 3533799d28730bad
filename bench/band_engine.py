"""The band engine alone (`methods._u8_kernels.sep_rows`, one thread): ring sizes and
engines (numba's JIT, the shared library of `methods._u8_native`), interleaved.

    python bench/band_engine.py --size 2000x20000 --channels 1 --sigma 5 \
        --ring-kib 256 512 1024 --repeat 5

Each cell feeds a random uint8 image (symmetric boundary, uint8 out, rounded) through
the engine as the streaming path does, in one call: a Gaussian of the given sigma in
both directions (41 taps for sigma 5), and the horizontal pass alone (``h only``: one
vertical tap) and the vertical alone (``v only``). Medians of ``--repeat`` runs after a
warm-up, cells interleaved (A B C A B C ...); Msample/s counts samples (pixels times
channels). The library cells need it built (`fftconv precompile`, or
``--build``).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from _common import machine

from fftconv import kernels
from fftconv._cpu import strip_columns
from fftconv.methods import _u8_kernels, _u8_native


def _maps(n: int, k: int) -> np.ndarray:
    return np.clip(np.arange(n + k - 1) - k // 2, 0, n - 1).astype(np.int64)


def run_once(engine, src, out, u, v, channels: int, ring: int) -> float:
    """Seconds of one engine call over the whole image (buffers allocated outside)."""
    h, w = out.shape[0], out.shape[1] // channels
    kh, kw = len(u), len(v)
    s = strip_columns(w, kh, channels, ring)
    rings = np.empty((-(-w // s), kh + 1, s * channels), np.float32)
    tmp = np.empty(((s + kw - 1) * channels,), np.float32)
    acc = np.empty((2 * s * channels,), np.float32)
    n = h + kh - 1
    t = time.perf_counter()
    engine.sep_rows(src, _maps(h, kh), _maps(w, kw), u, v, np.float32(0), np.zeros(0, np.int64),
                    0, 0, n, out, 0, 0, n, 0, w, channels, 0.0, 255.0, True, rings, tmp, acc)  # fmt: skip
    return time.perf_counter() - t


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", default="2000x20000", help="HxW")
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--sigma", type=float, default=5.0)
    p.add_argument("--ring-kib", type=int, nargs="+", default=[256, 512, 1024])
    p.add_argument("--engines", nargs="+", default=["numba", "library"])
    p.add_argument("--build", action="store_true", help="build the library if missing")
    p.add_argument("--repeat", type=int, default=5)
    a = p.parse_args(argv)
    h, w = (int(x) for x in a.size.split("x"))
    c = a.channels
    src = np.random.default_rng(0).integers(0, 256, (h, w * c), dtype=np.uint8)
    out = np.empty_like(src)
    g = kernels.gaussian(a.sigma)
    u = np.ascontiguousarray(g.sum(axis=1), np.float32)
    one = np.ones(1, np.float32)
    engines = {}
    for name in a.engines:
        if name == "numba":
            engines[name] = _u8_kernels
        elif name == "library":
            if a.build:
                _u8_native.build("uint8", "uint8")
            lib = _u8_native.load("uint8", "uint8")
            if lib is None:
                print("no library built for uint8 -> uint8 (use --build): skipped")
            else:
                engines[name] = lib
    passes = {f"{len(u)}x{len(u)}": (u, u), "h only": (one, u), "v only": (u, one)}
    cells = [(e, k, r) for e in engines for k in passes for r in a.ring_kib]
    times: dict = {cell: [] for cell in cells}
    for e, k, r in cells:  # warm-up (numba compiles here)
        run_once(engines[e], src, out, *passes[k], c, r << 10)
    for _ in range(a.repeat):
        for e, k, r in cells:
            times[(e, k, r)].append(run_once(engines[e], src, out, *passes[k], c, r << 10))
    print(f"# {machine()}; {h}x{w}x{c} uint8, one thread, median of {a.repeat}")
    print("| engine | taps | ring KiB | ms | Msample/s |")
    print("| --- | --- | ---: | ---: | ---: |")
    for e, k, r in cells:
        m = statistics.median(times[(e, k, r)])
        print(f"| {e} | {k} | {r} | {m * 1e3:.1f} | {h * w * c / m / 1e6:.0f} |")


if __name__ == "__main__":
    main()
