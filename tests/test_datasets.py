"""fastnn.datasets: Keras shapes and values on the real files, lookup order, downloads, corrupt files.

Real-data tests take the ``*_data_dir`` fixtures from conftest.py (skip when the
files are absent, fail under CI). Nothing here reaches the network: the
autouse ``no_network`` fixture replaces the one function that would.
"""
import gzip
import hashlib
import os
import subprocess
import sys
import urllib.error
from pathlib import Path

import numpy as np
import pytest

from fastnn.datasets import _files, fashion_mnist, imdb, mnist

IDX = _files.IDX_NAMES


# --------------------------------------------------------------------------- helpers
@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def fetch(url, out, timeout):
        raise AssertionError(f"test tried to download {url}")

    monkeypatch.setattr(_files, "fetch", fetch)


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """No data anywhere: empty HOME, no FASTNN_DATA_DIR/FASTNN_HOME/KERAS_HOME, no system folders."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for var in ("FASTNN_DATA_DIR", "FASTNN_HOME", "KERAS_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(fashion_mnist, "SYSTEM_DIRS", ())
    return home


def write_idx(path, array, compress=True):
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    data = header + array.tobytes()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def tiny_split(label, n=3):
    x = np.full((n, 28, 28), label * 10, dtype=np.uint8)
    return x, np.full(n, label, dtype=np.uint8)


def write_idx_set(folder, label=1, compress=True):
    (x, y), (xt, yt) = tiny_split(label, 3), tiny_split(label, 2)
    suffix = ".gz" if compress else ""
    for role, arr in (("train_images", x), ("train_labels", y), ("test_images", xt), ("test_labels", yt)):
        write_idx(Path(folder) / (IDX[role] + suffix), arr, compress)
    return folder


def write_mnist_npz(path, label=1):
    (x, y), (xt, yt) = tiny_split(label, 3), tiny_split(label, 2)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, x_train=x, y_train=y, x_test=xt, y_test=yt)
    return path


def label_of(data):
    (_, y_train), _ = data
    return int(y_train[0])


# --------------------------------------------------------------------------- MNIST, real files
@pytest.fixture(scope="module")
def mnist_real(mnist_data_dir):
    return mnist.load_data(path=mnist_data_dir / "mnist")


def test_mnist_real_shapes_dtypes_values(mnist_real):
    (x_train, y_train), (x_test, y_test) = mnist_real
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert y_train.shape == (60000,) and y_test.shape == (10000,)
    assert {a.dtype for a in (x_train, y_train, x_test, y_test)} == {np.dtype(np.uint8)}
    assert y_train[:5].tolist() == [5, 0, 4, 1, 9]
    assert y_test[:5].tolist() == [7, 2, 1, 0, 4]
    # Published class counts and the normalisation constants everyone uses (mean 0.1307).
    assert np.bincount(y_train).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert abs(x_train.mean() / 255 - 0.1307) < 1e-4 and abs(x_test.mean() / 255 - 0.1325) < 1e-4
    assert x_train.min() == 0 and x_train.max() == 255
    assert x_train[0, 0].tolist() == [0] * 28 and x_train[0].sum() == 27525
    assert x_train.flags.writeable


def test_mnist_real_through_data_dir_env(monkeypatch, isolated, mnist_data_dir, mnist_real):
    monkeypatch.setenv("FASTNN_DATA_DIR", str(mnist_data_dir))
    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    np.testing.assert_array_equal(x_test, mnist_real[1][0])
    np.testing.assert_array_equal(y_train, mnist_real[0][1])


def test_mnist_path_may_name_the_parent_folder(mnist_data_dir, mnist_real):
    (_, _), (x_test, y_test) = mnist.load_data(path=mnist_data_dir)  # finds mnist/ inside
    np.testing.assert_array_equal(y_test, mnist_real[1][1])


# --------------------------------------------------------------------------- layouts and lookup order
def test_mnist_npz_layout_via_path(isolated, tmp_path):
    file = write_mnist_npz(tmp_path / "some" / "mnist.npz", label=7)
    (x_train, y_train), (x_test, y_test) = mnist.load_data(path=file)
    assert x_train.shape == (3, 28, 28) and x_test.shape == (2, 28, 28)
    assert y_train.tolist() == [7, 7, 7] and x_train.dtype == np.uint8
    assert label_of(mnist.load_data(path=file.parent)) == 7  # the folder holding it
    assert label_of(mnist.load_data(path=str(file))) == 7


@pytest.mark.parametrize("where", ["direct", "subfolder"])
@pytest.mark.parametrize("compress", [True, False])
def test_mnist_idx_layout_in_data_dir(monkeypatch, isolated, tmp_path, where, compress):
    data_dir = tmp_path / "data"
    write_idx_set(data_dir / "mnist" if where == "subfolder" else data_dir, label=4, compress=compress)
    monkeypatch.setenv("FASTNN_DATA_DIR", str(data_dir))
    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    assert x_train.shape == (3, 28, 28) and y_test.tolist() == [4, 4]
    assert x_train[0, 0, 0] == 40


def test_lookup_order(monkeypatch, isolated, tmp_path):
    data_dir = tmp_path / "data"
    write_mnist_npz(data_dir / "mnist.npz", label=1)
    write_mnist_npz(isolated / ".keras" / "datasets" / "mnist.npz", label=2)
    write_idx_set(isolated / ".fastnn" / "datasets" / "mnist", label=3)
    explicit = write_mnist_npz(tmp_path / "explicit" / "mnist.npz", label=0)

    monkeypatch.setenv("FASTNN_DATA_DIR", str(data_dir))
    assert label_of(mnist.load_data(path=explicit)) == 0  # 1. explicit path
    assert label_of(mnist.load_data()) == 1  # 2. $FASTNN_DATA_DIR
    monkeypatch.delenv("FASTNN_DATA_DIR")
    assert label_of(mnist.load_data()) == 2  # 3. Keras' cache
    (isolated / ".keras" / "datasets" / "mnist.npz").unlink()
    assert label_of(mnist.load_data()) == 3  # 4. fastnn's cache


def test_cache_homes_are_configurable(monkeypatch, isolated, tmp_path):
    write_mnist_npz(tmp_path / "kh" / "datasets" / "mnist.npz", label=5)
    write_mnist_npz(tmp_path / "fh" / "datasets" / "mnist.npz", label=6)
    monkeypatch.setenv("FASTNN_HOME", str(tmp_path / "fh"))
    assert label_of(mnist.load_data()) == 6
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    assert label_of(mnist.load_data()) == 5


def test_bare_file_name_is_searched_in_the_folders(monkeypatch, isolated, tmp_path):
    write_mnist_npz(tmp_path / "data" / "mnist" / "my-mnist.npz", label=8)
    monkeypatch.setenv("FASTNN_DATA_DIR", str(tmp_path / "data"))
    assert label_of(mnist.load_data(path="my-mnist.npz")) == 8


def test_explicit_path_errors(isolated, tmp_path):
    with pytest.raises(_files.DatasetNotFoundError, match="does not exist"):
        mnist.load_data(path=tmp_path / "nope" / "mnist.npz")
    (tmp_path / "empty").mkdir()
    with pytest.raises(_files.DatasetNotFoundError, match="holds no MNIST files") as info:
        mnist.load_data(path=tmp_path / "empty")
    assert str(tmp_path / "empty") in str(info.value)
    with pytest.raises(_files.DatasetFormatError, match="lacks the arrays"):
        np.savez(tmp_path / "other.npz", a=np.zeros(2))
        mnist.load_data(path=tmp_path / "other.npz")


# --------------------------------------------------------------------------- offline / download
def test_offline_error_lists_every_place(monkeypatch, isolated, tmp_path):
    calls = []

    def offline(url, out, timeout):
        calls.append((url, timeout))
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(_files, "fetch", offline)
    monkeypatch.setenv("FASTNN_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(_files.DatasetNotFoundError) as info:
        mnist.load_data()
    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    for place in (tmp_path / "data", isolated / ".keras" / "datasets", isolated / ".fastnn" / "datasets"):
        assert str(place) in message
    for text in ("FASTNN_DATA_DIR", "mnist.npz", _files.ORIGIN + "mnist.npz", "name resolution",
                 "load_sample", "train-images-idx3-ubyte.gz"):
        assert text in message
    assert calls == [(_files.ORIGIN + "mnist.npz", _files.DOWNLOAD_TIMEOUT)]
    assert 0 < _files.DOWNLOAD_TIMEOUT <= 60
    # Nothing half-written is left behind.
    cache = isolated / ".fastnn" / "datasets"
    assert not cache.exists() or list(cache.iterdir()) == []


def test_offline_error_fashion_mentions_system_folder(monkeypatch, isolated, tmp_path):
    def offline(url, out, timeout):
        raise TimeoutError("timed out")

    monkeypatch.setattr(_files, "fetch", offline)
    monkeypatch.setattr(fashion_mnist, "SYSTEM_DIRS", (str(tmp_path / "usr-share"),))
    with pytest.raises(_files.DatasetNotFoundError) as info:
        fashion_mnist.load_data()
    message = str(info.value)
    assert "FASTNN_DATA_DIR: not set" in message and str(tmp_path / "usr-share") in message
    assert "fashion-mnist/" in message and "timed out" in message


def test_checksum_mismatch_deletes_the_download(monkeypatch, isolated):
    def bad_bytes(url, out, timeout):
        out.write(b"<html>captive portal</html>")

    monkeypatch.setattr(_files, "fetch", bad_bytes)
    with pytest.raises(_files.DatasetFormatError, match="sha256") as info:
        mnist.load_data()
    assert mnist.MNIST_NPZ_SHA256 in str(info.value)
    cache = isolated / ".fastnn" / "datasets"
    assert list(cache.iterdir()) == []  # neither mnist.npz nor a .part file


def test_download_goes_to_fastnn_cache_once(monkeypatch, isolated, tmp_path):
    payload = write_mnist_npz(tmp_path / "payload.npz", label=9).read_bytes()
    calls = []

    def serve(url, out, timeout):
        calls.append(url)
        out.write(payload)

    monkeypatch.setattr(_files, "fetch", serve)
    monkeypatch.setattr(mnist, "MNIST_NPZ_SHA256", hashlib.sha256(payload).hexdigest())
    assert label_of(mnist.load_data()) == 9
    assert (isolated / ".fastnn" / "datasets" / "mnist.npz").read_bytes() == payload
    assert label_of(mnist.load_data()) == 9
    assert calls == [_files.ORIGIN + "mnist.npz"]


def test_fashion_download_fetches_the_four_keras_files(monkeypatch, isolated, tmp_path):
    src = write_idx_set(tmp_path / "src", label=2)
    payloads = {IDX[r] + ".gz": (src / (IDX[r] + ".gz")).read_bytes() for r in IDX}

    def serve(url, out, timeout):
        out.write(payloads[url.rsplit("/", 1)[1]])

    monkeypatch.setattr(_files, "fetch", serve)
    monkeypatch.setattr(fashion_mnist, "FILE_HASHES",
                        {name: hashlib.sha256(data).hexdigest() for name, data in payloads.items()})
    (x_train, y_train), _ = fashion_mnist.load_data()
    assert y_train.tolist() == [2, 2, 2]
    cached = isolated / ".fastnn" / "datasets" / "fashion-mnist"
    assert sorted(p.name for p in cached.iterdir()) == sorted(payloads)


def test_keras_hashes_are_pinned():
    # The values Keras checks (keras/src/datasets/{mnist,fashion_mnist,imdb}.py).
    assert mnist.MNIST_NPZ_SHA256 == "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
    assert imdb.IMDB_NPZ_SHA256 == "69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f"
    assert fashion_mnist.FILE_HASHES["train-images-idx3-ubyte.gz"] == (
        "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84")
    assert sorted(fashion_mnist.FILE_HASHES) == sorted(n + ".gz" for n in IDX.values())


# --------------------------------------------------------------------------- corrupt files
def _idx_set_with(tmp_path, role, content):
    folder = write_idx_set(tmp_path / "bad", label=1)
    target = folder / (IDX[role] + ".gz")
    target.write_bytes(content(target.read_bytes()))
    return folder, target


@pytest.mark.parametrize("role, corrupt, message", [
    ("train_images", lambda b: gzip.compress(b"\x00\x00\x08\x01" + gzip.decompress(b)[4:]), "magic number"),
    ("train_labels", lambda b: gzip.compress(b"\x00\x00"), "magic number"),
    ("test_images", lambda b: gzip.compress(gzip.decompress(b)[:-100]), "truncated"),
    ("test_images", lambda b: gzip.compress(gzip.decompress(b)[:18]), "truncated"),
    ("test_labels", lambda b: gzip.compress(gzip.decompress(b) + b"\x01"), "more data than its header"),
    ("train_images", lambda b: b[: len(b) // 2], "corrupt or truncated"),
    ("train_labels", lambda b: b[:-4] + b"\x00\x00\x00\x00", "corrupt or truncated"),
])
def test_corrupt_idx_file_names_the_file(tmp_path, role, corrupt, message):
    folder, target = _idx_set_with(tmp_path, role, corrupt)
    with pytest.raises(_files.DatasetFormatError, match=message) as info:
        mnist.load_data(path=folder)
    assert str(target) in str(info.value)


def test_idx_content_is_checked(tmp_path):
    folder = write_idx_set(tmp_path / "d", label=1)
    write_idx(folder / (IDX["train_labels"] + ".gz"), [1, 2])  # 2 labels for 3 images
    with pytest.raises(_files.DatasetFormatError, match="3 images but"):
        mnist.load_data(path=folder)
    write_idx(folder / (IDX["train_labels"] + ".gz"), [1, 2, 12])
    with pytest.raises(_files.DatasetFormatError, match="label 12"):
        mnist.load_data(path=folder)
    write_idx(folder / (IDX["train_images"] + ".gz"), np.zeros((3, 32, 32)))
    with pytest.raises(_files.DatasetFormatError, match="32 x 32"):
        mnist.load_data(path=folder)


def test_corrupt_npz(tmp_path):
    (tmp_path / "mnist.npz").write_bytes(b"PK\x03\x04 this is not a zip")
    with pytest.raises(_files.DatasetFormatError, match="not a valid .npz") as info:
        mnist.load_data(path=tmp_path / "mnist.npz")
    assert str(tmp_path / "mnist.npz") in str(info.value)


# --------------------------------------------------------------------------- bundled sample
def test_load_sample_is_the_first_real_images(mnist_real):
    (x_train, y_train), (x_test, y_test) = mnist.load_sample()
    assert x_train.shape == (5000, 28, 28) and y_train.shape == (5000,)
    assert x_test.shape == (1000, 28, 28) and y_test.shape == (1000,)
    assert {a.dtype for a in (x_train, y_train, x_test, y_test)} == {np.dtype(np.uint8)}
    np.testing.assert_array_equal(x_train, mnist_real[0][0][:5000])
    np.testing.assert_array_equal(y_train, mnist_real[0][1][:5000])
    np.testing.assert_array_equal(x_test, mnist_real[1][0][:1000])
    np.testing.assert_array_equal(y_test, mnist_real[1][1][:1000])


def test_load_sample_file_is_small_and_offline(isolated):
    sample = Path(mnist.__file__).parent / "data" / mnist.SAMPLE_FILE
    assert sample.stat().st_size < 2 * 1024 * 1024
    (_, y_train), _ = mnist.load_sample()  # no data anywhere, no network
    assert y_train[:5].tolist() == [5, 0, 4, 1, 9]


# --------------------------------------------------------------------------- Fashion-MNIST
@pytest.fixture(scope="module")
def fashion_real(fashion_mnist_data_dir):
    return fashion_mnist.load_data(path=fashion_mnist_data_dir / "fashion-mnist")


def test_fashion_real_shapes_and_values(fashion_real):
    (x_train, y_train), (x_test, y_test) = fashion_real
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert y_train.shape == (60000,) and y_test.shape == (10000,)
    assert {a.dtype for a in (x_train, y_train, x_test, y_test)} == {np.dtype(np.uint8)}
    assert y_train[:5].tolist() == [9, 0, 0, 3, 0]
    assert y_test[:5].tolist() == [9, 2, 1, 1, 6]
    assert np.bincount(y_train).tolist() == [6000] * 10 and np.bincount(y_test).tolist() == [1000] * 10
    assert abs(x_train.mean() / 255 - 0.2860) < 1e-4
    assert len(fashion_mnist.CLASS_NAMES) == 10 and fashion_mnist.CLASS_NAMES[9] == "Ankle boot"


def test_fashion_lookup_env_and_system_folder(monkeypatch, isolated, fashion_mnist_data_dir, fashion_real):
    monkeypatch.setenv("FASTNN_DATA_DIR", str(fashion_mnist_data_dir))
    (_, y_train), _ = fashion_mnist.load_data()
    np.testing.assert_array_equal(y_train, fashion_real[0][1])
    monkeypatch.delenv("FASTNN_DATA_DIR")
    # Debian's /usr/share/datasets/fashion-mnist holds the four files directly.
    monkeypatch.setattr(fashion_mnist, "SYSTEM_DIRS", (str(fashion_mnist_data_dir / "fashion-mnist"),))
    (_, _), (_, y_test) = fashion_mnist.load_data()
    np.testing.assert_array_equal(y_test, fashion_real[1][1])


def test_fashion_keras_cache_layout(isolated):
    write_idx_set(isolated / ".keras" / "datasets" / "fashion-mnist", label=3)
    (_, y_train), _ = fashion_mnist.load_data()
    assert y_train.tolist() == [3, 3, 3]


def test_mnist_and_fashion_subfolders_are_kept_apart(monkeypatch, isolated, tmp_path):
    write_idx_set(tmp_path / "data" / "mnist", label=1)
    write_idx_set(tmp_path / "data" / "fashion-mnist", label=2)
    monkeypatch.setenv("FASTNN_DATA_DIR", str(tmp_path / "data"))
    assert label_of(mnist.load_data()) == 1
    assert label_of(fashion_mnist.load_data()) == 2


# --------------------------------------------------------------------------- IMDB
def reference_imdb(arrays, num_words=None, skip_top=0, maxlen=None, seed=113, start_char=1, oov_char=2,
                   index_from=3):
    """Keras' procedure token by token (docs/keras_semantics.md#imdb): the slow twin of imdb.load_data."""
    rng = np.random.RandomState(seed)
    parts = []
    for split in ("train", "test"):
        order = np.arange(len(arrays[f"x_{split}"]))
        rng.shuffle(order)
        head = [] if start_char is None else [start_char]
        xs = [head + [w + index_from for w in arrays[f"x_{split}"][i]] for i in order]
        ys = [int(arrays[f"y_{split}"][i]) for i in order]
        if maxlen is not None:
            kept = [i for i, x in enumerate(xs) if len(x) < maxlen]
            xs, ys = [xs[i] for i in kept], [ys[i] for i in kept]
        parts.append((xs, ys))
    if num_words is None:
        num_words = max(max(x) for xs, _ in parts for x in xs)
    result = []
    for xs, ys in parts:
        if oov_char is None:
            xs = [[w for w in x if skip_top <= w < num_words] for x in xs]
        else:
            xs = [[w if skip_top <= w < num_words else oov_char for w in x] for x in xs]
        result.append((xs, ys))
    return result


