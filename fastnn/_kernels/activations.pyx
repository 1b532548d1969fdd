"""Activations: forward and backward (compiled twin of _reference).

Dimension legend: B rows, O units (any trailing shape for the elementwise
activations; softmax works on rows of a 2-D array).
Threads: rows (or flat element chunks) are split statically between threads;
every element is computed independently, so results do not depend on the
thread count.
"""
import numpy as np

from cython.parallel cimport prange

from fastnn.utils.validation import describe, shape_str

from fastnn._kernels._typedefs cimport floating
from fastnn._kernels._openmp cimport effective_n_threads, threads_for_work
from fastnn._kernels._checks cimport float_array, out_array, same_shape
from fastnn._kernels._loops cimport (ACT_SOFTMAX, act_code, act_elementwise, act_backward_elementwise,
                                     fastnn_math_isa, fastnn_math_set_isa, softmax_rows, softmax_backward_rows)

cdef enum:
    CHUNK = 4096  # elements per parallel chunk of an elementwise activation


cdef void _forward(floating[::1] out, const floating[::1] X, Py_ssize_t O, int act, int nt) noexcept:
    cdef Py_ssize_t N = X.shape[0]
    if N == 0:
        return
    with nogil:
        _forward_loop(&out[0], &X[0], N, O, act, nt)


cdef void _forward_loop(floating* out, const floating* X, Py_ssize_t N, Py_ssize_t O, int act,
                        int nt) noexcept nogil:
    cdef Py_ssize_t n_chunks, c, B
    if act == ACT_SOFTMAX:
        B = N // O
        if nt == 1:
            softmax_rows(out, X, 0, B, O)
        else:
            for c in prange(B, num_threads=nt, schedule="static"):
                softmax_rows(out, X, c, c + 1, O)
        return
    n_chunks = (N + CHUNK - 1) // CHUNK
    if nt == 1:
        act_elementwise(out, X, 0, N, act)
    else:
        for c in prange(n_chunks, num_threads=nt, schedule="static"):
            act_elementwise(out, X, c * CHUNK, min((c + 1) * CHUNK, N), act)


cdef void _backward(floating[::1] out, const floating[::1] dY, const floating[::1] Y, Py_ssize_t O, int act,
                    int nt) noexcept:
    cdef Py_ssize_t N = dY.shape[0]
    if N == 0:
        return
    with nogil:
        _backward_loop(&out[0], &dY[0], &Y[0], N, O, act, nt)


cdef void _backward_loop(floating* out, const floating* dY, const floating* Y, Py_ssize_t N, Py_ssize_t O,
                         int act, int nt) noexcept nogil:
    cdef Py_ssize_t n_chunks, c, B
    if act == ACT_SOFTMAX:
        B = N // O
        if nt == 1:
            softmax_backward_rows(out, dY, Y, 0, B, O)
        else:
            for c in prange(B, num_threads=nt, schedule="static"):
                softmax_backward_rows(out, dY, Y, c, c + 1, O)
        return
    n_chunks = (N + CHUNK - 1) // CHUNK
    if nt == 1:
        act_backward_elementwise(out, dY, Y, 0, N, act)
    else:
        for c in prange(n_chunks, num_threads=nt, schedule="static"):
            act_backward_elementwise(out, dY, Y, c * CHUNK, min((c + 1) * CHUNK, N), act)


def activation_forward(X, activation, out=None, n_threads=None):
    """Y = act(X).  X (B, O) -> out (B, O); ``out`` may be ``X`` (in place)."""
    cdef int act = act_code(activation)
    X = float_array("activation_forward", "X", X, 2 if act == ACT_SOFTMAX else -1)
    out = out_array("activation_forward", "out", out, X.shape, X.dtype)
    cdef int nt = threads_for_work(effective_n_threads(n_threads), X.size * (8 if act != 1 else 1))
    cdef Py_ssize_t O = X.shape[X.ndim - 1]
    if X.dtype == np.float32:
        _forward[float](out.reshape(-1), X.reshape(-1), O, act, nt)
    else:
        _forward[double](out.reshape(-1), X.reshape(-1), O, act, nt)
    return out


def activation_backward(dY, Y, activation, out=None, n_threads=None):
    """dZ from dY and the activation's OUTPUT Y.  dY, Y (B, O) -> out (B, O)."""
    cdef int act = act_code(activation)
    dY = float_array("activation_backward", "dY", dY, 2 if act == ACT_SOFTMAX else -1)
    Y = float_array("activation_backward", "Y", Y, dY.ndim, dY.dtype)
    if Y.shape != dY.shape:
        raise ValueError(f"activation_backward: argument `Y` must have the shape of `dY`, "
                         f"{shape_str(dY.shape)}; received {describe(Y)}.")
    out = out_array("activation_backward", "out", out, dY.shape, dY.dtype)
    cdef int nt = threads_for_work(effective_n_threads(n_threads), dY.size * 2)
    cdef Py_ssize_t O = dY.shape[dY.ndim - 1]
    if dY.dtype == np.float32:
        _backward[float](out.reshape(-1), dY.reshape(-1), Y.reshape(-1), O, act, nt)
    else:
        _backward[double](out.reshape(-1), dY.reshape(-1), Y.reshape(-1), O, act, nt)
    return out


# ---------------------------------------------------------------- csrc/fastnn_math.h, for tests and benchmarks
# Private (not a kernel of _reference): tests/kernels/test_math.py compares the clones bit for bit
# through activation_forward, and bench/bench_kernels.py times each. The cap is a static of the
# header, so it acts on this module's copy only (activation_forward/backward), not on dense.pyx's
# or the engine's.
_MATH_ISAS = ("portable", "avx2", "avx512")


def _math_isa(level=None):
    """The clone this module's tanh and sigmoid run: 'portable', 'avx2' or 'avx512'.

    With ``level`` (one of those names), first cap it there: the result is the CPU's best clone
    at or below the cap, so check it before relying on it.
    """
    if level is not None:
        if level not in _MATH_ISAS:
            raise ValueError(f"_math_isa: argument `level` must be one of {_MATH_ISAS} or None; "
                             f"received {level!r}.")
        fastnn_math_set_isa(_MATH_ISAS.index(level))
    return _MATH_ISAS[fastnn_math_isa()]
