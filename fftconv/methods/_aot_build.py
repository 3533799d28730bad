"""Build the ahead-of-time module of `_aot` with ``numba.pycc`` (imports numba).

`build` exports every signature that numba's JIT has compiled in this
process for the entry points of `_aot.ENTRIES` (`fftconv precompile` runs its
workload on the JIT engine first), each from the same Python function with
the settings its ``@njit`` declares (`_jit`: fused multiply-add only; nogil
becomes a wrapper that releases the GIL, so row bands run on threads as the
JIT kernels do), for this CPU's model and instruction-set features as the JIT
sees them.  The module goes to a temporary directory beside its final one and
is moved into place whole, with its manifest (what was exported, for which
argument keys).

Only signatures that a call from Python can reach are exported: numba also
compiles a kernel for the constants a compiled caller passes it (an argument
typed ``Literal[int](0)`` has that value built into the machine code), and such
a signature has the same `_aot.value_key` as the general one.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.machinery
import json
import shutil
import tempfile
import time
import warnings
from pathlib import Path

from . import _aot


def _type_key(t):
    """`_aot.value_key` of a value that numba types as `t`."""
    from numba.core import types
    from numba.np.numpy_support import as_dtype

    if isinstance(t, types.Array):
        return [as_dtype(t.dtype).str, t.ndim, t.layout, bool(t.mutable), bool(t.aligned)]
    return as_dtype(t).str


def python_signatures(d) -> list[tuple[tuple, list]]:
    """``(numba argument types, key)`` of each signature of the dispatcher `d` that a
    call from Python dispatches to: none with a literal argument (a compiled caller's
    constant, built into the code); a key that two of them share is an error, since
    `_aot.load` could not tell them apart."""
    from numba.core import types

    out, seen = [], {}
    for args in d.signatures:
        if any(isinstance(t, types.Literal) for t in args):
            continue
        key = [_type_key(t) for t in args]
        k = repr(key)
        if k in seen:
            raise RuntimeError(
                f"{d.py_func.__name__}: signatures {seen[k]} and {args} have the same key {key}"
            )
        seen[k] = args
        out.append((args, key))
    return out


def dispatchers() -> dict:
    """``{"group.name": numba dispatcher}`` of the entry points."""
    from . import _direct_kernels, _direct_small, _interleaved_kernels, _planar_kernels, _u8_kernels

    mods = {
        "grey": _direct_kernels,
        "small": _direct_small,
        "il": _interleaved_kernels,
        "u8": _u8_kernels,
        "planar": _planar_kernels,
    }
    return {f"{g}.{n}": getattr(mods[g], n) for g, names in _aot.ENTRIES.items() for n in names}


@contextlib.contextmanager
def _jit_settings(options: dict):
    """pycc compiles every export with one set of flags; give each function its own
    ``@njit`` settings instead, and the JIT's CPU features."""
    import numba.pycc.compiler as pcc
    from numba.core import codegen
    from numba.core.cpu import FastMathOptions

    features = codegen.JITCPUCodegen._get_host_cpu_features(None)
    orig_compile, orig_features = pcc.compile_extra, codegen.AOTCPUCodegen._customize_tm_features

    def compile_extra(typingctx, targetctx, func, args, return_type, flags, *a, **kw):
        opts = options.get(func, {})
        flags = copy.copy(flags)
        flags.release_gil = bool(opts.get("nogil", False))
        flags.fastmath = FastMathOptions(opts.get("fastmath", False))
        flags.error_model = opts.get("error_model", "python")
        return orig_compile(typingctx, targetctx, func, args, return_type, flags, *a, **kw)

    pcc.compile_extra = compile_extra
    codegen.AOTCPUCodegen._customize_tm_features = lambda self: features
    try:
        yield
    finally:
        pcc.compile_extra = orig_compile
        codegen.AOTCPUCodegen._customize_tm_features = orig_features


def build(directory: Path | None = None, select=None) -> dict | None:
    """Compile the JIT-compiled signatures of the entry points into `directory`
    (default `_aot.module_dir()`); return the manifest, or None when there is
    nothing to export or no module can be used on this machine.

    `select(entry, key)`, when given, says which signatures to export (``entry``
    as ``"group.name"``, ``key`` the list of `_aot.value_key` of its arguments).
    """
    from llvmlite import binding as ll

    with warnings.catch_warnings():
        # pycc is "pending deprecation" with no replacement yet: said in docs/first_call.md
        warnings.simplefilter("ignore")
        from numba.pycc import CC

    if directory is None:
        directory = _aot.module_dir()
        if directory is None:
            return None
    directory = Path(directory)
    t0 = time.perf_counter()
    cc = CC(_aot.MODULE)
    cc.target_cpu = "host"
    cc.verbose = False
    exports, options = [], {}
    for entry, d in dispatchers().items():
        options[d.py_func] = d.targetoptions
        for args, key in python_signatures(d):
            if select is not None and not select(entry, key):
                continue
            symbol = f"e{len(exports)}"
            cc.export(symbol, d.overloads[args].signature)(d.py_func)
            exports.append({"symbol": symbol, "entry": entry, "key": key})
    if not exports:
        return None
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        cc.output_dir = str(tmp)
        with _jit_settings(options):
            cc.compile()
        module = _aot.MODULE + importlib.machinery.EXTENSION_SUFFIXES[0]
        if not (tmp / module).exists():
            raise RuntimeError(f"numba.pycc wrote no {module} in {tmp}")
        manifest = {
            "format": _aot.FORMAT,
            "module": module,
            "exports": exports,
            "cpu": ll.get_host_cpu_name(),
            "seconds": round(time.perf_counter() - t0, 1),
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        _replace_dir(tmp, directory)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return manifest


def _replace_dir(new: Path, final: Path) -> None:
    """Move the directory `new` to `final`, replacing an older build whole (a process
    that loaded the old module keeps its mapping)."""
    old = None
    if final.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old.", dir=final.parent))
        final.rename(old / "build")
    new.rename(final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
