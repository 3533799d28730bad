"""Convolver: one kernel, many images; the second image of a shape pays no planning and
no kernel transform."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import fftconv
import fftconv.methods.blocks as blocks_mod
import fftconv.methods.fft as fft_mod
from fftconv import _convolver, _execute, planner
from reference import assert_close, reference


@pytest.mark.parametrize("method", ("auto", "direct", "fft", "oa"))
@pytest.mark.parametrize(
    "mode,boundary,correlate",
    [
        ("same", "fill", False),
        ("full", "wrap", True),
        ("valid", "symmetric", False),
        ("same", "mirror", True),
        ("same", "wrap", False),
        ("full", "nearest", False),
    ],
)
def test_convolver_equals_definition(method, mode, boundary, correlate):
    rng = np.random.default_rng(0)
    k = rng.standard_normal((7, 4))
    conv = fftconv.Convolver(k, mode, boundary, method=method, correlate=correlate)
    for shape in ((40, 33), (40, 33), (25, 60)):
        a = rng.standard_normal(shape)
        assert_close(conv(a), reference(a, k, mode, boundary, 0, correlate), np.float64)


def test_second_image_costs_no_planning_and_no_kernel_transform(monkeypatch):
    counts = {"plan": 0, "kspec": 0}
    real_plan = planner.plan_problem
    real_kspec, real_lent = fft_mod.kernel_spectrum, fft_mod.lent_kernel_spectrum

    def counting_plan(*a, **kw):
        counts["plan"] += 1
        return real_plan(*a, **kw)

    def counting_kspec(*a, **kw):
        counts["kspec"] += 1
        return real_kspec(*a, **kw)

    def counting_lent(*a, **kw):
        counts["kspec"] += 1
        return real_lent(*a, **kw)

    for mod in (planner, _convolver):
        monkeypatch.setattr(mod, "plan_problem", counting_plan)
    for mod in (fft_mod, _execute):  # _execute.prepare_kernel computes a Convolver's spectra
        monkeypatch.setattr(mod, "kernel_spectrum", counting_kspec)
    for mod in (fft_mod, blocks_mod):
        monkeypatch.setattr(mod, "lent_kernel_spectrum", counting_lent)
    rng = np.random.default_rng(1)
    k = rng.standard_normal((15, 15)).astype(np.float32)
    for method in ("fft", "oa"):
        conv = fftconv.Convolver(k, "same", "symmetric", method=method)
        a = rng.standard_normal((300, 200)).astype(np.float32)
        first = conv(a)
        before = dict(counts)
        second = conv(a[::-1].copy())
        assert counts == before, method
        assert_close(first, reference(a, k, "same", "symmetric"), np.float32)
        assert_close(second, reference(a[::-1], k, "same", "symmetric"), np.float32)
        conv(np.ones((100, 100), np.float32))  # a new shape is prepared once
        assert counts["plan"] == before["plan"] + 1


def test_kernel_is_copied_and_inputs_untouched():
    k = np.ones((3, 3))
    conv = fftconv.Convolver(k, "same")
    k[:] = 0
    a = np.arange(20.0).reshape(4, 5)
    a0 = a.copy()
    assert conv(a)[1, 1] == pytest.approx(a0[0:3, 0:3].sum())
    np.testing.assert_array_equal(a, a0)


def test_out_argument_and_validation():
    conv = fftconv.Convolver(np.ones((3, 3)), "same", method="fft")
    out = np.empty((10, 10))
    assert conv(np.ones((10, 10)), out=out) is out
    with pytest.raises(ValueError, match="out has shape"):
        conv(np.ones((10, 10)), out=np.empty((9, 9)))
    with pytest.raises(ValueError, match="mode="):
        fftconv.Convolver(np.ones((3, 3)), "sane")
    with pytest.raises(ValueError, match="method="):
        fftconv.Convolver(np.ones((3, 3)), method="quick")


def test_plan_for_and_repr():
    conv = fftconv.Convolver(np.ones((31, 31), np.float32), "same")
    p = conv.plan_for((2048, 2048), np.float32)
    assert isinstance(p, fftconv.Plan) and p.problem.in1_shape == (2048, 2048)
    assert "1 image shapes prepared" in repr(conv)


def test_channel_axis_and_valid_swap():
    rng = np.random.default_rng(2)
    k = rng.standard_normal((5, 5))
    conv = fftconv.Convolver(k, "same", "nearest", channel_axis=-1)
    a = rng.standard_normal((30, 20, 3))
    got = conv(a)
    for c in range(3):
        assert_close(got[..., c], reference(a[..., c], k, "same", "nearest"), np.float64)
    # 'valid' with an image smaller than the kernel swaps the inputs, as SciPy does.
    small = rng.standard_normal((3, 2))
    got = fftconv.Convolver(k, "valid")(small)
    np.testing.assert_allclose(got, fftconv.convolve(small, k, "valid", method="direct"))


def test_one_convolver_many_threads():
    rng = np.random.default_rng(3)
    k = rng.standard_normal((9, 9))
    conv = fftconv.Convolver(k, "same", "wrap", method="oa")
    images = [rng.standard_normal(s) for s in ((64, 64), (50, 90), (64, 64), (33, 47))]
    refs = [reference(a, k, "same", "wrap") for a in images]
    errors = []

    def work(i):
        for j in range(10):
            n = (i + j) % len(images)
            try:
                assert_close(conv(images[n]), refs[n], np.float64)
            except AssertionError as exc:
                errors.append(str(exc))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:2]
