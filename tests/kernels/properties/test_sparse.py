"""CSR (multi-hot) kernels and the token-sequence helpers: compiled vs twin.

csr_dense_forward/backward over random CSR matrices (empty rows, repeated and unsorted column ids,
int32/int64 structure, any layout, selected rows with repeats), with NaN/inf values; a malformed
structure must be refused by both with a ValueError. multi_hot_csr and flatten_sequences must give
the same arrays, or the same exception class and message (both raise from _argchecks).
"""
import numpy as np
import pytest

pytest.importorskip("hypothesis", reason="the property tests need hypothesis (pip install '.[test]')")
from hypothesis import example, given, strategies as st  # noqa: E402

from ._props import (DTYPES, LAYOUT, SEEDS, THREADS, arrange, assert_same, both_refuse, compiled, dim,  # noqa: E402
                     prop_settings, same_outcome, twin, values)

KERNELS = ("csr_dense_forward", "csr_dense_backward", "multi_hot_csr", "flatten_sequences")
ACTIVATIONS = st.sampled_from(["linear", "relu", "sigmoid", "tanh", "softmax"])


def _csr(rng, S, I, density, index_dtype, dtype, special, sorted_cols):
    counts = rng.binomial(I, density, S) if I else np.zeros(S, int)
    indptr = np.zeros(S + 1, np.int64)
    np.cumsum(counts, out=indptr[1:])
    indices = np.concatenate([rng.choice(I, c, replace=rng.random() < 0.2) if c else np.zeros(0, int)
                              for c in counts]) if S else np.zeros(0, int)
    if sorted_cols and S:
        indices = np.concatenate([np.sort(indices[indptr[s]:indptr[s + 1]]) for s in range(S)])
    data = values(rng, (int(indptr[-1]),), dtype, special, extreme=False)
    return indptr.astype(index_dtype), indices.astype(index_dtype), data


CSR = dict(S=dim(40), I=st.one_of(st.integers(1, 60), st.integers(200, 400)), O=st.one_of(dim(20), st.integers(60, 90)),
           density=st.sampled_from([0.0, 0.05, 0.3, 1.0]), index_dtypes=st.sampled_from([("i4", "i4"), ("i8", "i8"),
                                                                                            ("i4", "i8"), ("u4", "u4")]),
           dtype=DTYPES, layouts=st.tuples(LAYOUT, LAYOUT, LAYOUT), special=st.sampled_from([0.0, 0.05, 0.3]),
           sorted_cols=st.booleans(), use_rows=st.booleans(), seed=SEEDS, n_threads=THREADS)


def _draw(S, I, O, density, index_dtypes, dtype, layouts, special, sorted_cols, use_rows, seed):
    rng = np.random.default_rng(seed)
    indptr, indices, data = _csr(rng, S, I, density, "i8", dtype, special, sorted_cols)
    indptr, indices = indptr.astype(index_dtypes[0]), indices.astype(index_dtypes[1])
    rows = rng.integers(0, S, int(rng.integers(0, 50))) if use_rows and S else None
    return rng, arrange(indptr, layouts[0]), arrange(indices, layouts[1]), arrange(data, layouts[2]), rows


def _bound(indptr, indices, data, W, rows):
    """sum_k |data_k| |W[indices_k]| per selected row and unit (the rounding bound of the row sums)."""
    import scipy.sparse as sp
    S = indptr.shape[0] - 1
    with np.errstate(all="ignore"):
        A = sp.csr_matrix((np.nan_to_num(np.abs(data.astype(np.float64)), posinf=0),
                           indices.astype(np.int64), indptr.astype(np.int64)), shape=(S, W.shape[0]))
        b = A @ np.nan_to_num(np.abs(W.astype(np.float64)), posinf=0)
    return b if rows is None else b[rows]


@prop_settings()
@given(act=ACTIVATIONS, bias=st.booleans(), **CSR)
def test_csr_dense_forward(act, bias, S, I, O, density, index_dtypes, dtype, layouts, special, sorted_cols, use_rows,
                           seed, n_threads):
    rng, indptr, indices, data, rows = _draw(S, I, O, density, index_dtypes, dtype, layouts, special, sorted_cols,
                                             use_rows, seed)
    W = values(rng, (I, O), dtype, special, extreme=False)
    b = values(rng, (O,), dtype, special / 4, extreme=False) if bias else None
    with np.errstate(all="ignore"):
        want = twin("csr_dense_forward")(indptr, indices, data, W, b, act, rows)
        got = compiled("csr_dense_forward")(indptr, indices, data, W, b, act, rows, n_threads=n_threads)
    bound = _bound(indptr, indices, data, W, rows)
    if act == "softmax":
        bound = bound.max(axis=1, keepdims=True, initial=0) * 2
    assert_same(got, want, dtype, bound=bound, what=f"csr_dense_forward {act}")


