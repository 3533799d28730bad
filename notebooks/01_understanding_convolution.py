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
# # Understanding convolution, with fftconv
#
# The article *Understanding Convolution* builds image convolution up from a
# single blur to template matching. This notebook follows it step by step with
# fftconv, on the photos that ship with scikit-image (nothing is downloaded):
#
# 1. Laplace edges and a box blur in `mode='full'`, then `'same'` and `'valid'`;
# 2. what the boundary modes do at the border of a blurred image;
# 3. emboss and the complex Scharr kernel on a colour photo;
# 4. sharpen and emboss on every channel in one call, beside `scipy.ndimage`;
# 5. correlation against convolution, with an asymmetric kernel;
# 6. template matching: an eye found in a noisy photo.

# %%
import matplotlib.pyplot as plt
import numpy as np
import scipy.ndimage
import skimage.color
import skimage.data

import fftconv
from fftconv import kernels

plt.rcParams.update({"figure.dpi": 90, "image.interpolation": "nearest"})

grey = skimage.data.camera().astype(np.float32) / 255  # 512 x 512, values 0..1
colour = skimage.data.chelsea().astype(np.float32) / 255  # 300 x 451 x 3
astronaut = skimage.color.rgb2gray(skimage.data.astronaut()).astype(np.float32)  # 512 x 512
print("grey", grey.shape, grey.dtype, "| colour", colour.shape, colour.dtype)

# %% [markdown]
# ## 1. Edges and blur, `mode='full'`
#
# The Laplace kernel sums to zero: flat regions give 0, edges give signed values,
# so the result is shown with a diverging colour map and a colour bar. The box blur
# averages a 9 x 9 neighbourhood. As in the article, the first calls use
# `mode='full'` (fftconv's default, like `scipy.signal.convolve2d`): every output
# the kernel touches, so the result is `kernel_size - 1` larger than the image.

# %%
laplace = kernels.laplace()
box = kernels.box(9)
print("Laplace kernel:\n", laplace)

edges = fftconv.convolve(grey, laplace)  # mode='full', boundary='fill' (zeros)
blurred = fftconv.convolve(grey, box)
print("image", grey.shape, "-> edges", edges.shape, "and blurred", blurred.shape)

fig, axes = plt.subplots(1, 3, figsize=(12, 4.3), layout="constrained")
axes[0].imshow(grey, cmap="gray", vmin=0, vmax=1)
axes[0].set_title(f"camera {grey.shape}")
lim = np.percentile(np.abs(edges), 99.5)
im = axes[1].imshow(edges, cmap="RdBu_r", vmin=-lim, vmax=lim)
axes[1].set_title(f"Laplace edges, full {edges.shape}")
fig.colorbar(im, ax=axes[1], shrink=0.8, label="second difference")
axes[2].imshow(blurred, cmap="gray", vmin=0, vmax=1)
axes[2].set_title(f"9 x 9 box blur, full {blurred.shape}")
for ax in axes:
    ax.set_xlabel("column")
axes[0].set_ylabel("row")
plt.show()

# %% [markdown]
# ## `'full'`, `'same'` and `'valid'`
#
# `'same'` keeps the image's size (the centred crop of `'full'`), `'valid'` keeps only
# the outputs whose window lies inside the image, with no padding at all. A 31 x 31
# box shows the difference: the three results are drawn at their true position in
# the image's coordinates; the dashed frame is the image.

# %%
box31 = kernels.box(31)
results = {m: fftconv.convolve(grey, box31, mode=m) for m in ("full", "same", "valid")}
for m, r in results.items():
    print(f"{m:>5}: {r.shape}")

half = (box31.shape[0] - 1) // 2
offsets = {"full": -half, "same": 0, "valid": half}
fig, axes = plt.subplots(1, 3, figsize=(12, 4.4), sharex=True, sharey=True, layout="constrained")
for ax, (m, r) in zip(axes, results.items()):
    o = offsets[m]
    ax.imshow(
        r,
        cmap="gray",
        vmin=0,
        vmax=1,
        extent=(o - 0.5, o + r.shape[1] - 0.5, o + r.shape[0] - 0.5, o - 0.5),
    )
    ax.add_patch(
        plt.Rectangle(
            (-0.5, -0.5),
            grey.shape[1],
            grey.shape[0],
            fill=False,
            ls="--",
            color="tab:orange",
            lw=1.5,
        )
    )
    ax.set_title(f"mode={m!r}: {r.shape}")
    ax.set_xlabel("image column")
axes[0].set_ylabel("image row")
axes[0].set_xlim(-half - 10, grey.shape[1] + half + 10)
axes[0].set_ylim(grey.shape[0] + half + 10, -half - 10)
plt.show()

# %% [markdown]
# ## 2. Boundary modes at the border
#
# With `mode='same'`, outputs near the border need samples from outside the image.
# The boundary mode decides what they are (fftconv's names; SciPy's, numpy's and
# OpenCV's spellings are accepted too). Each crop is the top-left 48 x 48 corner of
# the astronaut photo (the flag's stars) blurred with a 15 x 15 box: `fill` darkens
# the border with zeros, `wrap` brings in the opposite edges, `symmetric`, `mirror`
# and `nearest` continue the image; their differences, in the last two panels, stay
# within the 7 samples the kernel reaches past the edge.

