"""A `fftconv apply` job that takes seconds, for the tests that interrupt a real run."""

import numpy as np


def slow_job(tmp_path):
    """The command's arguments: a 2048x2048 float32 .npy summed directly with an 81x81 box
    (about 2 s on one thread: the tests signal it a few tenths of a second after its
    temporary file appears, so the run must outlast that by a wide margin)."""
    img = np.lib.format.open_memmap(tmp_path / "in.npy", "w+", np.float32, (2048, 2048))
    img[:] = 1
    img.flush()
    del img
    return [
        "apply",
        tmp_path / "in.npy",
        tmp_path / "out.npy",
        "-k",
        "box:81",
        "--method",
        "direct",
        "--threads",
        "1",
        "-q",
    ]
