"""`fftconv.precompile`: compile the compiled kernels ahead of time."""

from __future__ import annotations

import shutil
import time
import warnings

import numpy as np

#: What `precompile` compiles unless told otherwise: both real dtypes, grey images
#: and RGB / RGBA photos, and the integer outputs of photos.
DTYPES = ("float32", "float64")
CHANNELS = (1, 3, 4)
PHOTO_DTYPES = ("uint8", "uint16", "int16")


def precompile(
    dtypes=DTYPES,
    channels=CHANNELS,
    photo_dtypes=PHOTO_DTYPES,
    aot: bool = True,
    stream: bool = True,
    calibrate: bool = True,
) -> float | None:
    """Compile fftconv's numba kernels for this machine into numba's on-disk cache,
    and the row kernels ahead of time into an extension module.

    The first call that needs a kernel compiles it (seconds to a minute each,
    once per machine); afterwards every process loads the machine code from
    the cache.  This compiles them all now: direct summation (with the
    unrolled 3x3, 5x5 and 7x7 kernels), separable passes, per-channel kernels of
    channels-last photos (and more than 4 channels: the same kernels), the
    integer photos' rank-one passes, the rounding into integer outputs and
    the window sums of `match_template`.  With `aot`, the row kernels of direct
    summation and separable passes (grey and channels-last, and those of photos
    in their own dtype: the rounding drivers, the strip-mined rank-one passes,
    the channel planes' split and merge) are then compiled
    again ahead of time (``numba.pycc``) into one extension module in
    fftconv's cache directory: a fresh process loads it in a few milliseconds
    instead of importing numba (about a second), see ``docs/first_call.md``.
    With `stream`, the band engine of ``fftconv apply``'s streaming path is
    linked into a shared library per dtype pair of `stream_pairs`
    (``methods._u8_native``), which the first ``fftconv apply`` would
    otherwise build after its run.  fftconv's own modules are
    compiled to bytecode too (`build_bytecode`).  With `calibrate`, the planner's
    cost constants are then measured on these kernels (`fftconv.calibrate`, a few
    seconds) and kept in the cache directory: the shipped constants were measured
    on other machines.

    Parameters
    ----------
    dtypes : sequence of {'float32', 'float64'}
        Compute dtypes (complex problems run on the real kernels).
    channels : sequence of int
        Samples per pixel of channels-last images (1 is grey; 2 to 4).
    photo_dtypes : sequence of {'uint8', 'uint16', 'int16'}
        Integer image and `out=` dtypes, read and written by photos.
    aot : bool
        Also build the ahead-of-time module (Linux; minutes more).  It holds the
        signatures compiled here, so build it with every dtype and channel
        count the calls use; other calls take the JIT kernels.
    stream : bool
        Also build the streaming engine's libraries (Linux with a C compiler;
        seconds each) for the pairs ``stream_pairs(dtypes, photo_dtypes)``.
    calibrate : bool
        Also calibrate the planner for this machine (`fftconv.calibrate`).

    Returns
    -------
    float or None
        Seconds it took, or None when numba is not installed (fftconv then
        sums with numpy and has nothing to compile).

    Examples
    --------
    >>> seconds = precompile(
    ...     dtypes=["float64"], channels=[1], photo_dtypes=[], aot=False, calibrate=False
    ... )
    >>> seconds is None or seconds >= 0
    True
    """
    from .methods import rows

    build_bytecode()
    if rows.jit_kernels() is None:
        return None
    t0 = time.perf_counter()
    calls = _workload(dtypes, channels, photo_dtypes)
    use_aot, rows.USE_AOT = rows.USE_AOT, False  # the JIT compiles what the module exports
    try:
        jit = [_run(c) for c in calls]
    finally:
        rows.USE_AOT = use_aot
    if aot:
        _build_aot(calls, jit)
    if stream:
        _build_stream(stream_pairs(dtypes, photo_dtypes))
    if calibrate:
        from .planner import calibrate as calibrate_planner

        calibrate_planner()
    return time.perf_counter() - t0


