"""`plan` and `Plan`: the planner's decision, from shapes alone.

`plan` prices every registered candidate (`CANDIDATES`, the cost functions of
`fftconv.planner.costs`) with this machine's constants and returns a `Plan`
naming the cheapest, with every candidate it weighed.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

import numpy as np

from .._problem import (
    PHOTO_DTYPES,
    Problem,
    make_problem_from_shapes,
    normalize_method,
    normalize_threads,
    with_io,
)
from ..methods.rows import compiled_available
from . import costs
from .costs import Candidate
from .machine import Machine
from .profile import machine


@dataclass(frozen=True)
class Plan:
    """The planner's decision for one problem; ``print(plan)`` explains it.

    Attributes
    ----------
    method : 'direct', 'separable', 'lowrank', 'fft' or 'oa' (or a method registered with `candidate`).
    transform_shape : the FFT lengths on the convolved axes: of the whole
        (padded) image for 'fft', of one block for 'oa'; None for 'direct'.
    block_shape : outputs per block on each convolved axis ('oa' only).
    n_blocks : number of blocks (1 unless 'oa').
    circular : 'fft' by circular convolution at the image's size ('wrap').
    seconds : predicted time of the chosen candidate.
    peak_bytes : predicted working memory beyond the inputs and the output.
    candidates : every candidate weighed, cheapest first.
    threads : the threads the plan was priced for.
    calibrated : whether the constants were measured on this machine.
    problem : the `Problem` planned for.
    factors : 'separable' / 'lowrank' only: the kernel's ``(col, row)`` factor
        pairs, so that executing the plan does not factor the kernel again.
    finite : False for the exact path of data holding NaN or infinity, which the
        execute layer (`fftconv._execute.for_data`) substitutes for the planner's
        choice; the planner's own plans are True.
    substituted : when the method asked for does not run as such ('separable'
        below 2**16 outputs or for a kernel that does not factor, 'oa' with one
        block), what runs instead and why, in words; else None.
    """

    method: str
    transform_shape: tuple[int, ...] | None
    block_shape: tuple[int, ...] | None
    n_blocks: int
    circular: bool
    seconds: float
    peak_bytes: int
    candidates: tuple[Candidate, ...]
    threads: int
    calibrated: bool
    problem: Problem = field(repr=False)
    factors: tuple | None = field(default=None, compare=False, repr=False)
    finite: bool = True
    substituted: str | None = field(default=None, compare=False)

    def explain(self) -> str:
        """A table of every candidate, its predicted time and memory; the choice marked."""
        p = self.problem
        dtype = str(p.dtype)
        if p.io_dtypes is not None:
            dtype += f" (image {p.io_dtypes[0]}, out {p.io_dtypes[1]} rounded)"
        lines = [
            (
                f"fftconv plan: {'correlate' if p.correlate else 'convolve'} image {p.in1_shape} "
                f"with kernel {p.in2_shape} on axes {p.axes}, {dtype}, mode={p.mode!r}, "
                f"boundary={p.boundary!r}, threads={self.threads}"
            ),
            (
                f"chosen: {self.method} ({self._how()}), "
                f"predicted {_secs(self.seconds)} and {_bytes(self.peak_bytes)} of working memory"
            ),
            *([f"note: {self.substituted}"] if self.substituted else []),
            "",
            (
                "candidates (predicted time, its ratio to the best, working memory beyond the "
                "inputs and output):"
            ),
            f"  {'method':<9} {'predicted':>10} {'x best':>7} {'memory':>10}  how",
        ]
        best = self.candidates[0].seconds if self.candidates else 1.0
        for c in self.candidates:
            mark = "*" if _same(c, self) else " "
            lines.append(
                f"{mark} {c.method:<9} {_predicted(c):>10} {c.seconds / best:>7.2f} "
                f"{_bytes(c.peak_bytes):>10}  {_describe(c, p)}"
            )
        src = (
            "calibrated on this machine"
            if self.calibrated
            else "shipped defaults (run fftconv.calibrate() to measure this machine)"
        )
        lines.append("")
        lines.append(f"cost constants: {src}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.explain()

    def _repr_pretty_(self, printer, cycle) -> None:
        printer.text(self.explain())

    def _repr_html_(self) -> str:
        return _plan_html(self)

    def _how(self) -> str:
        if self.finite:
            return _describe(_chosen(self), self.problem)
        if self.method == "fft":
            return (
                "non-finite data: one FFT of the finite part of the padded image, then "
                "the outputs a NaN or infinity reaches set as direct summation gives them"
            )
        return "non-finite data: direct summation, which propagates NaN and infinity exactly"


def _plan_html(plan: Plan) -> str:
    """`Plan.explain`'s table as HTML, for Jupyter."""
    from .._html import table

    lines = plan.explain().split("\n")
    best = plan.candidates[0].seconds if plan.candidates else 1.0
    rows = [
        [
            c.method,
            _predicted(c),
            f"{c.seconds / best:.2f}",
            _bytes(c.peak_bytes),
            _describe(c, plan.problem),
        ]
        for c in plan.candidates
    ]
    marked = {i for i, c in enumerate(plan.candidates) if _same(c, plan)}
    return table(
        lines[0],
        ["method", "predicted", "x best", "memory", "how"],
        rows,
        notes=[lines[1], lines[-1]],
        marked=marked,
    )


