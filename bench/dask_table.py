"""fftconv.dask against dask_image.ndfilters.convolve on a distributed.LocalCluster.

Usage::

    python bench/dask_table.py                       # 4096x4096 float32, chunks 1024, kernels 7 31 63 127
    python bench/dask_table.py --size 2048 --chunks 512 --kernels 7,31 --repeat 5

Both peers convolve the same array, persisted in the workers' memory before
timing (so reading it is not timed), with the same chunks, on one
LocalCluster of ``--workers`` worker processes with one thread each. The
kernel is a flat disk (``fftconv.kernels.disk``: not separable, so neither
peer can split it into 1-D passes). dask_image's convolve is
scipy.ndimage.convolve per chunk with mode 'reflect', which is fftconv's
'symmetric'; for odd kernels both centre at ``k // 2``, and every fftconv
result is checked against dask_image's before it is timed.

Each timing is ``distributed.wait(client.persist(y))``: every chunk computed
and held in the workers. The peers run interleaved (A B A B ...) after one
warm-up each (the warm-up, the first call in the worker processes, is
reported apart); the median is reported. A peer whose warm-up takes longer
than ``--slow`` seconds is not run again: its warm-up is its time (marked *).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import machine, save_json, test_image  # noqa: E402


def _held_on_scheduler(keys, dask_scheduler=None) -> int:
    return sum(k in dask_scheduler.tasks for k in keys)


def _forget(client, y) -> None:
    """Wait until the scheduler has released every chunk of `y`, so that the next run
    computes them again instead of finding them in memory."""
    from dask.core import flatten

    keys = list(flatten(y.__dask_keys__()))
    for _ in range(3000):
        if not client.run_on_scheduler(_held_on_scheduler, keys):
            return
        time.sleep(0.01)
    raise RuntimeError("the scheduler still holds the last run's results after 30 s")


def _timed(client, y, keep=False):
    """Seconds to compute every chunk of `y` into the workers' memory."""
    import distributed

    t0 = time.perf_counter()
    held = client.persist(y)
    distributed.wait(held)
    t = time.perf_counter() - t0
    if keep:
        return t, held
    del held
    _forget(client, y)
    return t


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=4096)
    p.add_argument("--chunks", type=int, default=1024)
    p.add_argument("--kernels", default="7,31,63,127")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--slow", type=float, default=30.0)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)

    import dask.array as da
    import dask_image.ndfilters as dif
    import distributed

    import fftconv
    import fftconv.dask as fd

    cluster = distributed.LocalCluster(
        n_workers=args.workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        host="127.0.0.1",
    )
    client = distributed.Client(cluster)
    try:
        x = da.from_array(test_image(args.size), chunks=args.chunks)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "sending a large graph": once
            x = client.persist(x)
        distributed.wait(x)
        print(f"# {machine()}; load average {os.getloadavg()[0]:.1f}")
        print(
            f"# {args.size}x{args.size} float32, chunks {args.chunks}, LocalCluster "
            f"{args.workers} workers x 1 thread; disk kernels; median of {args.repeat}"
        )
        print(
            f"{'kernel':>7} {'fftconv.dask':>13} {'dask_image':>11} {'ratio':>7} "
            f"{'first (fftconv, dask_image)':>28} {'max rel diff':>13}"
        )
        rows = []
        for size in map(int, args.kernels.split(",")):
            k = fftconv.kernels.disk((size - 1) / 2).astype(np.float32)
            assert k.shape == (size, size), k.shape
            peers = {
                "fftconv.dask": fd.convolve(x, k, "same", "symmetric"),
                "dask_image": dif.convolve(x, k, mode="reflect"),
            }
            first, held = {}, {}
            for name, y in peers.items():
                first[name], held[name] = _timed(client, y, keep=True)
            # every result sample of a few rows and columns, edges included
            pick = (slice(None), np.r_[0:40, args.size // 2 - 20 : args.size // 2 + 20, -40:0])
            a, b = (client.compute(h[pick]).result() for h in held.values())
            c, d = (client.compute(h[pick[::-1]]).result() for h in held.values())
            diff = max(
                float(np.abs(a - b).max() / np.abs(b).max()),
                float(np.abs(c - d).max() / np.abs(d).max()),
            )
            assert diff < 1e-4, f"kernel {size}: results differ by {diff:.2g}"
            del held, a, b, c, d
            for y in peers.values():
                _forget(client, y)
            times = {name: [] for name in peers}
            once = {name: first[name] > args.slow for name in peers}
            for _ in range(args.repeat):
                for name, y in peers.items():
                    if not once[name]:
                        times[name].append(_timed(client, y))
            med = {n: (statistics.median(t) if t else first[n]) for n, t in times.items()}
            mark = {n: "*" if once[n] else " " for n in peers}
            ratio = med["dask_image"] / med["fftconv.dask"]
            print(
                f"{size:>7} {med['fftconv.dask']:>12.3f}{mark['fftconv.dask']} "
                f"{med['dask_image']:>10.3f}{mark['dask_image']} {ratio:>6.1f}x "
                f"{first['fftconv.dask']:>13.2f} {first['dask_image']:>13.2f} "
                f"{diff:>13.1e}",
                flush=True,
            )
            rows.append(
                dict(
                    kernel=size,
                    fftconv=med["fftconv.dask"],
                    dask_image=med["dask_image"],
                    ratio=ratio,
                    first=first,
                    timed_once=once,
                    max_rel_diff=diff,
                )
            )
        print(
            f"# load average {os.getloadavg()[0]:.1f} at the end; * timed once (warm-up "
            f"over {args.slow:.0f} s)"
        )
        save_json(args.json, rows)
    finally:
        client.close()
        cluster.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
