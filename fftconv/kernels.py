"""The kernel library: named 2-d kernels and the command line's kernel specs.

Every function returns a new float64 (or complex128) array whose centre is the
sample at index ``(k - 1) // 2`` on each axis, the sample that 'same' mode
aligns with each output pixel. Blur kernels sum to one, so they keep the
image's brightness; derivative kernels sum to zero.

`parse_spec` turns the text the ``fftconv`` command takes (``gaussian:sigma=8``,
``box:15``, ``motion:length=25,angle=30``, a ``.npy`` file) into a kernel.

A kernel is at most `MAX_SIDE` samples a side: larger requests (``box:20000``,
``gaussian:sigma=1e308``) are refused with a `ValueError` that names the size,
before anything is allocated; `parse_spec` also refuses kernels larger than a
memory budget it is given.
"""

from __future__ import annotations

import contextvars
import difflib
import math
import os

import numpy as np

__all__ = [
    "NAMES",
    "box",
    "disk",
    "emboss",
    "gaussian",
    "laplace",
    "motion",
    "parse_spec",
    "ripple",
    "scharr",
    "sharpen",
    "sobel",
]


#: The largest kernel side the kernel functions build: 8193 x 8193 float64 samples
#: are 537 MB, and a convolution with such a kernel needs several times that.
MAX_SIDE = 8193

#: Bytes a kernel being built may take (set by `parse_spec`'s `max_bytes`).
_max_bytes: contextvars.ContextVar[float] = contextvars.ContextVar("max_bytes", default=math.inf)


def _check_side(what: str, side: float, itemsize: int = 8) -> int:
    """`side` as an int, or a ValueError naming the kernel when a ``side x side``
    kernel is beyond `MAX_SIDE` or the budget (checked on floats: nothing is allocated
    and huge parameters cannot overflow)."""
    nbytes = float(side) * float(side) * itemsize
    limit = _max_bytes.get()
    if not side <= MAX_SIDE or nbytes > limit:
        if not math.isfinite(side):
            size = "of infinite size"
        else:
            n = f"{side:.0f}" if side < 1e12 else f"{side:.3g}"
            size = f"{n} x {n} samples ({nbytes / 1e9:,.3g} GB as float64)"
        why = (
            f"more than the {MAX_SIDE} x {MAX_SIDE} fftconv builds"
            if not side <= MAX_SIDE
            else f"more than the memory budget of {limit / 1e6:,.0f} MB"
        )
        raise ValueError(f"{what} would be {size}, {why}; choose a smaller kernel")
    return int(side)


