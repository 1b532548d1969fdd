"""The training engine: whole training steps, evaluation and prediction of any fastnn model, compiled.

``Engine(plan, ...)`` runs the plan (``_engine_plan``: a chain of dense, activation, BatchNormalization,
Dropout and permute ops, a loss, metrics, an optimizer and regularizers; float32 or float64) over the
parameter arena in place. Its NumPy twin is ``_reference_engine.Engine``: same arguments and results.
How a batch flows, and where to add an op or a strategy: docs/engine.md. The nogil code is in the
``_engine_*.pxd`` files; this module allocates, checks arguments, and chooses the threads.
"""
import numpy as np

from libc.stdint cimport uint8_t, uint64_t
from libc.math cimport isfinite
from libc.string cimport memset
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cython.parallel cimport parallel, threadid

from fastnn._kernels._typedefs cimport intp_t
from fastnn._kernels._openmp cimport effective_n_threads, fastnn_team_size
from fastnn._kernels._loops_act cimport act_needs_x, act_parse
from fastnn._kernels._loops cimport fma_isa
from fastnn._kernels._loops_loss cimport (LOSS_BXENT, LOSS_MAE, LOSS_MSE, LOSS_SIGMOID_BXENT, LOSS_SOFTMAX_XENT,
                                          LOSS_XENT, metric_code)
from fastnn._kernels._loops_norm cimport dropout_scale
from fastnn._kernels._engine_types cimport (EOp, Engine as CEngine, IN_CSR, IN_DENSE, IN_GATHER, MODE_EVAL,
                                            MODE_FORWARD, MODE_PREDICT, MODE_TRAIN, OP_ACT, OP_BN, OP_DENSE,
                                            OP_DROPOUT, OP_PERMUTE, OP_PRELU, OPT_ADADELTA, OPT_ADAGRAD, OPT_ADAM,
                                            OPT_ADAMAX, OPT_LION, OPT_NADAM, OPT_RMSPROP, OPT_SGD, GRAD_CHUNK,
                                            PENALTY_CHUNK)
from fastnn._kernels._engine_step cimport infer_call, train_call

from fastnn._kernels import _engine_plan as P
from fastnn._kernels._optim_scalars import SCHEDULES
from fastnn._kernels._engine_csr import CsrInputs, is_csr
from fastnn._kernels._engine_threads import PIECE_STEPS, PROBE_STEPS, TEAM_PROBE_STEPS, WARM_STEPS, Chooser, timed
from fastnn.utils.validation import describe, shape_str

cdef extern from "fastnn_kernels.h" nogil:
    unsigned int fastnn_denormals_flush()
    void fastnn_denormals_restore(unsigned int old)

# Tunables: starting points, not rules (docs/engine.md "Tunables"). Each changes speed only.
TUNABLES = {
    "max_density": 0.55,     # a batch with at most this fraction of non-zeros runs the bitmask kernels
    "bitmask_min_inputs": 64,  # ... when the first layer has at least this many inputs (float32)
    "infer_chunk_rows": 128,   # evaluate/predict rows per chunk (one barrier each); no row's bits depend on it
    "split_min_inputs": 64,    # a first dense layer with this many inputs sums two feature partitions (model arithmetic)
}
_LOSS_CODES = {"softmax_xent": LOSS_SOFTMAX_XENT, "sigmoid_bxent": LOSS_SIGMOID_BXENT, "xent": LOSS_XENT,
               "bxent": LOSS_BXENT, "mse": LOSS_MSE, "mae": LOSS_MAE}
_OPT_CODES = {"sgd": OPT_SGD, "rmsprop": OPT_RMSPROP, "adam": OPT_ADAM, "adadelta": OPT_ADADELTA,
              "adagrad": OPT_ADAGRAD, "adamax": OPT_ADAMAX, "nadam": OPT_NADAM, "lion": OPT_LION}
_OP_CODES = {"dense": OP_DENSE, "act": OP_ACT, "bn": OP_BN, "dropout": OP_DROPOUT, "permute": OP_PERMUTE,
             "prelu": OP_PRELU}


