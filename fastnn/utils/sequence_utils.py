"""Multi-hot encoding of token sequences (the IMDB tutorial's ``vectorize_sequences``), without densifying.

The Deep Learning with Python notebook builds ``np.zeros((25000, 10000))`` in float64 and sets
``results[i, sequence] = 1.`` review by review: 2 GB per split and a Python loop
(docs/keras_semantics.md#sparse-input; keras-team/keras#2061). ``multi_hot`` returns the same values
as a ``scipy.sparse.csr_matrix`` (about 13 MB of indices for 25,000 reviews) that fit() and
predict() feed to the first Dense layer's sparse kernel, or, with ``sparse=False``, a dense
array of the requested dtype filled in one pass.
"""
import numpy as np

from fastnn import _kernels as K
from fastnn.utils.validation import check_positive_int, describe

_INT32_MAX = np.iinfo(np.int32).max
_CHUNK_TOKENS = 1 << 21  # tokens flattened at once (a 16 MB int64 buffer)


def multi_hot(sequences, num_tokens, dtype="float32", sparse=True):
    """Multi-hot encode token sequences: row i has a 1 in column t for every token t of sequence i.

    Equal to the tutorial's loop ``results = np.zeros((len(seqs), n)); results[i, seq] = 1.``
    (repeated tokens count once, empty sequences give all-zero rows).

    Args:
        sequences: a list (or 1-D object array) of sequences of integer token ids, as
            ``imdb.load_data`` returns them; ragged is fine. Or a 2-D integer array (S, L).
        num_tokens: the number of columns; every id must be in ``[0, num_tokens)``.
        dtype: dtype of the values: float32 (default, what Dense layers use), float64,
            uint8, int32, bool, ...
        sparse: True returns a ``scipy.sparse.csr_matrix`` of shape (S, num_tokens) with
            sorted, duplicate-free indices; False a dense ``np.ndarray``.

    Raises:
        TypeError: a token id that is not a number (e.g. a string) or is a boolean.
        ValueError: a non-integer id (e.g. 2.5), sequences nested deeper than one level,
            an id outside ``[0, num_tokens)`` (the message names the sequence and the value),
            or ``num_tokens`` not a positive integer.
    """
    owner = "multi_hot"
    num_tokens = check_positive_int(owner, "num_tokens", num_tokens)
    if num_tokens > _INT32_MAX:
        raise ValueError(f"{owner}: argument `num_tokens` must be at most {_INT32_MAX}; received {num_tokens}.")
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise ValueError(f"{owner}: argument `dtype` must be a NumPy numeric dtype such as 'float32' or 'uint8'; "
                         f"received {describe(dtype)}.") from None
    if dtype.kind not in "biuf":
        raise ValueError(f"{owner}: argument `dtype` must be a boolean, integer or float dtype; received {dtype}.")
    if sparse and dtype == np.float16:
        raise ValueError(f"{owner}: scipy.sparse does not support float16; use dtype='float32' or sparse=False.")
    indptr, indices = _csr_structure(sequences, num_tokens)
    n_rows = indptr.shape[0] - 1
    if not sparse:
        # one pass over the non-zeros, straight into the requested dtype (no float64 copy)
        out = np.zeros((n_rows, num_tokens), dtype=dtype)
        row_of = np.repeat(np.arange(n_rows, dtype=np.intp), np.diff(indptr))
        out[row_of, indices] = 1
        return out
    import scipy.sparse as sp

    matrix = sp.csr_matrix((np.ones(indices.shape[0], dtype=dtype), indices, indptr), shape=(n_rows, num_tokens))
    # multi_hot_csr guarantees sorted, duplicate-free rows: spare scipy (and to_csr) the check
    matrix.has_sorted_indices = True
    matrix.has_canonical_format = True
    return matrix


def _csr_structure(sequences, num_tokens):
    """(indptr, indices) of the multi-hot rows, encoded ``_CHUNK_TOKENS`` tokens or so at a time.

    Flattening all sequences at once takes an int64 buffer of 8 bytes per token (48 MB for an
    IMDB split, most of the tutorial's peak memory after loading; issue 3); in chunks it stays
    at ~16 MB. The chunks' results are the whole input's, laid end to end. If a chunk fails, the
    whole input is encoded again, so errors name the sequence as in the whole input.
    """
    if isinstance(sequences, np.ndarray) and sequences.ndim == 2 and sequences.dtype != object:
        step = max(1, _CHUNK_TOKENS // max(1, sequences.shape[1]))
    elif isinstance(sequences, (list, tuple)) or (isinstance(sequences, np.ndarray) and sequences.ndim == 1):
        step = max(1, _CHUNK_TOKENS // 256)  # for sequences of ~256 tokens (IMDB: 235 on average)
    else:
        step = None  # iterators and the like: one piece, as the kernels validate them
    if step is None or len(sequences) <= step:
        return _csr_structure_whole(sequences, num_tokens)
    try:
        parts = [K.multi_hot_csr(*K.flatten_sequences(sequences[i:i + step]), num_tokens)
                 for i in range(0, len(sequences), step)]
    except (TypeError, ValueError):
        return _csr_structure_whole(sequences, num_tokens)  # raises, naming the sequence in the whole input
    indptr = np.empty(len(sequences) + 1, dtype=np.int64)
    indptr[0], at, nnz = 0, 1, 0
    for part_ptr, _ in parts:
        indptr[at:at + part_ptr.shape[0] - 1] = part_ptr[1:] + nnz
        at += part_ptr.shape[0] - 1
        nnz += int(part_ptr[-1])
    return indptr, np.concatenate([part_indices for _, part_indices in parts])


def _csr_structure_whole(sequences, num_tokens):
    owner = "multi_hot"
    try:
        lengths, tokens = K.flatten_sequences(sequences)
    except (TypeError, ValueError) as exc:  # same message, named after the function the user called
        raise type(exc)(_rename(exc, owner)) from None
    try:
        return K.multi_hot_csr(lengths, tokens, num_tokens)
    except ValueError:
        raise _range_error(lengths, tokens, num_tokens) from None


def _rename(exc, owner):
    """The kernel's message with the owner replaced by the public function's name."""
    head, sep, rest = str(exc).partition(": ")
    return f"{owner}: {rest}" if sep else str(exc)


def _range_error(lengths, tokens, num_tokens):
    """ValueError for the first token id outside [0, num_tokens), with the IMDB fix."""
    bad = (tokens < 0) | (tokens >= num_tokens)
    if not bad.any():  # pragma: no cover - multi_hot_csr only raises ValueError for ids out of range
        return ValueError(f"multi_hot: could not encode the sequences with num_tokens={num_tokens}.")
    first = int(np.argmax(bad))
    seq = int(np.searchsorted(np.cumsum(lengths), first, side="right"))
    value = int(tokens[first])
    if value < 0:
        fix = "Token ids must be >= 0."
    else:
        fix = (f"Pass num_tokens={int(tokens.max()) + 1} (the largest id + 1), or keep only the {num_tokens} "
               f"most frequent words with imdb.load_data(num_words={num_tokens}).")
    return ValueError(f"multi_hot: sequence {seq} contains the token id {value}, outside [0, {num_tokens}) for "
                      f"num_tokens={num_tokens}. {fix}")
