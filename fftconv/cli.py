"""The ``fftconv`` command.

Exit codes: 0 done; 2 bad arguments (unknown kernel, missing input, output
exists, unwritable directory, budget too small, ...), with a one-line message;
1 a failure while running (disk full, out of memory); 130 interrupted (Ctrl-C);
143 terminated (SIGTERM). Whatever the exit, OUT is either complete or absent
(or, with --force, the previous file): results go to a temporary file beside
it that is renamed only when complete.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time

import numpy as np

_KERNEL_HELP = (
    "the kernel: NAME[:ARGS] or a .npy file. Names: gaussian:sigma=S[,truncate=T], box:N, "
    "laplace, sharpen, emboss, sobel-x, sobel-y, scharr-x, scharr-y, scharr (complex: "
    "writes the gradient magnitude), disk:radius=R, motion:length=L,angle=DEG, ripple"
)

_EPILOG_APPLY = """\
examples:
  fftconv apply photo.jpg blurred.jpg --kernel gaussian:sigma=8
  fftconv apply scan.tif edges.tif --kernel scharr --dtype float32 --max-memory 1GB
  fftconv apply huge.tif out.zarr --kernel box:31 --boundary nearest --force

uint8 and uint16 images are computed in float32 and written back in their own
dtype, rounded and clipped (--dtype float32 keeps negative edge responses).
The RGB channels of colour images are filtered independently; an alpha
channel is copied unchanged. IN is never modified; OUT appears only when
complete, and an existing OUT is replaced only with --force."""


class _Usage(Exception):
    """A bad argument: exit 2 with a one-line message."""


def _dtype_arg(text: str) -> str:
    allowed = ("same", "uint8", "uint16", "float32", "float64")
    if text not in allowed:
        raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(allowed)}")
    return text


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1; got {v}")
    return v


def _memory_arg(text: str) -> int:
    from .tiles import parse_memory

    try:
        return parse_memory(text)
    except (ValueError, TypeError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kernel", "-k", required=True, metavar="SPEC", help=_KERNEL_HELP)
    p.add_argument("--mode", default="same", choices=("same", "full", "valid"),
                   help="output size: same as IN (default), full or valid")
    p.add_argument("--boundary", default="symmetric",
                   help="padding at the image's edges: symmetric (default), mirror, nearest, "
                        "wrap or fill (with --fillvalue)")
    p.add_argument("--fillvalue", type=float, default=0.0, help="padding value for --boundary fill")
    p.add_argument("--method", default="auto", choices=("auto", "fft", "direct"),
                   help="method per tile (auto: the cheaper for the tile and kernel)")
    p.add_argument("--max-memory", type=_memory_arg, default="2GB", metavar="SIZE",
                   help="peak resident memory of the whole run, e.g. 2GB (default), 500MB, 1.5GiB")
    p.add_argument("--threads", type=_positive_int, default=None, metavar="N",
                   help="threads (default: all cores)")
    p.add_argument("--correlate", action="store_true", help="cross-correlate instead of convolve")
    p.add_argument("--max-pixels", type=_positive_int, default=None, metavar="N",
                   help="allow PNG/JPEG inputs with up to N pixels (default 178956970: a "
                        "guard against decompression bombs)")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fftconv",
        description="Fast, exact convolution of images of any size, within a memory budget.",
        epilog="Run 'fftconv COMMAND --help' for a command's options.",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    apply = sub.add_parser(
        "apply", help="convolve an image file with a kernel and write the result",
        description="Convolve (or correlate) image IN with a kernel and write OUT. Images "
                    "larger than memory run tile by tile within --max-memory.",
        epilog=_EPILOG_APPLY, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    apply.add_argument("input", metavar="IN", help="input image: .png .jpg .tif .npy .zarr")
    apply.add_argument("output", metavar="OUT", help="output image: .png .jpg .tif .npy .zarr")
    _add_run_options(apply)
    apply.add_argument("--dtype", type=_dtype_arg, default="same",
                       help="output dtype: same (as IN; default), uint8, uint16, float32, float64")
    apply.add_argument("--force", "-f", action="store_true", help="replace OUT if it exists")
    apply.add_argument("--quiet", "-q", action="store_true", help="no progress bar or summary")

    plan = sub.add_parser(
        "plan", help="print how 'apply' would run (tiles, method, memory) without running it",
        description="Print the plan 'fftconv apply' would follow for image IN (a file, or a "
                    "shape such as 65536x65536 or 4000x6000x3) and a kernel.",
    )
    plan.add_argument("input", metavar="IN", help="image file, or a shape ROWSxCOLS[xCHANNELS]")
    plan.add_argument("--in-dtype", default="uint8",
                      help="dtype of IN when IN is a shape (default uint8)")
    _add_run_options(plan)
    plan.add_argument("--dtype", type=_dtype_arg, default="same", help="output dtype (as apply)")

    cal = sub.add_parser(
        "calibrate", help="measure this machine's cost constants for the planner (seconds; at most ~20)",
        description="Time FFTW transforms, memory copies, the direct and separable kernels and "
                    "overlap-add blocks on this machine, fit the planner's cost model and save "
                    "it to the cache directory ($FFTCONV_CACHE_DIR or the user cache).",
    )
    cal.add_argument("--no-save", action="store_true", help="measure and print, save nothing")

    demo = sub.add_parser(
        "demo", help="blur, edge-detect and sharpen a generated photo; print plans and timings",
        description="Generate a photo-like RGB image, write it as PNG, run a Gaussian blur, a "
                    "Scharr edge detection and a sharpen through 'apply', write the results, "
                    "and time fftconv against scipy.signal.fftconvolve in memory.",
    )
    demo.add_argument("--size", type=int, default=4096, help="image side in pixels (4096)")
    demo.add_argument("--out", metavar="DIR", default=None,
                      help="write the images here (default: a new temporary directory)")
    demo.add_argument("--threads", type=_positive_int, default=None, help="threads (all cores)")
    demo.add_argument("--max-memory", type=_memory_arg, default="2GB", metavar="SIZE",
                      help="memory budget of the file runs (2GB)")
    demo.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    return p


# --------------------------------------------------------------------------- helpers


def _rss() -> int:
    """This process's resident memory now, bytes."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _kernel(spec: str) -> np.ndarray:
    from .kernels import parse_spec

    try:
        return parse_spec(spec)
    except (ValueError, TypeError) as exc:
        raise _Usage(str(exc)) from None


