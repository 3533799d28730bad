"""pytest-benchmark settings of bench/: ``pytest bench --benchmark-only``.

The project's pytest settings disable benchmarks (``--benchmark-disable``, so that the
test suite never times anything); asking for ``--benchmark-only`` here turns them back
on. Images of 64 megapixels and more run only with ``--bench-large``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

#: Image sides: 1, 4 and 16 megapixels by default; 64 and 100 with --bench-large.
SIZES = [1024, 2048, 4096]
LARGE_SIZES = [8192, 10000]


def pytest_addoption(parser):
    parser.addoption(
        "--bench-large",
        action="store_true",
        help="also benchmark 64 and 100 megapixel images (GBs of memory)",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    if config.getoption("benchmark_only", False):
        config.option.benchmark_enable = True


def pytest_generate_tests(metafunc):
    if "size" in metafunc.fixturenames:
        large = metafunc.config.getoption("--bench-large")
        sizes = SIZES + (LARGE_SIZES if large else [])
        metafunc.parametrize("size", sizes, ids=[f"{n * n / 1e6:.0f}Mpx" for n in sizes])