def as_lists(data):
    (x_train, y_train), (x_test, y_test) = data
    for x in (x_train, x_test):
        assert isinstance(x, np.ndarray) and x.dtype == object and x.ndim == 1
        assert all(type(s) is list for s in x)
    return [([list(s) for s in x_train], y_train.tolist()), ([list(s) for s in x_test], y_test.tolist())]


def write_imdb_npz(path, n_train=40, n_test=30, vocab=60, seed=0):
    rng = np.random.default_rng(seed)

    def sequences(n):
        out = np.empty(n, dtype=object)
        for i in range(n):
            out[i] = rng.integers(1, vocab, size=int(rng.integers(1, 30))).tolist()
        return out

    np.savez(path, x_train=sequences(n_train), y_train=rng.integers(0, 2, n_train),
             x_test=sequences(n_test), y_test=rng.integers(0, 2, n_test))
    return Path(path)


@pytest.fixture
def imdb_small(isolated, tmp_path):
    file = write_imdb_npz(tmp_path / "imdb.npz")
    raw = _files.read_npz(file, ("x_train", "y_train", "x_test", "y_test"), allow_objects=True)
    return file, raw


@pytest.mark.parametrize("kwargs", [
    {},
    {"num_words": 20},
    {"num_words": 20, "skip_top": 6},
    {"skip_top": 5},  # start_char 1 < skip_top becomes oov_char, as in Keras
    {"maxlen": 12},
    {"maxlen": 12, "num_words": 30, "oov_char": None},
    {"oov_char": None, "skip_top": 10},
    {"index_from": 0, "start_char": None},
    {"index_from": 7, "start_char": 0, "oov_char": 5, "num_words": 40},
    {"start_char": None, "maxlen": 5},
    {"seed": 0},
])
def test_imdb_matches_the_keras_procedure(imdb_small, kwargs):
    file, raw = imdb_small
    assert as_lists(imdb.load_data(path=file, **kwargs)) == reference_imdb(raw, **kwargs)


