"""Sparse (CSR) kernels: compiled ``fastnn._kernels.sparse`` vs its NumPy twin in ``_reference``.

csr_dense_forward / csr_dense_backward against the reference and against dense NumPy, float64
finite differences of the weight and bias gradients, thread-count independence, read-only and
non-contiguous inputs, and bad inputs (ValueError, never a crash or an out-of-bounds write);
multi_hot_csr and flatten_sequences against the reference, with their errors.
"""
import inspect

import numpy as np
import pytest
import scipy.sparse as sp

from fastnn._kernels import _reference as R
from fastnn._kernels import bag_of_words as BW, sparse as C

from .conftest import assert_twin, fd_gradient, tol

ACTIVATIONS = ["linear", "relu", "sigmoid", "tanh", "softmax"]
KERNELS = ["csr_dense_forward", "csr_dense_backward", "multi_hot_csr", "flatten_sequences"]


def assert_close(actual, expected, **kw):
    """Compiled vs reference with the per-dtype tolerances (tol) unless given."""
    actual = np.asarray(actual)
    np.testing.assert_allclose(actual, expected, **(kw or tol(actual.dtype)))


def _csr(n_rows, n_cols, density, dtype, index_dtype=np.int32, seed=0, empty_rows=(0, 3)):
    """A canonical random CSR matrix with some empty rows, as (indptr, indices, data, dense)."""
    rng = np.random.default_rng(seed)
    dense = np.where(rng.random((n_rows, n_cols)) < density, rng.standard_normal((n_rows, n_cols)), 0.0)
    dense[list(empty_rows)] = 0
    m = sp.csr_matrix(dense.astype(dtype))
    return m.indptr.astype(index_dtype), m.indices.astype(index_dtype), m.data, m.toarray()


def _dense_act(z, activation):
    return R.activation_forward(z.copy(), activation)


def _rows(kind, n_rows, seed=1):
    if kind == "all":
        return None
    rng = np.random.default_rng(seed)
    if kind == "empty":
        return np.zeros(0, dtype=np.intp)
    rows = rng.integers(0, n_rows, n_rows + 7)  # shuffled, with repeats
    rows[:3] = [0, 3, 0]  # empty rows, twice
    return rows.astype(np.intp)


def _selected(dense, rows):
    return dense if rows is None else dense[rows]


# ------------------------------------------------------------------ API
@pytest.mark.parametrize("name", KERNELS)
def test_compiled_signature_matches_reference(name):
    assert inspect.signature(getattr(BW if name in ("multi_hot_csr", "flatten_sequences") else C, name)) == \
        inspect.signature(getattr(R, name))


