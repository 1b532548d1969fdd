"""Sparse (CSR) inputs: conversion, the mostly-zeros check, and row selections.

A mini-batch of a CSR data set is passed to layers as ``CSRRows(matrix, rows)``:
the whole matrix plus the row ids, so that gathering a shuffled batch copies
nothing; the first ``Dense`` layer runs its sparse x dense kernel on it.
"""
import numpy as np

from fastnn.utils.validation import describe, shape_str

# A dense 2-D input with at most this fraction of non-zeros, and at least this many
# elements, runs on the sparse path (the IMDB tutorial's 25000 x 10000 0/1 matrix is
# about 1.2% non-zero; docs/keras_semantics.md#sparse-input).
SPARSE_DENSITY_THRESHOLD = 0.10
SPARSE_MIN_ELEMENTS = 1 << 20


def is_sparse(x):
    # Checked by module name first so that dense inputs never pay for importing scipy.sparse
    # (this runs on every predict call; docs/keras_semantics.md#predict-overhead).
    if not type(x).__module__.startswith("scipy.sparse"):
        return False
    import scipy.sparse as sp

    return sp.issparse(x)


class CSRRows:
    """Rows ``rows`` (None: all, in order) of a CSR matrix with float data."""

    __slots__ = ("matrix", "rows")

    def __init__(self, matrix, rows=None):
        self.matrix = matrix
        self.rows = rows

    @property
    def shape(self):
        n = self.matrix.shape[0] if self.rows is None else self.rows.shape[0]
        return (n, self.matrix.shape[1])

    @property
    def ndim(self):
        return 2

    def __len__(self):
        return self.shape[0]

    def toarray(self):
        m = self.matrix if self.rows is None else self.matrix[self.rows]
        return m.toarray()


def to_csr(x, name, dtype):
    """A canonical CSR copy (or view) of a scipy.sparse matrix: float ``dtype`` data, int32/int64 indices,
    sorted indices, no explicit duplicates. CSC/COO and friends are converted once, here."""
    import scipy.sparse as sp

    if x.ndim != 2:
        raise ValueError(f"Argument `{name}`: sparse inputs must be 2-D (samples, features); received "
                         f"shape {shape_str(x.shape)}.")
    check_structure(x, name)
    if x.dtype.kind not in "biuf":  # astype would drop imaginary parts with only NumPy's ComplexWarning
        raise ValueError(f"Argument `{name}` must hold real numbers; received a sparse matrix of dtype "
                         f"{x.dtype}.")
    m = x.tocsr() if x.format != "csr" else x
    if m.indices.dtype != m.indptr.dtype or m.indices.dtype not in (np.int32, np.int64):
        # The kernels take int32 or int64 index arrays of one dtype; scipy keeps int8 or mixed ones as given.
        m = sp.csr_matrix((m.data, m.indices.astype(np.int64), m.indptr.astype(np.int64)), shape=m.shape)
    if m.dtype != dtype:
        m = m.astype(dtype)
    if not m.has_canonical_format:
        m = m.copy() if m is x else m
        m.sum_duplicates()
    if m.data.size and not np.isfinite(m.data).all():
        raise ValueError(f"Argument `{name}` contains NaN or infinity. Clean or impute the data before training.")
    if not isinstance(m, sp.csr_matrix):
        m = sp.csr_matrix(m)
    return m


def check_structure(x, name):
    """Raise a ValueError naming the problem if a CSR, CSC or COO matrix's index arrays are malformed, before
    scipy's compiled code reads them (an `indptr` entry past the stored values made it abort the process)."""
    fmt = x.format
    if fmt in ("csr", "csc"):
        n_major, n_minor = x.shape if fmt == "csr" else x.shape[::-1]
        what, other = ("row", "columns") if fmt == "csr" else ("column", "rows")
        indptr, indices, data = np.asarray(x.indptr), np.asarray(x.indices), np.asarray(x.data)
        bad = f"Argument `{name}` is a malformed {fmt.upper()} matrix: "
        for label, a in (("indptr", indptr), ("indices", indices)):
            if a.ndim != 1 or a.dtype.kind not in "iu":
                raise ValueError(f"{bad}`{label}` must be a 1-D integer array; received {describe(a)}.")
        if data.ndim != 1 or data.shape[0] != indices.shape[0]:
            raise ValueError(f"{bad}`data` must be 1-D with one value per entry of `indices` "
                             f"({indices.shape[0]}); received {describe(data)}.")
        if indptr.shape[0] != n_major + 1:
            raise ValueError(f"{bad}`indptr` must have {n_major + 1} entries (one per {what}, plus one); "
                             f"received {indptr.shape[0]}.")
        if indptr[0] != 0:
            raise ValueError(f"{bad}`indptr[0]` must be 0; received {int(indptr[0])}.")
        steps = np.diff(indptr)
        if steps.size and steps.min() < 0:
            i = int(np.argmax(steps < 0))
            raise ValueError(f"{bad}`indptr` must not decrease; received indptr[{i + 1}] = {int(indptr[i + 1])} "
                             f"after indptr[{i}] = {int(indptr[i])}.")
        if indptr[-1] > indices.shape[0]:
            raise ValueError(f"{bad}`indptr[-1]` = {int(indptr[-1])} is more than the {indices.shape[0]} stored "
                             "values (`indices` and `data`).")
        _check_range(bad, "indices", indices[:int(indptr[-1])], n_minor, other)
    elif fmt == "coo":
        bad = f"Argument `{name}` is a malformed COO matrix: "
        row, col, data = np.asarray(x.row), np.asarray(x.col), np.asarray(x.data)
        if not (row.ndim == col.ndim == data.ndim == 1 and row.shape == col.shape == data.shape):
            raise ValueError(f"{bad}`row`, `col` and `data` must be 1-D of one length; received {describe(row)}, "
                             f"{describe(col)} and {describe(data)}.")
        _check_range(bad, "row", row, x.shape[0], "rows")
        _check_range(bad, "col", col, x.shape[1], "columns")


def _check_range(bad, label, a, n, what):
    if a.size and (a.min() < 0 or a.max() >= n):
        i = int(np.argmax((a < 0) | (a >= n)))
        raise ValueError(f"{bad}`{label}` must lie in [0, {n}) (the matrix has {n} {what}); received {int(a[i])} "
                         f"at position {i}.")


def maybe_sparsify(x):
    """A CSR version of a large, mostly-zero dense 2-D array, else None (checked once per call)."""
    if x.ndim != 2 or x.size < SPARSE_MIN_ELEMENTS:
        return None
    # Count in row blocks so a 2 GB float64 matrix never needs a same-size boolean temporary.
    nonzero = 0
    limit = SPARSE_DENSITY_THRESHOLD * x.size
    step = max(1, (1 << 22) // max(1, x.shape[1]))
    for start in range(0, x.shape[0], step):
        nonzero += int(np.count_nonzero(x[start:start + step]))
        if nonzero > limit:
            return None
    import scipy.sparse as sp

    return sp.csr_matrix(x)


def describe_sparse(x):
    return f"sparse matrix of shape {shape_str(x.shape)} with {x.nnz} stored values" if is_sparse(x) else describe(x)
