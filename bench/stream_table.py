"""Huge photos file to file: fftconv against libvips and OpenCV, each in a fresh process.

Generates the test files (tile by tile, so a 20000x20000 image never sits in
memory), then runs each tool as its own process under ``/usr/bin/time -v``,
file to file, and reports wall time (process start included), Mpixel/s, CPU
seconds (user + system: less sensitive than wall time to other load on the
machine), peak RSS and the largest difference from an in-memory float64 reference (computed
here in bands, rounded half to even), with how many pixels differ and how many
of those sit at a rounding tie (the reference within 1e-3 of ``n + 0.5``).

Tools:

* ``fftconv apply IN OUT --kernel gaussian:sigma=5`` (symmetric boundary);
* libvips ``convsep`` (pyvips), ``precision="float"`` and ``"integer"``, on the
  image embedded with a symmetric border, then cropped, so it computes the same
  thing;
* OpenCV: ``imread``, ``sepFilter2D(BORDER_REFLECT)`` in float32, round, ``imwrite``
  (zarr inputs are read with zarr: OpenCV has no zarr reader).

Run (files go to /tmp/stream-bench; several GB)::

    PYTHONPATH=$PWD python bench/stream_table.py [--cases grey,rgb-png,...] [--repeat 3]
        [--keep] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine  # noqa: E402

SIGMA = 5.0
RADIUS = int(4.0 * SIGMA + 0.5)  # 20: 41 taps, as fftconv.kernels.gaussian and scipy.ndimage


def taps() -> np.ndarray:
    x = np.arange(-RADIUS, RADIUS + 1, dtype=np.float64)
    g = np.exp(-0.5 * (x / SIGMA) ** 2)
    return g / g.sum()


# --------------------------------------------------------------------------- test files


def photo_block(y0: int, x0: int, h: int, w: int, channels: int) -> np.ndarray:
    """A deterministic photo-like block (smooth shapes, edges and grain) of the image
    whose pixel (y, x) depends only on (y, x): tiles generated apart agree."""
    y = np.arange(y0, y0 + h, dtype=np.float32)[:, None]
    x = np.arange(x0, x0 + w, dtype=np.float32)[None, :]
    out = np.empty((h, w, channels), np.uint8)
    for c in range(channels):
        f = 0.002 + 0.0007 * c
        v = 128 + 60 * np.sin(f * x + 0.3 * c) * np.cos(0.0017 * y) + 40 * np.sin(0.011 * (x + y))
        v += 30 * ((((x.astype(np.int64) // 397) + (y.astype(np.int64) // 311)) % 2) - 0.5)
        # grain: a hash of the position, so it is the same whichever tile makes it
        hsh = (y.astype(np.uint64) * np.uint64(73856093)) ^ (
            x.astype(np.uint64) * np.uint64(19349663)
        )
        hsh = (hsh ^ np.uint64(c * 83492791)) % np.uint64(41)
        v = v + hsh.astype(np.float32) - 20
        out[..., c] = np.clip(v, 0, 255).astype(np.uint8)
    return out[..., 0] if channels == 1 else out


def _tiles(shape, tile, channels):
    h, w = shape
    for y in range(0, h, tile):
        for x in range(0, w, tile):
            blk = photo_block(y, x, min(tile, h - y), min(tile, w - x), channels)
            pad = [(0, tile - blk.shape[0]), (0, tile - blk.shape[1])] + [(0, 0)] * (blk.ndim - 2)
            yield np.pad(blk, pad)


def write_tiff(path, shape, channels, *, tile=1024, compression=None):
    import tifffile

    full = tuple(shape) + ((channels,) if channels > 1 else ())
    kw = dict(photometric="rgb" if channels == 3 else "minisblack", bigtiff=True)
    if compression == "jpeg":
        kw.update(compression="jpeg", compressionargs={"level": 95})
    elif compression:
        kw["compression"] = compression
        kw["predictor"] = compression in ("deflate", "lzw")
    tifffile.imwrite(
        path, _tiles(shape, tile, channels), shape=full, dtype=np.uint8, tile=(tile, tile), **kw
    )


def write_image(path, shape, channels):
    """PNG or JPEG (decoded whole by every tool) through Pillow."""
    from PIL import Image

    arr = photo_block(0, 0, shape[0], shape[1], channels)
    im = Image.fromarray(arr)
    if str(path).endswith(".jpg"):
        im.save(path, quality=95)
    else:
        im.save(path, compress_level=3)


def write_zarr(path, shape, channels, chunk=1024):
    import zarr

    full = tuple(shape) + ((channels,) if channels > 1 else ())
    from zarr.codecs import BloscCodec

    z = zarr.create_array(
        path,
        shape=full,
        dtype=np.uint8,
        chunks=(chunk, chunk) + full[2:],
        compressors=BloscCodec(),
        overwrite=True,
    )
    for y in range(0, shape[0], chunk):
        h = min(chunk, shape[0] - y)
        z[y : y + h] = photo_block(y, 0, h, shape[1], channels)


#: name -> (file name, shape, channels, writer)
CASES = {
    "grey": ("grey20k.tif", (20000, 20000), 1, lambda p, s, c: write_tiff(p, s, c)),
    "rgb-png": ("photo.png", (4000, 6000), 3, write_image),
    "rgb-jpeg": ("photo.jpg", (4000, 6000), 3, write_image),
    "rgb-tiff": ("photo.tif", (4000, 6000), 3, lambda p, s, c: write_tiff(p, s, c, tile=512)),
    "deflate": (
        "deflate.tif",
        (10000, 10000),
        3,
        lambda p, s, c: write_tiff(p, s, c, tile=512, compression="deflate"),
    ),
    "lzw": (
        "lzw.tif",
        (10000, 10000),
        3,
        lambda p, s, c: write_tiff(p, s, c, tile=512, compression="lzw"),
    ),
    "jpeg-tiff": (
        "jpeg.tif",
        (10000, 10000),
        3,
        lambda p, s, c: write_tiff(p, s, c, tile=512, compression="jpeg"),
    ),
    "zarr": ("blosc.zarr", (10000, 10000), 3, write_zarr),
}


def output_name(case: str, tool: str) -> str:
    name = CASES[case][0]
    # Outputs keep their input's format, except zarr (OpenCV and libvips write TIFF)
    # and JPEG (written as PNG, so that the result can be checked: JPEG is lossy).
    suffix = {".zarr": ".tif", ".jpg": ".png"}.get(Path(name).suffix, Path(name).suffix)
    return f"out-{case}-{tool}{suffix}"


# --------------------------------------------------------------------------- the tools

VIPS = r"""
import sys, numpy as np, pyvips
src, dst, precision, r, sigma = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
x = np.arange(-r, r + 1, dtype=np.float64)
g = np.exp(-0.5 * (x / sigma) ** 2); g /= g.sum()
if src.endswith(".zarr"):
    import zarr
    im = pyvips.Image.new_from_array(np.asarray(zarr.open_array(src, mode="r")))
