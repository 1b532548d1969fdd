"""Fused MLP engine: whole training steps of a stack of dense layers in one nogil region.

Compiled twin of ``_reference.MLP`` (same constructor, attributes and
methods). ``train_steps`` runs gather -> forward -> fused loss -> backward ->
optimizer update for every batch without returning to Python, over buffers
allocated once in ``__init__`` for ``batch_size`` rows. A hidden layer may
carry "post ops" on its activated outputs, in model order: BatchNormalization
and/or Dropout (see below).

Dimension legend
    S  rows of the dataset     B  rows in a batch (n <= batch_size)
    I  inputs of a layer       O  units of a layer      K  outputs of the last layer
    N  parameters in the arena M  metrics

Threads
    A call's team has one thread per ENGINE_PARALLEL_WORK multiply-adds of a step,
    up to the thread setting (the toy regression and other tiny models run on
    one; the MNIST MLP on two). With a team, there is
    ONE OpenMP parallel region for the whole call (no fork/join per phase): the
    phases of a step are separated by barriers, and in every phase each thread
    writes memory no other thread writes (STYLE.md habit 10):
        gather + bitmaps input features, 64 at a time (with the halves: each thread
                         the words nearest its half)
        dense forward    output units of each layer, then the layer's post ops on
                         the same units (no barrier between them)
        loss + metrics   rows (thread 0 alone when the last layer is small);
                         the batch sums are then taken by thread 0 in row order
        dense backward   dW/db over output units, dX over the units of the layer below,
                         then back through that layer's post ops on the same units
        optimizer        the same units again: a thread updates exactly the kernel
                         columns it computed and will read next step, so they stay
                         in its core's cache (the first layer's update is fused
                         with its gradient, a block of rows at a time)
    The first layer, the bulk of the work, is shared as FIRST_LAYER_SPLIT says:
    on calls of many steps each thread copies its units' kernel columns and
    optimizer slots into a contiguous column block (rows padded to 8 floats,
    _block_ld) and back at the end (_blocks_copy). A first layer of
    HALVES_MIN_UNITS..HALVES_MAX_UNITS units on dense input (Fashion-MNIST's 100)
    is instead summed in two halves of its input features, one per thread: each
    thread's forward is a partial sum over its half for every row and unit, each
    thread adds the two partials of its rows, and each thread takes the gradient +
    update of its half's kernel rows. The split point is part of that layer's
    arithmetic, so one thread sums both halves too (see HALVES_MIN_UNITS).
    A layer below GEMM_WORK_THRESHOLD multiply-adds runs on thread 0 alone.
    evaluate/predict go by ROWS instead (_infer_rows): each thread takes its rows
    of a chunk through every layer and the loss, one barrier per chunk; on dense
    input a chunk is max(batch_size, INFER_CHUNK_ROWS) rows, whatever the call's
    batch_size (no row's bits depend on its chunk).
    float32 GEMMs are csrc/fastnn_gemm.h, whose sums run in a fixed order
    whatever the split; the sparse-input kernels likewise. So a run is bitwise
    the same on 1 and 2 threads (tests/kernels/test_mlp.py). With a team, BLAS
    (scipy's OpenBLAS, still used for float64 and B^T products) is pinned to
    one thread for the call.

BatchNormalization and Dropout (post ops)
    Both work per unit (a column of the (B, O) outputs): BatchNormalization's
    statistics are per-unit sums over the batch's rows, Dropout is elementwise.
    So the thread that owns a layer's units also runs its ops on them, with
    the same loops as batch_norm.pyx / dropout.pyx (_loops.pxd), and no thread
    reads another's columns: races are impossible by construction and no
    barrier is added. Each op writes its own (B, O) buffer (A -> op 1 -> op 2
    = H, what the next layer reads); the backward runs them in reverse, in
    place on G, before the activation derivative.
    * BatchNormalization in training: batch mean and biased variance reduced
      in float64 over the rows in order (bn_stats_cols), the moving statistics
      updated right away (Keras: moving * momentum + batch * (1 - momentum)),
      y = (x - m) * a + beta in float32; backward with the same statistics,
      dgamma/dbeta written into the gradient arena and updated by the
      optimizer (by the same units' owner). The moving statistics are never
      updated by the optimizer (they are non-trainable); their optimizer
      slots stay zero, as on the layer path where gradients are zero there.
      At inference (evaluate/predict) the moving statistics are used.
    * Dropout in training: the caller draws the uniforms (one (R, O) float32
      array per op and call, R the rows of the call's batches) from the
      layer's NumPy Generator, so a seeded run consumes the same random numbers
      as the layer path; the engine applies dropout_forward's rule (keep iff
      U < 1 - rate in double, scale 1 / (1 - rate)) and keeps the mask for the
      backward. At inference it is the identity.
    Post ops follow hidden layers with an elementwise activation only (not
    the last layer, not softmax); frozen layers are not supported (the
    trainer runs such models layer by layer).

Sparse inputs
    The first layer reads the raw features, which for images are mostly zeros
    (MNIST: 81%). When a batch's density is below SPARSE_MAX_DENSITY, the first
    layer's forward and weight gradient skip the zeros using bitmaps of the
    batch's non-zeros (csrc/fastnn_kernels.h, register-blocked AVX2/FMA with a
    run-time CPU check); otherwise both are GEMM calls. In training the bitmaps
    are built from the batch's rows where they lie in X and the bitmask kernels
    read them there; only a batch too dense for them is copied (_gather).

CSR inputs (scipy.sparse.csr_matrix X, the IMDB bag-of-words tutorial)
    X is read where it is (indptr/indices/data, int32 or int64 indices as scipy
    gives them; no densifying, no gather). The first layer's forward is split
    over the batch's ROWS (16 units are one thread's share of a unit split):
    each row is summed in CSR order (fastnn_csr_dot, as csr_dense_forward).
    In training, after a barrier, the weight gradient and the optimizer update
    of the first layer are split over its kernel rows (features): each thread
    scatters the batch's values of its features into dW, rows ascending
    (csrc/fastnn_csr_batch.h; each element sums its terms in the same order
    whatever the split, so results do not depend on the thread count), then
    updates those rows. The features are shared out once per matrix by their
    number of values in X (MLP._csr_inputs). Rows of the kernel with no value in
    the batch get the zero-gradient update,
    as in Keras (its RMSprop/Adam decay every slot every step). The rest of
    the step is the dense engine's. The structure check (indptr, column range,
    finite values) reads every stored value, so it runs once per matrix.

Denormals
    Each thread runs with flush-to-zero / denormals-are-zero set (and restored):
    optimizer slots of never-active inputs decay into denormals, which cost a
    microcode assist each (Adam ran 2x slower); TensorFlow's CPU threads do the
    same. Results differ from _reference only where a value is below 1.2e-38.

float32 only: the arena, X and float labels must be float32 (TypeError /
ValueError otherwise).
"""
import numbers
import time
import weakref

import numpy as np

from libc.math cimport isfinite, pow, sqrt
from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t
from libc.string cimport memcpy, memset
from cpython.mem cimport PyMem_Malloc, PyMem_Free
from cython.parallel cimport parallel, threadid

from fastnn.utils.validation import describe, shape_str
from fastnn._kernels._reference import _check_uniforms  # the same checks and messages as the twin

from fastnn._kernels._typedefs cimport intp_t
from fastnn._kernels._openmp cimport (GEMM_WORK_THRESHOLD, blas_threads_begin, blas_threads_end,
                                      effective_n_threads, fastnn_barrier, fastnn_team_size,
                                      fastnn_thread_num)
from fastnn._kernels._loops cimport (gemm_rm, ACT_LINEAR, ACT_SIGMOID, ACT_SOFTMAX, LOSS_MAE, LOSS_MSE,
                                     LOSS_SIGMOID_BXENT, LOSS_SOFTMAX_XENT, METRIC_SPARSE_CATEGORICAL_ACCURACY,
                                     act_backward_block, act_backward_rows, act_code, act_rows, adadelta_range,
                                     adam_range, bias_act_block, bias_grad_cols, bn_coefficients,
                                     bn_grad_coefficients, bn_grad_sums_cols, bn_input_grad_block, bn_normalize_block,
                                     bn_stats_cols, bn_update_moving_cols, dense_forward_cols,
                                     dense_weight_grad_cols, dropout_backward_range, dropout_forward_range,
                                     dropout_scale, loss_rows, metric_code, metric_row, rmsprop_range, sgd_range,
                                     softmax_backward_rows, softmax_rows, split_gemm)

cdef extern from "fastnn_gemm.h" nogil:
    void fastnn_gemm_f32(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, const float* a, Py_ssize_t rsa,
                         Py_ssize_t csa, const float* b, Py_ssize_t ldb, int beta, float* c, Py_ssize_t ldc)

cdef extern from "fastnn_kernels.h" nogil:
    Py_ssize_t fastnn_gather_bitmaps(float* dst, Py_ssize_t ldd, const float* X, Py_ssize_t ldx,
                                     const intp_t* rows, Py_ssize_t B, const intp_t* next_rows, Py_ssize_t n_next,
                                     Py_ssize_t pf0, Py_ssize_t pf1, Py_ssize_t n_in, uint64_t* rowbits, Py_ssize_t nwi, uint64_t* featmask,
                                     Py_ssize_t nw, uint8_t* octets, Py_ssize_t w0, Py_ssize_t w1)
    void fastnn_sparse_forward(float* H, Py_ssize_t ldh, const float* X, Py_ssize_t ldx, const intp_t* rows,
                               const float* W, Py_ssize_t ldw, const float* bias, const uint64_t* rowbits,
                               Py_ssize_t ldr, Py_ssize_t f0, Py_ssize_t f1, Py_ssize_t B, Py_ssize_t c0,
                               Py_ssize_t c1)
    void fastnn_sparse_weight_grad(float* dW, Py_ssize_t lddw, const float* X, Py_ssize_t ldx, const intp_t* rows,
                                   const float* dZ, Py_ssize_t ldz, const uint64_t* featmask, Py_ssize_t nw,
                                   Py_ssize_t f0, Py_ssize_t f1, Py_ssize_t c0, Py_ssize_t c1)
    void fastnn_small_input_grad(float* dX, Py_ssize_t ldx, const float* dZ, Py_ssize_t ldz, const float* WT,
                                 Py_ssize_t ldwt, const float* W, Py_ssize_t I, Py_ssize_t B, Py_ssize_t O,
                                 Py_ssize_t c0, Py_ssize_t c1)
    void fastnn_prefetch(const void* p, size_t nbytes)
    unsigned int fastnn_denormals_flush()
    void fastnn_denormals_restore(unsigned int old)

cdef extern from "fastnn_csr_batch.h" nogil:
    void fastnn_csr_batch_forward_i32(float* Y, const float* W, Py_ssize_t O, const int32_t* indptr,
                                      const int32_t* ind, const float* data, const intp_t* rows, Py_ssize_t row0,
                                      Py_ssize_t r0, Py_ssize_t r1)
    void fastnn_csr_batch_forward_i64(float* Y, const float* W, Py_ssize_t O, const int64_t* indptr,
                                      const int64_t* ind, const float* data, const intp_t* rows, Py_ssize_t row0,
                                      Py_ssize_t r0, Py_ssize_t r1)
    void fastnn_csr_batch_grad_i32(float* dW, Py_ssize_t O, const float* G, Py_ssize_t ldg, const int32_t* indptr,
                                   const int32_t* ind, const float* data, const intp_t* rows, Py_ssize_t row0,
                                   Py_ssize_t B, Py_ssize_t f0, Py_ssize_t f1, int sorted)
    void fastnn_csr_batch_grad_i64(float* dW, Py_ssize_t O, const float* G, Py_ssize_t ldg, const int64_t* indptr,
                                   const int64_t* ind, const float* data, const intp_t* rows, Py_ssize_t row0,
                                   Py_ssize_t B, Py_ssize_t f0, Py_ssize_t f1, int sorted)

LOSSES = ("softmax_xent", "sigmoid_bxent", "mse", "mae")
OPTIMIZERS = ("sgd", "rmsprop", "adam", "adadelta")
_LOSS_CODES = {"softmax_xent": LOSS_SOFTMAX_XENT, "sigmoid_bxent": LOSS_SIGMOID_BXENT, "mse": LOSS_MSE,
               "mae": LOSS_MAE}

cdef enum:
    OPT_SGD = 0
    OPT_RMSPROP = 1
    OPT_ADAM = 2
    OPT_ADADELTA = 3

cdef enum:
    MODE_TRAIN = 0
    MODE_EVAL = 1
    MODE_PREDICT = 2

cdef enum:
    POST_BATCH_NORM = 0
    POST_DROPOUT = 1
    MAX_POST = 2   # at most one op of each kind after a layer
POST_OPS = ("batch_norm", "dropout")

cdef enum:
    MAX_METRICS = 8
    # a layer with at most this many units gets its input gradient from
    # fastnn_small_input_grad (fixed summation order) instead of split sgemms
    SMALL_UNITS = 16
    # first-layer rows per gradient block in the fused gradient + update
    FUSED_ROWS_SPARSE = 16
    FUSED_ROWS_DENSE = 128
    # the first layer takes the bitmask path only with at least this many inputs
    SPARSE_MIN_INPUTS = 64

# A team has at most one thread per this many multiply-adds per step (sum of
# rows * I * O over the layers, plus the parameters): one thread below it. Measured on this
# project's 2-vCPU machine, idle: the MNIST MLP (3.3M) runs ~155 us/step on 1
# thread and 97-104 us/step on 2 with column blocks (it took 160-200 on 2 when
# the threads' columns were interleaved in every kernel row); Fashion-MNIST's
# 784-100 MLP (2.5M) 188 and 125-128 us/step. A team whose threads share a
# core with another busy process loses far more at its barriers (MNIST MLP:
# 735-4250 us/step on 2 threads with a compile running alongside): on a busy
# machine, fastnn.config.set_num_threads(1). On a machine with many cores, the
# MNIST MLP still gets 2 threads, not one per core (untested there: a team's
# barriers grow with its size, and each thread's share would be 16 units).
cdef Py_ssize_t ENGINE_PARALLEL_WORK = 1200000
# Models with BatchNormalization or Dropout follow the same rule: the regularised MNIST MLP
# (BN + Dropout(0.2) after Dense(128)) took 0.20 s/epoch on 2 threads against 0.26 on one
# (bench/bench_regularized.py, after the sparse forward, prefetch and last-layer row fixes;
# before them 2 threads were slower, 0.37 against 0.32, and it was kept on one).


def _engine_parallel_work(value=None):
    """Get (and with a value, set) the per-step work each thread of a team needs (0: every call uses
    all threads); for benchmarks that re-measure the threshold, and tests."""
    global ENGINE_PARALLEL_WORK
    old = ENGINE_PARALLEL_WORK
    if value is not None:
        ENGINE_PARALLEL_WORK = int(value)
    return old


# Density (non-zeros / (B * I)) below which the first layer skips zeros.
# Measured on this project's 2-core AMD EPYC against fastnn's own GEMM, Fashion-MNIST
# (50% non-zeros, Dense(100), batch 32, engine steps): one thread 198 us/step either way,
# two threads 118 us/step with the bitmask kernels against 128 with the GEMM.
# Evaluating Fashion's 12,000 validation rows: 17.6 ms with the bitmasks, 19.1 with the GEMM.
# Both paths give bitwise the same results (tested): the threshold changes speed only.
cdef double SPARSE_MAX_DENSITY = 0.55

# How the first layer's work is shared by a team: by units (columns, "cols") or by
# batch rows in the forward and input features in the gradient + update ("rows").
# Columns keep each thread's kernel columns, gradients and optimizer slots in its
# own core's cache; but when a kernel row is not a whole number of 64-byte lines
# (O = 100 units: 400 bytes) the column boundary shares a line on most rows, and
# the two cores fought over ~800 lines per step (a split step of a 784-100 layer
# took 4x longer than one thread alone). "auto": rows exactly then.
cdef int FIRST_LAYER_SPLIT = 0  # 0 auto, 1 columns, 2 rows, 3 column blocks, 4 feature halves

# Feature halves ("features", what "auto" picks for a first layer of HALVES_MIN_UNITS to
# HALVES_MAX_UNITS units on dense input, whatever the thread count): the first layer's
# pre-activation is summed as (sum over features [0, s)) + (sum over [s, I)) + bias, with s chosen
# once per model so that both halves hold about as many non-zeros (_choose_half_split).
# Thread h sums half h for every row and unit, and takes the gradient + update of the kernel
# rows of that half: the rows it reads in its forward, so they stay in its core's cache. Each
# thread then runs 13 accumulators of 8 units (up to 104 units in one pass) and both threads
# the same share of the non-zeros. Fashion-MNIST's 784-100 layer, split 48 + 52 units by
# column blocks, ran 6 and 7 accumulators, and the second thread did 7/6 of the work
# (C harness: forward 21 us per half against 22.6 and 26.1 per column block; weight
# gradient 20.7 against 25.8 and 28.2). The split point changes the last bits of the sums,
# so it is a property of the model, not of the thread count: one thread sums both halves.
HALVES_MIN_UNITS = 16
HALVES_MAX_UNITS = 104  # FASTNN_CHUNK_MAX: one pass of the sparse kernels
HALVES_SAMPLE_ROWS = 4096  # rows of the first training call whose non-zeros choose the split
INFER_PADDED_MIN_ROWS = 1024  # evaluate/predict calls at least this long pad the first layer's rows (infer)
# Rows per chunk of evaluate/predict on dense input, whatever their batch_size (each row's bits do not
# depend on its chunk: _infer_rows). Fashion-MNIST's 12,000 validation rows: 12.2-13.6 ms in chunks of
# 32 (fit's batch size), 10.6 in chunks of 128 or 256: a barrier per 128 rows, not per 32.
INFER_CHUNK_ROWS = 128

