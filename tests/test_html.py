"""How Plan, Convolver and TilePlan show in a notebook (HTML, with the text form as fallback)."""

from __future__ import annotations

import numpy as np

import fftconv
from fftconv import tiles


def test_plan_html_lists_every_candidate_and_marks_the_choice():
    p = fftconv.plan((1024, 1024), (31, 31), "float32", mode="same")
    html = p._repr_html_()
    assert html.count("<tr") == len(p.candidates) + 1
    bold = html.split('style="font-weight:bold"><td>', 1)[1]
    assert bold.startswith(p.method + "<")
    assert "mode=&#x27;same&#x27;" in html  # escaped, not raw quotes


def test_plan_text_fallback_is_the_explanation():
    p = fftconv.plan((256, 256), (5, 5))
    printed = []

    class Printer:
        def text(self, s):
            printed.append(s)

    p._repr_pretty_(Printer(), False)
    assert printed == [p.explain()]


def test_convolver_html_lists_the_prepared_shapes():
    conv = fftconv.Convolver(np.ones((7, 7)) / 49, mode="same", boundary="nearest")
    assert conv._repr_html_().count("<tr") == 1  # header only
    conv(np.zeros((40, 50)))
    conv(np.zeros((30, 20), np.float32))
    html = conv._repr_html_()
    assert "(40, 50)" in html and "(30, 20)" in html and "float64" in html
    assert html.count("<tr") == 3


def test_tile_plan_html_and_plan_for_match_the_run():
    img = np.random.default_rng(1).random((700, 500)).astype(np.float32)
    k = np.ones((15, 15), np.float32) / 225
    plan = tiles.plan_for(img.shape, img.dtype, k, max_memory="24MB", threads=2)
    seen = []
    tiles.convolve_tiled(
        img, k, max_memory="24MB", threads=2, progress=lambda done, total: seen.append(total)
    )
    assert seen and seen[-1] == plan.tiles
    html = plan._repr_html_()
    assert f"{plan.tiles} = " in html and "<table>" in html
