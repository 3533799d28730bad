"""The ahead-of-time build of the row kernels (`fftconv.methods._aot`, `_aot_build`).

One small module is built (float64 grey, float32 photos) in a temporary
cache directory; every case then runs through `fftconv.convolve` on it and
on numba's JIT kernels, and the two results must be the same bits.  The
namespaces are loaded with fallbacks that fail, so a case that silently fell
back to the JIT would fail the test instead of passing it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import fftconv
from fftconv._cachedir import CacheWarning
from fftconv.methods import _aot, rows
from reference import direct_reference

pytestmark = pytest.mark.skipif(_aot.tag() is None, reason="no CPU fingerprint or no numba")


def _photo(shape, dtype, rng):
    x = rng.random(shape)
    return (x * 255).round().astype(dtype) if np.dtype(dtype).kind == "u" else x.astype(dtype)


def _hann_outer(n, dtype):
    g = np.hanning(n + 2)[1:-1]
    return np.outer(g, g).astype(dtype)


def _cases():
    """(name, image, kernel, keyword arguments) of every engine the module serves."""
    rng = np.random.default_rng(3)
    grey = rng.random((70, 90))
    rgb = rng.random((50, 60, 3)).astype(np.float32)
    return [
        ("grey 3x3", grey, rng.random((3, 3)), dict(method="direct")),
        ("grey 7x7", grey, rng.random((7, 7)), dict(method="direct", boundary="mirror")),
        ("grey 9x9", grey, rng.random((9, 9)), dict(method="direct", boundary="wrap")),
        (
            "grey separable",
            rng.random((300, 280)),
            _hann_outer(31, np.float64),
            dict(method="separable"),
        ),
        (
            "rgb 3x3",
            rgb,
            rng.random((3, 3)).astype(np.float32),
            dict(channel_axis=-1, method="direct"),
        ),
        (
            "rgb 9x9",  # the general driver, beyond the unrolled sizes
            rgb,
            rng.random((9, 9)).astype(np.float32),
            dict(channel_axis=-1, method="direct"),
        ),
        (
            "rgb per channel",
            rgb,
            rng.random((5, 5, 3)).astype(np.float32),
            dict(channel_axis=-1, method="direct", boundary="fill", fillvalue=0.5),
        ),
        (
            "uint8 photo",
            _photo((40, 50, 3), np.uint8, rng),
            rng.random((3, 3)).astype(np.float32),
            dict(channel_axis=-1, method="direct", out="uint8"),
        ),
        (
            "uint8 photo 5x5, fill",  # the rounding driver's fill rows (direct_rows_s3 inside)
            _photo((40, 50, 3), np.uint8, rng),
            rng.random((5, 5)).astype(np.float32),
            dict(channel_axis=-1, method="direct", out="uint8", boundary="fill"),
        ),
        (
            "uint8 photo gaussian",  # the strip-mined rank-one passes (`sep_rows`)
            _photo((160, 180, 3), np.uint8, rng),
            fftconv.kernels.gaussian(1.5),
            dict(channel_axis=-1, method="separable", out="uint8"),
        ),
        (
            "uint8 photo box, fill",
            _photo((160, 180, 3), np.uint8, rng),
            fftconv.kernels.box(4),
            dict(channel_axis=-1, method="separable", out="uint8", boundary="fill"),
        ),
        (
            "uint8 photo blocks",  # overlap-add blocks as channel planes (split, merge)
            _photo((200, 300, 3), np.uint8, rng),
            rng.random((9, 9)).astype(np.float32),
            dict(channel_axis=-1, method="oa", out="uint8"),
        ),
        (
            "rgb blocks, fill",
            rgb,
            rng.random((9, 9)).astype(np.float32),
            dict(channel_axis=-1, method="oa", boundary="fill"),
        ),
        (
            "uint8 photo per channel",  # bands split into planes and merged back
            _photo((40, 50, 3), np.uint8, rng),
            rng.random((5, 5, 3)).astype(np.float32),
            dict(channel_axis=-1, method="direct", out="uint8", boundary="mirror"),
        ),
    ]


def _run(a, k, kw):
    kw = dict(kw)
    if kw.get("out") == "uint8":
        kw["out"] = np.zeros_like(a)
    kw.setdefault("boundary", "symmetric")
    return fftconv.convolve(a, k, "same", **kw)


def _select(entry, key):
    """The signatures the cases need: float64 grey, float32 channels-last (one kernel
    per channel runs the grey kernels on float32 channel planes)."""
    dtypes = {k[0] for k in key if isinstance(k, list) and k[0] != "<i8"}
    if entry.startswith(("grey.", "small.")):
        return dtypes == {"<f8"} or (entry == "small.rows_5x5" and dtypes == {"<f4"})
    return entry in (
        "il.direct_rows_s3",
        "il.rows_3x3_s3",
        "il.rows_3x3_s3_r",
        "il.rows_5x5_s3_r",
        "il.load_rows",
        "il.store_rounded",
        "u8.sep_rows",
        "planar.split_rows",
        "planar.merge_rows",
    ) and dtypes <= {"<f4", "|u1"}


def _fail():
    raise AssertionError("a call fell back to the JIT kernels")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(cache directory, module directory, the JIT results of every case)."""
    pytest.importorskip("numba")
    from fftconv.methods import _aot_build

    cache = tmp_path_factory.mktemp("aot-cache")
    saved = rows.USE_AOT
    rows.USE_AOT = False
    try:
        jit = {name: _run(a, k, kw) for name, a, k, kw in _cases()}
    finally:
        rows.USE_AOT = saved
    directory = cache / "aot" / _aot.tag()
    manifest = _aot_build.build(directory, select=_select)
    assert manifest is not None and manifest["exports"]
    return cache, directory, jit


