# One call of the engine: training steps (train_call) or inference chunks (infer_call), run by every
# thread of the team on its own rows; docs/engine.md draws how a batch flows through them.
#
# A training step, on T threads:
#   labels, input and forward ...... rows (a wide first layer's two feature partitions by one thread each;
#                                    BatchNormalization's batch statistics by channels between two barriers)
#   loss, metrics .................. rows
#   backward to the first op ....... rows (BatchNormalization by channels between two barriers)
#   barrier
#   sums, penalty, every trained op's weight gradient + update ... units or features (thread 0: sums)
#   barrier
# Every thread runs the same code path: the decisions (bitmaps or GEMM, ...) come from data every
# thread reads after a barrier, so the barriers always match.
from libc.string cimport memcpy

from fastnn._kernels._typedefs cimport floating, intp_t
from fastnn._kernels._engine_types cimport (EOp, Engine, IN_GATHER, MODE_EVAL, MODE_FORWARD, OP_BN, OP_DENSE,
                                            OP_DROPOUT, OP_PRELU, rows_of, share16, sync)
from fastnn._kernels._engine_update cimport (clip_scales, norm_chunks, norm_clipping, penalty_chunks, penalty_total,
                                            step_scalars)
from fastnn._kernels._engine_ops cimport (bn_backward_cols, bn_forward_cols, bn_infer_coefficients, bn_update,
                                          dense_grad_update, dense_share, dense_update, op_backward_rows,
                                          op_forward_rows, prelu_grad_update, prelu_update, transpose_block)
from fastnn._kernels._engine_input cimport (copy_rows, first_forward_infer, first_forward_train, first_grad_update,
                                            first_update)
from fastnn._kernels._engine_head cimport head_rows, head_sums


cdef inline void call_start(Engine* e, bint inference, int tid, int T, floating tag) noexcept nogil:
    """Once per call: BatchNormalization coefficients from the moving statistics (ops that use them), and
    W^T of every dense op whose input gradient is needed (the weights may have been set since)."""
    cdef int i
    cdef Py_ssize_t c0, c1
    cdef EOp* op
    for i in range(e.n_ops):
        op = &e.ops[i]
        if op.kind == OP_BN and (inference or not op.train) and tid == 0:
            bn_infer_coefficients(op, <floating*>NULL)
        if op.kind == OP_DENSE and op.need_dx and not inference and share16(op.n_out, tid, T, &c0, &c1):
            transpose_block(<floating*>op.WT, <floating*>op.W, op.n_in, op.n_out, 0, op.n_in, c0, c1)
    sync(T)


cdef inline void gather_labels(Engine* e, const intp_t* rows, Py_ssize_t r0, Py_ssize_t r1, floating tag) noexcept nogil:
    cdef Py_ssize_t r, K = e.K
    for r in range(r0, r1):
        if e.ids != NULL:
            e.ids_b[r] = e.ids[rows[r]]
        if e.Y != NULL:
            memcpy((<floating*>e.yb) + r * K, (<const floating*>e.Y) + rows[r] * K, K * sizeof(floating))
        if e.sw != NULL:
            e.swb[r] = e.sw[rows[r]]


cdef inline bint forward_train(Engine* e, const intp_t* rows, Py_ssize_t n, const intp_t* next_rows,
                               Py_ssize_t n_next, Py_ssize_t r0, Py_ssize_t r1, bint fold_last, Py_ssize_t u_row,
                               int tid, int T, floating tag) noexcept nogil:
    """Every op in training arithmetic; returns whether the first layer ran on bitmaps."""
    cdef int i, last = e.n_ops - 1
    cdef bint sparse = False, fold
    cdef EOp* op
    cdef floating* x
    cdef floating* xb = <floating*>e.xb
    for i in range(e.n_ops):
        op = &e.ops[i]
        fold = fold_last and i == last
        if i == 0 and e.input != IN_GATHER:
            sparse = first_forward_train(e, op, xb, rows, n, next_rows, n_next, r0, r1, fold, tid, T)
            continue
        if i == 0:
            copy_rows(e, xb, rows, r0, r1)
            x = xb
        else:
            x = <floating*>e.ops[i - 1].A
        if op.kind == OP_BN and op.train:
            sync(T)  # batch statistics read every row
            bn_forward_cols(op, <floating*>op.A, x, n, tid, T)
            sync(T)
        else:
            op_forward_rows(e, op, <floating*>op.A, x, r0, r1, True, fold, u_row)
    return sparse