else:
    # sequential where the format allows the symmetric border's out-of-order reads;
    # PNG and JPEG decoders are strictly sequential, so vips decodes them whole first
    seq = src.lower().endswith((".tif", ".tiff"))
    im = pyvips.Image.new_from_file(src, access="sequential" if seq else "random")
w, h = im.width, im.height
# A symmetric border (vips "mirror" repeats the edge pixel: b a | a b), then convsep, then
# the centre: the same arithmetic as fftconv's symmetric boundary.
big = im.embed(r, r, w + 2 * r, h + 2 * r, extend="mirror")
mask = pyvips.Image.new_from_array(g.reshape(1, -1).tolist(), scale=1)
out = big.convsep(mask, precision=precision).crop(r, r, w, h)
if precision == "float":
    out = out.rint()  # cast alone truncates; "integer" rounds inside convsep
out = out.cast("uchar")
out.write_to_file(dst)
"""

OPENCV = r"""
import sys, numpy as np, cv2
src, dst, r, sigma = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
x = np.arange(-r, r + 1, dtype=np.float64)
g = np.exp(-0.5 * (x / sigma) ** 2); g /= g.sum()
if src.endswith(".zarr"):
    import zarr
    img = np.asarray(zarr.open_array(src, mode="r"))[..., ::-1]
