"""Image files in and out, for images larger than memory.

Reading never loads more than it must: ``.npy`` files and uncompressed TIFFs
are memory-mapped read-only, tiled or compressed TIFFs (BigTIFF included) and
zarr arrays are opened as zarr arrays that decode only the chunks a slice
touches. PNG and JPEG are decoded whole (their formats allow nothing else),
behind a decompression-bomb guard that a caller lifts for one call with
`max_pixels`, never for the whole process.

Files that are not decoded whole (``.npy``, TIFF, zarr) may claim any size in
their headers: images with more than `DEFAULT_MAX_STORED_PIXELS` pixels are
refused unless the call raises `max_stored_pixels`, so an 8 KB file claiming a
terapixel never starts a run.

Writing is atomic: `create_output` writes into a temporary file beside the
destination and renames it over the destination only when the whole result is
in it, so an interrupted or failed run never leaves a half-written file, and
an existing file is replaced only when asked (``force=True``). Before anything
is computed, the output's size is checked against the free space of its
directory, and ``.npy`` and TIFF outputs (written through memory maps, where a
full disk would kill the process with SIGBUS) have their blocks reserved
(``posix_fallocate``): a full disk is an `OSError` (ENOSPC) with a one-line
message, and the temporary file is removed.

The temporary file's name holds the writing process's id and host:
``.NAME.PID@HOST.RANDOM.fftconv-tmp.SUFFIX``. A process killed outright (SIGKILL,
power loss) cannot remove it; the next `create_output` in that directory, or
`remove_stale_temps` (``fftconv clean DIR``), removes those whose process no
longer runs on this host, and never one of a running process.

`tifffile`, `zarr` and `Pillow` are imported only when a file of theirs is
read or written (``pip install 'fftconv[io]'``).
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import socket
import stat
import time
import uuid
import zlib
from pathlib import Path

import numpy as np

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MAX_STORED_PIXELS",
    "FORMATS",
    "DiskFullError",
    "AtomicOutput",
    "ImageTooLargeError",
    "cast_to",
    "create_output",
    "open_image",
    "probe",
    "remove_stale_temps",
]

#: PNG and JPEG images with more pixels than this are refused unless the call
#: passes a larger `max_pixels` (Pillow's own default error limit).
DEFAULT_MAX_PIXELS = 178_956_970

#: ``.npy``, TIFF and zarr images with more pixels than this (100 gigapixels) are
#: refused unless the call passes a larger `max_stored_pixels`: their headers may
#: claim any size at no cost to whoever wrote them.
DEFAULT_MAX_STORED_PIXELS = 10**11

#: Suffix -> format name, for reading and writing.
FORMATS = {
    ".npy": "npy",
    ".tif": "tiff",
    ".tiff": "tiff",
    ".zarr": "zarr",
    ".png": "png",
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
}


class ImageTooLargeError(ValueError):
    """An image has more pixels than `max_pixels` (PNG, JPEG) or `max_stored_pixels`
    (``.npy``, TIFF, zarr) allows."""


def _format(path, role: str) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(
            f"{role} {str(path)!r}: unknown image format {suffix or '(no suffix)'!r}; "
            f"use one of {', '.join(sorted(FORMATS))}"
        )
    return FORMATS[suffix]


def _need(module: str, fmt: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(
            f"reading and writing {fmt} files needs {module}: pip install 'fftconv[io]'"
        ) from None


# --------------------------------------------------------------------------- reading


def open_image(
    path,
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    max_stored_pixels: int | None = DEFAULT_MAX_STORED_PIXELS,
):
    """Open an image file for reading, without loading it where the format allows.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.npy``, ``.tif``/``.tiff``, ``.zarr``, ``.png`` or ``.jpg``/``.jpeg``
        file (a directory for zarr).
    max_pixels : int or None
        The decompression-bomb guard for PNG and JPEG: images with more pixels
        are refused with `ImageTooLargeError`. None lifts it for this call.
    max_stored_pixels : int or None
        The same guard for ``.npy``, TIFF and zarr files, which are not decoded
        whole but whose headers may claim any size. None lifts it.

    Returns
    -------
    array-like
        Read-only: an np.memmap (``.npy``, uncompressed TIFF), a zarr array
        (tiled or compressed TIFF, zarr) or an ndarray (PNG, JPEG) of shape
        ``(rows, columns)`` or ``(rows, columns, channels)``.

    Raises
    ------
    FileNotFoundError
        `path` does not exist.
    ValueError
        Unknown format, unreadable or non-numeric content, or too many pixels.

    Examples
    --------
    >>> import os, tempfile
    >>> d = tempfile.mkdtemp()
    >>> np.save(os.path.join(d, "a.npy"), np.arange(6, dtype=np.uint8).reshape(2, 3))
    >>> img = open_image(os.path.join(d, "a.npy"))
    >>> type(img).__name__, img.shape, img.dtype, img.flags.writeable
    ('memmap', (2, 3), dtype('uint8'), False)
    """
    path = os.fspath(path)
    fmt = _format(path, "input")
    if not os.path.exists(path):
        raise FileNotFoundError(f"input {path!r} does not exist")
    try:
        if fmt == "npy":
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        elif fmt == "tiff":
            arr = _open_tiff(path)
        elif fmt == "zarr":
            zarr = _need("zarr", "zarr")
            arr = zarr.open_array(path, mode="r")
        else:
            arr = _open_pillow(path, fmt, max_pixels)
    except (ImageTooLargeError, ImportError):
        raise
    except (ValueError, OSError, TypeError, KeyError, SyntaxError) as exc:
        # (Pillow reports a file that is not the format its suffix says as SyntaxError.)
        raise ValueError(f"input {path!r}: cannot read as {fmt} ({exc})") from None
    except Exception as exc:  # noqa: BLE001 - the decoders' own errors (TiffFileError, ...)
        raise ValueError(
            f"input {path!r}: cannot read as {fmt} ({type(exc).__name__}: {exc})"
        ) from None
    dt = np.dtype(arr.dtype)
    if dt.kind not in "biufc" or len(arr.shape) == 0:
        raise ValueError(
            f"input {path!r}: holds {dt} data of shape {arr.shape}; an image must "
            "be a numeric array"
        )
    if fmt not in ("png", "jpeg") and max_stored_pixels is not None:
        pixels = int(np.prod([int(n) for n in arr.shape[:2]], dtype=object))
        if pixels > max_stored_pixels:
            dims = "x".join(str(int(n)) for n in arr.shape)
            raise ImageTooLargeError(
                f"input {path!r} claims {dims} = {pixels:,} pixels, more than "
                f"max_stored_pixels={max_stored_pixels:,}; if that is right, pass a larger "
                f"limit (--max-pixels {pixels} on the command line)"
            )
    return arr


def _open_tiff(path: str):
    tifffile = _need("tifffile", "TIFF")
    with tifffile.TiffFile(path) as tif:
        axes = tif.series[0].axes
        _check_complete(tif, path)
    try:
        arr = tifffile.memmap(path, mode="r")
    except ValueError:
        # Tiled, compressed or otherwise not one contiguous block: read it
        # through zarr, which decodes only the tiles or strips a slice needs.
        zarr = _need("zarr", "tiled or compressed TIFF")
        store = tifffile.imread(path, aszarr=True)
        arr = zarr.open_array(store, mode="r")
    if axes in ("SYX", "CYX") and len(arr.shape) == 3:
        # Planar colour (one plane per channel): present it as rows x columns x channels.
        arr = np.moveaxis(arr, 0, -1) if isinstance(arr, np.ndarray) else _ChannelsLast(arr)
    return arr


def _check_complete(tif, path: str) -> None:
    """A truncated TIFF would fail (or, memory-mapped, kill the process with SIGBUS)
    only when a tile reaches the missing part: check every strip and tile lies in the
    file before any work starts."""
    size = os.path.getsize(path)
    for page in tif.series[0].pages:
        if page is None:
            continue
        ends = [int(o) + int(c) for o, c in zip(page.dataoffsets, page.databytecounts)]
        if ends and max(ends) > size:
            raise ValueError(
                f"the file is truncated: its image data end at byte {max(ends):,}, "
                f"the file has {size:,}"
            )


class _ChannelsLast:
    """A read-only (rows, columns, channels) view of a (channels, rows, columns) store."""

    def __init__(self, store):
        self.store = store
        c, h, w = store.shape
        self.shape = (h, w, c)
        self.dtype = np.dtype(store.dtype)
        self.ndim = 3

    def __getitem__(self, index):
        if not isinstance(index, tuple):
            index = (index,)
        index = index + (slice(None),) * (3 - len(index))
        return np.moveaxis(np.asarray(self.store[index[2], index[0], index[1]]), 0, -1)

    def __array__(self, dtype=None, copy=None):
        out = self[:, :, :]
        return out if dtype is None else out.astype(dtype)


def _open_pillow(path: str, fmt: str, max_pixels):
    Image = _need("PIL.Image", fmt.upper())
    from PIL import JpegImagePlugin, PngImagePlugin

    plugin = {"png": PngImagePlugin.PngImageFile, "jpeg": JpegImagePlugin.JpegImageFile}[fmt]
    # The plugin class reads the header without Pillow's global
    # MAX_IMAGE_PIXELS check: this module's guard replaces it, per call.
    with plugin(path) as im:
        _guard(path, im.size, max_pixels)
        fast = _decode_fast(path, fmt, im)
        return fast if fast is not None else _pillow_to_array(im, Image)


def _codecs():
    """imagecodecs (the io extra), or None: its libjpeg-turbo and libpng read and write
    photos faster than Pillow's (docs/huge_photos.md)."""
    try:
        import imagecodecs
    except ImportError:
        return None
    return imagecodecs


