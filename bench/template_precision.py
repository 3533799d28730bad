"""How window sums for match_template keep (or lose) the variance of near-flat data.

Usage::

    python bench/template_precision.py

Near-flat images ``offset + noise`` (offset 1e3 and 1e7; float32 and float64)
with a flat block, a template cut from the image; each way of computing the
window energies is compared with a float64 brute-force reference (each window
centred on its own mean, ``tests/reference.py``): the largest error, the range of
the scores and whether the flat block scores 0.

Ways compared: scikit-image (cumulative sums in the image's dtype, no offset
removed); cumulative sums in float64 without removing an offset; cumulative
sums in float32 after removing the image mean; fftconv (float64 running sums
restarted every 64 rows and columns, after removing the image mean).
"""

from __future__ import annotations

import os
import sys
from functools import partial

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
import fftconv  # noqa: E402
from reference import zncc_reference  # noqa: E402


def _cumsum_zncc(img, t, acc, centre):
    """ZNCC with window sums by 2-D cumulative sums in `acc`, optionally on img - mean."""
    x = img.astype(np.float64)
    if centre:
        x = x - x.mean()
    m0, m1 = t.shape
    n = t.size
    tc = t.astype(np.float64) - t.mean()
    num = fftconv.correlate(x, tc, "valid")

    def wsum(a):
        c = np.zeros((a.shape[0] + 1, a.shape[1] + 1), acc)
        c[1:, 1:] = np.cumsum(np.cumsum(a.astype(acc), 0), 1)
        return (c[m0:, m1:] - c[:-m0, m1:] - c[m0:, :-m1] + c[:-m0, :-m1]).astype(np.float64)

    s1, s2 = wsum(x), wsum(x * x)
    var = s2 - s1 * s1 / n
    den = np.sqrt(np.maximum(var, 0) * (tc * tc).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > np.finfo(img.dtype).eps, num / den, 0)


def main() -> None:
    from skimage.feature import match_template as sk

    rng = np.random.default_rng(0)
    print("| data | way | max error vs float64 reference | score range | flat block 0 |")
    print("| --- | --- | --- | --- | --- |")
    for dtype in (np.float32, np.float64):
        for offset in (1e3, 1e7):
            noise = 1.0 if (dtype == np.float32 and offset > 1e4) else 1e-2
            img = (offset + noise * rng.standard_normal((96, 96))).astype(dtype)
            img[30:70, 30:70] = dtype(offset)
            t = img[5:21, 60:76].copy()
            ref = zncc_reference(img[..., None].astype(np.float64), t[..., None])
            ways = {
                "scikit-image": partial(sk, img, t),
                "float64 cumsum, no offset removed": partial(
                    _cumsum_zncc, img, t, np.float64, False
                ),
                "float32 cumsum, mean removed": partial(_cumsum_zncc, img, t, np.float32, True),
                "fftconv": partial(fftconv.match_template, img, t),
            }
            for name, fn in ways.items():
                r = np.asarray(fn(), np.float64)
                err = float(np.nanmax(np.abs(r - ref)))
                flat = bool(np.all(r[30:55, 30:55] == 0))
                print(
                    f"| {np.dtype(dtype).name} {offset:g} + {noise:g} noise | {name} "
                    f"| {err:.2g} | [{np.nanmin(r):.3g}, {np.nanmax(r):.3g}] | {flat} |"
                )


if __name__ == "__main__":
    main()
