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
# # The planner: predicted against measured, on this machine
#
# `method="auto"` (the default) asks `fftconv.plan`, which prices every method from
# the shapes alone (no pixel is touched, no FFTW plan is made) and picks the cheapest:
#
# * `direct`: compiled direct summation, cost proportional to `pixels x taps`;
# * `fft`: one FFT of the whole padded image, cost about `N log N` whatever the kernel;
# * `oa`: overlap-add, the image cut into blocks whose FFTs stay in the caches.
#
# This notebook times each method over kernel sizes on this machine, beside what
# the planner predicted, marks where the fastest method changes, shows what
# `print(plan)` says, and calibrates the cost model to this machine.

# %%
import os
import platform
import time

import matplotlib.pyplot as plt
import numpy as np

import fftconv

print(platform.processor() or platform.machine(), "|", len(os.sched_getaffinity(0)), "cores")
rng = np.random.default_rng(0)
image = rng.random((1024, 1024), dtype=np.float32)
sizes = [3, 5, 9, 15, 25, 41, 65, 97, 161, 255]
methods = ["direct", "fft", "oa"]
# Random kernels: not separable, so these three methods are the candidates.
kernels = {k: rng.random((k, k), dtype=np.float32) for k in sizes}


def predicted(k):
    """Predicted seconds per method (each forced), and the planner's own choice."""
    times = {
        m: fftconv.plan(image.shape, (k, k), image.dtype, mode="same", method=m).seconds
        for m in methods
    }
    return times, fftconv.plan(
        image.shape, (k, k), image.dtype, mode="same", kernel=kernels[k]
    ).method


slow = set()  # methods that took longer than `skip_above` at a smaller kernel


def measure(k, skip_above=0.25, repeat=3):
    """Median seconds per method, the methods interleaved (A B C A B C ...).

    A method predicted to take more than `skip_above` seconds, or that took longer at
    a smaller kernel, is not timed (direct summation with large kernels takes minutes)."""
    pred, _ = predicted(k)
    todo = [m for m in methods if pred[m] < skip_above and m not in slow]
    samples = {m: [] for m in todo}
    for m in todo:  # warm-up: FFTW plans, compiled code
        fftconv.convolve(image, kernels[k], mode="same", method=m)
    for _ in range(repeat):
        for m in todo:
            t = time.perf_counter()
            fftconv.convolve(image, kernels[k], mode="same", method=m)
            samples[m].append(time.perf_counter() - t)
    result = {m: float(np.median(samples[m])) if m in samples else np.nan for m in methods}
    slow.update(m for m in todo if result[m] > skip_above)
    return result


before = {k: predicted(k) for k in sizes}
measured = {k: measure(k) for k in sizes}
print(f"{'kernel':>7} " + " ".join(f"{m + ' (ms)':>12}" for m in methods) + "   fastest  chosen")
for k in sizes:
    row = " ".join(f"{measured[k][m] * 1e3:12.1f}" for m in methods)
    fastest = min(methods, key=lambda m: np.nan_to_num(measured[k][m], nan=np.inf))
    print(f"{k:>4}x{k:<3} {row}   {fastest:>7}  {before[k][1]:>6}")

# %% [markdown]
# ## Predicted against measured
#
# Solid lines are measured (median of 3 interleaved runs), dashed lines the planner's
# prediction. The vertical lines mark the measured crossovers, where the fastest
# method changes; the triangles at the bottom, the predicted ones. The lower panel
# is the planner's *regret*: the time of the method it chose over the time of the
# fastest method (1.0 means it chose the fastest).

# %%
colours = {"direct": "tab:blue", "fft": "tab:orange", "oa": "tab:green"}


def fastest_of(times):
    return min(methods, key=lambda m: np.nan_to_num(times[m], nan=np.inf))


def crossovers(winners):
    """(kernel size, from, to) where the winning method changes between two sizes."""
    return [
        (np.sqrt(a * b), winners[i], winners[i + 1])
        for i, (a, b) in enumerate(zip(sizes, sizes[1:]))
        if winners[i] != winners[i + 1]
    ]


measured_x = crossovers([fastest_of(measured[k]) for k in sizes])
predicted_x = crossovers([fastest_of(before[k][0]) for k in sizes])

fig, (ax, ax_r) = plt.subplots(
    2, 1, figsize=(11, 7.5), sharex=True, height_ratios=[3, 1], layout="constrained"
)
for m in methods:
    ax.plot(
        sizes, [measured[k][m] * 1e3 for k in sizes], "o-", color=colours[m], label=f"{m}, measured"
    )
    ax.plot(
        sizes,
        [before[k][0][m] * 1e3 for k in sizes],
        "--",
        color=colours[m],
        alpha=0.7,
        label=f"{m}, predicted",
    )
