"""The planner: Plan contents, the cost model's choices, candidates, calibration."""

from __future__ import annotations

import itertools
import json
import math
import time
from dataclasses import replace

import numpy as np
import pytest

import fftconv
from fftconv import _fftw, planner
from fftconv._cachedir import CacheWarning
from fftconv._problem import make_problem_from_shapes
from fftconv.methods.rows import compiled_available
from fftconv.planner import Candidate, Machine, costs, fft_flops, plan


@pytest.fixture(autouse=True)
def default_constants(tmp_path, monkeypatch):
    """Every test sees the shipped constants and a private cache directory."""
    monkeypatch.setenv("FFTCONV_CACHE_DIR", str(tmp_path / "cache"))
    planner.reset_machine()
    yield
    planner.reset_machine()


def test_plan_describes_choice_and_every_candidate():
    p = plan((4096, 4096), (31, 31), "float32", mode="same")
    assert isinstance(p, fftconv.Plan)
    methods = {c.method for c in p.candidates}
    assert {"direct", "fft", "oa"} <= methods
    assert [c.seconds for c in p.candidates] == sorted(c.seconds for c in p.candidates)
    assert p.candidates[0].method == p.method and p.seconds == p.candidates[0].seconds
    assert p.peak_bytes > 0 and p.threads >= 1 and not p.calibrated
    if p.method == "oa":
        assert p.n_blocks > 1 and len(p.block_shape) == 2
        assert all(L - 31 + 1 == b for L, b in zip(p.transform_shape, p.block_shape))


def test_explain_is_a_readable_table():
    p = plan((2048, 1536), (15, 15), "float32", mode="same", boundary="symmetric")
    text = str(p)
    assert text == p.explain()
    lines = text.splitlines()
    assert lines[0].startswith("fftconv plan: convolve image (2048, 1536) with kernel (15, 15)")
    assert lines[1].startswith(f"chosen: {p.method}")
    assert any(line.startswith("* " + p.method) for line in lines)  # the choice is marked
    for c in p.candidates:
        assert any(c.method in line for line in lines[3:])
    assert "fftconv.calibrate()" in text  # says how to measure this machine


@pytest.mark.parametrize(
    "image,kernel,expected",
    [
        ((512, 512), (1, 1), {"direct"}),
        ((512, 512), (3, 3), {"direct"}),
        ((4096, 4096), (31, 31), {"oa"}),  # image much larger than the kernel
        ((300, 300), (255, 255), {"fft"}),  # kernel nearly the image's size
    ],
)
def test_choices_follow_the_sizes(image, kernel, expected):
    assert plan(image, kernel, "float32", mode="same").method in expected


def test_valid_mode_never_transforms_more_than_the_image():
    p = plan((1000, 700), (101, 51), mode="valid", method="fft")
    assert all(L <= _fftw.fast_length(n) for L, n in zip(p.transform_shape, (1000, 700)))


def test_wrap_uses_circular_transform_when_the_image_size_is_fast():
    fast = plan((1024, 1024), (9, 9), mode="same", boundary="wrap", method="fft")
    assert fast.circular and fast.transform_shape == (1024, 1024)
    # A prime length is slow to transform at its own size: pad to a fast length instead.
    prime = plan((4099, 64), (9, 9), mode="same", boundary="wrap", method="fft")
    circ = [c for c in prime.candidates if c.circular]
    assert circ and not prime.circular and prime.seconds < circ[0].seconds


def test_fft_cost_weights_awkward_lengths():
    assert fft_flops(1024) == 10.0
    assert fft_flops(1029) > fft_flops(1024) * 1.5  # 3 * 7**3
    assert fft_flops(4099) > 4 * fft_flops(4096) / 1.2  # prime


def test_plan_is_pure_and_cheap():
    before = _fftw.cache_info()
    plan((3000, 2000), (45, 45), "float32", mode="same", boundary="mirror")
    t = time.perf_counter()
    for n in range(20):
        plan((2000 + n, 1000), (21, 21), "float32", mode="same")  # uncached shapes
    assert (time.perf_counter() - t) / 20 < 0.05
    after = _fftw.cache_info()
    assert (after["hits"], after["misses"]) == (before["hits"], before["misses"])


