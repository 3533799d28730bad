"""The band engine (`_u8_kernels.sep_rows`) as a plain shared library, called with ctypes.

A process that loads the engine through numba pays numba's import and its
first dispatch (typing registries, the JIT's code loader) before the first
row: about a second of CPU time and 130 MB of memory, more than the whole
computation of many photos. `build` therefore writes the machine code numba
compiled for one (source dtype, output dtype) pair into a shared library in
fftconv's cache directory, and `load` opens it with ctypes, which imports
neither numba nor llvmlite. The code is the same (one C-callable wrapper that
views the pointers as arrays and calls `sep_rows`), so the results are
bit-for-bit those of the numba engine; ctypes releases the GIL during the
call, as ``nogil`` does.

The library's name carries a hash of everything its code depends on (these
modules' source, numba's and Python's versions, the CPU model and its
features from ``/proc/cpuinfo``), so a changed kernel, a new numba or a home
directory shared with another CPU never loads a stale or foreign library.
Linux only, with a C compiler (``$CC``, ``cc`` or ``gcc``) to link the object
file; anywhere else `load` returns None and the caller uses numba.

The wrapper's error path (numba's code to report an exception from a C
callback) refers to a few numba runtime symbols that the library defines as
``abort()``: the kernels cannot raise (``error_model='numpy'``, no
allocation, no bounds checks), so they are never reached.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import sys
import threading
from pathlib import Path

import numpy as np

__all__ = ["build", "load", "library_path"]

#: The (source, output) dtypes of the engine, as `fftconv._stream` accepts them.
IN_DTYPES = ("uint8", "uint16", "int16", "float32")
OUT_DTYPES = ("uint8", "uint16", "float32")

#: Set to "0" to never build nor load a library (numba's engine runs instead).
ENV = "FFTCONV_NATIVE"

_SYMBOL = "fftconv_sep_rows"

_STUBS = """\
#include <stdlib.h>
/* numba's error path of a C callback; the kernels never raise (see _u8_native.py) */
void NRT_Free(void *p) { abort(); }
void NRT_MemInfo_call_dtor(void *p) { abort(); }
void numba_do_raise(void) { abort(); }
void numba_gil_ensure(void) { abort(); }
void numba_gil_release(void) { abort(); }
void numba_runtime_build_excinfo_struct(void) { abort(); }
void numba_unpickle(void) { abort(); }
"""

_P, _I, _F = ctypes.c_void_p, ctypes.c_int64, ctypes.c_float
#: C arguments of the wrapper, in `_ARGS` order (arrays: pointer, then their shape).
_CTYPES = [_P, _I, _I, _P, _I, _P, _I, _P, _I, _P, _I, _F, _P, _I, _I, _I, _I, _P, _I, _I]
_CTYPES += [_I, _I, _I, _I, _I, _I, _F, _F, _I, _P, _I, _I, _I, _P, _I, _P, _I]

_loaded: dict = {}
_lock = threading.Lock()


def _enabled() -> bool:
    return sys.platform.startswith("linux") and os.environ.get(ENV, "1") != "0"


def _cpu() -> bytes:
    """The first processor's model and feature lines of /proc/cpuinfo."""
    try:
        with open("/proc/cpuinfo", "rb") as f:
            text = f.read(1 << 16)
    except OSError:
        return b""
    first = text.split(b"\n\n")[0]
    keep = (b"vendor_id", b"model name", b"cpu family", b"model\t", b"flags")
    return b"\n".join(ln for ln in first.splitlines() if ln.startswith(keep))


def _key(in_dtype: str, out_dtype: str) -> str | None:
    import importlib.util

    spec = importlib.util.find_spec("numba")
    if spec is None or spec.origin is None:
        return None
    h = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for name in ("_u8_native.py", "_u8_kernels.py", "_u8_sweeps.py", "_jit.py"):
        h.update((here / name).read_bytes())
    version = Path(spec.origin).parent / "_version.py"
    h.update(version.read_bytes() if version.exists() else b"?")
    h.update(f"{sys.version}|{sys.platform}|{os.uname().machine}|{in_dtype}|{out_dtype}".encode())
    h.update(_cpu())
    h.update(os.environ.get("NUMBA_CPU_FEATURES", "").encode())  # the user's, if set
    return h.hexdigest()[:20]


def library_path(in_dtype, out_dtype) -> Path | None:
    """Where the library for this dtype pair is (or would be) kept; None where
    libraries are not used (not Linux, `ENV` set to 0, numba not installed)."""
    from .._cachedir import cache_dir

    in_dtype, out_dtype = np.dtype(in_dtype).name, np.dtype(out_dtype).name
    if not _enabled() or in_dtype not in IN_DTYPES or out_dtype not in OUT_DTYPES:
        return None
    key = _key(in_dtype, out_dtype)
    if key is None:
        return None
    return cache_dir() / "native" / f"sep_rows_{in_dtype}_{out_dtype}_{key}.so"


