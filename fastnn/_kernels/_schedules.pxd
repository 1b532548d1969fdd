# Learning-rate schedules (Keras 3 keras/src/optimizers/schedules/learning_rate_schedule.py), evaluated from
# the step count in C so the engine's loop needs no Python call per step. The NumPy twin is
# _reference.learning_rate_at (the same float64 expressions with Python's math, i.e. the same libm).
# Keras evaluates them in the initial rate's dtype (float32); float64 here, rounded once to the weights'
# dtype by the update.
from libc.math cimport ceil, cos, floor, log, pow, M_PI

cdef enum:
    SCHEDULE_NONE = 0
    SCHEDULE_EXPONENTIAL = 1   # p: initial, decay_steps, decay_rate, staircase
    SCHEDULE_PIECEWISE = 2     # p: n boundaries, boundaries[n], values[n + 1]
    SCHEDULE_INVERSE_TIME = 3  # p: initial, decay_steps, decay_rate, staircase
    SCHEDULE_POLYNOMIAL = 4    # p: initial, decay_steps, end_learning_rate, power, cycle
    SCHEDULE_COSINE = 5        # p: initial, decay_steps, alpha, warmup (0/1), warmup_target, warmup_steps
    SCHEDULE_RESTARTS = 6      # p: initial, first_decay_steps, t_mul, m_mul, alpha


cdef inline double _cosine(double step, double decay_steps, double alpha, double start) noexcept nogil:
    cdef double cosine_decayed = 0.5 * (1.0 + cos(M_PI * (step / decay_steps)))
    return start * ((1.0 - alpha) * cosine_decayed + alpha)


cdef inline double schedule_value(int code, const double* p, double step) noexcept nogil:
    """The learning rate of schedule `code` with parameters p at (0-based) optimizer step `step`."""
    cdef double q, ds, i_restart, sum_r, t_mul
    cdef Py_ssize_t n, i
    if code == SCHEDULE_EXPONENTIAL or code == SCHEDULE_INVERSE_TIME:
        q = step / p[1]
        if p[3] != 0:
            q = floor(q)
        if code == SCHEDULE_EXPONENTIAL:
            return p[0] * pow(p[2], q)
        return p[0] / (1.0 + p[2] * q)
    if code == SCHEDULE_PIECEWISE:
        n = <Py_ssize_t>p[0]
        if step <= p[1]:
            return p[1 + n]
        for i in range(1, n):
            if step <= p[1 + i]:
                return p[1 + n + i]
        return p[1 + 2 * n]
    if code == SCHEDULE_POLYNOMIAL:
        ds = p[1]
        if p[4] != 0:
            ds = ds * (1.0 if step == 0 else ceil(step / ds))
        elif step > ds:
            step = ds
        return (p[0] - p[2]) * pow(1.0 - step / ds, p[3]) + p[2]
    if code == SCHEDULE_COSINE:
        if p[3] == 0:
            return _cosine(step if step < p[1] else p[1], p[1], p[2], p[0])
        if step > p[1] + p[5]:
            step = p[1] + p[5]
        if step < p[5]:
            return (p[4] - p[0]) * (step / p[5]) + p[0]
        return _cosine(step - p[5], p[1], p[2], p[4])
    if code == SCHEDULE_RESTARTS:
        q = step / p[1]
        t_mul = p[2]
        if t_mul == 1.0:
            i_restart = floor(q)
            q = q - i_restart
        else:
            i_restart = floor(log(1.0 - q * (1.0 - t_mul)) / log(t_mul))
            sum_r = (1.0 - pow(t_mul, i_restart)) / (1.0 - t_mul)
            q = (q - sum_r) / pow(t_mul, i_restart)
        return p[0] * ((1.0 - p[4]) * (0.5 * pow(p[3], i_restart) * (1.0 + cos(M_PI * q))) + p[4])
    return p[0]