# Column blocks ("blocks", what "auto" picks whenever the first layer is shared and a call
# runs at least BLOCKED_MIN_STEPS steps): each thread copies its units' kernel columns and
# optimizer slots into a contiguous block at the start of the call and back at the end,
# so its forward, gradient and update stream one contiguous region that only its core
# touches. With the columns interleaved row by row ("cols"), the hardware prefetchers
# of each core ran into the other core's half of every row: a 2-thread gradient + SGD
# update of a 784x128 layer took 76 us against 87 us on one thread, and 44 us with
# contiguous halves (C harness, this machine). The arithmetic is the same in all splits.
cdef Py_ssize_t BLOCKED_MIN_STEPS = 16

# A call of at least 2 * ADAPT_STEPS steps on a team runs in pieces of ADAPT_STEPS steps,
# each timed (MLP._train_adaptive): one piece of PROBE_STEPS on one thread calibrates it,
# then the team runs unless its latest piece was slower per step than one thread's best
# (another process holds a core: every barrier then waits for a descheduled thread, and
# 2-90x slower steps were measured here; a team merely slowed down by memory traffic from
# elsewhere, 1.1-1.8 ms/step for mnist-wide, still beats one thread). While on one thread, a
# PROBE_STEPS piece tries the team again after 1, 2, 4, ... 32 pieces. The engine's
# results do not depend on its thread count (tests/kernels/test_mlp.py), and the loss and
# metric sums run on across pieces, so this changes speed only.
ADAPT_STEPS = 128
PROBE_STEPS = 16

# CSR input: the cost of zeroing and updating one kernel row of the first layer, in stored values
# scattered (MLP._csr_meta shares the rows out by values + CSR_ROW_COST per row).
CSR_ROW_COST = 4.0
_CSR_MEMO = 4  # CSR matrices whose check (and split costs) an MLP remembers


def _first_layer_split(value=None):
    """Get (and with `value` set) the first layer's split: 'auto', 'cols', 'rows', 'blocks' or 'features'
    (benchmarks, tests; see FIRST_LAYER_SPLIT)."""
    global FIRST_LAYER_SPLIT
    names = ("auto", "cols", "rows", "blocks", "features")
    old = names[FIRST_LAYER_SPLIT]
    if value is not None:
        FIRST_LAYER_SPLIT = names.index(value)
    return old


def batch_bitmaps(X, rows=None, n_threads=None):
    """The engine's gather and bitmaps (fastnn_gather_bitmaps) on their own; see _reference.batch_bitmaps.
    n_threads here only splits the features into that many calls, as the engine's threads do."""
    cdef float[:, ::1] x = np.ascontiguousarray(X, np.float32)
    cdef Py_ssize_t N = x.shape[0], I = x.shape[1], B, nwi = (I + 63) // 64, nw, t, T = n_threads or 1, nnz = 0
    cdef intp_t[::1] r = np.ascontiguousarray(np.arange(N) if rows is None else rows, np.intp)
    B = r.shape[0]
    nw = (B + 63) // 64
    if B and (np.min(r) < 0 or np.max(r) >= N):
        raise ValueError(f"rows must be in [0, {N}), received {np.min(r)}..{np.max(r)}")
    xb = np.zeros((B, I), np.float32)
    rowbits = np.zeros((nwi, 64 * nw), np.uint64)
    featmask = np.zeros((I, nw), np.uint64)
    octets = np.zeros(8 * nwi * 64 * max(nw, 1), np.uint8)
    cdef float[:, ::1] d = xb
    cdef uint64_t[:, ::1] rb = rowbits
    rowbits = rowbits[:, :B].T  # (B, nwi), as the twin's
    cdef uint64_t[:, ::1] fm = featmask
    cdef uint8_t[::1] oc = octets
    if B == 0 or I == 0:
        return xb, rowbits, featmask, 0
    for t in range(T):
        nnz += fastnn_gather_bitmaps(&d[0, 0], I, &x[0, 0], I, &r[0], B, <intp_t*>NULL, 0, 0, 0, I, &rb[0, 0], nwi,
                                     &fm[0, 0], nw, &oc[0], nwi * t // T, nwi * (t + 1) // T)
    return xb, rowbits, featmask, nnz


def _sparse_max_density(value=None):
    """Get (and with a value, set) the density threshold of the sparse-input path; for tests and benchmarks."""
    global SPARSE_MAX_DENSITY
    old = SPARSE_MAX_DENSITY
    if value is not None:
        SPARSE_MAX_DENSITY = float(value)
    return old


cdef struct PostOp:
    # An op on a layer's activated outputs (B, O): per unit (column), so the
    # owner of a layer's units runs its ops too (see the module docstring).
    int kind            # POST_BATCH_NORM / POST_DROPOUT
    const float* inp    # (B, O) its input in training: the layer's A or the previous op's out
    float* out          # (B, O) its output
    # batch_norm: views into the arenas (gamma/beta and their gradients NULL when absent)
    float* gamma
    float* beta
    float* dgamma
    float* dbeta
    float* moving_mean  # non-trainable: updated with the batch statistics, never by the optimizer
    float* moving_var
    double momentum
    double epsilon
    double* stats       # (5, O) float64: mean, var, inv_std, sum dy, sum dy*xhat
    float* coef         # (5, O) float32: m, a (= k of the backward), s, mean dy, mean dy*xhat
    # dropout
    double keep         # 1 - rate
    float scale         # 1 / (1 - rate), 0 when rate == 1
    unsigned char* mask # (B, O)
    int u_index         # its uniforms in Engine.U


cdef struct Layer:
    Py_ssize_t n_in  # I (not a field named I: complex.h defines an I macro)
    Py_ssize_t n_out # O
    float* W        # (I, O) view into the parameter arena
    float* b        # (O,) or NULL
    float* dW       # (I, O) view into the gradient arena
    float* db       # (O,) or NULL
    int act         # the layer's activation
    float* A        # (B, O) outputs (pre-activation for a fused last layer)
    float* G        # (B, O) gradient at the pre-activation
    float* WT       # (O, I) scratch: W^T for the input gradient (every layer but the first)
    int n_post      # ops after the activation (BatchNormalization, Dropout), in model order
    PostOp post[MAX_POST]
    float* H        # (B, O) the layer's output in training: the last op's out, or A


cdef struct Engine:
    # model
    Layer* layers
    int L
    int loss
    bint fused      # loss consumes the last pre-activation (softmax_xent / sigmoid_bxent)
    int n_metrics
    int metrics[MAX_METRICS]
    # optimizer
    int opt
    float* params
    float* grads
    Py_ssize_t N
    float* s0
    float* s1
    float* s2
    double lr
    double h_a
    double h_b
    double h_c
    bint flag1
    bint flag2
    double beta_1
    double beta_2
    double alpha    # Adam's step size of the current step
    # buffers for batch_size rows (the outputs and row buffers: rows_cap, inference chunks)
    Py_ssize_t batch_size
    Py_ssize_t rows_cap  # max(batch_size, INFER_CHUNK_ROWS): rows of A, probs, post-op outputs, row buffers
    Py_ssize_t nw_cap    # ceil(rows_cap / 64): rowbits' row words at inference (training: nw)
    float* xb       # (T, B, I0) a dense batch's copy, one per thread of the team (_xb, _copy_batch)
    intp_t* ids_b   # (B,) gathered class ids
    float* yb       # (B, K) gathered float labels
    float* probs    # (B, K) model outputs for the metrics when the loss is fused
    double* rowloss # (B,)
    double* rowmetric  # (M, B)
    double* acc     # (threads, acc_stride) float64 scratch for bias gradients, one row per thread
    Py_ssize_t acc_stride
    uint64_t* mask     # (I0, nw) feature-major bitmask of the batch's non-zeros
    uint64_t* rowbits  # (nwi, 64 * nw) word-major bitmap of the same
    uint8_t* octets    # (8 * nwi, 64 * nw) scratch of fastnn_gather_bitmaps
    Py_ssize_t* nnz_part  # (threads, 8): non-zeros of the batch in each thread's features (a line each)
    Py_ssize_t nw      # ceil(batch_size / 64)
    Py_ssize_t nwi     # ceil(I0 / 64)
    bint sparse_ok
    bint split_rows    # first layer split by batch rows (forward) and input features (gradient + update)
    bint blocked       # this call keeps the first layer in per-thread column blocks (see _blocks_in)
    bint halves        # this call sums the first layer in two halves of its features (_halves_ok)
    Py_ssize_t half_split  # the halves: features [0, half_split) and [half_split, I0); 0 until chosen
    float* part        # (2, B, O0) the halves' partial sums
    float* g0          # train: the first layer's gradient at its pre-activation (B, O0), rows ldg0 apart:
    Py_ssize_t ldg0    #   its G, or with the halves part (free by then) with rows padded to _block_ld(O0)
    float* bw          # (I0 * O0) the first layer's kernel, slots and gradient as column blocks:
    float* bg          #   thread t's units [c0, c1) at offset I0 * c0, an (I0, c1 - c0) row-major block
    float* bs0
    float* bs1
    float* bs2
    Py_ssize_t* gaps    # (2 * n_gaps,) [start, stop) of arena ranges outside every layer
    Py_ssize_t n_gaps
    # call arguments
    int mode
    const float* X
    Py_ssize_t ldx
    const intp_t* ids
    const float* Y
    const intp_t* order
    Py_ssize_t n_order
    Py_ssize_t first_batch
    Py_ssize_t n_batches
    Py_ssize_t iterations
    Py_ssize_t n_rows   # eval / predict: rows of X
    Py_ssize_t chunk    # eval / predict: rows per forward pass
    float* out          # predict output (S, K)
    const float** U     # (n_dropout,) train: uniforms (R, O) of each dropout op for the call's rows
    Py_ssize_t u_row    # train: row of the current step in U
    # optional phase timer of threads 0 and 1 (_Core.profile: turned on by a caller timing phases)
    bint profile
    double phase_time[16]   # [thread (0 or 1)][phase]: busy time, barrier waits excluded
    double wait_time[2]     # per thread: time spent in barriers
    # CSR input (scipy.sparse.csr_matrix X; see "CSR inputs" in the module docstring)
    bint csr
    bint csr64          # int64 indptr/indices (else int32)
    const void* indptr  # (S+1,)
    const void* indices # (nnz,)
    const float* data   # (nnz,)
    const intp_t* b_rows  # train: the step's rows (order + start); NULL at inference
    Py_ssize_t b_row0     # inference: the chunk's first row
    bint csr_sorted       # every row's indices are non-decreasing (MLP._csr_inputs)
    bint tail_rows        # CSR input and small layers after the first: they run by rows (_tail_rows_ok)
    const intp_t* csr_split  # train: (T + 1,) thread t owns the first layer's kernel rows [split[t], split[t+1])
    # results (written by thread 0)
    double loss_sum
    double metric_sums[MAX_METRICS]
    Py_ssize_t seen


cdef extern from "<time.h>" nogil:
    cdef struct timespec:
        long tv_sec
        long tv_nsec
    int clock_gettime(int clk_id, timespec* tp)
    int CLOCK_MONOTONIC


cdef inline double _now() noexcept nogil:
    cdef timespec t
    clock_gettime(CLOCK_MONOTONIC, &t)
    return t.tv_sec + 1e-9 * t.tv_nsec


cdef inline double _tick(Engine* e, int tid, int phase, double t0) noexcept nogil:
    """Threads 0 and 1 add the time since t0 to phase; returns now (0 when not profiling)."""
    cdef double t
    if not e.profile or tid > 1:
        return 0
    t = _now()
    if t0 != 0:
        e.phase_time[tid * 8 + phase] += t - t0
    return t


# --------------------------------------------------------------------------- helpers
cdef inline void _rows_of(Py_ssize_t n, int tid, int T, Py_ssize_t* r0, Py_ssize_t* r1) noexcept nogil:
    r0[0] = n * tid // T
    r1[0] = n * (tid + 1) // T


cdef Engine* _profiled = NULL  # set while a profiled run is in progress


cdef inline void _sync(int T) noexcept nogil:
    cdef double t0
    cdef int tid
    if T > 1:
        if _profiled == NULL:
            fastnn_barrier()
        else:  # profiling: charge the wait to the barrier, not to the phase
            tid = fastnn_thread_num()
            t0 = _now()
            fastnn_barrier()
            if tid < 2:
                _profiled.wait_time[tid] += _now() - t0
                _profiled.phase_time[tid * 8 + 7] += _now() - t0


cdef inline int _team(Layer* ly, Py_ssize_t n, int T) noexcept nogil:
    """Threads that own a layer's units for a batch of n rows (1 below the GEMM threshold)."""
    return 1 if n * ly.n_in * ly.n_out < GEMM_WORK_THRESHOLD else T


cdef inline bint _cols(Layer* ly, int t_eff, int tid, Py_ssize_t* c0, Py_ssize_t* c1) noexcept nogil:
    """The units [c0, c1) of a layer that thread tid owns; False if it owns none.

    The SAME split is used by the forward pass, the weight gradient and the
    optimizer update, so each thread's kernel columns, their gradients and
    optimizer slots stay in its own core's cache from step to step (a split
    of the update by flat chunks moved every column across cores twice per
    step). Boundaries are multiples of 16 units chosen by index (split_gemm):
    reproducible whatever the arena's address, and on cache lines when the
    arena is 64-byte aligned.
    """
    if tid >= t_eff:
        return False
    c0[0] = split_gemm(ly.n_out, t_eff, tid)
    c1[0] = split_gemm(ly.n_out, t_eff, tid + 1)
    return c1[0] > c0[0]


cdef inline Py_ssize_t _block_ld(Py_ssize_t w) noexcept nogil:
    """Row stride of a column block of w units: w rounded up to 8 floats, so every row of the block
    starts on 32 bytes. Fashion-MNIST's 100 units split 48 + 52; with 52-float rows the second
    thread's sparse forward took ~10% longer (loads across cache lines; C harness, 30.6 -> 27.7 us
    for 50 columns at stride 56). The padding columns are zero and never read (_blocks_copy)."""
    return (w + 7) // 8 * 8


cdef inline bint _split16(Py_ssize_t n, int t_eff, int tid, Py_ssize_t* r0, Py_ssize_t* r1) noexcept nogil:
    """This thread's share [r0, r1) of n rows (or input features) for the "rows" split of the
    first layer: boundaries at multiples of 16, so a boundary row of any float32 (., O) array
    starts a 64-byte line in an aligned arena. False if it has none."""
    if tid >= t_eff:
        return False
    r0[0] = split_gemm(n, t_eff, tid)
    r1[0] = split_gemm(n, t_eff, tid + 1)
    return r1[0] > r0[0]


cdef inline bint _use_sparse(Engine* e, Py_ssize_t n, int T) noexcept nogil:
    """Decided by every thread from the same counts (the gather's, behind its barrier), so all
    agree without another barrier."""
    cdef Py_ssize_t nnz = 0
    cdef int t
    if not e.sparse_ok or e.csr:
        return False
    for t in range(T):
        nnz += e.nnz_part[8 * t]
    return nnz <= SPARSE_MAX_DENSITY * n * e.layers[0].n_in


cdef inline const intp_t* _xrows(Engine* e, bint sparse) noexcept nogil:
    """Where the first layer's sparse kernels find batch row b: at X + rows[b] * ldx in the data set
    (training on dense input: the batch is not copied, see _gather), or NULL for a contiguous x."""
    if sparse and e.mode == MODE_TRAIN and not e.csr:
        return e.b_rows
    return NULL


# --------------------------------------------------------------------------- phases
cdef inline void _feature_words(Engine* e, int tid, int T, Py_ssize_t* w0, Py_ssize_t* w1,
                                Py_ssize_t* i0, Py_ssize_t* i1) noexcept nogil:
    """This thread's input features: whole 64-feature words [w0, w1) = features [i0, i1). With the
    feature halves (training), the words nearest its half (threads 0 and 1): its forward and
    gradient then read the values its gather scanned."""
    cdef Py_ssize_t I0 = e.layers[0].n_in, wh
    if e.halves and T > 1:
        wh = (e.half_split + 32) // 64
        w0[0] = 0 if tid == 0 else (wh if tid == 1 else e.nwi)
        w1[0] = wh if tid == 0 else e.nwi
    else:
        w0[0] = e.nwi * tid // T
        w1[0] = e.nwi * (tid + 1) // T
    i0[0] = w0[0] * 64
    i1[0] = min(w1[0] * 64, I0)


cdef void _masks(Engine* e, const float* x, Py_ssize_t n, int tid, int T) noexcept nogil:
    """Bitmaps of the non-zeros of this thread's input features (inference: no gather)."""
    cdef Py_ssize_t w0, w1, i0, i1, I0 = e.layers[0].n_in
    if e.sparse_ok and not e.csr:
        _feature_words(e, tid, T, &w0, &w1, &i0, &i1)
        e.nnz_part[8 * tid] = fastnn_gather_bitmaps(<float*>NULL, 0, x, I0, <intp_t*>NULL, n, <intp_t*>NULL, 0, 0, 0,
                                                    I0, e.rowbits, e.nwi, e.mask, e.nw, e.octets, w0, w1)


cdef inline float* _xb(Engine* e, int tid, int T) noexcept nogil:
    """This thread's copy of the batch: each thread of a team copies every feature of every row
    into its own buffer. One shared copy, each thread writing its features and reading all of
    them, moved half the batch between the cores' caches every step (MNIST, 2 threads: the
    gather 13 -> 11 us, the step 97 -> 93 us with private copies)."""
    return e.xb + (tid * e.batch_size * e.layers[0].n_in if T > 1 else 0)


cdef void _copy_batch(Engine* e, Py_ssize_t start, Py_ssize_t n, Py_ssize_t next_start, Py_ssize_t n_next,
                      int tid, int T) noexcept nogil:
    """Copy the batch's rows into this thread's copy (_xb), prefetching rows next_start.. of the next
    batch as it goes (n_next = 0: none)."""
    cdef Py_ssize_t r, I0 = e.layers[0].n_in
    cdef float* xb = _xb(e, tid, T)
    for r in range(max(n, n_next)):
        if r < n_next:
            fastnn_prefetch(e.X + e.order[next_start + r] * e.ldx, I0 * sizeof(float))
        if r < n:
            memcpy(xb + r * I0, e.X + e.order[start + r] * e.ldx, I0 * sizeof(float))


cdef void _gather(Engine* e, Py_ssize_t start, Py_ssize_t n, int tid, int T) noexcept nogil:
    """Build the bitmaps of this thread's input FEATURES (64 at a time) straight from the batch's rows
    where they lie in X, and prefetch the NEXT batch's rows whole (they are random lines of a large
    X: without it the reads wait on DRAM, MNIST one thread 24 -> 17 us/step); one barrier after it.
    The sparse kernels then read the rows there (_xrows): the batch is not copied. Copying it (each
    thread its own copy) cost ~9 us of a ~100 us 2-thread Fashion-MNIST step; a dense batch is
    copied after the barrier, when it is known to be one (_copy_batch). Without bitmaps (narrow
    inputs) every thread copies the batch here."""
    cdef Py_ssize_t w0, w1, i0, i1, r, src, I0 = e.layers[0].n_in, K = e.layers[e.L - 1].n_out
    cdef Py_ssize_t pf0 = 0, pf1 = I0  # the next rows' features this thread reads: all, or its half
    cdef Py_ssize_t next_start = start + e.batch_size
    cdef Py_ssize_t n_next = min(e.batch_size, e.n_order - next_start) if next_start < e.n_order else 0
    _feature_words(e, tid, T, &w0, &w1, &i0, &i1)
    if e.halves and T > 1 and _team(&e.layers[0], e.batch_size, T) > 1:  # threads 0 and 1 take the halves
        if tid > 1 or not _half_range(e, tid, T, tid, &pf0, &pf1):
            pf1 = pf0
    e.nnz_part[8 * tid] = 0
    if not e.csr:  # CSR input: the forward reads the rows where they are
        if e.sparse_ok:
            e.nnz_part[8 * tid] = fastnn_gather_bitmaps(<float*>NULL, 0, e.X, e.ldx, e.order + start, n,
                                                        e.order + next_start, n_next, pf0, pf1, I0, e.rowbits, e.nwi,
                                                        e.mask, e.nw, e.octets, w0, w1)
        else:
            _copy_batch(e, start, n, next_start, n_next, tid, T)
    if tid == (0 if e.halves else T - 1):  # labels: tiny, one thread
        for r in range(n):
            src = e.order[start + r]
            if e.ids != NULL:
                e.ids_b[r] = e.ids[src]
            else:
                memcpy(e.yb + r * K, e.Y + src * K, K * sizeof(float))


# --------------------------------------------------------------------------- CSR input
cdef void _csr_forward(Engine* e, float* Y, Py_ssize_t n, int act, int tid, int T) noexcept nogil:
    """This thread's rows [r0, r1) of the batch through the first layer: Y[r] = act(X[s_r] @ W + b), the
    stored values summed in CSR order from 0, then the bias (fastnn_csr_dot, as csr_dense_forward), so
    each row is computed by one thread in a fixed order. Split over ROWS, not units: the IMDB layer
    has 16 units, one thread's share of a unit split."""
    cdef Layer* ly = &e.layers[0]
    cdef Py_ssize_t r0, r1, O = ly.n_out
    _rows_of(n, tid, T, &r0, &r1)
    if e.csr64:
        fastnn_csr_batch_forward_i64(Y, ly.W, O, <const int64_t*>e.indptr, <const int64_t*>e.indices, e.data,
                                     e.b_rows, e.b_row0, r0, r1)
    else:
        fastnn_csr_batch_forward_i32(Y, ly.W, O, <const int32_t*>e.indptr, <const int32_t*>e.indices, e.data,
                                     e.b_rows, e.b_row0, r0, r1)
    bias_act_block(Y, O, ly.b, r0, r1, 0, O, act)


cdef enum:
    TAIL_MAX_WEIGHTS = 1024  # (I * O) of a layer after a CSR first layer that runs by rows


cdef bint _tail_rows_ok(Engine* e) noexcept nogil:
    """Whether the layers after a CSR first layer run by ROWS (the rows each thread took through the
    first layer, _csr_forward): every one is small (at most SMALL_UNITS units and TAIL_MAX_WEIGHTS
    weights: IMDB's 16-16-1), no layer has post ops (BatchNormalization reads every row) and only
    the last may be a softmax, with its fused loss. Then no thread waits while another runs them (~90 of IMDB's ~375 us
    per 2-thread step). A property of the model, not of the thread count: the row kernels below
    give every row the same bits on any rows, so results stay independent of the thread count."""
    cdef int l
    cdef Layer* ly
    if e.L < 2:
        return False
    for l in range(e.L):
        ly = &e.layers[l]
        if ly.n_post:
            return False
        if l == 0:
            if ly.act == ACT_SOFTMAX:
                return False
            continue
        if ly.n_out > SMALL_UNITS or ly.n_in * ly.n_out > TAIL_MAX_WEIGHTS:
            return False
        if ly.act == ACT_SOFTMAX and (l != e.L - 1 or not e.fused):  # (a fused loss takes the logits)
            return False
    return True


cdef void _rows_forward(float* Y, const float* X, const float* W, const float* b, Py_ssize_t n, Py_ssize_t I,
                        Py_ssize_t O, int act) noexcept nogil:
    """Y (n, O) = act(X (n, I) @ W + b) for rows that may be any slice of the batch: each row gets the
    same bits on any rows. 8 units or more: csrc/fastnn_gemm.h (no BLAS, whose one-row GEMV and
    row-count-dependent kernels give no such promise); fewer: each sum in 8 partial sums over
    i mod 8, added in a fixed order, then the last I % 8 terms (one chain of I adds took 9.6 ms to
    evaluate 10,000 dense rows of a 784-1 model)."""
    cdef Py_ssize_t r, o, i, j, I8 = I // 8 * 8
    cdef float acc
    cdef float part[8]
    cdef const float* x
    if n <= 0:
        return
    if O >= 8:
        fastnn_gemm_f32(n, O, I, X, I, 1, W, O, 0, Y, O)
    else:
        for r in range(n):
            x = X + r * I
            for o in range(O):
                for j in range(8):
                    part[j] = 0
                for i in range(0, I8, 8):
                    for j in range(8):
                        part[j] = part[j] + x[i + j] * W[(i + j) * O + o]
                acc = ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]))
                for i in range(I8, I):
                    acc = acc + x[i] * W[i * O + o]
                Y[r * O + o] = acc
    bias_act_block(Y, O, b, 0, n, 0, O, act)