def test_imdb_hand_computed(isolated, tmp_path):
    def objects(*seqs):
        out = np.empty(len(seqs), dtype=object)
        for i, seq in enumerate(seqs):
            out[i] = seq
        return out

    file = tmp_path / "imdb.npz"
    np.savez(file, x_train=objects([1, 5, 2, 9], [3]), y_train=np.array([1, 1]), x_test=objects([4, 4, 7]),
             y_test=np.array([0]))

    def train_test(**kwargs):
        (x_train, y_train), (x_test, y_test) = imdb.load_data(path=file, **kwargs)
        return sorted(x_train.tolist()), x_test.tolist()

    # Shift by 3 and start with 1; num_words=None means the largest index (12), which
    # itself becomes oov_char 2 because Keras keeps only w < num_words.
    assert train_test() == ([[1, 4, 8, 5, 2], [1, 6]], [[1, 7, 7, 10]])
    assert train_test(num_words=8, oov_char=None) == ([[1, 4, 5], [1, 6]], [[1, 7, 7]])
    assert train_test(index_from=0, start_char=None, oov_char=0, num_words=100) == ([[1, 5, 2, 9], [3]],
                                                                                    [[4, 4, 7]])
    assert train_test(skip_top=5, num_words=100) == ([[2, 2, 8, 5, 12], [2, 6]], [[2, 7, 7, 10]])
    # maxlen keeps sequences with len(seq) < maxlen, start character included; it never truncates.
    assert train_test(maxlen=5, num_words=100) == ([[1, 6]], [[1, 7, 7, 10]])


