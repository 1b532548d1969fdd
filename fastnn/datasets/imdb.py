"""IMDB movie-review sentiment, with Keras' ``keras.datasets.imdb`` API.

``load_data`` follows Keras 3 step by step (keras/src/datasets/imdb.py and
``remove_long_seq`` in keras/src/utils/python_utils.py;
docs/keras_semantics.md#imdb), so that the same arguments give the same sequences:

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
raw word index to output token built with NumPy and applied to the flat int32
tokens that ``_files.read_npz`` reads from the pickles without unpickling them;
the output lists share the table's int objects. So no Python int is made per
token: the load peaks at about the size of its result (issue 3), and 25k + 25k
reviews load in well under Keras' ~4 s.
"""
import numbers
import os

import numpy as np

from fastnn.datasets import _files
from fastnn.utils.validation import check_kwargs, describe

# Hashes of Keras' downloads (keras/src/datasets/imdb.py). For the word index Keras
# checks the md5 bfafd718b763782e994055a2d397834f; this is the sha256 of that file.
IMDB_NPZ_SHA256 = "69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f"
WORD_INDEX_SHA256 = "027313fe9a320280f3bf0fac5baf58c4a683cf39a7ed9c3d3d3912bde4284cf6"
_KEYS = ("x_train", "y_train", "x_test", "y_test")
_CHUNK = 1 << 20  # tokens mapped at once when building the lists (an 8 MB object array)


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
        arrays = _files.read_npz(file, _KEYS, int_lists=("x_train", "x_test"))
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
    # A split is a dict: its sequences as `lengths` and flat `tokens` (raw word indices, as
    # _files.read_npz returns them), `order` (the sequences to output, in order) and `y`.
    rng = np.random.RandomState(seed)
    splits = []
    for split in ("train", "test"):
        (lengths, tokens), y = arrays.pop(f"x_{split}"), arrays.pop(f"y_{split}")
        if y.ndim != 1 or len(y) != len(lengths):
            raise _files.DatasetFormatError(
                f"{file}: expected y_{split} as 1-D labels, one for each of the {len(lengths)} sequences of "
                f"x_{split}; found {describe(y)}."
            )
        order = np.arange(len(lengths))
        rng.shuffle(order)  # train first, then test, from the same generator (step 1)
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        splits.append({"lengths": lengths, "tokens": tokens, "offsets": offsets, "order": order,
                       "y": y[order]})
    del lengths, tokens  # the splits hold them, and free them one by one below

    n_start = 0 if start_char is None else 1
    if maxlen is not None:  # step 3: drop, do not truncate
        for s in splits:
            keep = s["lengths"][s["order"]] + n_start < maxlen
            s["order"], s["y"] = s["order"][keep], s["y"][keep]
        if not len(splits[0]["order"]) or not len(splits[1]["order"]):
            raise ValueError(
                f"imdb.load_data: after filtering for sequences shorter than maxlen={maxlen}, no sequence "
                "was kept. Increase maxlen."
            )

    low, top = _kept_range(splits)
    if num_words is None:  # step 4: largest index after the shift, start_char included
        num_words = max(top + index_from, -1 if start_char is None else start_char)
    # Step 5 as a table from raw index w (at w - low) to w + index_from, or oov_char (None =
    # drop), for the w in the sequences kept, negative ones too (never in Keras' file); the
    # start character, if any, follows at the end.
    shifted = np.arange(low, top + 1, dtype=np.int64) + index_from
    cut = (shifted < skip_top) | (shifted >= num_words)
    table = shifted.astype(object)
    table[cut] = oov_char
    keep = ~cut if oov_char is None else None
    has_head = start_char is not None
    if has_head:
        head = start_char if skip_top <= start_char < num_words else oov_char
        has_head = head is not None  # a start character cut with oov_char None is dropped
        table = np.append(table, np.array([head], dtype=object))

    out = []
    for s in splits:
        out.append((_sequences(s, table, low, keep, has_head), s["y"]))
        s.clear()  # drop this split's tokens before building the next split's lists
    return tuple(out)


def _kept_range(splits):
    """(min(0, smallest), largest) raw word index in the sequences kept; largest is -1 if there is none."""
    low, top = 0, None
    for s in splits:
        nonempty = s["lengths"] > 0
        kept = np.zeros(len(nonempty), dtype=bool)
        kept[s["order"]] = True
        kept = kept[nonempty]
        if kept.any():
            starts = s["offsets"][:-1][nonempty]  # each segment runs to the next start: one sequence
            low = min(low, int(np.minimum.reduceat(s["tokens"], starts)[kept].min()))
            top_s = int(np.maximum.reduceat(s["tokens"], starts)[kept].max())
            top = top_s if top is None else max(top, top_s)
    return low, (-1 if top is None else top)


def _sequences(s, table, low, keep, has_head):
    """The output lists of split ``s``: the sequences of ``s["order"]``, mapped through ``table``.

    Raw index w is at ``table[w - low]``; with ``has_head`` each list starts with
    ``table[-1]``. The lists hold the table's int objects, never one new int per token, and
    are sliced at their exact size (no growth slack) from a Python list of about ``_CHUNK``
    mapped tokens at a time, so no split-sized temporary exists.
    """
    tokens, offsets, order = s["tokens"], s["offsets"], s["order"]
    wanted = np.zeros(len(offsets) - 1, dtype=bool)
    wanted[order] = True
    built = [None] * len(wanted)
    first = 0
    while first < len(wanted):
        last = max(int(np.searchsorted(offsets, offsets[first] + _CHUNK, side="right")) - 1, first + 1)
        idx = tokens[offsets[first]:offsets[last]].astype(np.int64) - low
        bounds = offsets[first:last + 1] - offsets[first]
        chosen = wanted[first:last]
        if not chosen.all():  # maxlen dropped some: leave their words out (the table may not cover them)
            lengths = np.where(chosen, np.diff(bounds), 0)
            idx = idx[np.repeat(chosen, np.diff(bounds))]
            bounds = np.concatenate(([0], np.cumsum(lengths)))
        if keep is not None:  # oov_char=None: drop the cut words, and move the bounds with them
            kept = keep[idx]
            bounds = np.concatenate(([0], np.cumsum(kept)))[bounds]
            idx = idx[kept]
        if has_head:  # the start character before each chosen sequence
            idx = np.insert(idx, bounds[:-1][chosen], len(table) - 1)
            bounds = bounds + np.concatenate(([0], np.cumsum(chosen)))
        flat = table[idx].tolist()
        bounds = bounds.tolist()
        for j in np.flatnonzero(chosen).tolist():
            built[first + j] = flat[bounds[j]:bounds[j + 1]]
        first = last
    return np.fromiter(map(built.__getitem__, order.tolist()), dtype=object, count=len(order))