def _chosen(p: Plan) -> Candidate:
    return next((c for c in p.candidates if _same(c, p)), p.candidates[0])


def _describe(c: Candidate, p: Problem) -> str:
    """What the candidate does, in words."""
    if c.bound:
        return "not searched: its transforms alone take at least this, more than the best"
    if not c.runs:
        return _describe(replace(c, runs=True), p) + "; not run for an integer out="
    if c.method == "direct":
        taps = math.prod(p.kernel_shape)
        how = "compiled direct summation" if c.note == "compiled" else "direct summation"
        return f"{how}, {taps} taps x {math.prod(p.out_shape):,} outputs"
    if c.method == "fft" and c.circular:
        return f"one circular FFT at the image's size {_shape(c.transform_shape)}, no padding"
    if c.method == "fft":
        extra = ", zero padding not written" if p.boundary == "fill" and p.fillvalue == 0 else ""
        return f"one FFT of the padded image at {_shape(c.transform_shape)}{extra}"
    if c.method == "oa":
        return (
            f"overlap-add: {c.n_blocks} blocks of {_shape(c.block_shape)} outputs, "
            f"each a {_shape(c.transform_shape)} FFT"
        )
    return c.note or c.method


def _same(c: Candidate, p: Plan) -> bool:
    return (c.method, c.transform_shape, c.circular) == (p.method, p.transform_shape, p.circular)


def _predicted(c: Candidate) -> str:
    return (">" if c.bound else "") + _secs(c.seconds)


def _shape(s) -> str:
    return "x".join(str(x) for x in s) if s else "-"


def _secs(s: float) -> str:
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.1f} ms"
    return f"{s * 1e6:.0f} us"


