"""Malformed and unsuitable scipy.sparse inputs: fastnn names the problem before scipy's or its own compiled
code reads the structure (a bad indptr used to abort the process). The cases run in a child process, where a
crash is caught and pinned to its case (tests/bad_input/_harness.py)."""
import numpy as np
import pytest
import scipy.sparse as sp

from fastnn import Sequential
from fastnn.layers import BatchNormalization, Dense, Flatten, Input

from bad_input._harness import check_isolated, ids, run_isolated

N, F, C = 16, 4, 3
Y = np.arange(N) % C


def _model(first=None):
    model = Sequential([Input((F,))] + ([first] if first else []) + [Dense(C, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    return model


def _csr(rows=N, cols=F, fmt="csr", seed=0):
    dense = np.random.default_rng(seed).random((rows, cols)).astype(np.float32)
    dense[dense < 0.3] = 0
    return sp.csr_matrix(dense).asformat(fmt)


def _set(matrix, attr, index, value):
    getattr(matrix, attr)[index] = value
    return matrix


def _replace(matrix, attr, value):
    setattr(matrix, attr, value)
    return matrix


def predict(x):
    return _model().predict(x, verbose=0)


def fit(x, y=Y, **kwargs):
    return _model().fit(x, y, verbose=0, **kwargs)


def evaluate(x, y=Y):
    return _model().evaluate(x, y, verbose=0)



CASES = [
    ("indptr past the values", lambda: predict(_set(_csr(), "indptr", 5, 10 ** 6)), ValueError,
     r"`indptr` must not decrease"),
    ("indptr decreasing", lambda: fit(_set(_csr(), "indptr", 5, 0)), ValueError, r"`indptr` must not decrease"),
    ("indptr negative", lambda: evaluate(_set(_csr(), "indptr", 3, -7)), ValueError, r"`indptr`"),
    ("indptr[0] not 0", lambda: predict(_set(_csr(), "indptr", 0, 1)), ValueError, r"`indptr\[0\]` must be 0"),
    ("indptr[-1] past nnz", lambda: predict(_set(_csr(), "indptr", -1, 10 ** 9)), ValueError,
     r"`indptr\[-1\]` = 1000000000 is more than the \d+ stored values"),
    ("indptr short", lambda: predict(_replace(_csr(), "indptr", _csr().indptr[:-1].copy())), ValueError,
     r"`indptr` must have 17 entries"),
    ("indptr huge", lambda: predict(_set(_csr(), "indptr", -1, np.iinfo(np.int32).max)), ValueError,
     r"`indptr\[-1\]`"),
    ("index negative", lambda: predict(_set(_csr(), "indices", 2, -1)), ValueError,
     r"`indices` must lie in \[0, 4\).*-1 at position 2"),
    ("index past the columns", lambda: fit(_set(_csr(), "indices", 0, F)), ValueError,
     r"`indices` must lie in \[0, 4\).*received 4 at position 0"),
    ("index huge", lambda: predict(_set(_csr(), "indices", 1, 2 ** 30)), ValueError, r"`indices` must lie in"),
    ("indices shorter than data", lambda: predict(_replace(_csr(), "indices", _csr().indices[:-3].copy())),
     ValueError, r"indices|data"),
    ("csc bad row index", lambda: predict(_set(_csr(fmt="csc"), "indices", 0, 99)), ValueError,
     r"CSC matrix: `indices` must lie in \[0, 16\)"),
    ("coo bad column", lambda: predict(_set(_csr(fmt="coo"), "col", 0, 9)), ValueError,
     r"COO matrix: `col` must lie in \[0, 4\)"),
    ("coo negative row", lambda: predict(_set(_csr(fmt="coo"), "row", 0, -2)), ValueError, r"COO matrix: `row`"),
    ("wrong column count", lambda: predict(_csr(cols=F + 1)), ValueError,
     r"expects input of shape \(None, 4\); received .*\(16, 5\)"),
    ("NaN in the values", lambda: fit(_set(_csr(), "data", 3, np.nan)), ValueError, r"`x` contains NaN"),
    ("inf in the values", lambda: predict(_set(_csr(), "data", 0, np.inf)), ValueError,
     r"`x` contains NaN or infinity"),
    ("float indices", lambda: predict(_replace(_csr(), "indices", _csr().indices.astype(np.float64))), ValueError,
     r"`indices` must be a 1-D integer array; received array of shape \(\d+,\) and dtype float64"),
    ("2-D indptr", lambda: predict(_replace(_csr(), "indptr", _csr().indptr.reshape(1, -1))), ValueError,
     r"`indptr` must be a 1-D integer array"),
    ("complex values", lambda: predict(_csr().astype(np.complex64)), ValueError,
     r"`x` must hold real numbers; received a sparse matrix of dtype complex64"),
    ("no rows", lambda: predict(sp.csr_matrix((0, F), dtype=np.float32)), ValueError, r"non-empty"),
    ("first layer not Dense", lambda: _model(BatchNormalization()).predict(_csr(), verbose=0), ValueError,
     r"Sparse inputs need a model whose first layer is Dense"),
    ("mismatched lengths", lambda: fit(_csr(rows=N - 2)), ValueError, r"x sizes: 14, y sizes: 16"),
    ("bad validation_data", lambda: fit(_csr(), validation_data=(_set(_csr(), "indices", 1, 40), Y)), ValueError,
     r"validation_data x.*`indices` must lie in"),
    ("bad with validation_split", lambda: fit(_set(_csr(), "indptr", 5, 10 ** 6), validation_split=0.25),
     ValueError, r"`indptr` must not decrease"),
    ("sparse targets", lambda: fit(_csr(), y=sp.csr_matrix(np.eye(C)[Y])), ValueError,
     r"`y` is a scipy\.sparse matrix .*sparse inputs `x` only.*`y\.toarray\(\)`"),
    ("sparse sample_weight", lambda: fit(_csr(), sample_weight=sp.csr_matrix(np.ones((N, 1)))), ValueError,
     r"`sample_weight` is a scipy\.sparse matrix"),
    ("csr_array bad index", lambda: predict(_set(sp.csr_array(_csr()), "indices", 0, 77)), ValueError,
     r"`indices` must lie in \[0, 4\)"),
    ("into a Flatten model of another shape", lambda: Sequential([Input((2, 3)), Flatten(), Dense(C)]).predict(
        _csr(), verbose=0), ValueError, r"Flatten 'flatten.*' expects input of shape \(None, 2, 3\); received sparse "
                                        r"matrix of shape \(16, 4\)"),
    ("out-of-range labels", lambda: fit(_csr(), y=np.full(N, 7)), ValueError, r"label value of 7"),
]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return run_isolated(__name__, "CASES", CASES, tmp_path_factory.mktemp("sparse"))


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_bad_sparse_input(case, results):
    check_isolated(case, results)