@pytest.mark.parametrize("kwargs", [{}, {"maxlen": 6}, {"num_words": 20, "oov_char": None, "index_from": 0},
                                    {"skip_top": 2, "index_from": 50, "start_char": None}])
def test_imdb_negative_indices_as_keras(isolated, tmp_path, kwargs):
    """Never in Keras' file, but mapped as Keras maps them (w + index_from, then the range test)."""
    rng = np.random.default_rng(1)
    x = {split: object_array([rng.integers(-40, 30, rng.integers(1, 9)).tolist() for _ in range(n)])
         for split, n in (("train", 25), ("test", 15))}
    file = write_members(tmp_path / "imdb.npz", x_train=x["train"], y_train=np.zeros(25, np.int64),
                         x_test=x["test"], y_test=np.ones(15, np.int64))
    raw = {"x_train": x["train"], "y_train": np.zeros(25), "x_test": x["test"], "y_test": np.ones(15)}
    assert as_lists(imdb.load_data(path=file, **kwargs)) == reference_imdb(raw, **kwargs)


def test_imdb_maxlen_that_keeps_nothing(imdb_small):
    file, _ = imdb_small
    with pytest.raises(ValueError, match="no sequence was kept"):
        imdb.load_data(path=file, maxlen=1)


@pytest.mark.parametrize("kwargs, name", [
    ({"num_words": 0}, "num_words"),
    ({"num_words": -5}, "num_words"),
    ({"num_words": 10.5}, "num_words"),
    ({"maxlen": 0}, "maxlen"),
    ({"maxlen": -1}, "maxlen"),
    ({"skip_top": -1}, "skip_top"),
    ({"seed": "113"}, "seed"),
    ({"seed": -1}, "seed"),
    ({"start_char": 1.5}, "start_char"),
    ({"oov_char": True}, "oov_char"),
    ({"index_from": -3}, "index_from"),
])
def test_imdb_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`") as info:
        imdb.load_data(**kwargs)
    assert "received" in str(info.value)


def test_imdb_unknown_keyword():
    with pytest.raises(TypeError, match="nb_words"):
        imdb.load_data(nb_words=100)


def test_imdb_refuses_unsafe_pickles(isolated, tmp_path):
    import datetime

    evil = np.empty(1, dtype=object)
    evil[0] = datetime.date(2020, 1, 1)  # any global outside NumPy's array reconstruction is refused
    file = tmp_path / "imdb.npz"
    np.savez(file, x_train=evil, y_train=np.array([1]), x_test=evil, y_test=np.array([0]))
    with pytest.raises(_files.DatasetFormatError, match="refuses") as info:
        imdb.load_data(path=file)
    assert "datetime" in str(info.value) and str(file) in str(info.value)


def test_imdb_offline_error(monkeypatch, isolated):
    def offline(url, out, timeout):
        raise urllib.error.URLError("offline")

    monkeypatch.setattr(_files, "fetch", offline)
    with pytest.raises(_files.DatasetNotFoundError) as info:
        imdb.get_word_index()
    message = str(info.value)
    assert "imdb_word_index.json" in message and "FASTNN_DATA_DIR" in message
    assert str(isolated / ".keras" / "datasets") in message


@pytest.fixture(scope="module")
def imdb_real_default(imdb_data_dir):
    return imdb.load_data(path=imdb_data_dir / "imdb" / "imdb.npz", num_words=10000)


def test_imdb_real_known_values(imdb_real_default):
    (x_train, y_train), (x_test, y_test) = imdb_real_default
    assert len(x_train) == 25000 and len(x_test) == 25000
    assert x_train.dtype == object and type(x_train[0]) is list
    assert x_train[0][:12] == [1, 14, 22, 16, 43, 530, 973, 1622, 1385, 65, 458, 4468]
    assert len(x_train[0]) == 218
    assert y_train[:10].tolist() == [1, 0, 0, 1, 0, 0, 1, 0, 1, 0]
    assert np.issubdtype(y_train.dtype, np.integer)
    assert int(y_train.sum()) == 12500 and int(y_test.sum()) == 12500
    assert max(max(s) for s in x_train) == 9999


def test_imdb_real_through_data_dir_env(monkeypatch, isolated, imdb_data_dir, imdb_real_default):
    monkeypatch.setenv("FASTNN_DATA_DIR", str(imdb_data_dir))
    (x_train, _), (x_test, _) = imdb.load_data(num_words=10000, maxlen=200)
    assert 0 < len(x_train) < 25000 and 0 < len(x_test) < 25000
    assert max(map(len, x_train)) == 199  # dropped, not truncated
    full = {tuple(s) for s in imdb_real_default[0][0] if len(s) < 200}
    assert {tuple(s) for s in x_train} == full


@pytest.mark.parametrize("kwargs", [
    {"num_words": 5000, "skip_top": 20, "maxlen": 400, "oov_char": None, "index_from": 2},
    {"maxlen": 150, "start_char": None, "index_from": 0, "skip_top": 5, "seed": 7},
])
def test_imdb_real_matches_reference(imdb_data_dir, kwargs):
    file = imdb_data_dir / "imdb" / "imdb.npz"
    raw = _files.read_npz(file, ("x_train", "y_train", "x_test", "y_test"), allow_objects=True)
    assert as_lists(imdb.load_data(path=file, **kwargs)) == reference_imdb(raw, **kwargs)


def test_imdb_real_word_index_decodes(imdb_data_dir, imdb_real_default):
    index = imdb.get_word_index(path=imdb_data_dir / "imdb")
    assert len(index) == 88584 and index["the"] == 1
    words = {rank + 3: word for word, rank in index.items()}
    decoded = [words.get(i, "?") for i in imdb_real_default[0][0][0][:6]]
    assert decoded == ["?", "this", "film", "was", "just", "brilliant"]


def test_imdb_real_load_is_fast(imdb_data_dir):
    import time

    start = time.perf_counter()
    imdb.load_data(path=imdb_data_dir / "imdb" / "imdb.npz")
    assert time.perf_counter() - start < 10  # ~1-2 s; Keras' pure-Python version takes ~4 s


# --------------------------------------------------------------------------- IMDB: object arrays without unpickling
def object_array(seqs):
    out = np.empty(len(seqs), dtype=object)
    for i, seq in enumerate(seqs):
        out[i] = seq
    return out


def npy_bytes(array, protocol=3):
    """A .npy member as np.save writes it, but with any pickle protocol (np.save picks one)."""
    import io
    import pickle

    fp = io.BytesIO()
    np.lib.format.write_array_header_1_0(fp, {"descr": "|O", "fortran_order": False, "shape": array.shape})
    pickle.dump(array, fp, protocol=protocol)
    return fp.getvalue()


def write_members(path, **members):
    """An .npz file whose members are the given .npy bytes (or arrays, saved by np.save)."""
    import io
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        for name, value in members.items():
            if isinstance(value, np.ndarray):
                fp = io.BytesIO()
                np.save(fp, value)
                value = fp.getvalue()
            archive.writestr(f"{name}.npy", value)
    return Path(path)


def int_lists_via_unpickler(path, key):
    """The oracle: the allow-listed unpickler's object array, flattened."""
    (x,) = _files.read_npz(path, (key,), allow_objects=True).values()
    lengths = np.array([len(s) for s in x], dtype=np.int64)
    tokens = np.array([int(v) for s in x for v in s], dtype=np.int64)
    return lengths, tokens


@pytest.fixture
def fast_path_calls(monkeypatch):
    """Records, per read, whether the kernel path read the member (True) or declined (False)."""
    calls = []
    original = _files._int_lists_without_unpickling

    def spy(*args):
        result = original(*args)
        calls.append(result is not None)
        return result

    monkeypatch.setattr(_files, "_int_lists_without_unpickling", spy)
    return calls


SEQS = [[1, 300, 70000, 5], [], [9], list(range(1001)), [-3, 2**31 - 1, -2**31]]


@pytest.mark.parametrize("layout, fast", [
    ("np.save", True),  # protocol 4 with NumPy 2.x: FRAME and MEMOIZE opcodes
    ("protocol 3", True),  # as imdb.npz holds it
    ("protocol 5", True),
    ("shared list (BINGET)", False),
    ("tuples", False),
    ("int arrays", False),
    ("numpy ints", False),
    ("an int beyond int32 (LONG1)", False),
])
def test_int_lists_equal_the_unpickler(tmp_path, fast_path_calls, layout, fast):
    seqs = [list(s) for s in SEQS]
    protocol = {"protocol 3": 3, "protocol 5": 5}.get(layout, 4)
    if layout == "shared list (BINGET)":
        seqs.append(seqs[0])
    elif layout == "tuples":
        seqs = [tuple(s) for s in seqs]
    elif layout == "int arrays":
        seqs = [np.array(s, dtype=np.int64) for s in seqs]
    elif layout == "numpy ints":
        seqs[0] = [np.int64(7), np.int32(-8)]
    elif layout == "an int beyond int32 (LONG1)":
        seqs[2] = [2**40]
    member = object_array(seqs) if layout == "np.save" else npy_bytes(object_array(seqs), protocol)
    file = write_members(tmp_path / "x.npz", x=member)
    lengths, tokens = _files.read_npz(file, ("x",), int_lists=("x",))["x"]
    assert fast_path_calls == [fast]
    assert lengths.dtype == np.int64 and tokens.dtype == (np.int32 if fast else np.int64)
    expected = int_lists_via_unpickler(file, "x")
    np.testing.assert_array_equal(lengths, expected[0])
    np.testing.assert_array_equal(tokens, expected[1])


def test_imdb_same_through_the_fallback(isolated, tmp_path, fast_path_calls):
    """Sequences stored as tuples (read by the unpickler) load exactly as lists (read by the kernel)."""
    rng = np.random.default_rng(3)
    x = {split: object_array([rng.integers(1, 80, rng.integers(1, 25)).tolist() for _ in range(n)])
         for split, n in (("train", 30), ("test", 20))}
    y = {split: rng.integers(0, 2, len(x[split])) for split in x}
    fast = write_members(tmp_path / "fast.npz", x_train=x["train"], y_train=y["train"], x_test=x["test"],
                         y_test=y["test"])
    tuples = {split: object_array([tuple(s) for s in x[split]]) for split in x}
    slow = write_members(tmp_path / "slow.npz", x_train=tuples["train"], y_train=y["train"],
                         x_test=tuples["test"], y_test=y["test"])
    raw = {"x_train": x["train"], "y_train": y["train"], "x_test": x["test"], "y_test": y["test"]}
    for kwargs in ({}, {"num_words": 30, "oov_char": None, "maxlen": 15}, {"skip_top": 4, "start_char": None}):
        expected = reference_imdb(raw, **kwargs)
        assert as_lists(imdb.load_data(path=fast, **kwargs)) == expected
        assert as_lists(imdb.load_data(path=slow, **kwargs)) == expected
    assert fast_path_calls == [True, True, False, False] * 3


def _imdb_with_x_train(tmp_path, member):
    y = np.array([1, 0])
    return write_members(tmp_path / "imdb.npz", x_train=member, y_train=y, x_test=object_array([[4], [5, 6]]),
                         y_test=y)


CORRUPT_OR_FOREIGN = {
    "cut inside the data list": (npy_bytes(object_array([[1, 2], [3]]))[:-20], "corrupt"),
    "cut after it": (npy_bytes(object_array([[1, 2], [3]]))[:-2], "corrupt"),
    "a bad opcode": (npy_bytes(object_array([[1, 2], [3]])).replace(b"K\x03a", b"K\x03\xff"), "corrupt"),
    "2-D ints": (np.array([[1, 2], [3, 4]]), r"must be a 1-D object array of sequences; found an array of "
                                             r"shape \(2, 2\) and dtype int64"),
    "2-D objects": (object_array([[1, 2], [3]]).reshape(2, 1), r"must be a 1-D object array .* \(2, 1\)"),
    "strings": (object_array([["a"], [3]]), "not lists of integers"),
    "floats": (object_array([[1.5], [3]]), "not lists of integers"),
    "a number for a list": (object_array([5, [3]]), "not lists of integers"),
    "3 sequences, 2 labels": (object_array([[1, 2], [3], [4]]), "one for each of the 3 sequences"),
    "os.system for ndarray": (npy_bytes(object_array([[1, 2], [3]])).replace(b"cnumpy\nndarray\n",
                                                                              b"cos\nsystem\n"), "refuses"),
}


@pytest.mark.parametrize("case", list(CORRUPT_OR_FOREIGN))
def test_imdb_corrupt_or_foreign_x_train(isolated, tmp_path, case):
    member, message = CORRUPT_OR_FOREIGN[case]
    file = _imdb_with_x_train(tmp_path, member)
    with pytest.raises(_files.DatasetFormatError, match=message) as info:
        imdb.load_data(path=file)
    assert str(file) in str(info.value)


def test_imdb_system_global_in_the_array_header_is_refused(isolated, tmp_path):
    member = npy_bytes(object_array([[1, 2], [3]])).replace(b"cnumpy\nndarray\n", b"cos\nsystem\n")
    with pytest.raises(_files.DatasetFormatError, match="refers to os.system"):
        imdb.load_data(path=_imdb_with_x_train(tmp_path, member))


def test_int_lists_of_corrupted_members(tmp_path):
    """Random byte changes and cuts: the reader gives the unpickler's result or DatasetFormatError."""
    rng = np.random.default_rng(5)
    base = npy_bytes(object_array([list(s) for s in SEQS] + [[i, i + 1] for i in range(40)]))
    body = base.index(b"\x80\x03")
    outcomes = []
    for trial in range(300):
        data = bytearray(base)
        at = int(rng.integers(body, len(data)))
        if trial % 3:
            # (no LONG_BINPUT: a random 4-byte memo index makes pickle's C unpickler allocate for
            # tens of seconds, with or without fastnn)
            data[at] = int(rng.choice(np.frombuffer(b"]()eaqKMJNt.h\x8a\x00", np.uint8)))
        else:
            del data[at:]
        file = write_members(tmp_path / f"c{trial}.npz", x=bytes(data))
        try:
            lengths, tokens = _files.read_npz(file, ("x",), int_lists=("x",))["x"]
        except _files.DatasetFormatError:
            outcomes.append("error")
            continue
        outcomes.append("read")
        expected = int_lists_via_unpickler(file, "x")
        np.testing.assert_array_equal(lengths, expected[0])
        np.testing.assert_array_equal(tokens, expected[1])
    assert outcomes.count("read") > 20 and outcomes.count("error") > 20


def test_imdb_real_int_lists_equal_the_unpickler(imdb_data_dir, fast_path_calls):
    file = imdb_data_dir / "imdb" / "imdb.npz"
    for key in ("x_train", "x_test"):
        lengths, tokens = _files.read_npz(file, (key,), int_lists=(key,))[key]
        expected = int_lists_via_unpickler(file, key)
        np.testing.assert_array_equal(lengths, expected[0])
        np.testing.assert_array_equal(tokens, expected[1])
    assert fast_path_calls == [True, True]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss in KiB (Linux)")
def test_imdb_real_load_peak_memory(imdb_data_dir):
    """Issue 3: loading must not make one Python int per token (~340 MB of peak growth before; ~150 now)."""
    root = Path(imdb.__file__).resolve().parents[2]
    code = ("import resource, sys; from fastnn import _kernels as K; from fastnn.datasets import imdb; K.BACKEND; "
            "peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024; before = peak(); "
            "data = imdb.load_data(path=sys.argv[1], num_words=10000); print(peak() - before)")
    env = dict(os.environ, PYTHONPATH=str(root) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, "-c", code, str(imdb_data_dir / "imdb" / "imdb.npz")],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    growth = float(done.stdout.split()[-1])
    assert growth < 250, f"load_data grew the peak RSS by {growth:.0f} MB"


# --------------------------------------------------------------------------- package
def test_import_is_lazy():
    root = Path(mnist.__file__).resolve().parents[2]
    code = ("import sys, fastnn.datasets as d; "
            "print(sorted(m for m in ('fastnn.datasets.mnist', 'fastnn.datasets.imdb', 'urllib.request') "
            "if m in sys.modules)); print(d.mnist.__name__, d.imdb.__name__, sorted(d.__all__))")
    env = dict(os.environ, PYTHONPATH=str(root) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               FASTNN_KERNELS=os.environ.get("FASTNN_KERNELS", "reference"))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[-2] == "[]"
    assert lines[-1] == "fastnn.datasets.mnist fastnn.datasets.imdb ['fashion_mnist', 'imdb', 'mnist']"


def test_read_idx_of_uncompressed_bytes(tmp_path):
    path = write_idx(tmp_path / "x-idx1-ubyte", np.arange(7), compress=False)
    np.testing.assert_array_equal(_files.read_idx(path, 1), np.arange(7))