def _bytes(b: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if b >= size:
            return f"{b / size:.1f} {unit}"
    return f"{b} B"


CostFunction = Callable[
    [Problem, Machine, int, "np.ndarray | None"], "Candidate | Iterable[Candidate] | None"
]
CANDIDATES: dict[str, CostFunction] = {}


def candidate(name: str) -> Callable[[CostFunction], CostFunction]:
    """Register a cost function for method `name` (one function per method)."""

    def register(fn: CostFunction) -> CostFunction:
        CANDIDATES[name] = fn
        return fn

    return register


candidate("direct")(costs.direct_candidate)
candidate("separable")(costs.separable_candidate)
candidate("fft")(costs.fft_candidates)
candidate("oa")(costs.oa_candidate)


def plan(
    in1_shape,
    in2_shape,
    dtype=np.float64,
    mode: str = "full",
    boundary: str = "fill",
    fillvalue=0,
    *,
    axes=None,
    channel_axis: int | None = None,
    threads: int | None = None,
    correlate: bool = False,
    method: str = "auto",
    kernel=None,
    out_dtype=None,
) -> Plan:
    """Choose how to convolve arrays of these shapes, from the shapes alone.

    Parameters
    ----------
    in1_shape, in2_shape : tuple of int
        Shapes of the image and the kernel, as `convolve` would get them.
    dtype : dtype
        The inputs' dtype (both; the result's dtype follows `convolve`).
    mode, boundary, fillvalue, axes, channel_axis, threads, correlate
        As for `convolve` / `correlate`.
    method : {'auto', 'direct', 'fft', 'oa'}
        'auto' picks the cheapest candidate; a method name prices only that
        method (with its best transform or block shape).
    kernel : ndarray, optional
        The kernel's values, for candidates whose cost depends on them
        (separable or low-rank kernels); the shapes are enough otherwise.
    out_dtype : dtype, optional
        The dtype of ``out=`` where it is a photo's integer dtype (uint8, uint16,
        int16): the plan of ``convolve(..., out=np.empty(shape, out_dtype))``, computed
        in float32 (float64 for a float64 image) and written rounded; the image is
        read in `dtype`.

    Returns
    -------
    Plan
        The choice, its predicted time and memory, and every candidate.

    Examples
    --------
    >>> import fftconv
    >>> p = fftconv.plan((4096, 4096), (31, 31), "float32", mode="same")
    >>> p.method in ("fft", "oa")
    True
    >>> [c.method for c in p.candidates][:1] == [p.method]
    True
    >>> fftconv.plan((512, 512), (1, 1)).method  # a 1x1 kernel is a scaled copy
    'direct'
    >>> print(fftconv.plan((256, 256), (255, 255)).explain())  # doctest: +ELLIPSIS
    fftconv plan: convolve image (256, 256) with kernel (255, 255) on axes (0, 1), float64, ...
    chosen: fft (one FFT of the padded image at 512x512, zero padding not written), ...
    <BLANKLINE>
    candidates (predicted time, its ratio to the best, working memory beyond the inputs and output):
      method     predicted  x best     memory  how
    * fft ...
    """
    shape1, shape2 = _as_shape(in1_shape, "in1_shape"), _as_shape(in2_shape, "in2_shape")
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"dtype must be a numpy dtype; got {dtype!r}") from exc
    problem = make_problem_from_shapes(
        shape1,
        shape2,
        dt,
        mode=mode,
        boundary=boundary,
        fillvalue=fillvalue,
        axes=axes,
        channel_axis=channel_axis,
        correlate=correlate,
    )
    if out_dtype is not None:
        problem = _photo_problem(problem, dt, out_dtype, kernel)
    return plan_problem(problem, normalize_threads(threads), normalize_method(method), kernel)


def _photo_problem(problem: Problem, src: np.dtype, out_dtype, kernel) -> Problem:
    """`problem`, its image read in `src`, written into an integer ``out`` of `out_dtype`
    (as `convolve` runs it)."""
    try:
        od = np.dtype(out_dtype)
    except TypeError as exc:
        raise TypeError(f"out_dtype must be a numpy dtype or None; got {out_dtype!r}") from exc
    if od == problem.dtype:
        return problem
    if od not in PHOTO_DTYPES or problem.dtype.kind == "c":
        raise ValueError(
            f"out_dtype={od} is not the result's dtype ({problem.dtype}) nor, for a real "
            "problem, one of uint8, uint16, int16"
        )
    kd = np.float32 if kernel is None else np.asarray(kernel).dtype
    return with_io(problem, src, kd, od)


def _as_shape(s, name: str) -> tuple[int, ...]:
    if isinstance(s, np.ndarray) and s.ndim > 1:
        raise TypeError(
            f"{name} must be a tuple of ints; got an array of shape {s.shape}: plan() "
            f"plans from shapes, pass {name.removesuffix('_shape')}.shape (and the "
            "kernel itself as kernel= to plan from its values)"
        )
    try:
        shape = tuple(int(x) for x in s)
        ok = all(int(x) == x for x in s)
    except TypeError:
        raise TypeError(f"{name} must be a tuple of ints; got {s!r}") from None
    if not ok or not shape or any(x < 1 for x in shape):
        raise ValueError(f"{name} must be a non-empty tuple of positive ints; got {s!r}")
    return shape


#: Kernels with more taps than this are planned from their shape alone: their 1-D
#: passes would not beat the transforms, and hashing them per call would cost.
_VALUE_PLANNING_TAPS = 128 * 128


class _KernelKey:
    """A kernel as a cache key: equal when shape, dtype and values are.

    It holds the values as bytes, never the caller's array (which may be a view of
    a large one): `live` lends the array to the candidates during the one call that
    plans, and is cleared after it.
    """

    __slots__ = ("live", "_key")

    def __init__(self, array: np.ndarray):
        self.live = array
        self._key = (array.shape, array.dtype.str, array.tobytes())

    def __hash__(self) -> int:
        return hash(self._key)

    def __eq__(self, other) -> bool:
        return isinstance(other, _KernelKey) and self._key == other._key


