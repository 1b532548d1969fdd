# The engine's optimizer step: regularizer gradients, the optimizer's update of arena ranges, and
# the regularization penalty -- each elementwise over ranges a thread owns, with the loops of
# optim.pyx / regularizers.pyx (_loops.pxd), so the engine and the per-op kernels cannot drift.
from libc.math cimport pow, sqrt

from fastnn._kernels._typedefs cimport floating
from fastnn._kernels._loops_optim cimport (adadelta_range, adagrad_range, adam_range, adamax_range,
                                           grad_accumulate_range, grad_prep_range, lion_range, nadam_range,
                                           rmsprop_range, sgd_range)
from fastnn._kernels._regularize cimport abs_sq_sums, add_reg_grad
from fastnn._kernels._schedules cimport SCHEDULE_NONE, schedule_value
from fastnn._kernels._engine_types cimport (Engine, OPT_ADADELTA, OPT_ADAGRAD, OPT_ADAM, OPT_ADAMAX, OPT_LION,
                                            OPT_NADAM, OPT_RMSPROP, OPT_SGD, PENALTY_CHUNK, rows_of)


cdef inline void nadam_step(Engine* e, Py_ssize_t t) noexcept nogil:
    """Nadam's scalars of step t (_optim_scalars.nadam_scalars: the same float64 expressions and libm pow;
    the product of u_1..u_t multiplied in k order, carried from step to step)."""
    cdef Py_ssize_t k
    cdef double b1 = e.beta_1, u_t, u_t1
    if e.nadam_t > t or e.nadam_t <= 0:
        e.nadam_t, e.nadam_prod = 0, 1.0
    k = e.nadam_t
    while k < t:
        k += 1
        e.nadam_prod = e.nadam_prod * b1 * (1.0 - 0.5 * pow(0.96, <double>k))
    e.nadam_t = t
    u_t = b1 * (1.0 - 0.5 * pow(0.96, <double>t))
    u_t1 = b1 * (1.0 - 0.5 * pow(0.96, <double>(t + 1)))
    e.k[0] = u_t1
    e.k[1] = 1.0 - e.nadam_prod * u_t1
    e.k[2] = 1.0 - u_t
    e.k[3] = 1.0 - e.nadam_prod
    e.k[4] = 1.0 - pow(e.beta_2, <double>t)


cdef inline void step_scalars(Engine* e, Py_ssize_t raw) noexcept nogil:
    """Thread 0, before a step's updates: `raw` optimizer steps were taken before it (Keras' _iterations,
    which the schedule reads); t = the 1-based update number (iterations // accumulation steps + 1)."""
    cdef Py_ssize_t t
    cdef int i
    if e.schedule != SCHEDULE_NONE:
        e.lr_step = schedule_value(e.schedule, e.sched_p, <double>raw)
    elif e.lr_table != NULL:
        e.lr_step = e.lr_table[raw - e.lr_table_start]
    else:
        e.lr_step = e.lr
    if e.accum_steps:
        e.is_update = (raw + 1) % e.accum_steps == 0
        t = raw // e.accum_steps + 1
    else:
        e.is_update = True
        t = raw + 1
    e.grads_ready = False
    for i in range(e.n_ops):
        e.ops[i].w_scale = e.ops[i].b_scale = 1.0
    if e.opt == OPT_ADAM:
        e.alpha = e.lr_step * sqrt(1.0 - pow(e.beta_2, <double>t)) / (1.0 - pow(e.beta_1, <double>t))
    elif e.opt == OPT_ADAMAX:
        e.k[0] = 1.0 - pow(e.beta_1, <double>t)
    elif e.opt == OPT_NADAM:
        nadam_step(e, t)


cdef inline bint norm_clipping(Engine* e) noexcept nogil:
    return e.clipnorm > 0 or e.global_clipnorm > 0


cdef inline void norm_chunks(Engine* e, floating* params, int tid, int T) noexcept nogil:
    """An update step with norm clipping: this thread's chunks of the trained ranges get their regularizers'
    gradients and the accumulated mean, then their sums of squares (summed in order by thread 0,
    clip_scales, so the norm does not depend on the thread count)."""
    cdef floating* g = <floating*>e.grads
    cdef Py_ssize_t c, c0, c1, off, n
    cdef double a, q
    rows_of(e.n_gchunks, tid, T, &c0, &c1)
    for c in range(c0, c1):
        off, n = e.gchunk_off[c], e.gchunk_len[c]
        add_reg_grad(g, params, off, off + n, e.gchunk_l1[c], e.gchunk_l2[c])
        if e.accum_steps:
            grad_prep_range(params, g, <floating*>e.s3, off, off + n, <double>e.accum_steps, 0.0, 1.0, 0.0, 0.0)
        abs_sq_sums(g + off, n, &a, &q)
        e.gchunk_sq[c] = q