@pytest.fixture
def aot_engine(built, monkeypatch):
    """The module's kernels as the engine, with fallbacks that fail."""
    _, directory, _ = built
    loaded = _aot.load(_fail, _fail, directory)
    assert loaded is not None
    monkeypatch.setattr(rows, "USE_AOT", True)
    monkeypatch.setattr(rows, "_aot_loaded", loaded)
    return loaded


@pytest.mark.slow
@pytest.mark.parametrize("case", [c[0] for c in _cases()])
def test_aot_and_jit_agree_bit_for_bit(built, aot_engine, case):
    name, a, k, kw = next(c for c in _cases() if c[0] == case)
    got = _run(a, k, kw)
    want = built[2][name]
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
    if a.dtype.kind == "f" and a.ndim == 2:  # and both are right
        ref = direct_reference(a, k, "same", kw.get("boundary", "symmetric"))
        np.testing.assert_allclose(got, ref, rtol=1e-10)


def test_signatures_for_a_compiled_callers_constants_are_not_exported():
    """A kernel that a compiled caller calls with constants is compiled for them too
    (``Literal[int](0)``: the value is in the machine code); that signature has the
    general one's key, and exporting it under that key gave wrong rows to every call
    from Python (format 1)."""
    numba = pytest.importorskip("numba")
    from fftconv.methods import _aot_build

    @numba.njit
    def rows_from(a, i0, i1):
        t = 0.0
        for i in range(i0, i1):
            t += a[i]
        return t

    @numba.njit
    def first_row(a):
        return rows_from(a, 0, 1)

    a = np.arange(5.0)
    assert first_row(a) == 0.0
    assert rows_from(a, 0, 5) == 10.0
    if len(rows_from.signatures) < 2:
        pytest.skip("this numba compiles no signature for the caller's constants")
    got = _aot_build.python_signatures(rows_from)
    assert [key for _, key in got] == [[["<f8", 1, "C", True, True], "<i8", "<i8"]]
    assert [str(t) for t in got[0][0]][1:] == ["int64", "int64"]


def test_two_signatures_with_one_key_stop_the_build():
    pytest.importorskip("numba")
    from numba.core import types

    from fftconv.methods import _aot_build

    def f():
        pass

    d = _FakeDispatcher(f, [(types.int64,), (types.int64,)])
    with pytest.raises(RuntimeError, match="the same key"):
        _aot_build.python_signatures(d)


@pytest.mark.slow
def test_precompile_checks_the_module_against_the_jit(built, monkeypatch):
    """`fftconv precompile` runs its workload again on the module it built: the JIT's
    results bit for bit, else the first call that differs is named."""
    from fftconv import _precompile

    cache, _, jit = built
    monkeypatch.setenv("FFTCONV_CACHE_DIR", str(cache))
    monkeypatch.setattr(rows, "_aot_loaded", None)
    name, a, k, kw = next(c for c in _cases() if c[0] == "rgb 9x9")
    calls = [(fftconv.convolve, (a, k, "same"), dict(kw, boundary="symmetric"))]
    assert _precompile._disagreement(calls, [jit[name]]) is None
    wrong = jit[name].copy()
    wrong[7, 3, 1] += 1
    described = _precompile._disagreement(calls, [wrong])
    assert described == "convolve(float32[50, 60, 3], float32[9, 9], channel_axis=-1, " + (
        "method='direct', boundary='symmetric')"
    )