else:
    img = cv2.imread(src, cv2.IMREAD_UNCHANGED)
out = cv2.sepFilter2D(img, cv2.CV_32F, g, g, borderType=cv2.BORDER_REFLECT)
out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
cv2.imwrite(dst, out)
"""


def command(tool: str, src: str, dst: str) -> list[str]:
    py = sys.executable
    if tool == "fftconv":
        return [
            py,  # `python -m fftconv`: the command as a user runs it
            "-m",
            "fftconv",
            "apply",
            src,
            dst,
            "--kernel",
            f"gaussian:sigma={SIGMA:g}",
            "--boundary",
            "symmetric",
            "--force",
            "--quiet",
        ]
    if tool.startswith("vips-"):
        return [py, "-c", VIPS, src, dst, tool[5:], str(RADIUS), str(SIGMA)]
    if tool == "opencv":
        return [py, "-c", OPENCV, src, dst, str(RADIUS), str(SIGMA)]
    raise ValueError(tool)


def timed(cmd, env) -> dict:
    """Wall seconds and peak RSS (bytes) of `cmd` as /usr/bin/time -v reports them."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        proc = subprocess.run(
            ["/usr/bin/time", "-v", "-o", tf.name] + cmd, env=env, capture_output=True, text=True
        )
        report = tf.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[:4]}... failed ({proc.returncode}): {proc.stderr[-2000:]}")
    m = re.search(
        r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", report
    )
    wall = int(m.group(1) or 0) * 3600 + int(m.group(2)) * 60 + float(m.group(3))
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", report).group(1)) * 1024
    cpu = sum(
        float(re.search(rf"{k} time \(seconds\): ([\d.]+)", report).group(1))
        for k in ("User", "System")
    )
    return dict(wall=wall, rss=rss, cpu=cpu)


# --------------------------------------------------------------------------- the reference


def _read(path):
    """The whole image (outputs and the smaller inputs), as rows x columns [x channels]."""
    p = str(path)
    if p.endswith(".zarr"):
        import zarr

        return np.asarray(zarr.open_array(p, mode="r"))
    if p.endswith((".tif", ".tiff")):
        import tifffile

        return tifffile.imread(p)
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None
    return np.asarray(Image.open(p))


def _opened(path):
    """A sliceable view of an input without loading it (tiled TIFFs through zarr)."""
    p = str(path)
    if p.endswith(".zarr"):
        import zarr

        return zarr.open_array(p, mode="r")
    if p.endswith((".tif", ".tiff")):
        import tifffile
        import zarr

        return zarr.open_array(tifffile.imread(p, aszarr=True), mode="r")
    return _read(p)


def reference_bands(src_path, rows: int = 1024):
    """(row slice, float64 reference band) over the image: direct float64 summation of the
    separable Gaussian on the symmetrically padded image, in bands of `rows`."""
    from scipy.ndimage import correlate1d

    src = _opened(src_path)
    h = src.shape[0]
    g = taps()
    for y in range(0, h, rows):
        y1 = min(h, y + rows)
        idx = np.arange(y - RADIUS, y1 + RADIUS)
        idx = np.where(idx < 0, -idx - 1, idx)
        idx = np.where(idx >= h, 2 * h - idx - 1, idx)
        lo, hi = idx.min(), idx.max() + 1
        block = np.asarray(src[lo:hi]).astype(np.float64)[idx - lo]
        block = correlate1d(block, g, axis=1, mode="reflect")  # reflect = symmetric here
        band = correlate1d(block, g, axis=0, mode="constant")[RADIUS : RADIUS + y1 - y]
        yield slice(y, y1), band


