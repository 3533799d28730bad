"""The ahead-of-time compiled row kernels: loading what `fftconv precompile` built.

numba's JIT cache makes compiling a once-per-machine cost, but a fresh process
still imports numba and starts its compiler before it can load a cached
kernel (about a second, 30 times a warm 3x3 call on a 4096x4096 image).
`fftconv precompile` therefore also compiles the row kernels that the
executors call from Python (`ENTRIES`) ahead of time with ``numba.pycc``
into one extension module in fftconv's cache directory (`_aot_build`).  That
module needs neither numba nor LLVM at run time: loading it takes a few
milliseconds.

The module is used only where it was built for: the same Python and
extension suffix, numpy and numba versions, CPU (model and instruction-set
flags, Linux only), and kernel sources (`tag`).  Each exported function is
compiled for one argument signature, the one numba's JIT compiled for a call
of `fftconv precompile`'s own workload, and from the same Python source with
the same numba settings (fused multiply-add only, the GIL released), so it
computes the same bits as the JIT kernel (tests/test_aot.py checks it).  A
call whose argument types no exported signature matches (another dtype, a
read-only array ...) takes the JIT kernel, which imports numba then.

This module imports no numba; `fftconv.methods.rows` is the one switch
between the two engines.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import re
import sys
import types
from pathlib import Path

import numpy as np

from .._cachedir import cache_dir, read_json, warn_once

#: Bumped when the manifest or the build changes meaning (2: format 1 could export a
#: signature specialised for a compiled caller's constants under the general key).
FORMAT = 2

#: The extension module's name (its ``PyInit_`` symbol).
MODULE = "_fftconv_aot"

#: The functions the executors call from Python, by group: ``grey`` are
#: `_direct_kernels`' (`rows.kernels()`), ``small`` `_direct_small`'s ``ROWS``,
#: ``il`` `_interleaved_kernels`' (the drivers of 2 to 4 channels), ``u8``
#: `_u8_kernels`' strip-mined rank-one passes of photos in their own dtype and
#: ``planar`` `_planar_kernels`' channel-plane split and merge (served with ``il``).
#: The kernel sides of the unrolled drivers: `tools/gen_direct_small.py` generates them,
#: this module exports them, the planner prices their rounding (one list for all three).
SMALL = (3, 5, 7)

ENTRIES = {
    "grey": ("direct_rows", "separable_rows"),
    "small": tuple(f"rows_{n}x{n}" for n in SMALL),
    "il": tuple(
        f"{kind}{c}"
        for c in (2, 3, 4)
        for kind in ("direct_rows_s", "separable_rows_s") + tuple(f"rows_{n}x{n}_s" for n in SMALL)
    )
    + tuple(f"rows_{n}x{n}_s{c}_r" for c in (2, 3, 4) for n in SMALL)
    + ("load_rows", "store_rounded"),
    "u8": ("sep_rows",),
    "planar": ("split_rows", "merge_rows"),
}

#: The kernel sources whose text the tag covers (a changed kernel is rebuilt).
SOURCES = (
    "_jit.py",
    "_direct_kernels.py",
    "_direct_taps.py",
    "_direct_small.py",
    "_interleaved_kernels.py",
    "_u8_kernels.py",
    "_u8_sweeps.py",
    "_planar_kernels.py",
)


def value_key(v):
    """The key of one argument: what numba's ``typeof`` would type it as.

    Arrays: dtype, dimensions, layout ('C', 'F' or 'A', in numba's order),
    writeable, aligned.  Python ints are int64 and floats float64, numpy
    scalars their dtype; anything else is keyed by its type and matches no
    export.
    """
    if isinstance(v, np.ndarray):
        f = v.flags
        layout = "C" if f.c_contiguous else "F" if f.f_contiguous else "A"
        return (v.dtype.str, v.ndim, layout, bool(f.writeable), bool(f.aligned))
    if isinstance(v, bool):
        return "|b1"
    if isinstance(v, int):
        return "<i8"
    if isinstance(v, float):
        return "<f8"
    if isinstance(v, np.generic):
        return v.dtype.str
    return type(v).__qualname__


def _freeze(key: list) -> tuple:
    """A manifest's signature key (JSON lists) as `value_key` makes it: a tuple of the
    arguments' keys, each a string or a tuple (arrays). Two levels, no recursion: a
    fresh process loads hundreds of them before its first call."""
    return tuple(tuple(x) if isinstance(x, list) else x for x in key)


class Typed:
    """One entry point: the exported function of the arguments' signature, or the JIT
    kernel (`fallback()`, which imports numba) when none matches."""

    __slots__ = ("name", "table", "fallback")

    def __init__(self, name: str, table: dict, fallback):
        self.name, self.table, self.fallback = name, table, fallback

    def __call__(self, *args):
        fn = self.table.get(tuple(map(value_key, args)))
        if fn is None:
            fn = self.fallback()
        return fn(*args)

    def __repr__(self) -> str:
        return f"<ahead-of-time kernel {self.name}: {len(self.table)} signatures>"


class _Namespace(types.SimpleNamespace):
    """The loaded entry points; any other attribute is the JIT module's."""

    def __init__(self, jit, **entries):
        super().__init__(**entries)
        self._jit = jit

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._jit(), name)


