"""Fashion-MNIST (Zalando), with Keras' ``keras.datasets.fashion_mnist`` API."""
import os
from pathlib import Path

from fastnn.datasets import _files
from fastnn.datasets.mnist import _load

# sha256 of the four archives Keras downloads (keras/src/datasets/fashion_mnist.py,
# FILE_HASHES); they are also Zalando's published hashes of the originals.
FILE_HASHES = {
    "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
}
# Debian's package dataset-fashion-mnist installs the four files here (re-gzipped,
# so not byte-identical to Keras' download, but the same data).
SYSTEM_DIRS = ("/usr/share/datasets/fashion-mnist",)

CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)


def load_data(path=None):
    """Load Fashion-MNIST: 60,000 training and 10,000 test 28x28 grayscale clothing images.

    Args:
        path: optional (Keras' ``load_data()`` takes no argument): a folder
            holding the four IDX files (``train-images-idx3-ubyte.gz`` etc.),
            directly or in a ``fashion-mnist/`` subfolder, or an ``.npz`` file
            with arrays ``x_train, y_train, x_test, y_test``.

    Without ``path`` the IDX files are looked for in ``$FASTNN_DATA_DIR``,
    ``~/.keras/datasets``, ``~/.fastnn/datasets`` and Debian's
    ``/usr/share/datasets/fashion-mnist``, each directly or in a
    ``fashion-mnist/`` subfolder, and downloaded from Keras' URLs into
    ``~/.fastnn/datasets/fashion-mnist/`` if none holds them.

    Returns:
        ``(x_train, y_train), (x_test, y_test)``: uint8 images of shape
        ``(60000, 28, 28)`` / ``(10000, 28, 28)`` and uint8 labels 0-9 (see
        :data:`CLASS_NAMES`) of shape ``(60000,)`` / ``(10000,)``.
    """
    if path is not None:  # always a location here: there is no single-file layout to name
        path = os.path.abspath(os.path.expanduser(os.fspath(path)))
    hit = _files.obtain(
        "Fashion-MNIST",
        path,
        _probe,
        subdir="fashion-mnist",
        wanted=f"the IDX files {', '.join(f + '.gz' for f in _files.IDX_NAMES.values())} (gzipped or not)",
        downloads=[(name, name, sha256) for name, sha256 in FILE_HASHES.items()],
        download_subdir="fashion-mnist",
        extra_dirs=SYSTEM_DIRS,
    )
    return _load(hit)


def _probe(folder):
    if Path(folder).name == "mnist":  # same IDX file names: never mistake one for the other
        return None
    idx = _files.find_idx_set(folder)
    return None if idx is None else ("idx", idx)
