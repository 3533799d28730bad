"""Sphinx configuration of fftconv's documentation.

Sphinx, because fftconv's docstrings are numpydoc (numpy's and SciPy's convention),
which Sphinx's autodoc reads through the numpydoc extension, and because myst-nb
renders both the MyST Markdown pages and the Jupyter notebooks of ``notebooks/``
as pages. The PyData theme is the one numpy, SciPy and scikit-image use.

Build: ``python -m sphinx -W --keep-going -b html docs docs/_build/html``.
The notebooks are stored without outputs; by default they are executed during
the build and the results cached in ``docs/_build/.jupyter_cache`` (myst-nb's
"cache" mode, so a rebuild runs only the notebooks that changed).
``-D nb_execution_mode=off`` renders them without running them (the tests do
this: they execute the notebooks themselves, in tests/test_notebooks.py).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Document the checkout this file belongs to, not whatever fftconv is installed.
sys.path.insert(0, str(ROOT))
# The notebooks' kernels inherit this environment: their figures must be inline PNGs
# even where MPLBACKEND names a non-interactive backend (Agg shows nothing).
os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"

import fftconv  # noqa: E402

project = "fftconv"
author = "the fftconv developers"
copyright = "the fftconv developers"
release = version = fftconv.__version__

extensions = [
    "myst_nb",
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
]

exclude_patterns = ["_build", "**.ipynb_checkpoints", "notebooks/*.py", "notebooks/README*"]
source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb"}
default_role = "py:obj"
suppress_warnings = ["myst.xref_missing"]

# MyST
myst_enable_extensions = ["colon_fence", "deflist", "dollarmath"]
myst_heading_anchors = 3

# Notebooks: run at build time, results cached between builds.
nb_execution_mode = "cache"
nb_execution_cache_path = str(ROOT / "docs" / "_build" / ".jupyter_cache")
nb_execution_timeout = 300
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True

# autodoc + numpydoc
autodoc_member_order = "bysource"
autodoc_typehints = "none"
autodoc_default_options = {"members": True}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# HTML
html_theme = "pydata_sphinx_theme"
html_title = "fftconv"
html_static_path = ["_static"]
html_show_sourcelink = False
html_theme_options = {
    "navigation_depth": 3,
    "show_toc_level": 2,
    "navbar_align": "left",
    "footer_start": ["copyright"],
    "footer_end": [],
}