def test_a_module_that_disagrees_is_removed(monkeypatch, tmp_path):
    pytest.importorskip("numba")
    from fftconv import _precompile
    from fftconv.methods import _aot_build

    directory = tmp_path / "aot" / "tag"
    directory.mkdir(parents=True)
    (directory / "manifest.json").write_text("{}")
    monkeypatch.setattr(_aot_build, "build", lambda: {"exports": [1]})
    monkeypatch.setattr(_aot, "module_dir", lambda: directory)
    monkeypatch.setattr(_precompile, "_disagreement", lambda calls, jit: "convolve(x)")
    with pytest.warns(CacheWarning, match=r"disagreed with numba's JIT kernels on convolve\(x\)"):
        _precompile._build_aot([], [])
    assert not directory.exists()


class _FakeDispatcher:
    def __init__(self, py_func, signatures):
        self.py_func, self.signatures = py_func, signatures


@pytest.mark.slow
def test_unmatched_signature_takes_the_jit(built, monkeypatch):
    """float32 grey 3x3 was not exported: the call takes the JIT kernel, same result."""
    _, directory, _ = built
    calls = []

    def jit_grey():
        calls.append(1)
        return rows.jit_kernels()

    loaded = _aot.load(jit_grey, _fail, directory)
    monkeypatch.setattr(rows, "_aot_loaded", loaded)
    rng = np.random.default_rng(1)
    a = rng.random((40, 40), dtype=np.float32)
    k = rng.random((3, 3)).astype(np.float32)
    got = fftconv.convolve(a, k, "same", method="direct")
    assert calls
    monkeypatch.setattr(rows, "USE_AOT", False)
    np.testing.assert_array_equal(got, fftconv.convolve(a, k, "same", method="direct"))


@pytest.mark.slow
def test_a_fresh_process_loads_the_module_without_numba(built, tmp_path):
    cache, _, jit = built
    a, k = _cases()[0][1:3]
    call = "r = fftconv.convolve(a, k, 'same', 'symmetric', method='direct')"
    numba, r = _in_a_fresh_process(cache, tmp_path, a, k, call)
    assert not numba
    np.testing.assert_array_equal(r, jit["grey 3x3"])


def _in_a_fresh_process(cache, tmp_path, a, k, call: str):
    """Whether a fresh process with the module in `cache` imported numba for `call`
    (code that reads `a` and `k` and binds its result to `r`), and that result."""
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "k.npy", k)
    code = (
        "import sys, numpy as np, fftconv\n"
        f"a = np.load({str(tmp_path / 'a.npy')!r}); k = np.load({str(tmp_path / 'k.npy')!r})\n"
        f"{call}\n"
        f"np.save({str(tmp_path / 'r.npy')!r}, r)\n"
        "print('numba' in sys.modules)\n"
    )
    env = dict(os.environ, FFTCONV_CACHE_DIR=str(cache), FFTCONV_AOT="1")
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() in (["True"], ["False"]), res.stdout
    return res.stdout.split() == ["True"], np.load(tmp_path / "r.npy")


@pytest.mark.slow
@pytest.mark.parametrize(
    "case", ["uint8 photo", "uint8 photo gaussian", "uint8 photo per channel", "uint8 photo blocks"]
)
def test_a_fresh_process_runs_a_photo_without_numba(built, tmp_path, case):
    """A uint8 photo into a uint8 `out=` with a 3x3 kernel (the rounding driver), a
    rank-one kernel (the strip-mined engine), one kernel per channel or overlap-add
    blocks (the planes' split and merge): no numba imported."""
    cache, _, jit = built
    name, a, k, kw = next(c for c in _cases() if c[0] == case)
    call = (
        f"r = fftconv.convolve(a, k, 'same', {kw.get('boundary', 'symmetric')!r}, "
        f"channel_axis=-1, out=np.empty_like(a), method={kw['method']!r})"
    )
    numba, r = _in_a_fresh_process(cache, tmp_path, a, k, call)
    assert not numba
    np.testing.assert_array_equal(r, jit[name])