@prop_settings()
@given(bias=st.booleans(), **CSR)
def test_csr_dense_backward(bias, S, I, O, density, index_dtypes, dtype, layouts, special, sorted_cols, use_rows,
                            seed, n_threads):
    rng, indptr, indices, data, rows = _draw(S, I, O, density, index_dtypes, dtype, layouts, special, sorted_cols,
                                             use_rows, seed)
    B = S if rows is None else rows.shape[0]
    dZ = values(rng, (B, O), dtype, special, extreme=False)
    dW0, db0 = values(rng, (I, O), dtype), values(rng, (O,), dtype)
    dWc, dWr = dW0.copy(), dW0.copy()
    dbc, dbr = (db0.copy(), db0.copy()) if bias else (None, None)
    with np.errstate(all="ignore"):
        twin("csr_dense_backward")(indptr, indices, data, dZ, dWr, dbr, rows)
        compiled("csr_dense_backward")(indptr, indices, data, dZ, dWc, dbc, rows, n_threads=n_threads)
    # dW[i] adds data_k dZ[row] for every stored (row, i): bound by |X|^T |dZ|
    import scipy.sparse as sp
    with np.errstate(all="ignore"):
        A = sp.csr_matrix((np.nan_to_num(np.abs(data.astype(np.float64)), posinf=0), indices.astype(np.int64),
                           indptr.astype(np.int64)), shape=(S, I))
        A = A if rows is None else A[rows]
        bound = A.T @ np.nan_to_num(np.abs(dZ.astype(np.float64)), posinf=0) + np.abs(dW0)
    assert_same(dWc, dWr, dtype, bound=bound, what="dW")
    if bias:
        assert_same(dbc, dbr, dtype, bound=np.abs(dZ).sum(axis=0) + np.abs(db0), what="db")


@prop_settings(0.5)
@given(S=st.integers(1, 12), I=st.integers(1, 10), fault=st.sampled_from(["decreasing", "past_nnz", "negative",
                                                                           "column", "negative_column", "row"]),
       seed=SEEDS)
def test_a_malformed_csr_matrix_is_refused_by_both(S, I, fault, seed):
    rng = np.random.default_rng(seed)
    indptr, indices, data = _csr(rng, S, I, 0.5, "i8", np.float32, 0.0, True)
    rows = None
    s = int(rng.integers(1, S + 1))
    if fault == "decreasing":
        indptr[s] = indptr[s - 1] - 1
    elif fault == "past_nnz":
        indptr[s:] = indptr[-1] + 1000
    elif fault == "negative":
        indptr[s] = -5
    elif fault in ("column", "negative_column"):
        if not indices.size:
            return
        indices[int(rng.integers(0, indices.size))] = I + 3 if fault == "column" else -1
    else:
        rows = np.array([0, S])
    W, dZ = np.ones((I, 3), np.float32), np.ones((S if rows is None else 2, 3), np.float32)
    for kernel in (compiled, twin):
        with pytest.raises(ValueError, match="`(indptr|indices|rows)`"):
            kernel("csr_dense_forward")(indptr, indices, data, W, None, rows=rows)
        dW = np.zeros_like(W)
        with pytest.raises(ValueError, match="`(indptr|indices|rows)`"):
            kernel("csr_dense_backward")(indptr, indices, data, dZ, dW, None, rows=rows)
        assert not dW.any()  # refused before anything is written


@prop_settings(0.3)
@given(S=st.integers(1, 9), I=st.integers(1, 9), O=st.integers(2, 6), dtype=DTYPES,
       layout=st.sampled_from(["F", "strided", "reversed", "readonly"]), which=st.sampled_from(["out", "dW", "db"]))
