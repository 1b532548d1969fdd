"""Shared pytest fixtures.

Real data sets
--------------
Tests that need the real MNIST, Fashion-MNIST or IMDB files take the fixture
``mnist_data_dir``, ``fashion_mnist_data_dir`` or ``imdb_data_dir``. Each
returns ``$FASTNN_DATA_DIR``, a *datasets folder* holding ``mnist/``,
``fashion-mnist/`` or ``imdb/`` with Keras' raw files (``REAL_DATA_FILES``
below; .ci/run sets the variable).

If the variable is unset or the files are not there the test is skipped with
the reason, unless the environment variable ``CI`` is set: then it fails, so CI
cannot silently skip the real-data tests.

Hypothesis profiles
-------------------
The property tests (tests/kernels/properties/, the random models of
tests/kernels/test_engine.py) take their number of examples from a profile:
``ci`` (the default: deterministic, a few thousand examples in all, well under a
minute) or ``long`` (100 times as many, random, for local fuzzing), chosen with
``HYPOTHESIS_PROFILE=long`` or ``pytest --hypothesis-profile=long``. Without
hypothesis installed those tests skip.
"""
import os
from pathlib import Path

import pytest

try:
    from hypothesis import HealthCheck, settings
except ImportError:  # the kernel tests also run where only pytest is installed (.ci/run steps 1 and 2)
    settings = None

if settings is not None:
    _HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
    # deadline=None: timings on a shared 2-core machine are noise, not failures.
    settings.register_profile("ci", max_examples=150, derandomize=True, database=None, deadline=None,
                              suppress_health_check=_HEALTH, print_blob=True)
    settings.register_profile("long", max_examples=15000, deadline=None, suppress_health_check=_HEALTH,
                              print_blob=True)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

_IDX = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz")
REAL_DATA_FILES = {
    "mnist": _IDX,
    "fashion-mnist": _IDX,
    "imdb": ("imdb.npz", "imdb_word_index.json"),
}


def datasets_dir_candidates():
    """The folders searched for the real data: ``$FASTNN_DATA_DIR`` if it is set."""
    env = os.environ.get("FASTNN_DATA_DIR")
    return [Path(env).expanduser()] if env else []


def find_real_data(name):
    """The datasets folder holding ``name/`` with all its files; skip (or fail under CI) if none does."""
    candidates = datasets_dir_candidates()
    for base in candidates:
        if all((base / name / f).is_file() for f in REAL_DATA_FILES[name]):
            return base.resolve()
    files = ", ".join(REAL_DATA_FILES[name])
    where = f"in {candidates[0]}" if candidates else "(FASTNN_DATA_DIR is not set)"
    reason = (f"real {name} data not found: looked for {name}/{{{files}}} {where}. "
              "Set FASTNN_DATA_DIR to a folder holding it.")
    if os.environ.get("CI"):
        pytest.fail(reason + " (CI is set, so this fails instead of skipping)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def mnist_data_dir():
    return find_real_data("mnist")


@pytest.fixture(scope="session")
def fashion_mnist_data_dir():
    return find_real_data("fashion-mnist")


@pytest.fixture(scope="session")
def imdb_data_dir():
    return find_real_data("imdb")


def pytest_report_header(config):
    """Say which fastnn is under test and which kernels run (CI tests the installed package)."""
    import fastnn
    from fastnn import _kernels

    return f"fastnn {fastnn.__version__} from {os.path.dirname(fastnn.__file__)}; kernels: {_kernels.BACKEND}"
