"""Dropout kernels: inverted dropout forward (mask + scale) and backward (compiled twin of _reference).

Dimension legend: N elements (any shape; the kernels work on the flat array).

The random numbers are an INPUT (U, uniform in [0, 1), drawn by the layer
from a NumPy Generator): the kernels stay deterministic, so
``set_random_seed`` makes a run bit-identical, and the twin can be fed the
very same numbers. Element i is kept iff U[i] < 1 - rate (compared in
double) and kept elements are multiplied by 1 / (1 - rate) -- "inverted"
dropout, as Keras 3's backends do (K3 backend/numpy/random.py ``dropout``:
``uniform < keep_prob``, ``inputs / keep_prob``). rate == 1 drops everything
(K3 returns zeros) without dividing by zero.
Threads: the flat array is cut into fixed chunks split statically between
threads; every element is independent, so results do not depend on the
thread count.
"""
import numpy as np

from cython.parallel cimport prange

from fastnn.utils.validation import describe, shape_str

from fastnn._kernels._typedefs cimport floating
from fastnn._kernels._openmp cimport effective_n_threads, threads_for_work
from fastnn._kernels._checks cimport float_array, out_array, real_number
from fastnn._kernels._loops_norm cimport dropout_backward_range, dropout_forward_range, dropout_scale

cdef enum:
    CHUNK = 4096  # elements per parallel chunk


cdef double _check_rate(str owner, object rate) except? -1:
    cdef double r = real_number(owner, "rate", rate)
    if r < 0.0 or r > 1.0:
        raise ValueError(f"{owner}: argument `rate` must be in [0, 1]; received {describe(rate)}.")
    return r


# The element loops live in _loops.pxd (dropout_forward_range / dropout_backward_range),
# shared with the fused engine (mlp.pyx).


cdef void _forward(floating[::1] out, unsigned char[::1] mask, const floating[::1] X, const floating[::1] U,
                   double rate, int nt) noexcept:
    cdef Py_ssize_t N = X.shape[0], c, n_chunks = (X.shape[0] + CHUNK - 1) // CHUNK
    cdef double keep = 1.0 - rate
    cdef floating scale = <floating>dropout_scale(rate)
    if N == 0:
        return
    with nogil:
        if nt == 1:
            dropout_forward_range(&out[0], &mask[0], &X[0], &U[0], 0, N, keep, scale)
        else:
            for c in prange(n_chunks, num_threads=nt, schedule="static"):
                dropout_forward_range(&out[0], &mask[0], &X[0], &U[0], c * CHUNK, min((c + 1) * CHUNK, N), keep,
                                      scale)


cdef void _backward(floating[::1] out, const floating[::1] dY, const unsigned char[::1] mask, double rate,
                    int nt) noexcept:
    cdef Py_ssize_t N = dY.shape[0], c, n_chunks = (dY.shape[0] + CHUNK - 1) // CHUNK
    cdef floating scale = <floating>dropout_scale(rate)
    if N == 0:
        return
    with nogil:
        if nt == 1:
            dropout_backward_range(&out[0], &dY[0], &mask[0], 0, N, scale)
        else:
            for c in prange(n_chunks, num_threads=nt, schedule="static"):
                dropout_backward_range(&out[0], &dY[0], &mask[0], c * CHUNK, min((c + 1) * CHUNK, N), scale)


def dropout_forward(X, U, rate, out=None, mask=None, n_threads=None):
    """Inverted dropout.  X (N...), U (N...) uniform in [0, 1), X's dtype -> (out (N...), mask (N...) uint8).

    mask = U < 1 - rate (in float64); out = X / (1 - rate) where mask, else 0.
    """
    cdef double r = _check_rate("dropout_forward", rate)
    X = float_array("dropout_forward", "X", X, -1)
    U = float_array("dropout_forward", "U", U, X.ndim, X.dtype)
    if U.shape != X.shape:
        raise ValueError(f"dropout_forward: argument `U` (the random numbers) must have the shape of `X`, "
                         f"{shape_str(X.shape)}; received {describe(U)}.")
    out = out_array("dropout_forward", "out", out, X.shape, X.dtype)
    mask = out_array("dropout_forward", "mask", mask, X.shape, np.uint8)
    cdef int nt = threads_for_work(effective_n_threads(n_threads), X.size)
    if X.dtype == np.float32:
        _forward[float](out.reshape(-1), mask.reshape(-1), X.reshape(-1), U.reshape(-1), r, nt)
    else:
        _forward[double](out.reshape(-1), mask.reshape(-1), X.reshape(-1), U.reshape(-1), r, nt)
    return out, mask


def dropout_backward(dY, mask, rate, out=None, n_threads=None):
    """dX of inverted dropout.  dY (N...), mask (N...) from dropout_forward -> out (N...) = dY / (1 - rate)
    where mask, else 0."""
    cdef double r = _check_rate("dropout_backward", rate)
    dY = float_array("dropout_backward", "dY", dY, -1)
    m = mask if isinstance(mask, np.ndarray) else np.asarray(mask)
    if m.dtype != np.uint8 and m.dtype != np.bool_:
        raise ValueError(f"dropout_backward: argument `mask` must be the uint8 (or bool) mask returned by "
                         f"dropout_forward; received {describe(mask)}.")
    if m.shape != dY.shape:
        raise ValueError(f"dropout_backward: argument `mask` must have the shape of `dY`, {shape_str(dY.shape)}; "
                         f"received {describe(mask)}.")
    m = np.ascontiguousarray(m).view(np.uint8)
    out = out_array("dropout_backward", "out", out, dY.shape, dY.dtype)
    cdef int nt = threads_for_work(effective_n_threads(n_threads), dY.size)
    if dY.dtype == np.float32:
        _backward[float](out.reshape(-1), dY.reshape(-1), m.reshape(-1), r, nt)
    else:
        _backward[double](out.reshape(-1), dY.reshape(-1), m.reshape(-1), r, nt)
    return out
