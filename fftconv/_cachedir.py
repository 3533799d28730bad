"""Where fftconv keeps what it learns about the machine, and how it writes there.

The cache directory holds FFTW wisdom and the planner's calibration profile.
It is ``$FFTCONV_CACHE_DIR`` when set, else the platform's user cache
directory (``$XDG_CACHE_HOME/fftconv``, ``~/.cache/fftconv``,
``~/Library/Caches/fftconv`` or ``%LOCALAPPDATA%\\fftconv\\Cache``).
Everything is written atomically: a temporary file beside the target, then
``os.replace``, so a reader never sees half a file.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path


class CacheWarning(UserWarning):
    """A cache file could not be read or written; fftconv carried on without it."""


def cache_dir() -> Path:
    """The directory fftconv caches wisdom and calibration in (not created here)."""
    env = os.environ.get("FFTCONV_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
        return base / "fftconv" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "fftconv"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "fftconv"


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same directory.

    Raises OSError when the directory cannot be created or written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
