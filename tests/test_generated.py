"""The generated compiled-kernel files are what tools/gen_direct_small.py writes (no numba
needed: the generator only renders text)."""

from __future__ import annotations

import importlib.util
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _generator():
    spec = importlib.util.spec_from_file_location(
        "gen_direct_small", ROOT / "tools" / "gen_direct_small.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_committed_files_equal_the_generators_output():
    rendered = _generator().render()
    assert set(rendered) == {
        pathlib.Path("fftconv/methods/_direct_small.py"),
        pathlib.Path("fftconv/methods/_direct_taps.py"),
        pathlib.Path("fftconv/methods/_interleaved_kernels.py"),
        pathlib.Path("fftconv/methods/_u8_sweeps.py"),
    }
    for rel, text in rendered.items():
        assert (ROOT / rel).read_text() == text, f"{rel} differs: run tools/gen_direct_small.py"


def test_generated_files_take_the_numba_settings_from_one_place():
    for text in _generator().render().values():
        assert "from ._jit import FASTMATH, JIT" in text
        assert "nogil" not in text.split('"""', 2)[2] and "cache=True" not in text
