"""IMDB movie-review sentiment, with Keras' ``keras.datasets.imdb`` API.

``load_data`` follows Keras 3 step by step (keras/src/datasets/imdb.py and
``remove_long_seq`` in keras/src/utils/python_utils.py; KERAS_SEMANTICS.md
§2.8), so that the same arguments give the same sequences:

1. one ``np.random.RandomState(seed)`` shuffles train, then test;
2. each review becomes ``[start_char] + [w + index_from for w in review]``;
3. ``maxlen`` *drops* reviews, keeping those with ``len(sequence) < maxlen``
   (start character included); it does not truncate;
4. ``num_words=None`` means the largest index left after step 3;
5. indices outside ``[skip_top, num_words)`` become ``oov_char``, or are removed
   when ``oov_char`` is None. This applies to ``start_char`` too, and since the
   test is ``< num_words``, with ``num_words=None`` the largest index itself
   becomes ``oov_char``: both are Keras' behaviour, kept for equal results.

Instead of Keras' per-token Python comparisons, step 5 is one lookup table from
raw word index to output token built with NumPy, applied with ``map``; the
output lists share the table's int objects. Loading 25k + 25k reviews takes
about 1 s instead of Keras' ~4 s.
"""
import functools
import numbers
import operator
import os

import numpy as np

from fastnn.datasets import _files
from fastnn.utils.validation import check_kwargs, describe

# Hashes of Keras' downloads (keras/src/datasets/imdb.py). For the word index Keras
# checks the md5 bfafd718b763782e994055a2d397834f; this is the sha256 of that file.
IMDB_NPZ_SHA256 = "69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f"
WORD_INDEX_SHA256 = "027313fe9a320280f3bf0fac5baf58c4a683cf39a7ed9c3d3d3912bde4284cf6"
_KEYS = ("x_train", "y_train", "x_test", "y_test")


def load_data(path="imdb.npz", num_words=None, skip_top=0, maxlen=None, seed=113, start_char=1, oov_char=2,
              index_from=3, **kwargs):
    """Load the IMDB reviews as sequences of word indices (Keras semantics).

    Args:
        path: bare file name to look for in ``$FASTNN_DATA_DIR``, Keras' and
            fastnn's caches (each directly or in ``imdb/``), or a location: an
            ``imdb.npz`` file or a folder holding one.
        num_words: keep the ``num_words`` most frequent words (indices below
            ``num_words``, counting the ``index_from`` offset); others become
            ``oov_char``. None keeps all.
        skip_top: indices below ``skip_top`` become ``oov_char``.
        maxlen: drop reviews whose sequence (with the start character) has
            ``maxlen`` or more tokens. None keeps all.
        seed: seed of the shuffle.
        start_char: token that starts each sequence; None for none.
        oov_char: token that replaces cut-out words; None removes them.
        index_from: offset added to every word index (0-2 are reserved for
            padding, start and out-of-vocabulary).

    Returns:
        ``(x_train, y_train), (x_test, y_test)``: 1-D object arrays of lists of
        ints, and 0/1 integer labels (25,000 reviews each without ``maxlen``).
    """
    owner = "imdb.load_data"
    check_kwargs(owner, kwargs)
    num_words = _check_int(owner, "num_words", num_words, 1, allow_none=True)
    skip_top = _check_int(owner, "skip_top", skip_top, 0)
    maxlen = _check_int(owner, "maxlen", maxlen, 1, allow_none=True)
    seed = _check_int(owner, "seed", seed, 0, allow_none=True, maximum=2**32 - 1)
    start_char = _check_int(owner, "start_char", start_char, 0, allow_none=True)
    oov_char = _check_int(owner, "oov_char", oov_char, 0, allow_none=True)
    index_from = _check_int(owner, "index_from", index_from, 0)

    file = _find(path, "imdb.npz", IMDB_NPZ_SHA256)
    with _files.gc_paused():
        arrays = _files.read_npz(file, _KEYS, allow_objects=True)
        return _prepare(file, arrays, num_words, skip_top, maxlen, seed, start_char, oov_char, index_from)


