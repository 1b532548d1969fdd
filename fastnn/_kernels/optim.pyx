"""Optimizer kernels: one fused, in-place pass over the flat parameter arena.

Dimension legend: N elements of the arena (w, g and every slot are (N,)).
Keras 3 update rules (keras/src/optimizers/*.py update_step), in
_reference's operation order, so float32 results match NumPy's bit for bit
on x86-64. Threads split [0, N) into contiguous, cache-line-aligned chunks;
the updates are elementwise, so results do not depend on the thread count.
The pass is memory-bound (Adam reads w, g, m, v and writes w, m, v), so
everything is done in one sweep (llm.c gpt2_update).
"""
import numpy as np

from cython.parallel cimport parallel, threadid

from fastnn.utils.validation import describe

from fastnn._kernels._typedefs cimport floating
from fastnn._kernels._openmp cimport effective_n_threads, threads_for_work
from fastnn._kernels._checks cimport float_array, inplace_array, real_number
from fastnn._kernels._loops cimport split_point
from fastnn._kernels._loops_optim cimport (adadelta_range, adagrad_range, adam_range, adamax_range, lion_range,
                                           nadam_range, rmsprop_range, sgd_range)
from fastnn._kernels._optim_scalars import (SCHEDULES, adamax_correction, check_iteration, check_schedule,
                                               check_step, nadam_scalars)
from fastnn._kernels._schedules cimport schedule_value

cdef enum:
    SGD = 0
    RMSPROP = 1
    ADAM = 2
    ADADELTA = 3
    ADAGRAD = 4
    ADAMAX = 5
    NADAM = 6
    LION = 7


cdef struct Hyper:
    double lr
    double a
    double b
    double c
    double d
    double k[5]
    bint flag1
    bint flag2


cdef inline void _range(int kind, floating* w, const floating* g, floating* s0, floating* s1, floating* s2,
                        Py_ssize_t n0, Py_ssize_t n1, Hyper h) noexcept nogil:
    if kind == SGD:
        sgd_range(w, g, s0, n0, n1, h.lr, h.a, h.flag1)
    elif kind == RMSPROP:
        rmsprop_range(w, g, s0, s1, s2, n0, n1, h.lr, h.a, h.b, h.c, h.flag1)
    elif kind == ADAM:
        adam_range(w, g, s0, s1, s2, n0, n1, h.lr, h.a, h.b, h.c, h.flag1)
    elif kind == ADADELTA:
        adadelta_range(w, g, s0, s1, n0, n1, h.lr, h.a, h.c)
    elif kind == ADAGRAD:
        adagrad_range(w, g, s0, n0, n1, h.lr, h.c)
    elif kind == ADAMAX:
        adamax_range(w, g, s0, s1, n0, n1, h.lr, h.a, h.b, h.d, h.c)
    elif kind == NADAM:
        nadam_range(w, g, s0, s1, n0, n1, h.lr, h.a, h.b, h.k, h.c)
    else:
        lion_range(w, g, s0, n0, n1, h.lr, h.a, h.b)


cdef void _update(int kind, floating[::1] w, const floating[::1] g, floating* s0, floating* s1, floating* s2,
                  Hyper h, int nt) noexcept:
    cdef Py_ssize_t N = w.shape[0], n0, n1
    cdef int tid
    cdef floating* pw
    if N == 0:
        return
    pw = &w[0]
    with nogil:
        if nt == 1:
            _range(kind, pw, &g[0], s0, s1, s2, 0, N, h)
        else:
            with parallel(num_threads=nt):
                tid = threadid()
                n0 = split_point(N, nt, tid, <size_t>pw, sizeof(floating))
                n1 = split_point(N, nt, tid + 1, <size_t>pw, sizeof(floating))
                _range(kind, pw, &g[0], s0, s1, s2, n0, n1, h)


cdef object _flat(str owner, str name, a, Py_ssize_t n, dtype):
    """An in-place slot (or None) as a flat view."""
    if a is None:
        return None
    return inplace_array(owner, name, a, n, dtype).reshape(-1)