class NativeEngine:
    """`sep_rows` of one dtype pair through a loaded library (same arguments)."""

    def __init__(self, fn, in_dtype, out_dtype):
        self.fn, self.in_dtype, self.out_dtype = fn, np.dtype(in_dtype), np.dtype(out_dtype)

    def accepts(self, *arrays) -> bool:
        """True when every array is C-contiguous, aligned and of native byte order
        (what the wrapper's pointers assume)."""
        return all(a.flags.c_contiguous and a.flags.aligned and a.dtype.isnative for a in arrays)

    def sep_rows(self, src, rowmap, colmap, u, v, fill, copy, pt, pl, n_pad, out, out_row0,
                 i0, i1, x0, x1, C, lo, hi, rnd, rings, tmp, acc):  # fmt: skip
        if src.dtype != self.in_dtype or out.dtype != self.out_dtype:
            raise TypeError(
                f"this library computes {self.in_dtype} -> {self.out_dtype}, "
                f"got {src.dtype} -> {out.dtype}"
            )
        self.fn(
            src.ctypes.data, src.shape[0], src.shape[1],
            rowmap.ctypes.data, rowmap.shape[0], colmap.ctypes.data, colmap.shape[0],
            u.ctypes.data, u.shape[0], v.ctypes.data, v.shape[0], float(fill),
            copy.ctypes.data, copy.shape[0], pt, pl, n_pad,
            out.ctypes.data, out.shape[0], out.shape[1], out_row0, i0, i1, x0, x1, C,
            float(lo), float(hi), int(bool(rnd)),
            rings.ctypes.data, rings.shape[0], rings.shape[1], rings.shape[2],
            tmp.ctypes.data, tmp.shape[0], acc.ctypes.data, acc.shape[0],
        )  # fmt: skip


def load(in_dtype, out_dtype) -> NativeEngine | None:
    """The engine of this dtype pair from its library, or None when none is built."""
    key = (np.dtype(in_dtype).name, np.dtype(out_dtype).name)
    with _lock:
        if key in _loaded:
            return _loaded[key]
        eng = None
        try:
            path = library_path(*key)
            if path is not None and path.is_file():
                lib = ctypes.CDLL(str(path))
                fn = getattr(lib, _SYMBOL)
                fn.restype = None
                fn.argtypes = _CTYPES
                eng = NativeEngine(fn, *key)
        except (OSError, AttributeError, ValueError):
            eng = None  # unreadable or foreign: numba's engine runs instead
        _loaded[key] = eng
        return eng


def _wrapper(in_dtype: str, out_dtype: str):
    """The numba C callback that views its pointers as arrays and calls `sep_rows`."""
    from numba import carray, cfunc, types

    from . import _u8_kernels as U

    src_t = types.CPointer(getattr(types, in_dtype))
    out_t = types.CPointer(getattr(types, out_dtype))
    i64, f32 = types.int64, types.float32
    i64p, f32p = types.CPointer(types.int64), types.CPointer(types.float32)
    sig = types.void(
        src_t, i64, i64, i64p, i64, i64p, i64, f32p, i64, f32p, i64, f32, i64p, i64,
        i64, i64, i64, out_t, i64, i64, i64, i64, i64, i64, i64, i64, f32, f32, i64,
        f32p, i64, i64, i64, f32p, i64, f32p, i64,
    )  # fmt: skip

    def entry(src_p, src_r, src_c, rowmap_p, nrm, colmap_p, ncm, u_p, kh, v_p, kw, fill,
              copy_p, ncopy, pt, pl, n_pad, out_p, out_r, out_c, out_row0, i0, i1, x0, x1,
              C, lo, hi, rnd, rings_p, r0, r1, r2, tmp_p, ntmp, acc_p, nacc):  # fmt: skip
        U.sep_rows(
            carray(src_p, (src_r, src_c)), carray(rowmap_p, (nrm,)), carray(colmap_p, (ncm,)),
            carray(u_p, (kh,)), carray(v_p, (kw,)), fill, carray(copy_p, (ncopy,)),
            pt, pl, n_pad, carray(out_p, (out_r, out_c)), out_row0, i0, i1, x0, x1, C,
            lo, hi, rnd != 0, carray(rings_p, (r0, r1, r2)), carray(tmp_p, (ntmp,)),
            carray(acc_p, (nacc,)),
        )  # fmt: skip

    return cfunc(sig, nopython=True, error_model="numpy")(entry)


