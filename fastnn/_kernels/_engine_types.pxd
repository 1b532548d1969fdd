# The training engine's state and its thread team (docs/engine.md has the picture).
#
# Dimension legend
#   S  rows of the data set    n  rows of the current batch (<= batch_size) or inference chunk
#   I0 input features          K  outputs of the model (the last op's width)
#   I, O  an op's input and output widths    C  channels of a BatchNormalization op
#   N  parameters in the arena   M  metrics   T  threads of the team, tid this thread
#
# Buffers are void* and cast to the plan's dtype (float or double) by the fused-type code that
# reads them; every buffer is C-contiguous, rows `width` elements apart.
from libc.stdint cimport uint8_t, uint64_t

from fastnn._kernels._typedefs cimport intp_t
from fastnn._kernels._openmp cimport fastnn_barrier, fastnn_thread_num

cdef extern from "<time.h>" nogil:
    cdef struct timespec:
        long tv_sec
        long tv_nsec
    int clock_gettime(int clk_id, timespec* tp)
    int CLOCK_MONOTONIC

cdef enum:
    OP_DENSE = 0
    OP_ACT = 1
    OP_BN = 2
    OP_DROPOUT = 3
    OP_PERMUTE = 4
    OP_PRELU = 5

cdef enum:
    MODE_TRAIN = 0      # whole training steps
    MODE_EVAL = 1       # loss and metrics, inference arithmetic
    MODE_PREDICT = 2    # outputs, inference arithmetic
    MODE_FORWARD = 3    # one batch forward in training arithmetic (model(x, training=True)), no update

cdef enum:
    IN_GATHER = 0       # the batch's rows are copied (the first op is not a dense layer)
    IN_DENSE = 1        # a dense first layer on dense X: GEMM on copied rows, or bitmaps of the rows in X
    IN_CSR = 2          # a dense first layer on a CSR matrix, read where it lies

cdef enum:
    OPT_SGD = 0
    OPT_RMSPROP = 1
    OPT_ADAM = 2
    OPT_ADADELTA = 3
    OPT_ADAGRAD = 4
    OPT_ADAMAX = 5
    OPT_NADAM = 6
    OPT_LION = 7

cdef enum:
    MAX_METRICS = 8
    PENALTY_CHUNK = 4096  # elements per partial sum of a regularization penalty (as regularizers.pyx)
    GRAD_CHUNK = 4096     # elements per partial sum of a gradient's squared norm (norm clipping)


cdef struct EOp:
    int kind
    Py_ssize_t n_in         # I
    Py_ssize_t n_out        # O
    int act                 # dense: its activation (ACT_*); act: the activation
    double ap[3]            # the activation's parameters (_loops.pxd act_parse: slope, alpha, relu's three)
    void* Z                 # the activation's input, read by its backward when act_needs_x: dense: its own
                            # (batch_size, O) buffer of pre-activations (training); act, prelu: the previous
                            # op's output (or the batch)
    Py_ssize_t group        # act: softmax over runs of `group` features; bn, prelu: C, the channels
    bint train              # dense/bn/prelu: trained (gradients, updates, batch statistics)
    bint fused              # the last op, whose softmax/sigmoid the loss folds in: A is pre-activation
    bint need_grad          # G (the gradient at this op's output) is needed: a trained op is at or below
    bint need_dx            # the backward writes the previous op's G
    void* A                 # (rows_cap, O) output
    void* G                 # (batch_size, O) gradient at the output (dense: at the pre-activation, in place)
    # dense: views into the arenas
    void* W                 # (I, O)
    void* b                 # (O,) or NULL
    void* dW
    void* db
    void* WT                # (O, I) W transposed, for the input gradient (need_dx)
    Py_ssize_t w_off
    Py_ssize_t b_off
    bint dw_by_rows         # the weight gradient + update split over input features, not units
    double w_l1             # regularizer factors of the kernel (bn: gamma) and bias (bn: beta)
    double w_l2
    double b_l1
    double b_l2
    double w_scale          # this step's norm-clipping factor of the kernel (bn: gamma) and bias (bn: beta)
    double b_scale
    bint w_decay            # weight decay applies to the kernel (bn: gamma) and bias (bn: beta)
    bint b_decay
    # prelu: alpha (C,) and its gradient are W and dW, regularizer factors w_l1/w_l2
    # bn: views into the arenas (gamma/beta NULL when absent)
    void* gamma
    void* beta
    void* dgamma
    void* dbeta
    void* moving_mean
    void* moving_var
    double momentum
    double epsilon
    double* stats           # (5, C) float64: mean, var, inv_std, sum dy, sum dy * xhat
    void* coef              # (5, C): m, a, s, mean dy, mean dy * xhat
    # dropout
    double keep             # 1 - rate
    double scale            # 1 / (1 - rate), 0 when rate == 1
    uint8_t* mask           # (batch_size, O)
    int u_index             # its uniforms: Engine.U[u_index]
    # permute
    const intp_t* perm      # (O,)


