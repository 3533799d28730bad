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
import gc
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
  fftconv apply photos/ extra/*.jpg --out-dir blurred/ --kernel gaussian:sigma=3

uint8 and uint16 images are computed in float32 and written back in their own
dtype, rounded and clipped (--dtype float32 keeps negative edge responses).
The RGB channels of colour images are filtered independently; an alpha
channel is copied unchanged. IN is never modified; OUT appears only when
complete, and an existing OUT is replaced only with --force. With --out-dir,
every input is planned once per shape and kernel in one process, one progress
bar counts the files, and a file that fails is reported with its reason while
the others go on (exit status 2 if any failed)."""


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
    p.add_argument(
        "--mode",
        default="same",
        choices=("same", "full", "valid"),
        help="output size: same as IN (default), full or valid",
    )
    p.add_argument(
        "--boundary",
        default="symmetric",
        help="padding at the image's edges: symmetric (default), mirror, nearest, "
        "wrap or fill (with --fillvalue)",
    )
    p.add_argument("--fillvalue", type=float, default=0.0, help="padding value for --boundary fill")
    p.add_argument(
        "--method",
        default="auto",
        choices=("auto", "fft", "direct"),
        help="method per tile (auto: the cheaper for the tile and kernel)",
    )
    p.add_argument(
        "--max-memory",
        type=_memory_arg,
        default="2GB",
        metavar="SIZE",
        help="peak resident memory of the whole run, e.g. 2GB (default), 500MB, 1.5GiB",
    )
    p.add_argument(
        "--threads",
        type=_positive_int,
        default=None,
        metavar="N",
        help="threads (default: all cores)",
    )
    p.add_argument("--correlate", action="store_true", help="cross-correlate instead of convolve")
    p.add_argument(
        "--max-pixels",
        type=_positive_int,
        default=None,
        metavar="N",
        help="allow inputs with up to N pixels (default 178956970 for PNG/JPEG, a "
        "guard against decompression bombs; 1e11 for .npy, TIFF and zarr, "
        "whose headers may claim any size)",
    )


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
        "apply",
        help="convolve an image file with a kernel and write the result",
        description="Convolve (or correlate) image IN with a kernel and write OUT. Images "
        "larger than memory run tile by tile within --max-memory.",
        epilog=_EPILOG_APPLY,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    apply.add_argument(
        "paths",
        metavar="IN",
        nargs="+",
        help="IN OUT (one image: .png .jpg .tif .npy .zarr), or with --out-dir "
        "any number of inputs: files, directories, glob patterns",
    )
    apply.add_argument(
        "--out-dir",
        metavar="DIR",
        default=None,
        help="write one output per input into DIR, named as the input",
    )
    _add_run_options(apply)
    apply.add_argument(
        "--dtype",
        type=_dtype_arg,
        default="same",
        help="output dtype: same (as IN; default), uint8, uint16, float32, float64",
    )
    apply.add_argument("--force", "-f", action="store_true", help="replace OUT if it exists")
    apply.add_argument("--quiet", "-q", action="store_true", help="no progress bar or summary")
    apply.add_argument(
        "--profile",
        action="store_true",
        help="print the time spent reading/decoding, computing, encoding/writing "
        "and waiting, and each stage's throughput",
    )
    apply.add_argument(
        "--dask",
        metavar="SCHEDULER",
        default=None,
        help="run on Dask: a scheduler address (tcp://host:8786) or 'local'; IN "
        ".zarr or .tif, OUT .zarr (fftconv.dask.convolve_file)",
    )

    plan = sub.add_parser(
        "plan",
        help="print how 'apply' would run (tiles, method, memory) without running it",
        description="Print the plan 'fftconv apply' would follow for image IN (a file, or a "
        "shape such as 65536x65536 or 4000x6000x3) and a kernel.",
    )
    plan.add_argument("input", metavar="IN", help="image file, or a shape ROWSxCOLS[xCHANNELS]")
    plan.add_argument(
        "--in-dtype", default="uint8", help="dtype of IN when IN is a shape (default uint8)"
    )
    _add_run_options(plan)
    plan.add_argument("--dtype", type=_dtype_arg, default="same", help="output dtype (as apply)")

    cal = sub.add_parser(
        "calibrate",
        help="measure this machine's cost constants for the planner (seconds; at most ~20)",
        description="Time FFTW transforms, memory copies, the direct and separable kernels and "
        "overlap-add blocks on this machine, fit the planner's cost model and save "
        "it to the cache directory ($FFTCONV_CACHE_DIR or the user cache).",
    )
    cal.add_argument("--no-save", action="store_true", help="measure and print, save nothing")

    clean = sub.add_parser(
        "clean",
        help="remove temporary files that killed 'apply' runs left in directories",
        description="Remove the temporary outputs (.NAME.PID@HOST....fftconv-tmp...) that "
        "'fftconv apply' runs killed with SIGKILL (or a crash) left in DIR: only "
        "this user's, and only those whose process no longer runs on this host. "
        "A run writing into DIR does this too.",
    )
    clean.add_argument("dirs", metavar="DIR", nargs="+", help="directories to clean")
    clean.add_argument(
        "--older-than",
        type=float,
        default=None,
        metavar="HOURS",
        help="also remove temporary files of older fftconv versions (their "
        "names hold no process id) not modified for HOURS hours",
    )

    pre = sub.add_parser(
        "precompile",
        help="compile the compiled (numba) kernels ahead of time (minutes, once)",
        description="Compile every numba kernel fftconv uses (grey and channels-last images, "
        "shared and per-channel kernels, separable passes, integer outputs) into "
        "numba's on-disk cache, so that no later call compiles; then compile the row "
        "kernels ahead of time into an extension module in fftconv's cache directory, "
        "so that a fresh process runs them without importing numba.",
    )
    pre.add_argument(
        "--dtypes",
        nargs="+",
        default=["float32", "float64"],
        choices=["float32", "float64"],
        help="compute dtypes (both)",
    )
    pre.add_argument(
        "--channels",
        nargs="+",
        type=int,
        default=[1, 3, 4],
        choices=[1, 2, 3, 4],
        help="samples per pixel (1 3 4)",
    )
    pre.add_argument(
        "--no-aot",
        action="store_true",
        help="only numba's cache: no ahead-of-time module (minutes less) and no stream "
        "engine library (the first streaming 'fftconv apply' builds it)",
    )
    pre.add_argument(
        "--no-calibrate",
        action="store_true",
        help="keep the planner's constants as they are (by default they are measured "
        "for this machine afterwards, as 'fftconv calibrate' does: seconds)",
    )

    demo = sub.add_parser(
        "demo",
        help="blur, edge-detect and sharpen a generated photo; print plans and timings",
        description="Generate a photo-like RGB image, write it as PNG, run a Gaussian blur, a "
        "Scharr edge detection and a sharpen through 'apply', write the results, "
        "and time fftconv against scipy.signal.fftconvolve in memory.",
    )
    demo.add_argument("--size", type=int, default=4096, help="image side in pixels (4096)")
    demo.add_argument(
        "--out",
        metavar="DIR",
        default=None,
        help="write the images here (default: a new temporary directory)",
    )
    demo.add_argument("--threads", type=_positive_int, default=None, help="threads (all cores)")
    demo.add_argument(
        "--max-memory",
        type=_memory_arg,
        default="2GB",
        metavar="SIZE",
        help="memory budget of the file runs (2GB)",
    )
    demo.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    return p


# --------------------------------------------------------------------------- commands


def _run_options(args) -> dict:
    """The options `apply` and `plan` share, as `fftconv.jobs` keywords."""
    return dict(
        mode=args.mode,
        boundary=args.boundary,
        fillvalue=args.fillvalue,
        correlate=args.correlate,
        method=args.method,
        threads=args.threads,
        dtype=args.dtype,
    )


def _apply_dask(args, src, dst) -> dict:
    import warnings

    from .jobs import JobError

    try:
        from .dask import ChunkWarning, convolve_file
    except ImportError as exc:
        raise JobError(f"--dask needs Dask ({exc}): pip install 'fftconv[dask]'") from None
    warnings.simplefilter("ignore", ChunkWarning)  # the command prints one line
    try:
        return convolve_file(
            src, dst, args.kernel, **_run_options(args), force=args.force, scheduler=args.dask
        )
    except (FileNotFoundError, FileExistsError, ValueError, TypeError) as exc:
        raise JobError(str(exc)) from None


def _cmd_apply(args) -> int:
    from .jobs import JobError, convolve_file

    if args.out_dir is not None:
        return _apply_many(args)
    if len(args.paths) != 2:
        raise JobError(
            f"apply takes IN and OUT (or inputs with --out-dir DIR); got "
            f"{len(args.paths)} path(s): {' '.join(args.paths)}"
        )
    src, dst = args.paths
    if args.dask is not None:
        res = _apply_dask(args, src, dst)
        if not args.quiet:
            print(
                f"fftconv: wrote {dst}: {'x'.join(map(str, res['shape']))} "
                f"{res['dtype']} in {res['seconds']:.2f} s on Dask ({args.dask}), chunks "
                f"{'x'.join(map(str, res['chunks']))}"
            )
        return 0
    res = convolve_file(
        src,
        dst,
        args.kernel,
        **_run_options(args),
        max_memory=args.max_memory,
        force=args.force,
        progress=not args.quiet,
        max_pixels=args.max_pixels,
    )
    if not args.quiet:
        print(_wrote(dst, res))
    if args.profile:
        print("\n".join(res["profile"].lines()))
    _build_library(res)
    return 0


def _build_library(res) -> None:
    """After a stream that ran on numba's engine, write its shared library, so that
    the next command on this machine starts without importing numba (seconds,
    once per dtype pair; see fftconv.methods._u8_native)."""
    prof = res.get("profile")
    if getattr(prof, "compiled", "") == "numba":
        from .methods import _u8_native

        try:
            _u8_native.build(res["plan"].in_dtype, res["plan"].out_dtype)
        except KeyboardInterrupt:  # OUT is written; the next command builds it
            pass


def _wrote(dst, res) -> str:
    note = " (modulus of the complex result)" if res["complex"] else ""
    return (
        f"fftconv: wrote {dst}: {'x'.join(map(str, res['shape']))} "
        f"{res['dtype']}{note} in {res['seconds']:.2f} s "
        f"({res['pixels'] / res['seconds'] / 1e6:.1f} Mpixel/s, "
        f"{res['plan'].tiles} {'band' if res['plan'].method == 'stream' else 'tile'}(s))"
    )


#: What a directory given to `apply --out-dir` contributes: its image files.
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".npy")


def _inputs(paths) -> list[str]:
    """Files, the image files of directories, and the matches of glob patterns, in order,
    each once; a path that is none of these is kept (its error is reported per file)."""
    import glob

    found = []
    for p in paths:
        if os.path.isdir(p) and not p.rstrip("/").endswith(".zarr"):
            found += sorted(
                os.path.join(p, n)
                for n in os.listdir(p)
                if n.lower().endswith(_IMAGE_SUFFIXES) and os.path.isfile(os.path.join(p, n))
            )
        elif not os.path.exists(p) and glob.has_magic(p):
            found += sorted(glob.glob(p))
        else:
            found.append(p)
    seen = set()
    return [p for p in found if not (p in seen or seen.add(p))]


def _apply_many(args) -> int:
    """`apply IN... --out-dir DIR`: one process, one progress bar over the files."""
    from .jobs import JobError, as_kernel, convolve_file

    kernel = as_kernel(args.kernel)  # parsed once; a bad kernel stops before any file
    inputs = _inputs(args.paths)
    if not inputs:
        raise JobError(f"no input images in {' '.join(args.paths)}")
    if os.path.exists(args.out_dir) and not os.path.isdir(args.out_dir):
        raise JobError(f"--out-dir {args.out_dir!r} is a file, not a directory")
    os.makedirs(args.out_dir, exist_ok=True)
    names = {}
    for src in inputs:
        dst = os.path.join(args.out_dir, os.path.basename(src.rstrip("/")))
        if dst in names:
            raise JobError(f"{src!r} and {names[dst]!r} would both be written to {dst!r}")
        names[dst] = src
    bar = None if args.quiet else _file_bar(len(inputs))
    say = bar.write if bar is not None else print
    failed = 0
    try:
        for dst, src in names.items():
            try:
                res = convolve_file(
                    src,
                    dst,
                    kernel,
                    **_run_options(args),
                    max_memory=args.max_memory,
                    force=args.force,
                    progress=False,
                    max_pixels=args.max_pixels,
                )
            except (JobError, ValueError, TypeError, OSError, MemoryError) as exc:
                failed += 1
                say(f"fftconv apply: error: {src}: {exc or type(exc).__name__}", file=sys.stderr)
            else:
                if not args.quiet:
                    say(_wrote(dst, res))
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    if failed:
        print(f"fftconv apply: {failed} of {len(inputs)} file(s) failed", file=sys.stderr)
        return 2
    return 0


def _file_bar(total: int):
    """A tqdm bar over the files (None without tqdm); lines go through its `write`, so
    that they are printed above the bar, never into it."""
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="file", desc="fftconv apply", leave=False)


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
                args.input,
                max_pixels=args.max_pixels if given else io.DEFAULT_MAX_PIXELS,
                max_stored_pixels=args.max_pixels if given else io.DEFAULT_MAX_STORED_PIXELS,
            )
        except (FileNotFoundError, ValueError, ImportError) as exc:
            raise JobError(str(exc)) from None
        where = args.input
    job = FileJob(shape, in_dtype, kernel, **_run_options(args))
    in_memory = (
        int(np.prod(shape)) * in_dtype.itemsize
        if str(where).lower().endswith((".png", ".jpg", ".jpeg"))
        else 0
    )
    plan = job.plan(args.max_memory, in_memory)
    print(f"input   {where}: {'x'.join(map(str, shape))} {in_dtype}")
    print(
        f"kernel  {args.kernel}: {'x'.join(map(str, kernel.shape))} {kernel.dtype}, "
        f"{'correlate' if args.correlate else 'convolve'}, mode {args.mode}, boundary "
        f"{job.problem.boundary}; computed in {job.compute}, written as {job.out_dtype}"
    )
    opts = _run_options(args)
    streams = opts.pop("method") == "auto" and stream_plan(shape, in_dtype, kernel, **opts)
    if streams:
        kh, kw = kernel.shape
        print(
            f"apply streams this job: a separable kernel ({kh} + {kw} taps) in bands of rows "
            f"on {streams.threads} compute thread(s), no tiles (docs/huge_photos.md); "
            "with --method fft or direct it would run in tiles:"
        )
    print(plan)
    print(f"\nhow one {'x'.join(map(str, plan.tile))} tile is computed:")
    print(plan.tile_plan)
    return 0


def _cmd_calibrate(args) -> int:
    import time

    from .planner import calibrate, profile_path

    t0 = time.perf_counter()
    m = calibrate(save=not args.no_save)
    print(
        f"fftconv calibrate: measured in {time.perf_counter() - t0:.1f} s; every constant "
        "the planner uses:"
    )
    print("  " + m.describe().replace("\n", "\n  "))
    if not args.no_save:
        print(f"saved to {profile_path()}")
    return 0


def _cmd_precompile(args) -> int:
    from ._precompile import precompile

    print("fftconv precompile: compiling (numba); this takes minutes the first time", flush=True)
    seconds = precompile(
        dtypes=args.dtypes,
        channels=args.channels,
        aot=not args.no_aot,
        stream=not args.no_aot,
        calibrate=not args.no_calibrate,
    )
    if seconds is None:
        print(
            "fftconv precompile: numba is not installed; nothing to compile "
            "(fftconv sums with numpy)"
        )
    else:
        print(f"fftconv precompile: done in {seconds:.1f} s")
        if not args.no_aot:
            from .methods import _aot

            d = _aot.module_dir()
            if d is not None and (d / "manifest.json").exists():
                print(f"fftconv precompile: ahead-of-time kernels in {d}")
            else:
                print(
                    "fftconv precompile: no ahead-of-time kernels on this platform "
                    "(they need Linux); calls load numba's cached kernels"
                )
            _say_stream_libraries(args.dtypes)
        if not args.no_calibrate:
            from .planner.profile import profile_path

            print(f"fftconv precompile: planner calibrated for this machine ({profile_path()})")
    return 0


def _say_stream_libraries(dtypes) -> None:
    from ._precompile import stream_pairs
    from .methods import _u8_native

    paths = [_u8_native.library_path(*p) for p in stream_pairs(dtypes)]
    built = [p for p in paths if p is not None and p.is_file()]
    if built:
        print(f"fftconv precompile: stream engine ({len(built)} dtype pairs) in {built[0].parent}")


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


def _log_above_bars():
    """Lines of the ``fftconv`` logger (the compile notices) printed through tqdm, above a
    progress bar rather than into its line, as ``tqdm.contrib.logging`` does, without
    importing tqdm (a tenth of a second) before a bar exists."""
    import contextlib
    import logging

    class AboveBars(logging.StreamHandler):
        def emit(self, record):
            tq = sys.modules.get("tqdm")
            if tq is None or not hasattr(tq, "tqdm"):
                return super().emit(record)
            try:
                tq.tqdm.write(self.format(record), file=self.stream)
                self.flush()
            except Exception:
                self.handleError(record)

    def console(h):
        return isinstance(h, logging.StreamHandler) and h.stream in (sys.stdout, sys.stderr)

    @contextlib.contextmanager
    def redirected(logger):
        before = logger.handlers
        handler = AboveBars()
        orig = next((h for h in before if console(h)), None)
        if orig is not None:
            handler.setFormatter(orig.formatter)
            handler.stream = orig.stream
            for f in orig.filters:
                handler.addFilter(f)
        logger.handlers = [h for h in before if not console(h)] + [handler]
        try:
            yield
        finally:
            logger.handlers = before

    return redirected(logging.getLogger("fftconv"))


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
    commands = {
        "apply": _cmd_apply,
        "plan": _cmd_plan,
        "demo": _cmd_demo,
        "calibrate": _cmd_calibrate,
        "clean": _cmd_clean,
        "precompile": _cmd_precompile,
    }
    from .jobs import JobError

    try:
        with warnings.catch_warnings(), _log_above_bars():
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
        print(
            f"fftconv {args.command}: error: out of memory; lower --max-memory or --threads",
            file=sys.stderr,
        )
        return 1
    except OSError as exc:
        print(f"fftconv {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - a decoder's error half way (corrupt tiles), ...
        if os.environ.get("FFTCONV_DEBUG"):
            raise
        what = " ".join(str(exc).split())[:300] or "no message"
        print(
            f"fftconv {args.command}: error: {type(exc).__name__}: {what} (FFTCONV_DEBUG=1 "
            "shows where)",
            file=sys.stderr,
        )
        return 1


def run() -> int:
    """The `fftconv` command: `main` on the process's arguments, then ready to exit.

    The console script and ``python -m fftconv`` call this. Before the interpreter
    shuts down, every object is moved out of the garbage collector's reach
    (`gc.freeze`): the shutdown's collections would otherwise traverse all of them
    (numpy's, tifffile's, fftconv's modules) with the caches cold after a streamed
    run, 0.1-0.3 s of a 2-second job. Nothing is left for them to do: the outputs
    are committed and the files closed.
    """
    try:
        return main()
    finally:
        gc.freeze()