def plan_problem(problem: Problem, threads: int, method: str = "auto", kernel=None) -> Plan:
    """`plan` for a validated `Problem` (what `convolve` calls)."""
    m = machine()
    if kernel is None or np.size(kernel) > _VALUE_PLANNING_TAPS or len(problem.axes) != 2:
        return _plan_cached(problem, threads, method, m, None)
    key = _KernelKey(np.asarray(kernel))
    try:
        return _plan_cached(problem, threads, method, m, key)
    finally:
        key.live = None


@functools.lru_cache(maxsize=1024)
def _plan_cached(problem: Problem, threads: int, method: str, m: Machine, key) -> Plan:
    # Plans depend only on their arguments; repeated calls of one shape skip the search.
    return _plan(problem, threads, method, None if key is None else key.live, m)


#: Methods whose search `plan` skips (method='auto') when a candidate priced before
#: them is cheaper than this bound on their time: they are listed with the bound.
LOWER_BOUNDS: dict[str, Callable[[Problem, Machine, int], float]] = {
    "fft": costs.transform_lower_bound,
    "oa": costs.transform_lower_bound,
}


def _plan(problem: Problem, threads: int, method: str, kernel, m: Machine) -> Plan:
    cands: list[Candidate] = []
    for name, fn in CANDIDATES.items():
        bound = LOWER_BOUNDS.get(name) if method == "auto" else None
        if bound is not None:
            best = min((c.seconds for c in cands if c.runs), default=math.inf)
            at_least = bound(problem, m, threads)
            if at_least > best:
                cands.append(Candidate(name, at_least, 0, runs=False, bound=True))
                continue
        got = fn(problem, m, threads, kernel)
        if got is None:
            continue
        cands.extend([got] if isinstance(got, Candidate) else got)
    cands.sort(key=lambda c: c.seconds)
    pool = [c for c in cands if c.runs or method != "auto"]
    pool = pool if method == "auto" else [c for c in pool if c.method == method]
    substituted = None
    if pool and not pool[0].runs:
        # method='fft' for an integer out=: its blocks are what runs.
        blocks = [c for c in cands if c.method == "oa"]
        if blocks:
            pool = blocks
            substituted = (
                f"method={method!r} was asked; an integer out= is written by overlap-add "
                "blocks (one transform would hold the result as an image-sized float array)"
            )
    if not pool and method in ("separable", "lowrank"):
        # Rank one is also low rank; a kernel that does not factor is summed directly.
        pool = [c for c in cands if c.method in ("separable", "lowrank")]
        if not pool:
            pool = [c for c in cands if c.method == "direct"]
            substituted = (
                f"method={method!r} was asked; direct summation runs instead "
                f"(same result): {_why_not_separable(problem, kernel)}"
            )
    if not pool:
        if method == "oa":
            # One block covers everything: block convolution is the whole-array FFT.
            pool = [c for c in cands if c.method == "fft" and not c.circular]
            substituted = (
                "method='oa' was asked; one block covers the whole image, so it runs as one FFT"
            )
        if not pool:
            raise ValueError(f"method={method!r} cannot compute this problem")
    best = pool[0]
    return Plan(
        method=best.method,
        transform_shape=best.transform_shape,
        block_shape=best.block_shape,
        n_blocks=best.n_blocks,
        circular=best.circular,
        seconds=best.seconds,
        peak_bytes=best.peak_bytes,
        candidates=tuple(cands),
        threads=threads,
        calibrated=m.calibrated,
        problem=problem,
        factors=best.factors,
        substituted=substituted,
    )


def _why_not_separable(problem: Problem, kernel) -> str:
    if not compiled_available(problem):
        return "1-D passes need the compiled engine (numba) and one or two convolved axes"
    if math.prod(problem.out_shape) < costs.SEPARABLE_MIN_OUTPUTS:
        return (
            f"below {costs.SEPARABLE_MIN_OUTPUTS:,} outputs 1-D passes save "
            "microseconds, and summing directly keeps small results bit-exact"
        )
    if kernel is None:
        return "the kernel's values were not given (planned from shapes), so it cannot be factored"
    return "the kernel does not factor into few 1-D pairs within the dtype's tolerance"
