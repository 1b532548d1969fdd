"""Weight-penalty kernels: Keras' L1 / L2 / L1L2 regularizers (compiled twin of _reference).

Dimension legend: N elements of one weight array (a kernel or a bias, flattened).

penalty = l1 * sum|w| + l2 * sum w^2 (K3 keras/src/regularizers/regularizers.py).
Both sums are taken in float64 (accurate for large arrays) over fixed chunks of CHUNK
elements (each in 8 interleaved partial sums, _regularize.pxd), and the chunk sums are added
serially in chunk order, so the value
does not depend on the thread count. The gradient l1 sign(w) + 2 l2 w
(sign(0) = 0, the subgradient TF's abs uses) is elementwise, in w's dtype;
threads split the chunks, and each writes only its own chunks of dW.
"""
import numpy as np

from cython.parallel cimport prange

from fastnn.utils.validation import describe

from fastnn._kernels._typedefs cimport floating
from fastnn._kernels._openmp cimport effective_n_threads, threads_for_work
from fastnn._kernels._checks cimport float_array, inplace_array, real_number
from fastnn._kernels._regularize cimport abs_sq_sums, add_reg_grad, fastnn_reduce_cap, fastnn_reduce_isa

cdef enum:
    CHUNK = 4096  # elements per chunk: the unit of the parallel split and of the partial sums


cdef inline void _chunk(const floating* w, floating* dw, Py_ssize_t n0, Py_ssize_t n1, double l1, double l2,
                        double* abs_sum, double* sq_sum) noexcept nogil:
    """Partial sums of |w| and w^2 over [n0, n1); dw (if not NULL) += l1 sign(w) + 2 l2 w."""
    abs_sq_sums(w + n0, n1 - n0, abs_sum, sq_sum)
    if dw != NULL:
        add_reg_grad(dw, w, n0, n1, l1, l2)


cdef double _run(const floating[::1] w, floating* dw, double l1, double l2, int nt) noexcept:
    cdef Py_ssize_t N = w.shape[0], n_chunks = (N + CHUNK - 1) // CHUNK, c
    cdef double total_abs = 0, total_sq = 0
    if N == 0:
        return 0.0
    sums = np.empty((2, n_chunks))
    cdef double[:, ::1] s = sums
    with nogil:
        if nt == 1:
            for c in range(n_chunks):
                _chunk(&w[0], dw, c * CHUNK, min((c + 1) * CHUNK, N), l1, l2, &s[0, c], &s[1, c])
        else:
            for c in prange(n_chunks, num_threads=nt, schedule="static"):
                _chunk(&w[0], dw, c * CHUNK, min((c + 1) * CHUNK, N), l1, l2, &s[0, c], &s[1, c])
        for c in range(n_chunks):
            total_abs += s[0, c]
            total_sq += s[1, c]
    # a zero factor adds nothing (K3 regularizers.py L1L2.__call__), so 0 * inf is not NaN (issue 15)
    return (l1 * total_abs if l1 != 0 else 0.0) + (l2 * total_sq if l2 != 0 else 0.0)


cdef tuple _factors(str owner, l1, l2):
    cdef double a = real_number(owner, "l1", l1), b = real_number(owner, "l2", l2)
    if a < 0 or b < 0:
        raise ValueError(f"{owner}: the factors `l1` and `l2` must be non-negative; received l1={l1!r}, "
                         f"l2={l2!r}.")
    return a, b


def l1_l2_forward(W, l1, l2, n_threads=None):
    """Penalty l1 * sum|W| + l2 * sum W^2 as a Python float (both sums in float64)."""
    a, b = _factors("l1_l2_forward", l1, l2)
    w = float_array("l1_l2_forward", "W", W, -1).reshape(-1)
    cdef int nt = threads_for_work(effective_n_threads(n_threads), w.shape[0] * 2)
    if w.dtype == np.float32:
        return _run[float](w, NULL, a, b, nt)
    return _run[double](w, NULL, a, b, nt)


def l1_l2_backward(W, l1, l2, dW, n_threads=None):
    """dW += l1 * sign(W) + 2 * l2 * W (in W's dtype, sign(0) = 0); returns the penalty."""
    a, b = _factors("l1_l2_backward", l1, l2)
    w = float_array("l1_l2_backward", "W", W, -1)
    if not isinstance(dW, np.ndarray) or dW.shape != w.shape:
        raise ValueError(f"l1_l2_backward: argument `dW` must be an array of the shape of `W`, "
                         f"{w.shape}; received {describe(dW)}.")
    g = inplace_array("l1_l2_backward", "dW", dW, w.size, w.dtype).reshape(-1)
    w = w.reshape(-1)
    cdef int nt = threads_for_work(effective_n_threads(n_threads), w.shape[0] * 4)
    cdef float[::1] gf
    cdef double[::1] gd
    if w.shape[0] == 0:
        return 0.0
    if w.dtype == np.float32:
        gf = g
        return _run[float](w, &gf[0], a, b, nt)
    gd = g
    return _run[double](w, &gd[0], a, b, nt)


_REDUCE_ISAS = ("portable", "avx2", "avx512")


def _reduce_isa(level=None):
    """The clone this module's sums and gradients run (csrc/fastnn_reduce.h): 'portable', 'avx2' or
    'avx512'. With ``level`` (one of those names), first cap it there: the result is the CPU's best clone at
    or below the cap."""
    global fastnn_reduce_cap
    if level is not None:
        if level not in _REDUCE_ISAS:
            raise ValueError(f"_reduce_isa: argument `level` must be one of {_REDUCE_ISAS} or None; "
                             f"received {level!r}.")
        fastnn_reduce_cap = _REDUCE_ISAS.index(level)
    return _REDUCE_ISAS[fastnn_reduce_isa()]
