"""The ``fftconv`` command.

Exit codes: 0 done; 2 bad arguments (unknown kernel, missing input, output
exists, unwritable directory, budget too small, ...), with a one-line message;
1 a failure while running (disk full, out of memory, an input that cannot be
decoded half way; FFTCONV_DEBUG=1 shows the traceback); 130 interrupted (Ctrl-C);
143 terminated (SIGTERM); 129 hung up (SIGHUP: the terminal closed). Whatever
the exit, OUT is either complete or absent (or, with --force, the previous
file): results go to a temporary file beside it that is renamed only when
complete. A process killed with SIGKILL cannot remove that file; the next run
writing to the same directory, or ``fftconv clean DIR``, does.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import warnings

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
    from ._units import parse_memory

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
                   help="allow inputs with up to N pixels (default 178956970 for PNG/JPEG, a "
                        "guard against decompression bombs; 1e11 for .npy, TIFF and zarr, "
                        "whose headers may claim any size)")


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors in one line like the command's own."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
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
    apply.add_argument("--profile", action="store_true",
                       help="print the time spent reading/decoding, computing, encoding/writing "
                            "and waiting, and each stage's throughput")
    apply.add_argument("--dask", metavar="SCHEDULER", default=None,
                       help="run on Dask: a scheduler address (tcp://host:8786) or 'local'; IN "
                            ".zarr or .tif, OUT .zarr (fftconv.dask.convolve_file)")

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

    clean = sub.add_parser(
        "clean", help="remove temporary files that killed 'apply' runs left in directories",
        description="Remove the temporary outputs (.NAME.PID@HOST....fftconv-tmp...) that "
                    "'fftconv apply' runs killed with SIGKILL (or a crash) left in DIR: only "
                    "this user's, and only those whose process no longer runs on this host. "
                    "A run writing into DIR does this too.",
    )
    clean.add_argument("dirs", metavar="DIR", nargs="+", help="directories to clean")
    clean.add_argument("--older-than", type=float, default=None, metavar="HOURS",
                       help="also remove temporary files of older fftconv versions (their "
                            "names hold no process id) not modified for HOURS hours")

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


# --------------------------------------------------------------------------- commands


def _run_options(args) -> dict:
    """The options `apply` and `plan` share, as `fftconv.jobs` keywords."""
    return dict(mode=args.mode, boundary=args.boundary, fillvalue=args.fillvalue,
                correlate=args.correlate, method=args.method, threads=args.threads,
                dtype=args.dtype)


def _apply_dask(args) -> dict:
    import warnings

    from .jobs import JobError

    try:
        from .dask import ChunkWarning, convolve_file
    except ImportError as exc:
        raise JobError(f"--dask needs Dask ({exc}): pip install 'fftconv[dask]'") from None
    warnings.simplefilter("ignore", ChunkWarning)  # the command prints one line
    try:
        return convolve_file(args.input, args.output, args.kernel, **_run_options(args),
                             force=args.force, scheduler=args.dask)
    except (FileNotFoundError, FileExistsError, ValueError, TypeError) as exc:
        raise JobError(str(exc)) from None


def _cmd_apply(args) -> int:
    if args.dask is not None:
        res = _apply_dask(args)
        if not args.quiet:
            print(f"fftconv: wrote {args.output}: {'x'.join(map(str, res['shape']))} "
                  f"{res['dtype']} in {res['seconds']:.2f} s on Dask ({args.dask}), chunks "
                  f"{'x'.join(map(str, res['chunks']))}")
        return 0
    from .jobs import convolve_file

    res = convolve_file(args.input, args.output, args.kernel, **_run_options(args),
                        max_memory=args.max_memory, force=args.force,
                        progress=not args.quiet, max_pixels=args.max_pixels)
    if not args.quiet:
        note = " (modulus of the complex result)" if res["complex"] else ""
        print(f"fftconv: wrote {args.output}: {'x'.join(map(str, res['shape']))} "
              f"{res['dtype']}{note} in {res['seconds']:.2f} s "
              f"({res['pixels'] / res['seconds'] / 1e6:.1f} Mpixel/s, "
              f"{res['plan'].tiles} {'band' if res['plan'].method == 'stream' else 'tile'}"
              "(s))")
    if args.profile:
        print("\n".join(res["profile"].lines()))
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
    from .jobs import FileJob, JobError, as_kernel, stream_plan

    kernel = as_kernel(args.kernel, max_bytes=args.max_memory / 4)
    shape = _parse_shape(args.input)
    if shape is not None:
        try:
            in_dtype = np.dtype(args.in_dtype)
        except TypeError:
            raise JobError(f"--in-dtype {args.in_dtype!r} is not a dtype") from None
        where = "shape"
    else:
        given = args.max_pixels is not None
        try:
            shape, in_dtype = io.probe(
                args.input, max_pixels=args.max_pixels if given else io.DEFAULT_MAX_PIXELS,
                max_stored_pixels=args.max_pixels if given else io.DEFAULT_MAX_STORED_PIXELS)
        except (FileNotFoundError, ValueError, ImportError) as exc:
            raise JobError(str(exc)) from None
        where = args.input
    job = FileJob(shape, in_dtype, kernel, **_run_options(args))
    in_memory = int(np.prod(shape)) * in_dtype.itemsize if str(where).lower().endswith(
        (".png", ".jpg", ".jpeg")) else 0
    plan = job.plan(args.max_memory, in_memory)
    print(f"input   {where}: {'x'.join(map(str, shape))} {in_dtype}")
    print(f"kernel  {args.kernel}: {'x'.join(map(str, kernel.shape))} {kernel.dtype}, "
          f"{'correlate' if args.correlate else 'convolve'}, mode {args.mode}, boundary "
          f"{job.problem.boundary}; computed in {job.compute}, written as {job.out_dtype}")
    opts = _run_options(args)
    streams = opts.pop("method") == "auto" and stream_plan(shape, in_dtype, kernel, **opts)
    if streams:
        kh, kw = kernel.shape
        print(f"apply streams this job: a separable kernel ({kh} + {kw} taps) in bands of rows "
              f"on {streams.threads} compute thread(s), no tiles (docs/huge_photos.md); "
              "with --method fft or direct it would run in tiles:")
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
    from .jobs import JobError

    if args.size < 16:
        raise JobError(f"--size must be >= 16; got {args.size}")
    _demo.run(args.size, args.out, args.threads, max_memory=args.max_memory, quiet=args.quiet)
    return 0


def _cmd_clean(args) -> int:
    from . import io
    from .jobs import JobError

    for d in args.dirs:
        if not os.path.isdir(d):
            raise JobError(f"{d!r} is not a directory")
    if args.older_than is not None and not args.older_than >= 0:
        raise JobError(f"--older-than must be a number of hours >= 0; got {args.older_than}")
    older = None if args.older_than is None else args.older_than * 3600
    removed = [p for d in args.dirs for p in io.remove_stale_temps(d, older_than=older)]
    for p in removed:
        print(f"removed {p}")
    print(f"fftconv clean: removed {len(removed)} stale temporary file(s)")
    return 0


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    print(f"fftconv: warning: {message}", file=sys.stderr if file is None else file)


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
    # SIGHUP (the terminal closed) and SIGTERM unwind like Ctrl-C: temporary files go.
    for name in ("SIGTERM", "SIGHUP"):
        try:
            signal.signal(getattr(signal, name), _on_sigterm)
        except (ValueError, AttributeError):  # not the main thread, or no such signal
            pass
    commands = {"apply": _cmd_apply, "plan": _cmd_plan, "demo": _cmd_demo,
                "calibrate": _cmd_calibrate, "clean": _cmd_clean}
    from .jobs import JobError

    try:
        with warnings.catch_warnings():
            # A warning (a broken cache file, ...) is one line, as errors are.
            warnings.showwarning = _one_line_warning
            return commands[args.command](args)
    except JobError as exc:
        print(f"fftconv {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return _interrupted(args.command, 130)
    except SystemExit as exc:
        hangup = 128 + getattr(signal, "SIGHUP", signal.SIGTERM)
        if exc.code in (128 + signal.SIGTERM, hangup):
            return _interrupted(args.command, exc.code)
        raise
    except MemoryError:
        print(f"fftconv {args.command}: error: out of memory; lower --max-memory or "
              "--threads", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"fftconv {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - a decoder's error half way (corrupt tiles), ...
        if os.environ.get("FFTCONV_DEBUG"):
            raise
        what = " ".join(str(exc).split())[:300] or "no message"
        print(f"fftconv {args.command}: error: {type(exc).__name__}: {what} (FFTCONV_DEBUG=1 "
              "shows where)", file=sys.stderr)
        return 1