def test_method_names_restrict_the_choice():
    for m in ("direct", "fft", "oa"):
        assert plan((800, 600), (21, 21), method=m).method == m
    # One block would cover everything: block convolution is the whole-array FFT.
    tiny = plan((8, 8), (3, 3), method="oa")
    assert tiny.method == "fft" and not tiny.circular


def test_registered_candidates_are_priced_and_can_win(monkeypatch):
    seen = {}

    def cheap(problem, machine, threads, kernel):
        seen["kernel"] = kernel
        return Candidate("cheap", 1e-9, 0, note="test")

    monkeypatch.setitem(planner.CANDIDATES, "cheap", cheap)
    k = np.ones((5, 5))
    p = planner.plan_problem(plan((100, 100), (5, 5)).problem, 1, kernel=k)
    assert p.method == "cheap" and seen["kernel"] is k
    monkeypatch.setitem(planner.CANDIDATES, "cheap", lambda *args: None)  # not applicable
    assert plan((100, 100), (5, 5), kernel=k).method != "cheap"


def test_plan_validates_like_convolve():
    with pytest.raises(ValueError, match="mode="):
        plan((10, 10), (3, 3), mode="sane")
    with pytest.raises(ValueError, match="in2_shape"):
        plan((10, 10), (0, 3))
    with pytest.raises(TypeError, match="in1_shape"):
        plan(10, (3,))
    with pytest.raises(ValueError, match="method="):
        plan((10, 10), (3, 3), method="fastest")
    with pytest.raises(TypeError, match="dtype"):
        plan((10, 10), (3, 3), dtype="not a dtype")


def test_plan_given_arrays_says_to_pass_their_shapes():
    """scipy's choose_conv_method takes the arrays: the message says what to pass, in
    one line, without printing the image."""
    with pytest.raises(TypeError) as info:
        plan(np.zeros((400, 300)), np.ones((3, 3)))
    msg = str(info.value)
    assert "in1_shape" in msg and "(400, 300)" in msg and "in1.shape" in msg
    assert "\n" not in msg and len(msg) < 300


def test_auto_follows_the_plan(monkeypatch):
    rng = np.random.default_rng(0)
    calls = []
    from fftconv import _execute

    real = _execute.execute

    def spy(problem, chosen, *args, **kw):
        calls.append(chosen.method)
        return real(problem, chosen, *args, **kw)

    monkeypatch.setattr(_execute, "execute", spy)
    for shape, kshape in (((64, 64), (3, 3)), ((700, 500), (15, 15)), ((60, 60), (41, 41))):
        a = rng.standard_normal(shape)
        k = rng.standard_normal(kshape)
        fftconv.convolve(a, k, "same")
        assert calls[-1] == plan(shape, kshape, mode="same").method


def test_calibrate_writes_profile_and_plans_use_it(tmp_path):
    m = fftconv.calibrate(budget_s=20)
    assert m.calibrated
    doc = json.loads((tmp_path / "cache" / "planner-profile.json").read_text())
    assert doc["format"] == "fftconv-planner-profile/1"
    planner.reset_machine()
    assert planner.machine() == m
    assert plan((100, 100), (5, 5)).calibrated
    assert "calibrated on this machine" in str(plan((100, 100), (5, 5)))


@pytest.mark.parametrize(
    "content",
    [
        b"\x00garbage",
        b'{"format": "fftconv-planner-pro',
        b'{"format": "fftconv-planner-profile/1", "constants": {}}',
    ],
)
def test_bad_profile_warns_and_uses_defaults(tmp_path, content):
    d = tmp_path / "cache"
    d.mkdir()
    (d / "planner-profile.json").write_bytes(content)
    with pytest.warns(CacheWarning, match="planner profile"):
        assert planner.machine() == Machine()


