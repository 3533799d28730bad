"""bench/compare.py's code path, on tiny images: the table, the JSON of every sample, the
plots, the fresh-process first call, and that existing results are kept."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "bench" / "compare.py"


def _run(*args):
    for name in ("cv2", "matplotlib", "skimage"):
        pytest.importorskip(name)
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300, cwd=ROOT
    )


def test_compare_writes_table_samples_and_plots(tmp_path):
    run = _run(
        "--sizes",
        "48",
        "--kernels",
        "9",
        "--dtypes",
        "float32",
        "uint8",
        "--kinds",
        "gaussian",
        "--templates",
        "15",
        "--repeat",
        "2",
        "--out",
        str(tmp_path),
    )
    assert run.returncode == 0, run.stderr
    md = (tmp_path / "compare.md").read_text()
    assert "| 48x48 | float32 | 9x9 gaussian |" in md and "Machine:" in md
    assert "python bench/compare.py --sizes 48" in md
    doc = json.loads((tmp_path / "compare.json").read_text())
    assert [(c["dtype"], c["kernel"]) for c in doc["cells"]] == [("float32", 9), ("uint8", 9)]
    cell = doc["cells"][0]
    assert {
        "fftconv",
        "scipy.signal.fftconvolve",
        "cv2.sepFilter2D",
        "FFT floor",
    } <= set(cell["samples"])
    assert all(len(s) == 2 for s in cell["samples"].values())
    assert all(e < 1e-4 for e in cell["errors"].values()), cell["errors"]
    assert set(cell["ratios"]) == {
        "fastest_peer",
        "fftconvolve",
        "fft_floor",
        "regret",
        "cold_warm",
    }
    assert cell["cold"]["cold"] > 0 and cell["ratios"]["cold_warm"] > 0  # a fresh process
    templates = doc["template_cells"]
    assert [(c["dtype"], c["template"]) for c in templates] == [("float32", 15), ("uint8", 15)]
    assert not templates[0]["excluded"] and "fftconv.match_template" in templates[0]["medians"]
    assert "## Template matching" in md
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert pngs == ["compare-48-float32-gaussian.png", "compare-48-uint8-gaussian.png"]
    assert (tmp_path / pngs[0]).read_bytes()[:4] == b"\x89PNG"

    again = _run("--sizes", "48", "--kernels", "3", "--out", str(tmp_path))
    assert again.returncode == 2 and "--force" in again.stderr
    assert json.loads((tmp_path / "compare.json").read_text()) == doc