cdef inline void backward_train(Engine* e, Py_ssize_t n, Py_ssize_t r0, Py_ssize_t r1, bint fold_last, int tid,
                                int T, floating tag) noexcept nogil:
    """From the last op's G down to the lowest op that is trained or has one below it."""
    cdef int i, last = e.n_ops - 1
    cdef EOp* op
    cdef floating* dx
    cdef floating* x
    for i in range(last, -1, -1):
        op = &e.ops[i]
        if not op.need_grad:
            break
        dx = <floating*>e.ops[i - 1].G if (i > 0 and op.need_dx) else <floating*>NULL
        if op.kind == OP_BN and op.train:
            x = <floating*>e.xb if i == 0 else <floating*>e.ops[i - 1].A
            sync(T)  # the gradient sums read every row
            bn_backward_cols(op, dx, x, n, tid, T)
            sync(T)
        else:
            op_backward_rows(op, dx, r0, r1, fold_last and i == last)


cdef inline void update_train(Engine* e, const intp_t* rows, Py_ssize_t n, bint sparse, double* acc, int tid, int T,
                              bint update, floating tag) noexcept nogil:
    """Every trained op's gradient and (update) its update, each thread its units or features (behind a
    barrier). BatchNormalization's gradients are already in the arena (its backward)."""
    cdef int i
    cdef EOp* op
    cdef floating* xb = <floating*>e.xb
    for i in range(e.n_ops):
        op = &e.ops[i]
        if not op.train:
            continue
        if op.kind == OP_DENSE:
            if i == 0 and e.input != IN_GATHER:
                first_grad_update(e, op, xb, rows, n, sparse, acc, tid, T, update)
            else:
                dense_grad_update(e, op, xb if i == 0 else <floating*>e.ops[i - 1].A, n, acc, tid, T, update)
        elif op.kind == OP_BN and update:
            bn_update(e, op, tid, T, <floating*>e.params)
        elif op.kind == OP_PRELU:
            prelu_grad_update(e, op, n, acc, tid, T, update, <floating*>e.params)


cdef inline void deferred_updates(Engine* e, int tid, int T, floating* params) noexcept nogil:
    """The updates update_train(update=False) left out, on the same blocks (after the gradient hook)."""
    cdef int i
    cdef EOp* op
    cdef Py_ssize_t i0, i1, c0, c1
    for i in range(e.n_ops):
        op = &e.ops[i]
        if not op.train:
            continue
        if op.kind == OP_DENSE:
            if i == 0 and e.input != IN_GATHER:
                first_update(e, op, tid, T, params)
            else:
                dense_share(op, tid, T, &i0, &i1, &c0, &c1)
                dense_update(e, op, params, i0, i1, c0, c1, not op.dw_by_rows or tid == 0)
        elif op.kind == OP_BN:
            bn_update(e, op, tid, T, params)
        elif op.kind == OP_PRELU:
            prelu_update(e, op, tid, T, params)


cdef inline void run_hook(Engine* e, Py_ssize_t step, Py_ssize_t n) noexcept nogil:
    """Thread 0, between barriers: the gradient hook (it returns the penalty it added, or None after an
    exception it kept for the caller)."""
    with gil:
        result = (<object>e.hook)(step)
        if result is None:
            e.hook_failed = True
        else:
            e.loss_sum += n * <double>result