def test_profile_from_another_machine_is_not_used(tmp_path):
    d = tmp_path / "cache"
    d.mkdir()
    consts = {k: v for k, v in Machine().__dict__.items() if k != "calibrated"}
    doc = {
        "format": "fftconv-planner-profile/1",
        "host": {"node": "elsewhere"},
        "constants": consts,
    }
    (d / "planner-profile.json").write_text(json.dumps(doc))
    assert not planner.machine().calibrated


def test_calibrate_into_unwritable_cache_dir_warns(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("FFTCONV_CACHE_DIR", str(blocker / "cache"))
    monkeypatch.setattr(planner.profile, "_time_direct", dict)  # keep it quick
    with pytest.warns(CacheWarning, match="cannot save the planner profile"):
        m = fftconv.calibrate(budget_s=8)
    assert planner.machine() is m  # used for this process anyway


def test_profile_of_the_first_layout_is_read_with_its_direct_section(tmp_path):
    """Profiles written before the compiled rates joined `Machine` kept them apart."""
    d = tmp_path / "cache"
    d.mkdir()
    first = (
        "fft32",
        "fft64",
        "fft_slope",
        "cache",
        "parallel",
        "mem",
        "madd32",
        "madd64",
        "tap",
        "block",
        "call",
    )
    consts = {k: getattr(Machine(), k) * 2 for k in first}
    rates = {n: 1e9 for n in ("float32", "float64", "complex64", "complex128")}
    direct = {
        "direct_madds_per_s": rates,
        "separable_madds_per_s": dict(rates),
        "numpy_madds_per_s": dict(rates),
        "copy_bytes_per_s": 3e9,
        "call_overhead_s": 1e-5,
    }
    doc = {
        "format": "fftconv-planner-profile/1",
        "host": planner.profile._host(),
        "constants": consts,
        "direct": direct,
    }
    (d / "planner-profile.json").write_text(json.dumps(doc))
    m = planner.machine()
    assert m.calibrated and m.fft32 == 2 * Machine().fft32
    assert m.rate("direct", "float32") == 1e9 and m.rate("separable", "complex128") == 1e9
    assert (m.copy_rate, m.direct_call) == (3e9, 1e-5)
    planner.reset_machine()
    doc.pop("direct")  # no compiled rates at all: the defaults stand for them
    (d / "planner-profile.json").write_text(json.dumps(doc))
    m = planner.machine()
    assert m.calibrated and m.rate("direct", "float32") == Machine().rate("direct", "float32")


@pytest.mark.slow
def test_calibrate_measures_every_constant_it_prints():
    m = fftconv.calibrate(save=False, budget_s=8)
    text = m.describe()
    for name in (
        "fft32",
        "madd64",
        "block",
        "direct_float32",
        "separable_float64",
        "copy_rate",
        "direct_call",
        "separable_sample",
        "round_store",
        "interleaved_sample",
        "strips_sample",
    ):
        assert name in text
    assert m.rate("direct", "float64") > 0 and m.copy_rate != Machine().copy_rate
    from fftconv import _fftw

    assert _fftw.cache_info()["bytes"] == 0  # its transforms' buffers are not kept
    if compiled_available_here():  # measured, not the shipped values
        assert m.separable_sample != Machine().separable_sample
        assert m.round_store != Machine().round_store and m.round_store >= 1e-12


def compiled_available_here() -> bool:
    from fftconv.methods.rows import kernels

    return kernels() is not None


def test_separable_passes_cost_per_sample_and_round_into_integers():
    """A pair of 3-tap passes is not two thirds of a 3x3 sum: each pair stores its
    column row and reads it back (`separable_sample`, `interleaved_sample` for a
    channels-last photo); into an integer out= the passes round as the 3x3 driver does
    (`round_store`), or run the strip-mined engine (`strips_sample`)."""
    from fftconv._problem import make_problem_from_shapes
    from fftconv.planner.costs import separable_cost

    if not compiled_available_here():
        pytest.skip("no compiled engine: the separable passes are not priced")
    p = make_problem_from_shapes((2000, 2000), (3, 3), "float32", mode="same")
    cheap = Machine(separable_sample=1e-15, copy_rate=1e15)
    dear = Machine(separable_sample=1e-9, copy_rate=1e15)
    assert separable_cost(p, 1, dear)[0] - separable_cost(p, 1, cheap)[0] == pytest.approx(
        2000 * 2000 * 1e-9, rel=1e-4
    )
    grey8 = replace(p, io_dtypes=(np.dtype(np.uint8), np.dtype(np.uint8)))
    rounding = Machine(separable_sample=1e-15, copy_rate=1e15, round_store=1e-9)
    plain = Machine(separable_sample=1e-15, copy_rate=1e15, round_store=1e-15)
    # Two pairs into uint8 round as they store; one pair runs the strip-mined engine,
    # which converts and rounds within its own price.
    assert separable_cost(grey8, 2, rounding)[0] - separable_cost(grey8, 2, plain)[0] == (
        pytest.approx(2000 * 2000 * 1e-9, rel=1e-4)
    )
    assert separable_cost(grey8, 1, rounding)[0] == separable_cost(grey8, 1, plain)[0]
    slow_strips = Machine(strips_sample=1e-9, copy_rate=1e15)
    fast_strips = Machine(strips_sample=1e-15, copy_rate=1e15)
    assert separable_cost(grey8, 1, slow_strips)[0] - separable_cost(grey8, 1, fast_strips)[
        0
    ] == pytest.approx(2000 * 2000 * 1e-9, rel=1e-4)
    # A channels-last photo's pairs are priced on its own layout's constant.
    rgb = make_problem_from_shapes((1000, 800, 3), (5, 5), "float32", mode="same", channel_axis=-1)
    slow_rows = Machine(interleaved_sample=1e-9, separable_sample=1e-15, copy_rate=1e15)
    fast_rows = Machine(interleaved_sample=1e-15, separable_sample=1e-9, copy_rate=1e15)
    assert separable_cost(rgb, 1, slow_rows)[0] - separable_cost(rgb, 1, fast_rows)[
        0
    ] == pytest.approx(1000 * 800 * 3 * 1e-9, rel=1e-4)


def test_forced_method_that_runs_as_another_says_so():
    from fftconv._problem import make_problem
    from fftconv.planner import plan_problem

    p = fftconv.plan((100, 100), (5, 5), "float64", mode="same", method="separable")
    assert p.method == "direct" and "direct summation runs instead" in str(p)
    assert "65,536 outputs" in p.substituted or "compiled engine" in p.substituted
    rng = np.random.default_rng(0)
    pr, _, kk = make_problem(
        np.zeros((400, 400)), rng.random((5, 5)), "same", "fill", 0, None, None, False
    )
    if compiled_available(pr):
        q = plan_problem(pr, 2, "separable", kernel=kk)
        assert q.method == "direct" and "does not factor" in q.substituted
        pr1, _, k1 = make_problem(
            np.zeros((400, 400)), np.ones((5, 5)), "same", "fill", 0, None, None, False
        )
        assert plan_problem(pr1, 2, "separable", kernel=k1).substituted is None
    assert fftconv.plan((100, 100), (5, 5), "float64", mode="same").substituted is None


@pytest.mark.parametrize(
    "shape, kshape, dtype, mode, threads",
    [
        ((4096, 4096), (3, 3), "float32", "same", 2),
        ((1500, 2000, 3), (31, 31, 1), "float32", "same", 2),
        ((700, 3001), (15, 64), "float64", "full", 1),
        ((80, 90, 100), (9, 5, 17), "complex64", "valid", 2),
        ((5000,), (257,), "float64", "same", 2),
    ],
)
def test_oa_search_prices_every_block_shape_as_one_at_a_time(shape, kshape, dtype, mode, threads):
    # The search prices all block shapes at once (arrays); one shape at a time, with
    # the same cost functions on plain ints, must find the same block and time.
    p = make_problem_from_shapes(shape, kshape, np.dtype(dtype), mode=mode, boundary="fill")
    m = planner.machine()
    got = costs.oa_candidate(p, m, threads, None)
    per_axis = max(4, round(400 ** (1 / len(p.axes))))
    options = [
        costs._block_lengths(k, p.out_shape[ax], not p.is_complex, per_axis)
        for k, ax in zip(p.kernel_shape, p.axes)
    ]
    _, bk, _ = costs.batches(p)
    best = None
    for lengths in itertools.product(*options):
        steps = tuple(L - k + 1 for L, k in zip(lengths, p.kernel_shape))
        nblocks = math.prod(-(-p.out_shape[ax] // s) for ax, s in zip(p.axes, steps))
        if nblocks < 2:
            continue
        workers = min(threads, nblocks)
        one = costs.block_seconds(p, m, lengths, steps) + m.block
        t = nblocks * one / (1.0 + m.parallel * (workers - 1))
        t += costs.fft_seconds(lengths, bk, p.dtype, m, threads) + m.call + 1e-4 * (workers > 1)
        if best is None or t < best[0]:
            best = (t, lengths, steps, nblocks)
    assert got.transform_shape == best[1] and got.block_shape == best[2]
    assert got.n_blocks == best[3]
    assert got.seconds == pytest.approx(best[0], rel=1e-12)


@pytest.mark.parametrize(
    "shape, kshape, dtype, mode, threads",
    [
        ((4096, 4096), (3, 3), "float32", "same", 2),
        ((1500, 2000, 3), (31, 31, 1), "float32", "same", 2),
        ((1500, 2000, 3), (3, 3, 3), "float64", "valid", 1),
        ((700, 3001), (15, 64), "float64", "full", 1),
        ((80, 90, 100), (9, 5, 17), "complex64", "valid", 2),
        ((5000,), (257,), "float64", "same", 2),
        ((64, 64), (64, 64), "complex128", "full", 2),
    ],
)
def test_transform_lower_bound_is_below_every_transform_price(shape, kshape, dtype, mode, threads):
    p = make_problem_from_shapes(shape, kshape, np.dtype(dtype), mode=mode, boundary="fill")
    m = planner.machine()
    lower = costs.transform_lower_bound(p, m, threads)
    priced = costs.fft_candidates(p, m, threads, None) + [costs.oa_candidate(p, m, threads, None)]
    assert 0 < lower <= min(c.seconds for c in priced if c is not None)


@pytest.mark.skipif(
    not compiled_available(make_problem_from_shapes((4, 4), (2, 2), np.dtype(np.float32))),
    reason="numpy's direct sums cost more than the transforms' bound",
)
def test_transform_search_is_skipped_where_summing_is_cheaper_than_its_bound():
    p = plan((4096, 4096), (3, 3), "float32", mode="same", threads=2)
    skipped = {c.method: c for c in p.candidates if c.bound}
    assert p.method == "direct" and set(skipped) == {"fft", "oa"}
    for name, c in skipped.items():
        assert not c.runs and c.seconds > p.seconds
        # Asked for, the method is searched and priced above its bound.
        forced = plan((4096, 4096), (3, 3), "float32", mode="same", threads=2, method=name)
        assert forced.method == name and not any(x.bound for x in forced.candidates)
        assert forced.seconds >= c.seconds
    text = p.explain()
    assert "oa" in text and "not searched" in text and " >" in text
    # A kernel that sums slowly is searched as before.
    big = plan((4096, 4096), (31, 31), "float32", mode="same", threads=2)
    assert not any(c.bound for c in big.candidates) and big.method in ("fft", "oa")


@pytest.mark.skipif(
    not compiled_available(make_problem_from_shapes((4, 4), (2, 2), np.dtype(np.float32))),
    reason="the compiled engine needs numba",
)
def test_integer_photo_out_is_priced_as_it_runs(monkeypatch):
    # A uint8 photo into a uint8 `out` moves a byte per sample each way; the 3x3 driver
    # rounds as it stores, and one pair of passes runs the strip-mined engine, which
    # converts and rounds in its own pass: a float32 photo's 3x3 Gaussian sums directly
    # (1500x2000x3 on the Zen 3 EPYC, 2026-12-02: direct 4.8 ms, passes 5.6 ms), the
    # uint8 photo's 5x5 and 7x7 take the passes (4.8 and 6.4 ms against 7.7 and 14.6).
    g3 = np.array([1.0, 2.0, 1.0], np.float32) / 4
    g5 = np.array([1.0, 4.0, 6.0, 4.0, 1.0], np.float32) / 16
    g7 = (np.hanning(9)[1:-1] / np.hanning(9).sum()).astype(np.float32)
    shape = (1500, 2000, 3)
    kw = dict(mode="same", boundary="symmetric", channel_axis=-1)

    def photo_plan(g, shape=shape):
        k = np.outer(g, g)
        return plan(shape, k.shape, np.uint8, out_dtype=np.uint8, kernel=k, **kw)

    as_photo = photo_plan(g3)
    as_float = plan(shape, (3, 3), np.float32, kernel=np.outer(g3, g3), **kw)
    assert as_float.method == "direct"
    assert photo_plan(g5).method == "separable" and photo_plan(g7).method == "separable"
    assert as_photo.problem.dtype == np.float32
    assert as_photo.problem.io_dtypes == (np.dtype(np.uint8), np.dtype(np.uint8))
    assert "image uint8, out uint8 rounded" in as_photo.explain()
    floor = costs.traffic_bytes(as_photo.problem)
    assert floor == 2 * math.prod(shape) == costs.traffic_bytes(as_float.problem) // 4
    # ... and convolve runs that plan.
    from fftconv.methods import interleaved

    seen = []
    real = interleaved.convolve

    def spy(problem, lay, a, k, out, threads, factors=None):
        seen.append(factors)
        return real(problem, lay, a, k, out, threads, factors)

    monkeypatch.setattr(interleaved, "convolve", spy)
    photo = np.random.default_rng(0).integers(0, 256, (160, 170, 3), dtype=np.uint8)
    k = np.outer(g7, g7)
    small = photo_plan(g7, photo.shape)
    got = fftconv.convolve(photo, k, "same", "symmetric", channel_axis=-1, out=np.empty_like(photo))
    assert small.method == "separable" and seen[-1] is not None
    ref = fftconv.convolve(
        photo.astype(np.float64), k.astype(np.float64), "same", "symmetric", channel_axis=-1
    )
    assert np.abs(got - ref).max() <= 0.5 + 1e-3


def test_integer_photo_out_never_plans_a_whole_array_transform():
    # An integer out= gets no image-sized float result, so its FFT plans run as
    # overlap-add blocks: the whole-array transforms are priced and shown, never chosen;
    # method='fft' is answered with the blocks and says so.
    shape, kshape = (1000, 1500, 3), (255, 255)
    kw = dict(mode="same", channel_axis=-1)
    for boundary in ("wrap", "fill"):
        as_float = plan(shape, kshape, np.uint8, boundary=boundary, **kw)
        as_photo = plan(shape, kshape, np.uint8, boundary=boundary, out_dtype=np.uint8, **kw)
        assert as_float.method == "fft", boundary
        assert as_photo.method == "oa" and as_photo.substituted is None, boundary
        whole = [c for c in as_photo.candidates if c.method == "fft"]
        assert whole and not any(c.runs for c in whole)
        assert as_photo.explain().count("not run for an integer out=") == len(whole)
    forced = plan(shape, kshape, np.uint8, boundary="fill", out_dtype=np.uint8, method="fft", **kw)
    assert forced.method == "oa" and "overlap-add blocks" in forced.substituted
    assert all(c.runs for c in plan(shape, kshape, np.uint8, boundary="fill", **kw).candidates)


def test_plan_out_dtype_is_checked():
    assert plan((64, 64), (3, 3), np.float32, out_dtype=np.float32).problem.io_dtypes is None
    with pytest.raises(ValueError, match="out_dtype=int32 is not"):
        plan((64, 64), (3, 3), np.float32, out_dtype=np.int32)
    with pytest.raises(TypeError, match="out_dtype must be a numpy dtype"):
        plan((64, 64), (3, 3), np.float32, out_dtype="pixels")
