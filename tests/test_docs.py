"""The documentation site builds with warnings as errors, and documents the public API.

The notebooks are rendered without being executed here (tests/test_notebooks.py runs
them with a Jupyter kernel); the site's own build executes them, with a cache.
"""

from __future__ import annotations

import inspect
import pathlib
import subprocess
import sys

import pytest

for _name in ("sphinx", "myst_nb", "numpydoc", "pydata_sphinx_theme"):
    pytest.importorskip(_name)

import fftconv  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("html")
    cmd = [
        sys.executable,
        "-m",
        "sphinx",
        "-W",
        "--keep-going",
        "-q",
        "-b",
        "html",
        "-D",
        "nb_execution_mode=off",
        "-d",
        str(out / ".doctrees"),
        str(ROOT / "docs"),
        str(out),
    ]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"sphinx-build failed:\n{run.stdout}\n{run.stderr}"
    return out


def test_every_public_name_is_documented(site):
    html = (site / "api" / "fftconv.html").read_text() + (site / "api" / "tiles.html").read_text()
    missing = []
    for name in fftconv.__all__:
        obj = getattr(fftconv, name)
        if inspect.ismodule(obj) or name.startswith("__") or not callable(obj):
            continue
        where = f"{obj.__module__}.{name}" if name == "convolve_tiled" else f"fftconv.{name}"
        if f'id="{where}"' not in html:
            missing.append(name)
    assert not missing, f"public names without a reference entry: {missing}"


def test_every_notebook_is_a_page(site):
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert notebooks
    for nb in notebooks:
        assert (site / "notebooks" / f"{nb.stem}.html").is_file(), nb.name


def test_every_page_is_in_a_toctree(site):
    # Sphinx warns about orphans, so -W already fails on them; this checks the index
    # links the guide and the reference.
    index = (site / "index.html").read_text()
    for page in ("guide/getting_started.html", "api/index.html", "engine/measurements.html"):
        assert page in index, page


def _readme():
    return (ROOT / "README.md").read_text()


def test_readme_is_a_front_page():
    assert len(_readme().splitlines()) <= 250


def test_readme_quick_start_is_what_ci_runs():
    # .ci/run runs the quick start's two commands verbatim
    block = _readme().split("## Quick start", 1)[1].split("```", 2)[1].strip().splitlines()
    ci = (ROOT / ".ci" / "run").read_text()
    assert len(block) == 2
    for command in block:
        assert command.strip() in ci, command


def test_readme_example_runs():
    import numpy as np

    code = _readme().split("## Example", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["soft"].dtype == np.float32
    assert list(namespace["best"]) == [500, 700]


def test_readme_links_exist():
    import re

    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", _readme()):
        if "://" not in target:
            assert (ROOT / target).exists(), target