cdef void _run(int kind, str owner, w, g, tuple slots, tuple slot_names, tuple required, Hyper h, n_threads):
    if not isinstance(w, np.ndarray) or (w.dtype != np.float32 and w.dtype != np.float64):
        raise ValueError(f"{owner}: argument `w` must be a float32 or float64 NumPy array updated in place; "
                         f"received {describe(w)}.")
    wf = inplace_array(owner, "w", w, w.size, w.dtype).reshape(-1)
    cdef Py_ssize_t N = wf.shape[0]
    gf = float_array(owner, "g", g, -1, w.dtype)
    if gf.size != N:
        raise ValueError(f"{owner}: argument `g` must have {N} elements like `w`; received {describe(g)}.")
    gf = gf.reshape(-1)
    flat = []
    for a, name, needed in zip(slots, slot_names, required):
        if needed and a is None:
            raise ValueError(f"{owner}: argument `{name}` is required with these hyper-parameters; received None.")
        flat.append(_flat(owner, name, a, N, w.dtype) if needed else None)
    while len(flat) < 3:
        flat.append(None)
    cdef int nt = threads_for_work(effective_n_threads(n_threads), N * 4)
    cdef float[::1] f0, f1, f2
    cdef double[::1] d0, d1, d2
    if w.dtype == np.float32:
        f0, f1, f2 = flat
        _update[float](kind, wf, gf, &f0[0] if f0 is not None and N else NULL,
                       &f1[0] if f1 is not None and N else NULL, &f2[0] if f2 is not None and N else NULL, h, nt)
    else:
        d0, d1, d2 = flat
        _update[double](kind, wf, gf, &d0[0] if d0 is not None and N else NULL,
                        &d1[0] if d1 is not None and N else NULL, &d2[0] if d2 is not None and N else NULL, h, nt)


def sgd_update(w, g, m, learning_rate, momentum=0.0, nesterov=False, n_threads=None):
    """m = momentum*m - lr*g; w += m (nesterov: w += momentum*m - lr*g).
    With momentum == 0: w -= lr*g, and m may be None."""
    cdef Hyper h
    h.lr = real_number("sgd_update", "learning_rate", learning_rate)
    h.a = real_number("sgd_update", "momentum", momentum)
    h.flag1 = bool(nesterov)
    _run(SGD, "sgd_update", w, g, (m,), ("m",), (h.a != 0,), h, n_threads)


def rmsprop_update(w, g, v, mom, mg, learning_rate, rho=0.9, momentum=0.0, epsilon=1e-7,
                   centered=False, n_threads=None):
    """v = rho v + (1-rho) g^2; denominator = v (- mg^2 if centered, mg = rho mg + (1-rho) g) + eps;
    inc = lr g / sqrt(denominator); w -= inc, or with momentum mom = momentum mom + inc; w -= mom.
    ``mom`` may be None when momentum == 0, ``mg`` when not centered."""
    cdef Hyper h
    h.lr = real_number("rmsprop_update", "learning_rate", learning_rate)
    h.a = real_number("rmsprop_update", "rho", rho)
    h.b = real_number("rmsprop_update", "momentum", momentum)
    h.c = real_number("rmsprop_update", "epsilon", epsilon)
    h.flag1 = bool(centered)
    _run(RMSPROP, "rmsprop_update", w, g, (v, mom, mg), ("v", "mom", "mg"), (True, h.b > 0, h.flag1), h,
         n_threads)


def adam_update(w, g, m, v, vhat, learning_rate, beta_1, beta_2, epsilon, iteration,
                amsgrad=False, n_threads=None):
    """Keras 3 Adam with t = iteration (1-based): alpha = lr sqrt(1-b2^t)/(1-b1^t);
    m += (g-m)(1-b1); v += (g^2-v)(1-b2); (amsgrad: vhat = max(vhat, v), use vhat);
    w -= alpha m / (sqrt(v) + eps).  ``vhat`` may be None unless amsgrad."""
    cdef Hyper h
    lr = real_number("adam_update", "learning_rate", learning_rate)
    h.a = real_number("adam_update", "beta_1", beta_1)
    h.b = real_number("adam_update", "beta_2", beta_2)
    h.c = real_number("adam_update", "epsilon", epsilon)
    t = real_number("adam_update", "iteration", iteration)
    # the same float64 expression as _reference (NumPy's float ** and sqrt)
    h.lr = float(lr * np.sqrt(1.0 - h.b ** t) / (1.0 - h.a ** t))
    h.flag1 = bool(amsgrad)
    _run(ADAM, "adam_update", w, g, (m, v, vhat), ("m", "v", "vhat"), (True, True, h.flag1), h, n_threads)