#: The Pillow modes (8 bits a sample, each file's own rawmode) that imagecodecs decodes
#: to the array Pillow gives.
_FAST_MODES = {"jpeg": ("L", "RGB"), "png": ("L", "LA", "RGB", "RGBA")}


def _decode_fast(path, fmt: str, im) -> np.ndarray | None:
    """The image decoded by imagecodecs where the array is Pillow's (same shape and
    dtype: checked), else None (Pillow decodes it: palettes, 16 bits, CMYK, ...)."""
    ic = _codecs()
    if ic is None or im.mode not in _FAST_MODES[fmt] or "transparency" in im.info:
        return None
    raw = im.tile[0][3] if len(im.tile) == 1 else None
    rawmode = raw[0] if isinstance(raw, tuple) else raw
    if rawmode != im.mode:
        return None
    spng = getattr(ic, "SPNG", None) is not None and ic.SPNG.available
    if fmt == "jpeg":
        decode = ic.jpeg8_decode
    elif spng and im.mode != "LA":  # libspng: 1.3x faster than libpng here (LA: libpng)
        decode = ic.spng_decode
    else:
        decode = ic.png_decode
    try:
        with open(path, "rb") as f:
            arr = decode(f.read())
    except Exception:  # noqa: BLE001 - any codec error: Pillow decodes it (or says why)
        return None
    bands = len(im.mode)
    shape = (im.size[1], im.size[0]) + ((bands,) if bands > 1 else ())
    if arr.dtype != np.uint8 or arr.shape != shape:
        return None
    return np.ascontiguousarray(arr)


