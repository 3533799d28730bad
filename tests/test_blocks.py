"""Block convolution ('oa') and the circular 'wrap' path against the definition."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import fftconv
from fftconv._problem import make_problem
from fftconv.methods.blocks import block_layout, convolve_oa
from fftconv.methods.fft import circular_ok, convolve_circular
from reference import assert_close, reference

MODES = ("full", "same", "valid")
BOUNDARIES = ("fill", "wrap", "symmetric", "mirror", "nearest")


def _run_oa(
    a, k, mode, boundary, fillvalue=0, correlate=False, lengths=None, threads=2, workers=None
):
    problem, aa, kk = make_problem(a, k, mode, boundary, fillvalue, None, None, correlate)
    if lengths is None:
        lengths = tuple(kn + 6 for kn in problem.kernel_shape)
    out = np.empty(problem.out_shape, problem.dtype)
    convolve_oa(problem, aa, kk, out, threads, lengths, workers=workers)
    return out, problem


@pytest.mark.parametrize(
    "mode,boundary,correlate", list(itertools.product(MODES, BOUNDARIES, (False, True)))
)
def test_oa_matches_definition_every_mode_and_boundary(mode, boundary, correlate):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((37, 29))
    k = rng.standard_normal((6, 5))  # even and odd kernel lengths
    fill = 0.75 if boundary == "fill" else 0
    out, problem = _run_oa(a, k, mode, boundary, fill, correlate)
    _, counts = block_layout(problem, tuple(kn + 6 for kn in problem.kernel_shape))
    assert np.prod(counts) > 4  # several blocks, partial ones at the ends
    assert_close(out, reference(a, k, mode, boundary, fill, correlate), np.float64)


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_oa_kernel_larger_than_image_pads_wider_than_image(boundary):
    # 'full' with a kernel longer than the image: padding repeats the image several times.
    rng = np.random.default_rng(2)
    a = rng.standard_normal((5, 7))
    k = rng.standard_normal((12, 9))
    out, _ = _run_oa(a, k, "full", boundary, lengths=(16, 12))
    assert_close(out, reference(a, k, "full", boundary), np.float64)


def test_oa_float32_and_complex():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((64, 50)).astype(np.float32)
    k = rng.standard_normal((7, 7)).astype(np.float32)
    out, _ = _run_oa(a, k, "same", "symmetric")
    assert out.dtype == np.float32
    assert_close(out, reference(a, k, "same", "symmetric"), np.float32)
    ac = a + 1j * rng.standard_normal(a.shape)
    kc = k + 1j * rng.standard_normal(k.shape)
    out, _ = _run_oa(ac, kc, "full", "fill", fillvalue=0.5 - 1j, correlate=True)
    assert_close(out, reference(ac, kc, "full", "fill", 0.5 - 1j, True), np.complex128)


def test_oa_batch_axes_and_per_channel_kernels():
    rng = np.random.default_rng(4)
    a = rng.standard_normal((40, 30, 3))
    k = rng.standard_normal((5, 4, 3))
    got = fftconv.convolve(a, k, "same", "mirror", channel_axis=-1, method="oa")
    for c in range(3):
        assert_close(got[..., c], reference(a[..., c], k[..., c], "same", "mirror"), np.float64)


def test_oa_parallel_workers_equal_serial():
    rng = np.random.default_rng(5)
    a = rng.standard_normal((90, 70))
    k = rng.standard_normal((9, 5))
    serial, _ = _run_oa(a, k, "same", "wrap", threads=1)
    parallel, _ = _run_oa(a, k, "same", "wrap", threads=4, workers=4)
    np.testing.assert_array_equal(serial, parallel)


def test_oa_non_finite_inputs_propagate_like_direct_summation():
    rng = np.random.default_rng(6)
    a = rng.standard_normal((30, 30))
    a[4, 7] = np.nan
    a[20, 3] = np.inf
    k = rng.standard_normal((3, 3))
    # The execute layer routes non-finite data (the oa executor takes finite data only).
    got = fftconv.convolve(a, k, "same", method="oa")
    want = fftconv.convolve(a, k, "same", method="direct")
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    finite = np.isfinite(want)
    assert_close(got[finite], want[finite], np.float64)


def test_oa_rejects_blocks_shorter_than_kernel():
    problem, a, k = make_problem(
        np.ones((20, 20)), np.ones((5, 5)), "same", "fill", 0, None, None, False
    )
    with pytest.raises(ValueError, match="shorter than the kernel"):
        convolve_oa(problem, a, k, np.empty(problem.out_shape), 1, (4, 8))


def test_oa_does_not_modify_inputs():
    rng = np.random.default_rng(7)
    a = rng.standard_normal((50, 40))
    k = rng.standard_normal((5, 5))
    a0, k0 = a.copy(), k.copy()
    fftconv.convolve(a, k, "same", "nearest", method="oa")
    np.testing.assert_array_equal(a, a0)
    np.testing.assert_array_equal(k, k0)


@pytest.mark.parametrize("mode", ("full", "same"))
@pytest.mark.parametrize("correlate", (False, True))
@pytest.mark.parametrize("kshape", [(5, 4), (40, 3)])  # the second is longer than the image
def test_circular_wrap_equals_definition(mode, correlate, kshape):
    rng = np.random.default_rng(8)
    a = rng.standard_normal((32, 27))
    k = rng.standard_normal(kshape)
    problem, aa, kk = make_problem(a, k, mode, "wrap", 0, None, None, correlate)
    assert circular_ok(problem)
    out = np.empty(problem.out_shape)
    convolve_circular(problem, aa, kk, out, 2)
    assert_close(out, reference(a, k, mode, "wrap", 0, correlate), np.float64)


def test_circular_rejects_other_boundaries():
    problem, a, k = make_problem(
        np.ones((8, 8)), np.ones((3, 3)), "same", "fill", 0, None, None, False
    )
    with pytest.raises(ValueError, match="wrap"):
        convolve_circular(problem, a, k, np.empty(problem.out_shape), 1)


@pytest.mark.parametrize("method", ("direct", "fft", "oa", "auto"))
def test_api_methods_agree(method):
    rng = np.random.default_rng(9)
    a = rng.standard_normal((120, 80)).astype(np.float32)
    k = rng.standard_normal((11, 7)).astype(np.float32)
    for boundary in BOUNDARIES:
        got = fftconv.correlate(a, k, "same", boundary, method=method)
        assert_close(got, reference(a, k, "same", boundary, 0, True), np.float32)


@pytest.mark.parametrize("channels", [2, 3, 5])
@pytest.mark.parametrize("per_channel", [False, True])
def test_oa_photo_blocks_run_as_channel_planes(channels, per_channel, monkeypatch):
    # An (H, W, C) photo's blocks are transformed as C planes (split and merged by the
    # compiled engine): every boundary and mode, correlation, float32 and float64, a
    # per-channel kernel, an integer out rounded and clipped, against the reference.
    pytest.importorskip("numba")
    from fftconv.methods import blocks

    calls = []
    planes = blocks._one_block_planes
    monkeypatch.setattr(blocks, "_one_block_planes", lambda *a: calls.append(1) or planes(*a))
    rng = np.random.default_rng(channels)
    x = rng.standard_normal((41, 53, channels))
    k = rng.standard_normal((7, 6) + ((channels,) if per_channel else ()))
    ks = [k[..., c] if per_channel else k for c in range(channels)]
    for mode, boundary, corr in itertools.product(MODES, BOUNDARIES, (False, True)):
        fill = 0.5 if boundary == "fill" else 0
        ca = dict(channel_axis=-1)
        for dt in (np.float64, np.float32):
            fn = fftconv.correlate if corr else fftconv.convolve
            got = fn(x.astype(dt), k.astype(dt), mode, boundary, fill, method="oa", **ca)
            want = np.stack(
                [reference(x[..., c], ks[c], mode, boundary, fill, corr) for c in range(channels)],
                -1,
            )
            assert_close(got, want, dt)
    assert len(calls) >= 2 * len(MODES) * len(BOUNDARIES) * 2
    x8 = rng.integers(0, 255, (41, 53, channels), endpoint=True).astype(np.uint8)
    k8 = np.abs(k) / np.abs(k).sum(axis=(0, 1)) * 1.5  # overshoots 255: clipping exercised
    out = np.empty_like(x8)
    n = len(calls)
    fftconv.convolve(x8, k8, "same", "symmetric", channel_axis=-1, out=out, method="oa")
    assert len(calls) > n
    ref = np.stack(
        [
            reference(
                x8[..., c].astype(float), k8[..., c] if per_channel else k8, "same", "symmetric"
            )
            for c in range(channels)
        ],
        -1,
    )
    want = np.clip(np.rint(ref), 0, 255)
    tie = np.abs(np.abs(ref - np.floor(ref)) - 0.5) <= 1e-4
    d = np.abs(out.astype(float) - want)
    assert ((d == 0) | ((d <= 1) & tie)).all() and (want == 255).any()


def test_oa_photo_into_a_strided_out_and_with_a_kept_spectrum():
    # An `out` whose rows are not contiguous takes the interleaved blocks, as does a
    # strided image; a Convolver's kept spectrum (channels last) serves the planes.
    rng = np.random.default_rng(8)
    x = rng.standard_normal((45, 38, 3)).astype(np.float32)
    k = rng.standard_normal((9, 9)).astype(np.float32)
    want = np.stack([reference(x[..., c], k, "same", "nearest") for c in range(3)], -1)
    big = np.zeros((45, 38, 6), np.float32)
    out = big[:, :, ::2]
    fftconv.convolve(x, k, "same", "nearest", channel_axis=-1, method="oa", out=out)
    assert_close(out, want, np.float32)
    assert not big[:, :, 1::2].any()
    xs = np.zeros((45, 38, 6), np.float32)
    xs[:, :, ::2] = x  # a strided image: its blocks are gathered, not read by row index
    got = fftconv.convolve(xs[:, :, ::2], k, "same", "nearest", channel_axis=-1, method="oa")
    assert_close(got, want, np.float32)
    conv = fftconv.Convolver(k, "same", "nearest", channel_axis=-1, method="oa")
    for _ in range(2):
        assert_close(conv(x), want, np.float32)