# ------------------------------------------------------------------ forward
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("rows_kind", ["all", "subset", "empty"])
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
def test_forward_matches_reference_and_dense(dtype, n_threads, activation, rows_kind, index_dtype):
    indptr, indices, data, dense = _csr(40, 23, 0.2, dtype, index_dtype)
    rng = np.random.default_rng(2)
    W = rng.standard_normal((23, 7)).astype(dtype)
    b = rng.standard_normal(7).astype(dtype)
    rows = _rows(rows_kind, 40)
    got = C.csr_dense_forward(indptr, indices, data, W, b, activation, rows=rows, n_threads=n_threads)
    ref = R.csr_dense_forward(indptr, indices, data, W, b, activation, rows=rows)
    assert_twin(got, ref, dtype)
    expected = _dense_act(_selected(dense, rows).astype(np.float64) @ W + b, activation)
    assert_close(got, expected.astype(dtype), rtol=1e-5 if dtype == np.float32 else 1e-12,
                 atol=1e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("units", [1, 8, 16, 37, 70])  # scalar, one vector, two, a ragged last vector, >64
def test_forward_linear_matches_reference_to_rounding(dtype, units):
    indptr, indices, data, _ = _csr(50, 30, 0.3, dtype)
    W = np.random.default_rng(3).standard_normal((30, units)).astype(dtype)
    rows = _rows("subset", 50)
    got = C.csr_dense_forward(indptr, indices, data, W, None, rows=rows, n_threads=1)
    ref = R.csr_dense_forward(indptr, indices, data, W, None, rows=rows)
    # The same terms; the compiled float32 loop sums even and odd k apart with FMAs, so the
    # two differ by at most a few roundings of the sum of |terms| (standard error analysis).
    magnitude = R.csr_dense_forward(indptr, np.abs(indices), np.abs(data), np.abs(W), None, rows=rows)
    assert np.all(np.abs(got - ref) <= 4 * np.finfo(dtype).eps * magnitude)


def test_forward_is_independent_of_thread_count(dtype):
    # big enough (B*O*nnz/row > SERIAL_WORK_THRESHOLD) for the threaded path
    indptr, indices, data, _ = _csr(600, 300, 0.05, dtype, seed=4)
    rng = np.random.default_rng(5)
    W = rng.standard_normal((300, 20)).astype(dtype)
    b = rng.standard_normal(20).astype(dtype)
    rows = rng.permutation(600)[:512].astype(np.intp)
    one = C.csr_dense_forward(indptr, indices, data, W, b, "relu", rows=rows, n_threads=1)
    for nt in (2, 3):
        np.testing.assert_array_equal(C.csr_dense_forward(indptr, indices, data, W, b, "relu", rows=rows,
                                                          n_threads=nt), one)


def test_forward_writes_into_out_and_accepts_list_rows(dtype):
    indptr, indices, data, dense = _csr(10, 6, 0.5, dtype)
    W = np.ones((6, 3), dtype)
    out = np.full((3, 3), np.nan, dtype)
    res = C.csr_dense_forward(indptr, indices, data, W, None, rows=[2, 2, 9], out=out)
    assert res is out
    assert_close(out, dense[[2, 2, 9]] @ W)


def test_forward_unsorted_and_duplicate_indices_sum_like_scipy(dtype):
    # a non-canonical CSR matrix: row 0 has columns [4, 1, 4], row 1 [2, 0]
    indptr = np.array([0, 3, 5, 5], np.int32)
    indices = np.array([4, 1, 4, 2, 0], np.int32)
    data = np.array([1, 2, 3, 4, 5], dtype)
    W = np.arange(15, dtype=dtype).reshape(5, 3)
    X = sp.csr_matrix((data, indices, indptr), shape=(3, 5))
    got = C.csr_dense_forward(indptr, indices, data, W, None)
    assert_close(got, X.toarray() @ W)


def test_forward_readonly_and_noncontiguous_inputs(dtype):
    indptr, indices, data, dense = _csr(30, 12, 0.3, dtype)
    rng = np.random.default_rng(6)
    W = np.asfortranarray(rng.standard_normal((12, 5)).astype(dtype))  # not C-contiguous: copied
    b = rng.standard_normal(10).astype(dtype)[::2]                     # strided: copied
    rows = np.arange(30, dtype=np.intp)[::-2]
    data_strided = np.repeat(data, 2)[::2]
    for a in (indptr, indices, data, W, rows):
        a.flags.writeable = False
    got = C.csr_dense_forward(indptr, indices, data_strided, W, b, "tanh", rows=rows)
    assert_close(got, R.csr_dense_forward(indptr, indices, data, np.ascontiguousarray(W), b, "tanh", rows=rows))


def test_forward_mixed_index_dtypes_and_other_row_dtypes(dtype):
    indptr, indices, data, dense = _csr(20, 9, 0.3, dtype)
    W = np.random.default_rng(7).standard_normal((9, 4)).astype(dtype)
    rows = np.array([5, 1, 19], dtype=np.int16)
    got = C.csr_dense_forward(indptr.astype(np.int64), indices.astype(np.uint16), data, W, None, rows=rows)
    assert_close(got, dense[rows] @ W)


# ------------------------------------------------------------------ backward
@pytest.mark.parametrize("rows_kind", ["all", "subset", "empty"])
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
@pytest.mark.parametrize("units", [1, 16, 21])
def test_backward_matches_reference_and_dense(dtype, n_threads, rows_kind, index_dtype, units):
    indptr, indices, data, dense = _csr(40, 23, 0.2, dtype, index_dtype)
    rows = _rows(rows_kind, 40)
    B = 40 if rows is None else rows.shape[0]
    rng = np.random.default_rng(8)
    dZ = rng.standard_normal((B, units)).astype(dtype)
    dW0 = rng.standard_normal((23, units)).astype(dtype)  # backward ACCUMULATES
    db0 = rng.standard_normal(units).astype(dtype)
    dW, db = dW0.copy(), db0.copy()
    C.csr_dense_backward(indptr, indices, data, dZ, dW, db, rows=rows, n_threads=n_threads)
    dW_ref, db_ref = dW0.copy(), db0.copy()
    R.csr_dense_backward(indptr, indices, data, dZ, dW_ref, db_ref, rows=rows)
    assert_twin(dW, dW_ref, dtype)
    assert_twin(db, db_ref, dtype)
    X = _selected(dense, rows).astype(np.float64)
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-12}
    assert_close(dW, (dW0 + X.T @ dZ).astype(dtype), **tol)
    assert_close(db, (db0 + dZ.sum(axis=0, dtype=np.float64)).astype(dtype), **tol)


