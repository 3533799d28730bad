# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # A photo larger than the memory budget
#
# A whole-array FFT of an image needs several times the image's size in working
# memory. `fftconv.tiles.convolve_tiled` cuts the output into tiles instead: each tile
# is computed from a block of the source that holds the tile and its halo (the
# `k - 1` samples the kernel reaches), with the same executors as an in-memory call,
# and tiles are sized so that everything in flight fits `max_memory`. The source and
# the destination can be memory maps or zarr arrays (a photo larger than RAM); here
# they are arrays in memory, so that the memory the call itself needs can be measured.
#
# The photo is generated from scikit-image's bundled photos (nothing is downloaded):
# 8192 x 8192 grey pixels, uint8, 67 MB.

# %%
import tracemalloc

import matplotlib.pyplot as plt
import numpy as np
import psutil
import skimage.color
import skimage.data
import skimage.transform

import fftconv
from fftconv import kernels, tiles

MB = 10**6  # the unit of max_memory='64MB' and of the printed plans
photos = [
    skimage.data.camera(),
    skimage.data.astronaut(),
    skimage.data.coffee(),
    skimage.data.chelsea(),
    skimage.data.rocket(),
    skimage.data.coins(),
]
side = 2048
squares = []
for p in photos:
    g = skimage.color.rgb2gray(p) if p.ndim == 3 else p / 255.0
    squares.append(skimage.transform.resize(g, (side, side), order=1, anti_aliasing=False))
rows = [np.hstack([squares[(r + c) % len(squares)] for c in range(4)]) for r in range(4)]
photo = (np.vstack(rows) * 255).round().astype(np.uint8)
del squares, rows
print(f"photo {photo.shape} {photo.dtype}: {photo.nbytes / MB:.0f} MB")

# %% [markdown]
# ## The plan under a 64 MB budget
#
# A Gaussian blur with sigma 6 (a 49 x 49 kernel). `tiles.plan_for` says how
# `convolve_tiled` will run, without reading a pixel: how many tiles, their size and
# halo, the method per tile, and the predicted working memory against the budget.
# The same blur in memory returns a float32 result, four times the photo, before
# any working memory.

# %%
kernel = kernels.gaussian(6.0).astype(np.float32)
budget = "64MB"
plan = tiles.plan_for(photo.shape, photo.dtype, kernel, max_memory=budget)
whole = fftconv.plan(photo.shape, kernel.shape, np.float32, mode="same", boundary="symmetric")
print(
    f"kernel {kernel.shape}; in memory: {whole.method}, a float32 result of "
    f"{photo.size * 4 / MB:.0f} MB + {whole.peak_bytes / MB:.0f} MB working memory"
)
display(plan)  # noqa: F821 (IPython's display)

# %% [markdown]
# ## The tiled run, with a progress bar
#
# `progress=True` shows a tqdm bar (a widget in a notebook, a line in a terminal) on
# runs longer than a second. `tracemalloc` records the peak of the memory numpy
# allocates during the call (the blocks, the FFT buffers, the tile results), and
# psutil the process's resident memory. A small call first loads the compiled code,
# and the output's pages are touched before, so that neither counts as the call's.

# %%
tiles.convolve_tiled(photo[:512, :512], kernel, max_memory=budget)
proc = psutil.Process()
out = np.zeros_like(photo)
rss_before = proc.memory_info().rss
tracemalloc.start()
blurred = tiles.convolve_tiled(
    photo, kernel, out, mode="same", boundary="symmetric", max_memory=budget, progress=True
)
_, tiled_peak = tracemalloc.get_traced_memory()
tracemalloc.stop()
rss_after = proc.memory_info().rss
print(
    f"tiled: peak {tiled_peak / MB:.1f} MB allocated during the call "
    f"(budget {tiles.parse_memory(budget) / MB:.0f} MB, predicted {plan.memory / MB:.1f} MB); "
    f"resident memory {rss_before / MB:.0f} -> {rss_after / MB:.0f} MB"
)

# %% [markdown]
# The same blur in memory, for comparison (and to check the tiled result: both are
# computed in float32, and the tiled one is rounded to uint8, so they differ by at
# most one grey level).

# %%
tracemalloc.start()
reference = fftconv.convolve(photo, kernel, mode="same", boundary="symmetric")
_, whole_peak = tracemalloc.get_traced_memory()
tracemalloc.stop()
diff = np.abs(blurred.astype(np.float32) - reference)
print(f"in memory: peak {whole_peak / MB:.0f} MB allocated during the call")
print(
    f"largest difference, tiled (uint8) against in memory (float32): {diff.max():.3f} grey levels"
)
assert diff.max() <= 0.5 + 1e-3
del reference, diff

# %% [markdown]
# ## The tile grid
#
# Every tile has the same shape, so each worker reuses one pair of FFTW plans and one
# kernel spectrum serves every tile; the last tile on each axis is shifted back to end
# at the edge and writes only what its neighbour did not. One tile's block (the tile
# and its halo) is drawn in orange.


# %%
def starts(n, t):
    count = -(-n // t)
    return [min(i * t, n - t) for i in range(count)]


th, tw = plan.tile
kh, kw = kernel.shape
step = 8  # draw a downsampled view
fig, axes = plt.subplots(1, 2, figsize=(13, 6.6), layout="constrained")
for ax, img, title in [(axes[0], photo, "photo"), (axes[1], blurred, "blurred, tile by tile")]:
    ax.imshow(
        img[::step, ::step],
        cmap="gray",
        vmin=0,
        vmax=255,
        extent=(-0.5, img.shape[1] - 0.5, img.shape[0] - 0.5, -0.5),
    )
    ax.set_title(f"{title} {img.shape}")
    ax.set_xlabel("column")
for r in starts(photo.shape[0], th):
    for c in starts(photo.shape[1], tw):
        axes[1].add_patch(plt.Rectangle((c, r), tw, th, fill=False, color="cyan", lw=0.6))
r0, c0 = starts(photo.shape[0], th)[2], starts(photo.shape[1], tw)[3]
axes[1].add_patch(
    plt.Rectangle(
        (c0 - kw // 2, r0 - kh // 2),
        tw + kw - 1,
        th + kh - 1,
        fill=False,
        color="orange",
        lw=2,
        label="one block (tile + halo)",
    )
)
axes[1].plot([], [], color="cyan", label=f"{plan.tiles} tiles of {th}x{tw}")
axes[1].legend(loc="lower right")
for ax in axes:
    ax.set_xlim(-0.5, photo.shape[1] - 0.5)
    ax.set_ylim(photo.shape[0] - 0.5, -0.5)
axes[0].set_ylabel("row")
plt.show()

# %% [markdown]
# ## Memory

# %%
labels = [
    "photo (uint8)",
    "result (uint8)",
    "in memory:\npeak of the call",
    "tiled:\npeak of the call",
]
values = np.array([photo.nbytes, blurred.nbytes, whole_peak, tiled_peak]) / MB
fig, ax = plt.subplots(figsize=(8, 4), layout="constrained")
bars = ax.bar(labels, values, color=["grey", "grey", "tab:red", "tab:green"])
ax.bar_label(bars, fmt="%.0f MB")
ax.axhline(tiles.parse_memory(budget) / MB, color="black", ls="--", label=f"budget {budget}")
ax.set_ylabel("MB")
ax.set_ylim(0, values.max() * 1.15)
ax.set_title("memory allocated during one call (tracemalloc), beside the arrays")
ax.legend()
plt.show()
