"""Malformed scipy.sparse inputs get a ValueError naming the problem before scipy's compiled code reads
them (an indptr entry past the stored values used to abort the process with vector::_M_default_append and
then a segmentation fault), in fit, evaluate, predict, validation_data and validation_split."""
import numpy as np
import pytest
import scipy.sparse as sp

from fastnn import Sequential
from fastnn.layers import Dense, Input


def _model():
    model = Sequential([Input((4,)), Dense(3, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    return model


def _broken(case):
    A = sp.csr_matrix(np.random.default_rng(0).random((64, 4)).astype(np.float32))
    if case == "indptr past the values":
        A.indptr[5] = A.indptr[4] + 1000
    elif case == "indptr decreasing":
        A.indptr[5] = A.indptr[4] - 1
    elif case == "indptr[0] not 0":
        A.indptr[0] = 1
    elif case == "indptr[-1] past nnz":
        A.indptr[-1] += 5
    elif case == "negative index":
        A.indices[3] = -1
    elif case == "index past the columns":
        A.indices[3] = 4
    elif case == "short indptr":
        A.indptr = A.indptr[:-1].copy()
    elif case == "csc row index":
        A = A.tocsc()
        A.indices[2] = 99
    elif case == "coo column":
        A = A.tocoo()
        A.col[2] = 9
    return A


CASES = {
    "indptr past the values": "`indptr` must not decrease",
    "indptr decreasing": "`indptr` must not decrease; received indptr\\[5\\]",
    "indptr[0] not 0": "`indptr\\[0\\]` must be 0",
    "indptr[-1] past nnz": "`indptr\\[-1\\]` = 261 is more than the 256 stored values",
    "negative index": "`indices` must lie in \\[0, 4\\).*received -1 at position 3",
    "index past the columns": "`indices` must lie in \\[0, 4\\).*received 4 at position 3",
    "short indptr": "`indptr` must have 65 entries",
    "csc row index": "CSC matrix: `indices` must lie in \\[0, 64\\)",
    "coo column": "COO matrix: `col` must lie in \\[0, 4\\)",
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_entry_point_names_the_problem(case):
    model, y = _model(), np.zeros(64, np.int64)
    calls = {
        "x": (lambda A: model.predict(A, verbose=0), lambda A: model.evaluate(A, y, verbose=0),
              lambda A: model.fit(A, y, verbose=0), lambda A: model.fit(A, y, validation_split=0.25, verbose=0),
              lambda A: model.train_on_batch(A, y)),
        "validation_data x": (lambda A: model.fit(np.zeros((64, 4), np.float32), y, validation_data=(A, y),
                                                  verbose=0),),
    }
    for name, fns in calls.items():
        for fn in fns:
            with pytest.raises(ValueError, match=f"Argument `{name}` is a malformed .*{CASES[case]}"):
                fn(_broken(case))


def test_a_well_formed_matrix_still_trains():
    model = _model()
    A = _broken("none")
    model.fit(A, np.zeros(64, np.int64), verbose=0)
    np.testing.assert_allclose(model.predict(A, verbose=0), model.predict(A.toarray(), verbose=0), rtol=1e-6)


@pytest.mark.parametrize("indices, indptr", [(np.int8, np.int32), (np.int64, np.int32), (np.uint16, np.uint16)])
def test_small_or_mixed_index_dtypes_reach_the_kernels_as_one_dtype(indices, indptr):
    """scipy keeps index arrays as given; the kernels take int32 or int64 of one dtype (int8 indices used to
    fail with the engine's internal message)."""
    model = _model()
    good = sp.csr_matrix(np.random.default_rng(0).random((16, 4)).astype(np.float32))
    odd = good.copy()
    odd.indices, odd.indptr = good.indices.astype(indices), good.indptr.astype(indptr)
    np.testing.assert_array_equal(model.predict(odd, verbose=0), model.predict(good, verbose=0))


def test_complex_sparse_values_are_refused():
    """Dense complex x is refused; sparse complex x lost its imaginary parts with only NumPy's ComplexWarning."""
    A = sp.csr_matrix(np.ones((8, 4), np.complex64))
    with pytest.raises(ValueError, match=r"`x` must hold real numbers; received a sparse matrix of dtype complex64"):
        _model().predict(A, verbose=0)
