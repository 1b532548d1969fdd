"""Shared pytest fixtures.

Real data sets
--------------
Tests that need the real MNIST, Fashion-MNIST or IMDB files take the fixture
``mnist_data_dir``, ``fashion_mnist_data_dir`` or ``imdb_data_dir``. Each
returns a *datasets folder*: one that holds ``mnist/``, ``fashion-mnist/`` or
``imdb/`` with the raw files (the layout of /work/shared/datasets, see its
README), suitable as ``$FASTNN_DATA_DIR``. The folder is:

1. ``$FASTNN_DATA_DIR`` if it is set (CI sets it to the shared datasets folder);
2. otherwise ``../shared/datasets`` relative to the current working directory,
   then ``shared/datasets`` two levels above this tests folder.

If the files are not there the test is skipped with the reason, unless the
environment variable ``CI`` is set: then it fails, so CI cannot silently skip
the real-data tests.
"""
import os
from pathlib import Path

import pytest

_TESTS_DIR = Path(__file__).resolve().parent
_IDX = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz")
REAL_DATA_FILES = {
    "mnist": _IDX,
    "fashion-mnist": _IDX,
    "imdb": ("imdb.npz", "imdb_word_index.json"),
}


def datasets_dir_candidates():
    """The folders searched for the real data, in order."""
    env = os.environ.get("FASTNN_DATA_DIR")
    if env:
        return [Path(env).expanduser()]
    return [Path.cwd() / os.pardir / "shared" / "datasets", _TESTS_DIR.parent.parent / "shared" / "datasets"]


def find_real_data(name):
    """The datasets folder holding ``name/`` with all its files; skip (or fail under CI) if none does."""
    candidates = datasets_dir_candidates()
    for base in candidates:
        if all((base / name / f).is_file() for f in REAL_DATA_FILES[name]):
            return base.resolve()
    where = ", ".join(str(c) for c in candidates)
    files = ", ".join(REAL_DATA_FILES[name])
    reason = (f"real {name} data not found: looked for {name}/{{{files}}} in {where}. "
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