cdef object _aligned(Py_ssize_t n, dtype):
    """n zeroed elements of dtype, 64-byte aligned (whole cache lines per thread block)."""
    item = np.dtype(dtype).itemsize
    raw = np.zeros(n + 64 // item + 1, dtype)
    off = ((-raw.ctypes.data) % 64) // item
    return raw[off:off + n]


cdef inline size_t _addr(a):
    return <size_t>a.ctypes.data if a is not None else 0


cdef void _body(CEngine* e, int tid, int T) noexcept nogil:
    cdef unsigned int csr = fastnn_denormals_flush()  # see csrc/fastnn_kernels.h: denormal slots cost assists
    if e.f64:
        if e.mode == MODE_TRAIN or e.mode == MODE_FORWARD:
            train_call(e, tid, T, <double>0)
        else:
            infer_call(e, tid, T, <double>0)
    else:
        if e.mode == MODE_TRAIN or e.mode == MODE_FORWARD:
            train_call(e, tid, T, <float>0)
        else:
            infer_call(e, tid, T, <float>0)
    fastnn_denormals_restore(csr)


cdef void _run(CEngine* e, int nt) noexcept nogil:
    """One OpenMP region for the whole call; its phases are separated by barriers (_engine_step.pxd)."""
    cdef int tid, T
    if nt <= 1:
        _body(e, 0, 1)
        return
    with parallel(num_threads=nt):
        tid = threadid()
        T = fastnn_team_size()  # the team OpenMP actually gave us
        _body(e, tid, T)


cdef class _Core:
    """The C state of one Engine and every array its pointers point into."""
    cdef CEngine e
    cdef list keep
    cdef object acc, nnz_part, u_addrs, csr_split, lr_table, sched_params
    cdef public object dtype

    def __cinit__(self):
        self.e.ops = NULL

    def __dealloc__(self):
        if self.e.ops != NULL:
            PyMem_Free(self.e.ops)
            self.e.ops = NULL

    def setup(self, plan, params, grads, slots, Py_ssize_t batch_size):
        cdef CEngine* e = &self.e
        cdef EOp* op
        cdef Py_ssize_t rows_cap = max(batch_size, TUNABLES["infer_chunk_rows"]), width = 1, I, O
        ops = plan["ops"]
        dtype = self.dtype = plan["dtype"]
        self.keep = [params, grads]
        e.n_ops = len(ops)
        e.ops = <EOp*>PyMem_Malloc(e.n_ops * sizeof(EOp))
        if e.ops == NULL:
            raise MemoryError()
        e.f64 = dtype == np.float64
        e.I0 = plan["n_inputs"]
        e.K = P.op_width(ops[len(ops) - 1])
        e.batch_size = batch_size
        e.rows_cap = rows_cap
        e.params = <void*><size_t>params.ctypes.data
        e.grads = <void*><size_t>grads.ctypes.data
        e.N = params.shape[0]
        e.loss = _LOSS_CODES[plan["loss"][0]]
        e.n_metrics = len(plan["metrics"])
        for k, (name, threshold, weighted) in enumerate(plan["metrics"]):
            e.metrics[k] = metric_code(name)
            e.metric_threshold[k] = threshold
            e.metric_weighted[k] = weighted
        kind, hyper = plan["optimizer"]
        e.opt = _OPT_CODES[kind]
        e.s0, e.s1, e.s2 = <void*>_addr(slots[0]), <void*>_addr(slots[1]), <void*>_addr(slots[2])
        e.s3 = <void*>_addr(slots[3])
        e.nadam_t = 0
        e.lr_table = NULL
        self.keep += list(slots)
        trained_below = False
        n_dropout = 0
        itemsize = np.dtype(dtype).itemsize
        for i, spec in enumerate(ops):
            op = &e.ops[i]
            memset_op(op)
            op.kind = _OP_CODES[spec[0]]
            op.n_in = spec[1]
            op.n_out = O = P.op_width(spec)
            I = op.n_in
            width = max(width, I, O)
            op.train = bool(spec[6]) if spec[0] == "dense" else (bool(spec[9]) if spec[0] == "bn" else
                                                                  bool(spec[4]) if spec[0] == "prelu" else False)
            trained_below = trained_below or op.train
            op.need_grad = trained_below
            op.need_dx = i > 0 and e.ops[i - 1].need_grad
            op.fused = i == len(ops) - 1 and bool(plan["loss"][1])
            op.A = self._buffer(rows_cap * O, dtype)
            op.G = self._buffer(batch_size * O, dtype) if op.need_grad else NULL
            if spec[0] == "dense":
                _, _, _, w_off, b_off, act, _ = spec
                op.act = act_parse(act, op.ap, "Engine")
                if act_needs_x(op.act) and op.need_grad:  # its backward reads the pre-activations
                    op.Z = self._buffer(batch_size * O, dtype)
                op.w_off, op.b_off = w_off, b_off
                op.W = self._view(params, w_off)
                op.dW = self._view(grads, w_off)
                op.b = self._view(params, b_off)
                op.db = self._view(grads, b_off)
                # the weight gradient + update shared out by input features (contiguous kernel rows: units
                # interleaved in every row made each core's prefetchers fetch the other's lines), but by
                # units when the layer has too few inputs for two 16-row shares
                op.dw_by_rows = I >= 32 or O < 32
            elif spec[0] == "act":
                op.act = act_parse(spec[2], op.ap, "Engine")
                op.group = spec[3]
            elif spec[0] == "prelu":
                _, _, C, a_off, _ = spec
                op.group = C
                op.w_off = a_off
                op.W = self._view(params, a_off)
                op.dW = self._view(grads, a_off)
            elif spec[0] == "bn":
                _, _, C, g_off, be_off, mm_off, mv_off, momentum, epsilon, _ = spec
                op.group = C
                op.gamma = self._view(params, g_off)
                op.dgamma = self._view(grads, g_off)
                op.beta = self._view(params, be_off)
                op.dbeta = self._view(grads, be_off)
                op.moving_mean = self._view(params, mm_off)
                op.moving_var = self._view(params, mv_off)
                op.momentum, op.epsilon = momentum, epsilon
                op.stats = <double*>self._buffer(5 * C, np.float64)
                op.coef = self._buffer(5 * C, dtype)
            elif spec[0] == "dropout":
                op.keep = 1.0 - spec[2]
                op.scale = dropout_scale(spec[2])
                op.mask = <uint8_t*>self._buffer(batch_size * O, np.uint8)
                op.u_index = n_dropout
                n_dropout += 1
            else:
                perm = np.ascontiguousarray(spec[2], dtype=np.intp)
                self.keep.append(perm)
                op.perm = <const intp_t*><size_t>perm.ctypes.data
        for i, spec in enumerate(ops):
            op = &e.ops[i]
            if spec[0] == "dense" and op.need_dx:
                op.WT = self._buffer(op.n_in * op.n_out, dtype)
        self._regularizers(plan, ops, itemsize)
        self._grad_chunks(plan, ops)
        e.acc_stride = (width + 7) // 8 * 8
        self.acc = self._array(e.acc_stride, np.float64)
        e.acc = <double*><size_t>self.acc.ctypes.data
        self.nnz_part = self._array(8, np.intp)
        e.nnz_part = <Py_ssize_t*><size_t>self.nnz_part.ctypes.data
        e.xb = self._buffer(batch_size * e.I0, dtype)
        for i, spec in enumerate(ops):  # the input of an activation or PReLU op, for its backward
            if spec[0] in ("act", "prelu"):
                e.ops[i].Z = e.ops[i - 1].A if i > 0 else e.xb
        e.ids_b = <intp_t*>self._buffer(batch_size, np.intp)
        e.yb = self._buffer(batch_size * e.K, dtype)
        e.swb = <double*>self._buffer(batch_size, np.float64)
        e.probs = self._buffer(rows_cap * e.K, dtype)
        e.rowloss = <double*>self._buffer(2 * rows_cap, np.float64)
        e.rowmetric = <double*>self._buffer(2 * max(1, e.n_metrics) * rows_cap, np.float64)
        e.nw = (batch_size + 63) // 64
        e.nw_cap = (rows_cap + 63) // 64
        e.nwi = (e.I0 + 63) // 64
        e.bitmask_ok = (not e.f64 and ops[0][0] == "dense" and e.I0 >= TUNABLES["bitmask_min_inputs"])
        if e.bitmask_ok:
            e.featmask = <uint64_t*>self._buffer(e.I0 * e.nw, np.uint64)
            e.rowbits = <uint64_t*>self._buffer(e.nwi * 64 * e.nw_cap, np.uint64)
            e.octets = <uint8_t*>self._buffer(8 * e.nwi * 64 * e.nw, np.uint8)
        e.first_split = 0
        if ops[0][0] == "dense" and e.I0 >= TUNABLES["split_min_inputs"]:
            e.first_split = (e.I0 // 2 + 8) // 16 * 16
            e.part = self._buffer(2 * batch_size * e.ops[0].n_out, dtype)
        self.u_addrs = self._array(max(1, n_dropout), np.intp)
        e.U = <const void**><size_t>self.u_addrs.ctypes.data

    cdef void* _buffer(self, Py_ssize_t n, dtype) except? NULL:
        a = _aligned(max(n, 1), dtype)
        self.keep.append(a)
        return <void*><size_t>a.ctypes.data

    def _array(self, n, dtype):
        a = _aligned(n, dtype)
        self.keep.append(a)
        return a

    cdef void* _view(self, arena, Py_ssize_t off):
        cdef size_t base = arena.ctypes.data
        cdef size_t item = arena.itemsize
        if off < 0:
            return NULL
        return <void*>(base + off * item)

    def _regularizers(self, plan, ops, itemsize):
        """Each regularizer onto its op's factors, and the penalty's chunks (PENALTY_CHUNK elements each)."""
        cdef CEngine* e = &self.e
        cdef EOp* op
        where = {}
        for i, spec in enumerate(ops):
            for name, off, size, _ in P.op_weights(spec):
                where[(off, size)] = (i, name)
        chunks = []
        for off, size, l1, l2 in plan["regularizers"]:
            if (off, size) not in where:
                raise ValueError(f"Engine: a regularizer must cover one op's kernel, bias, gamma, beta or alpha exactly; "
                                 f"received [{off}, {off + size}).")
            i, name = where[(off, size)]
            op = &e.ops[i]
            if name in ("kernel", "gamma", "alpha"):
                op.w_l1, op.w_l2 = l1, l2
            elif name in ("bias", "beta"):
                op.b_l1, op.b_l2 = l1, l2
            else:
                raise ValueError(f"Engine: the moving statistics of op {i} cannot be regularized.")
            chunks += [(off + c, min(PENALTY_CHUNK, size - c), l1, l2) for c in range(0, size, PENALTY_CHUNK)]
        e.n_chunks = len(chunks)
        table = [np.ascontiguousarray([c[k] for c in chunks] or [0], dtype=t)
                 for k, t in enumerate((np.intp, np.intp, np.float64, np.float64))]
        sums = np.zeros(max(1, len(chunks)))
        self.keep += table + [sums]
        e.chunk_off = <Py_ssize_t*><size_t>table[0].ctypes.data
        e.chunk_len = <Py_ssize_t*><size_t>table[1].ctypes.data
        e.chunk_l1 = <double*><size_t>table[2].ctypes.data
        e.chunk_l2 = <double*><size_t>table[3].ctypes.data
        e.chunk_sum = <double*><size_t>sums.ctypes.data

    def _grad_chunks(self, plan, ops):
        """The trained weights (kernel/bias, gamma/beta) and their chunks of GRAD_CHUNK elements, whose sums of
        squared gradients norm clipping adds up in order; and which weights weight decay skips."""
        cdef CEngine* e = &self.e
        cdef EOp* op
        excluded = set(plan["optimizer"][1]["decay_excluded"])
        regs = {(off, size): (l1, l2) for off, size, l1, l2 in plan["regularizers"]}
        gvars, chunks = [], []
        for i, spec in enumerate(ops):
            op = &e.ops[i]
            op.w_scale = op.b_scale = 1.0
            for name, off, size, trained in P.op_weights(spec):
                if not trained:
                    continue
                bias = name in ("bias", "beta")
                if bias:
                    op.b_decay = off not in excluded
                else:
                    op.w_decay = off not in excluded
                l1, l2 = regs.get((off, size), (0.0, 0.0))
                chunks += [(off + c, min(GRAD_CHUNK, size - c), len(gvars), l1, l2) for c in range(0, size, GRAD_CHUNK)]
                gvars.append((i, int(bias)))
        e.n_gchunks, e.n_gvars = len(chunks), len(gvars)
        table = [np.ascontiguousarray([c[k] for c in chunks] or [0], dtype=t)
                 for k, t in enumerate((np.intp, np.intp, np.intp, np.float64, np.float64))]
        var_table = [np.ascontiguousarray([v[k] for v in gvars] or [0], dtype=np.intc) for k in range(2)]
        sq = np.zeros(max(1, len(chunks)))
        self.keep += table + var_table + [sq]
        e.gchunk_off = <Py_ssize_t*><size_t>table[0].ctypes.data
        e.gchunk_len = <Py_ssize_t*><size_t>table[1].ctypes.data
        e.gchunk_var = <Py_ssize_t*><size_t>table[2].ctypes.data
        e.gchunk_l1 = <double*><size_t>table[3].ctypes.data
        e.gchunk_l2 = <double*><size_t>table[4].ctypes.data
        e.gchunk_sq = <double*><size_t>sq.ctypes.data
        e.gvar_op = <int*><size_t>var_table[0].ctypes.data
        e.gvar_bias = <int*><size_t>var_table[1].ctypes.data

    def set_hyper(self, kind, hyper, double lr, lr_table=None, Py_ssize_t table_start=0):
        """The optimizer's hyper-parameters, and the learning rate: the plan's schedule, else lr_table
        (per-step rates from raw step table_start), else lr."""
        cdef CEngine* e = &self.e
        e.lr = lr
        e.h_a = e.h_b = e.h_c = e.beta_1 = e.beta_2 = 0
        e.flag1 = False
        if kind == "sgd":
            e.h_a, e.flag1 = hyper["momentum"], hyper["nesterov"]
        elif kind == "rmsprop":
            e.h_a, e.h_b, e.h_c, e.flag1 = hyper["rho"], hyper["momentum"], hyper["epsilon"], hyper["centered"]
        elif kind == "adam":
            e.h_c, e.flag1, e.beta_1, e.beta_2 = hyper["epsilon"], hyper["amsgrad"], hyper["beta_1"], hyper["beta_2"]
        elif kind in ("adamax", "nadam"):
            e.h_c, e.beta_1, e.beta_2 = hyper["epsilon"], hyper["beta_1"], hyper["beta_2"]
        elif kind == "lion":
            e.beta_1, e.beta_2 = hyper["beta_1"], hyper["beta_2"]
        elif kind == "adagrad":
            e.h_c = hyper["epsilon"]
        else:
            e.h_a, e.h_c = hyper["rho"], hyper["epsilon"]
        e.weight_decay = hyper["weight_decay"]
        e.clipnorm, e.clipvalue, e.global_clipnorm = hyper["clipnorm"], hyper["clipvalue"], hyper["global_clipnorm"]
        e.accum_steps = hyper["gradient_accumulation_steps"]
        schedule = hyper["schedule"]
        e.schedule = 0
        if schedule is not None:
            params = self.sched_params = np.ascontiguousarray(schedule[1], dtype=np.float64)
            e.schedule = SCHEDULES[schedule[0]][0]
            e.sched_p = <const double*><size_t>params.ctypes.data
            e.sched_n = params.shape[0]
        e.lr_table = NULL
        if lr_table is not None:
            self.lr_table = lr_table
            e.lr_table = <const double*><size_t>lr_table.ctypes.data
            e.lr_table_start = table_start

    def set_input(self, X, csr_split=None, kernel="auto"):
        """Point the engine at X: a dense (S, I0) array, or a checked CSR matrix; kernel "gemm" keeps the
        first layer off the bitmask kernels (the same bits, another speed)."""
        cdef CEngine* e = &self.e
        e.max_density = -1.0 if kernel == "gemm" else TUNABLES["max_density"]
        e.indptr = e.indices = e.data = NULL
        if X is None:
            e.X = NULL
            return
        if not is_csr(X):
            e.X = <const void*><size_t>X.ctypes.data
            e.ldx = e.I0
            e.input = IN_DENSE if e.ops[0].kind == OP_DENSE else IN_GATHER
            return
        e.X = NULL
        e.ldx = 0
        e.input = IN_CSR
        e.csr64 = X.indices.dtype == np.int64
        e.indptr = <const void*><size_t>X.indptr.ctypes.data
        e.indices = <const void*><size_t>X.indices.ctypes.data
        e.data = <const void*><size_t>X.data.ctypes.data
        if csr_split is not None:
            sorted_rows, split = csr_split
            e.csr_sorted = sorted_rows
            self.csr_split = split
            e.csr_split = <const intp_t*><size_t>split.ctypes.data
            e.csr_parts = split.shape[0] - 1

    def set_labels(self, ids, Y, sw):
        cdef CEngine* e = &self.e
        e.ids = <const intp_t*><size_t>ids.ctypes.data if ids is not None else NULL
        e.Y = <const void*><size_t>Y.ctypes.data if Y is not None else NULL
        e.sw = <const double*><size_t>sw.ctypes.data if sw is not None else NULL

    def check_rows(self, order, Py_ssize_t start, Py_ssize_t stop, Py_ssize_t S):
        """(problem, value) for the rows order[start:stop] (order None: start..stop) in one pass: 0 ok, 1 a row
        id outside [0, S), 2 a class id outside [0, K), 3 a label that is NaN or inf."""
        cdef CEngine* e = &self.e
        cdef const intp_t* o = <const intp_t*><size_t>order.ctypes.data if order is not None else NULL
        cdef Py_ssize_t r, k, src = 0, K = e.K
        cdef int problem = 0
        with nogil:
            for r in range(start, stop):
                src = o[r] if o != NULL else r
                if src < 0 or src >= S:
                    problem = 1
                    break
                if e.ids != NULL:
                    if e.ids[src] < 0 or e.ids[src] >= K:
                        problem = 2
                        break
                elif e.Y != NULL:
                    for k in range(K):
                        if not _finite_label(e, src * K + k):
                            problem = 3
                            break
                    if problem:
                        break
        if problem == 1:
            return 1, src
        if problem == 2:
            return 2, e.ids[src]
        return problem, None

    def steps_done(self):
        return self.e.steps_done

    def steps_total(self):
        return self.e.steps_total

    def _team_scratch(self, int nt):
        cdef CEngine* e = &self.e
        if self.acc.shape[0] < nt * e.acc_stride:
            self.acc = self._array(nt * e.acc_stride, np.float64)
            e.acc = <double*><size_t>self.acc.ctypes.data
        if self.nnz_part.shape[0] < nt * 8:
            self.nnz_part = self._array(nt * 8, np.intp)
            e.nnz_part = <Py_ssize_t*><size_t>self.nnz_part.ctypes.data

    def train(self, int mode, order, Py_ssize_t first_batch, Py_ssize_t n_batches, Py_ssize_t iterations,
              uniforms, capture, out, int nt, bint continue_sums, hook=None):
        """n_batches steps (or MODE_FORWARD's one batch) on nt threads; (loss_sum, metric_sums, seen).
        hook: called with GIL between each step's gradients and its update (see Engine.train_steps)."""
        cdef CEngine* e = &self.e
        e.hook = <void*>hook if hook is not None else NULL
        e.hook_failed = False
        e.steps_done = 0
        self._team_scratch(nt)
        for k, u in enumerate(uniforms):  # the caller keeps them alive during the call
            self.u_addrs[k] = u.ctypes.data
        e.mode = mode
        e.order = <const intp_t*><size_t>order.ctypes.data
        e.n_order = order.shape[0]
        e.first_batch = first_batch
        e.n_batches = n_batches
        e.iterations = iterations
        e.capture = <void*><size_t>capture.ctypes.data if capture is not None else NULL
        e.out = <void*><size_t>out.ctypes.data if out is not None else NULL
        e.want_probs = e.ops[e.n_ops - 1].fused and (e.n_metrics > 0 or capture is not None)
        return self._go(nt, continue_sums)

    def infer(self, int mode, Py_ssize_t n_rows, capture, out, int nt):
        cdef CEngine* e = &self.e
        self._team_scratch(nt)
        e.mode = mode
        e.n_rows = n_rows
        e.capture = <void*><size_t>capture.ctypes.data if capture is not None else NULL
        e.out = <void*><size_t>out.ctypes.data if out is not None else NULL
        e.want_probs = (mode == MODE_EVAL and e.ops[e.n_ops - 1].fused
                        and (e.n_metrics > 0 or capture is not None))
        return self._go(nt, False)

    def _go(self, int nt, bint continue_sums):
        cdef CEngine* e = &self.e
        if not continue_sums:
            e.loss_sum = 0
            e.seen = 0
            for m in range(e.n_metrics):
                e.metric_sums[m] = 0
        with nogil:
            _run(e, nt)
        return e.loss_sum, np.array([e.metric_sums[m] for m in range(e.n_metrics)], dtype=np.float64), e.seen


cdef inline bint _finite_label(CEngine* e, Py_ssize_t i) noexcept nogil:
    if e.f64:
        return isfinite((<const double*>e.Y)[i])
    return isfinite((<const float*>e.Y)[i])


cdef inline void memset_op(EOp* op) noexcept:
    memset(op, 0, sizeof(EOp))


class _Hook:
    """A grad_hook as the nogil loop calls it: the call's step numbers, and an exception kept for the caller
    (the loop cannot raise one) -- None tells the loop to stop."""

    def __init__(self, fn):
        self.fn, self.offset, self.error = fn, 0, None

    def at(self, offset):
        self.offset = offset
        return self

    def __call__(self, step):
        try:
            return float(self.fn(self.offset + step))
        except BaseException as exc:  # (KeyboardInterrupt too: re-raised by train_steps)
            self.error = exc
            return None


class Engine:
    """Runs a plan (``_engine_plan``) over its parameter arena: training steps, evaluation, prediction.

    Compiled twin of ``_reference_engine.Engine``: same arguments and results. ``params``/``grads`` (N,)
    arenas of the plan's dtype (params updated in place, grads scratch); ``slots`` the optimizer's
    state buffers (N,) or None, in ``_engine_plan.needed_slots`` order; ``batch_size`` the largest
    training batch. Results do not depend on the thread count (``n_threads``: at most that many; None:
    fastnn's setting), which is chosen per call by measurement (``_engine_threads``).
    """

    def __init__(self, plan, params, grads, slots, batch_size, n_threads=None):
        self.plan, self.slots = P.check_plan(plan, params, grads, slots, batch_size)
        self.params, self.grads = params, grads
        self.batch_size = int(batch_size)
        self.n_threads = n_threads
        self._core = _Core()
        self._core.setup(self.plan, params, grads, self.slots, self.batch_size)
        self._choosers = {}
        self._csr = CsrInputs(self.plan, self.batch_size)
        self._force_threads = 0

    # ---------------------------------------------------------------- arguments
    def _x(self, owner, X):
        if is_csr(X):
            return self._csr.check(owner, X)
        return P.check_dense_x(owner, X, self.plan["n_inputs"], self.plan["dtype"])

    def _capture(self, owner, capture, rows):
        if capture is None:
            return None
        K = P.op_width(self.plan["ops"][len(self.plan["ops"]) - 1])
        if (not isinstance(capture, np.ndarray) or capture.dtype != self.plan["dtype"] or capture.ndim != 2
                or capture.shape[0] < rows or capture.shape[1] != K or not capture.flags.c_contiguous
                or not capture.flags.writeable):
            raise ValueError(f"{owner}: argument `capture` must be a writeable C-contiguous "
                             f"{self.plan['dtype'].name} array of shape ({rows}, {K}); received {describe(capture)}.")
        return capture

    def _chooser(self, kind, X):
        """The Chooser of this kind of call and input: thread counts, and for dense float32 input wide enough
        for them, the bitmask kernels (below the density threshold) or the GEMM only."""
        team = effective_n_threads(self.n_threads)
        key = (kind, is_csr(X))
        chooser = self._choosers.get(key)
        if chooser is None or chooser.team != team:
            bitmask = (not key[1] and self.plan["dtype"] == np.float32 and self.plan["ops"][0][0] == "dense"
                       and self.plan["n_inputs"] >= TUNABLES["bitmask_min_inputs"])
            chooser = self._choosers[key] = Chooser(team, ("auto", "gemm") if bitmask else ("auto",),
                                                    warm=kind == "train")
        return chooser

    def _next(self, chooser):
        """((threads, kernel), is_probe) for the next call or piece; tests may force the thread count."""
        if self._force_threads:
            return (self._force_threads, "auto"), False
        return chooser.next()

    # ---------------------------------------------------------------- calls
    def train_steps(self, X, y, order, first_batch, n_batches, iterations, learning_rate, sample_weight=None,
                    uniforms=None, capture=None, grad_hook=None):
        """Run ``n_batches`` optimizer steps; return (loss_sum, metric_sums (M,) float64, rows seen).

        X (S, I0) of the plan's dtype, or a float32 CSR matrix; y (S,) int class ids (categorical losses) or
        (S, K) labels; order (S',) row ids: batch b is order[b*batch_size : (b+1)*batch_size] (the last may
        be short); ``iterations`` the optimizer's step count before these steps (Adam's t = iterations + 1);
        ``learning_rate`` a number, or (n_batches,) float64 rates, one per step (a Python schedule's values;
        a schedule in the plan overrides both); ``iterations`` counts every step, accumulating ones too
        (Keras' ``_iterations``, the step a schedule reads); ``sample_weight`` (S,) or None; ``uniforms`` one (R, O) array of the dtype per dropout op, uniform in
        [0, 1), R the call's rows in step order; ``capture`` (R, K) receives the model's outputs. loss_sum
        is sum(w * loss) plus each batch's rows times the regularization penalty it started from.
        ``grad_hook(step)``, if given, runs once per step after the gradients are in ``grads`` and before any
        update: it may change them in place and returns a penalty added to that batch's loss (custom
        regularizers). If it raises, the call stops before that step's update and re-raises; ``steps_done``
        then says how many steps were applied.
        """
        owner = "Engine.train_steps"
        plan = self.plan
        X = self._x(owner, X)
        S = X.shape[0]
        ids, Y = P.check_labels(owner, plan, y, S, values=False)
        sw = P.check_sample_weight(owner, sample_weight, S)
        order, first_batch, n_batches, rows = P.check_order(owner, order, first_batch, n_batches, self.batch_size, S,
                                                            values=False)
        iterations = P.check_int(owner, "iterations", iterations, 0)
        lr, table = P.check_learning_rate(owner, learning_rate, n_batches)
        uniforms = P.check_uniforms(owner, plan["ops"], uniforms, rows, plan["dtype"])
        capture = self._capture(owner, capture, rows)
        if n_batches == 0:
            return 0.0, np.zeros(len(plan["metrics"])), 0
        core = self._core
        core.set_hyper(*plan["optimizer"], lr, table, iterations)
        core.set_labels(ids, Y, sw)
        start = first_batch * self.batch_size
        self._raise_for_rows(owner, core.check_rows(order, start, start + rows, S), S)
        chooser = self._chooser("train", X)
        bs, done, result = self.batch_size, 0, None
        self.steps_done = 0
        hook = None if grad_hook is None else _Hook(grad_hook)
        while done < n_batches:
            (nt, kernel), probe = self._next(chooser)
            left = n_batches - done
            if probe == "warm":
                k = min(left, WARM_STEPS)
            elif probe:
                k = min(left, TEAM_PROBE_STEPS if nt > 1 else PROBE_STEPS)
            else:
                k = PIECE_STEPS if left > 2 * PIECE_STEPS else left
            r0, r1 = done * bs, min((done + k) * bs, rows)
            core.set_input(X, self._csr.split(X, nt) if is_csr(X) else None, kernel)
            result, seconds = timed(core.train, MODE_TRAIN, order, first_batch + done, k, iterations + done,
                                    [u[r0:r1] for u in uniforms], None if capture is None else capture[r0:r1],
                                    None, nt, done > 0, None if hook is None else hook.at(done))
            self.steps_done = done + core.steps_done()
            if hook is not None and hook.error is not None:
                raise hook.error
            chooser.record((nt, kernel), seconds, k, probe)
            done += k
        return result

    @property
    def steps_applied(self):
        """Training steps applied since this engine was made. ``steps_done`` is set by Python code after each
        compiled piece, so a KeyboardInterrupt delivered as the piece returns (where a Ctrl-C during the nogil
        loop is raised) skips it; this counter is advanced in C with each update, so a caller that reads it
        before and after a call counts exactly the steps applied, however the call ended (issue 15)."""
        return self._core.steps_total()

    def _raise_for_rows(self, owner, found, S):
        problem, value = found
        if problem == 1:
            raise P.order_error(owner, value, S)
        if problem:
            raise P.label_error(owner, self.plan, value)

    def _infer(self, owner, mode, X, ids, Y, sw, capture, out):
        core = self._core
        S = X.shape[0]
        core.set_labels(ids, Y, sw)
        if mode == MODE_EVAL:
            self._raise_for_rows(owner, core.check_rows(None, 0, S, S), S)
        chooser = self._chooser("infer", X)
        (nt, kernel), probe = self._next(chooser)
        core.set_input(X, None, kernel)
        result, seconds = timed(core.infer, mode, S, capture, out, nt)
        chooser.record((nt, kernel), seconds, S, probe)
        return result

    def evaluate(self, X, y, sample_weight=None, capture=None):
        """(loss_sum = sum(w * loss), metric_sums (M,) float64) over every row of X, inference arithmetic
        (moving statistics, no dropout); nothing is updated. ``capture`` (S, K) receives the outputs."""
        owner = "Engine.evaluate"
        X = self._x(owner, X)
        S = X.shape[0]
        ids, Y = P.check_labels(owner, self.plan, y, S, values=False)
        sw = P.check_sample_weight(owner, sample_weight, S)
        capture = self._capture(owner, capture, S)
        if S == 0:
            return 0.0, np.zeros(len(self.plan["metrics"]))
        loss_sum, metric_sums, _ = self._infer(owner, MODE_EVAL, X, ids, Y, sw, capture, None)
        return loss_sum, metric_sums

    def predict(self, X, out=None):
        """The model's outputs (S, K) for every row of X, inference arithmetic."""
        owner = "Engine.predict"
        X = self._x(owner, X)
        S = X.shape[0]
        K = P.op_width(self.plan["ops"][len(self.plan["ops"]) - 1])
        if out is None:
            out = np.empty((S, K), self.plan["dtype"])
        else:
            out = self._capture(owner, out, S)
            if out.shape[0] != S:
                raise ValueError(f"{owner}: argument `out` must have shape ({S}, {K}); received {describe(out)}.")
        if S:
            self._infer(owner, MODE_PREDICT, X, None, None, None, None, out)
        return out

    def forward_train(self, X, uniforms=None):
        """The outputs (S, K) of one batch of every row of X (S <= batch_size) in training arithmetic: batch
        statistics (the moving ones updated, as Keras' model(x, training=True) does) and dropout."""
        owner = "Engine.forward_train"
        X = self._x(owner, X)
        S = X.shape[0]
        if S > self.batch_size:
            raise ValueError(f"{owner}: X has {S} rows, more than the engine's batch_size {self.batch_size}.")
        uniforms = P.check_uniforms(owner, self.plan["ops"], uniforms, S, self.plan["dtype"])
        out = np.empty((S, P.op_width(self.plan["ops"][len(self.plan["ops"]) - 1])), self.plan["dtype"])
        if S == 0:
            return out
        core = self._core
        core.set_labels(None, None, None)
        chooser = self._chooser("forward", X)
        (nt, kernel), probe = self._next(chooser)
        core.set_input(X, self._csr.split(X, nt) if is_csr(X) else None, kernel)
        result, seconds = timed(core.train, MODE_FORWARD, np.arange(S, dtype=np.intp), 0, 1, 0, uniforms, None, out,
                                nt, False)
        chooser.record((nt, kernel), seconds, 1, probe)
        return out


def _fma_isa(level=None):
    """Test hook: the clone of this module's bitmask and CSR kernels, 'portable' or 'avx2' (the same
    bits, csrc/fastnn_clones.h); with ``level``, first cap it there."""
    return fma_isa("_fma_isa", level)
