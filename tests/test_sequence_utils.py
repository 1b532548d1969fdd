"""multi_hot: equal to the IMDB tutorial's vectorize_sequences loop, sparse or dense, any dtype; clear errors."""
import functools

import numpy as np
import pytest
import scipy.sparse as sp

from fastnn.utils.sequence_utils import multi_hot


def tutorial_loop(sequences, dimension):
    """The Deep Learning with Python notebook's vectorize_sequences, verbatim."""
    results = np.zeros((len(sequences), dimension))
    for i, sequence in enumerate(sequences):
        results[i, sequence] = 1.
    return results


def _ragged(n, vocab, seed, max_len=60):
    rng = np.random.default_rng(seed)
    seqs = [rng.integers(0, vocab, rng.integers(0, max_len)).tolist() for _ in range(n)]
    seqs[1] = []            # empty sequence -> all-zero row
    seqs[2] = [5, 5, 5, 0]  # repeats count once
    return seqs


@pytest.mark.parametrize("container", ["list", "object-array", "tuples", "arrays"])
def test_equals_tutorial_loop_on_random_sequences(container):
    seqs = _ragged(500, 300, seed=0)
    expected = tutorial_loop(seqs, 300)
    if container == "object-array":
        seqs = np.array(seqs + [[0]], dtype=object)[:-1]
    elif container == "tuples":
        seqs = [tuple(s) for s in seqs]
    elif container == "arrays":
        seqs = [np.array(s, dtype=np.int32) for s in seqs]
    m = multi_hot(seqs, 300)
    assert isinstance(m, sp.csr_matrix)
    assert m.shape == (500, 300) and m.dtype == np.float32
    assert m.has_sorted_indices and m.has_canonical_format
    np.testing.assert_array_equal(m.toarray(), expected)
    assert not m.toarray()[1].any()


def test_equals_tutorial_loop_on_a_2d_int_array():
    x = np.random.default_rng(1).integers(0, 50, (40, 12))  # e.g. pad_sequences output
    np.testing.assert_array_equal(multi_hot(x, 50).toarray(), tutorial_loop(x, 50))
    np.testing.assert_array_equal(multi_hot(x.astype(np.float32), 50).toarray(), tutorial_loop(x, 50))


@functools.lru_cache(maxsize=1)
def _first_reviews(path):
    with np.load(path, allow_pickle=True) as f:
        return f["x_train"][:1000]


def _real_reviews(data_dir, num_words):
    raw = _first_reviews(data_dir / "imdb" / "imdb.npz")
    # as imdb.load_data(num_words=...) does with index_from=3, start_char=1, oov_char=2
    return [[1] + [w + 3 if num_words is None or w + 3 < num_words else 2 for w in review] for review in raw]


def test_equals_tutorial_loop_on_real_imdb_reviews(imdb_data_dir):
    seqs = _real_reviews(imdb_data_dir, 10000)
    expected = tutorial_loop(seqs, 10000)  # 80 MB of float64, as in the tutorial
    m = multi_hot(seqs, 10000)
    np.testing.assert_array_equal(m.toarray(), expected)
    np.testing.assert_array_equal(multi_hot(seqs, 10000, dtype="uint8", sparse=False), expected)
    assert m.nnz == sum(len(set(s)) for s in seqs)


def test_real_imdb_reviews_with_the_full_vocabulary(imdb_data_dir):
    # ids up to ~88,000: checked row by row instead of a 700 MB dense loop
    seqs = _real_reviews(imdb_data_dir, None)
    n = max(max(s) for s in seqs) + 1
    m = multi_hot(seqs, n)
    assert m.shape == (1000, n)
    for i, s in enumerate(seqs):
        np.testing.assert_array_equal(m.indices[m.indptr[i]:m.indptr[i + 1]], sorted(set(s)))


@pytest.mark.parametrize("dtype", ["float32", "float64", "uint8", "int8", "int32", "int64", "bool", np.float16])
@pytest.mark.parametrize("sparse", [True, False])
def test_dtypes_sparse_and_dense(dtype, sparse):
    if sparse and dtype == np.float16:
        with pytest.raises(ValueError, match=r"scipy.sparse does not support float16"):
            multi_hot([[1]], 4, dtype=dtype)
        return
    seqs = _ragged(60, 40, seed=2)
    out = multi_hot(seqs, 40, dtype=dtype, sparse=sparse)
    assert out.dtype == np.dtype(dtype)
    if sparse:
        assert isinstance(out, sp.csr_matrix)
        np.testing.assert_array_equal(out.data, np.ones(out.nnz, dtype))
        out = out.toarray()
    else:
        assert isinstance(out, np.ndarray) and out.flags.c_contiguous
    np.testing.assert_array_equal(out, tutorial_loop(seqs, 40).astype(dtype))