cdef inline void train_call(Engine* e, int tid, int T, floating tag) noexcept nogil:
    """n_batches training steps (MODE_FORWARD: one batch through the forward pass only, into e.out)."""
    cdef Py_ssize_t s, start, n, r0, r1, n_next, bs = e.batch_size, K = e.K
    cdef EOp* last = &e.ops[e.n_ops - 1]
    cdef bint sparse, clip, forward_only = e.mode == MODE_FORWARD, fold = last.fused and e.mode != MODE_FORWARD
    cdef const intp_t* rows
    cdef double* acc = e.acc + tid * e.acc_stride
    cdef floating* cap
    call_start(e, False, tid, T, tag)
    for s in range(e.n_batches):
        start = (e.first_batch + s) * bs
        n = min(bs, e.n_order - start)
        n_next = max(0, min(bs, e.n_order - start - bs))
        rows = e.order + start
        rows_of(n, tid, T, &r0, &r1)
        sparse = forward_train(e, rows, n, rows + n, n_next, r0, r1, fold, s * bs, tid, T, tag)
        if forward_only:
            memcpy((<floating*>e.out) + r0 * K, (<floating*>last.A) + r0 * K, (r1 - r0) * K * sizeof(floating))
            continue
        gather_labels(e, rows, r0, r1, tag)
        cap = (<floating*>e.capture) + s * bs * K if e.capture != NULL else <floating*>NULL
        head_rows(e, <floating*>last.A, e.ids_b if e.ids != NULL else <intp_t*>NULL,
                  <floating*>e.yb if e.Y != NULL else <floating*>NULL, e.swb if e.sw != NULL else <double*>NULL,
                  n, r0, r1, <floating*>last.G if last.need_grad else <floating*>NULL, 0, cap)
        if e.n_chunks:
            penalty_chunks(e, <floating*>e.params, tid, T)
        backward_train(e, n, r0, r1, fold, tid, T, tag)
        if tid == 0:  # read after the barrier; last read before the previous step's final barrier
            step_scalars(e, e.iterations + s)
        sync(T)
        if tid == 0:
            head_sums(e, n, e.swb if e.sw != NULL else <double*>NULL, 0, True, tag)
            if e.n_chunks:
                e.loss_sum += n * penalty_total(e)
        # the update waits for whole gradients: a hook changes them, a norm clip needs their norms
        clip = norm_clipping(e) and e.is_update
        update_train(e, rows, n, sparse, acc, tid, T, e.hook == NULL and not clip, tag)
        if e.hook != NULL or clip:
            sync(T)
            if e.hook != NULL and tid == 0:
                run_hook(e, s, n)
            sync(T)
            if e.hook_failed:
                break
            if clip:
                norm_chunks(e, <floating*>e.params, tid, T)
                sync(T)
                if tid == 0:
                    clip_scales(e)
                sync(T)
            deferred_updates(e, tid, T, <floating*>e.params)
        if tid == 0:
            e.steps_done = s + 1
            e.steps_total += 1
        sync(T)


cdef inline void infer_call(Engine* e, int tid, int T, floating tag) noexcept nogil:
    """evaluate / predict over every row of X, rows_cap rows at a time: each thread takes its rows of a chunk
    through every op (inference arithmetic: moving statistics, no dropout) and the loss; one barrier per
    chunk, and thread 0 adds one chunk's rows (in order) while the team runs the next."""
    cdef Py_ssize_t start = 0, n, r0, r1, K = e.K
    cdef int i, slot = 0, last = e.n_ops - 1
    cdef bint fold = e.mode == MODE_EVAL and e.ops[last].fused
    cdef EOp* op
    cdef const floating* x
    cdef const floating* inp
    call_start(e, True, tid, T, tag)
    while start < e.n_rows:
        n = min(e.rows_cap, e.n_rows - start)
        rows_of(n, tid, T, &r0, &r1)
        x = (<const floating*>e.X) + start * e.ldx if e.X != NULL else <const floating*>NULL
        if r1 > r0:
            inp = x
            for i in range(e.n_ops):
                op = &e.ops[i]
                if op.kind == OP_DROPOUT:
                    continue  # the identity at inference
                if i == 0 and e.input != IN_GATHER:
                    first_forward_infer(e, op, x, start, r0, r1, fold and i == last)
                else:
                    op_forward_rows(e, op, <floating*>op.A, inp, r0, r1, False, fold and i == last, 0)
                inp = <floating*>op.A
            if e.mode == MODE_EVAL:
                head_rows(e, inp, e.ids + start if e.ids != NULL else <intp_t*>NULL,
                          (<const floating*>e.Y) + start * K if e.Y != NULL else <floating*>NULL,
                          e.sw + start if e.sw != NULL else <double*>NULL, n, r0, r1, <floating*>NULL, slot,
                          (<floating*>e.capture) + start * K if e.capture != NULL else <floating*>NULL)
            else:
                memcpy((<floating*>e.out) + (start + r0) * K, inp + r0 * K, (r1 - r0) * K * sizeof(floating))
        sync(T)  # the chunk's rows are written; the one before was added up (thread 0 passed here)
        if e.mode == MODE_EVAL and tid == 0:
            head_sums(e, n, e.sw + start if e.sw != NULL else <double*>NULL, slot, False, tag)
        slot = 1 - slot
        start += n