cdef void _rows_input_grad(float* dX, const float* dZ, const float* WT, Py_ssize_t n, Py_ssize_t I,
                           Py_ssize_t O) noexcept nogil:
    """dX (n, I) = dZ (n, O) @ W^T with WT = W^T (O, I): each element sums k = 0..O-1 in order, the
    arithmetic of the engine's other narrow input gradients (fastnn_small_input_grad)."""
    fastnn_small_input_grad(dX, I, dZ, O, WT, I, <float*>NULL, I, n, O, 0, I)  # (all columns: W unread)


cdef void _tail_forward(Engine* e, float* final_out, bint fuse, const intp_t* ids, const float* Y, bint loss,
                        bint with_grad, Py_ssize_t n, int tid, int T) noexcept nogil:
    """_forward_and_loss with tail_rows: this thread's rows [r0, r1) through every layer and the loss
    (no barrier until the end: a row needs only its own row of the layer below), then thread 0 adds
    the batch's loss and metrics. In training thread 0 also transposes the small layers' kernels
    into WT for the backward (read after this phase's barrier)."""
    cdef int l, act
    cdef Py_ssize_t r0, r1, I, O
    cdef Layer* ly
    cdef float* out
    cdef const float* inp
    _rows_of(n, tid, T, &r0, &r1)
    _csr_forward(e, e.layers[0].A, n, e.layers[0].act, tid, T)
    inp = e.layers[0].A
    for l in range(1, e.L):
        ly = &e.layers[l]
        I = ly.n_in
        O = ly.n_out
        out = final_out if (l == e.L - 1 and final_out != NULL) else ly.A
        act = ly.act
        if act == ACT_SOFTMAX or (l == e.L - 1 and fuse):
            act = ACT_LINEAR
        _rows_forward(out + r0 * O, inp + r0 * I, ly.W, ly.b, r1 - r0, I, O, act)
        if ly.act == ACT_SOFTMAX and not (l == e.L - 1 and fuse):
            softmax_rows(out, out, r0, r1, O)
        inp = out
    if with_grad and tid == 0:
        for l in range(1, e.L):
            ly = &e.layers[l]
            transpose_cols(ly.WT, ly.W, ly.n_in, ly.n_out, 0, ly.n_in)
    if loss:
        _loss_rows(e, inp, ids, Y, n, r0, r1, with_grad)
    _sync(T)
    if loss and tid == 0:
        _reduce_rows(e, n)  # reads the row buffers only; the next writer is behind 2+ barriers


cdef void _tail_backward(Engine* e, Py_ssize_t n, int tid, int T) noexcept nogil:
    """_backward with tail_rows: this thread's rows of every layer's gradient (G_{l-1} = G_l W_l^T, then
    the activation's derivative), down to the first layer's; after a barrier thread 0 computes the
    small layers' weight gradients (over all rows, as with one thread) while every thread scatters
    and updates its share of the first layer (_csr_grad_and_update)."""
    cdef int l
    cdef Py_ssize_t r0, r1, I, O
    cdef Layer* ly
    cdef Layer* below
    cdef double* acc = e.acc + tid * e.acc_stride
    _rows_of(n, tid, T, &r0, &r1)
    for l in range(e.L - 1, 0, -1):
        ly = &e.layers[l]
        below = &e.layers[l - 1]
        I = ly.n_in
        O = ly.n_out
        _rows_input_grad(below.G + r0 * I, ly.G + r0 * O, ly.WT, r1 - r0, I, O)
        if below.act != ACT_LINEAR:
            act_backward_block(below.G, I, below.G, I, below.A, I, r0, r1, 0, I, below.act)
    _sync(T)
    if tid == 0:
        for l in range(1, e.L):
            ly = &e.layers[l]
            dense_weight_grad_cols(ly.dW, acc, ly.db, ly.G, e.layers[l - 1].A, n, ly.n_in, ly.n_out, 0,
                                   ly.n_out, 0)
    _csr_grad_and_update(e, &e.layers[0], n, acc, tid, T)
    _sync(T)


cdef void _csr_grad_and_update(Engine* e, Layer* ly, Py_ssize_t n, double* acc, int tid, int T) noexcept nogil:
    """The first layer's weight gradient and optimizer update for CSR input, split over its kernel
    rows: this thread owns the features [csr_split[tid], csr_split[tid + 1]) (shared out by their
    values in X, MLP._csr_inputs) and scatters the batch's values of those features into dW, rows
    ascending (csrc/fastnn_csr_batch.h: the same terms in the same order for any split), then updates
    those rows. Rows of W without a value in the batch get a zero gradient and are updated all the
    same (Keras' RMSprop/Adam decay their slots every step: no lazy updates).
    The caller has synchronised: G (B, O) is read whole."""
    cdef Py_ssize_t O = ly.n_out, w_off = ly.W - e.params
    cdef Py_ssize_t f0 = e.csr_split[tid], f1 = e.csr_split[tid + 1]
    if f1 > f0:
        if e.csr64:
            fastnn_csr_batch_grad_i64(ly.dW, O, ly.G, O, <const int64_t*>e.indptr, <const int64_t*>e.indices,
                                      e.data, e.b_rows, 0, n, f0, f1, e.csr_sorted)
        else:
            fastnn_csr_batch_grad_i32(ly.dW, O, ly.G, O, <const int32_t*>e.indptr, <const int32_t*>e.indices,
                                      e.data, e.b_rows, 0, n, f0, f1, e.csr_sorted)
        _update_range(e, w_off + f0 * O, w_off + f1 * O, e.alpha)
    if ly.db != NULL and tid == T - 1:  # the last thread's features are the rarest (fewest values)
        bias_grad_cols(ly.db, acc, ly.G, O, n, 0, O, False)
        _update_range(e, ly.b - e.params, (ly.b - e.params) + O, e.alpha)


cdef inline bint _half_range(Engine* e, int h, int t_eff, int tid, Py_ssize_t* f0,
                             Py_ssize_t* f1) noexcept nogil:
    """Whether thread tid takes half h of the first layer's features, [f0, f1): thread h on a team,
    thread 0 both halves alone (t_eff 1)."""
    if tid != (h if t_eff > 1 else 0):
        return False
    f0[0] = 0 if h == 0 else e.half_split
    f1[0] = e.half_split if h == 0 else e.layers[0].n_in
    return True


cdef void _halves_forward(Engine* e, Layer* ly, const float* inp, Py_ssize_t n, bint sparse, int t_eff,
                          int tid) noexcept nogil:
    """This thread's halves of the first layer: part[h] = inp[:, f0:f1] @ W[f0:f1, :] for every row and
    unit, summed from 0 in feature order by either kernel (the bitmask kernel or fastnn's GEMM), so a
    dense batch gives the bits of a sparse one. _halves_add then adds the halves by rows."""
    cdef Py_ssize_t f0, f1, O = ly.n_out, I = ly.n_in
    cdef Py_ssize_t ldw = _block_ld(O) if e.blocked else O  # the kernel in its block (_blocks_copy) or the arena
    cdef const float* W = e.bw if e.blocked else ly.W
    cdef float* P
    cdef int h
    for h in range(2):
        if not _half_range(e, h, t_eff, tid, &f0, &f1):
            continue
        P = e.part + h * e.batch_size * O
        if sparse:
            fastnn_sparse_forward(P, O, inp, I, _xrows(e, sparse), W, ldw, <float*>NULL, e.rowbits, 64 * e.nw,
                                  f0, f1, n, 0, O)
        else:
            gemm_rm(False, False, <int>n, <int>O, <int>(f1 - f0), <float>1, inp + f0, <int>I, W + f0 * ldw,
                    <int>ldw, <float>0, P, <int>O)


cdef void _halves_add(Engine* e, Layer* ly, float* Y, Py_ssize_t r0, Py_ssize_t r1, int act) noexcept nogil:
    """Rows [r0, r1) of the first layer: Y = act((part[0] + part[1]) + b)."""
    cdef Py_ssize_t r, c, O = ly.n_out
    cdef const float* p0
    cdef const float* p1
    cdef float* y
    for r in range(r0, r1):
        p0 = e.part + r * O
        p1 = e.part + (e.batch_size + r) * O
        y = Y + r * O
        for c in range(O):
            y[c] = p0[c] + p1[c]
    bias_act_block(Y, O, ly.b, r0, r1, 0, O, act)


cdef void _layer_forward(Engine* e, int l, const float* inp, float* Y, Py_ssize_t n, int act, bint sparse,
                         int t_eff, int tid) noexcept nogil:
    """This thread's units of layer l: Y[:, c0:c1] = act(inp @ W[:, c0:c1] + b) (elementwise act).
    The first layer's sparse kernels read batch row b at inp + rows[b] * I when _xrows gives rows."""
    cdef Layer* ly = &e.layers[l]
    cdef Py_ssize_t c0, c1, r, r0, r1, O = ly.n_out, I = ly.n_in
    cdef const intp_t* rows
    if l == 0 and e.halves:
        _halves_forward(e, ly, inp, n, sparse, t_eff, tid)
        return
    if l == 0 and e.blocked:  # this thread's block: (I, c1 - c0) at bw + I * c0, rows _block_ld apart
        if not _cols(ly, t_eff, tid, &c0, &c1):
            return
        if sparse:
            fastnn_sparse_forward(Y + c0, O, inp, I, _xrows(e, sparse), e.bw + I * c0, _block_ld(c1 - c0),
                                  <float*>NULL, e.rowbits, 64 * e.nw, 0, I, n, 0, c1 - c0)
        else:
            gemm_rm(False, False, <int>n, <int>(c1 - c0), <int>I, <float>1, inp, <int>I, e.bw + I * c0,
                    <int>_block_ld(c1 - c0), <float>0, Y + c0, <int>O)
        bias_act_block(Y, O, ly.b, 0, n, c0, c1, act)
        return
    if l == 0 and e.split_rows:
        if not _split16(n, t_eff, tid, &r0, &r1):
            return
        if sparse:
            rows = _xrows(e, sparse)
            fastnn_sparse_forward(Y + r0 * O, O, inp if rows != NULL else inp + r0 * I, I,
                                  rows + r0 if rows != NULL else rows, ly.W, O, ly.b, e.rowbits + r0, 64 * e.nw, 0, I,
                                  r1 - r0, 0, O)
            bias_act_block(Y + r0 * O, O, <float*>NULL, 0, r1 - r0, 0, O, act)
        else:
            dense_forward_cols(Y + r0 * O, inp + r0 * I, ly.W, ly.b, r1 - r0, I, O, 0, O, act)
        return
    if not _cols(ly, t_eff, tid, &c0, &c1):
        return
    if l == 0 and sparse:
        fastnn_sparse_forward(Y, O, inp, ly.n_in, _xrows(e, sparse), ly.W, O, ly.b, e.rowbits, 64 * e.nw, 0, ly.n_in, n,
                              c0, c1)
        bias_act_block(Y, O, <float*>NULL, 0, n, c0, c1, act)
    else:
        dense_forward_cols(Y, inp, ly.W, ly.b, n, ly.n_in, O, c0, c1, act)


