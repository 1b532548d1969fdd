# The engine's ops: one forward and one backward per kind, on a thread's ROWS (so a thread takes its
# rows through every op without waiting for the others), plus the phases that need whole columns:
# BatchNormalization's batch statistics and every dense layer's weight gradient + update.
#
# Each element's arithmetic does not depend on which rows or columns a thread owns (the GEMM sums
# every element in k order, column statistics sum rows in order), so results are bitwise the same
# on any number of threads and for any row chunking.
from libc.string cimport memcpy

from fastnn._kernels._typedefs cimport floating, intp_t
from fastnn._kernels._loops_act cimport ACT_LINEAR, act_is_row, act_needs_x
from fastnn._kernels._loops cimport (act_backward_rows, act_backward_rows_x, act_elementwise, act_rows, bias_act_block,
                                     bias_grad_cols,
                                     fastnn_gemm_f32, fastnn_gemm_f64, log_softmax_backward_rows,
                                     softmax_backward_rows)
from fastnn._kernels._loops_norm cimport (bn_coefficients, bn_grad_coefficients, bn_grad_sums_cols, bn_input_grad_block,
                                          bn_normalize_block, bn_stats_cols, bn_update_moving_cols,
                                          dropout_backward_range, dropout_forward_range)
from fastnn._kernels._engine_types cimport (EOp, Engine, OP_ACT, OP_BN, OP_DENSE, OP_DROPOUT, OP_PERMUTE, OP_PRELU,
                                            share16)
from fastnn._kernels._engine_update cimport update_block, update_range

cdef enum:
    # kernel rows per weight-gradient block, still in cache when the update reads them: the bitmask
    # kernel's blocks in L1 (its rows are scattered), the GEMM's in L2
    GRAD_BLOCK_ROWS = 128
    SPARSE_GRAD_BLOCK_ROWS = 16


cdef inline void gemm(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const floating* a, Py_ssize_t rsa,
                      Py_ssize_t csa, const floating* b, Py_ssize_t ldb, int beta, floating* c,
                      Py_ssize_t ldc) noexcept nogil:
    """C (M, N) (+)= A B, A[i, k] = a[i * rsa + k * csa]: csrc/fastnn_gemm.h's fixed-order GEMM."""
    if M <= 0 or N <= 0:
        return
    if floating is float:
        fastnn_gemm_f32(M, N, K, a, rsa, csa, b, ldb, beta, c, ldc)
    else:
        fastnn_gemm_f64(M, N, K, a, rsa, csa, b, ldb, beta, c, ldc)


cdef inline void dense_forward_rows(EOp* op, floating* Y, const floating* x, Py_ssize_t r0, Py_ssize_t r1,
                                    int act, bint train) noexcept nogil:
    """Rows [r0, r1) of Y (., O) = act(x (., I) @ W + b)."""
    cdef Py_ssize_t I = op.n_in, O = op.n_out
    gemm(r1 - r0, O, I, x + r0 * I, I, 1, <floating*>op.W, O, 0, Y + r0 * O, O)
    finish_dense_rows(op, Y, r0, r1, act, <floating*>op.b, train)


cdef inline void finish_dense_rows(EOp* op, floating* Y, Py_ssize_t r0, Py_ssize_t r1, int act, floating* b,
                                   bint train) noexcept nogil:
    """Bias (b, NULL when it is already added) and activation of rows [r0, r1) of a dense op's output. In
    training, an activation whose backward reads its input (gelu, ...) first keeps the pre-activations in
    op.Z: the same bits as the fused bias + activation."""
    cdef Py_ssize_t O = op.n_out
    if train and op.Z != NULL and act_needs_x(act):
        bias_act_block(Y, O, b, r0, r1, 0, O, ACT_LINEAR)
        memcpy((<floating*>op.Z) + r0 * O, Y + r0 * O, (r1 - r0) * O * sizeof(floating))
        act_elementwise(Y, Y, r0 * O, r1 * O, act, op.ap)
        return
    bias_act_block(Y, O, b, r0, r1, 0, O, ACT_LINEAR if act_is_row(act) else act, op.ap)
    if act_is_row(act):
        act_rows(Y, Y, r0, r1, O, act)