def test_backward_without_bias(dtype):
    indptr, indices, data, dense = _csr(15, 8, 0.4, dtype)
    dZ = np.random.default_rng(9).standard_normal((15, 3)).astype(dtype)
    dW = np.zeros((8, 3), dtype)
    C.csr_dense_backward(indptr, indices, data, dZ, dW, None)
    assert_close(dW, dense.T @ dZ)


@pytest.mark.parametrize("sorted_rows", [True, False], ids=["canonical", "unsorted-duplicates"])
def test_backward_is_bitwise_independent_of_thread_count(dtype, sorted_rows):
    indptr, indices, data, _ = _csr(700, 300, 0.05, dtype, seed=10)
    if not sorted_rows:  # reverse every row and repeat one column: exercises the filtering path
        for s in range(700):
            k0, k1 = indptr[s], indptr[s + 1]
            indices[k0:k1] = indices[k0:k1][::-1]
            data[k0:k1] = data[k0:k1][::-1]
        indices[indptr[5]] = indices[indptr[5] + 1]
    rng = np.random.default_rng(11)
    rows = rng.permutation(700)[:512].astype(np.intp)
    dZ = rng.standard_normal((512, 16)).astype(dtype)
    results = []
    for nt in (1, 2, 3, 5):
        dW = np.zeros((300, 16), dtype)
        db = np.zeros(16, dtype)
        C.csr_dense_backward(indptr, indices, data, dZ, dW, db, rows=rows, n_threads=nt)
        results.append((dW, db))
    for dW, db in results[1:]:
        np.testing.assert_array_equal(dW, results[0][0])
        np.testing.assert_array_equal(db, results[0][1])
    dW_ref = np.zeros((300, 16), dtype)
    R.csr_dense_backward(indptr, indices, data, dZ, dW_ref, None, rows=rows)
    # the reference adds the same terms in the same order (np.add.at is unbuffered); the compiled
    # float32 loop fuses each multiply-add (FMA), so allow a few roundings of the sum of |terms|
    magnitude = np.zeros((300, 16), dtype)
    R.csr_dense_backward(indptr, indices, np.abs(data), np.abs(dZ), magnitude, None, rows=rows)
    assert np.all(np.abs(results[0][0] - dW_ref) <= 4 * np.finfo(dtype).eps * magnitude)