cdef inline const float* _layer_out(Layer* ly, bint train) noexcept nogil:
    """What the next layer reads: in training the output of the last op (A without ops); at
    inference the last BatchNormalization's output (dropout is the identity there), or A."""
    cdef int k
    if train:
        return ly.H
    for k in range(ly.n_post - 1, -1, -1):
        if ly.post[k].kind == POST_BATCH_NORM:
            return ly.post[k].out
    return ly.A


cdef void _post_forward(Engine* e, Layer* ly, Py_ssize_t n, bint train, int t_eff, int tid) noexcept nogil:
    """The layer's ops (BatchNormalization, Dropout) on this thread's units [c0, c1), right after
    their forward: per-unit statistics and elementwise work, so no other thread's columns are read
    and no barrier is needed (the layer's own barrier follows).

    Training: batch statistics (bn_stats_cols: float64, rows in order, as batch_norm.pyx), the
    moving statistics updated with them (Keras' formula), and dropout with the caller's uniforms
    of this step. Inference: the moving statistics, no dropout. Same loops as the layer kernels.
    """
    cdef Py_ssize_t c0, c1, c, r, O = ly.n_out
    cdef const float* cur = ly.A
    cdef const float* u
    cdef PostOp* op
    cdef int k
    if not _cols(ly, t_eff, tid, &c0, &c1):
        return
    for k in range(ly.n_post):
        op = &ly.post[k]
        if op.kind == POST_BATCH_NORM:
            if train:
                bn_stats_cols(op.stats, op.stats + O, cur, O, n, c0, c1)
                bn_update_moving_cols(op.moving_mean, op.moving_var, op.stats, op.stats + O, op.momentum, c0, c1)
            else:  # batch_norm_forward_infer: the moving statistics as float64
                for c in range(c0, c1):
                    op.stats[c] = op.moving_mean[c]
                    op.stats[O + c] = op.moving_var[c]
            bn_coefficients(op.coef, op.coef + O, op.stats + 2 * O, op.stats, op.stats + O, op.gamma,
                            op.epsilon, c0, c1)
            bn_normalize_block(op.out, cur, O, op.coef, op.coef + O, op.beta, 0, n, c0, c1)
            cur = op.out
        elif train:
            u = e.U[op.u_index] + e.u_row * O
            for r in range(n):
                dropout_forward_range(op.out + r * O, op.mask + r * O, cur + r * O, u + r * O, c0, c1, op.keep,
                                      op.scale)
            cur = op.out


cdef void _post_backward(Layer* ly, Py_ssize_t n, Py_ssize_t c0, Py_ssize_t c1) noexcept nogil:
    """Back through the layer's ops, last first, on units [c0, c1) of G (in place): on entry G
    holds the gradient at the layer's output, on return the gradient at its activated outputs.
    BatchNormalization writes dgamma/dbeta (overwritten: the arena is not zeroed) and dX with the
    batch statistics of the forward pass (batch_norm_backward, training=True)."""
    cdef Py_ssize_t r, O = ly.n_out
    cdef float* G = ly.G
    cdef PostOp* op
    cdef int k
    for k in range(ly.n_post - 1, -1, -1):
        op = &ly.post[k]
        if op.kind == POST_BATCH_NORM:
            bn_grad_sums_cols(op.stats + 3 * O, op.stats + 4 * O, G, op.inp, O, op.stats, op.stats + 2 * O, n,
                              c0, c1)
            bn_grad_coefficients(op.coef + 2 * O, op.coef + 3 * O, op.coef + 4 * O, op.dgamma, op.dbeta,
                                 op.stats + 3 * O, op.stats + 4 * O, op.stats + 2 * O, n, c0, c1, False)
            bn_input_grad_block(G, G, op.inp, O, op.coef + O, op.coef + 3 * O, op.coef, op.coef + 2 * O,
                                op.coef + 4 * O, True, 0, n, c0, c1)
        else:
            for r in range(n):
                dropout_backward_range(G + r * O, G + r * O, op.mask + r * O, c0, c1, op.scale)


cdef void _loss_rows(Engine* e, const float* final, const intp_t* ids, const float* Y, Py_ssize_t n,
                     Py_ssize_t r0, Py_ssize_t r1, bint with_grad, int slot=0) noexcept nogil:
    """Per-row loss (+ gradient at the last pre-activation) and metrics of rows [r0, r1), into row
    buffer `slot` (0 or 1: _infer_rows writes one chunk's rows while thread 0 adds the last's)."""
    cdef Layer* last = &e.layers[e.L - 1]
    cdef Py_ssize_t K = last.n_out, r
    cdef int m
    cdef const float* outputs = final
    cdef bint need_probs = e.fused and last.act != ACT_LINEAR and e.n_metrics > 0
    # the fused losses hand back the activated outputs they compute anyway (for the metrics)
    cdef double* rowloss = e.rowloss + slot * e.rows_cap
    cdef double* rowmetric = e.rowmetric + slot * e.n_metrics * e.rows_cap
    loss_rows(e.loss, rowloss, last.G if with_grad else <float*>NULL, final, ids, Y, r0, r1, K, 1.0 / n,
              e.probs if need_probs else <float*>NULL)
    if with_grad and not e.fused and last.act != ACT_LINEAR:
        act_backward_rows(last.G, last.G, final, r0, r1, K, last.act)
    if need_probs:
        outputs = e.probs
    for m in range(e.n_metrics):
        for r in range(r0, r1):
            rowmetric[m * e.rows_cap + r] = metric_row(e.metrics[m], outputs, ids, Y, r, K)


cdef void _reduce_rows(Engine* e, Py_ssize_t n, int slot=0) noexcept nogil:
    """Thread 0: add this batch's loss and metrics in row order (as _reference's sums)."""
    cdef Py_ssize_t r
    cdef int m
    cdef double s = 0, sm
    cdef const double* rowloss = e.rowloss + slot * e.rows_cap
    cdef const double* rowmetric = e.rowmetric + slot * e.n_metrics * e.rows_cap
    if e.loss == LOSS_SIGMOID_BXENT and e.mode == MODE_TRAIN:
        for r in range(n):  # sigmoid_bxent_backward sums the float64 values
            s += rowloss[r]
    else:
        for r in range(n):  # the others sum the per-sample losses rounded to float32
            s += <double><float>rowloss[r]
    e.loss_sum += s
    for m in range(e.n_metrics):
        sm = 0
        for r in range(n):
            sm += rowmetric[m * e.rows_cap + r]
        e.metric_sums[m] += sm
    e.seen += n


cdef inline bint _last_by_rows(Engine* e, int l, Py_ssize_t n, int T, bint loss, bint fuse) noexcept nogil:
    """Whether layer l is a last layer too small to split by units that runs by ROWS with its loss
    (see _forward_and_loss)."""
    cdef Layer* ly = &e.layers[l]
    cdef int act = ACT_LINEAR if (l == e.L - 1 and fuse) else ly.act
    return (loss and l == e.L - 1 and l > 0 and _team(ly, n, T) == 1 and T > 1 and act != ACT_SOFTMAX
            and ly.n_out >= 8 and n >= 4 * T)


cdef bint _forward_and_loss(Engine* e, const float* x, Py_ssize_t n, float* final_out, bint fuse,
                            const intp_t* ids, const float* Y, bint loss, bint with_grad,
                            int tid, int T) noexcept nogil:
    """Forward pass of n rows of x (masks already built), then (with `loss`) the
    loss phase and thread 0's reduction. Returns whether the sparse path ran.

    The last layer writes to final_out (or its own buffer); with `fuse` it stays
    the pre-activation for the fused loss. When the last layer is small (one
    owner), thread 0 also does the loss rows right away: one barrier fewer.
    """
    cdef int l, act, t_eff
    cdef Py_ssize_t r0, r1
    cdef const float* inp = x
    cdef float* out
    cdef Layer* ly
    cdef bint sparse = _use_sparse(e, n, T), solo, train = e.mode == MODE_TRAIN
    if e.csr and e.tail_rows:
        _tail_forward(e, final_out, fuse, ids, Y, loss, with_grad, n, tid, T)
        return sparse
    for l in range(e.L):
        ly = &e.layers[l]
        out = final_out if (l == e.L - 1 and final_out != NULL) else ly.A
        act = ly.act
        if l == e.L - 1 and fuse:
            act = ACT_LINEAR
        t_eff = _team(ly, n, T)
        if _last_by_rows(e, l, n, T, loss, fuse):
            # A last layer too small to split by units (MNIST's 10): split by ROWS with its loss, so
            # the other threads do not wait while thread 0 runs both (12.6 us of a 97 us MNIST step
            # on two threads). Each row's sums run in the same order on any rows (csrc/fastnn_gemm.h;
            # hence 8 units or more: narrower layers go to BLAS), so no bit changes.
            _rows_of(n, tid, T, &r0, &r1)
            dense_forward_cols(out + r0 * ly.n_out, inp + r0 * ly.n_in, ly.W, ly.b, r1 - r0, ly.n_in, ly.n_out,
                               0, ly.n_out, act)
            _loss_rows(e, out, ids, Y, n, r0, r1, with_grad)
            _sync(T)
            if tid == 0:
                _reduce_rows(e, n)  # reads the row buffers only; the next writer is behind 2+ barriers
            return sparse
        if l == 0 and e.csr:
            _csr_forward(e, out, n, ACT_LINEAR if act == ACT_SOFTMAX else act, tid, T)
            if ly.n_post or l == e.L - 1:
                _sync(T)  # split over rows: the post ops / loss below read other threads' rows
        else:
            _layer_forward(e, l, inp, out, n, ACT_LINEAR if act == ACT_SOFTMAX else act, sparse, t_eff, tid)
        if ly.n_post:  # never on the last layer nor after a softmax (MLP._check)
            _post_forward(e, ly, n, train, t_eff, tid)
        solo = l == e.L - 1 and t_eff == 1 and act != ACT_SOFTMAX
        if solo and loss:
            if tid == 0:
                _loss_rows(e, out, ids, Y, n, 0, n, with_grad)
                _reduce_rows(e, n)
            _sync(T)
            return sparse
        _sync(T)
        if l == 0 and e.halves:  # the partial sums are complete: each thread adds up its rows
            _rows_of(n, tid, T, &r0, &r1)
            _halves_add(e, ly, out, r0, r1, act)
            if not _last_by_rows(e, 1, n, T, loss, fuse):  # (that one reads only these rows)
                _sync(T)
        if act == ACT_SOFTMAX:
            _rows_of(n, tid, T, &r0, &r1)
            softmax_rows(out, out, r0, r1, ly.n_out)
            _sync(T)
        inp = _layer_out(ly, train) if ly.n_post else out
    if loss:
        _rows_of(n, tid, T, &r0, &r1)
        _loss_rows(e, inp, ids, Y, n, r0, r1, with_grad)
        _sync(T)
        if tid == 0:
            _reduce_rows(e, n)   # reads the row buffers only; the next writer is behind 2+ barriers
    return sparse


cdef void _first_layer_grad_and_update(Engine* e, Layer* ly, const float* x, Py_ssize_t n, bint sparse,
                                       double* acc, Py_ssize_t c0, Py_ssize_t c1, Py_ssize_t i_lo,
                                       Py_ssize_t i_hi, bint with_bias) noexcept nogil:
    """The first layer's weight gradient AND optimizer update for this thread's units, a block
    of input rows at a time: each gradient block is still in L1 when the update reads it.

    The first layer's kernel is read by nothing else after its gradient (no input
    gradient is needed), so it can be updated right away; this saves a pass over
    the gradient (it is the bulk of the arena: 100,352 of MNIST-MLP's 101,770).
    """
    cdef Py_ssize_t f0, f1, i, I = ly.n_in, O = ly.n_out, w_off = ly.W - e.params, blk
    blk = FUSED_ROWS_SPARSE if sparse else FUSED_ROWS_DENSE
    f0 = i_lo
    while f0 < i_hi:
        f1 = min(f0 + blk, i_hi)
        if sparse:
            fastnn_sparse_weight_grad(ly.dW, O, x, I, _xrows(e, sparse), e.g0, e.ldg0, e.mask, e.nw, f0, f1, c0, c1)
        else:
            gemm_rm(True, False, <int>(f1 - f0), <int>(c1 - c0), <int>n, <float>1, x + f0, <int>I,
                    e.g0 + c0, <int>e.ldg0, <float>0, ly.dW + f0 * O + c0, <int>O)
        if c0 == 0 and c1 == O:
            _update_range(e, w_off + f0 * O, w_off + f1 * O, e.alpha)
        else:
            for i in range(f0, f1):
                _update_range(e, w_off + i * O + c0, w_off + i * O + c1, e.alpha)
        f0 = f1
    if ly.db != NULL and with_bias:
        bias_grad_cols(ly.db, acc + c0, e.g0, e.ldg0, n, c0, c1, False)
        _update_range(e, (ly.b - e.params) + c0, (ly.b - e.params) + c1, e.alpha)


cdef inline void transpose_cols(float* WT, const float* W, Py_ssize_t I, Py_ssize_t O, Py_ssize_t i0,
                                Py_ssize_t i1) noexcept nogil:
    """WT (O, I)[:, i0:i1] = W (I, O)[i0:i1, :]^T."""
    cdef Py_ssize_t i, k
    for i in range(i0, i1):
        for k in range(O):
            WT[k * I + i] = W[i * O + k]


cdef inline void _update_block(Engine* e, float* w, float* g, float* s0, float* s1, float* s2, Py_ssize_t k,
                               double alpha) noexcept nogil:
    """The optimizer's update of k contiguous elements given by their own pointers (column blocks)."""
    if k <= 0:
        return
    if e.opt == OPT_SGD:
        sgd_range(w, g, s0, 0, k, e.lr, e.h_a, e.flag1)
    elif e.opt == OPT_RMSPROP:
        rmsprop_range(w, g, s0, s1, s2, 0, k, e.lr, e.h_a, e.h_b, e.h_c, e.flag1)
    elif e.opt == OPT_ADAM:
        adam_range(w, g, s0, s1, s2, 0, k, alpha, e.beta_1, e.beta_2, e.h_c, e.flag1)
    else:
        adadelta_range(w, g, s0, s1, 0, k, e.lr, e.h_a, e.h_c)


cdef inline float* _at(float* p, Py_ssize_t off) noexcept nogil:
    return p + off if p != NULL else NULL


cdef void _first_layer_grad_and_update_blocked(Engine* e, Layer* ly, const float* x, Py_ssize_t n,
                                               bint sparse, double* acc, Py_ssize_t c0,
                                               Py_ssize_t c1) noexcept nogil:
    """_first_layer_grad_and_update on this thread's column block (see _blocks_in)."""
    cdef Py_ssize_t f0, f1, I = ly.n_in, O = ly.n_out, w = c1 - c0, blk, base = ly.n_in * c0, off
    cdef Py_ssize_t ld = _block_ld(w)  # (the padding columns are zero: their update leaves them zero)
    blk = FUSED_ROWS_SPARSE if sparse else FUSED_ROWS_DENSE
    f0 = 0
    while f0 < I:
        f1 = min(f0 + blk, I)
        off = base + f0 * ld
        if sparse:
            fastnn_sparse_weight_grad(e.bg + base, ld, x, I, _xrows(e, sparse), e.g0 + c0, e.ldg0, e.mask, e.nw, f0, f1,
                                      0, w)
        else:
            gemm_rm(True, False, <int>(f1 - f0), <int>w, <int>n, <float>1, x + f0, <int>I,
                    e.g0 + c0, <int>e.ldg0, <float>0, e.bg + off, <int>ld)
        _update_block(e, e.bw + off, e.bg + off, _at(e.bs0, off), _at(e.bs1, off), _at(e.bs2, off),
                      (f1 - f0) * ld, e.alpha)
        f0 = f1
    if ly.db != NULL:
        bias_grad_cols(ly.db, acc + c0, e.g0, e.ldg0, n, c0, c1, False)
        _update_range(e, (ly.b - e.params) + c0, (ly.b - e.params) + c1, e.alpha)