cdef inline void act_forward_rows(EOp* op, floating* Y, const floating* x, Py_ssize_t r0, Py_ssize_t r1,
                                  int act) noexcept nogil:
    cdef Py_ssize_t n = op.n_out, runs = op.n_out // op.group
    if act_is_row(act):
        act_rows(Y, x, r0 * runs, r1 * runs, op.group, act)
    else:
        act_elementwise(Y, x, r0 * n, r1 * n, act, op.ap)


cdef inline void prelu_forward_rows(EOp* op, floating* Y, const floating* x, Py_ssize_t r0,
                                    Py_ssize_t r1) noexcept nogil:
    """y = x if x > 0 else alpha[j % C] x (Keras PReLU: relu(x) - alpha relu(-x)); NaN stays NaN."""
    cdef Py_ssize_t m, c, C = op.group, G = op.n_out // op.group
    cdef const floating* alpha = <floating*>op.W
    for m in range(r0 * G, r1 * G):
        for c in range(C):
            Y[m * C + c] = x[m * C + c] if x[m * C + c] > 0 else alpha[c] * x[m * C + c]


cdef inline void prelu_backward_rows(EOp* op, floating* dx, Py_ssize_t r0, Py_ssize_t r1) noexcept nogil:
    """dx = G where x > 0, else alpha G."""
    cdef Py_ssize_t m, c, C = op.group, G = op.n_out // op.group
    cdef const floating* alpha = <floating*>op.W
    cdef const floating* x = <floating*>op.Z
    cdef const floating* g = <floating*>op.G
    for m in range(r0 * G, r1 * G):
        for c in range(C):
            dx[m * C + c] = g[m * C + c] if x[m * C + c] > 0 else g[m * C + c] * alpha[c]


cdef inline void prelu_grad_update(Engine* e, EOp* op, Py_ssize_t n, double* acc, int tid, int T,
                                   bint update, floating* params) noexcept nogil:
    """This thread's channels of dalpha = sum over rows and groups of G * min(x, 0) (each product in the
    dtype, summed in float64 in row order, as the twin's axis-0 sum), then (update) their update."""
    cdef Py_ssize_t m, c, c0, c1, C = op.group, G = op.n_out // op.group
    cdef const floating* x = <floating*>op.Z
    cdef const floating* g = <floating*>op.G
    cdef floating* dalpha = <floating*>op.dW
    cdef floating xn
    if not share16(C, tid, T, &c0, &c1):
        return
    for c in range(c0, c1):
        acc[c - c0] = 0
    for m in range(n * G):
        for c in range(c0, c1):
            xn = 0 if x[m * C + c] > 0 else x[m * C + c]
            acc[c - c0] += g[m * C + c] * xn
    for c in range(c0, c1):
        dalpha[c] = <floating>acc[c - c0]
    if update:
        prelu_update(e, op, tid, T, params)


cdef inline void prelu_update(Engine* e, EOp* op, int tid, int T, floating* params) noexcept nogil:
    cdef Py_ssize_t c0, c1
    if share16(op.group, tid, T, &c0, &c1):
        update_range(e, params, op.w_off + c0, op.w_off + c1, op.w_l1, op.w_l2, op.w_scale, op.w_decay)


cdef inline void bn_infer_coefficients(EOp* op, floating* tag) noexcept nogil:
    """A BatchNormalization op's coefficients from its moving statistics (inference, or frozen)."""
    cdef Py_ssize_t c, C = op.group
    cdef floating* mm = <floating*>op.moving_mean
    cdef floating* mv = <floating*>op.moving_var
    cdef floating* coef = <floating*>op.coef
    for c in range(C):  # as batch_norm_forward_infer: the moving statistics in float64
        op.stats[c] = mm[c]
        op.stats[C + c] = mv[c]
    bn_coefficients(coef, coef + C, op.stats + 2 * C, op.stats, op.stats + C, <floating*>op.gamma, op.epsilon, 0, C)