def get_word_index(path="imdb_word_index.json"):
    """The dict word -> frequency rank (1 = most frequent) behind the indices.

    Ranks do not include ``index_from``: to decode a sequence from
    :func:`load_data` with the defaults, look up ``index - 3``.
    """
    import json

    file = _find(path, "imdb_word_index.json", WORD_INDEX_SHA256)
    try:
        with open(file, encoding="utf-8") as f:
            index = json.load(f)
    except (ValueError, UnicodeDecodeError) as e:
        raise _files.DatasetFormatError(f"{file} is not a valid word index JSON file ({e}).") from e
    if not isinstance(index, dict):
        raise _files.DatasetFormatError(f"{file} holds a JSON {type(index).__name__}; expected an object.")
    return index


def _find(path, default_name, sha256):
    explicit = path is not None and _files.is_explicit(path)
    file_name = default_name if path is None or explicit else os.fspath(path)

    def probe(folder):
        hit = _files.find_file(folder, file_name)
        return None if hit is None else ("file", hit)

    _, file = _files.obtain(
        "IMDB",
        path,
        probe,
        subdir="imdb",
        wanted=file_name,
        downloads=[(default_name, file_name, sha256)],
    )
    return file


def _check_int(owner, name, value, minimum, allow_none=False, maximum=None):
    if value is None and allow_none:
        return None
    if (isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum
            or (maximum is not None and value > maximum)):
        expected = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        if maximum is not None:
            expected += f" and <= {maximum}"
        if allow_none:
            expected += ", or None"
        raise ValueError(f"{owner}: argument `{name}` must be {expected}; received {describe(value)}.")
    return int(value)


def _prepare(file, arrays, num_words, skip_top, maxlen, seed, start_char, oov_char, index_from):
    rng = np.random.RandomState(seed)
    splits = []
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim != 1 or x.dtype != object or y.ndim != 1 or len(x) != len(y):
            raise _files.DatasetFormatError(
                f"{file}: expected x_{split} as a 1-D object array of sequences and y_{split} as 1-D labels "
                f"of the same length; found {describe(x)} and {describe(y)}."
            )
        order = np.arange(len(x))
        rng.shuffle(order)  # train first, then test, from the same generator (step 1)
        splits.append([x[order], y[order]])

    n_start = 0 if start_char is None else 1
    if maxlen is not None:  # step 3: drop, do not truncate
        for s in splits:
            lengths = np.fromiter(map(len, s[0]), dtype=np.intp, count=len(s[0]))
            keep = lengths + n_start < maxlen
            s[0], s[1] = s[0][keep], s[1][keep]
        if not len(splits[0][0]) or not len(splits[1][0]):
            raise ValueError(
                f"imdb.load_data: after filtering for sequences shorter than maxlen={maxlen}, no sequence "
                "was kept. Increase maxlen."
            )

    xs = np.concatenate([splits[0][0], splits[1][0]])
    try:
        top = max(map(max, (s for s in xs if len(s))), default=-1)
    except TypeError as e:
        message = f"{file} holds sequences that are not lists of integers ({e})."
        raise _files.DatasetFormatError(message) from e

    if num_words is None:  # step 4: largest index after the shift, start_char included
        num_words = max(top + index_from, -1 if start_char is None else start_char)
    # Step 5 as a table from raw index w to w + index_from, or oov_char (None = drop).
    # Its second half serves negative w (never in Keras' file) through Python's
    # negative indexing, so they too come out as Keras makes them, without a
    # min() pass over all 12M tokens; anything below -(top + 1) raises IndexError.
    raw = np.concatenate([np.arange(top + 1), np.arange(-(top + 1), 0)]).astype(np.int64)
    shifted = raw + index_from
    table = shifted.astype(object)
    table[(shifted < skip_top) | (shifted >= num_words)] = oov_char
    table = table.tolist()
    head = []
    if start_char is not None:
        head = [start_char if skip_top <= start_char < num_words else oov_char]
        if head[0] is None:
            head = []

    lookup = table.__getitem__
    try:
        if oov_char is None:
            present = functools.partial(operator.is_not, None)
            seqs = [[*head, *filter(present, map(lookup, s))] for s in xs]
        else:
            seqs = [[*head, *map(lookup, s)] for s in xs]
    except TypeError as e:
        raise _files.DatasetFormatError(f"{file} holds word indices that are not integers ({e}).") from e
    except IndexError as e:
        raise _files.DatasetFormatError(f"{file} holds a word index below {-(top + 1)}.") from e

    n_train = len(splits[0][0])
    x_train = np.fromiter(seqs[:n_train], dtype=object, count=n_train)
    x_test = np.fromiter(seqs[n_train:], dtype=object, count=len(seqs) - n_train)
    return (x_train, splits[0][1]), (x_test, splits[1][1])