cdef void _half_grad_and_update_blocked(Engine* e, Layer* ly, const float* x, Py_ssize_t n, bint sparse,
                                       double* acc, Py_ssize_t i0, Py_ssize_t i1, bint with_bias) noexcept nogil:
    """_first_layer_grad_and_update of the kernel rows [i0, i1), all units, in the halves' block (see
    _blocks_copy): rows _block_ld(O) apart, padding zero (its update leaves it zero)."""
    cdef Py_ssize_t f0, f1, I = ly.n_in, O = ly.n_out, ld = _block_ld(ly.n_out), blk
    blk = FUSED_ROWS_SPARSE if sparse else FUSED_ROWS_DENSE
    f0 = i0
    while f0 < i1:
        f1 = min(f0 + blk, i1)
        if sparse:
            fastnn_sparse_weight_grad(e.bg, ld, x, I, _xrows(e, sparse), e.g0, e.ldg0, e.mask, e.nw, f0, f1, 0, O)
        else:
            gemm_rm(True, False, <int>(f1 - f0), <int>O, <int>n, <float>1, x + f0, <int>I, e.g0, <int>e.ldg0, <float>0,
                    e.bg + f0 * ld, <int>ld)
        _update_block(e, e.bw + f0 * ld, e.bg + f0 * ld, _at(e.bs0, f0 * ld), _at(e.bs1, f0 * ld),
                      _at(e.bs2, f0 * ld), (f1 - f0) * ld, e.alpha)
        f0 = f1
    if ly.db != NULL and with_bias:
        bias_grad_cols(ly.db, acc, e.g0, e.ldg0, n, 0, O, False)
        _update_range(e, ly.b - e.params, (ly.b - e.params) + O, e.alpha)


cdef void _blocks_copy(Engine* e, int tid, int T, bint into_blocks) noexcept nogil:
    """Copy this thread's units of the first layer's kernel and optimizer slots into its column
    block (into_blocks) or back into the arena; each thread touches only its own units. With the
    feature halves, its half's kernel rows, all units, into one (I, _block_ld(O)) block: every row
    then starts on 32 bytes (the halves' forward of Fashion-MNIST's 100 units: 24.2 us per half with
    the arena's 400-byte rows, 21.2 with 416; C harness)."""
    cdef Layer* ly = &e.layers[0]
    cdef Py_ssize_t c0, c1, i, w, I = ly.n_in, O = ly.n_out, w_off = ly.W - e.params, base, ld, r0 = 0, r1 = I
    cdef float* arena[4]
    cdef float* block[4]
    cdef int k, t_eff = _team(ly, e.batch_size, T)
    if e.halves:  # rows [r0, r1): thread h's half on a team, all of them alone
        c0, c1, base = 0, O, 0
        if tid > 1 or (t_eff > 1 and not _half_range(e, tid, t_eff, tid, &r0, &r1)) or (t_eff == 1 and tid > 0):
            return
    elif not _cols(ly, t_eff, tid, &c0, &c1):
        return
    else:
        base = I * c0
    w = c1 - c0
    ld = _block_ld(w)
    arena[0] = ly.W
    block[0] = e.bw
    arena[1] = _at(e.s0, w_off)
    block[1] = e.bs0
    arena[2] = _at(e.s1, w_off)
    block[2] = e.bs1
    arena[3] = _at(e.s2, w_off)
    block[3] = e.bs2
    for k in range(4):
        if arena[k] == NULL or block[k] == NULL:
            continue
        for i in range(r0, r1):
            if into_blocks:  # the padding columns zeroed: another call's split may have used them
                memcpy(block[k] + base + i * ld, arena[k] + i * O + c0, w * sizeof(float))
                memset(block[k] + base + i * ld + w, 0, (ld - w) * sizeof(float))
            else:
                memcpy(arena[k] + i * O + c0, block[k] + base + i * ld, w * sizeof(float))
    if into_blocks and ld > w:  # the gradient scratch's padding too (the update reads it)
        for i in range(r0, r1):
            memset(e.bg + base + i * ld + w, 0, (ld - w) * sizeof(float))


cdef void _backward(Engine* e, const float* x, Py_ssize_t n, bint sparse, int tid, int T) noexcept nogil:
    """Gradients of every layer into the gradient arena (overwritten, not accumulated).

    For layer l, its owners write dW_l/db_l of their units; the owners of
    layer l-1's units write their columns of G_{l-1} = G_l W_l^T, take them back
    through layer l-1's ops (_post_backward) and apply the activation derivative,
    all in one phase: a barrier is needed only before G_{l-1} is read whole (the
    dX of layer l-1), i.e. between hidden layers.
    """
    cdef int l, t_eff, t_below, h
    cdef Py_ssize_t c0, c1, i0, i1, r0, r1, I, O, ldgb
    cdef Layer* ly
    cdef Layer* below
    cdef float* gb
    cdef const float* inp
    cdef double* acc = e.acc + tid * e.acc_stride
    if e.csr and e.tail_rows and e.mode == MODE_TRAIN:
        _tail_backward(e, n, tid, T)
        return
    for l in range(e.L - 1, -1, -1):
        ly = &e.layers[l]
        I = ly.n_in
        O = ly.n_out
        inp = x if l == 0 else _layer_out(&e.layers[l - 1], True)
        t_eff = _team(ly, n, T)
        if l == 0 and e.csr and e.mode == MODE_TRAIN:
            _sync(T)  # G of the first layer was written by its units' owners; it is read whole
            _csr_grad_and_update(e, ly, n, acc, tid, T)
            break
        if l == 0 and e.halves:  # the kernel rows of this thread's half, all units; the bias with half 1
            # (thread 0 has the last layer's gradient, the labels and the loss sums)
            for h in range(2):
                if not _half_range(e, h, t_eff, tid, &i0, &i1):
                    continue
                if e.blocked:
                    _half_grad_and_update_blocked(e, ly, x, n, sparse, acc, i0, i1, h == 1)
                else:
                    _first_layer_grad_and_update(e, ly, x, n, sparse, acc, 0, O, i0, i1, h == 1)
        elif l == 0 and e.blocked:
            if _cols(ly, t_eff, tid, &c0, &c1):
                _first_layer_grad_and_update_blocked(e, ly, x, n, sparse, acc, c0, c1)
        elif l == 0 and e.split_rows:  # this thread's input features, all units; bias by thread 0
            if _split16(I, t_eff, tid, &i0, &i1):
                _first_layer_grad_and_update(e, ly, x, n, sparse, acc, 0, O, i0, i1, tid == 0)
            elif tid == 0:
                _first_layer_grad_and_update(e, ly, x, n, sparse, acc, 0, O, 0, 0, True)
        elif _cols(ly, t_eff, tid, &c0, &c1):
            if l == 0 and e.mode == MODE_TRAIN:
                _first_layer_grad_and_update(e, ly, x, n, sparse, acc, c0, c1, 0, I, True)
            else:
                dense_weight_grad_cols(ly.dW, acc, ly.db, ly.G, inp, n, I, O, c0, c1, 0)
        if l == 0:
            break
        below = &e.layers[l - 1]
        t_below = _team(below, n, T)
        gb, ldgb = (e.g0, e.ldg0) if l == 1 else (below.G, I)  # (e.g0 is below.G unless the halves pad it)
        if _cols(below, t_below, tid, &i0, &i1):
            if O <= SMALL_UNITS:  # W^T's columns [i0, i1), then one pass with its sums in registers
                transpose_cols(ly.WT, ly.W, I, O, i0, i1)
                fastnn_small_input_grad(gb, ldgb, ly.G, O, ly.WT, I, ly.W, I, n, O, i0, i1)
            else:  # W^T's columns [i0, i1), then csrc/fastnn_gemm.h: the same sums whatever the split
                transpose_cols(ly.WT, ly.W, I, O, i0, i1)
                gemm_rm(False, False, <int>n, <int>(i1 - i0), <int>O, <float>1, ly.G, <int>O, ly.WT + i0, <int>I,
                        <float>0, gb + i0, <int>ldgb)
            if below.n_post:  # the same units: no barrier (see _post_backward)
                _post_backward(below, n, i0, i1)
            if below.act != ACT_SOFTMAX and below.act != ACT_LINEAR:
                act_backward_block(gb, ldgb, gb, ldgb, below.A, I, 0, n, i0, i1, below.act)
        if below.act == ACT_SOFTMAX:
            _sync(T)
            _rows_of(n, tid, T, &r0, &r1)
            softmax_backward_rows(below.G, below.G, below.A, r0, r1, I)
            _sync(T)
        elif l - 1 > 0 or e.split_rows or e.halves:  # (split_rows, halves: layer 0's gradient reads all
            # of G_0's units)
            _sync(T)
    _sync(T)


cdef inline void _update_range(Engine* e, Py_ssize_t n0, Py_ssize_t n1, double alpha) noexcept nogil:
    """The optimizer's update of arena elements [n0, n1)."""
    if n1 <= n0:
        return
    if e.opt == OPT_SGD:
        sgd_range(e.params, e.grads, e.s0, n0, n1, e.lr, e.h_a, e.flag1)
    elif e.opt == OPT_RMSPROP:
        rmsprop_range(e.params, e.grads, e.s0, e.s1, e.s2, n0, n1, e.lr, e.h_a, e.h_b, e.h_c, e.flag1)
    elif e.opt == OPT_ADAM:
        adam_range(e.params, e.grads, e.s0, e.s1, e.s2, n0, n1, alpha, e.beta_1, e.beta_2, e.h_c, e.flag1)
    else:
        adadelta_range(e.params, e.grads, e.s0, e.s1, n0, n1, e.lr, e.h_a, e.h_c)


cdef inline double _alpha(Engine* e, Py_ssize_t iteration) noexcept nogil:
    """Adam's step size for step t; every thread computes the same value."""
    if e.opt != OPT_ADAM:
        return 0
    # _reference: lr * np.sqrt(1 - b2**t) / (1 - b1**t) in float64 (pow = Python's float **)
    return e.lr * sqrt(1.0 - pow(e.beta_2, <double>iteration)) / (1.0 - pow(e.beta_1, <double>iteration))


cdef void _update(Engine* e, Py_ssize_t iteration, Py_ssize_t n, int tid, int T) noexcept nogil:
    """One fused optimizer pass over the parameters this thread owns (see _cols).

    Elementwise, so the split does not change any result. Parameters outside
    every layer (gaps in the arena) belong to thread 0. No barrier after it:
    the next step's gather is followed by one before anything reads a weight.
    """
    cdef int l, t_eff, k
    cdef Py_ssize_t c0, c1, i, w_off, b_off, O
    cdef Layer* ly
    cdef PostOp* op
    cdef double alpha = e.alpha
    for l in range(e.L):  # BatchNormalization's gamma/beta: by the owners of the layer's units
        ly = &e.layers[l]
        if not ly.n_post or not _cols(ly, _team(ly, n, T), tid, &c0, &c1):
            continue
        for k in range(ly.n_post):
            op = &ly.post[k]
            if op.kind == POST_BATCH_NORM:  # (never the moving statistics: they are not trainable)
                if op.gamma != NULL:
                    _update_range(e, (op.gamma - e.params) + c0, (op.gamma - e.params) + c1, alpha)
                if op.beta != NULL:
                    _update_range(e, (op.beta - e.params) + c0, (op.beta - e.params) + c1, alpha)
    for l in range(1, e.L):  # the first layer was updated with its gradient (_first_layer_grad_and_update)
        ly = &e.layers[l]
        O = ly.n_out
        t_eff = _team(ly, n, T)
        if not _cols(ly, t_eff, tid, &c0, &c1):
            continue
        w_off = ly.W - e.params
        if c0 == 0 and c1 == O:
            _update_range(e, w_off, w_off + ly.n_in * O, alpha)
        else:
            for i in range(ly.n_in):
                _update_range(e, w_off + i * O + c0, w_off + i * O + c1, alpha)
        if ly.b != NULL:
            b_off = ly.b - e.params
            _update_range(e, b_off + c0, b_off + c1, alpha)
    if tid == 0:
        for i in range(e.n_gaps):
            _update_range(e, e.gaps[2 * i], e.gaps[2 * i + 1], alpha)


cdef void _train(Engine* e, int tid, int T) noexcept nogil:
    cdef Py_ssize_t s, start, n
    cdef bint sparse
    cdef const float* x
    cdef double t0 = _tick(e, tid, 0, 0)
    if e.blocked:  # nobody reads another thread's block: no barrier needed after the copy
        _blocks_copy(e, tid, T, True)
    for s in range(e.n_batches):
        start = (e.first_batch + s) * e.batch_size
        n = e.n_order - start
        if n > e.batch_size:
            n = e.batch_size
        _gather(e, start, n, tid, T)
        if tid == 0:  # read after the barrier; the last reads of the previous value were 3+ barriers ago
            e.u_row = s * e.batch_size
            e.b_rows = e.order + start
        t0 = _tick(e, tid, 0, t0)
        _sync(T)
        t0 = _tick(e, tid, 2, t0)
        x = _xb(e, tid, T)
        if e.sparse_ok and not e.csr:
            if _use_sparse(e, n, T):
                x = e.X  # rows at e.X + b_rows[b] * ldx (_xrows)
            else:
                _copy_batch(e, start, n, 0, 0, tid, T)  # a dense batch: the GEMMs need it contiguous
        sparse = _forward_and_loss(e, x, n, <float*>NULL, e.fused,
                                   e.ids_b if e.ids != NULL else <intp_t*>NULL,
                                   e.yb if e.ids == NULL else <float*>NULL, True, True, tid, T)
        t0 = _tick(e, tid, 1, t0)
        e.alpha = _alpha(e, e.iterations + s + 1)
        _backward(e, x, n, sparse, tid, T)
        t0 = _tick(e, tid, 3, t0)
        _update(e, e.iterations + s + 1, n, tid, T)
        t0 = _tick(e, tid, 4, t0)
    if e.blocked:
        _blocks_copy(e, tid, T, False)
    _sync(T)  # the caller reads the parameters


cdef void _infer(Engine* e, int tid, int T) noexcept nogil:
    """evaluate / predict over all rows of X, `chunk` rows at a time (no gather)."""
    cdef Py_ssize_t start, n, K = e.layers[e.L - 1].n_out
    cdef bint fuse = e.fused and e.mode == MODE_EVAL
    cdef const float* x
    start = 0
    while start < e.n_rows:
        n = e.n_rows - start
        if n > e.chunk:
            n = e.chunk
        x = e.X + start * e.ldx if not e.csr else NULL
        _masks(e, x, n, tid, T)
        if tid == 0:  # read after the barrier; the previous chunk's reads are behind its barriers
            e.b_rows = NULL
            e.b_row0 = start
        _sync(T)
        if e.mode == MODE_PREDICT:
            _forward_and_loss(e, x, n, e.out + start * K, False, NULL, NULL, False, False, tid, T)
        else:
            _forward_and_loss(e, x, n, <float*>NULL, fuse, e.ids + start if e.ids != NULL else <intp_t*>NULL,
                              e.Y + start * K if e.Y != NULL else <float*>NULL, True, False, tid, T)
            _sync(T)  # thread 0's reduction reads the row buffers the next chunk rewrites
        start += n


cdef bint _infer_rows_ok(Engine* e) noexcept nogil:
    """Whether evaluate/predict run by ROWS (_infer_rows): dense input (CSR input has its own row
    path, _tail_forward). A property of the input, so the same rows get the same bits on any thread
    count."""
    return not e.csr


cdef void _bn_infer_coefficients(Engine* e) noexcept nogil:
    """Every BatchNormalization's inference coefficients from its moving statistics, all units (as
    _post_forward computes them per unit owner; _infer_rows: thread 0, before a barrier)."""
    cdef int l, k
    cdef Py_ssize_t c, O
    cdef PostOp* op
    for l in range(e.L):
        O = e.layers[l].n_out
        for k in range(e.layers[l].n_post):
            op = &e.layers[l].post[k]
            if op.kind != POST_BATCH_NORM:
                continue
            for c in range(O):  # batch_norm_forward_infer: the moving statistics as float64
                op.stats[c] = op.moving_mean[c]
                op.stats[O + c] = op.moving_var[c]
            bn_coefficients(op.coef, op.coef + O, op.stats + 2 * O, op.stats, op.stats + O, op.gamma,
                            op.epsilon, 0, O)