def test_a_buffer_that_cannot_be_written_in_place_is_refused_by_both(S, I, O, dtype, layout, which):
    indptr, indices, data = _csr(np.random.default_rng(0), S, I, 0.5, "i8", dtype, 0.0, True)
    b = dict(out=np.zeros((S, O), dtype), dW=np.zeros((I, O), dtype), db=np.zeros(O, dtype))
    b[which] = arrange(b[which], layout)
    if b[which].flags.c_contiguous and b[which].flags.writeable:
        return
    if which == "out":
        both_refuse("csr_dense_forward", "out", indptr, indices, data, np.ones((I, O), dtype), None, out=b["out"])
    else:
        both_refuse("csr_dense_backward", which, indptr, indices, data, np.ones((S, O), dtype), b["dW"], b["db"])


@prop_settings()
@given(lengths=st.lists(dim(30), max_size=20), num_tokens=st.one_of(st.integers(1, 50), st.integers(1000, 10**6)),
       dtypes=st.tuples(st.sampled_from(["i4", "i8", "u2"]), st.sampled_from(["i4", "i8"])),
       out_of_range=st.sampled_from([0, 0, -1, 1]), seed=SEEDS, n_threads=THREADS)
def test_multi_hot_csr(lengths, num_tokens, dtypes, out_of_range, seed, n_threads):
    rng = np.random.default_rng(seed)
    lengths = np.array(lengths, dtype=dtypes[0])
    tokens = rng.integers(0, num_tokens, int(lengths.sum())).astype(dtypes[1])
    if out_of_range and tokens.size:
        tokens[int(rng.integers(0, tokens.size))] = -1 if out_of_range < 0 else num_tokens
    got, want = same_outcome(lambda: compiled("multi_hot_csr")(lengths, tokens, num_tokens, n_threads=n_threads),
                             lambda: twin("multi_hot_csr")(lengths, tokens, num_tokens))
    if isinstance(want, Exception):
        assert str(got) == str(want)
        return
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and np.array_equal(g, w)


class Iterable:
    """A sequence that is neither a list, a tuple nor an array: read through iter()."""

    def __init__(self, items):
        self.items = items

    def __iter__(self):
        return iter(self.items)

    def __repr__(self):
        return f"Iterable({self.items!r})"


_TOKEN = st.one_of(st.integers(-2**63, 2**63 - 1), st.integers(0, 10**4), st.floats(-1e4, 1e4),
                   st.sampled_from([float("nan"), float("inf"), 2.0**63, 1.5, True, "a", None, [1, 2]]),
                   st.integers(0, 100).map(np.int32), st.integers(0, 100).map(np.float64))
_SEQUENCE = st.one_of(st.lists(st.integers(0, 10**4), max_size=12), st.lists(_TOKEN, max_size=6),
                      st.lists(st.integers(0, 100), max_size=8).map(tuple),
                      st.lists(st.integers(0, 100), max_size=8).map(lambda s: np.array(s, dtype=np.int64)),
                      st.lists(st.integers(0, 100), max_size=8).map(lambda s: np.array(s, dtype=np.float32)),
                      st.lists(st.integers(0, 100), max_size=8).map(lambda s: Iterable(s)),
                      st.sampled_from([5, "abc", None]))


@prop_settings()
@given(sequences=st.one_of(st.lists(_SEQUENCE, max_size=8), st.lists(st.lists(st.integers(0, 10**6), max_size=9),
                                                                      max_size=30)),
       container=st.sampled_from(["list", "tuple", "object_array", "array2d"]), n_threads=THREADS)
@example(sequences=[[True], 5], container="list", n_threads=1)
@example(sequences=[[1.5], (2,), np.array([[1]])], container="list", n_threads=1)
# issue 15: the compiled kernel named a later non-list sequence before an earlier list's bad token
def test_flatten_sequences(sequences, container, n_threads):
    if container == "tuple":
        sequences = tuple(sequences)
    elif container == "object_array":
        arr = np.empty(len(sequences), dtype=object)
        arr[:] = [s for s in sequences] if sequences else []
        sequences = arr
    elif container == "array2d":
        width = 4
        sequences = np.array([[hash(repr(s)) % 1000] * width for s in sequences], dtype=np.int64).reshape(-1, width)
    got, want = same_outcome(lambda: compiled("flatten_sequences")(sequences, n_threads=n_threads),
                             lambda: twin("flatten_sequences")(sequences))
    if isinstance(want, Exception):
        assert str(got) == str(want)
        return
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and np.array_equal(g, w)
