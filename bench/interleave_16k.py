"""Interleaved timing (A B C D x3, after a warm-up, medians) of one 16384x16384 float32
image and a 63x63 kernel, mode same: fftconv tiled vs SciPy and OpenCV. Needs ~8 GB RAM."""

import time, json, numpy as np, scipy.signal, cv2, fftconv
n, ks = 16384, 63
img = np.empty((n, n), np.float32)
rng = np.random.default_rng(0)
for r in range(0, n, 1024):
    img[r:r + 1024] = rng.random((1024, n), dtype=np.float32)
y = np.arange(ks) - ks // 2
g = np.exp(-0.5 * (y / (ks / 6)) ** 2); k = np.outer(g, g).astype(np.float32); k /= k.sum()
calls = {
    "fftconv max_memory=512MB": lambda: fftconv.convolve(img, k, "same", max_memory="512MB"),
    "scipy.signal.fftconvolve": lambda: scipy.signal.fftconvolve(img, k, "same"),
    "scipy.signal.oaconvolve": lambda: scipy.signal.oaconvolve(img, k, "same"),
    "cv2.filter2D": lambda: cv2.filter2D(img, -1, k[::-1, ::-1].copy(), borderType=cv2.BORDER_CONSTANT),
}
for f in calls.values():  # warm-up
    f()
times = {name: [] for name in calls}
for rep in range(3):
    for name, f in calls.items():
        t0 = time.perf_counter(); out = f(); times[name].append(time.perf_counter() - t0); del out
for name, v in times.items():
    print(f"{name:28s} median {np.median(v):6.2f} s  runs {[round(x, 2) for x in v]}")
print(json.dumps(times))
