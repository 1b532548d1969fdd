"""Activations: forward and backward (compiled twin of _reference).

Dimension legend: B rows, O units (any trailing shape for the elementwise
activations; softmax and log_softmax work on rows of a 2-D array).
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
from fastnn._kernels._loops_act cimport (ACT_ELU, ACT_RELU, act_is_row, act_needs_x, act_parse, fastnn_math_isa,
                                         fastnn_math_set_isa)
from fastnn._kernels._loops cimport act_backward_rows, act_backward_x, act_elementwise, act_rows

cdef enum:
    CHUNK = 4096  # elements per parallel chunk of an elementwise activation


cdef void _forward(floating[::1] out, const floating[::1] X, Py_ssize_t O, int act, const double* ap,
                   int nt) noexcept:
    cdef Py_ssize_t N = X.shape[0]
    if N == 0:
        return
    with nogil:
        _forward_loop(&out[0], &X[0], N, O, act, ap, nt)


cdef void _forward_loop(floating* out, const floating* X, Py_ssize_t N, Py_ssize_t O, int act, const double* ap,
                        int nt) noexcept nogil:
    cdef Py_ssize_t n_chunks, c, B
    if act_is_row(act):
        B = N // O
        if nt == 1:
            act_rows(out, X, 0, B, O, act)
        else:
            for c in prange(B, num_threads=nt, schedule="static"):
                act_rows(out, X, c, c + 1, O, act)
        return
    n_chunks = (N + CHUNK - 1) // CHUNK
    if nt == 1:
        act_elementwise(out, X, 0, N, act, ap)
    else:
        for c in prange(n_chunks, num_threads=nt, schedule="static"):
            act_elementwise(out, X, c * CHUNK, min((c + 1) * CHUNK, N), act, ap)


cdef void _backward(floating[::1] out, const floating[::1] dY, const floating[::1] Y, const floating[::1] X,
                    Py_ssize_t O, int act, const double* ap, int nt) noexcept:
    cdef Py_ssize_t N = dY.shape[0]
    if N == 0:
        return
    with nogil:
        _backward_loop(&out[0], &dY[0], &Y[0], &X[0], N, O, act, ap, nt)


cdef void _backward_loop(floating* out, const floating* dY, const floating* Y, const floating* X, Py_ssize_t N,
                         Py_ssize_t O, int act, const double* ap, int nt) noexcept nogil:
    cdef Py_ssize_t n_chunks, c, B
    if act_is_row(act):
        B = N // O
        if nt == 1:
            act_backward_rows(out, dY, Y, 0, B, O, act)
        else:
            for c in prange(B, num_threads=nt, schedule="static"):
                act_backward_rows(out, dY, Y, c, c + 1, O, act)
        return
    n_chunks = (N + CHUNK - 1) // CHUNK
    if nt == 1:
        act_backward_x(out, dY, X, Y, 0, N, act, ap)
    else:
        for c in prange(n_chunks, num_threads=nt, schedule="static"):
            act_backward_x(out, dY, X, Y, c * CHUNK, min((c + 1) * CHUNK, N), act, ap)


cdef inline Py_ssize_t _work(int act, Py_ssize_t n):
    """Rough cost in relu-elements, for the thread threshold: libm's erfc/exp cost ~20 relus each."""
    return n * (1 if act == ACT_RELU else (8 if act < ACT_ELU else 20))


def activation_forward(X, activation, out=None, n_threads=None):
    """Y = act(X).  X (B, O) -> out (B, O); ``out`` may be ``X`` (in place). ``activation``: a Keras name,
    or (name, *params) (_engine_plan.act_spec)."""
    cdef double ap[3]
    cdef int act = act_parse(activation, ap, "activation_forward")
    X = float_array("activation_forward", "X", X, 2 if act_is_row(act) else -1)
    out = out_array("activation_forward", "out", out, X.shape, X.dtype)
    cdef int nt = threads_for_work(effective_n_threads(n_threads), _work(act, X.size))
    cdef Py_ssize_t O = X.shape[X.ndim - 1]
    if X.dtype == np.float32:
        _forward[float](out.reshape(-1), X.reshape(-1), O, act, ap, nt)
    else:
        _forward[double](out.reshape(-1), X.reshape(-1), O, act, ap, nt)
    return out