@pytest.mark.slow
def test_the_aot_kernels_release_the_gil(built):
    """While a long band runs on another thread, this thread runs Python: it wakes
    long before the band ends (holding the GIL, the band would keep it asleep to
    the end)."""
    import threading
    import time

    _, directory, _ = built
    grey, _ = _aot.load(_fail, _fail, directory)
    n = 2000
    a = np.random.default_rng(0).random((n, n))
    w = np.ones((7, 7))
    out = np.empty_like(a)
    rowmap = np.clip(np.arange(n + 6) - 3, 0, n - 1)
    fill = np.zeros(1)
    best = None
    for _ in range(3):
        started = threading.Event()
        span = {}

        def band(started=started, span=span):
            started.set()
            t = time.perf_counter()
            grey.direct_rows(a, w, out, rowmap, rowmap, fill, 3, 3, n - 3, 0, n)
            span["call"] = time.perf_counter() - t

        th = threading.Thread(target=band)
        t0 = time.perf_counter()
        th.start()
        started.wait()
        woke = time.perf_counter() - t0
        th.join()
        share = woke / span["call"]
        best = share if best is None else min(best, share)
    assert best < 0.5, best


def test_value_keys_are_numbas_types():
    pytest.importorskip("numba")
    import numba

    from fftconv.methods._aot_build import _type_key

    a = np.zeros((4, 6), np.float32)
    ro = np.zeros(5)
    ro.flags.writeable = False
    values = [
        a,
        np.asfortranarray(a),
        a[:, ::2],
        a[:1],
        ro,
        np.zeros(3, np.uint8),
        np.zeros(3, np.int64),
        3,
        2.5,
        True,
        np.float32(1.5),
        np.int64(2),
    ]
    for v in values:
        assert _freeze(_type_key(numba.typeof(v))) == _aot.value_key(v), v


def _freeze(k):
    return tuple(k) if isinstance(k, list) else k


def test_no_module_means_the_jit(tmp_path):
    assert _aot.load(_fail, _fail, tmp_path / "none") is None


def test_a_broken_manifest_is_said_once_and_ignored(tmp_path):
    d = tmp_path / "aot" / "x"
    d.mkdir(parents=True)
    (d / "manifest.json").write_text(json.dumps({"module": "missing.so", "exports": []}))
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        assert _aot.load(_fail, _fail, d) is None
    assert any(issubclass(w.category, CacheWarning) for w in got)
    (d / "manifest.json").write_text("{not json")
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        assert _aot.load(_fail, _fail, d) is None


def test_the_tag_follows_the_kernel_sources_and_cpu(monkeypatch):
    t = _aot.tag()
    monkeypatch.setattr(_aot, "cpu_fingerprint", lambda: "another cpu")
    assert _aot.tag() not in (t, None)
    monkeypatch.setattr(_aot, "numba_version", lambda: None)
    assert _aot.tag() is None


@pytest.mark.slow
def test_without_numba_the_module_is_not_used(built, tmp_path):
    """A core-only process (numba not importable) sums with numpy even where a
    module was built: the module's fallbacks would need numba."""
    cache, _, _ = built
    code = (
        "import sys\n"
        "sys.modules['numba'] = None\n"
        "import numpy as np, fftconv\n"
        "from fftconv.methods import rows\n"
        "assert rows.kernels() is None\n"
        "a = np.arange(20.0).reshape(4, 5)\n"
        "print(fftconv.convolve(a, np.ones((3, 3)), 'same', 'mirror')[1, 1])\n"
    )
    env = dict(os.environ, FFTCONV_CACHE_DIR=str(cache))
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert res.returncode == 0, res.stderr
    assert float(res.stdout) == 54.0


def test_precompile_builds_after_the_jit_workload(monkeypatch):
    """`precompile` compiles on the JIT (whatever the switch said), then builds the
    module and looks for it again."""
    pytest.importorskip("numba")
    from fftconv._precompile import precompile
    from fftconv.methods import _aot_build

    seen = []
    monkeypatch.setattr(rows, "USE_AOT", True)
    monkeypatch.setattr(_aot_build, "build", lambda: seen.append(rows.USE_AOT))
    monkeypatch.setattr(rows, "_aot_loaded", False)
    assert precompile(["float64"], channels=[1], photo_dtypes=[], calibrate=False) is not None
    assert seen == [True] and rows.USE_AOT is True
    assert rows._aot_loaded is None  # looked up again on the next call


def test_a_failed_build_is_a_warning(monkeypatch):
    pytest.importorskip("numba")
    from fftconv._precompile import precompile
    from fftconv.methods import _aot_build

    def fail():
        raise OSError("no C compiler")

    monkeypatch.setattr(_aot_build, "build", fail)
    monkeypatch.setattr(rows, "_aot_loaded", False)
    with pytest.warns(CacheWarning, match="no C compiler"):
        assert precompile(["float64"], channels=[1], photo_dtypes=[], calibrate=False) is not None
