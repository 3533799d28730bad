"""This machine's cost constants: the calibration profile, and `calibrate`.

`machine` returns the constants the planner prices with: the profile saved in
the cache directory (``$FFTCONV_CACHE_DIR`` or the user cache directory) by
`calibrate` on this machine, else `Machine`'s shipped defaults. A profile
that cannot be read warns and the defaults stand; one written by another
host sharing the cache directory is ignored.
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
import warnings
from dataclasses import asdict

import numpy as np

from .. import _fftw, _fork
from .._cachedir import CacheWarning, atomic_write, cache_dir, read_json, warn_once
from .._problem import Problem, make_problem, normalize_threads, with_io
from ..methods import interleaved
from ..methods.blocks import block_layout, convolve_oa
from ..methods.direct import convolve_direct
from ..methods.rows import kernels
from ..methods.separable import convolve_separable, kernel_factors
from .costs import block_seconds, fft_flops
from .machine import Machine, constant_names

_PROFILE_FORMAT = "fftconv-planner-profile/1"
_machine_lock = _fork.lock()
_machine: Machine | None = None

#: The constants every profile has held since its first format; the compiled
#: engine's rates came later, in a ``direct`` section of their own (`compiled_rates`'
#: layout), and are read from there when the constants lack them.
_FIRST_NAMES = (
    "fft32",
    "fft64",
    "fft_slope",
    "cache",
    "parallel",
    "mem",
    "madd32",
    "madd64",
    "tap",
    "block",
    "call",
)
_DTYPES = ("float32", "float64", "complex64", "complex128")
_TABLES = {"direct": "direct_madds_per_s", "separable": "separable_madds_per_s"}


def profile_path():
    """The calibration profile in the cache directory."""
    return cache_dir() / "planner-profile.json"


def _host() -> dict:
    return {
        "machine": platform.machine(),
        "system": platform.system(),
        "cores": os.cpu_count(),
        "node": platform.node(),
    }


def machine() -> Machine:
    """The cost constants: this machine's calibration if saved, else the defaults."""
    global _machine
    with _machine_lock:
        if _machine is None:
            _machine = _load_profile()
        return _machine


def _positive(v) -> float:
    # A number in the JSON sense: "1e10" (a string) or true is a sign of an edited or
    # foreign file, not a rate.
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"constant {v!r} is not a number")
    x = float(v)
    if not (math.isfinite(x) and x > 0):
        raise ValueError(f"constant {v!r} is not positive")
    return x


def _profile_constants(doc) -> dict:
    """The Machine fields a profile document holds, checked field by field;
    ValueError says what is wrong."""
    if not isinstance(doc, dict):
        raise ValueError(f"not a profile (a JSON {type(doc).__name__})")
    if doc.get("format") != _PROFILE_FORMAT:
        raise ValueError(f"format {doc.get('format')!r}, expected {_PROFILE_FORMAT!r}")
    constants = doc.get("constants")
    if not isinstance(constants, dict):
        raise ValueError("'constants' is not a mapping")
    names = set(constant_names())
    consts = {}
    for k, v in constants.items():
        if k in names:
            try:
                consts[k] = _positive(v)
            except ValueError as exc:
                raise ValueError(f"{k}: {exc}") from None
    missing = [n for n in _FIRST_NAMES if n not in consts]
    if missing:
        raise ValueError(f"constants missing: {', '.join(missing)}")
    if "direct" in doc:
        tables = _from_tables(doc["direct"])  # raises for a malformed section
        for k, v in tables.items():
            consts.setdefault(k, v)
    return consts


def _load_profile() -> Machine:
    path = profile_path()
    try:
        doc = read_json(path)
        consts = _profile_constants(doc)
    except FileNotFoundError:
        return Machine()
    except OSError as exc:
        warn_once(
            ("profile-read", str(path)),
            f"cannot read {path}: {exc}; using default cost constants",
            stacklevel=4,
        )
        return Machine()
    except ValueError as exc:
        warn_once(
            ("profile-read", str(path)),
            f"ignoring planner profile {path}: {exc}; using default cost constants",
            stacklevel=4,
        )
        return Machine()
    if doc.get("host") != _host():
        return Machine()  # calibrated on another machine sharing this cache directory
    return Machine(**consts, calibrated=True)


