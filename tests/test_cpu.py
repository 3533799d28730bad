"""fftconv._cpu: the L2 size read from sysfs, and the band engine's ring size from it."""

from __future__ import annotations

import pytest

from fftconv import _cpu


def _cache(root, index, level, kind, size):
    d = root / f"index{index}"
    d.mkdir()
    (d / "level").write_text(f"{level}\n")
    (d / "type").write_text(f"{kind}\n")
    (d / "size").write_text(f"{size}\n")


@pytest.fixture
def sysfs(tmp_path, monkeypatch):
    monkeypatch.setattr(_cpu, "_CACHES", tmp_path)
    _cpu.l2_bytes.cache_clear()
    yield tmp_path
    _cpu.l2_bytes.cache_clear()


@pytest.mark.parametrize(
    "size, l2, ring",
    [("2048K", 2 << 20, 1 << 20), ("512K", 512 << 10, 256 << 10), ("1M", 1 << 20, 512 << 10),
     ("64K", 64 << 10, 128 << 10), ("32M", 32 << 20, 1 << 20)],
)  # fmt: skip
def test_l2_and_ring(sysfs, size, l2, ring):
    _cache(sysfs, 0, 1, "Data", "48K")
    _cache(sysfs, 1, 1, "Instruction", "32K")
    _cache(sysfs, 2, 2, "Unified", size)
    _cache(sysfs, 3, 3, "Unified", "480M")
    assert _cpu.l2_bytes() == l2
    assert _cpu.ring_bytes() == ring


@pytest.mark.parametrize("size", ["", "lots", "K"])
def test_unreadable_or_missing_is_the_default(sysfs, size):
    _cache(sysfs, 2, 2, "Unified", size)
    assert _cpu.l2_bytes() == _cpu.DEFAULT_L2_BYTES
    _cpu.l2_bytes.cache_clear()
    for f in (sysfs / "index2").iterdir():
        f.unlink()
    assert _cpu.l2_bytes() == _cpu.DEFAULT_L2_BYTES  # files gone: OSError
    assert _cpu.ring_bytes() == _cpu.DEFAULT_L2_BYTES // 2


def test_strip_columns():
    assert _cpu.strip_columns(20000, 41, 1, 1 << 20) == 6240  # whole cache lines
    assert _cpu.strip_columns(2000, 5, 3, 1 << 20) == 2000  # the whole row fits
    assert _cpu.strip_columns(5000, 399, 4, 4096) == 16  # never fewer than 16
    assert _cpu.strip_columns(10, 5, 1, 1 << 20) == 16  # an image narrower than 16: clipped
