"""The band engine as a shared library (fftconv.methods._u8_native): built from numba's
code, bit-for-bit the numba engine's results, loaded without importing numba, and
never loaded when it is not this code's or this machine's."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from fftconv import _stream
from fftconv import kernels as K
from fftconv.methods import _u8_native as N

pytest.importorskip("numba")
if N._compiler() is None or not sys.platform.startswith("linux"):
    pytest.skip("the library needs Linux and a C compiler", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A cache directory holding the uint8 -> uint8 library (built once: seconds)."""
    d = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FFTCONV_CACHE_DIR", str(d))
        mp.setenv(N.ENV, "1")
        mp.setattr(N, "_loaded", {})
        path = N.build("uint8", "uint8")
    assert path is not None and path.is_file() and path.parent == d / "native"
    return d


@pytest.fixture
def library(cache, monkeypatch):
    monkeypatch.setenv("FFTCONV_CACHE_DIR", str(cache))
    monkeypatch.setenv(N.ENV, "1")
    monkeypatch.setattr(N, "_loaded", {})


def _photo(shape, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, shape, dtype=np.uint8)


def _both(img, k, monkeypatch, **options):
    """The stream's output through the library and through numba's engine."""
    plan = _stream.plan_stream(img.shape, img.dtype, k, threads=2, **options)
    outs = []
    for native in ("1", "0"):
        monkeypatch.setenv(N.ENV, native)
        monkeypatch.setattr(N, "_loaded", {})
        out = np.zeros(img.shape, plan.out_dtype)
        prof = _stream.run_stream(plan, img, out)
        assert prof.compiled == ("library" if native == "1" else "numba")
        outs.append(out)
    return outs