cdef inline void clip_scales(Engine* e) noexcept nogil:
    """Thread 0: each weight's clipping factor from its chunks' sums (Keras 3: clipnorm scales each weight's
    gradient by clipnorm / max(norm, clipnorm); global_clipnorm all of them by
    clip * min(1 / norm, 1 / clip) + (norm - norm), NaN for a non-finite norm)."""
    cdef Py_ssize_t c = 0, v
    cdef double sq, total = 0, norm, scale
    cdef double* target
    for v in range(e.n_gvars):
        sq = 0
        while c < e.n_gchunks and e.gchunk_var[c] == v:
            sq += e.gchunk_sq[c]
            c += 1
        target = &e.ops[e.gvar_op[v]].b_scale if e.gvar_bias[v] else &e.ops[e.gvar_op[v]].w_scale
        if e.clipnorm > 0:
            norm = sqrt(sq)
            target[0] = e.clipnorm / (norm if norm > e.clipnorm else e.clipnorm)
        total += sq
    if e.global_clipnorm > 0:
        norm = sqrt(total)
        scale = e.global_clipnorm * min(1.0 / norm, 1.0 / e.global_clipnorm) + (norm - norm)
        for v in range(e.n_gvars):
            if e.gvar_bias[v]:
                e.ops[e.gvar_op[v]].b_scale = scale
            else:
                e.ops[e.gvar_op[v]].w_scale = scale
    e.grads_ready = True


cdef inline void update_range(Engine* e, floating* params, Py_ssize_t n0, Py_ssize_t n1, double l1,
                              double l2, double scale, bint decay) noexcept nogil:
    """Regularizer gradient, Keras 3's gradient treatment (accumulation, clipping -- `scale` is the weight's
    norm-clipping factor -- and, if `decay`, decoupled weight decay) then the optimizer's update of arena
    elements [n0, n1) (params selects the dtype: it is e.params)."""
    cdef floating* g = <floating*>e.grads
    cdef floating* s0 = <floating*>e.s0
    cdef floating* s1 = <floating*>e.s1
    cdef floating* s2 = <floating*>e.s2
    cdef floating* acc = <floating*>NULL
    cdef double lr = e.lr_step, wd = e.weight_decay if decay else 0.0
    if n1 <= n0:
        return
    if not e.grads_ready:
        add_reg_grad(g, params, n0, n1, l1, l2)
        if e.accum_steps:
            if not e.is_update:
                grad_accumulate_range(<floating*>e.s3, g, n0, n1)
                return
            acc = <floating*>e.s3
    if acc != NULL or e.clipvalue > 0 or scale != 1.0 or wd != 0:
        grad_prep_range(params, g, acc, n0, n1, <double>e.accum_steps, e.clipvalue, scale, wd, lr)
    if e.opt == OPT_SGD:
        sgd_range(params, g, s0, n0, n1, lr, e.h_a, e.flag1)
    elif e.opt == OPT_RMSPROP:
        rmsprop_range(params, g, s0, s1, s2, n0, n1, lr, e.h_a, e.h_b, e.h_c, e.flag1)
    elif e.opt == OPT_ADAM:
        adam_range(params, g, s0, s1, s2, n0, n1, e.alpha, e.beta_1, e.beta_2, e.h_c, e.flag1)
    elif e.opt == OPT_ADADELTA:
        adadelta_range(params, g, s0, s1, n0, n1, lr, e.h_a, e.h_c)
    elif e.opt == OPT_ADAGRAD:
        adagrad_range(params, g, s0, n0, n1, lr, e.h_c)
    elif e.opt == OPT_ADAMAX:
        adamax_range(params, g, s0, s1, n0, n1, lr, e.beta_1, e.beta_2, e.k[0], e.h_c)
    elif e.opt == OPT_NADAM:
        nadam_range(params, g, s0, s1, n0, n1, lr, e.beta_1, e.beta_2, e.k, e.h_c)
    else:
        lion_range(params, g, s0, n0, n1, lr, e.beta_1, e.beta_2)


cdef inline void update_block(Engine* e, floating* params, Py_ssize_t off, Py_ssize_t ld, Py_ssize_t i0,
                              Py_ssize_t i1, Py_ssize_t c0, Py_ssize_t c1, double l1, double l2, double scale,
                              bint decay) noexcept nogil:
    """update_range over rows [i0, i1) x columns [c0, c1) of a (., ld) weight at arena offset off."""
    cdef Py_ssize_t i
    if c0 == 0 and c1 == ld:
        update_range(e, params, off + i0 * ld, off + i1 * ld, l1, l2, scale, decay)
        return
    for i in range(i0, i1):
        update_range(e, params, off + i * ld + c0, off + i * ld + c1, l1, l2, scale, decay)


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
