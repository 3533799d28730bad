"""SciPy's own tests for the replaced functions, run against fftconv's drop-ins.

scipy ships its tests inside the installed package. This module loads private
copies of ``scipy/signal/tests/test_signaltools.py`` and
``scipy/ndimage/tests/test_filters.py`` while scipy.signal's and
scipy.ndimage's names are the drop-ins, so every ``from scipy.signal import
convolve`` and every test parameter that names ``ndimage.correlate`` binds
fftconv's function; the modules' ``signal`` and ``ndimage`` names are then
views of SciPy with the drop-ins in place. SciPy itself is restored at once:
nothing outside these copies sees the swap.

The tests that differ from SciPy on purpose are marked xfail below with the
reason (the README section "Switching from SciPy" lists them). SciPy's tests
marked slow are skipped unless ``FFTCONV_SCIPY_SLOW=1``.
"""

from __future__ import annotations

import importlib.util
import os
import types

import pytest
import scipy.ndimage
import scipy.signal

from fftconv import ndimage as f_ndimage
from fftconv import signal as f_signal

pytest.importorskip("scipy.signal.tests.test_signaltools", reason="scipy installed without tests")
pytest.importorskip("scipy.conftest", reason="scipy installed without tests")

from scipy._lib._array_api import xp_capabilities_table
from scipy.conftest import xp  # noqa: F401  (SciPy's array-namespace fixture: numpy here)

try:  # defined by scipy's conftest when pytest-run-parallel is not installed
    from scipy.conftest import num_parallel_threads  # noqa: F401
except ImportError:
    pass

SIGNAL_NAMES = [
    "convolve",
    "correlate",
    "fftconvolve",
    "oaconvolve",
    "convolve2d",
    "correlate2d",
    "choose_conv_method",
]
NDIMAGE_NAMES = ["convolve", "correlate"]


class _View(types.ModuleType):
    """A module that is `base` except for the names given."""

    def __init__(self, base, replaced: dict):
        super().__init__(base.__name__)
        self._base = base
        self.__dict__.update(replaced)

    def __getattr__(self, name):
        return getattr(self._base, name)


def _load(name: str, package: str, module, replaced: dict):
    """A fresh copy of `package`.`name` executed while `module`'s names are `replaced`."""
    spec0 = importlib.util.find_spec(f"{package}.{name}")
    spec = importlib.util.spec_from_file_location(f"{package}._fftconv_{name}", spec0.origin)
    mod = importlib.util.module_from_spec(spec)
    saved = {k: getattr(module, k) for k in replaced}
    try:
        for k, v in replaced.items():
            setattr(module, k, v)
        spec.loader.exec_module(mod)
    finally:
        for k, v in saved.items():
            setattr(module, k, v)
    return mod


_sig = {n: getattr(f_signal, n) for n in SIGNAL_NAMES}
_ndi = {n: getattr(f_ndimage, n) for n in NDIMAGE_NAMES}
# SciPy's test decorators look functions up in its array-API capabilities table:
# the drop-ins get the entries of the functions they replace.
for _module, _names in ((scipy.signal, _sig), (scipy.ndimage, _ndi)):
    for _n, _f in _names.items():
        if getattr(_module, _n) in xp_capabilities_table:
            xp_capabilities_table.setdefault(_f, xp_capabilities_table[getattr(_module, _n)])
sst = _load("test_signaltools", "scipy.signal.tests", scipy.signal, _sig)
sst.signal = _View(scipy.signal, _sig)
stf = _load("test_filters", "scipy.ndimage.tests", scipy.ndimage, _ndi)
stf.ndimage = _View(scipy.ndimage, _ndi)

# Differ from SciPy on purpose: (test id substring, reason).
XFAIL = {
    "test_fft_nan": (
        "fftconv propagates NaN and inf exactly as direct summation does on every method, "
        "so there is no 'NaN spread over the output' to warn about"
    ),
}


@pytest.fixture(autouse=True)
def _scipy_suite_rules(request):
    if request.node.get_closest_marker("slow") and not _RUN_SLOW:
        pytest.skip("SciPy's slow test; set FFTCONV_SCIPY_SLOW=1 to run it")
    for key, reason in XFAIL.items():
        if key in request.node.nodeid:
            request.applymarker(pytest.mark.xfail(reason=reason, strict=True))


# SciPy's slow parametrizations (about 10,000 cases) are not even collected by default.
_RUN_SLOW = bool(os.environ.get("FFTCONV_SCIPY_SLOW"))
if not _RUN_SLOW:
    sst.TestOAConvolve.test_real_manylens = None
    sst.TestFFTConvolve.test_many_sizes = None

# scipy.signal: the classes and functions that test the replaced functions.
TestConvolve = sst.TestConvolve
TestConvolve2d = sst.TestConvolve2d
TestFFTConvolve = sst.TestFFTConvolve
TestOAConvolve = sst.TestOAConvolve
TestAllFreqConvolves = sst.TestAllFreqConvolves
TestCorrelateReal = sst.TestCorrelateReal
TestCorrelate = sst.TestCorrelate
TestCorrelateComplex = sst.TestCorrelateComplex
TestCorrelate2d = sst.TestCorrelate2d
test_convolve_longdtype_input = sst.test_convolve_longdtype_input
test_correlation_lags = sst.test_correlation_lags


# scipy.ndimage: TestNdimageFilters without the tests of other filters.
def _tests_ndimage_convolution(name: str) -> bool:
    if "1d" in name:
        return False
    return any(
        key in name
        for key in (
            "correlate",
            "convolve",
            "filter_weights_subset",
            "filter_invalid",
            "filter_tuple_length",
            "extend",
        )
    )


def _listed_parameters(func) -> None:
    """Give `func`'s parametrize marks lists (SciPy passes one a generator, which pytest
    deprecates)."""
    marks = getattr(func, "pytestmark", [])
    for i, m in enumerate(marks):
        if m.name == "parametrize" and not isinstance(m.args[1], (list, tuple)):
            marks[i] = pytest.mark.parametrize(m.args[0], list(m.args[1]), **m.kwargs).mark


class TestNdimageFilters(stf.TestNdimageFilters):
    pass


_listed_parameters(stf.TestNdimageFilters.test_filter_tuple_length_mismatch)


for _name in dir(stf.TestNdimageFilters):
    if _name.startswith("test") and not _tests_ndimage_convolution(_name):
        setattr(TestNdimageFilters, _name, None)

test_valid_origins2 = stf.test_valid_origins2
test_bad_convolve_and_correlate_origins = stf.test_bad_convolve_and_correlate_origins


class TestThreading(stf.TestThreading):
    pass


for _name in dir(stf.TestThreading):
    if _name.startswith("test") and _name != "test_correlate":
        setattr(TestThreading, _name, None)