@pytest.mark.slow
@pytest.mark.parametrize(
    "shape, kernel, options",
    [
        ((97, 83), K.gaussian(2.0), dict(boundary="symmetric")),
        ((64, 71), np.outer(np.arange(1.0, 5.0), np.arange(6.0, 0, -1)) / 210, dict()),
        ((50, 40, 3), K.gaussian(1.5), dict(boundary="fill", fillvalue=300.0)),
        ((33, 45, 2), K.box(3), dict(boundary="nearest", correlate=True)),
    ],
)
def test_library_equals_numba_engine(library, monkeypatch, small_bands, shape, kernel, options):
    img = _photo(shape)
    ck = None
    if len(shape) == 3 and shape[2] == 2:  # grey + alpha: the alpha channel is copied
        delta = np.zeros(kernel.shape)
        delta[tuple(n // 2 for n in kernel.shape)] = 1
        ck = np.stack([kernel, delta])
    lib, jit = _both(img, kernel, monkeypatch, channel_kernels=ck, **options)
    np.testing.assert_array_equal(lib, jit)


@pytest.mark.parametrize("boundary", ["symmetric", "fill", "wrap"])
def test_in_memory_photo_runs_the_library(library, monkeypatch, boundary):
    """A uint8 photo into a uint8 `out=` with a separable kernel runs the library's
    engine where it is built, with numba's results bit for bit."""
    import fftconv

    img = _photo((400, 500, 3), seed=3)
    k = K.gaussian(2.0)
    calls = []
    real = N.NativeEngine.sep_rows
    monkeypatch.setattr(N.NativeEngine, "sep_rows", lambda *a: calls.append(1) or real(*a))
    outs = []
    for native in ("1", "0"):
        monkeypatch.setenv(N.ENV, native)
        monkeypatch.setattr(N, "_loaded", {})
        calls.clear()
        out = np.empty_like(img)
        fftconv.convolve(img, k, "same", boundary, channel_axis=-1, out=out)
        outs.append(out)
        assert bool(calls) == (native == "1")
    np.testing.assert_array_equal(outs[0], outs[1])


@pytest.fixture
def small_bands(monkeypatch):
    monkeypatch.setattr(_stream, "BAND", 12)
    monkeypatch.setattr(_stream, "RING_BYTES", 4096)


@pytest.mark.slow
def test_command_streams_without_numba(cache, tmp_path):
    """A fresh process with the library streams a TIFF and never imports numba."""
    tifffile = pytest.importorskip("tifffile")
    tifffile.imwrite(tmp_path / "in.tif", _photo((300, 200)), tile=(64, 64))
    code = (
        "import sys; from fftconv.cli import main; "
        f"rc = main(['apply', {str(tmp_path / 'in.tif')!r}, {str(tmp_path / 'out.tif')!r}, "
        "'-k', 'gaussian:sigma=2', '--quiet', '--profile']); "
        "print('numba' in sys.modules); sys.exit(rc)"
    )
    env = dict(os.environ, FFTCONV_CACHE_DIR=str(cache), PYTHONPATH=str(ROOT), FFTCONV_NATIVE="1")
    res = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stderr
    assert "library engine" in res.stdout
    assert res.stdout.strip().splitlines()[-1] == "False"


def test_disabled_or_missing(tmp_path, monkeypatch):
    monkeypatch.setenv(N.ENV, "1")
    monkeypatch.setenv("FFTCONV_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(N, "_loaded", {})
    assert N.load("uint8", "uint8") is None  # nothing built here
    assert N.library_path("uint8", "uint8") != N.library_path("uint8", "uint16")
    assert N.library_path("float64", "uint8") is None  # not a dtype of the stream
    monkeypatch.setenv(N.ENV, "0")
    assert N.library_path("uint8", "uint8") is None
    assert N.build("uint8", "uint8") is None


def test_foreign_file_is_not_loaded(tmp_path, monkeypatch):
    """A file that is not a loadable library (truncated, another machine's) is ignored:
    the stream runs on numba's engine."""
    monkeypatch.setenv(N.ENV, "1")
    monkeypatch.setenv("FFTCONV_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(N, "_loaded", {})
    path = N.library_path("uint8", "uint8")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\x7fELF not really")
    assert N.load("uint8", "uint8") is None
    img = _photo((40, 30))
    plan = _stream.plan_stream(img.shape, img.dtype, K.gaussian(1.0))
    out = np.zeros_like(img)
    assert _stream.run_stream(plan, img, out).compiled == "numba"


def test_key_follows_the_kernels_source(tmp_path, monkeypatch):
    """The library's name changes with the kernels' source: an edit never loads the
    library built before it."""
    monkeypatch.setenv(N.ENV, "1")
    monkeypatch.setenv("FFTCONV_CACHE_DIR", str(tmp_path))
    before = N.library_path("uint8", "uint8")
    real = Path.read_bytes

    def edited(self):
        data = real(self)
        return data + b"# edited" if self.name == "_u8_kernels.py" else data

    monkeypatch.setattr(Path, "read_bytes", edited)
    assert N.library_path("uint8", "uint8") != before


def test_wide_vectors_only_where_numba_is_left_to_choose(tmp_path, monkeypatch):
    """The library is compiled for 512-bit vectors on CPUs with AVX-512 (in a child
    process: numba reads its features when imported), never against the user's own
    ``NUMBA_CPU_FEATURES``; those are part of the library's name."""
    import llvmlite.binding as ll

    monkeypatch.setenv("FFTCONV_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv(N.ENV, "1")
    monkeypatch.delenv("NUMBA_CPU_FEATURES", raising=False)
    default = N.library_path("uint8", "uint8")
    wide = N.wide_features()
    if ll.get_host_cpu_features().get("avx512f"):
        assert wide.endswith(",-prefer-256-bit") and "+avx512f" in wide
    else:
        assert wide is None
    monkeypatch.setenv("NUMBA_CPU_FEATURES", "+avx2,+fma")
    assert N.wide_features() is None
    assert N.library_path("uint8", "uint8") != default


def test_command_builds_after_a_numba_stream(tmp_path, monkeypatch):
    tifffile = pytest.importorskip("tifffile")
    from fftconv.cli import main

    calls = []
    monkeypatch.setenv(N.ENV, "1")
    monkeypatch.setenv("FFTCONV_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(N, "_loaded", {})
    monkeypatch.setattr(N, "build", lambda a, b: calls.append((str(a), str(b))))
    tifffile.imwrite(tmp_path / "in.tif", _photo((40, 30)))
    out = tmp_path / "out.tif"
    assert main(["apply", str(tmp_path / "in.tif"), str(out), "-k", "box:3", "--quiet"]) == 0
    assert calls == [("uint8", "uint8")]


def test_failed_build_is_tried_once(tmp_path, monkeypatch):
    """A build that fails (here: no linker that works) leaves a marker, so later
    commands do not pay for the attempt again; the stream still runs on numba."""
    monkeypatch.setenv(N.ENV, "1")
    monkeypatch.setenv("FFTCONV_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(N, "_loaded", {})
    monkeypatch.setattr(N, "_compiler", lambda: "/bin/false")
    tried = []
    real = N._object
    monkeypatch.setattr(N, "_object", lambda a, b, d: tried.append(a) or real(a, b, d))
    assert N.build("uint8", "uint8") is None
    assert N.build("uint8", "uint8") is None
    assert tried == ["uint8"]
    assert N.load("uint8", "uint8") is None


def test_precompile_builds_the_stream_engine(tmp_path, monkeypatch):
    """`precompile` links the stream engine of each default pair (so the first
    `fftconv apply` neither imports numba nor builds), tries a failed build
    again, and warns where a pair cannot be built."""
    from fftconv import _precompile
    from fftconv._cachedir import CacheWarning

    assert _precompile.stream_pairs() == [("uint8", "uint8"), ("uint16", "uint16"),
                                          ("float32", "float32")]  # fmt: skip
    assert _precompile.stream_pairs(["float64"], ["int16"]) == []
    monkeypatch.setenv(N.ENV, "1")
    monkeypatch.setenv("FFTCONV_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(N, "_loaded", {})
    monkeypatch.setattr(_precompile, "_workload", lambda *a: [])  # the JIT kernels: not here
    path = N.library_path("uint8", "uint8")
    path.parent.mkdir(parents=True)
    path.with_suffix(".failed").touch()  # an earlier try failed: precompile tries again
    assert _precompile.precompile([], [1], ["uint8"], aot=False, calibrate=False) is not None
    assert path.is_file() and not path.with_suffix(".failed").exists()
    assert isinstance(N.load("uint8", "uint8"), N.NativeEngine)

    monkeypatch.setattr(N, "_compiler", lambda: None)
    with pytest.warns(CacheWarning, match="uint16 -> uint16 was not built"):
        _precompile.precompile([], [1], ["uint16"], aot=False)
    monkeypatch.setenv(N.ENV, "0")  # turned off: nothing is built, nothing said
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _precompile.precompile([], [1], ["uint16"], aot=False)
    monkeypatch.setenv(N.ENV, "1")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _precompile.precompile([], [1], ["uint16"], aot=False, stream=False)


def test_precompile_command_names_the_stream_libraries(library, monkeypatch, capsys):
    from fftconv import _precompile
    from fftconv.cli import main

    seen = []
    monkeypatch.setattr(_precompile, "precompile", lambda **kw: seen.append(kw) or 0.0)
    assert main(["precompile", "--dtypes", "float32"]) == 0
    assert seen[-1]["stream"] is True
    out = capsys.readouterr().out
    assert "stream engine (1 dtype pairs) in" in out  # uint8 is built in this cache
    assert main(["precompile", "--no-aot"]) == 0
    assert seen[-1]["stream"] is False and "stream engine" not in capsys.readouterr().out