def test_backward_readonly_inputs(dtype):
    indptr, indices, data, dense = _csr(25, 10, 0.3, dtype)
    rows = np.array([3, 7, 7, 24, 0], np.intp)
    dZ = np.random.default_rng(12).standard_normal((5, 4)).astype(dtype)
    for a in (indptr, indices, data, rows, dZ):
        a.flags.writeable = False
    dW = np.zeros((10, 4), dtype)
    db = np.zeros(4, dtype)
    C.csr_dense_backward(indptr, indices, data, dZ, dW, db, rows=rows)
    assert_close(dW, dense[rows].T @ dZ)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_weight_and_bias_gradients_match_finite_differences(activation):
    """d/dW and d/db of sum(csr_dense_forward(...) * G), float64, 4th-order central differences."""
    indptr, indices, data, _ = _csr(12, 7, 0.35, np.float64, seed=13)
    rng = np.random.default_rng(14)
    W = rng.standard_normal((7, 4)) * 0.5
    b = rng.standard_normal(4) * 0.5
    rows = np.array([1, 5, 5, 11, 0, 7], np.intp)
    G = rng.standard_normal((6, 4))

    def objective():
        return float(np.sum(C.csr_dense_forward(indptr, indices, data, W, b, activation, rows=rows) * G))

    Y = C.csr_dense_forward(indptr, indices, data, W, b, activation, rows=rows)
    dZ = R.activation_backward(G, Y, activation)
    dW = np.zeros_like(W)
    db = np.zeros_like(b)
    C.csr_dense_backward(indptr, indices, data, dZ, dW, db, rows=rows, n_threads=2)
    assert_close(dW, fd_gradient(objective, W), rtol=1e-7, atol=1e-9)
    assert_close(db, fd_gradient(objective, b), rtol=1e-7, atol=1e-9)


# ------------------------------------------------------------------ bad inputs
def _bad_case(dtype=np.float32):
    indptr, indices, data, _ = _csr(10, 6, 0.5, dtype, empty_rows=())
    W = np.ones((6, 3), dtype)
    return indptr, indices, data, W


@pytest.mark.parametrize("value", [6, 7, 2**31 - 1, -1], ids=["I", "I+1", "int32max", "negative"])
def test_out_of_range_index_raises_and_writes_nothing(value):
    indptr, indices, data, W = _bad_case()
    indices = indices.copy()
    assert indptr[5] > indptr[4]
    indices[indptr[5] - 1] = value  # the last stored value of row 4
    with pytest.raises(ValueError, match=r"argument `indices` must hold column ids in \[0, 6\).*row 4"):
        C.csr_dense_forward(indptr, indices, data, W, None, n_threads=2)
    dW = np.zeros((6, 3), np.float32)
    db = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match=r"column ids in \[0, 6\)"):
        C.csr_dense_backward(indptr, indices, data, np.ones((3, 3), np.float32), dW, db, rows=[0, 4, 9])
    assert not dW.any() and not db.any()  # checked before anything is written
    # only selected rows are read, so a selection that avoids row 4 is fine
    C.csr_dense_forward(indptr, indices, data, W, None, rows=[0, 9])


@pytest.mark.parametrize("rows", [[0, 10], [-1], [3, 2**40]])
def test_out_of_range_row_raises(rows):
    indptr, indices, data, W = _bad_case()
    with pytest.raises(ValueError, match=r"argument `rows` must hold row ids in \[0, 10\)"):
        C.csr_dense_forward(indptr, indices, data, W, None, rows=np.array(rows, np.int64))
    dW = np.zeros((6, 3), np.float32)
    with pytest.raises(ValueError, match=r"argument `rows`"):
        C.csr_dense_backward(indptr, indices, data, np.ones((len(rows), 3), np.float32), dW, None,
                             rows=np.array(rows, np.int64))
    assert not dW.any()


