# The L1/L2 regularizer loops, shared by regularizers.pyx (the per-op kernels) and the engine's update
# (_engine_update.pxd), so the two give the same bits; the vectorized loops are csrc/fastnn_reduce.h.
from fastnn._kernels._typedefs cimport floating

cdef extern from "fastnn_reduce.h" nogil:
    void fastnn_abs_sq_sums_f32(const float* w, Py_ssize_t n, double* abs_sum, double* sq_sum)
    void fastnn_abs_sq_sums_f64(const double* w, Py_ssize_t n, double* abs_sum, double* sq_sum)
    void fastnn_add_reg_grad_f32(float* g, const float* w, Py_ssize_t n, float l1, float l2x2)
    int fastnn_reduce_cap  # the highest clone allowed: 0 baseline, 1 AVX2, 2 AVX-512F (tests)
    int fastnn_reduce_isa()


cdef inline void abs_sq_sums(const floating* w, Py_ssize_t n, double* abs_sum, double* sq_sum) noexcept nogil:
    """sum |w| and sum w^2 over w[0:n) in float64, in a fixed order (32 lanes, fastnn_reduce.h)."""
    if floating is float:
        fastnn_abs_sq_sums_f32(w, n, abs_sum, sq_sum)
    else:
        fastnn_abs_sq_sums_f64(w, n, abs_sum, sq_sum)


cdef inline void add_reg_grad(floating* g, const floating* w, Py_ssize_t n0, Py_ssize_t n1, double l1,
                              double l2) noexcept nogil:
    """g += l1 sign(w) + 2 l2 w on [n0, n1), the sum rounded to the dtype first (as l1_l2_backward; the sign
    0 for 0 and NaN)."""
    cdef Py_ssize_t n
    cdef floating fl1 = <floating>l1, fl2x2 = <floating>(2.0 * l2), s
    if (l1 == 0 and l2 == 0) or n1 <= n0:
        return
    if l2 == 0:
        # L1 alone: no 0 * w term, which would turn an infinite weight's gradient into NaN where Keras'
        # L1 gives l1 sign(w) (a zero factor adds nothing, K3 regularizers.py L1L2.__call__); NaN stays NaN
        for n in range(n0, n1):
            s = w[n] if w[n] != w[n] else <floating>(w[n] > 0) - <floating>(w[n] < 0)
            g[n] += fl1 * s
        return
    if floating is float:
        fastnn_add_reg_grad_f32(g + n0, w + n0, n1 - n0, fl1, fl2x2)
    else:
        for n in range(n0, n1):
            s = <floating>(w[n] > 0) - <floating>(w[n] < 0)
            g[n] += fl1 * s + fl2x2 * w[n]