def cpu_fingerprint() -> str | None:
    """The CPU's vendor, family, model and instruction-set flags (Linux's
    ``/proc/cpuinfo``, first processor), or None where there is no such file."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            lines = []
            for line in f:
                if not line.strip():
                    break
                lines.append(line)
    except OSError:
        return None
    want = ("vendor_id", "cpu family", "model", "model name", "flags", "features", "cpu part")
    keep = sorted(ln.strip() for ln in lines if ln.split(":", 1)[0].strip().lower() in want)
    return hashlib.sha256("\n".join(keep).encode()).hexdigest()[:16] if keep else None


def numba_version() -> str | None:
    """numba's version read from its ``_version.py`` (without importing numba), or None."""
    spec = importlib.util.find_spec("numba")
    if spec is None or not spec.origin:
        return None
    try:
        text = (Path(spec.origin).parent / "_version.py").read_text(encoding="utf-8")
    except OSError:
        return None
    m = re.search(r'"version":\s*"([^"]+)"', text)
    return m.group(1) if m else None


def tag() -> str | None:
    """What the module must have been built for, as a short digest; None where no
    ahead-of-time module can be used (no CPU fingerprint, or no numba)."""
    cpu = cpu_fingerprint()
    nb = numba_version()
    if cpu is None or nb is None:
        return None
    here = Path(__file__).parent
    h = hashlib.sha256()
    for name in SOURCES:
        h.update((here / name).read_bytes())
    parts = (
        f"format {FORMAT}",
        sys.implementation.cache_tag or "",
        importlib.machinery.EXTENSION_SUFFIXES[0],
        f"numpy {np.__version__}",
        f"numba {nb}",
        f"cpu {cpu}",
        f"sources {h.hexdigest()}",
    )
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:20]


def module_dir(t: str | None = None) -> Path | None:
    """The directory of this machine's module: ``<cache dir>/aot/<tag>``."""
    t = t if t is not None else tag()
    return None if t is None else cache_dir() / "aot" / t


def load(jit_grey, jit_il, directory: Path | None = None):
    """The entry points of the module in `directory` (default `module_dir()`), as
    ``(grey, il)`` namespaces shaped like the JIT ones, or None when there is no
    module built for this machine (or it cannot be read, said once by a
    `CacheWarning`).

    `jit_grey` and `jit_il` return the JIT namespaces (`rows.jit_kernels()` and the
    `_interleaved_kernels` module): the fallback of every signature not exported.
    """
    if directory is None:
        directory = module_dir()
        if directory is None:
            return None
    try:
        manifest = read_json(directory / "manifest.json")
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        warn_once(("aot", str(directory)), f"fftconv: ignoring {directory}: {exc}")
        return None
    try:
        path = directory / manifest["module"]
        loader = importlib.machinery.ExtensionFileLoader(MODULE, str(path))
        spec = importlib.util.spec_from_file_location(MODULE, path, loader=loader)
        mod = importlib.util.module_from_spec(spec)
        loader.exec_module(mod)
        tables: dict = {}
        for e in manifest["exports"]:
            tables.setdefault(e["entry"], {})[_freeze(e["key"])] = getattr(mod, e["symbol"])
    except (ImportError, OSError, KeyError, TypeError, AttributeError) as exc:
        warn_once(
            ("aot", str(directory)),
            f"fftconv: cannot load the ahead-of-time kernels in {directory} ({exc}); "
            "using numba's JIT kernels (`fftconv precompile` rebuilds them)",
        )
        return None
    return _namespaces(tables, jit_grey, jit_il)


def _namespaces(tables: dict, jit_grey, jit_il):
    def entry(group, name, jit_attr):
        return Typed(name, tables.get(f"{group}.{name}", {}), jit_attr)

    def grey_attr(name):
        return lambda: getattr(jit_grey(), name)

    def small_attr(name):
        return lambda: getattr(jit_grey().small, name)

    def il_attr(name):
        return lambda: getattr(jit_il(), name)

    small = _Namespace(
        lambda: jit_grey().small,
        ROWS={(n, n): entry("small", f"rows_{n}x{n}", small_attr(f"rows_{n}x{n}")) for n in SMALL},
    )
    grey = _Namespace(
        jit_grey,
        **{n: entry("grey", n, grey_attr(n)) for n in ENTRIES["grey"]},
        small=small,
    )
    il = {n: entry("il", n, il_attr(n)) for n in ENTRIES["il"]}
    drivers = {
        c: {
            "direct": il[f"direct_rows_s{c}"],
            "separable": il[f"separable_rows_s{c}"],
            "small": {(n, n): il[f"rows_{n}x{n}_s{c}"] for n in SMALL},
            "rounded": {(n, n): il[f"rows_{n}x{n}_s{c}_r"] for n in SMALL},
        }
        for c in (2, 3, 4)
    }
    photo = {
        n: entry(g, n, il_attr(n)) for g in ("u8", "planar") for n in ENTRIES[g]
    }  # the photo kernels outside `_interleaved_kernels`, served with it
    ilns = _Namespace(
        jit_il,
        DRIVERS=drivers,
        load_rows=il["load_rows"],
        store_rounded=il["store_rounded"],
        **photo,
    )
    return grey, ilns