# %%
print("boundaries:", fftconv.BOUNDARIES)
box15 = kernels.box(15)
crop = (slice(0, 48), slice(0, 48))
blurs = {b: fftconv.convolve(astronaut, box15, mode="same", boundary=b) for b in fftconv.BOUNDARIES}
fig, axes = plt.subplots(2, 4, figsize=(12, 6.2), layout="constrained")
panels = [("image corner", astronaut)] + [(f"boundary={b!r}", r) for b, r in blurs.items()]
for ax, (title, r) in zip(axes.flat, panels):
    ax.imshow(r[crop], cmap="gray", vmin=0, vmax=1)
    ax.set_title(title)
for ax, (a_, b_) in zip(axes.flat[6:], [("symmetric", "mirror"), ("nearest", "symmetric")]):
    d = (blurs[a_] - blurs[b_])[crop]
    lim = float(np.abs(d).max())
    im = ax.imshow(d, cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax.set_title(f"{a_} - {b_}")
    fig.colorbar(im, ax=ax, shrink=0.9)
for ax in axes.flat:
    ax.set_xticks([0, 47])
    ax.set_yticks([0, 47])
plt.show()

# %% [markdown]
# ## 3. Emboss and the complex Scharr kernel on a colour photo
#
# `channel_axis=-1` convolves each channel of an `(H, W, 3)` photo with the same 2-d
# kernel. The emboss kernel sums to one (brightness stays) and lights every edge from
# one side, like a relief.
#
# The Scharr kernel `Gx + i Gy` is complex: one convolution gives both derivatives.
# Its modulus is the gradient's magnitude and its angle the gradient's direction. The
# angle is cyclic (-pi and pi are the same direction), so it gets a cyclic colour map,
# faded where the gradient is weak and the direction means nothing.

# %%
emboss = kernels.emboss()
relief = fftconv.convolve(colour, emboss, mode="same", boundary="symmetric", channel_axis=-1)

scharr = kernels.scharr().astype(np.complex64)  # complex: Gx + i Gy
print("Scharr kernel:\n", scharr)
grad = fftconv.convolve(colour, scharr, mode="same", boundary="symmetric", channel_axis=-1)
# For each pixel, the channel with the strongest gradient (a colour edge in any channel).
strongest = np.abs(grad).argmax(axis=-1)[..., None]
g = np.take_along_axis(grad, strongest, axis=-1)[..., 0]
magnitude, angle = np.abs(g), np.angle(g)
print("gradient", grad.shape, grad.dtype)

fig, axes = plt.subplots(2, 2, figsize=(11, 7.6), layout="constrained")
axes[0, 0].imshow(colour)
axes[0, 0].set_title(f"chelsea {colour.shape}")
axes[0, 1].imshow(np.clip(relief, 0, 1))
axes[0, 1].set_title("emboss, every channel")
im = axes[1, 0].imshow(magnitude, cmap="magma", vmax=np.percentile(magnitude, 99.5))
axes[1, 0].set_title("Scharr: magnitude |Gx + i Gy|")
fig.colorbar(im, ax=axes[1, 0], shrink=0.85, label="gradient magnitude")
fade = np.clip(magnitude / np.percentile(magnitude, 90), 0, 1)
im = axes[1, 1].imshow(angle, cmap="twilight", vmin=-np.pi, vmax=np.pi, alpha=fade)
axes[1, 1].set_facecolor("black")
axes[1, 1].set_title("Scharr: angle (faded where weak)")
cb = fig.colorbar(
    im,
    ax=axes[1, 1],
    shrink=0.85,
    label="gradient direction (radians)",
    ticks=[-np.pi, -np.pi / 2, 0, np.pi / 2, np.pi],
)
cb.ax.set_yticklabels(["-pi", "-pi/2", "0", "pi/2", "pi"])
cb.solids.set_alpha(1)
plt.show()

# %% [markdown]
# ## 4. Sharpen and emboss on every channel, in one call
#
# The article filters a colour photo with `scipy.ndimage.convolve` and a kernel of
# shape `(3, 3, 1)`: the trailing axis of length one applies the same 2-d kernel to
# every channel. fftconv says the same with `channel_axis=-1` and the 2-d kernel.
# scipy.ndimage's default boundary `'reflect'` is fftconv's `'symmetric'`. The drop-in
# `fftconv.ndimage.convolve` takes the article's call unchanged.

# %%
import fftconv.ndimage  # noqa: E402

sharpen = kernels.sharpen()
fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), layout="constrained")
axes[0].imshow(colour)
axes[0].set_title("original")
for ax, (name, k) in zip(axes[1:], [("sharpen", sharpen), ("emboss", emboss)]):
    ref = scipy.ndimage.convolve(colour, k[:, :, None].astype(np.float32))  # (3, 3, 1)
    ours = fftconv.convolve(colour, k, mode="same", boundary="symmetric", channel_axis=-1)
    dropin = fftconv.ndimage.convolve(colour, k[:, :, None].astype(np.float32))
    same = np.allclose(ours, ref, atol=1e-5) and np.allclose(dropin, ref, atol=1e-5)
    print(f"{name}: kernel {k[:, :, None].shape}, np.allclose(fftconv, scipy.ndimage) = {same}")
    ax.imshow(np.clip(ours, 0, 1))
    ax.set_title(f"{name}: fftconv == ndimage: {same}")