cdef inline void bn_forward_rows(EOp* op, floating* Y, const floating* x, Py_ssize_t r0, Py_ssize_t r1) noexcept nogil:
    """Inference arithmetic (moving statistics) on rows [r0, r1): coefficients already set."""
    cdef Py_ssize_t C = op.group, G = op.n_out // op.group
    cdef floating* coef = <floating*>op.coef
    bn_normalize_block(Y, x, C, coef, coef + C, <floating*>op.beta, r0 * G, r1 * G, 0, C)


cdef inline void bn_forward_cols(EOp* op, floating* Y, const floating* x, Py_ssize_t n, int tid,
                                 int T) noexcept nogil:
    """Training arithmetic on this thread's channels, all rows: batch mean and biased variance in
    float64 over rows in order, the moving statistics updated (Keras: moving * momentum + batch *
    (1 - momentum)), then y = (x - mean) * gamma / sqrt(var + eps) + beta. The (n, G * C) buffer is
    read as (n * G, C), so a layer on (batch, ..., C) data takes its statistics over every other axis."""
    cdef Py_ssize_t c0, c1, C = op.group, rows = n * (op.n_out // op.group)
    cdef floating* coef = <floating*>op.coef
    if not share16(C, tid, T, &c0, &c1):
        return
    bn_stats_cols(op.stats, op.stats + C, x, C, rows, c0, c1)
    bn_update_moving_cols(<floating*>op.moving_mean, <floating*>op.moving_var, op.stats, op.stats + C, op.momentum,
                          c0, c1)
    bn_coefficients(coef, coef + C, op.stats + 2 * C, op.stats, op.stats + C, <floating*>op.gamma, op.epsilon,
                    c0, c1)
    bn_normalize_block(Y, x, C, coef, coef + C, <floating*>op.beta, 0, rows, c0, c1)


cdef inline void bn_backward_cols(EOp* op, floating* dx, const floating* x, Py_ssize_t n, int tid,
                                  int T) noexcept nogil:
    """Training backward on this thread's channels, all rows: dgamma/dbeta into the gradient arena and
    the input gradient dx (if not NULL) with the statistics of the forward pass."""
    cdef Py_ssize_t c0, c1, C = op.group, rows = n * (op.n_out // op.group)
    cdef floating* coef = <floating*>op.coef
    cdef floating* G = <floating*>op.G
    if not share16(C, tid, T, &c0, &c1):
        return
    bn_grad_sums_cols(op.stats + 3 * C, op.stats + 4 * C, G, x, C, op.stats, op.stats + 2 * C, rows, c0, c1)
    bn_grad_coefficients(coef + 2 * C, coef + 3 * C, coef + 4 * C, <floating*>op.dgamma, <floating*>op.dbeta,
                         op.stats + 3 * C, op.stats + 4 * C, op.stats + 2 * C, rows, c0, c1, False)
    if dx != NULL:
        bn_input_grad_block(dx, G, x, C, coef + C, coef + 3 * C, coef, coef + 2 * C, coef + 4 * C, True, 0, rows,
                            c0, c1)


cdef inline void op_forward_rows(Engine* e, EOp* op, floating* Y, const floating* x, Py_ssize_t r0, Py_ssize_t r1,
                                 bint train, bint fold, Py_ssize_t u_row) noexcept nogil:
    """Rows [r0, r1) through one op that works by rows (dense, act, dropout, permute, and BatchNormalization
    with its moving statistics). fold: the loss folds this op's activation, so it is left out. u_row: the
    batch's first row in the call's dropout uniforms."""
    cdef Py_ssize_t r, j, n = op.n_out
    cdef const floating* u
    if op.kind == OP_DENSE:
        dense_forward_rows(op, Y, x, r0, r1, ACT_LINEAR if fold else op.act, train)
    elif op.kind == OP_ACT:
        act_forward_rows(op, Y, x, r0, r1, ACT_LINEAR if fold else op.act)
    elif op.kind == OP_PRELU:
        prelu_forward_rows(op, Y, x, r0, r1)
    elif op.kind == OP_BN:
        bn_forward_rows(op, Y, x, r0, r1)
    elif op.kind == OP_DROPOUT:
        if train:
            u = (<const floating*>e.U[op.u_index]) + u_row * n
            dropout_forward_range(Y, op.mask, x, u, r0 * n, r1 * n, op.keep, <floating>op.scale)
        else:
            memcpy(Y + r0 * n, x + r0 * n, (r1 - r0) * n * sizeof(floating))
    else:
        for r in range(r0, r1):
            for j in range(n):
                Y[r * n + j] = x[r * n + op.perm[j]]


cdef inline void op_backward_rows(EOp* op, floating* dx, Py_ssize_t r0, Py_ssize_t r1, bint fold) noexcept nogil:
    """Rows [r0, r1) back through an op that works by rows: from its G (the gradient at its output) to
    dx (the gradient at its input; NULL when not needed). A dense op turns G into the gradient at its
    pre-activation in place (its weight gradient reads it later)."""
    cdef Py_ssize_t r, j, I = op.n_in, O = op.n_out, runs, C, Gn
    cdef floating* G = <floating*>op.G
    cdef floating* A = <floating*>op.A
    cdef floating* coef
    if op.kind == OP_DENSE:
        if not fold and op.act != ACT_LINEAR:
            act_backward_rows_x(G, G, <floating*>op.Z, A, r0, r1, O, op.act, op.ap)
        if dx != NULL:
            gemm(r1 - r0, I, O, G + r0 * O, O, 1, <floating*>op.WT, I, 0, dx + r0 * I, I)
    elif dx == NULL:
        return
    elif op.kind == OP_ACT:
        if fold or op.act == ACT_LINEAR:
            memcpy(dx + r0 * O, G + r0 * O, (r1 - r0) * O * sizeof(floating))
        elif act_is_row(op.act):
            runs = O // op.group
            act_backward_rows(dx, G, A, r0 * runs, r1 * runs, op.group, op.act)
        else:
            act_backward_rows_x(dx, G, <floating*>op.Z, A, r0, r1, O, op.act, op.ap)
    elif op.kind == OP_PRELU:
        prelu_backward_rows(op, dx, r0, r1)
    elif op.kind == OP_BN:  # frozen: the moving statistics are constants, dx = gamma / sqrt(var + eps) * dy
        C = op.group
        Gn = O // C
        coef = <floating*>op.coef
        bn_input_grad_block(dx, G, <floating*>NULL, C, coef + C, <floating*>NULL, <floating*>NULL, <floating*>NULL,
                            <floating*>NULL, False, r0 * Gn, r1 * Gn, 0, C)
    elif op.kind == OP_DROPOUT:
        dropout_backward_range(dx, G, op.mask, r0 * O, r1 * O, <floating>op.scale)
    else:
        for r in range(r0, r1):
            for j in range(O):
                dx[r * O + op.perm[j]] = G[r * O + j]


cdef inline void transpose_block(floating* WT, const floating* W, Py_ssize_t I, Py_ssize_t O, Py_ssize_t i0,
                                 Py_ssize_t i1, Py_ssize_t c0, Py_ssize_t c1) noexcept nogil:
    """WT (O, I)[c0:c1, i0:i1] = W (I, O)[i0:i1, c0:c1]^T, in 8 x 8 tiles (row by row, the strided
    writes of a 1024-wide W touched 1024 cache lines per row: 16% of a 1024-wide model's step; a tile's
    8 lines fit one L1 set even when I * 4 bytes is a multiple of 4 KB)."""
    cdef Py_ssize_t i, c, ti, tc, ie, ce
    for ti in range(i0, i1, 8):
        ie = min(ti + 8, i1)
        for tc in range(c0, c1, 8):
            ce = min(tc + 8, c1)
            for i in range(ti, ie):
                for c in range(tc, ce):
                    WT[c * I + i] = W[i * O + c]


cdef inline bint dense_share(EOp* op, int tid, int T, Py_ssize_t* i0, Py_ssize_t* i1, Py_ssize_t* c0,
                             Py_ssize_t* c1) noexcept nogil:
    """This thread's block of a dense op's kernel for its gradient and update: its units (all input
    features), or its input features (all units) when the op splits by rows."""
    if op.dw_by_rows:
        c0[0] = 0
        c1[0] = op.n_out
        return share16(op.n_in, tid, T, i0, i1)
    i0[0] = 0
    i1[0] = op.n_in
    return share16(op.n_out, tid, T, c0, c1)


cdef inline void dense_grad_update(Engine* e, EOp* op, const floating* x, Py_ssize_t n, double* acc, int tid,
                                   int T, bint update) noexcept nogil:
    """This thread's block of dW = x^T G, GRAD_BLOCK_ROWS kernel rows at a time, each block updated right
    away (with the regularizer's gradient) while it is in cache; then its bias entries; then its block of
    W^T for the next step's input gradient."""
    cdef Py_ssize_t i0, i1, c0, c1, f0, f1, I = op.n_in, O = op.n_out
    cdef floating* params = <floating*>e.params
    cdef floating* dW = <floating*>op.dW
    cdef floating* G = <floating*>op.G
    dense_share(op, tid, T, &i0, &i1, &c0, &c1)  # (an empty share may still hold the bias)
    f0 = i0
    while f0 < i1:
        f1 = min(f0 + GRAD_BLOCK_ROWS, i1)
        gemm(f1 - f0, c1 - c0, n, x + f0, 1, I, G + c0, O, 0, dW + f0 * O + c0, O)
        if update:
            update_block(e, params, op.w_off, O, f0, f1, c0, c1, op.w_l1, op.w_l2, op.w_scale, op.w_decay)
        f0 = f1
    dense_bias_update(e, op, params, n, acc, tid, c0, c1, update)
    if op.need_dx and update:
        transpose_block(<floating*>op.WT, <floating*>op.W, I, O, i0, i1, c0, c1)


cdef inline void dense_update(Engine* e, EOp* op, floating* params, Py_ssize_t i0, Py_ssize_t i1, Py_ssize_t c0,
                              Py_ssize_t c1, bint with_bias) noexcept nogil:
    """The deferred update (a gradient hook ran in between) of a block of a dense op's kernel whose gradient
    this thread computed, its bias entries (with_bias), and that block of W^T."""
    cdef Py_ssize_t O = op.n_out, b0 = 0 if op.dw_by_rows else c0, b1 = O if op.dw_by_rows else c1
    update_block(e, params, op.w_off, O, i0, i1, c0, c1, op.w_l1, op.w_l2, op.w_scale, op.w_decay)
    if op.b != NULL and with_bias:
        update_range(e, params, op.b_off + b0, op.b_off + b1, op.b_l1, op.b_l2, op.b_scale, op.b_decay)
    if op.need_dx:
        transpose_block(<floating*>op.WT, <floating*>op.W, op.n_in, O, i0, i1, c0, c1)


cdef inline void dense_bias_update(Engine* e, EOp* op, floating* params, Py_ssize_t n, double* acc, int tid,
                                   Py_ssize_t c0, Py_ssize_t c1, bint update) noexcept nogil:
    """db = column sums of G in float64 (rows in order), for the owner's units; with a split by input
    features, thread 0 takes the whole bias. params: e.params."""
    if op.b == NULL:
        return
    if op.dw_by_rows:
        if tid != 0:
            return
        c0 = 0
        c1 = op.n_out
    bias_grad_cols(<floating*>op.db, acc, <floating*>op.G, op.n_out, n, c0, c1, False)
    if update:
        update_range(e, params, op.b_off + c0, op.b_off + c1, op.b_l1, op.b_l2, op.b_scale, op.b_decay)


cdef inline void bn_update(Engine* e, EOp* op, int tid, int T, floating* params) noexcept nogil:
    """The optimizer's update of this thread's channels of gamma and beta (their gradients were written by
    bn_backward_cols on the same channels)."""
    cdef Py_ssize_t c0, c1, off
    if not share16(op.group, tid, T, &c0, &c1):
        return
    if op.gamma != NULL:
        off = <floating*>op.gamma - params
        update_range(e, params, off + c0, off + c1, op.w_l1, op.w_l2, op.w_scale, op.w_decay)
    if op.beta != NULL:
        off = <floating*>op.beta - params
        update_range(e, params, off + c0, off + c1, op.b_l1, op.b_l2, op.b_scale, op.b_decay)
