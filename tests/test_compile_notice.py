"""The one-line notice when numba compiles one of fftconv's kernels."""

from __future__ import annotations

import logging

import pytest

numba = pytest.importorskip("numba")

from fftconv import _compile_notice  # noqa: E402


def test_a_compile_is_announced_once_with_its_time(caplog, monkeypatch):
    monkeypatch.setattr(_compile_notice, "_announced", False)
    _compile_notice.install()

    def twice(x):
        return 2 * x

    def thrice(x):
        return 3 * x

    for fn in (twice, thrice):
        fn.__module__ = "fftconv.methods.fake_kernels"  # counts as one of fftconv's
    with caplog.at_level(logging.WARNING, logger="fftconv"):
        assert numba.njit(twice)(2) == 4
        assert numba.njit(thrice)(2) == 6
    lines = [r.getMessage() for r in caplog.records if r.name == "fftconv"]
    assert len(lines) == 2, lines
    assert lines[0].startswith("fftconv: compiling twice for this machine")
    assert "fftconv precompile" in lines[0]
    assert lines[1].startswith("fftconv: compiled twice in ")


def test_other_functions_are_not_announced(caplog, monkeypatch):
    monkeypatch.setattr(_compile_notice, "_announced", False)
    _compile_notice.install()
    with caplog.at_level(logging.WARNING, logger="fftconv"):
        assert numba.njit(lambda x: x + 1)(1) == 2
    assert not [r for r in caplog.records if r.name == "fftconv"]