def compare(src_path, outputs: dict) -> dict:
    """For each tool: max |out - round(ref)|, pixels that differ, and how many of those sit
    at a tie (ref within 1e-3 of n + 0.5), against one pass over the reference."""
    arrays = {t: _read(p) for t, p in outputs.items()}
    stats = {t: dict(max_diff=0, differ=0, at_ties=0) for t in outputs}
    for rows, ref in reference_bands(src_path):
        want = np.clip(np.rint(ref), 0, 255)
        tie = np.abs(ref - np.floor(ref) - 0.5) < 1e-3
        for t, arr in arrays.items():
            got = arr[rows].astype(np.float64)
            if got.shape != want.shape:  # e.g. vips writing grey+alpha or dropping a channel
                stats[t]["max_diff"] = float("nan")
                continue
            bad = got != want
            s = stats[t]
            s["max_diff"] = max(s["max_diff"], int(np.abs(got - want).max()))
            s["differ"] += int(bad.sum())
            s["at_ties"] += int((bad & tie).sum())
    return stats


# --------------------------------------------------------------------------- the table


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", default="/tmp/stream-bench")
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--tools", default="fftconv,vips-integer,vips-float,opencv")
    ap.add_argument("--repeat", type=int, default=3, help="runs per tool, interleaved; median")
    ap.add_argument(
        "--no-check", action="store_true", help="skip the comparison with the reference"
    )
    ap.add_argument("--keep", action="store_true", help="keep the files (default: delete them)")
    ap.add_argument("--json", default=None)
    ap.add_argument(
        "--warmup",
        default="fftconv",
        help="tools run once, untimed, before the timed runs of each case (comma-separated; "
        "'' for none): fftconv's first command on a machine compiles its engine",
    )
    args = ap.parse_args(argv)
    d = Path(args.dir)
    d.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    tools = args.tools.split(",")
    print(f"# {machine()}")
    print(
        "| case | input | tool | wall s | Mpixel/s | CPU s | peak RSS GB | max diff | "
        "differ (at ties) |"
    )
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    rows = []
    try:
        for case in args.cases.split(","):
            name, shape, channels, writer = CASES[case]
            src = d / name
            if not src.exists():
                writer(str(src), shape, channels)
            pixels = shape[0] * shape[1]
            runs = {t: [] for t in tools}
            for t in [t for t in args.warmup.split(",") if t in tools]:
                timed(command(t, str(src), str(d / output_name(case, t))), env)
            for _ in range(args.repeat):
                for t in tools:  # interleaved: A B C A B C
                    runs[t].append(timed(command(t, str(src), str(d / output_name(case, t))), env))
            stats = (
                {} if args.no_check else compare(src, {t: d / output_name(case, t) for t in tools})
            )
            for t in tools:
                wall = float(np.median([r["wall"] for r in runs[t]]))
                rss = float(np.median([r["rss"] for r in runs[t]]))
                cpu = float(np.median([r["cpu"] for r in runs[t]]))
                s = stats.get(t, {})
                row = dict(
                    case=case,
                    input=f"{shape[0]}x{shape[1]}x{channels} {src.suffix}",
                    tool=t,
                    wall=wall,
                    mpix=pixels / wall / 1e6,
                    rss=rss,
                    cpu=cpu,
                    walls=[r["wall"] for r in runs[t]],
                    **s,
                )
                rows.append(row)
                diff = f"{s['max_diff']} | {s['differ']} ({s['at_ties']})" if s else "- | -"
                print(
                    f"| {case} | {row['input']} | {t} | {wall:.2f} | {row['mpix']:.0f} | "
                    f"{cpu:.2f} | {rss / 1e9:.2f} | {diff} |",
                    flush=True,
                )
            for t in tools:
                (d / output_name(case, t)).unlink(missing_ok=True)
    finally:
        if not args.keep:
            shutil.rmtree(d, ignore_errors=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