def activation_backward(dY, Y, activation, X=None, out=None, n_threads=None):
    """dZ from dY, the activation's OUTPUT Y and, for the activations whose derivative needs it
    (_engine_plan.act_needs_x: all but linear, relu, sigmoid, tanh, softmax, log_softmax), its INPUT X.
    dY, Y, X (B, O) -> out (B, O)."""
    cdef double ap[3]
    cdef int act = act_parse(activation, ap, "activation_backward")
    dY = float_array("activation_backward", "dY", dY, 2 if act_is_row(act) else -1)
    Y = float_array("activation_backward", "Y", Y, dY.ndim, dY.dtype)
    if Y.shape != dY.shape:
        raise ValueError(f"activation_backward: argument `Y` must have the shape of `dY`, "
                         f"{shape_str(dY.shape)}; received {describe(Y)}.")
    if act_needs_x(act):
        if X is None:
            raise ValueError(f"activation_backward: argument `X` (the activation's input) is needed for "
                             f"{activation!r}; received None.")
        X = float_array("activation_backward", "X", X, dY.ndim, dY.dtype)
        if X.shape != dY.shape:
            raise ValueError(f"activation_backward: argument `X` must have the shape of `dY`, "
                             f"{shape_str(dY.shape)}; received {describe(X)}.")
    else:
        X = Y  # not read
    out = out_array("activation_backward", "out", out, dY.shape, dY.dtype)
    cdef int nt = threads_for_work(effective_n_threads(n_threads), _work(act, dY.size) * 2)
    cdef Py_ssize_t O = dY.shape[dY.ndim - 1]
    if dY.dtype == np.float32:
        _backward[float](out.reshape(-1), dY.reshape(-1), Y.reshape(-1), X.reshape(-1), O, act, ap, nt)
    else:
        _backward[double](out.reshape(-1), dY.reshape(-1), Y.reshape(-1), X.reshape(-1), O, act, ap, nt)
    return out


# ---------------------------------------------------------------- PReLU
def _prelu_args(owner, X, alpha, out):
    X = float_array(owner, "X", X, 2)
    alpha = float_array(owner, "alpha", alpha, 1, X.dtype)
    if alpha.shape[0] == 0 or X.shape[1] % alpha.shape[0]:
        raise ValueError(f"{owner}: argument `alpha` must be a 1-D array whose length divides the {X.shape[1]} "
                         f"features of X; received {describe(alpha)}.")
    return X, alpha, out_array(owner, "out", out, X.shape, X.dtype)


cdef void _prelu_fwd(floating[:, ::1] out, const floating[:, ::1] X, const floating[::1] alpha,
                     int nt) noexcept:
    cdef Py_ssize_t B = X.shape[0], n = X.shape[1], C = alpha.shape[0], r, j
    cdef floating x
    if B == 0:
        return
    with nogil:
        for r in prange(B, num_threads=nt, schedule="static"):
            for j in range(n):
                x = X[r, j]
                out[r, j] = x if x > 0 else alpha[j % C] * x


cdef void _prelu_bwd(floating[:, ::1] out, const floating[:, ::1] dY, const floating[:, ::1] X,
                     const floating[::1] alpha, floating* dalpha, double[::1] acc, int nt) noexcept:
    cdef Py_ssize_t B = X.shape[0], n = X.shape[1], C = alpha.shape[0], r, j
    cdef floating x, xn
    if B == 0:
        return
    with nogil:
        for r in prange(B, num_threads=nt, schedule="static"):
            for j in range(n):
                out[r, j] = dY[r, j] if X[r, j] > 0 else dY[r, j] * alpha[j % C]
        if dalpha != NULL:  # rows (and groups) in order, as the twin's axis-0 sum: the same bits on any threads
            for r in range(B):
                for j in range(n):
                    x = X[r, j]
                    xn = 0 if x > 0 else x
                    acc[j % C] += dY[r, j] * xn
            for j in range(C):
                dalpha[j] = dalpha[j] + <floating>acc[j]


def prelu_forward(X, alpha, out=None, n_threads=None):
    """Y = X where X > 0, else alpha * X (Keras PReLU).  X (B, n), alpha (C,) with C dividing n: feature j
    of a row uses alpha[j % C] -> out (B, n)."""
    X, alpha, out = _prelu_args("prelu_forward", X, alpha, out)
    cdef int nt = threads_for_work(effective_n_threads(n_threads), X.size)
    if X.dtype == np.float32:
        _prelu_fwd[float](out, X, alpha, nt)
    else:
        _prelu_fwd[double](out, X, alpha, nt)
    return out


def prelu_backward(dY, X, alpha, dalpha, out=None, n_threads=None):
    """dX = dY where X > 0, else alpha * dY -> out (B, n), returned; dalpha (C,) += the sum over rows and
    groups of dY * min(X, 0) (float64 sums in row order; dalpha may be None)."""
    X, alpha, out = _prelu_args("prelu_backward", X, alpha, out)
    dY = float_array("prelu_backward", "dY", dY, 2, X.dtype)
    if dY.shape != X.shape:
        raise ValueError(f"prelu_backward: argument `dY` must have the shape of `X`, {shape_str(X.shape)}; "
                         f"received {describe(dY)}.")
    if dalpha is not None:
        dalpha = out_array("prelu_backward", "dalpha", dalpha, alpha.shape, X.dtype)
    cdef int nt = threads_for_work(effective_n_threads(n_threads), X.size)
    acc = np.zeros(alpha.shape[0])
    cdef float[::1] daf
    cdef double[::1] dad
    if X.dtype == np.float32:
        daf = dalpha
        _prelu_bwd[float](out, dY, X, alpha, &daf[0] if dalpha is not None else NULL, acc, nt)
    else:
        dad = dalpha
        _prelu_bwd[double](out, dY, X, alpha, &dad[0] if dalpha is not None else NULL, acc, nt)
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