def build_bytecode() -> bool:
    """Compile fftconv's own modules to bytecode (``__pycache__`` beside them); True
    when every module was written (a read-only install leaves them as they are).

    Python writes bytecode on a module's first import, except where
    ``PYTHONDONTWRITEBYTECODE`` is set, and an editable install then never gets
    any: every process compiles fftconv's sources again (about 0.1 s of
    ``import fftconv``, ``docs/first_call.md``). Python reads the files even
    then; they are checked against the sources' modification times as usual.
    """
    import compileall
    from pathlib import Path

    return bool(compileall.compile_dir(str(Path(__file__).parent), quiet=2))


def stream_pairs(dtypes=DTYPES, photo_dtypes=PHOTO_DTYPES) -> list[tuple[str, str]]:
    """The (source, output) dtype pairs ``fftconv apply`` streams by default for
    these dtypes: each photo dtype and float32 into itself (int16 photos are not
    streamed: the stream writes no int16)."""
    from .methods import _u8_native

    names = dict.fromkeys(np.dtype(d).name for d in list(photo_dtypes) + list(dtypes))
    return [(n, n) for n in names if n in _u8_native.IN_DTYPES and n in _u8_native.OUT_DTYPES]


def _build_stream(pairs) -> None:
    """The stream engine's library of each pair. One that cannot be built (no C
    compiler, a read-only cache) is said by a `CacheWarning`, and streams run on
    numba's engine; an earlier failed try is tried again (this one is asked for)."""
    from ._cachedir import CacheWarning
    from .methods import _u8_native

    for pair in pairs:
        path = _u8_native.library_path(*pair)
        if path is None:  # not Linux, or turned off (FFTCONV_NATIVE=0): nothing to build
            continue
        path.with_suffix(".failed").unlink(missing_ok=True)
        if _u8_native.build(*pair) is None:
            warnings.warn(
                f"fftconv precompile: the stream engine for {pair[0]} -> {pair[1]} was not "
                "built (it needs a C compiler: $CC, cc or gcc); streams run on numba's engine",
                CacheWarning,
                stacklevel=3,
            )


def _run(call) -> np.ndarray:
    fn, args, kwargs = call
    return np.array(fn(*args, **kwargs), copy=True)


def _build_aot(calls, jit) -> None:
    """The ahead-of-time module, checked: the workload run on it must give the JIT's
    results bit for bit, else the module is removed.  A build that fails (no C
    compiler for numba.pycc, a numba without pycc) or a module that disagrees is
    said by a `CacheWarning`: numba's cache is built anyway."""
    from ._cachedir import CacheWarning
    from .methods import _aot, _aot_build, rows

    try:
        manifest = _aot_build.build()
        wrong = _disagreement(calls, jit) if manifest is not None else None
        if wrong is not None:
            shutil.rmtree(_aot.module_dir(), ignore_errors=True)
            raise RuntimeError(f"they disagreed with numba's JIT kernels on {wrong}")
    except Exception as exc:  # an optional step: every failure leaves the JIT kernels
        warnings.warn(
            f"fftconv precompile: the ahead-of-time kernels were not built ({exc}); "
            "calls load numba's cached kernels instead",
            CacheWarning,
            stacklevel=3,
        )
    rows.reset_aot()


def _disagreement(calls, jit) -> str | None:
    """The first call of the workload whose result on the ahead-of-time module differs
    from the JIT's (described), or None."""
    from .methods import rows

    rows.reset_aot()
    use_aot, rows.USE_AOT = rows.USE_AOT, True
    try:
        if not rows.aot_in_use():
            return "every call: the module built does not load"
        for call, want in zip(calls, jit):
            got = _run(call)
            if got.dtype != want.dtype or not np.array_equal(got, want, equal_nan=True):
                return _describe(call)
    finally:
        rows.USE_AOT = use_aot
    return None