cdef void _infer_rows(Engine* e, int tid, int T) noexcept nogil:
    """evaluate / predict on dense input, `chunk` rows at a time, each thread taking its rows of a
    chunk through every layer and the loss: one barrier per chunk (the column split needs three,
    ~1,100 per Fashion-MNIST validation pass), and the loss and metrics of a chunk's rows go to one
    of two row buffers so that thread 0 adds them up (in row order) while the team runs the next.
    Each row gets the same bits on any rows (the bitmask kernel; fastnn's GEMM for 8+ units, an
    ordered sum below: _rows_forward; the sparse and dense paths give the same bits).
    BatchNormalization normalizes the thread's rows with coefficients thread 0 computes first (the
    same elementwise loop as _post_forward); Dropout is the identity at inference."""
    cdef Py_ssize_t start = 0, n, r0, r1, I, O, I0 = e.layers[0].n_in, K = e.layers[e.L - 1].n_out
    cdef bint fuse = e.fused and e.mode == MODE_EVAL, sparse, last
    cdef const float* x
    cdef const float* inp
    cdef float* out
    cdef Layer* ly
    cdef PostOp* op
    cdef int l, k, act, slot = 0
    for l in range(e.L):
        if e.layers[l].n_post:  # (one barrier per call: the coefficients are read by every thread)
            if tid == 0:
                _bn_infer_coefficients(e)
            _sync(T)
            break
    while start < e.n_rows:
        n = min(e.chunk, e.n_rows - start)
        _rows_of(n, tid, T, &r0, &r1)
        x = e.X + start * e.ldx
        if r1 > r0:
            sparse = False
            if e.sparse_ok:  # this thread's rows, every word; no featmask (no weight gradient)
                sparse = fastnn_gather_bitmaps(<float*>NULL, 0, x + r0 * e.ldx, e.ldx, <intp_t*>NULL, r1 - r0,
                                               <intp_t*>NULL, 0, 0, 0, I0, e.rowbits + r0, e.nwi, <uint64_t*>NULL,
                                               e.nw_cap, e.octets, 0, e.nwi) <= SPARSE_MAX_DENSITY * (r1 - r0) * I0
            inp = x
            for l in range(e.L):
                ly = &e.layers[l]
                I = ly.n_in
                O = ly.n_out
                last = l == e.L - 1
                out = e.out + start * K if (last and e.mode == MODE_PREDICT) else ly.A
                act = ACT_LINEAR if (ly.act == ACT_SOFTMAX or (last and fuse)) else ly.act
                if l == 0 and sparse:  # (the kernel padded in the block pool on long calls: see infer)
                    fastnn_sparse_forward(out + r0 * O, O, x + r0 * e.ldx, e.ldx, <intp_t*>NULL,
                                          e.bw if e.blocked else ly.W, _block_ld(O) if e.blocked else O, ly.b,
                                          e.rowbits + r0, 64 * e.nw_cap, 0, ly.n_in, r1 - r0, 0, O)
                    bias_act_block(out + r0 * O, O, <float*>NULL, 0, r1 - r0, 0, O, act)
                else:
                    _rows_forward(out + r0 * O, inp + r0 * I, ly.W, ly.b, r1 - r0, I, O, act)
                if ly.act == ACT_SOFTMAX and not (last and fuse):
                    softmax_rows(out, out, r0, r1, O)
                inp = out
                for k in range(ly.n_post):  # (never on the last layer; Dropout: the identity here)
                    op = &ly.post[k]
                    if op.kind == POST_BATCH_NORM:
                        bn_normalize_block(op.out, inp, O, op.coef, op.coef + O, op.beta, r0, r1, 0, O)
                        inp = op.out
            if e.mode == MODE_EVAL:
                _loss_rows(e, inp, e.ids + start if e.ids != NULL else <intp_t*>NULL,
                           e.Y + start * K if e.Y != NULL else <float*>NULL, n, r0, r1, False, slot)
        _sync(T)  # the chunk's rows are written; the one before was added up (thread 0 passed here)
        if e.mode == MODE_EVAL and tid == 0:
            _reduce_rows(e, n, slot)
        slot = 1 - slot
        start += n


cdef void _run(Engine* e, int nt, bint pin_blas) noexcept nogil:
    """Run e.mode on nt threads: one team, phases separated by barriers.

    BLAS is pinned to one thread whenever fastnn may use several (pin_blas):
    with a team, the team splits the GEMMs; alone, the step was too small to
    share, and OpenBLAS's own spinning threads on such GEMMs turned the MNIST
    MLP from ~0.3 s into 13-70 s per epoch whenever another process held a
    core (measured on the 2-core CI machine). Only when fastnn is limited to
    one thread (or built without OpenMP) does BLAS keep its own threads.
    """
    cdef int blas_prev = blas_threads_begin(1) if pin_blas else -1
    cdef int tid, T
    cdef unsigned int csr
    if nt <= 1:
        csr = fastnn_denormals_flush()
        if e.mode == MODE_TRAIN:
            _train(e, 0, 1)
        elif _infer_rows_ok(e):
            _infer_rows(e, 0, 1)
        else:
            _infer(e, 0, 1)
        fastnn_denormals_restore(csr)
    else:
        with parallel(num_threads=nt):
            tid = threadid()
            T = fastnn_team_size()  # the team OpenMP actually gave us
            csr = fastnn_denormals_flush()
            if e.mode == MODE_TRAIN:
                _train(e, tid, T)
            elif _infer_rows_ok(e):
                _infer_rows(e, tid, T)
            else:
                _infer(e, tid, T)
            fastnn_denormals_restore(csr)
    blas_threads_end(blas_prev)