cdef struct Engine:
    EOp* ops
    int n_ops
    bint f64                # the plan's dtype is float64
    Py_ssize_t I0
    Py_ssize_t K
    # loss and metrics
    int loss
    int n_metrics
    int metrics[MAX_METRICS]
    double metric_threshold[MAX_METRICS]  # binary_accuracy's threshold (0.5 by default)
    bint metric_weighted[MAX_METRICS]     # the metric's row values are times the sample weights (weighted_metrics)
    bint want_probs         # the loss folds the last activation and its outputs are read (metrics, capture)
    # optimizer over the parameter arena
    int opt
    void* params
    void* grads
    Py_ssize_t N
    void* s0
    void* s1
    void* s2
    double lr
    double h_a
    double h_b
    double h_c
    bint flag1
    double beta_1
    double beta_2
    double alpha            # Adam's step size of the current step
    void* s3                # the accumulated gradient (gradient_accumulation_steps), or NULL
    double k[5]             # the current step's scalars of Adamax and Nadam (_engine_update.step_scalars)
    Py_ssize_t nadam_t      # Nadam: the step whose product of u_1..u_t is nadam_prod (0: none)
    double nadam_prod
    # Keras 3's gradient treatment (base_optimizer.py): accumulation, clipping, decoupled weight decay
    double lr_step          # the current step's learning rate (schedule, table or lr)
    double weight_decay
    double clipnorm         # per weight (each kernel, bias, gamma, beta)
    double clipvalue
    double global_clipnorm
    Py_ssize_t accum_steps  # gradient_accumulation_steps (0: none)
    bint is_update          # the current step updates (else it only accumulates)
    bint grads_ready        # the norm phase has already added the regularizers' gradients and accumulation
    # gradient chunks (norm clipping): GRAD_CHUNK elements of the trained ranges, var = their weight
    Py_ssize_t n_gchunks
    Py_ssize_t* gchunk_off
    Py_ssize_t* gchunk_len
    Py_ssize_t* gchunk_var  # (n_gchunks,) the weight (index into gvar_op/gvar_bias) a chunk belongs to
    double* gchunk_l1
    double* gchunk_l2
    double* gchunk_sq       # (n_gchunks,) sum g^2 of the chunk
    Py_ssize_t n_gvars
    int* gvar_op            # (n_gvars,) the op of each trained weight, and whether it is the bias (beta)
    int* gvar_bias
    # learning-rate schedule (_schedules.pxd) or a table of per-step rates (a Python schedule)
    int schedule            # SCHEDULE_* code; SCHEDULE_NONE: lr
    const double* sched_p   # its parameters
    Py_ssize_t sched_n
    const double* lr_table  # (n_batches,) per-step rates from raw step lr_table_start, or NULL
    Py_ssize_t lr_table_start
    # regularization penalty: chunks of PENALTY_CHUNK elements of the regularized ranges
    Py_ssize_t n_chunks
    Py_ssize_t* chunk_off   # (n_chunks,) arena offset of each chunk
    Py_ssize_t* chunk_len   # (n_chunks,)
    double* chunk_l1        # (n_chunks,) the factors of its range
    double* chunk_l2
    double* chunk_sum       # (n_chunks,) l1 sum|w| + l2 sum w^2 of the chunk
    # buffers for batch_size rows (rows_cap = max(batch_size, inference chunk))
    Py_ssize_t batch_size
    Py_ssize_t rows_cap
    void* xb                # (batch_size, I0) the batch's rows, copied (IN_GATHER, or IN_DENSE without bitmaps)
    intp_t* ids_b           # (batch_size,) the batch's class ids
    void* yb                # (batch_size, K) the batch's labels
    double* swb             # (batch_size,) the batch's sample weights
    void* probs             # (rows_cap, K) activated outputs of a folded loss
    double* rowloss         # (2, rows_cap): two slots (inference adds one chunk while the next runs)
    double* rowmetric       # (2, M, rows_cap)
    double* acc             # (T, acc_stride) per-thread float64 scratch (bias gradient sums)
    Py_ssize_t acc_stride
    # input strategy
    int input
    Py_ssize_t first_split  # IN_DENSE training: the first dense op sums features [0, s) and [s, I0) apart (0: one pass)
    void* part              # (2, batch_size, O) those two partial sums
    bint bitmask_ok         # dense float32 input wide enough for the bitmask kernels
    double max_density      # bitmask kernels when a batch's non-zeros are at most this fraction
    uint64_t* featmask      # (I0, nw) feature-major bitmap of the batch's non-zeros
    uint64_t* rowbits       # (nwi, 64 * nw_cap) word-major bitmap of the same
    uint8_t* octets         # (T, 8 * nwi * 64 * nw) scratch of fastnn_gather_bitmaps, per thread
    Py_ssize_t octets_stride
    Py_ssize_t* nnz_part    # (T, 8) the non-zeros each thread's features hold (a line each)
    Py_ssize_t nw           # ceil(batch_size / 64)
    Py_ssize_t nw_cap       # ceil(rows_cap / 64)
    Py_ssize_t nwi          # ceil(I0 / 64)
    # CSR input
    bint csr64
    const void* indptr
    const void* indices
    const void* data
    bint csr_sorted
    const intp_t* csr_split # (P + 1,) part p of the first layer's gradient scatter: features [split[p], split[p+1])
    int csr_parts           # P: the threads the split was made for (csr_features maps them onto the team)
    # the call
    int mode
    const void* X           # dense (S, I0)
    Py_ssize_t ldx
    const intp_t* ids       # (S,) class ids, or NULL
    const void* Y           # (S, K) labels, or NULL
    const double* sw        # (S,) sample weights, or NULL
    const intp_t* order
    Py_ssize_t n_order
    Py_ssize_t first_batch
    Py_ssize_t n_batches
    Py_ssize_t iterations
    Py_ssize_t n_rows       # inference: rows of X
    void* out               # predict: (S, K)
    void* capture           # train/eval: (rows of the call, K) the model's outputs, or NULL
    const void** U          # train: (n_dropout,) uniforms (rows of the call, O) per dropout op
    void* hook              # train: a Python callable run between the gradients and the updates, or NULL
    bint hook_failed        # ... it raised (the caller re-raises): the call stops before that step's update
    Py_ssize_t steps_done   # train: steps whose update was applied in this call (thread 0)
    Py_ssize_t steps_total  # train: steps applied since the engine was made (thread 0): never reset, so a caller
                            # interrupted anywhere (Ctrl-C between two calls) can count the steps applied
    # results, written by thread 0
    double loss_sum
    double metric_sums[MAX_METRICS]
    Py_ssize_t seen


cdef inline void rows_of(Py_ssize_t n, int tid, int T, Py_ssize_t* r0, Py_ssize_t* r1) noexcept nogil:
    """This thread's rows [r0, r1) of n: the same split in every row phase of a step, so a thread's
    row phases read only rows it wrote itself and need no barrier between them."""
    r0[0] = n * tid // T
    r1[0] = n * (tid + 1) // T


cdef inline bint share16(Py_ssize_t n, int tid, int T, Py_ssize_t* c0, Py_ssize_t* c1) noexcept nogil:
    """This thread's share [c0, c1) of n columns (or features), boundaries at multiples of 16 (whole
    64-byte lines of float32 in a 64-byte aligned buffer); False when it is empty."""
    c0[0] = 0 if tid <= 0 else min(n, (n * tid // T + 8) // 16 * 16)
    c1[0] = n if tid + 1 >= T else min(n, (n * (tid + 1) // T + 8) // 16 * 16)
    return c1[0] > c0[0]


cdef inline void sync(int T) noexcept nogil:
    if T > 1:
        fastnn_barrier()


cdef inline double now() noexcept nogil:
    cdef timespec t
    clock_gettime(CLOCK_MONOTONIC, &t)
    return t.tv_sec + 1e-9 * t.tv_nsec
