"""Where fftconv keeps what it learns about the machine, and how it writes there.

The cache directory holds FFTW wisdom and the planner's calibration profile.
It is ``$FFTCONV_CACHE_DIR`` when set, else the platform's user cache
directory (``$XDG_CACHE_HOME/fftconv``, ``~/.cache/fftconv``,
``~/Library/Caches/fftconv`` or ``%LOCALAPPDATA%\\fftconv\\Cache``).
Everything is written atomically: a temporary file beside the target, then
``os.replace``, so a reader never sees half a file.

`numba_fallback_cache_dir` is where numba caches compiled code when neither the
package's directory nor the user's cache is writable: numba unpickles what it
finds there, so it must be a directory no one else can write.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import stat
import sys
import tempfile
import warnings
from pathlib import Path

from . import _fork


class CacheWarning(UserWarning):
    """A cache file could not be read or written; fftconv carried on without it."""


#: Cache files larger than this are not read (wisdom and profiles take kilobytes).
MAX_CACHE_FILE_BYTES = 16 * 2**20

_warned: set = set()
_warned_lock = _fork.lock()


def warn_once(key, message: str, stacklevel: int = 3) -> None:
    """A `CacheWarning` with `message`, the first time `key` is warned about in this
    process: a broken cache file or directory is said once, not once per plan."""
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    warnings.warn(message, CacheWarning, stacklevel=stacklevel + 1)


def read_json(path: Path):
    """The JSON document in `path`.

    Raises FileNotFoundError when there is none (no file, or no directory);
    ValueError with a one-line reason for a file that is too large, not UTF-8,
    not JSON, or nested too deeply for Python (``[[[[...``); OSError when it
    cannot be read.
    """
    try:
        with open(path, "rb") as f:
            # read(n) allocates n bytes first: ask for the file's size (a fresh process
            # reads three cache files before its first call), never more than the limit.
            size = os.fstat(f.fileno()).st_size
            raw = f.read(min(size, MAX_CACHE_FILE_BYTES) + 1)
    except NotADirectoryError:
        raise FileNotFoundError(f"no directory for {path}") from None
    if len(raw) > MAX_CACHE_FILE_BYTES:
        raise ValueError(f"larger than {MAX_CACHE_FILE_BYTES // 2**20} MiB")
    try:
        return json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not JSON ({exc})") from None


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


def private_temp_dir(name: str) -> tuple[Path | None, str]:
    """``$TMPDIR/<name>-<uid>``, a directory only this user can write, and "" ; or
    None and why it cannot be used.

    It is created with mode 0700. An existing one is used only when it is a real
    directory (not a link), owned by this user, writable by no one else (a
    directory of ours that others may only read is made 0700), inside a temporary
    directory that is sticky or not writable by others (so no one can swap it).
    """
    if not hasattr(os, "getuid"):
        return None, "no user ids on this platform"
    uid = os.getuid()
    base = Path(tempfile.gettempdir())
    path = base / f"{name}-{uid}"
    try:
        bst = os.stat(base)
        if bst.st_mode & stat.S_IWOTH and not bst.st_mode & stat.S_ISVTX:
            return None, f"{base} is writable by everyone and not sticky"
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        st = os.lstat(path)
    except OSError as exc:
        return None, f"cannot create {path}: {exc.strerror or exc}"
    if not stat.S_ISDIR(st.st_mode):
        return None, f"{path} exists and is not a directory"
    if st.st_uid != uid:
        return None, f"{path} belongs to uid {st.st_uid}, not to this user ({uid})"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return None, f"{path} is writable by other users (mode {stat.S_IMODE(st.st_mode):o})"
    if st.st_mode & 0o077:
        try:
            os.chmod(path, 0o700)
        except OSError as exc:
            return None, f"cannot make {path} private: {exc.strerror or exc}"
    return path, ""


def numba_fallback_cache_dir() -> Path:
    """The directory for numba's compiled-code cache when numba found no writable one.

    `private_temp_dir`'s ``fftconv-numba-cache-<uid>`` when it is safe; else a new
    directory of `tempfile.mkdtemp` (private, removed at exit), so compiled code
    is cached for this process only, said once by a `CacheWarning`.
    """
    path, why = private_temp_dir("fftconv-numba-cache")
    if path is not None:
        return path
    tmp = tempfile.mkdtemp(prefix="fftconv-numba-")
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    warnings.warn(
        f"numba's on-disk cache of compiled code is off for this process ({why}); set "
        "NUMBA_CACHE_DIR to a directory of your own to keep compiled code between runs",
        CacheWarning,
        stacklevel=3,
    )
    return Path(tmp)