def test_empty_inputs():
    assert multi_hot([], 7).shape == (0, 7)
    assert multi_hot([[], []], 7, sparse=False).shape == (2, 7)
    assert multi_hot([[], []], 7).nnz == 0


def test_accepts_numpy_integers_and_whole_floats():
    seqs = [[np.int64(3), np.uint16(1), 2.0], (4,), range(2)]
    np.testing.assert_array_equal(multi_hot(seqs, 5).toarray(),
                                  tutorial_loop([[3, 1, 2], [4], [0, 1]], 5))


@pytest.mark.parametrize("seqs, error, message", [
    ([[1, 2], [3, 2.5]], ValueError, r"^multi_hot: sequence 1 contains the non-integer value 2.5"),
    ([[1], ["the", "movie"]], TypeError, r"^multi_hot: sequence 1 contains 'the' \(of type str\)"),
    ([[1], [[2, 3]]], ValueError, r"^multi_hot: sequence 1 is nested more than one level deep"),
    ([[[1, 2], [3]]], ValueError, r"^multi_hot: sequence 0 is nested more than one level deep"),
    ([1, 2, 3], TypeError, r"^multi_hot: sequence 0 is 1 \(of type int\), not a sequence of token ids"),
    (np.arange(3), ValueError, r"^multi_hot: .*a 1-D array is one sequence: pass \[seq\]"),
    ("a review", TypeError, r"^multi_hot: argument `sequences` must be a list of sequences"),
    ([[True]], TypeError, r"^multi_hot: sequence 0 contains the boolean True"),
])
def test_bad_token_values(seqs, error, message):
    with pytest.raises(error, match=message):
        multi_hot(seqs, 10)


def test_out_of_range_names_sequence_value_and_num_words():
    seqs = [[1, 2], [], [3, 9999, 10000, 12000], [5]]
    with pytest.raises(ValueError, match=r"^multi_hot: sequence 2 contains the token id 10000, outside \[0, 10000\) "
                                         r"for num_tokens=10000\. Pass num_tokens=12001 .*"
                                         r"imdb\.load_data\(num_words=10000\)"):
        multi_hot(seqs, 10000)
    with pytest.raises(ValueError, match=r"^multi_hot: sequence 1 contains the token id -3, outside \[0, 10\)"):
        multi_hot([[1], [2, -3]], 10, sparse=False)


@pytest.mark.parametrize("num_tokens", [0, -5, 2.5, "10000", None, True, 2**31])
def test_num_tokens_must_be_a_positive_int(num_tokens):
    with pytest.raises(ValueError, match=r"^multi_hot: argument `num_tokens` must be"):
        multi_hot([[1]], num_tokens)


@pytest.mark.parametrize("dtype", ["str", object, "complex64", "not-a-dtype"])
def test_bad_dtype(dtype):
    with pytest.raises(ValueError, match=r"^multi_hot: argument `dtype` must be"):
        multi_hot([[1]], 5, dtype=dtype)


def test_numpy_int_num_tokens():
    assert multi_hot([[1]], np.int64(3)).shape == (1, 3)


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of 3 sequences (2-D arrays: 768 // L rows), so that small inputs span several chunks."""
    from fastnn.utils import sequence_utils

    monkeypatch.setattr(sequence_utils, "_CHUNK_TOKENS", 3 * 256)


@pytest.mark.parametrize("container", ["list", "tuple", "object-array", "2d-array"])
def test_chunks_give_the_whole_result(small_chunks, container):
    seqs = _ragged(20, 30, seed=4)
    if container == "2d-array":
        seqs = np.random.default_rng(4).integers(0, 30, (20, 300))  # 2 rows per chunk
    elif container == "tuple":
        seqs = tuple(seqs)
    elif container == "object-array":
        seqs = np.array([np.array(s, dtype=np.int64) for s in seqs], dtype=object)
    for sparse in (True, False):
        out = multi_hot(seqs, 30, sparse=sparse)
        dense = out.toarray() if sparse else out
        np.testing.assert_array_equal(dense, tutorial_loop(list(seqs), 30))
    out, canonical = multi_hot(seqs, 30), sp.csr_matrix(tutorial_loop(list(seqs), 30))  # sorted, no repeats
    np.testing.assert_array_equal(out.indptr, canonical.indptr)
    np.testing.assert_array_equal(out.indices, canonical.indices)


@pytest.mark.parametrize("seqs, error, message", [
    ([[1]] * 7 + [[3, 2.5]], ValueError, r"^multi_hot: sequence 7 contains the non-integer value 2.5"),
    ([[1]] * 10 + [[3, 40]], ValueError, r"^multi_hot: sequence 10 contains the token id 40, outside \[0, 30\)"),
    ([[1]] * 5 + [[-1]], ValueError, r"^multi_hot: sequence 5 contains the token id -1"),
])
def test_chunks_name_the_sequence_in_the_whole_input(small_chunks, seqs, error, message):
    with pytest.raises(error, match=message):
        multi_hot(seqs, 30)
