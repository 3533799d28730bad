"""Say so when numba compiles fftconv's kernels (first use on a machine), and how long.

numba compiles a kernel on its first call for each argument type and caches the
machine code on disk; only a real compile (not a cache load) fires numba's
``numba:compile`` event.  The listener installed here logs one line to the
``fftconv`` logger (printed on stderr when logging is not configured) when the
first compile of a process starts, and one when that compile, callees
included, ends.  ``fftconv precompile`` (`fftconv.precompile`) compiles every
kernel ahead of time.  Import this module only where numba is installed.
"""

from __future__ import annotations

import logging
import threading
import time

from numba.core import event

from . import _fork

log = logging.getLogger("fftconv")

_lock = _fork.lock()
_installed = False
_announced = False
_local = threading.local()


def install() -> None:
    """Listen to numba's compile events (once per process; numba must be importable)."""
    global _installed
    with _lock:
        if _installed:
            return
        event.register("numba:compile", _Listener())
        _installed = True


def _ours(data) -> bool:
    fn = getattr(data.get("dispatcher"), "py_func", None)
    return getattr(fn, "__module__", "").startswith("fftconv.")


class _Listener(event.Listener):
    def on_start(self, event) -> None:
        global _announced
        if not _ours(event.data):
            return
        depth = getattr(_local, "depth", 0)
        _local.depth = depth + 1
        if depth:
            return
        _local.t0 = time.perf_counter()
        _local.name = event.data["dispatcher"].py_func.__name__
        with _lock:
            first, _announced = not _announced, True
        _local.announcer = first
        if first:
            log.warning(
                "fftconv: compiling %s for this machine (numba, first use; the machine code "
                "is cached on disk; `fftconv precompile` compiles every kernel ahead of time)",
                _local.name,
            )

    def on_end(self, event) -> None:
        if not _ours(event.data):
            return
        _local.depth -= 1
        if _local.depth == 0 and _local.announcer:
            log.warning(
                "fftconv: compiled %s in %.1f s", _local.name, time.perf_counter() - _local.t0
            )