def adadelta_update(w, g, accum_grad, accum_delta, learning_rate, rho=0.95, epsilon=1e-7, n_threads=None):
    """a = rho a + (1-rho) g^2; delta = -sqrt(d + eps) / sqrt(a + eps) g;
    d = rho d + (1-rho) delta^2; w += lr delta."""
    cdef Hyper h
    h.lr = real_number("adadelta_update", "learning_rate", learning_rate)
    h.a = real_number("adadelta_update", "rho", rho)
    h.c = real_number("adadelta_update", "epsilon", epsilon)
    _run(ADADELTA, "adadelta_update", w, g, (accum_grad, accum_delta), ("accum_grad", "accum_delta"),
         (True, True), h, n_threads)


def adagrad_update(w, g, accumulator, learning_rate, epsilon=1e-7, n_threads=None):
    """accumulator += g^2; w -= lr g / sqrt(accumulator + eps) (the accumulator starts at Keras'
    initial_accumulator_value, 0.1)."""
    cdef Hyper h
    h.lr = real_number("adagrad_update", "learning_rate", learning_rate)
    h.c = real_number("adagrad_update", "epsilon", epsilon)
    _run(ADAGRAD, "adagrad_update", w, g, (accumulator,), ("accumulator",), (True,), h, n_threads)


def adamax_update(w, g, m, u, learning_rate, beta_1=0.9, beta_2=0.999, epsilon=1e-7, iteration=1,
                  n_threads=None):
    """Keras 3 Adamax, t = iteration: m += (g - m)(1 - b1); u = max(b2 u, |g|);
    w -= lr m / ((1 - b1^t)(u + eps))."""
    cdef Hyper h
    h.lr = real_number("adamax_update", "learning_rate", learning_rate)
    h.a = real_number("adamax_update", "beta_1", beta_1)
    h.b = real_number("adamax_update", "beta_2", beta_2)
    h.c = real_number("adamax_update", "epsilon", epsilon)
    h.d = adamax_correction(h.a, check_iteration("adamax_update", iteration))
    _run(ADAMAX, "adamax_update", w, g, (m, u), ("m", "u"), (True, True), h, n_threads)


def nadam_update(w, g, m, v, learning_rate, beta_1=0.9, beta_2=0.999, epsilon=1e-7, iteration=1,
                 n_threads=None):
    """Keras 3 Nadam, t = iteration: u_t = b1 (1 - 0.5 0.96^t); m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2);
    m_hat = u_{t+1} m / (1 - prod u_1..u_{t+1}) + (1 - u_t) g / (1 - prod u_1..u_t);
    w -= m_hat lr / (sqrt(v / (1 - b2^t)) + eps)."""
    cdef Hyper h
    h.lr = real_number("nadam_update", "learning_rate", learning_rate)
    h.a = real_number("nadam_update", "beta_1", beta_1)
    h.b = real_number("nadam_update", "beta_2", beta_2)
    h.c = real_number("nadam_update", "epsilon", epsilon)
    for i, value in enumerate(nadam_scalars(h.a, h.b, check_iteration("nadam_update", iteration))):
        h.k[i] = value
    _run(NADAM, "nadam_update", w, g, (m, v), ("m", "v"), (True, True), h, n_threads)


def lion_update(w, g, m, learning_rate, beta_1=0.9, beta_2=0.99, n_threads=None):
    """Keras 3 Lion: w -= lr sign(b1 m + (1 - b1) g); m = b2 m + (1 - b2) g."""
    cdef Hyper h
    h.lr = real_number("lion_update", "learning_rate", learning_rate)
    h.a = real_number("lion_update", "beta_1", beta_1)
    h.b = real_number("lion_update", "beta_2", beta_2)
    _run(LION, "lion_update", w, g, (m,), ("m",), (True,), h, n_threads)


def learning_rate_at(schedule, params, step):
    """The learning rate of the built-in schedule ``schedule`` (a name of SCHEDULES) with parameters
    ``params`` at the 0-based optimizer step ``step``, as a float (the engine's own C function)."""
    params = check_schedule("learning_rate_at", schedule, params)
    p = np.ascontiguousarray(params, dtype=np.float64)
    cdef double[::1] pv = p
    return schedule_value(SCHEDULES[schedule][0], &pv[0], check_step("learning_rate_at", step))