def _emit(in_dtype: str, out_dtype: str) -> bytes:
    """The object code of the wrapper, compiled by numba with this process's CPU features
    (``NUMBA_CPU_FEATURES`` when set, else the host's)."""
    import llvmlite.binding as ll

    entry = _wrapper(in_dtype, out_dtype)
    mod = ll.parse_assembly(entry.inspect_llvm())
    mod.get_function(entry.native_name).name = _SYMBOL
    mod.verify()
    tm = ll.Target.from_default_triple().create_target_machine(
        cpu=ll.get_host_cpu_name(),
        features=os.environ.get("NUMBA_CPU_FEATURES") or ll.get_host_cpu_features().flatten(),
        opt=3,
        reloc="pic",
        codemodel="default",
    )
    return tm.emit_object(mod)


def wide_features() -> str | None:
    """numba's CPU features for the library where they differ from its default: the
    host's with LLVM's preference for 256-bit vectors turned off, on CPUs with AVX-512
    (LLVM prefers 256-bit vectors there, for older CPUs' sake; 512-bit ones run the
    engine 20-30% faster on this project's Intel Xeon: `bench/band_engine.py`). None
    where the user set ``NUMBA_CPU_FEATURES`` or the CPU has no AVX-512."""
    if os.environ.get("NUMBA_CPU_FEATURES"):
        return None
    import llvmlite.binding as ll

    host = ll.get_host_cpu_features()
    if not host.get("avx512f"):
        return None
    return host.flatten() + ",-prefer-256-bit"


def _object(in_dtype: str, out_dtype: str, workdir: Path) -> bytes:
    """`_emit` here, or in a child process with `wide_features` (numba reads its CPU
    features once, when it is imported: this process keeps its own)."""
    import subprocess
    import tempfile

    features = wide_features()
    if features is None:
        return _emit(in_dtype, out_dtype)
    root = str(Path(__file__).resolve().parents[2])  # the directory holding fftconv
    env = dict(os.environ, NUMBA_CPU_FEATURES=features)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=workdir, prefix=".emit-") as tmp:
        obj = Path(tmp) / "engine.o"
        code = "import sys; from fftconv.methods import _u8_native as N; N._emit_to(*sys.argv[1:])"
        subprocess.run(
            [sys.executable, "-c", code, in_dtype, out_dtype, str(obj)],
            env=env,
            check=True,
            capture_output=True,
            timeout=900,
        )
        return obj.read_bytes()


def _emit_to(in_dtype: str, out_dtype: str, path: str) -> None:
    """`_emit` into a file (the child process of `_object`)."""
    Path(path).write_bytes(_emit(in_dtype, out_dtype))


def _compiler() -> str | None:
    import shutil

    cc = os.environ.get("CC")
    if cc and shutil.which(cc):
        return shutil.which(cc)
    return shutil.which("cc") or shutil.which("gcc")


def build(in_dtype, out_dtype) -> Path | None:
    """Compile (numba) and link (the C compiler) the library of this dtype pair into
    the cache, if it is not there yet; returns its path, or None where libraries
    are not used or cannot be built (no numba, no compiler, a read-only cache)."""
    import subprocess
    import tempfile

    in_dtype, out_dtype = np.dtype(in_dtype).name, np.dtype(out_dtype).name
    path = library_path(in_dtype, out_dtype)
    if path is None:
        return None
    failed = path.with_suffix(".failed")  # tried once with this code: not every command
    if path.is_file():
        return path
    cc = _compiler()
    if cc is None or failed.exists():
        return None
    try:
        obj = _object(in_dtype, out_dtype, path.parent)
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=path.parent, prefix=".build-") as tmp:
            (Path(tmp) / "engine.o").write_bytes(obj)
            (Path(tmp) / "stubs.c").write_text(_STUBS)
            so = Path(tmp) / "engine.so"
            subprocess.run(
                [cc, "-shared", "-fPIC", "-O2", "-o", str(so), "engine.o", "stubs.c"],
                cwd=tmp,
                check=True,
                capture_output=True,
                timeout=120,
            )
            os.replace(so, path)
        for old in path.parent.glob(f"sep_rows_{in_dtype}_{out_dtype}_*"):
            if old != path:  # built (or tried) from another version of the kernels
                old.unlink(missing_ok=True)
    except (OSError, subprocess.SubprocessError, RuntimeError, ValueError, ImportError):
        try:
            failed.parent.mkdir(parents=True, exist_ok=True)
            failed.touch()
        except OSError:
            pass
        return None
    with _lock:
        _loaded.pop((in_dtype, out_dtype), None)
    return path