for x, a, b in measured_x:
    ax.axvline(x, color="grey", ls=":", lw=1.2)
    ax.annotate(
        f"{a} → {b}\nat ~{x:.0f}",
        (x, 0.98),
        xycoords=("data", "axes fraction"),
        ha="center",
        va="top",
        fontsize=9,
        bbox=dict(boxstyle="round", fc="white", ec="grey", alpha=0.9),
    )
for x, _, _ in predicted_x:
    ax.plot(
        [x],
        [0.02],
        marker="^",
        color="black",
        ms=9,
        transform=ax.get_xaxis_transform(),
        clip_on=False,
    )
ax.plot([], [], "^", color="black", label="predicted crossover")
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_ylabel("time per call (ms)")
ax.set_title(f"{image.shape[0]}x{image.shape[1]} float32, mode='same', by kernel size")
fig.legend(loc="outside right upper", fontsize=8)
regret = [measured[k][before[k][1]] / np.nanmin(list(measured[k].values())) for k in sizes]
ax_r.plot(sizes, regret, "s-", color="black")
ax_r.axhline(1.0, color="grey", lw=1)
ax_r.set_ylim(0.9, max(1.5, max(regret) * 1.1))
ax_r.set_ylabel("regret")
ax_r.set_xlabel("kernel size (k x k)")
ax_r.set_xticks(sizes, [str(k) for k in sizes], minor=False)
ax_r.minorticks_off()
plt.show()

# %% [markdown]
# ## What `print(plan)` says, and why
#
# A `Plan` prints every candidate it weighed: the predicted time, its ratio to the
# best, the working memory beyond the inputs and the output, and how the method would
# run (the transform or block shape). In a notebook it shows as a table. The last line
# says whether the cost constants were measured on this machine.

# %%
plan = fftconv.plan(image.shape, (33, 33), image.dtype, mode="same")
print(plan)

# %% [markdown]
# Reading it: direct summation would do `33 x 33 = 1089` multiply-adds per output;
# the whole-array FFT pays for transforms of the padded image at an FFTW-fast length
# (a few large transforms that spill out of the caches); overlap-add cuts the output
# into blocks whose transforms are small and fast, and reads the boundary padding
# straight from the image, so it is usually the cheapest for mid-sized kernels on
# large images. The same plan, as the notebook shows it:

# %%
display(plan)  # noqa: F821 (IPython's display)

# %% [markdown]
# ## Calibration: before and after
#
# Without calibration the planner uses constants measured on the development machine.
# `fftconv.calibrate()` times a few FFTs, copies and the compiled kernels here (a few
# seconds) and refits them; `save=False` keeps them for this process only, so nothing
# is written to your cache directory (`fftconv.calibrate()` without it saves them, and
# every later process uses them).

# %%
t = time.perf_counter()
machine = fftconv.calibrate(save=False, budget_s=5)
print(f"calibrated in {time.perf_counter() - t:.1f} s:", machine)
after = {k: predicted(k) for k in sizes}
print(fftconv.plan(image.shape, (33, 33), image.dtype, mode="same").explain().splitlines()[-1])


def error(pred):
    """Geometric mean of predicted / measured over the timed cells, per method."""
    return {
        m: float(np.exp(np.nanmean([np.log(pred[k][0][m] / measured[k][m]) for k in sizes])))
        for m in methods
    }


print(
    "predicted / measured (geometric mean), before:",
    {m: round(v, 2) for m, v in error(before).items()},
)
print(
    "predicted / measured (geometric mean), after: ",
    {m: round(v, 2) for m, v in error(after).items()},
)

fig, axes = plt.subplots(1, 3, figsize=(13, 4), sharey=True, layout="constrained")
for ax, m in zip(axes, methods):
    ax.plot(sizes, [measured[k][m] * 1e3 for k in sizes], "o-", color=colours[m], label="measured")
    ax.plot(
        sizes,
        [before[k][0][m] * 1e3 for k in sizes],
        "--",
        color="grey",
        label="predicted, shipped constants",
    )
    ax.plot(
        sizes,
        [after[k][0][m] * 1e3 for k in sizes],
        "-.",
        color="black",
        label="predicted, calibrated here",
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_title(m)
    ax.set_xlabel("kernel size (k x k)")
    ax.set_xticks([3, 9, 33, 129, 255], ["3", "9", "33", "129", "255"])
    ax.minorticks_off()
axes[0].set_ylabel("time per call (ms)")
axes[0].legend(fontsize=8)
plt.show()