def _channel_kernel(kernel: np.ndarray, channels: int, correlate: bool) -> np.ndarray:
    """One kernel per channel: `kernel` for the colour channels, the identity for an
    alpha channel (the last of 2 or 4), so transparency is kept as it is."""
    delta = np.zeros(kernel.shape, kernel.dtype)
    centre = tuple((k // 2) if correlate else (k - 1) // 2 for k in kernel.shape)
    delta[centre] = 1
    ks = [kernel] * (channels - 1) + [delta]
    return np.stack(ks, axis=-1)


def _out_dtype(choice: str, in_dtype: np.dtype, compute) -> np.dtype:
    if choice != "same":
        return np.dtype(choice)
    if in_dtype.kind in "u" and in_dtype.itemsize <= 2:
        return in_dtype
    return np.dtype(compute).type(0).real.dtype if np.dtype(compute).kind == "c" else compute


class _Job:
    """Everything `apply` and `plan` decide before touching pixels."""

    def __init__(self, shape, in_dtype, kernel, args):
        from ._problem import make_problem, normalize_threads
        from .tiles import _dummy, compute_dtype

        self.shape = tuple(shape)
        self.in_dtype = np.dtype(in_dtype)
        if len(self.shape) not in (2, 3):
            raise _Usage(f"input has shape {self.shape}; expected a 2-d grey or 3-d colour image")
        if kernel.ndim != 2:
            raise _Usage(f"kernel has shape {kernel.shape}; a kernel must be 2-d")
        channels = self.shape[2] if len(self.shape) == 3 else 0
        self.complex = kernel.dtype.kind == "c"
        req = None if args.dtype == "same" else np.dtype(args.dtype)
        self.compute = compute_dtype(self.in_dtype, kernel.dtype, req)
        k = kernel.astype(self.compute)
        if channels in (2, 4):
            k = _channel_kernel(k, channels, args.correlate)
        self.kernel = k
        self.channel_axis = -1 if channels else None
        try:
            self.problem, _, self.k = make_problem(
                _dummy(self.shape, self.compute), k, args.mode, args.boundary, args.fillvalue,
                None, self.channel_axis, args.correlate)
        except (ValueError, TypeError) as exc:
            raise _Usage(str(exc)) from None
        if self.problem.swapped:
            raise _Usage(f"--mode valid needs an image at least as large as the kernel; got "
                         f"image {self.shape} and kernel {kernel.shape}")
        self.out_dtype = _out_dtype(args.dtype, self.in_dtype, self.compute)
        self.threads = normalize_threads(args.threads)
        self.method = args.method

    def plan(self, budget: int):
        from .tiles import plan_tiles

        try:
            return plan_tiles(self.problem, max_memory=budget, threads=self.threads,
                              method=self.method, src_itemsize=self.in_dtype.itemsize,
                              out_itemsize=self.out_dtype.itemsize, kernel=self.k)
        except ValueError as exc:
            raise _Usage(str(exc)) from None


def _budget(total: int, in_memory: int) -> int:
    """The working-memory budget left of `total` once this process's own resident
    memory (interpreter, libraries, images decoded in memory) is counted."""
    left = total - _rss() - in_memory
    if left <= 0:
        raise _Usage(
            f"--max-memory {total / 1e6:.0f}MB is too small: the process already uses "
            f"{(_rss() + in_memory) / 1e6:.0f}MB before computing"
        )
    return left


def apply_file(inp: str, out: str, args) -> dict:
    """Run `apply` and return what it did (for the demo's report)."""
    from . import io
    from .tiles import run_tiled

    kernel = _kernel(args.kernel)
    if os.path.exists(out) and os.path.exists(inp) and os.path.samefile(inp, out):
        raise _Usage(f"OUT {out!r} is IN: fftconv never modifies its input; choose another OUT")
    max_pixels = args.max_pixels if args.max_pixels is not None else io.DEFAULT_MAX_PIXELS
    try:
        src = io.open_image(inp, max_pixels=max_pixels)
    except (FileNotFoundError, ValueError, ImportError) as exc:
        raise _Usage(str(exc)) from None
    job = _Job(src.shape, src.dtype, kernel, args)
    shape = job.problem.out_shape
    # PNG and JPEG results are held in memory until they are encoded.
    encoded = str(out).lower().endswith((".png", ".jpg", ".jpeg"))
    in_memory = int(np.prod(shape)) * job.out_dtype.itemsize if encoded else 0
    plan = job.plan(_budget(args.max_memory, in_memory))
    # zarr chunks of one tile each: every tile writes whole chunks, in parallel.
    chunks = tuple(plan.tile) + tuple(shape[2:])
    try:
        dst = io.create_output(out, shape, job.out_dtype, force=args.force, chunks=chunks)
    except (OSError, ValueError) as exc:
        raise _Usage(str(exc)) from None
    with dst:
        t0 = time.perf_counter()
        run_tiled(job.problem, src, job.k, dst.array, max_memory=plan.budget,
                  threads=job.threads, method=job.method, tile=plan.tile,
                  progress=not getattr(args, "quiet", False), magnitude=job.complex)
        dst.commit()
        seconds = time.perf_counter() - t0
    pixels = int(np.prod(job.problem.out_shape[:2]))
    return dict(plan=plan, seconds=seconds, pixels=pixels, shape=job.problem.out_shape,
                dtype=job.out_dtype, complex=job.complex)


def _cmd_apply(args) -> int:
    res = apply_file(args.input, args.output, args)
    if not args.quiet:
        note = " (modulus of the complex result)" if res["complex"] else ""
        print(f"fftconv: wrote {args.output}: {'x'.join(map(str, res['shape']))} "
              f"{res['dtype']}{note} in {res['seconds']:.2f} s "
              f"({res['pixels'] / res['seconds'] / 1e6:.1f} Mpixel/s, "
              f"{res['plan'].tiles} tile(s))")
    return 0


def _parse_shape(text: str):
    parts = text.lower().split("x")
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        return None
    return shape if len(shape) in (2, 3) and all(s > 0 for s in shape) else None


def _cmd_plan(args) -> int:
    from . import io

    kernel = _kernel(args.kernel)
    shape = _parse_shape(args.input)
    if shape is not None:
        try:
            in_dtype = np.dtype(args.in_dtype)
        except TypeError:
            raise _Usage(f"--in-dtype {args.in_dtype!r} is not a dtype") from None
        where = "shape"
    else:
        max_pixels = args.max_pixels if args.max_pixels is not None else io.DEFAULT_MAX_PIXELS
        try:
            shape, in_dtype = io.probe(args.input, max_pixels=max_pixels)
        except (FileNotFoundError, ValueError, ImportError) as exc:
            raise _Usage(str(exc)) from None
        where = args.input
    job = _Job(shape, in_dtype, kernel, args)
    in_memory = int(np.prod(shape)) * in_dtype.itemsize if str(where).lower().endswith(
        (".png", ".jpg", ".jpeg")) else 0
    plan = job.plan(_budget(args.max_memory, in_memory))
    print(f"input   {where}: {'x'.join(map(str, shape))} {in_dtype}")
    print(f"kernel  {args.kernel}: {'x'.join(map(str, kernel.shape))} {kernel.dtype}, "
          f"{'correlate' if args.correlate else 'convolve'}, mode {args.mode}, boundary "
          f"{job.problem.boundary}; computed in {job.compute}, written as {job.out_dtype}")
    print(plan)
    print(f"\nhow one {'x'.join(map(str, plan.tile))} tile is computed:")
    print(plan.tile_plan)
    return 0


def _cmd_calibrate(args) -> int:
    import time

    from .planner import calibrate, profile_path

    t0 = time.perf_counter()
    m = calibrate(save=not args.no_save)
    print(f"fftconv calibrate: measured in {time.perf_counter() - t0:.1f} s; every constant "
          "the planner uses:")
    print("  " + m.describe().replace("\n", "\n  "))
    if not args.no_save:
        print(f"saved to {profile_path()}")
    return 0


def _cmd_demo(args) -> int:
    from . import _demo

    if args.size < 16:
        raise _Usage(f"--size must be >= 16; got {args.size}")
    _demo.run(args.size, args.out, args.threads, max_memory=args.max_memory, quiet=args.quiet)
    return 0


def _on_sigterm(signum, frame):
    # Unwind like Ctrl-C so that temporary files are removed on the way out.
    raise SystemExit(128 + signum)


def _interrupted(command: str, code: int) -> int:
    print(f"fftconv {command}: interrupted; no output written", file=sys.stderr)
    if threading.active_count() > 1:
        # Tiles still computing in worker threads would hold the exit until they
        # finish; the output's temporary file is already removed, so leave now.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["demo"])
    try:
        signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread
        pass
    commands = {"apply": _cmd_apply, "plan": _cmd_plan, "demo": _cmd_demo,
                "calibrate": _cmd_calibrate}
    try:
        return commands[args.command](args)
    except _Usage as exc:
        print(f"fftconv {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return _interrupted(args.command, 130)
    except SystemExit as exc:
        if exc.code == 128 + signal.SIGTERM:
            return _interrupted(args.command, exc.code)
        raise
    except MemoryError:
        print(f"fftconv {args.command}: error: out of memory; lower --max-memory or "
              "--threads", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"fftconv {args.command}: error: {exc}", file=sys.stderr)
        return 1