plt.show()

# %% [markdown]
# ## 5. Correlation against convolution
#
# Convolution flips the kernel before sliding it, correlation does not. For a
# symmetric kernel (a box, a Gaussian) the two agree; for an asymmetric one they do
# not. The article's ripple kernel
#
# $$K = \begin{pmatrix} 0 & -1 & \sqrt2 \\ 1 & 0 & -1 \\ -\sqrt2 & 1 & 0 \end{pmatrix}$$
#
# is even the negative of its own flip, so correlating gives minus the convolution.
# Correlating with the flipped kernel gives the convolution back: the difference
# vanishes (to float32 round-off).

# %%
s2 = np.sqrt(2)
ripple = np.array([[0, -1, s2], [1, 0, -1], [-s2, 1, 0]], np.float32)
conv = fftconv.convolve(grey, ripple, mode="same")
corr = fftconv.correlate(grey, ripple, mode="same")
corr_flipped = fftconv.correlate(grey, ripple[::-1, ::-1], mode="same")
print("max |convolve - correlate|          =", float(np.abs(conv - corr).max()))
print("max |convolve - correlate(flipped)| =", float(np.abs(conv - corr_flipped).max()))

lim = float(np.percentile(np.abs(conv), 99.5))
panels = [
    ("convolve(K)", conv),
    ("correlate(K)", corr),
    ("convolve - correlate(K)", conv - corr),
    ("convolve - correlate(flip K)", conv - corr_flipped),
]
fig, axes = plt.subplots(1, 4, figsize=(14, 3.8), layout="constrained")
for ax, (title, r) in zip(axes, panels):
    im = ax.imshow(r, cmap="RdBu_r", vmin=-2 * lim, vmax=2 * lim)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
fig.colorbar(im, ax=axes, shrink=0.8, label="response")
plt.show()

# %% [markdown]
# ## 6. Template matching: finding an eye in a noisy photo
#
# Template matching slides a small template over the image and scores every
# position. Plain cross-correlation (`fftconv.correlate` with the template, mode
# `'valid'`) scores *bright* regions highest, wherever the template is: a white
# helmet beats the eye. `fftconv.match_template` computes the normalised
# cross-correlation (scikit-image's definition): each window's mean is removed and
# the score divided by both standard deviations, so the score is 1 for a perfect
# match at any brightness, and the peak lands on the eye although the photo is noisy.

# %%
rng = np.random.default_rng(0)
noisy = astronaut + rng.normal(0, 0.08, astronaut.shape).astype(np.float32)
top, left, h, w = 88, 178, 24, 32  # the astronaut's right eye (on the viewer's left)
template = astronaut[top : top + h, left : left + w]

plain = fftconv.correlate(noisy, template, mode="valid")
score = fftconv.match_template(noisy, template)
plain_peak = np.unravel_index(np.argmax(plain), plain.shape)
peak = fftconv.find_peaks(score, num_peaks=1)[0]
print("template", template.shape, "| score map", score.shape)
print("plain cross-correlation peak (row, col):", tuple(map(int, plain_peak)))
print(
    "match_template peak (row, col):",
    tuple(map(int, peak)),
    "score",
    round(float(score[tuple(peak)]), 3),
)
print("the eye is at", (top, left))

fig, (ax_img, ax_t) = plt.subplots(
    1, 2, figsize=(12, 7.4), width_ratios=[3, 1], layout="constrained"
)
ax_img.imshow(noisy, cmap="gray", vmin=0, vmax=1)
for (r, c), edge, label in [
    (plain_peak, "tab:red", "plain cross-correlation peak"),
    (peak, "lime", "match_template peak"),
]:
    ax_img.add_patch(
        plt.Rectangle((c - 0.5, r - 0.5), w, h, fill=False, color=edge, lw=2, label=label)
    )
ax_img.legend(loc="lower left")
ax_img.set_title("noisy astronaut (noise sd 0.08): the best match of each score")
ax_t.imshow(template, cmap="gray", vmin=0, vmax=1)
ax_t.set_title(f"template {template.shape}\n(cut from the clean photo)")
plt.show()

fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
for ax, (title, m, p) in zip(
    axes,
    [("plain cross-correlation", plain, plain_peak), ("match_template (normalised)", score, peak)],
):
    im = ax.imshow(m, cmap="viridis")
    ax.plot(p[1], p[0], "o", mfc="none", mec="red", ms=12, mew=2)
    ax.set_title(f"{title}: peak at {tuple(map(int, p))}")
    fig.colorbar(im, ax=ax, shrink=0.85, label="score")
plt.show()
