"""MNIST handwritten digits, with Keras' ``keras.datasets.mnist`` API."""
import os
from pathlib import Path

from fastnn.datasets import _files

# sha256 Keras checks mnist.npz against (keras/src/datasets/mnist.py).
MNIST_NPZ_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
SAMPLE_FILE = "mnist_sample.npz"
_KEYS = ("x_train", "y_train", "x_test", "y_test")


def load_data(path="mnist.npz"):
    """Load MNIST: 60,000 training and 10,000 test 28x28 grayscale digits.

    Args:
        path: a bare file name (default ``"mnist.npz"``) to look for in the
            search folders, or a location: Keras' ``mnist.npz`` file, or a
            folder holding it or the four IDX files (``train-images-idx3-ubyte.gz``
            etc.), directly or in a ``mnist/`` subfolder.

    The search folders are ``$FASTNN_DATA_DIR``, ``~/.keras/datasets`` and
    ``~/.fastnn/datasets`` (see :mod:`fastnn.datasets._files`). If none holds
    the data, ``mnist.npz`` is downloaded from Keras' URL into fastnn's cache.

    Returns:
        ``(x_train, y_train), (x_test, y_test)``: uint8 images of shape
        ``(60000, 28, 28)`` / ``(10000, 28, 28)`` with values 0-255, and uint8
        labels 0-9 of shape ``(60000,)`` / ``(10000,)``.
    """
    # A bare name is looked for in the search folders (and saved under that name
    # when downloaded), like Keras; in a folder given as `path`, look for mnist.npz.
    explicit = path is not None and _files.is_explicit(path)
    file_name = "mnist.npz" if path is None or explicit else os.fspath(path)
    hit = _files.obtain(
        "MNIST",
        path,
        _probe(file_name),
        subdir="mnist",
        wanted=_wanted(file_name),
        downloads=[("mnist.npz", file_name, MNIST_NPZ_SHA256)],
        hint="For a quick offline demo, fastnn.datasets.mnist.load_sample() returns a bundled "
        "5,000-image sample of MNIST.",
    )
    return _load(hit)


def load_sample():
    """A real-MNIST sample bundled with fastnn, for demos without the full data.

    Returns:
        ``(x_train, y_train), (x_test, y_test)``: the first 5,000 training and
        the first 1,000 test images of MNIST (uint8, ``(N, 28, 28)``) with
        their uint8 labels, exactly as :func:`load_data` returns them.
    """
    from importlib import resources

    with resources.as_file(resources.files("fastnn.datasets") / "data" / SAMPLE_FILE) as sample:
        return _load(("file", sample))


def _wanted(file_name):
    idx = ", ".join(name + ".gz" for name in _files.IDX_NAMES.values())
    return f"{file_name}, or the IDX files {idx} (gzipped or not)"


def _probe(file_name):
    def probe(folder):
        if Path(folder).name == "fashion-mnist":  # same IDX file names: never mistake one for the other
            return None
        hit = _files.find_file(folder, file_name)
        if hit is not None:
            return ("file", hit)
        idx = _files.find_idx_set(folder)
        return None if idx is None else ("idx", idx)

    return probe


def _load(hit):
    kind, where = hit
    if kind == "idx":
        return _files.read_idx_splits(where)
    arrays = _files.read_npz(where, _KEYS)
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise _files.DatasetFormatError(
                f"{where}: expected x_{split} of shape (N, 28, 28) and y_{split} of shape (N,); found "
                f"{x.shape} and {y.shape}."
            )
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])
