import atexit
import os
import shutil
import sys
import tempfile

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))

# The commands under test would build the stream engine's shared library into the
# user's cache (seconds per dtype pair); tests/test_u8_native.py builds and checks
# it in a temporary cache. FFTCONV_NATIVE=1 runs the whole suite on the library.
os.environ.setdefault("FFTCONV_NATIVE", "0")

# The suite does not see the user's cache (a `fftconv precompile` module, a
# `fftconv calibrate` profile, wisdom): tests that want one build it in a temporary
# directory of their own. A FFTCONV_CACHE_DIR set by the caller is kept.
if "FFTCONV_CACHE_DIR" not in os.environ:
    _cache = tempfile.mkdtemp(prefix="fftconv-test-cache-")
    os.environ["FFTCONV_CACHE_DIR"] = _cache
    atexit.register(shutil.rmtree, _cache, True)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(autouse=True, scope="module")
def _fresh_plan_cache():
    """Each test module starts with no idle FFTW plans: the cache may hold up to 1 GiB
    (`fftconv._fftw.MAX_CACHE_BYTES`), and the streaming tests count this process's
    resident memory against the job's budget, as a fresh `fftconv apply` would."""
    from fftconv import _fftw

    _fftw.clear_cache()
    yield


# CI runs the same hypothesis examples every time (a red CI must be reproducible);
# local runs keep exploring new ones.
from hypothesis import settings  # noqa: E402

settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