def _from_tables(tables) -> dict:
    """Machine fields from a `compiled_rates` dict (a profile's ``direct`` section);
    ValueError when it lacks a rate or holds one that is not a positive number."""
    try:
        out = {
            f"{engine}_{name}": _positive(tables[table][name])
            for engine, table in _TABLES.items()
            for name in _DTYPES
        }
        out["copy_rate"] = _positive(tables["copy_bytes_per_s"])
        out["direct_call"] = _positive(tables["call_overhead_s"])
    except (KeyError, TypeError, IndexError) as exc:
        raise ValueError(f"'direct' section incomplete ({type(exc).__name__}: {exc})") from None
    except ValueError as exc:
        raise ValueError(f"'direct' section: {exc}") from None
    return out


def reset_machine() -> None:
    """Forget the loaded constants so the next plan reads the profile again (tests).
    Cached plans are keyed on the constants, so none outlives them."""
    global _machine
    with _machine_lock:
        _machine = None


def calibrate(save: bool = True, budget_s: float = 20.0) -> Machine:
    """Measure every cost constant of this machine (about 10 s) and keep them.

    Times FFTW transforms of a few sizes at one thread and at all cores,
    streaming copies, numpy's direct summation, the compiled direct and
    separable kernels (when numba is installed) and the per-block overhead of
    overlap-add, fits the constants of the cost model, and saves them to
    ``planner-profile.json`` in the cache directory (atomically; a read-only
    directory gives a warning and the constants are used for this process).

    Returns the fitted `Machine` (``print(m.describe())`` lists every constant;
    ``fftconv calibrate`` prints them).  The FFTW plans of its measurements (about
    300 MB of buffers) are dropped afterwards, with every other idle plan of the
    cache: calls plan again, from the saved wisdom.
    """
    global _machine
    # Time the plans a first call gets, with no background measuring competing.
    _fftw.wait_for_upgrades()
    effort = _fftw.set_effort("estimate")
    try:
        vals = _calibrate(budget_s)
    finally:
        _fftw.set_effort(effort)
        _fftw.clear_cache()
    tables = compiled_rates()
    vals.update(_from_tables(tables))
    vals.update(_time_passes(vals))
    m = Machine(**vals)
    if save:
        doc = {
            "format": _PROFILE_FORMAT,
            "host": _host(),
            "constants": {k: v for k, v in vals.items() if k != "calibrated"},
            "direct": tables,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        try:
            atomic_write(profile_path(), json.dumps(doc, indent=1).encode())
        except OSError as exc:
            warnings.warn(
                f"cannot save the planner profile to {profile_path()}: {exc}; "
                "the constants hold for this process only",
                CacheWarning,
                stacklevel=2,
            )
    with _machine_lock:
        _machine = m
    return m


def _calibrate(budget_s: float) -> dict:
    deadline = time.perf_counter() + budget_s
    d = Machine()
    vals = asdict(d)
    slopes = []
    for prec, dt in (("32", np.float32), ("64", np.float64)):
        small = [_fft_rate(L, dt) for L in ((128, 128), (256, 256), (200, 210))]
        vals["fft" + prec] = c = float(np.median(small))
        for L in ((1024, 1024), (2048, 2048)):
            if time.perf_counter() > deadline - 6:
                break
            nbytes = math.prod(L) * np.dtype(dt).itemsize
            slopes.append((_fft_rate(L, dt) / c - 1) / math.log2(nbytes / d.cache))
    if slopes:
        vals["fft_slope"] = float(min(2.0, max(0.0, np.median(slopes))))
    threads = normalize_threads(None)
    if threads > 1 and time.perf_counter() < deadline - 4:
        # Best of several: on a shared machine the median says more about the neighbours.
        t1 = _time_fft((1024, 1024), np.float64, 1, best=True)
        tt = _time_fft((1024, 1024), np.float64, threads, best=True)
        vals["parallel"] = float(min(1.0, max(0.05, (t1 / tt - 1) / (threads - 1))))
    a = np.ones(1 << 22)
    b = np.empty_like(a)
    vals["mem"] = _median_time(lambda: np.copyto(b, a)) / (2 * a.nbytes)
    vals.update(_time_direct())
    vals.update(_time_blocks(vals))
    vals["calibrated"] = True
    return vals


def _median_time(fn, repeat: int = 5, best: bool = False) -> float:
    fn()
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return float(min(ts) if best else np.median(ts))


def _time_fft(L, dtype, threads, best: bool = False) -> float:
    """Seconds for one forward plus one backward real transform of `L`."""
    with (
        _fftw.transform(L, dtype, (0, 1), "forward", threads) as f,
        _fftw.transform(L, dtype, (0, 1), "backward", threads) as b,
    ):
        f.input_array[...] = 1
        b.input_array[...] = 1
        return _median_time(lambda: (f.execute(), b.execute()), 7 if best else 5, best)


def _fft_rate(L, dtype) -> float:
    """Seconds per weighted N log2 N unit of one transform of `L`, single-threaded."""
    n = math.prod(L)
    return _time_fft(L, dtype, 1) / 2 / (n * sum(fft_flops(x) for x in L))


def _time_direct() -> dict:
    out = {}
    for name, dt in (("madd32", np.float32), ("madd64", np.float64)):
        per = []
        for n, k in ((160, 3), (200, 5)):
            problem, a, kern = make_problem(
                np.ones((n, n), dt), np.ones((k, k), dt), "valid", "fill", 0, None, None, False
            )
            res = np.empty(problem.out_shape, dt)
            t = _median_time(lambda p=problem, a=a, k=kern, r=res: convolve_direct(p, a, k, r), 3)
            per.append(t / (res.size * k * k))
        out[name] = float(np.median(per))
    problem, a, kern = make_problem(
        np.ones((8, 8)), np.ones((8, 8)), "valid", "fill", 0, None, None, False
    )
    res = np.empty(problem.out_shape)
    out["tap"] = _median_time(lambda: convolve_direct(problem, a, kern, res), 5) / 64
    return out


def _time_passes(vals: dict, repeat: int = 5) -> dict:
    """``separable_sample``, ``round_store``, ``interleaved_sample`` and
    ``strips_sample`` (one thread; the shipped values where numba is missing): a pair
    of 3-tap passes of a grey image beyond its multiply-adds at the measured separable
    rate, a 3x3 photo summed into uint8 against the same photo in float32 (the
    rounding drivers' extra work: a floor of 1e-12 s where it is hidden), and a 3-tap
    pair of an RGB float32 photo, and of a uint8 photo into uint8 (the strip-mined
    engine), beyond their multiply-adds."""
    if kernels() is None:
        return {}
    rng = np.random.default_rng(0)
    img = rng.random((1024, 1024), dtype=np.float32)
    g = np.array([0.25, 0.5, 0.25], np.float32)
    p, a, k = make_problem(img, np.outer(g, g), "same", "fill", 0, None, None, False)
    out = np.empty(p.out_shape, p.dtype)
    factors = kernel_factors(np.outer(g, g), p.dtype)
    t = _best_time(lambda: convolve_separable(p, a, k, out, 1, factors), repeat)
    sample = t / img.size - 6 / vals["separable_float32"]
    photo = rng.random((512, 768, 3), dtype=np.float32)
    k3 = rng.random((3, 3)).astype(np.float32)

    def run(x, kern=k3, factors=None):
        # as `convolve(x, kern, out=empty_like(x), channel_axis=-1)` runs it
        p, a, k = make_problem(x, kern, "same", "fill", 0, None, -1, False)
        p = with_io(p, x.dtype, k.dtype, x.dtype)
        k = np.ascontiguousarray(k, p.dtype)
        lay, o = interleaved.layout(p, k, grey=True), np.empty_like(x)
        return lambda: interleaved.convolve(p, lay, a, k, o, 1, factors)

    t32 = _best_time(run(photo), repeat)
    p8 = (photo * 255).astype(np.uint8)
    t8 = _best_time(run(p8), repeat)
    # A 3-tap pair of a float32 photo, and of a uint8 photo into uint8 (`_strips`),
    # each as `convolve(..., method='separable')` runs it: the smallest kernel, where
    # the passes and direct summation are closest (longer pairs run their taps faster
    # than the grey rate: priced from 3 taps, a 15-tap pair is priced about 30% high);
    # photos beyond the caches (a smaller one ran up to 2x faster per sample).
    pair = kernel_factors(np.outer(g, g), np.float32)
    big = rng.random((1024, 1536, 3), dtype=np.float32)

    def passes(x):
        t = _best_time(run(x, np.outer(g, g), pair), repeat)
        return max(1e-12, t / x.size - 6 / vals["separable_float32"])

    return {
        "separable_sample": max(1e-12, sample),
        "round_store": max(1e-12, (t8 - t32) / photo.size),
        "interleaved_sample": passes(big),
        "strips_sample": passes((big * 255).astype(np.uint8)),
    }


def _time_blocks(vals: dict) -> dict:
    a = np.ones((1024, 1024), np.float32)
    kern = np.ones((9, 9), np.float32)
    problem, a, kern = make_problem(a, kern, "same", "fill", 0, None, None, False)
    res = np.empty(problem.out_shape, np.float32)
    lengths = (64, 64)
    _, counts = block_layout(problem, lengths)
    nblocks = math.prod(counts)
    t = _median_time(lambda: convolve_oa(problem, a, kern, res, 1, lengths), 3)
    m = Machine(**{**vals, "block": 0.0, "call": 0.0})
    model = _oa_fixed_lengths(problem, m, lengths)
    return {"block": float(max(1e-6, (t - model) / nblocks))}


def _oa_fixed_lengths(problem: Problem, m: Machine, lengths) -> float:
    steps, counts = block_layout(problem, lengths)
    return math.prod(counts) * block_seconds(problem, m, lengths, steps)


def _best_time(fn, repeat: int) -> float:
    fn()
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def compiled_rates(size: int = 1024, repeat: int = 3) -> dict:
    """Measure the compiled engine's rates for `costs.direct_cost` and
    `costs.separable_cost` (one thread), and the copy rate.

    Runs each compiled kernel once per dtype on a ``size x size`` image
    (11x11 kernel; 31-tap separable pair) and one large copy; a few seconds in
    all once the kernels are compiled (the defaults stand where numba is
    missing). Returns ``{'direct_madds_per_s': {dtype: rate}, 'separable_madds_per_s':
    {...}, 'copy_bytes_per_s': rate, 'call_overhead_s': seconds}``, the layout
    of a profile's ``direct`` section.
    """
    d = Machine()
    consts = {
        table: {name: d.rate(engine, name) for name in _DTYPES} for engine, table in _TABLES.items()
    }
    consts["copy_bytes_per_s"] = d.copy_rate
    consts["call_overhead_s"] = d.direct_call
    rng = np.random.default_rng(0)
    big = rng.random(1 << 22)  # 32 MiB: beyond the caches
    dst = np.empty_like(big)
    consts["copy_bytes_per_s"] = 2 * big.nbytes / _best_time(lambda: np.copyto(dst, big), repeat)
    if kernels() is None:
        return consts
    for name in ("float32", "float64", "complex64", "complex128"):
        img = rng.random((size, size)).astype(name)
        # 11x11: where direct summation and overlap-add meet, so the rate that decides
        # between them is measured there (small kernels run at lower rates, bound by memory).
        p, a, k = make_problem(
            img, rng.random((11, 11)).astype(name), "same", "fill", 0, None, None, False
        )
        out = np.empty(p.out_shape, p.dtype)
        t = _best_time(lambda p=p, a=a, k=k, out=out: convolve_direct(p, a, k, out, 1), repeat)
        consts["direct_madds_per_s"][name] = size * size * 121 / t
        if name.startswith("complex"):  # run as real problems, not by passes
            continue
        g = np.exp(-(np.linspace(-2, 2, 31) ** 2))
        kg = np.outer(g, g).astype(name)
        p, a, k = make_problem(img, kg, "same", "fill", 0, None, None, False)
        factors = kernel_factors(kg, p.dtype)
        t = _best_time(
            lambda p=p, a=a, k=k, out=out, f=factors: convolve_separable(p, a, k, out, 1, f),
            repeat,
        )
        consts["separable_madds_per_s"][name] = size * size * 62 / t
    return consts