def _positive(name: str, value, integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a {'int' if integer else 'number'}; got {value!r}")
    if integer and not float(value).is_integer():
        raise ValueError(f"{name} must be a whole number; got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0; got {value!r}")
    return float(value)


def gaussian(sigma: float, truncate: float = 4.0) -> np.ndarray:
    """A normalised 2-d Gaussian blur kernel.

    ``g[y, x] = exp(-(x**2 + y**2) / (2 sigma**2)) / S`` for integer offsets
    ``|x|, |y| <= r`` with ``r = int(truncate * sigma + 0.5)`` (the radius
    scipy.ndimage.gaussian_filter uses), and ``S`` the sum of the samples, so the
    kernel sums to one. Its size is ``2 r + 1``; it is the outer product of the
    1-d kernel with itself (separable).

    Examples
    --------
    >>> g = gaussian(1.0, truncate=1.0)
    >>> g.shape, round(float(g.sum()), 12)
    ((3, 3), 1.0)
    >>> print(np.round(g, 4))
    [[0.0751 0.1238 0.0751]
     [0.1238 0.2042 0.1238]
     [0.0751 0.1238 0.0751]]
    """
    sigma = _positive("sigma", sigma)
    truncate = _positive("truncate", truncate)
    reach = truncate * sigma + 0.5
    side = 2 * math.floor(reach) + 1 if math.isfinite(reach) and reach < 1e15 else math.inf
    r = (_check_side(f"gaussian(sigma={sigma:g}, truncate={truncate:g})", side) - 1) // 2
    x = np.arange(-r, r + 1, dtype=np.float64)
    g = np.exp(-0.5 * (x / sigma) ** 2)
    g /= g.sum()
    return np.outer(g, g)


def box(size: int) -> np.ndarray:
    """A ``size x size`` mean filter: ``b[y, x] = 1 / size**2``.

    Examples
    --------
    >>> box(2)
    array([[0.25, 0.25],
           [0.25, 0.25]])
    """
    n = _check_side(f"box({size!r})", _positive("size", size, integer=True))
    return np.full((n, n), 1.0 / (n * n))


def laplace() -> np.ndarray:
    """The 5-point discrete Laplacian, ``d2/dx2 + d2/dy2``; sums to zero.

    Examples
    --------
    >>> laplace()
    array([[ 0.,  1.,  0.],
           [ 1., -4.,  1.],
           [ 0.,  1.,  0.]])
    """
    return np.array([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])


def sharpen() -> np.ndarray:
    """Unsharp 3x3 kernel: the identity minus the Laplacian, ``delta - laplace()``.

    It sums to one, so flat regions are unchanged and edges are steepened.

    Examples
    --------
    >>> sharpen()
    array([[ 0., -1.,  0.],
           [-1.,  5., -1.],
           [ 0., -1.,  0.]])
    """
    d = np.zeros((3, 3))
    d[1, 1] = 1.0
    return d - laplace()


def emboss() -> np.ndarray:
    """The classic 3x3 emboss kernel: a diagonal derivative plus the identity.

    ``e = [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]]``; it sums to one, so flat
    regions keep their value and edges facing the lower right light up.

    Examples
    --------
    >>> emboss().sum()
    np.float64(1.0)
    """
    return np.array([[-2.0, -1.0, 0.0], [-1.0, 1.0, 1.0], [0.0, 1.0, 2.0]])


def _axis(axis) -> int:
    if isinstance(axis, str):
        key = axis.lower()
        if key in ("x", "1"):
            return 1
        if key in ("y", "0"):
            return 0
    elif isinstance(axis, (int, np.integer)) and not isinstance(axis, bool) and axis in (0, 1):
        return int(axis)
    raise ValueError(f"axis must be 0 (or 'y', rows) or 1 (or 'x', columns); got {axis!r}")


def _derivative(smooth: np.ndarray, axis) -> np.ndarray:
    # Convolving with [1, 0, -1] gives out[t] = f[t+1] - f[t-1]: the central
    # difference along `axis`, so a ramp increasing along it gives a positive response.
    a = _axis(axis)
    diff = np.array([1.0, 0.0, -1.0])
    return np.outer(diff, smooth) if a == 0 else np.outer(smooth, diff)


def sobel(axis) -> np.ndarray:
    """The Sobel derivative along `axis`: smoothing ``[1, 2, 1]`` across it times
    the central difference ``[1, 0, -1]`` along it (as a convolution kernel).

    ``sobel('x')`` (or ``sobel(1)``) responds to vertical edges (change along
    the columns); ``sobel('y')`` (or ``sobel(0)``) to horizontal ones.

    Examples
    --------
    >>> sobel("x")
    array([[ 1.,  0., -1.],
           [ 2.,  0., -2.],
           [ 1.,  0., -1.]])
    >>> import fftconv
    >>> ramp = np.tile(np.arange(5.0), (5, 1))
    >>> fftconv.convolve(ramp, sobel("x"), mode="valid")
    array([[8., 8., 8.],
           [8., 8., 8.],
           [8., 8., 8.]])
    """
    return _derivative(np.array([1.0, 2.0, 1.0]), axis)


def scharr(axis=None) -> np.ndarray:
    """The Scharr derivative, more rotation-invariant than Sobel.

    Smoothing ``[3, 10, 3]`` across `axis` times the central difference
    ``[1, 0, -1]`` along it. With ``axis=None`` it returns the complex form
    ``Gx + 1j * Gy`` with ``Gx = -scharr('x')`` and ``Gy = -scharr('y')`` (the
    kernel of scipy.signal.convolve2d's example): one convolution gives the
    gradient as a complex number, its modulus the edge strength and its angle
    the edge direction.

    Examples
    --------
    >>> scharr("x")
    array([[  3.,   0.,  -3.],
           [ 10.,   0., -10.],
           [  3.,   0.,  -3.]])
    >>> scharr()[0]
    array([-3. -3.j,  0.-10.j,  3. -3.j])
    """
    smooth = np.array([3.0, 10.0, 3.0])
    if axis is None:
        gx, gy = 0.0 - _derivative(smooth, 1), 0.0 - _derivative(smooth, 0)
        return gx + 1j * gy
    return _derivative(smooth, axis)


def disk(radius: float) -> np.ndarray:
    """A flat circular blur (lens bokeh): equal weights on the pixels with
    ``x**2 + y**2 <= radius**2``, zero elsewhere, summing to one.

    The size is ``2 ceil(radius) + 1``.

    Examples
    --------
    >>> (disk(1) * 5).round(12)
    array([[0., 1., 0.],
           [1., 1., 1.],
           [0., 1., 0.]])
    """
    r = _positive("radius", radius)
    n = (
        _check_side(f"disk(radius={r:g})", 2 * r + 3 if r > 1e15 else 2 * math.ceil(r) + 1) - 1
    ) // 2
    y, x = np.mgrid[-n : n + 1, -n : n + 1]
    d = ((x * x + y * y) <= r * r).astype(np.float64)
    return d / d.sum()


def motion(length: float, angle: float = 0.0) -> np.ndarray:
    """Linear motion blur: a line segment `length` pixels long through the centre,
    at `angle` degrees counter-clockwise from the x axis (rows grow downwards,
    so positive angles go up and to the right), summing to one.

    The segment is sampled at ``ceil(length)`` evenly spaced points from
    ``-(length - 1) / 2`` to ``(length - 1) / 2`` along its direction, and each
    point is spread over its four neighbouring pixels by bilinear weights: a
    horizontal or vertical blur of integer length is exactly ``length`` equal
    taps, and other angles give a smooth line. The size is the smallest odd
    square that holds the segment.

    Examples
    --------
    >>> m = motion(3, 0)
    >>> m.shape
    (3, 3)
    >>> (m * 3).round(6)
    array([[0., 0., 0.],
           [1., 1., 1.],
           [0., 0., 0.]])
    """
    length = _positive("length", length)
    if isinstance(angle, bool) or not isinstance(angle, (int, float, np.integer, np.floating)):
        raise TypeError(f"angle must be a number of degrees; got {angle!r}")
    if not math.isfinite(angle):
        raise ValueError(f"angle must be finite; got {angle!r}")
    theta = math.radians(angle)
    dx, dy = math.cos(theta), -math.sin(theta)
    half = (length - 1) / 2
    reach = half * max(abs(dx), abs(dy))
    size = _check_side(
        f"motion(length={length:g}, angle={angle:g})",
        2 * math.ceil(reach - 1e-9) + 1 if reach < 1e15 else math.inf,
    )
    n = (size - 1) // 2
    k = np.zeros((size + 1, size + 1))
    t = np.linspace(-half, half, max(1, math.ceil(length - 1e-9)))
    xs, ys = n + t * dx, n + t * dy
    x0, y0 = np.floor(xs).astype(int), np.floor(ys).astype(int)
    fx, fy = xs - x0, ys - y0
    for ox, oy, w in (
        (0, 0, (1 - fx) * (1 - fy)),
        (1, 0, fx * (1 - fy)),
        (0, 1, (1 - fx) * fy),
        (1, 1, fx * fy),
    ):
        np.add.at(k, (np.clip(y0 + oy, 0, size), np.clip(x0 + ox, 0, size)), w)
    k = k[:size, :size]
    k[np.abs(k) < 1e-12 * k.max()] = 0.0
    return k / k.sum()


def ripple(size: int = 15, wavelength: float = 4.0) -> np.ndarray:
    """An asymmetric test kernel: a ripple decaying from one corner.

    ``r[y, x] = cos(2 pi (x + 2 y) / wavelength) * exp(-(x + y) / size)`` for
    ``0 <= y, x < size``, normalised so that ``sum |r| = 1``. No flip maps it
    onto itself, so it tells convolution from correlation and catches
    off-by-one alignment errors that symmetric kernels hide.

    Examples
    --------
    >>> r = ripple(5)
    >>> r.shape, bool(np.allclose(r, r[::-1, ::-1])), round(float(np.abs(r).sum()), 12)
    ((5, 5), False, 1.0)
    """
    n = _check_side(f"ripple(size={size!r})", _positive("size", size, integer=True))
    wl = _positive("wavelength", wavelength)
    y, x = np.mgrid[0:n, 0:n].astype(np.float64)
    r = np.cos(2 * np.pi * (x + 2 * y) / wl) * np.exp(-(x + y) / n)
    return r / np.abs(r).sum()


#: Named kernels the command line accepts: name -> (function, fixed arguments,
#: parameter names in positional order, description).
NAMES = {
    "gaussian": (gaussian, (), ("sigma", "truncate"), "Gaussian blur"),
    "box": (box, (), ("size",), "mean filter"),
    "laplace": (laplace, (), (), "Laplacian edges"),
    "sharpen": (sharpen, (), (), "3x3 sharpen"),
    "emboss": (emboss, (), (), "3x3 emboss"),
    "sobel-x": (sobel, ("x",), (), "Sobel derivative along x"),
    "sobel-y": (sobel, ("y",), (), "Sobel derivative along y"),
    "scharr-x": (scharr, ("x",), (), "Scharr derivative along x"),
    "scharr-y": (scharr, ("y",), (), "Scharr derivative along y"),
    "scharr": (scharr, (), (), "complex Scharr gradient Gx + iGy"),
    "disk": (disk, (), ("radius",), "flat circular (bokeh) blur"),
    "motion": (motion, (), ("length", "angle"), "linear motion blur"),
    "ripple": (ripple, (), ("size", "wavelength"), "asymmetric test kernel"),
}


def _number(text: str, spec: str, pname: str):
    try:
        v = float(text)
    except ValueError:
        raise ValueError(f"kernel spec {spec!r}: {pname}={text!r} is not a number") from None
    return int(v) if v.is_integer() and "." not in text and "e" not in text.lower() else v


def parse_spec(spec: str, *, max_bytes: float | None = None) -> np.ndarray:
    """The kernel a command-line spec names.

    A spec is ``NAME`` or ``NAME:ARGS`` where ARGS are comma-separated values,
    positional (``box:15``) or by name (``gaussian:sigma=8``,
    ``motion:length=25,angle=30``); or the path of a ``.npy`` file holding a
    numeric array (loaded with ``allow_pickle=False``).

    Names: gaussian, box, laplace, sharpen, emboss, sobel-x, sobel-y, scharr-x,
    scharr-y, scharr (complex), disk, motion, ripple.

    `max_bytes`, when given, refuses kernels whose float64 samples would take more
    (before they are built or loaded).

    Raises
    ------
    ValueError
        For an unknown name, a missing, extra or non-numeric parameter, a kernel
        larger than `MAX_SIDE` a side or than `max_bytes`, or a ``.npy`` file that
        does not exist or holds no usable kernel (not 2-d, not numeric, long
        double, NaN or infinite values); the message says what was wrong and what
        is accepted.

    Examples
    --------
    >>> parse_spec("box:3").shape
    (3, 3)
    >>> parse_spec("gaussian:sigma=2").shape
    (17, 17)
    >>> parse_spec("gausian:3")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: kernel spec 'gausian:3': unknown kernel 'gausian'; known: ...; did you mean 'gaussian'?
    """
    if not isinstance(spec, str):
        raise TypeError(f"kernel spec must be a str; got {spec!r}")
    token = _max_bytes.set(math.inf if max_bytes is None else float(max_bytes))
    try:
        return _parse(spec)
    finally:
        _max_bytes.reset(token)


def _parse(spec: str) -> np.ndarray:
    text = spec.strip()
    if text.lower().endswith(".npy") or os.sep in text or (os.altsep and os.altsep in text):
        return _load_npy(text)
    name, _, argtext = text.partition(":")
    name = name.strip().lower().replace("_", "-")
    if name not in NAMES:
        close = difflib.get_close_matches(name, list(NAMES), n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"kernel spec {spec!r}: unknown kernel {name!r}; known: {', '.join(NAMES)}, "
            f"or a .npy file{hint}"
        )
    func, fixed, params, _ = NAMES[name]
    kwargs: dict = {}
    if argtext.strip():
        for i, item in enumerate(a.strip() for a in argtext.split(",")):
            key, eq, val = item.partition("=")
            if eq:
                key = key.strip().lower()
                if key not in params:
                    allowed = ", ".join(params) if params else "no parameters"
                    raise ValueError(
                        f"kernel spec {spec!r}: {name} has no parameter {key!r}; it takes {allowed}"
                    )
            else:
                if i >= len(params) or any(p in kwargs for p in params[i : i + 1]):
                    allowed = ", ".join(params) if params else "no parameters"
                    raise ValueError(
                        f"kernel spec {spec!r}: too many values for {name}; it takes {allowed}"
                    )
                key, val = params[i], item
            if key in kwargs:
                raise ValueError(f"kernel spec {spec!r}: {key} given twice")
            kwargs[key] = _number(val.strip(), spec, key)
    try:
        return func(*fixed, **kwargs)
    except TypeError as exc:
        if "missing" in str(exc):
            raise ValueError(
                f"kernel spec {spec!r}: {name} needs {params[0]}, e.g. '{name}:{params[0]}=5'"
            ) from None
        raise ValueError(f"kernel spec {spec!r}: {exc}") from None
    except ValueError as exc:
        raise ValueError(f"kernel spec {spec!r}: {exc}") from None


def _load_npy(path: str) -> np.ndarray:
    if not os.path.isfile(path):
        raise ValueError(f"kernel spec {path!r}: no such .npy file")
    try:
        # Shape and dtype first, from the header: nothing large is read before they pass.
        k = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:  # corrupt, pickled or not .npy
        raise ValueError(f"kernel spec {path!r}: cannot load as a .npy array ({exc})") from None
    if not isinstance(k, np.ndarray) or k.dtype.kind not in "biufc":
        raise ValueError(
            f"kernel spec {path!r}: holds dtype {getattr(k, 'dtype', '?')}; "
            "a kernel must be numeric"
        )
    if k.dtype.kind in "fc" and k.dtype.itemsize > (8 if k.dtype.kind == "f" else 16):
        raise ValueError(
            f"kernel spec {path!r}: holds {k.dtype} (long double); fftconv computes "
            "in float64 at most: save it as float64 (or complex128)"
        )
    if k.ndim != 2 or k.size == 0:
        hint = (
            f" (a row kernel has shape (1, {k.shape[0]}), a column kernel ({k.shape[0]}, 1))"
            if k.ndim == 1
            else ""
        )
        raise ValueError(
            f"kernel spec {path!r}: holds shape {k.shape}; a kernel must be a "
            f"non-empty 2-d array{hint}"
        )
    nbytes = k.size * 8.0
    if nbytes > _max_bytes.get():
        raise ValueError(
            f"kernel spec {path!r}: a {k.shape[0]} x {k.shape[1]} kernel "
            f"({nbytes / 1e9:,.3g} GB as float64) is more than the memory budget "
            f"of {_max_bytes.get() / 1e6:,.0f} MB"
        )
    k = np.array(k)
    if not np.isfinite(k).all():
        raise ValueError(f"kernel spec {path!r}: holds NaN or infinite values")
    return k.astype(np.complex128 if k.dtype.kind == "c" else np.float64)