@pytest.mark.parametrize("corrupt", ["decreasing", "beyond_nnz", "negative"])
def test_malformed_indptr_raises(corrupt):
    indptr, indices, data, W = _bad_case()
    indptr = indptr.copy()
    if corrupt == "decreasing":
        indptr[5] = indptr[4] - 1
    elif corrupt == "beyond_nnz":
        indptr[-1] = indices.shape[0] + 100
    else:
        indptr[0] = -5
    with pytest.raises(ValueError, match=r"argument `indptr` must be non-decreasing"):
        C.csr_dense_forward(indptr, indices, data, W, None)
    with pytest.raises(ValueError, match=r"argument `indptr`"):
        C.csr_dense_backward(indptr, indices, data, np.ones((10, 3), np.float32), np.zeros((6, 3), np.float32),
                             None)


def test_bad_shapes_and_dtypes_raise():
    indptr, indices, data, W = _bad_case()
    f = C.csr_dense_forward
    with pytest.raises(ValueError, match=r"argument `W` must be a 2-D array"):
        f(indptr, indices, data, W[0], None)
    with pytest.raises(ValueError, match=r"argument `b` must have shape \(3,\)"):
        f(indptr, indices, data, W, np.ones(4, np.float32))
    with pytest.raises(ValueError, match=r"argument `data` must have dtype float32"):
        f(indptr, indices, data.astype(np.float64), W, None)
    with pytest.raises(ValueError, match=r"arguments `indices` and `data` must have the same length"):
        f(indptr, indices[:-1], data, W, None)
    with pytest.raises(ValueError, match=r"argument `indices` must be a 1-D integer array"):
        f(indptr, indices.astype(np.float32), data, W, None)
    with pytest.raises(ValueError, match=r"argument `indptr` must be a 1-D integer array"):
        f(indptr.reshape(1, -1), indices, data, W, None)
    with pytest.raises(ValueError, match=r"argument `rows` must be None or a 1-D integer array"):
        f(indptr, indices, data, W, None, rows=np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"Unknown activation"):
        f(indptr, indices, data, W, None, "swish")
    with pytest.raises(ValueError, match=r"argument `out` must be an array of shape \(10, 3\)"):
        f(indptr, indices, data, W, None, out=np.zeros((10, 4), np.float32))
    g = C.csr_dense_backward
    dZ = np.ones((10, 3), np.float32)
    with pytest.raises(ValueError, match=r"argument `dZ` must have shape \(B, 3\)"):
        g(indptr, indices, data, np.ones((10, 2), np.float32), np.zeros((6, 3), np.float32), None)
    with pytest.raises(ValueError, match=r"argument `dZ` must have shape \(10, 3\)"):
        g(indptr, indices, data, np.ones((9, 3), np.float32), np.zeros((6, 3), np.float32), None)
    with pytest.raises(ValueError, match=r"argument `dW` must be a float32 or float64 array of shape \(I, O\)"):
        g(indptr, indices, data, dZ, np.zeros(18, np.float32), None)
    readonly = np.zeros((6, 3), np.float32)
    readonly.flags.writeable = False
    with pytest.raises(ValueError, match=r"argument `dW` is updated in place"):
        g(indptr, indices, data, dZ, readonly, None)
    with pytest.raises(ValueError, match=r"argument `db` must be None or a writeable"):
        g(indptr, indices, data, dZ, np.zeros((6, 3), np.float32), np.zeros(3, np.float64))
    with pytest.raises(ValueError, match=r"argument `dZ` must have dtype float32"):
        g(indptr, indices, data, dZ.astype(np.float64), np.zeros((6, 3), np.float32), None)
    with pytest.raises(ValueError, match=r"column ids in \[0, 5\)"):  # dW has fewer rows than the columns used
        g(indptr, indices, data, dZ, np.zeros((5, 3), np.float32), None)


def test_zero_sized_inputs():
    indptr = np.zeros(4, np.int32)
    empty = np.zeros(0, np.int32)
    W = np.zeros((0, 3), np.float32)
    out = C.csr_dense_forward(indptr, empty, np.zeros(0, np.float32), W, np.ones(3, np.float32))
    np.testing.assert_array_equal(out, np.ones((3, 3), np.float32))
    dW = np.zeros((0, 3), np.float32)
    db = np.zeros(3, np.float32)
    C.csr_dense_backward(indptr, empty, np.zeros(0, np.float32), np.ones((3, 3), np.float32), dW, db)
    np.testing.assert_array_equal(db, [3, 3, 3])