# --------------------------------------------------------------------------- Python side
cdef object _aligned(Py_ssize_t n, dtype):
    """n elements of dtype, 64-byte aligned (whole cache lines per thread block)."""
    item = np.dtype(dtype).itemsize
    raw = np.zeros(n + 64 // item + 1, dtype)
    off = ((-raw.ctypes.data) % 64) // item
    return raw[off:off + n]


def _choose_half_split(X, order, Py_ssize_t I):
    """The first feature of the first layer's second half: a multiple of 16 (16 kernel rows are whole
    cache lines for any unit count) in [16, I - 16], where the non-zeros of up to
    HALVES_SAMPLE_ROWS evenly spaced rows of the call are shared most evenly (Fashion-MNIST: 416 of
    784, where the middle, 392, leaves 46% to the first half; rows without non-zeros: the middle)."""
    order = np.asarray(order)
    step = max(1, order.shape[0] // HALVES_SAMPLE_ROWS)
    counts = np.count_nonzero(np.asarray(X)[np.sort(order[::step])], axis=0)
    ends = np.arange(16, I - 15, 16)
    if ends.size == 0:
        return max(1, I // 2)
    total = counts.sum()
    if total == 0:
        return int(ends[(ends.size - 1) // 2])
    before = np.cumsum(counts)[ends - 1]
    return int(ends[np.argmin(np.abs(2 * before - total))])


cdef inline size_t _addr(a):
    return <size_t>a.ctypes.data if a is not None else 0


def _f32_arena(name, a, n):
    if not isinstance(a, np.ndarray) or a.dtype != np.float32:
        raise TypeError(f"MLP: argument `{name}` must be a float32 NumPy array (the compiled engine is "
                        f"float32-only); received {describe(a)}.")
    if a.ndim != 1 or (n >= 0 and a.shape[0] != n):
        raise ValueError(f"MLP: argument `{name}` must be a 1-D array of {n if n >= 0 else 'N'} "
                         f"elements; received {describe(a)}.")
    if not a.flags.c_contiguous or not a.flags.writeable:
        raise ValueError(f"MLP: argument `{name}` is updated in place and must be a writeable "
                         f"C-contiguous array; received {describe(a)}.")
    return a


def _real_arg(owner, name, value, low, high):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not low <= value <= high:
        raise ValueError(f"{owner}: argument `{name}` must be a number in [{low}, {high}]; received "
                         f"{describe(value)}.")
    return float(value)


def _int_arg(owner, name, value, minimum=0):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{owner}: argument `{name}` must be an integer >= {minimum}; received {describe(value)}.")
    return int(value)


cdef class _Core:
    """C state of one MLP: the Engine struct and the arrays its pointers point into."""
    cdef Engine e
    cdef list keep          # every array a pointer in `e` points into
    cdef list gaps          # slices of the gradient arena no layer writes (zeroed per call)
    cdef Py_ssize_t I0, K
    cdef object n_threads
    cdef object acc         # (threads * acc_stride,) float64, grown to the team size
    cdef object nnz_part    # (threads * 8,) intp, grown to the team size
    cdef object xb          # (threads * batch_size * I0,) float32: the batch, a copy per thread of a team
    cdef object u_addrs     # (n_dropout,) intp: the addresses Engine.U points to, set per call
    cdef int n_dropout
    cdef public int force_threads  # > 0: at most this many threads (MLP._train_adaptive)
    cdef public bint continue_sums # train() adds to the previous call's loss/metric sums (its pieces)
    cdef object csr_split   # CSR input, training: (T + 1,) intp, Engine.csr_split

    def __cinit__(self):
        self.e.layers = NULL

    def __dealloc__(self):
        if self.e.layers != NULL:
            PyMem_Free(self.e.layers)
            self.e.layers = NULL

    def setup(self, params, grads, list layers, str loss, tuple metrics, str optimizer, tuple slots,
              Py_ssize_t batch_size, n_threads):
        cdef Engine* e = &self.e
        cdef Py_ssize_t N = params.shape[0], l, width = 1, I, O, w_off, b_off
        cdef Layer* ly
        self.keep = [params, grads]
        self.n_threads = n_threads
        e.L = len(layers)
        e.layers = <Layer*>PyMem_Malloc(e.L * sizeof(Layer))
        if e.layers == NULL:
            raise MemoryError()
        e.loss = _LOSS_CODES[loss]
        e.fused = loss in ("softmax_xent", "sigmoid_bxent")
        e.n_metrics = len(metrics)
        for l, name in enumerate(metrics):
            e.metrics[l] = metric_code(name)
        e.params = <float*><size_t>params.ctypes.data
        e.grads = <float*><size_t>grads.ctypes.data
        e.N = N
        e.batch_size = batch_size
        e.rows_cap = max(batch_size, INFER_CHUNK_ROWS)
        e.nw_cap = (e.rows_cap + 63) // 64
        covered = np.zeros(N, bool)
        n_dropout = 0
        for l, spec in enumerate(layers):
            I, O, w_off, b_off, act = spec[:5]
            ly = &e.layers[l]
            ly.n_in = I
            ly.n_out = O
            ly.W = e.params + w_off
            ly.dW = e.grads + w_off
            ly.b = e.params + b_off if b_off >= 0 else NULL
            ly.db = e.grads + b_off if b_off >= 0 else NULL
            ly.act = act_code(act)
            A = _aligned(e.rows_cap * O, np.float32)
            G = _aligned(batch_size * O, np.float32)
            self.keep += [A, G]
            ly.A = <float*><size_t>A.ctypes.data
            ly.G = <float*><size_t>G.ctypes.data
            ly.WT = NULL
            if l > 0:
                WT = _aligned(I * O, np.float32)
                self.keep.append(WT)
                ly.WT = <float*><size_t>WT.ctypes.data
            width = max(width, O)
            covered[w_off:w_off + I * O] = True
            if b_off >= 0:
                covered[b_off:b_off + O] = True
            n_dropout = self._setup_post(ly, spec[5] if len(spec) > 5 else (), batch_size, covered, n_dropout)
        self.gaps = []
        gap_bounds = np.zeros(2, np.intp)
        if not covered.all():
            edges = np.flatnonzero(np.diff(np.concatenate(([0], (~covered).view(np.int8), [0]))))
            self.gaps = [slice(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]
            gap_bounds = np.ascontiguousarray(edges, dtype=np.intp)
        self.keep.append(gap_bounds)
        e.gaps = <Py_ssize_t*><size_t>gap_bounds.ctypes.data
        e.n_gaps = len(self.gaps)
        self.I0 = e.layers[0].n_in
        self.K = e.layers[e.L - 1].n_out
        xb = _aligned(batch_size * self.I0, np.float32)
        ids_b = np.zeros(batch_size, np.intp)
        yb = _aligned(batch_size * self.K, np.float32)
        probs = _aligned(e.rows_cap * self.K, np.float32)
        rowloss = np.zeros(2 * e.rows_cap)  # two slots (_infer_rows)
        rowmetric = np.zeros(2 * max(1, e.n_metrics) * e.rows_cap)
        e.acc_stride = (width + 7) // 8 * 8
        self.acc = np.zeros(e.acc_stride)
        e.acc = <double*><size_t>self.acc.ctypes.data
        self.nnz_part = np.zeros(8, np.intp)
        e.nnz_part = <Py_ssize_t*><size_t>self.nnz_part.ctypes.data
        e.nw = (batch_size + 63) // 64
        e.nwi = (self.I0 + 63) // 64
        e.sparse_ok = self.I0 >= SPARSE_MIN_INPUTS
        mask = _aligned(self.I0 * e.nw, np.uint64)
        rowbits = _aligned(e.nwi * 64 * e.nw_cap, np.uint64)
        octets = _aligned(8 * e.nwi * 64 * e.nw, np.uint8)
        part = _aligned(2 * batch_size * _block_ld(e.layers[0].n_out), np.float32)  # (also e.g0, padded)
        self.keep += [rowbits, octets, part]
        e.rowbits = <uint64_t*><size_t>rowbits.ctypes.data
        e.part = <float*><size_t>part.ctypes.data
        e.halves = False
        e.half_split = 0
        e.octets = <uint8_t*><size_t>octets.ctypes.data
        self.keep += [ids_b, yb, probs, rowloss, rowmetric, mask]
        self.xb = xb
        e.xb = <float*><size_t>xb.ctypes.data
        e.ids_b = <intp_t*><size_t>ids_b.ctypes.data
        e.yb = <float*><size_t>yb.ctypes.data
        e.probs = <float*><size_t>probs.ctypes.data
        e.rowloss = <double*><size_t>rowloss.ctypes.data
        e.rowmetric = <double*><size_t>rowmetric.ctypes.data
        e.mask = <uint64_t*><size_t>mask.ctypes.data
        e.opt = OPTIMIZERS.index(optimizer)
        e.s0 = <float*>_addr(slots[0])
        e.s1 = <float*>_addr(slots[1])
        e.s2 = <float*>_addr(slots[2])
        self.keep += list(slots)
        # the first layer's column blocks (_blocks_copy): kernel, gradient scratch and one per slot,
        # in one buffer and 1088 bytes apart modulo 4 KB: a 784x128 block is exactly 98 pages, and
        # arrays at the same offset in their page made the update's loads wait on unrelated stores
        # ("4K aliasing"; 2-thread MNIST steps varied 99-164 us from one process to the next)
        ly = &e.layers[0]
        stride = (ly.n_in * _block_ld(ly.n_out) + 15) // 16 * 16 + 272  # (the last block's rows are padded)
        pool = _aligned(5 * stride, np.float32)
        self.keep.append(pool)
        blocks = [pool[k * stride:(k + 1) * stride] for k in range(2)] + [
            pool[(k + 2) * stride:(k + 3) * stride] if slot is not None else None for k, slot in enumerate(slots[:3])]
        e.bw = <float*>_addr(blocks[0])
        e.bg = <float*>_addr(blocks[1])
        e.bs0 = <float*>_addr(blocks[2])
        e.bs1 = <float*>_addr(blocks[3])
        e.bs2 = <float*>_addr(blocks[4])
        e.blocked = False
        self.u_addrs = np.zeros(max(1, n_dropout), np.intp)
        e.U = <const float**><size_t>self.u_addrs.ctypes.data
        self.n_dropout = n_dropout

    cdef int _setup_post(self, Layer* ly, tuple post, Py_ssize_t batch_size, covered, int n_dropout) except -1:
        """Fill the layer's ops from their specs (checked by MLP._check); returns the dropout count so far."""
        cdef Engine* e = &self.e
        cdef Py_ssize_t O = ly.n_out
        cdef PostOp* op
        cdef const float* cur = ly.A
        cdef Py_ssize_t g_off, be_off, mm_off, mv_off
        ly.n_post = len(post)
        for k, spec in enumerate(post):
            op = &ly.post[k]
            memset(op, 0, sizeof(PostOp))
            out = _aligned(self.e.rows_cap * O, np.float32)  # (inference chunks write it too)
            self.keep.append(out)
            op.out = <float*><size_t>out.ctypes.data
            op.inp = cur
            cur = op.out
            if spec[0] == "batch_norm":
                op.kind = POST_BATCH_NORM
                g_off, be_off, mm_off, mv_off = spec[1:5]
                op.gamma = e.params + g_off if g_off >= 0 else NULL
                op.dgamma = e.grads + g_off if g_off >= 0 else NULL
                op.beta = e.params + be_off if be_off >= 0 else NULL
                op.dbeta = e.grads + be_off if be_off >= 0 else NULL
                op.moving_mean = e.params + mm_off
                op.moving_var = e.params + mv_off
                for off in (g_off, be_off, mm_off, mv_off):
                    if off >= 0:
                        covered[off:off + O] = True  # no gap: the optimizer updates gamma/beta only
                op.momentum = float(spec[5])
                op.epsilon = float(spec[6])
                stats = _aligned(5 * O, np.float64)
                coef = _aligned(5 * O, np.float32)
                self.keep += [stats, coef]
                op.stats = <double*><size_t>stats.ctypes.data
                op.coef = <float*><size_t>coef.ctypes.data
            else:
                op.kind = POST_DROPOUT
                op.keep = 1.0 - float(spec[1])
                op.scale = <float>dropout_scale(float(spec[1]))
                mask = _aligned(batch_size * O, np.uint8)
                self.keep.append(mask)
                op.mask = <unsigned char*><size_t>mask.ctypes.data
                op.u_index = n_dropout
                n_dropout += 1
        ly.H = cur
        return n_dropout

    cdef int _set_x(self, X, int nt, csr_meta) except -1:
        """Point the engine at X: a dense (S, I) float32 array, or a CSR matrix (checked by MLP._inputs)
        with csr_meta = (sorted, cumulative cost) from MLP._csr_meta when training: the first layer's
        kernel rows are shared out between the nt threads by that cost (_csr_grad_and_update)."""
        cdef Engine* e = &self.e
        e.csr = not isinstance(X, np.ndarray)
        e.b_rows = NULL
        e.b_row0 = 0
        if not e.csr:
            e.X = <const float*><size_t>X.ctypes.data
            e.ldx = self.I0
            return 0
        e.X = NULL
        e.ldx = 0
        e.csr64 = X.indices.dtype == np.int64
        e.indptr = <const void*><size_t>X.indptr.ctypes.data
        e.indices = <const void*><size_t>X.indices.ctypes.data
        e.data = <const float*><size_t>X.data.ctypes.data
        e.tail_rows = _tail_rows_ok(e)
        if csr_meta is None:
            return 0
        sorted_rows, cum = csr_meta
        e.csr_sorted = sorted_rows
        # thread t's features: [split[t], split[t+1]), cut where the cumulative cost reaches t/nt of the total
        split = np.empty(nt + 1, np.intp)
        split[0] = 0
        split[nt] = self.I0
        split[1:nt] = np.searchsorted(cum, cum[cum.shape[0] - 1] * np.arange(1, nt) / nt)
        self.csr_split = split
        e.csr_split = <const intp_t*><size_t>split.ctypes.data
        return 0

    cdef int _threads(self, Py_ssize_t rows) except -1:
        """Threads for a call: 1 when a step is too small to share. Sizes the
        per-thread scratch for the team."""
        cdef Engine* e = &self.e
        cdef Py_ssize_t work = e.N, l
        cdef Layer* ly
        for l in range(e.L):
            work += rows * e.layers[l].n_in * e.layers[l].n_out
        cdef int nt = effective_n_threads(self.n_threads)
        if ENGINE_PARALLEL_WORK > 0:  # at least that much work per thread of the team
            nt = <int>max(1, min(nt, work // ENGINE_PARALLEL_WORK))
        if self.force_threads > 0:
            nt = min(nt, self.force_threads)
        ly = &e.layers[0]
        e.split_rows = ly.n_post == 0 and (FIRST_LAYER_SPLIT == 2 or (
            FIRST_LAYER_SPLIT == 0 and (ly.n_out * sizeof(float)) % 64 != 0))
        if self.acc.shape[0] < nt * e.acc_stride:
            self.acc = np.zeros(nt * e.acc_stride)
            e.acc = <double*><size_t>self.acc.ctypes.data
        if self.nnz_part.shape[0] < nt * 8:
            self.nnz_part = np.zeros(nt * 8, np.intp)
            e.nnz_part = <Py_ssize_t*><size_t>self.nnz_part.ctypes.data
        return nt

    def team(self, Py_ssize_t rows):
        """The threads a call on batches of `rows` rows would use."""
        return self._threads(rows)

    def layout(self):
        """How the last call shared the first layer: 'features', 'blocks', 'rows' or 'cols' (tests,
        benchmarks)."""
        if self.e.halves:
            return "features"
        return "blocks" if self.e.blocked else ("rows" if self.e.split_rows else "cols")

    @property
    def half_split(self):
        """The first feature of the first layer's second half (0 until a training call sums it in halves)."""
        return self.e.half_split

    cdef bint _halves_ok(self, X, order) except -1:
        """Whether this training call sums the first layer in feature halves (see HALVES_MIN_UNITS):
        dense input the bitmask kernels can take, a second layer, no post ops, no softmax, and the
        knob at "auto" with HALVES_MIN_UNITS..HALVES_MAX_UNITS units (or at "features"). Under "auto"
        that is the same for every call of a model, so its results do not depend on the thread count."""
        cdef Engine* e = &self.e
        cdef Layer* ly = &e.layers[0]
        if e.csr or not e.sparse_ok or e.L < 2 or ly.n_post or ly.act == ACT_SOFTMAX:
            return False
        if not (FIRST_LAYER_SPLIT == 4 or (
                FIRST_LAYER_SPLIT == 0 and HALVES_MIN_UNITS <= ly.n_out <= HALVES_MAX_UNITS)):
            return False
        if e.half_split == 0:
            e.half_split = _choose_half_split(X, order, ly.n_in)
        return True

    @property
    def tail_rows(self):
        """Whether the last call ran the layers after a CSR first layer by rows (_tail_rows_ok)."""
        return bool(self.e.csr and self.e.tail_rows)

    def profile(self, bint enable):
        """Turn the phase timer on (and reset it); returns the seconds so far per phase of
        threads 0 and 1 (phase times include barrier waits, also reported as "wait")."""
        global _profiled
        names = {0: "gather", 2: "sync", 1: "forward", 3: "backward", 4: "update"}  # sync: the barrier after the gather
        times = {f"t{t}.{name}": self.e.phase_time[t * 8 + k] for t in range(2) for k, name in names.items()}
        for t in range(2):
            times[f"t{t}.wait"] = self.e.wait_time[t]
        self.e.profile = enable
        _profiled = &self.e if enable else NULL
        for k in range(16):
            self.e.phase_time[k] = 0
        self.e.wait_time[0] = self.e.wait_time[1] = 0
        return times

    def set_hyper(self, double lr, double a, double b, double c, bint flag1, double beta_1, double beta_2):
        self.e.lr = lr
        self.e.h_a = a
        self.e.h_b = b
        self.e.h_c = c
        self.e.flag1 = flag1
        self.e.beta_1 = beta_1
        self.e.beta_2 = beta_2

    def check_rows(self, order, Py_ssize_t start, Py_ssize_t stop, Py_ssize_t S, ids, Y):
        """(problem, position in order): 0 ok, 1 row id outside [0, S), 2 class id outside [0, K),
        3 non-finite float label."""
        cdef const intp_t* o = <const intp_t*><size_t>order.ctypes.data
        cdef const intp_t* c = <const intp_t*><size_t>ids.ctypes.data if ids is not None else NULL
        cdef const float* yv = <const float*><size_t>Y.ctypes.data if Y is not None else NULL
        cdef Py_ssize_t r, k, src, K = self.K
        cdef int problem = 0
        with nogil:
            for r in range(start, stop):
                src = o[r]
                if src < 0 or src >= S:
                    problem = 1
                    break
                if c != NULL:
                    if c[src] < 0 or c[src] >= K:
                        problem = 2
                        break
                else:
                    for k in range(K):
                        if not isfinite(yv[src * K + k]):
                            problem = 3
                            break
                    if problem:
                        break
        return problem, r

    def train(self, X, ids, Y, order, Py_ssize_t first_batch, Py_ssize_t n_batches, Py_ssize_t iterations,
              list uniforms, csr_meta=None):
        cdef Engine* e = &self.e
        if csr_meta is None and not isinstance(X, np.ndarray):
            raise ValueError("_Core.train: CSR input needs csr_meta = MLP._csr_meta(X) (the first layer's split).")
        for k, u in enumerate(uniforms):  # the caller keeps them alive during the call
            self.u_addrs[k] = u.ctypes.data
        cdef int nt = self._threads(min(e.batch_size, order.shape[0]))
        cdef Layer* ly = &e.layers[0]
        # column blocks when every batch of the call shares the first layer between all nt threads
        # (its smallest, last batch too), the model has a second layer, and the copies pay off
        cdef Py_ssize_t last = min(e.batch_size, order.shape[0] - (first_batch + n_batches - 1) * e.batch_size)
        e.blocked = (nt > 1 and e.L > 1 and last * ly.n_in * ly.n_out >= GEMM_WORK_THRESHOLD
                     and (FIRST_LAYER_SPLIT == 3 or (FIRST_LAYER_SPLIT == 0 and n_batches >= BLOCKED_MIN_STEPS)))
        for gap in self.gaps:
            self.keep[1][gap] = 0
        e.mode = MODE_TRAIN
        self._set_x(X, nt, csr_meta)
        e.halves = self._halves_ok(X, order)
        # CSR input has its own first-layer split (_csr_grad_and_update); the halves have their block
        # (one for the whole kernel, rows padded, whatever the thread count) on calls as long
        e.blocked = e.blocked and not e.csr and not e.halves
        if e.halves:
            e.blocked = n_batches >= BLOCKED_MIN_STEPS
        # the first layer's gradient: with the halves, in part with rows padded (both halves' kernels read
        # every unit of it; Fashion-MNIST's 400-byte rows made the weight gradient 13% slower, C harness)
        e.g0 = e.part if e.halves else e.layers[0].G
        e.ldg0 = _block_ld(ly.n_out) if e.halves else ly.n_out
        if nt > 1 and not e.csr and self.xb.shape[0] < nt * e.batch_size * self.I0:  # a batch copy per thread
            self.xb = _aligned(nt * e.batch_size * self.I0, np.float32)
            e.xb = <float*><size_t>self.xb.ctypes.data
        e.ids = <const intp_t*><size_t>ids.ctypes.data if ids is not None else NULL
        e.Y = <const float*><size_t>Y.ctypes.data if Y is not None else NULL
        e.order = <const intp_t*><size_t>order.ctypes.data
        e.n_order = order.shape[0]
        e.first_batch = first_batch
        e.n_batches = n_batches
        e.iterations = iterations
        if not self.continue_sums:
            e.loss_sum = 0
            e.seen = 0
            for m in range(e.n_metrics):
                e.metric_sums[m] = 0
        cdef bint pin_blas = effective_n_threads(self.n_threads) > 1
        with nogil:
            _run(e, nt, pin_blas)
        sums = np.empty(e.n_metrics)
        for m in range(e.n_metrics):
            sums[m] = e.metric_sums[m]
        return e.loss_sum, sums, e.seen

    def infer(self, int mode, X, ids, Y, Py_ssize_t chunk, out):
        cdef Engine* e = &self.e
        if isinstance(X, np.ndarray):  # dense input runs by rows (_infer_rows): chunks of rows_cap
            chunk = e.rows_cap
        cdef int nt = self._threads(min(chunk, X.shape[0]))
        e.blocked = False  # the kernel is in the arena between calls
        e.halves = False  # inference sums each row's features in one pass (_infer_rows)
        e.mode = mode
        self._set_x(X, nt, None)
        e.ids = <const intp_t*><size_t>ids.ctypes.data if ids is not None else NULL
        e.Y = <const float*><size_t>Y.ctypes.data if Y is not None else NULL
        e.n_rows = X.shape[0]
        e.chunk = chunk
        e.out = <float*><size_t>out.ctypes.data if out is not None else NULL
        e.loss_sum = 0
        e.seen = 0
        for m in range(e.n_metrics):
            e.metric_sums[m] = 0
        cdef bint pin_blas = effective_n_threads(self.n_threads) > 1
        cdef Layer* ly = &e.layers[0]
        cdef Py_ssize_t i, ld = _block_ld(ly.n_out)
        if (e.n_rows >= INFER_PADDED_MIN_ROWS and e.sparse_ok and not e.csr and ld != ly.n_out
                and ly.n_out <= HALVES_MAX_UNITS):
            # the first layer's kernel with rows padded to 32 bytes in the block pool, for the bitmask
            # kernel (Fashion-MNIST's 12,000 validation rows: -9% in its forward, C harness; the copy
            # of a 784x100 kernel takes ~30 us); the same sums, so the same bits
            e.blocked = True
            with nogil:
                for i in range(ly.n_in):
                    memcpy(e.bw + i * ld, ly.W + i * ly.n_out, ly.n_out * sizeof(float))
                    memset(e.bw + i * ld + ly.n_out, 0, (ld - ly.n_out) * sizeof(float))
        if e.n_rows:
            with nogil:
                _run(e, nt, pin_blas)
        e.blocked = False
        return e.loss_sum, np.array([e.metric_sums[m] for m in range(e.n_metrics)], dtype=np.float64)


ctypedef fused csr_index_t:
    int32_t
    int64_t


cdef bint _csr_rows_sorted_and_counts(const csr_index_t[::1] indptr, const csr_index_t[::1] indices,
                                      double[::1] counts) noexcept nogil:
    """counts[f] += the stored values of feature f over all rows; True when every row's indices are
    non-decreasing. One pass without temporaries (checked indices: 0 <= f < counts' length); NumPy's
    diff and bincount on IMDB's 3.3M indices took 0.2 s here, mostly first-touch page faults."""
    cdef Py_ssize_t r, k, k0
    cdef bint ok = True
    for r in range(indptr.shape[0] - 1):
        k0 = indptr[r]
        for k in range(k0, indptr[r + 1]):
            counts[indices[k]] += 1
            if k > k0 and indices[k] < indices[k - 1]:
                ok = False
    return ok


def _is_scipy_sparse(x):
    # by module name first: dense inputs never import scipy.sparse (fastnn.utils.sparse_utils.is_sparse)
    if not type(x).__module__.startswith("scipy.sparse"):
        return False
    import scipy.sparse as sp
    return sp.issparse(x)


# --------------------------------------------------------------------------- the public class
_HYPER_NEEDS = {"sgd": (), "rmsprop": ("rho", "epsilon"), "adam": ("beta_1", "beta_2", "epsilon"),
                "adadelta": ("rho", "epsilon")}


class MLP:
    """Runs whole training steps of a stack of dense layers (gather, forward,
    loss, backward, optimizer update) without returning to the caller.

    Compiled twin of ``_reference.MLP``: same arguments and results; the
    arena, slots, X and float labels must be float32. See the module
    docstring for the threading and the sparse-input path.

    params  (N,) the parameter arena; updated in place by ``train_steps``.
    grads   (N,) gradient arena with the same layout (scratch, overwritten each step).
    layers  sequence of (I, O, w_offset, b_offset, activation[, post]); ``post``:
            ("batch_norm", gamma_offset, beta_offset, moving_mean_offset,
            moving_variance_offset, momentum, epsilon) and/or ("dropout", rate),
            in order, as in _reference.MLP.
    loss    "softmax_xent", "sigmoid_bxent", "mse", "mae".
    metrics sequence of names from METRICS.
    optimizer, slots, hyper  as in _reference.MLP.
    batch_size the largest batch ``train_steps`` will see.
    """

    def __init__(self, params, grads, layers, loss, metrics, optimizer, slots, hyper, batch_size,
                 n_threads=None):
        self.params = params
        self.grads = grads
        self.layers = [tuple(spec) for spec in layers]
        self.loss = loss
        self.metrics = tuple(metrics)
        self.optimizer = optimizer
        self.slots = tuple(slots)
        self.hyper = dict(hyper)
        self.batch_size = int(batch_size) if isinstance(batch_size, numbers.Integral) else batch_size
        # _train_adaptive's measurements: best s/step on the team and on one thread, the team's last
        self._adapt = {"team": None, "one": None, "last": None, "on_one": False, "wait": 0, "patience": 1}
        self.n_threads = n_threads
        self._check()
        padded = tuple(self.slots) + (None,) * (3 - len(self.slots))
        self._core = _Core()
        self._core.setup(params, grads, self.layers, loss, self.metrics, optimizer, padded[:3], self.batch_size,
                         n_threads)

    # ---------------------------------------------------------------- checks (once)
    def _check(self):
        if self.loss not in LOSSES:
            raise ValueError(f"Unknown loss {self.loss!r}; expected one of {LOSSES}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"Unknown optimizer {self.optimizer!r}; expected one of {OPTIMIZERS}")
        if not self.layers:
            raise ValueError("MLP: argument `layers` must hold at least one layer; received [].")
        final = self.layers[len(self.layers) - 1][4] if len(self.layers[len(self.layers) - 1]) in (5, 6) else None
        fused = {"softmax_xent": "softmax", "sigmoid_bxent": "sigmoid"}
        if self.loss in fused and final not in (fused[self.loss], "linear"):
            raise ValueError(f"loss {self.loss!r} needs a final activation of {fused[self.loss]!r} or "
                             f"'linear'; received {final!r}")
        if len(self.metrics) > MAX_METRICS:
            raise ValueError(f"MLP: at most {MAX_METRICS} metrics; received {len(self.metrics)}.")
        for name in self.metrics:
            metric_code(name)
        _int_arg("MLP", "batch_size", self.batch_size, 1)
        _f32_arena("params", self.params, -1)
        n = self.params.shape[0]
        _f32_arena("grads", self.grads, n)
        used = np.zeros(n, np.int8)
        prev_o = None
        for l, spec in enumerate(self.layers):
            if len(spec) not in (5, 6):
                raise ValueError(f"MLP: layer {l} must be (I, O, w_offset, b_offset, activation[, post]); "
                                 f"received {spec!r}.")
            i, o, w_off, b_off, act = spec[:5]
            for name, value, low in (("I", i, 1), ("O", o, 1), ("w_offset", w_off, 0), ("b_offset", b_off, -1)):
                _int_arg(f"MLP layer {l}", name, value, low)
            act_code(act)
            if prev_o is not None and i != prev_o:
                raise ValueError(f"MLP: layer {l} has I={i} inputs but layer {l - 1} has O={prev_o} units.")
            prev_o = o
            if w_off + i * o > n or (b_off >= 0 and b_off + o > n):
                raise ValueError(f"MLP: layer {l} ({spec!r}) does not fit in a parameter arena of {n} elements.")
            used[w_off:w_off + i * o] += 1
            if b_off >= 0:
                used[b_off:b_off + o] += 1
            if len(spec) == 6:
                for off in self._check_post(l, spec, n):
                    used[off:off + o] += 1
        if (used > 1).any():
            raise ValueError("MLP: layers overlap in the parameter arena; each kernel and bias needs its own range.")
        needs = {"sgd": (False,), "rmsprop": (True, False, False), "adam": (True, True, False),
                 "adadelta": (True, True)}[self.optimizer]
        if self.optimizer == "sgd" and self.hyper.get("momentum", 0.0) != 0:
            needs = (True,)
        if self.optimizer == "rmsprop":
            needs = (True, self.hyper.get("momentum", 0.0) > 0, bool(self.hyper.get("centered", False)))
        if self.optimizer == "adam":
            needs = (True, True, bool(self.hyper.get("amsgrad", False)))
        for k, needed in enumerate(needs):
            slot = self.slots[k] if k < len(self.slots) else None
            if slot is not None or needed:
                _f32_arena(f"slots[{k}]", slot, n)
        for key in _HYPER_NEEDS[self.optimizer]:
            if key not in self.hyper:
                raise ValueError(f"MLP: optimizer {self.optimizer!r} needs hyper[{key!r}]; received keys "
                                 f"{sorted(self.hyper)}.")

    def _check_post(self, l, spec, n):
        """Check layer l's post ops; return the arena offsets of their (O,) weights."""
        post, o = spec[5], spec[1]
        if not isinstance(post, (tuple, list)) or len(post) > MAX_POST:
            raise ValueError(f"MLP: layer {l}'s post ops must be a sequence of at most {MAX_POST} ops; "
                             f"received {post!r}.")
        if post and (l == len(self.layers) - 1 or spec[4] == "softmax"):
            raise ValueError(f"MLP: layer {l} cannot take post ops {tuple(post)!r}: they follow a hidden layer "
                             "with an elementwise activation only.")
        offsets, kinds = [], []
        for op in post:
            kind = op[0] if isinstance(op, (tuple, list)) and op else None
            if kind not in POST_OPS or kind in kinds:
                raise ValueError(f"MLP: layer {l} has an unknown or repeated post op in {tuple(post)!r}; expected "
                                 f"at most one of each of {POST_OPS}.")
            kinds.append(kind)
            owner = f"MLP layer {l} {kind}"
            if kind == "batch_norm":
                if len(op) != 7:
                    raise ValueError(f"{owner}: expected ('batch_norm', gamma_offset, beta_offset, "
                                     f"moving_mean_offset, moving_variance_offset, momentum, epsilon); "
                                     f"received {op!r}.")
                for name, value, low in zip(("gamma_offset", "beta_offset", "moving_mean_offset",
                                             "moving_variance_offset"), op[1:5], (-1, -1, 0, 0)):
                    _int_arg(owner, name, value, low)
                    if value >= 0:
                        if value + o > n:
                            raise ValueError(f"MLP: layer {l} ({op!r}) does not fit in a parameter arena of "
                                             f"{n} elements.")
                        offsets.append(value)
                _real_arg(owner, "momentum", op[5], 0.0, 1.0)
                _real_arg(owner, "epsilon", op[6], 0.0, np.inf)
            else:
                if len(op) != 2:
                    raise ValueError(f"{owner}: expected ('dropout', rate); received {op!r}.")
                _real_arg(owner, "rate", op[1], 0.0, 1.0)
        return offsets

    def _labels(self, owner, y, S):
        """(ids, Y) for S rows: int class ids (S,) or float32 (S, K)."""
        K = self._core_k()
        if not isinstance(y, np.ndarray):
            y = np.asarray(y)
        if y.ndim == 1 and self.loss == "softmax_xent":
            if y.shape[0] != S:
                raise ValueError(f"{owner}: argument `y` must have {S} rows like X; received {describe(y)}.")
            if y.dtype.kind not in "iu":
                if y.dtype.kind == "f" and np.isfinite(y).all() and (y == np.floor(y)).all():
                    y = y.astype(np.intp)
                else:
                    raise ValueError(f"{owner}: argument `y` must hold integer class ids (or be float32 "
                                     f"of shape ({S}, {K})); received {describe(y)}.")
            if y.dtype != np.intp or not y.flags.c_contiguous:
                y = np.ascontiguousarray(y, dtype=np.intp)
            for name in self.metrics:
                if name not in ("sparse_categorical_accuracy",):
                    raise ValueError(f"{owner}: metric {name!r} needs labels of shape ({S}, {K}); "
                                     f"received class ids {describe(y)}.")
            return y, None
        if y.ndim != 2 or y.shape != (S, K) or y.dtype.kind not in "fiub":
            raise ValueError(f"{owner}: argument `y` must have shape ({S}, {K})"
                             f"{' (or be int class ids of shape (' + str(S) + ',))' if self.loss == 'softmax_xent' else ''}; "
                             f"received {describe(y)}.")
        if y.dtype != np.float32 or not y.flags.c_contiguous:
            y = np.ascontiguousarray(y, dtype=np.float32)
        if "sparse_categorical_accuracy" in self.metrics:
            raise ValueError(f"{owner}: metric 'sparse_categorical_accuracy' needs int class ids of shape "
                             f"({S},); received {describe(y)}.")
        return None, y

    def _core_k(self):
        return self.layers[len(self.layers) - 1][1]

    def _inputs(self, owner, X):
        if _is_scipy_sparse(X):
            return self._csr_inputs(owner, X)
        if not isinstance(X, np.ndarray) or X.dtype != np.float32:
            raise ValueError(f"{owner}: argument `X` must be a float32 array like the parameters; "
                             f"received {describe(X)}.")
        i0 = self.layers[0][0]
        if X.ndim != 2 or X.shape[1] != i0:
            raise ValueError(f"{owner}: argument `X` must have shape (None, {i0}); received {describe(X)}.")
        if not X.flags.c_contiguous:
            X = np.ascontiguousarray(X)
        return X

    def _csr_inputs(self, owner, X):
        """X as a scipy.sparse CSR matrix the nogil code can read: float32 data, int32 or int64
        indptr/indices of one dtype (as scipy gives them, no copy), every stored value's column in
        [0, I). The structure check reads every index (~2 ms for IMDB's 3.3M), so it is done once per
        matrix: remembered by the identity and addresses of its arrays for the last _CSR_MEMO matrices
        (fit passes the same training and validation matrices every epoch; remembering one of them
        rechecked both, ~5 ms per IMDB epoch). A matrix changed in place after a call is not checked
        again."""
        i0 = self.layers[0][0]
        if X.format != "csr" or X.dtype != np.float32 or X.ndim != 2:
            raise ValueError(f"{owner}: a sparse argument `X` must be a float32 CSR matrix "
                             f"(scipy.sparse.csr_matrix; fastnn.utils.sparse_utils.to_csr converts); received a "
                             f"{X.format} matrix of dtype {X.dtype} and shape {shape_str(X.shape)}.")
        if X.shape[1] != i0:
            raise ValueError(f"{owner}: argument `X` must have shape (None, {i0}); received a CSR matrix of "
                             f"shape {shape_str(X.shape)}.")
        indptr, indices, data = X.indptr, X.indices, X.data
        if self._csr_memo_entry(X) is not None:
            return X
        if (indptr.dtype != indices.dtype or indptr.dtype not in (np.int32, np.int64)
                or not (indptr.flags.c_contiguous and indices.flags.c_contiguous and data.flags.c_contiguous)
                or indptr.shape[0] != X.shape[0] + 1 or data.shape[0] != indices.shape[0]):
            raise ValueError(f"{owner}: argument `X` must be a CSR matrix with C-contiguous int32 or int64 "
                             f"indptr/indices of one dtype; received indptr {describe(indptr)}, indices "
                             f"{describe(indices)}, data {describe(data)}.")
        nnz = indices.shape[0]
        last = indptr[indptr.shape[0] - 1]
        if indptr[0] < 0 or last > nnz or (indptr.shape[0] > 1 and (np.diff(indptr) < 0).any()):
            raise ValueError(f"{owner}: argument `X` has a malformed `indptr`: it must be non-decreasing with "
                             f"values in [0, {nnz}] (nnz).")
        if nnz and (indices.min() < 0 or indices.max() >= i0):
            bad = indices.min() if indices.min() < 0 else indices.max()
            raise ValueError(f"{owner}: argument `X` holds column ids that must be in [0, {i0}) (the inputs of "
                             f"the first layer); received a column id of {bad}.")
        if data.shape[0] and not np.isfinite(data).all():
            raise ValueError(f"{owner}: argument `X` must be finite; received a CSR matrix containing NaN or inf.")
        memo = [m for m in getattr(self, "_csr_memo", ()) if m[0]() is not None]
        self._csr_memo = memo[max(0, len(memo) - (_CSR_MEMO - 1)):] + [[weakref.ref(X), self._csr_key(X), None]]
        return X

    @staticmethod
    def _csr_key(X):
        return (X.indptr.ctypes.data, X.indices.ctypes.data, X.data.ctypes.data, X.indices.shape[0], X.shape)

    def _csr_memo_entry(self, X):
        """The memo entry [weakref, key, meta] of a matrix checked by _csr_inputs, or None."""
        key = self._csr_key(X)
        for m in getattr(self, "_csr_memo", ()):
            if m[0]() is X and m[1] == key:
                return m
        return None

    def _csr_meta(self, X):
        """(sorted, cum) for sharing out the first layer's kernel rows in training (_Core._set_x):
        whether every row's indices are non-decreasing (then a row's values of a feature range are
        one run, found by binary search), and cum[f], the cost of kernel rows 0..f: the expected values
        of each feature in a batch, plus CSR_ROW_COST for zeroing and updating its row. Computed once
        per matrix (with _csr_inputs' check; ~5 ms for IMDB's 3.3M values)."""
        entry = self._csr_memo_entry(X)  # (train_steps checked X first)
        if entry[2] is not None:
            return entry[2]
        counts = np.zeros(self.layers[0][0], np.float64)
        if X.indices.dtype == np.int64:
            rows_sorted = _csr_rows_sorted_and_counts[int64_t](X.indptr, X.indices, counts)
        else:
            rows_sorted = _csr_rows_sorted_and_counts[int32_t](X.indptr, X.indices, counts)
        cum = np.cumsum(counts * (self.batch_size / max(X.shape[0], 1)) + CSR_ROW_COST)
        entry[2] = (bool(rows_sorted), cum)
        return entry[2]

    def _set_hyper(self, learning_rate):
        h = self.hyper
        opt = self.optimizer
        lr = float(learning_rate)
        if not np.isfinite(lr):
            raise ValueError(f"MLP.train_steps: argument `learning_rate` must be finite; received {learning_rate!r}.")
        if opt == "sgd":
            self._core.set_hyper(lr, float(h.get("momentum", 0.0)), 0.0, 0.0, bool(h.get("nesterov", False)),
                                 0.0, 0.0)
        elif opt == "rmsprop":
            self._core.set_hyper(lr, float(h["rho"]), float(h.get("momentum", 0.0)), float(h["epsilon"]),
                                 bool(h.get("centered", False)), 0.0, 0.0)
        elif opt == "adam":
            self._core.set_hyper(lr, 0.0, 0.0, float(h["epsilon"]), bool(h.get("amsgrad", False)),
                                 float(h["beta_1"]), float(h["beta_2"]))
        else:
            self._core.set_hyper(lr, float(h["rho"]), 0.0, float(h["epsilon"]), False, 0.0, 0.0)

    # ---------------------------------------------------------------- the engine
    def train_steps(self, X, y, order, first_batch, n_batches, iterations, learning_rate, uniforms=None):
        """Run ``n_batches`` optimizer steps; return (loss_sum, metric_sums (M,) float64, n_samples).

        X (S, I) float, or a float32 scipy.sparse CSR matrix (S, I); y (S,) intp class ids or (S, K) float;
        order (S,) intp:
        batch b holds rows order[b*batch_size : (b+1)*batch_size] (the last
        batch may be short).  ``iterations`` is the optimizer's step count
        before the first of these steps (Adam's t = iterations + 1).
        ``uniforms``: one float32 array (R, O) per dropout op (in layer order),
        uniform in [0, 1), R the rows of these batches: step k's rows are
        [k*batch_size, k*batch_size + n_k) (None when there is no dropout).
        """
        owner = "MLP.train_steps"
        X = self._inputs(owner, X)
        S = X.shape[0]
        ids, Y = self._labels(owner, y, S)
        if not isinstance(order, np.ndarray) or order.ndim != 1 or order.dtype.kind not in "iu":
            raise ValueError(f"{owner}: argument `order` must be a 1-D integer array of row ids; "
                             f"received {describe(order)}.")
        if order.dtype != np.intp or not order.flags.c_contiguous:
            order = np.ascontiguousarray(order, dtype=np.intp)
        first_batch = _int_arg(owner, "first_batch", first_batch, 0)
        n_batches = _int_arg(owner, "n_batches", n_batches, 0)
        iterations = _int_arg(owner, "iterations", iterations, 0)
        bs = self.batch_size
        start = first_batch * bs
        stop = min((first_batch + n_batches) * bs, order.shape[0])
        if n_batches and start + (n_batches - 1) * bs >= order.shape[0]:
            raise ValueError(f"{owner}: batches {first_batch}..{first_batch + n_batches - 1} of {bs} rows need "
                             f"more than the {order.shape[0]} rows of `order`.")
        uniforms = _check_uniforms(owner, self.layers, uniforms, max(0, stop - start))
        self._set_hyper(learning_rate)
        if n_batches == 0:
            return 0.0, np.zeros(len(self.metrics)), 0
        # every row id and label the batches use, checked in C before training starts
        problem, where = self._core.check_rows(order, start, stop, S, ids, Y)
        if problem == 1:
            raise ValueError(f"{owner}: argument `order` holds row ids that must be in [0, {S}) for X of shape "
                             f"{shape_str(X.shape)}; received a row id of {order[where]!r}.")
        K = self.layers[len(self.layers) - 1][1]
        if problem == 2:
            raise ValueError(f"{owner}: argument `y` holds class ids that must be in [0, {K}) for {K} classes; "
                             f"received an id of {ids[order[where]]!r}.")
        if problem == 3:
            raise ValueError(f"{owner}: argument `y` must be finite; received {describe(y)} containing NaN or inf "
                             f"(row {order[where]}).")
        csr_meta = self._csr_meta(X) if not isinstance(X, np.ndarray) else None
        return self._train_adaptive(X, ids, Y, order, first_batch, n_batches, iterations, uniforms, csr_meta)

    def _train_adaptive(self, X, ids, Y, order, first_batch, n_batches, iterations, uniforms, csr_meta):
        """Run the steps; a long call on a team runs in pieces of ADAPT_STEPS, each on the team or on
        one thread, whichever is measured faster now (see ADAPT_STEPS). Results are the same bits."""
        core = self._core
        core.force_threads = 0
        team = core.team(min(self.batch_size, order.shape[0]))
        if team == 1 or n_batches < 2 * ADAPT_STEPS:
            return core.train(X, ids, Y, order, first_batch, n_batches, iterations, uniforms, csr_meta)
        a = self._adapt
        bs = self.batch_size
        done = 0
        try:
            while done < n_batches:
                if a["one"] is None and a["team"] is not None:
                    nt, k = 1, PROBE_STEPS                       # calibrate one thread, once
                elif a["on_one"] and a["wait"] <= 0:
                    nt, k = team, PROBE_STEPS                    # is the team fast again?
                else:
                    nt, k = (1 if a["on_one"] else team), ADAPT_STEPS
                    a["wait"] -= 1
                k = min(k, n_batches - done)
                rows = slice(done * bs, min((done + k) * bs, order.shape[0] - first_batch * bs))
                core.force_threads = nt
                core.continue_sums = done > 0  # one running sum, in step order, as a single call has
                t0 = time.perf_counter()
                result = core.train(X, ids, Y, order, first_batch + done, k, iterations + done,
                                    [u[rows] for u in uniforms], csr_meta)
                rate = (time.perf_counter() - t0) / k
                done += k
                if nt == 1:
                    a["one"] = rate if a["one"] is None else min(a["one"], rate)
                else:
                    a["team"] = rate if a["team"] is None else min(a["team"], rate)
                    a["last"] = rate
                if a["one"] is not None and a["team"] is not None:
                    was = a["on_one"]
                    a["on_one"] = a["last"] > a["one"]  # the team's latest piece lost to one thread's best
                    if a["on_one"] and nt != 1:  # wait longer before each new probe while it stays slow
                        a["patience"] = 1 if not was else min(32, 2 * a["patience"])
                        a["wait"] = a["patience"]
        finally:
            core.force_threads = 0
            core.continue_sums = False
        return result

    def evaluate(self, X, y, batch_size):
        """(loss_sum, metric_sums (M,) float64) over all rows of X, without updating anything."""
        owner = "MLP.evaluate"
        X = self._inputs(owner, X)
        ids, Y = self._labels(owner, y, X.shape[0])
        batch_size = _int_arg(owner, "batch_size", batch_size, 1)
        if ids is not None and ids.shape[0]:
            lo, hi = ids.min(), ids.max()
            if lo < 0 or hi >= self.layers[len(self.layers) - 1][1]:
                raise ValueError(f"{owner}: argument `y` holds class ids that must be in [0, {self.layers[len(self.layers) - 1][1]}) "
                                 f"for {self.layers[len(self.layers) - 1][1]} classes; received an id of {lo if lo < 0 else hi!r}.")
        elif Y is not None and not np.isfinite(Y).all():
            raise ValueError(f"{owner}: argument `y` must be finite; received {describe(y)} containing NaN or inf.")
        return self._core.infer(MODE_EVAL, X, ids, Y, min(batch_size, self.batch_size), None)

    def predict(self, X, batch_size, out=None):
        """Model outputs (S, O_last) for every row of X."""
        owner = "MLP.predict"
        X = self._inputs(owner, X)
        batch_size = _int_arg(owner, "batch_size", batch_size, 1)
        shape = (X.shape[0], self.layers[len(self.layers) - 1][1])
        if out is None:
            out = np.empty(shape, np.float32)
        elif (not isinstance(out, np.ndarray) or out.shape != shape or out.dtype != np.float32
              or not out.flags.c_contiguous or not out.flags.writeable):
            raise ValueError(f"{owner}: argument `out` must be a writeable C-contiguous float32 array of shape "
                             f"{shape_str(shape)}; received {describe(out)}.")
        self._core.infer(MODE_PREDICT, X, None, None, min(batch_size, self.batch_size), out)
        return out