def _describe(call) -> str:
    fn, args, kwargs = call
    shapes = ", ".join(f"{a.dtype}{list(a.shape)}" for a in args if isinstance(a, np.ndarray))
    opts = ", ".join(
        f"{k}={v.dtype}" if isinstance(v, np.ndarray) else f"{k}={v!r}" for k, v in kwargs.items()
    )
    return f"{fn.__name__}({shapes}, {opts})"


def _workload(dtypes, channels, photo_dtypes) -> list:
    """The calls that compile every kernel: ``(function, args, kwargs)``."""
    from .api import convolve
    from .template import match_template

    calls = []

    def call(fn, *args, **kwargs):
        calls.append((fn, args, kwargs))

    rng = np.random.default_rng(0)
    for name in dtypes:
        for c in channels:
            shape = (40, 40) if c == 1 else (40, 40, c)
            img = rng.random(shape).astype(name)
            ca = None if c == 1 else -1
            for ksize in (3, 5, 7, 9):  # the unrolled drivers, then the general one
                k = rng.random((ksize, ksize)).astype(name)
                call(convolve, img, k, "same", channel_axis=ca, method="direct")
            sep = np.outer(rng.random(7), rng.random(7)).astype(name)
            # separable passes: the planner takes them from 2**16 outputs on
            big = rng.random((260, 260) + shape[2:]).astype(name)
            call(convolve, big, sep, "same", channel_axis=ca, method="separable")
            if c == 1:  # the window sums of template matching
                call(match_template, img, img[:5, :5])
            if c > 1:
                call(
                    convolve,
                    img,
                    rng.random((3, 3, c)).astype(name),
                    "same",
                    channel_axis=ca,
                    method="direct",
                )
                _blocks_of(call, convolve, rng, c, name, name, rng.random((9, 9)).astype(name))
    for name in photo_dtypes:
        info = np.iinfo(name)
        for c in channels:
            shape = (40, 40) if c == 1 else (40, 40, c)
            img = rng.integers(info.min, info.max, shape).astype(name)
            ca = None if c == 1 else -1

            def into(x, k, like, method, ca=ca):  # `x` convolved into an array like `like`
                call(
                    convolve, x, k, "same", channel_axis=ca, out=np.empty_like(like), method=method
                )

            for m in ("direct", "oa"):  # bands, and overlap-add blocks (strided rows)
                into(img, np.ones((3, 3), np.float32) / 9, img, m)
            # 5x5 to 9x9 (the rounding drivers of 3x3 to 7x7 kernels, then the float
            # bands), rank-one kernels (the strip-mined engine), one kernel per channel
            for ksize in (5, 7, 9):
                into(img, rng.random((ksize, ksize)).astype(np.float32), img, "direct")
            big = rng.integers(info.min, info.max, (260, 260) + shape[2:]).astype(name)
            sep = np.outer(rng.random(7), rng.random(7)).astype(np.float32)
            into(big, sep, big, "separable")
            # ... and a float32 photo into this dtype, this dtype into float32
            f32 = big.astype(np.float32)
            into(f32, sep, big, "separable")
            into(big, sep, f32, "separable")
            if c > 1:
                into(img, rng.random((3, 3, c)).astype(np.float32), img, "direct")
                k9 = rng.random((9, 9)).astype(np.float32)
                for src, dst in ((name, name), ("float32", name), (name, "float32")):
                    _blocks_of(call, convolve, rng, c, src, dst, k9)
    return calls


def _blocks_of(call, convolve, rng, c, src, dst, k) -> None:
    """Overlap-add blocks of a photo of `c` channels in dtype `src` as channel planes
    (`methods.blocks`), written into an array of dtype `dst`: a photo of several blocks
    each way, which lie inside it (whole transform buffers) and on its edges, with a
    fill and a mirrored boundary (the channel planes' split reads rows through an
    index, or a gathered copy)."""
    img = (rng.random((256, 1024, c)) * 200).astype(src)
    for boundary in ("fill", "symmetric"):
        call(
            convolve,
            img,
            k,
            "same",
            boundary=boundary,
            channel_axis=-1,
            out=np.empty(img.shape, dst),
            method="oa",
        )