# ------------------------------------------------------------------ multi_hot_csr
def _sequences(n, vocab, seed, max_len=40):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, max_len, n)
    lengths[:2] = 0
    tokens = rng.integers(0, vocab, int(lengths.sum()))
    return lengths, tokens


@pytest.mark.parametrize("vocab", [1, 63, 64, 1000, 2**31 - 1], ids=["1", "63", "64", "1000", "int32max"])
def test_multi_hot_csr_matches_reference(n_threads, vocab):
    lengths, tokens = _sequences(3000, vocab, seed=15)
    if vocab > 1000:  # ids spread over a huge range: the sorting path, plus a small-span row
        tokens[:5] = [vocab - 1, 0, 7, 7, vocab - 1]
    indptr, indices = BW.multi_hot_csr(lengths, tokens, vocab, n_threads=n_threads)
    ref_ptr, ref_ind = R.multi_hot_csr(lengths, tokens, vocab)
    assert indptr.dtype == np.int64 and indices.dtype == np.int32
    np.testing.assert_array_equal(indptr, ref_ptr)
    np.testing.assert_array_equal(indices, ref_ind)
    dense = np.zeros((3000, min(vocab, 1000)), bool)
    if vocab <= 1000:
        rows = np.repeat(np.arange(3000), lengths)
        dense[rows, tokens] = True
        np.testing.assert_array_equal(sp.csr_matrix((np.ones(indices.size, bool), indices, indptr),
                                                    shape=dense.shape).toarray(), dense)


def test_multi_hot_csr_long_rows_and_input_dtypes():
    lengths = np.array([5000, 3, 0, 1], np.int32)
    rng = np.random.default_rng(16)
    tokens = rng.integers(0, 300, 5004).astype(np.int32)
    got = BW.multi_hot_csr(lengths, tokens, 300)
    ref = R.multi_hot_csr(lengths, tokens, 300)
    np.testing.assert_array_equal(got[0], ref[0])
    np.testing.assert_array_equal(got[1], ref[1])
    assert got[0][1] == 300 or got[0][1] == len(set(tokens[:5000].tolist()))


def test_multi_hot_csr_empty():
    for kernel in (BW.multi_hot_csr, R.multi_hot_csr):
        indptr, indices = kernel(np.zeros(0, np.int64), np.zeros(0, np.int64), 10)
        np.testing.assert_array_equal(indptr, [0])
        assert indices.size == 0
        indptr, indices = kernel(np.zeros(3, np.int64), np.zeros(0, np.int64), 10)
        np.testing.assert_array_equal(indptr, [0, 0, 0, 0])


@pytest.mark.parametrize("bad", [-1, 10, 2**40])
def test_multi_hot_csr_out_of_range_names_sequence_and_value(n_threads, bad):
    lengths = np.array([3, 0, 4, 2], np.int64)
    tokens = np.array([1, 2, 3, 4, 5, bad, 6, bad, 0], np.int64)
    for kernel in (BW.multi_hot_csr, R.multi_hot_csr):
        with pytest.raises(ValueError, match=rf"sequence 2 contains the token id {bad}, outside \[0, 10\)"):
            kernel(lengths, tokens, 10, n_threads=n_threads)


@pytest.mark.parametrize("args, message", [
    ((np.array([2, 2]), np.arange(3), 10), r"the sum of `lengths` \(4\) must equal the number of tokens \(3\)"),
    ((np.array([2, -1]), np.arange(1), 10), r"argument `lengths` must be >= 0"),
    ((np.array([1.0]), np.arange(1), 10), r"argument `lengths` must be a 1-D integer array"),
    ((np.array([1]), np.array([0.5]), 10), r"argument `tokens` must be a 1-D integer array"),
    ((np.array([1]), np.arange(1), 0), r"argument `num_tokens` must be an integer in \[1, 2\*\*31 - 1\]"),
    ((np.array([1]), np.arange(1), 2**31), r"argument `num_tokens`"),
])
def test_multi_hot_csr_bad_arguments(args, message):
    for kernel in (BW.multi_hot_csr, R.multi_hot_csr):
        with pytest.raises(ValueError, match=message):
            kernel(*args)


