# The engine's optimizer step: regularizer gradients, the optimizer's update of arena ranges, and
# the regularization penalty -- each elementwise over ranges a thread owns, with the loops of
# optim.pyx / regularizers.pyx (_loops.pxd), so the engine and the per-op kernels cannot drift.
from libc.math cimport pow, sqrt

from fastnn._kernels._typedefs cimport floating
from fastnn._kernels._loops_optim cimport adadelta_range, adam_range, rmsprop_range, sgd_range
from fastnn._kernels._regularize cimport abs_sq_sums, add_reg_grad
from fastnn._kernels._engine_types cimport (Engine, OPT_ADAM, OPT_RMSPROP, OPT_SGD, PENALTY_CHUNK, rows_of)


cdef inline double adam_alpha(Engine* e, Py_ssize_t iteration) noexcept nogil:
    """Adam's step size of step t = iteration (lr sqrt(1 - b2^t) / (1 - b1^t) in float64, as the twin)."""
    if e.opt != OPT_ADAM:
        return 0
    return e.lr * sqrt(1.0 - pow(e.beta_2, <double>iteration)) / (1.0 - pow(e.beta_1, <double>iteration))


cdef inline void update_range(Engine* e, floating* params, Py_ssize_t n0, Py_ssize_t n1, double l1,
                              double l2) noexcept nogil:
    """Regularizer gradient then the optimizer's update of arena elements [n0, n1) (params selects
    the dtype: it is e.params)."""
    cdef floating* g = <floating*>e.grads
    cdef floating* s0 = <floating*>e.s0
    cdef floating* s1 = <floating*>e.s1
    cdef floating* s2 = <floating*>e.s2
    if n1 <= n0:
        return
    add_reg_grad(g, params, n0, n1, l1, l2)
    if e.opt == OPT_SGD:
        sgd_range(params, g, s0, n0, n1, e.lr, e.h_a, e.flag1)
    elif e.opt == OPT_RMSPROP:
        rmsprop_range(params, g, s0, s1, s2, n0, n1, e.lr, e.h_a, e.h_b, e.h_c, e.flag1)
    elif e.opt == OPT_ADAM:
        adam_range(params, g, s0, s1, s2, n0, n1, e.alpha, e.beta_1, e.beta_2, e.h_c, e.flag1)
    else:
        adadelta_range(params, g, s0, s1, n0, n1, e.lr, e.h_a, e.h_c)


cdef inline void update_block(Engine* e, floating* params, Py_ssize_t off, Py_ssize_t ld, Py_ssize_t i0,
                              Py_ssize_t i1, Py_ssize_t c0, Py_ssize_t c1, double l1, double l2) noexcept nogil:
    """update_range over rows [i0, i1) x columns [c0, c1) of a (., ld) weight at arena offset off."""
    cdef Py_ssize_t i
    if c0 == 0 and c1 == ld:
        update_range(e, params, off + i0 * ld, off + i1 * ld, l1, l2)
        return
    for i in range(i0, i1):
        update_range(e, params, off + i * ld + c0, off + i * ld + c1, l1, l2)


cdef inline void penalty_chunks(Engine* e, floating* params, int tid, int T) noexcept nogil:
    """This thread's chunks of the regularization penalty, on the weights the step starts from (Keras
    adds the penalty of the current weights to the loss). Chunks are summed in order by thread 0
    (penalty_total), so the total does not depend on the thread count."""
    cdef Py_ssize_t c, c0, c1
    cdef double a, q
    rows_of(e.n_chunks, tid, T, &c0, &c1)
    for c in range(c0, c1):
        abs_sq_sums(params + e.chunk_off[c], e.chunk_len[c], &a, &q)
        # a zero factor adds nothing, so an infinite weight gives inf, not 0 * inf = NaN (as l1_l2_forward)
        e.chunk_sum[c] = (e.chunk_l1[c] * a if e.chunk_l1[c] != 0 else 0.0) + \
            (e.chunk_l2[c] * q if e.chunk_l2[c] != 0 else 0.0)


cdef inline double penalty_total(Engine* e) noexcept nogil:
    cdef Py_ssize_t c
    cdef double s = 0
    for c in range(e.n_chunks):
        s += e.chunk_sum[c]
    return s