def _guard(path, size, max_pixels) -> None:
    if max_pixels is None:
        return
    pixels = int(size[0]) * int(size[1])
    if pixels > max_pixels:
        raise ImageTooLargeError(
            f"input {str(path)!r} has {size[0]}x{size[1]} = {pixels:,} pixels, more than "
            f"max_pixels={max_pixels:,} (a guard against decompression bombs); if you trust "
            f"the file, pass max_pixels={pixels} (--max-pixels {pixels} on the command line)"
        )


def _target_mode(mode: str, transparency: bool) -> str:
    """The Pillow mode an image of `mode` is read in (one table for reading and probing)."""
    if mode in ("1", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV", "La"):
        return "RGBA" if ("A" in mode or transparency) else ("L" if mode == "1" else "RGB")
    if mode in ("I;16B", "I;16L", "I;16N"):
        return "I;16"
    return mode


#: Rows a decoded Pillow image is copied out in at a time (bytes per strip).
STRIP_BYTES = 8 << 20


def _pillow_to_array(im, Image) -> np.ndarray:
    """The decoded image as an array, copied out in strips: ``np.asarray(im)`` would
    hold two more copies at once (Pillow's chunks and their join) beside its own."""
    target = _target_mode(im.mode, "transparency" in im.info)
    if target != im.mode:
        im = im.convert(target)
    w, h = im.size
    step = max(1, STRIP_BYTES // max(1, 4 * w * len(im.getbands())))
    arr = np.asarray(im.crop((0, 0, w, min(h, step))))
    if h > step:
        strip, arr = arr, np.empty((h,) + arr.shape[1:], arr.dtype)
        arr[:step] = strip
        for y in range(step, h, step):
            arr[y : y + step] = np.asarray(im.crop((0, y, w, min(h, y + step))))
    if arr.dtype == np.int32 and arr.size and arr.min() >= 0 and arr.max() <= 65535:
        arr = arr.astype(np.uint16)
    return arr


def probe(
    path,
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    max_stored_pixels: int | None = DEFAULT_MAX_STORED_PIXELS,
) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype `open_image` would give, without decoding pixels.

    Examples
    --------
    >>> import os, tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "a.npy")
    >>> np.save(p, np.zeros((4, 5, 3), np.uint16))
    >>> probe(p)
    ((4, 5, 3), dtype('uint16'))
    """
    path = os.fspath(path)
    fmt = _format(path, "input")
    if fmt in ("png", "jpeg"):
        if not os.path.exists(path):
            raise FileNotFoundError(f"input {path!r} does not exist")
        _need("PIL.Image", fmt.upper())
        from PIL import JpegImagePlugin, PngImagePlugin

        plugin = {"png": PngImagePlugin.PngImageFile, "jpeg": JpegImagePlugin.JpegImageFile}[fmt]
        try:
            with plugin(path) as im:
                _guard(path, im.size, max_pixels)
                w, h = im.size
                target = _target_mode(im.mode, "transparency" in im.info)
        except (OSError, SyntaxError, ValueError) as exc:
            if isinstance(exc, ImageTooLargeError):
                raise
            raise ValueError(f"input {path!r}: cannot read as {fmt} ({exc})") from None
        from PIL import Image

        channels = Image.getmodebands(target)
        dtype = np.dtype({"I;16": np.uint16, "I": np.uint16, "F": np.float32}.get(target, np.uint8))
        shape = (h, w) if channels == 1 else (h, w, channels)
        return shape, dtype
    arr = open_image(path, max_stored_pixels=max_stored_pixels)
    return tuple(arr.shape), np.dtype(arr.dtype)


# --------------------------------------------------------------------------- casting


def cast_to(res: np.ndarray, dtype, magnitude: bool = False) -> np.ndarray:
    """`res` in `dtype`: integers rounded half to even and clipped to their range
    (photos stay photos), the modulus of complex values when `magnitude`.

    Examples
    --------
    >>> cast_to(np.array([-3.0, 0.5, 1.5, 254.6, 300.0]), np.uint8)
    array([  0,   0,   2, 255, 255], dtype=uint8)
    >>> cast_to(np.array([3 + 4j]), np.float32, magnitude=True)
    array([5.], dtype=float32)
    """
    dtype = np.dtype(dtype)
    if magnitude and res.dtype.kind == "c":
        res = np.abs(res)
    if dtype.kind == "b":
        return res != 0
    if dtype.kind in "iu":
        from .methods.interleaved import round_into

        out = np.empty(res.shape, dtype)
        round_into(out, res)
        return out
    return res.astype(dtype, copy=False)


# --------------------------------------------------------------------------- writing


def _check_writable_format(fmt: str, path: str, shape, dtype: np.dtype) -> None:
    channels = 1 if len(shape) == 2 else (shape[2] if len(shape) == 3 else None)
    if fmt in ("png", "jpeg"):
        if channels is None:
            raise ValueError(
                f"output {path!r}: {fmt.upper()} holds 2-d grey or 3-d colour "
                f"images; got shape {tuple(shape)}"
            )
        ok = {
            "png": {(1, "uint8"), (3, "uint8"), (4, "uint8"), (2, "uint8"), (1, "uint16")},
            "jpeg": {(1, "uint8"), (3, "uint8")},
        }[fmt]
        if (channels, dtype.name) not in ok:
            what = ", ".join(f"{c} channel(s) {d}" for c, d in sorted(ok))
            raise ValueError(
                f"output {path!r}: {fmt.upper()} cannot hold {channels} channel(s) of "
                f"{dtype}; it holds {what}. Write a .tif or .npy file for other dtypes "
                "(or pass dtype='uint8')"
            )


def _host_tag() -> str:
    """This host, in 8 hex digits: a process id says nothing about another machine's
    processes (a shared network disk)."""
    return f"{zlib.crc32(socket.gethostname().encode()):08x}"


def _temp_path(path: Path) -> Path:
    return path.with_name(
        f".{path.name}.{os.getpid()}@{_host_tag()}.{uuid.uuid4().hex[:12]}.fftconv-tmp{path.suffix}"
    )


_TEMP_RE = re.compile(
    r"^\..+\.(?P<pid>\d+)@(?P<host>[0-9a-f]{8})\.[0-9a-f]{12}\.fftconv-tmp"
    r"(\.[^.]*)?$"
)
#: The temporary names of fftconv before they carried a process id.
_OLD_TEMP_RE = re.compile(r"^\..+\.[0-9a-f]{12}\.fftconv-tmp(\.[^.]*)?$")


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # another user's process (or no way to tell): keep its files
    return True


def remove_stale_temps(directory, *, older_than: float | None = None) -> list[Path]:
    """Remove the temporary outputs in `directory` that fftconv processes which no
    longer run left behind (killed by SIGKILL, a crash, power loss); returns them.

    Only names of fftconv's temporary outputs are considered, only those of this
    user, and only those whose process id (in the name) runs no process on this
    host. A process id reused by another process since keeps its file (the safe
    side). Temporary files from before fftconv put process ids in their names are
    removed only with `older_than` (seconds since last modified).

    Examples
    --------
    >>> import tempfile
    >>> remove_stale_temps(tempfile.mkdtemp())
    []
    """
    directory = Path(os.fspath(directory))
    host = _host_tag()
    uid = os.getuid() if hasattr(os, "getuid") else None
    removed = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    for entry in entries:
        m = _TEMP_RE.match(entry.name)
        if m is None and not (older_than is not None and _OLD_TEMP_RE.match(entry.name)):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if uid is not None and st.st_uid != uid:
            continue
        if m is not None:
            if m["host"] != host or _running(int(m["pid"])):
                continue
        elif time.time() - st.st_mtime < older_than:
            continue
        try:
            if stat.S_ISDIR(st.st_mode):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
        except OSError:
            continue
        removed.append(Path(entry.path))
    return removed


def _free_bytes(directory: Path) -> int | None:
    try:
        usage = shutil.disk_usage(directory)
    except OSError:
        return None
    return usage.free if usage.total else None  # (a pseudo file system tells nothing)


class DiskFullError(OSError):
    """Not enough free space for an output (errno ENOSPC); its text is one line."""

    def __str__(self) -> str:
        return str(self.strerror)


def _size(n: float) -> str:
    return f"{n / 1e9:,.2f} GB" if n >= 1e9 else f"{n / 1e6:,.1f} MB"


def _disk_full(path: Path, need: int, free: int | None) -> OSError:
    have = "" if free is None else f", {_size(free)} free"
    return DiskFullError(
        errno.ENOSPC,
        f"output {str(path)!r}: not enough disk space: the output "
        f"needs {_size(need)}{have} in {str(path.parent)!r}",
    )


def _reserve(path: str, nbytes: int) -> None:
    """Allocate the file's blocks now, so that writing through a memory map can never
    meet a full disk (a SIGBUS that kills the process)."""
    if not hasattr(os, "posix_fallocate"):
        return
    fd = os.open(path, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, nbytes)
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            raise
    finally:
        os.close(fd)


def _to_pillow(arr: np.ndarray, Image):
    """`arr` as a Pillow image for encoding. C-ordered uint8 grey, RGB and RGBA are
    read from the array's own memory (``Image.fromarray`` would first copy it into
    a bytes object: one more image in memory while the file is encoded)."""
    shape = arr.shape
    modes = {1: "L", 3: "RGB", 4: "RGBA"}
    c = shape[2] if arr.ndim == 3 else 1
    if arr.dtype == np.uint8 and arr.flags.c_contiguous and arr.ndim in (2, 3) and c in modes:
        return Image.frombuffer(modes[c], (shape[1], shape[0]), arr, "raw", modes[c], 0, 1)
    return Image.fromarray(arr)


#: zlib level of PNG outputs: as small as the default 6 for photos, 3x faster.
PNG_LEVEL = 3


class AtomicOutput:
    """A destination image written atomically; see `create_output`.

    Attributes
    ----------
    array : the array to write the result into (an np.memmap, zarr array or,
        for PNG and JPEG, an ndarray that is encoded on `commit`).
    path : the destination.
    temp : the temporary file or directory beside it.
    """

    def __init__(self, path, shape, dtype, *, force: bool = False, chunks=None):
        self.path = Path(os.fspath(path))
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self.format = _format(self.path, "output")
        _check_writable_format(self.format, str(self.path), self.shape, self.dtype)
        parent = self.path.parent
        if not parent.is_dir():
            raise FileNotFoundError(
                f"output {str(self.path)!r}: directory {str(parent)!r} does not exist"
            )
        if not os.access(parent, os.W_OK | os.X_OK):
            raise PermissionError(
                f"output {str(self.path)!r}: directory {str(parent)!r} is not writable"
            )
        if self.path.exists() or self.path.is_symlink():
            if not force:
                raise FileExistsError(
                    f"output {str(self.path)!r} exists; pass force=True (--force) to replace it"
                )
            if self.path.is_dir() and self.format != "zarr":
                raise IsADirectoryError(f"output {str(self.path)!r} is a directory")
        remove_stale_temps(parent)
        need = int(np.prod(self.shape, dtype=object)) * self.dtype.itemsize
        free = _free_bytes(parent)
        if self.format in ("npy", "tiff", "zarr") and free is not None and need > free:
            raise _disk_full(self.path, need, free)
        self.temp = _temp_path(self.path)
        self.done = False
        try:
            self.array = self._create(chunks)
        except OSError as exc:
            self.abort()
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise _disk_full(self.path, need, _free_bytes(parent)) from None
            raise PermissionError(
                f"output {str(self.path)!r}: cannot create a file in {str(parent)!r} "
                f"({exc.strerror or exc})"
            ) from None
        except BaseException:
            self.abort()
            raise

    def _create(self, chunks):
        t = str(self.temp)
        if self.format == "npy":
            arr = np.lib.format.open_memmap(t, mode="w+", dtype=self.dtype, shape=self.shape)
            _reserve(t, os.path.getsize(t))
            return arr
        if self.format == "tiff":
            tifffile = _need("tifffile", "TIFF")
            channels = self.shape[2] if len(self.shape) == 3 else 1
            photometric = "rgb" if channels in (3, 4) and self.dtype.kind == "u" else "minisblack"
            extra = (
                {"extrasamples": ["unassalpha"]} if channels == 4 and photometric == "rgb" else {}
            )
            nbytes = int(np.prod(self.shape)) * self.dtype.itemsize
            arr = tifffile.memmap(
                t,
                shape=self.shape,
                dtype=self.dtype,
                photometric=photometric,
                bigtiff=nbytes > 2**31,
                **extra,
            )
            _reserve(t, os.path.getsize(t))
            return arr
        if self.format == "zarr":
            zarr = _need("zarr", "zarr")
            if chunks is None:
                chunks = tuple(min(s, 1024) for s in self.shape[:2]) + tuple(self.shape[2:])
            return zarr.open_array(t, mode="w", shape=self.shape, chunks=chunks, dtype=self.dtype)
        _need("PIL.Image", self.format.upper())
        # The file is encoded at commit; create it now so that an unwritable
        # place fails before any work is done.
        with open(t, "xb"):
            pass
        return np.zeros(self.shape, self.dtype)

    def commit(self) -> Path:
        """Finish the file and rename it over the destination; returns the path."""
        if self.done:
            return self.path
        try:
            arr = self.array
            if isinstance(arr, np.memmap):
                arr.flush()
                mm = getattr(arr, "_mmap", None)
                self.array = None
                del arr
                if mm is not None:
                    try:
                        mm.close()
                    except BufferError:  # views still alive: the mapping closes with them
                        pass
            elif self.format in ("png", "jpeg"):
                if self.format == "png":  # deflated on every core (`fftconv._png`)
                    from . import _png
                    from ._problem import default_threads

                    with open(self.temp, "wb") as f:
                        _png.write_png(f, arr, level=PNG_LEVEL, threads=default_threads())
                else:
                    from PIL import Image

                    im = _to_pillow(arr, Image)
                    self.array = arr = None  # an RGB image was copied: the array can go
                    im.save(self.temp, format="JPEG", quality=95)
                self.array = None
            if self.format == "zarr" and self.path.exists():
                trash = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex[:12]}.old")
                os.replace(self.path, trash)
                os.replace(self.temp, self.path)
                shutil.rmtree(trash, ignore_errors=True)
            else:
                os.replace(self.temp, self.path)
        except BaseException:
            self.abort()
            raise
        self.done = True
        return self.path

    def abort(self) -> None:
        """Remove the temporary file; the destination is left as it was."""
        self.array = None
        if self.done:
            return
        if self.temp.is_dir():
            shutil.rmtree(self.temp, ignore_errors=True)
        else:
            try:
                self.temp.unlink()
            except FileNotFoundError:
                pass
        self.done = True

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.commit()
        else:
            self.abort()
        return False


def create_output(path, shape, dtype, *, force: bool = False, chunks=None) -> AtomicOutput:
    """A new destination image, written atomically.

    Use it as a context manager: write into ``out.array``; on leaving the block
    without an exception the file is finished and renamed over `path`, on an
    exception the temporary file is removed and `path` is untouched.

    Parameters
    ----------
    path : str or os.PathLike
        ``.npy``, ``.tif``/``.tiff`` (BigTIFF above 2 GiB), ``.zarr``,
        ``.png`` (uint8 grey, grey+alpha, RGB, RGBA; uint16 grey) or
        ``.jpg``/``.jpeg`` (uint8 grey or RGB).
    shape, dtype : the image's.
    force : bool
        Replace `path` if it exists (otherwise FileExistsError).
    chunks : tuple of int, optional
        zarr chunk shape (default 1024x1024 pixels).

    Raises
    ------
    FileExistsError, FileNotFoundError, PermissionError, ValueError
        Before anything is written: `path` exists without `force`, its
        directory does not exist or is not writable, or the format cannot hold
        the shape and dtype.

    Examples
    --------
    >>> import os, tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "out.npy")
    >>> with create_output(p, (2, 2), np.uint8) as out:
    ...     out.array[:] = 7
    >>> np.load(p)
    array([[7, 7],
           [7, 7]], dtype=uint8)
    >>> create_output(p, (2, 2), np.uint8)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    FileExistsError: output '...out.npy' exists; pass force=True (--force) to replace it
    """
    return AtomicOutput(path, shape, dtype, force=force, chunks=chunks)
