"""The notebooks in notebooks/ run top to bottom in a real Jupyter kernel, and each
.ipynb (stored without outputs) is in sync with its jupytext ``py:percent`` script."""

from __future__ import annotations

import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
#: Seconds one cell may run before the kernel is stopped (a hang, not a benchmark).
BUDGET_S = 90


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 3


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_paired_and_stored_without_outputs(path):
    jupytext = pytest.importorskip("jupytext")
    script = path.with_suffix(".py")
    assert script.is_file(), f"{path.name} has no paired script {script.name}"
    nb, py = jupytext.read(path), jupytext.read(script)
    assert [(c.cell_type, c.source) for c in nb.cells] == [
        (c.cell_type, c.source) for c in py.cells
    ], f"{path.name} and {script.name} differ: run `jupytext --sync {script}`"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, (
                f"{path.name} is stored with outputs: clear them"
            )


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_a_kernel(path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    for name in ("matplotlib", "skimage", "psutil", "jupytext"):
        pytest.importorskip(name)
    source = path.read_text()
    # The kernel imports this checkout's fftconv and draws inline (PNG outputs).
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.reads(source, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        timeout=BUDGET_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    figures = sum(
        "image/png" in out.get("data", {}) for cell in nb.cells for out in cell.get("outputs", [])
    )
    errors = [
        out
        for cell in nb.cells
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
        or (out.get("name") == "stderr" and not _compile_notice(out.get("text", "")))
    ]
    assert not errors, f"{path.name} wrote errors or warnings: {errors[:3]}"
    assert figures >= 2, f"{path.name} showed {figures} figures"


def _compile_notice(text: str) -> bool:
    """Whether a stderr output holds only fftconv's first-compile notices (a kernel not
    yet in numba's cache, when this test runs before the others have compiled it):
    what the user is told, not a warning."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return bool(lines) and all(
        ln.startswith(("fftconv: compiling ", "fftconv: compiled ")) for ln in lines
    )