# ------------------------------------------------------------------ flatten_sequences
def _flatten_cases():
    rng = np.random.default_rng(17)
    ragged = [rng.integers(0, 50, n).tolist() for n in rng.integers(0, 20, 200)]
    return {
        "lists": ragged,
        "object-array": np.array(ragged + [[1]], dtype=object)[:-1],
        "tuples": [tuple(s) for s in ragged],
        "arrays": [np.array(s, dtype=np.int32) for s in ragged],
        "numpy-scalars-and-whole-floats": [[np.int64(3), np.uint8(4), 5.0, np.float32(6.0)], [2**62]],
        "iterables": [range(3), iter([4, 5])],
        "2d-array": rng.integers(0, 9, (6, 5)),
        "2d-float-array": rng.integers(0, 9, (4, 3)).astype(np.float64),
        "empty": [],
        "empty-sequences": [[], (), np.zeros(0, np.int64)],
    }


@pytest.mark.parametrize("case", list(_flatten_cases()))
def test_flatten_sequences_matches_reference(case):
    seqs = _flatten_cases()[case]
    lengths, tokens = BW.flatten_sequences(seqs)
    ref_lengths, ref_tokens = R.flatten_sequences(_flatten_cases()[case])  # fresh iterators
    assert lengths.dtype == np.int64 and tokens.dtype == np.int64
    np.testing.assert_array_equal(lengths, ref_lengths)
    np.testing.assert_array_equal(tokens, ref_tokens)


@pytest.mark.parametrize("seqs, error, message", [
    ([[1, 2], [3, 2.5]], ValueError, r"sequence 1 contains the non-integer value 2.5"),
    ([[1, float("nan")]], ValueError, r"sequence 0 contains the non-integer value nan"),
    ([[1], ["the"]], TypeError, r"sequence 1 contains 'the' \(of type str\)"),
    ([[1], [None]], TypeError, r"sequence 1 contains None"),
    ([[True, 1]], TypeError, r"sequence 0 contains the boolean True"),
    ([[1, [2, 3]]], ValueError, r"sequence 0 is nested more than one level deep"),
    ([[1], np.zeros((2, 2), int)], ValueError, r"sequence 1 is nested more than one level deep"),
    ([[1], np.array([0.5])], ValueError, r"sequence 1 contains the non-integer value 0.5"),
    ([[1], np.array([True])], TypeError, r"sequence 1 is a boolean array"),
    ([[1], 7], TypeError, r"sequence 1 is 7 \(of type int\), not a sequence of token ids"),
    ([[1], "abc"], TypeError, r"sequence 1 is 'abc'"),
    ([[2**64]], ValueError, r"sequence 0 contains the token id 18446744073709551616, which does not fit in int64"),
    ("abc", TypeError, r"argument `sequences` must be a list of sequences"),
    (5, TypeError, r"argument `sequences` must be a list of sequences"),
    (np.arange(4), ValueError, r"a 1-D array is one sequence"),
    (np.zeros((2, 2, 2), int), ValueError, r"must be a 2-D array \(S, L\)"),
    (np.array([[1.0, 2.5]]), ValueError, r"sequence 0 contains the non-integer value 2.5"),
    (np.array([["a"]]), TypeError, r"must hold integer token ids"),
])
def test_flatten_sequences_errors_name_the_sequence(seqs, error, message):
    for kernel in (BW.flatten_sequences, R.flatten_sequences):
        with pytest.raises(error, match=message):
            kernel(seqs)
