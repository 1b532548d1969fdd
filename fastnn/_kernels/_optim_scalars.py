"""Per-step scalars of the optimizers whose update depends on the step number t (1-based), in float64,
shared by the per-op kernels (optim.pyx), their twins (_reference.py) and the engine's twin; the compiled
engine computes the same expressions in C (_engine_update.pxd), with the same libm pow, so every path
gets the same bits.

Keras 3 computes these in the variable's dtype (float32); float64 here rounds once at the end instead.
"""

import math
import numbers

from fastnn._kernels._argchecks import describe

_NADAM_DECAY = 0.96  # Keras 3 nadam.py: u_t = beta_1 (1 - 0.5 * 0.96^t)
_products = {}       # beta_1 -> (t, prod u_1..u_t): the last product, so consecutive steps cost O(1)


def nadam_product(beta_1, t):
    """prod_{k=1..t} beta_1 (1 - 0.5 * 0.96^k), multiplied in k order (Keras' u_product variable)."""
    k, p = _products.get(beta_1, (0, 1.0))
    if k > t:
        k, p = 0, 1.0
    while k < t:
        k += 1
        p = p * beta_1 * (1.0 - 0.5 * _NADAM_DECAY ** k)
    _products[beta_1] = (k, p)
    return p


def nadam_scalars(beta_1, beta_2, t):
    """(u_{t+1}, 1 - prod_{t+1}, 1 - u_t, 1 - prod_t, 1 - beta_2^t) of Nadam's step t."""
    u_t = beta_1 * (1.0 - 0.5 * _NADAM_DECAY ** t)
    u_t1 = beta_1 * (1.0 - 0.5 * _NADAM_DECAY ** (t + 1))
    prod = nadam_product(beta_1, t)
    return (u_t1, 1.0 - prod * u_t1, 1.0 - u_t, 1.0 - prod, 1.0 - beta_2 ** t)


def check_iteration(owner, iteration):
    """The 1-based step number t of Adamax and Nadam (an integer >= 1), refused alike by the kernels and twins."""
    if isinstance(iteration, bool) or not isinstance(iteration, numbers.Integral) or iteration < 1:
        raise ValueError(f"{owner}: argument `iteration` must be an integer >= 1 (the 1-based step); "
                         f"received {describe(iteration)}.")
    return int(iteration)


def adamax_correction(beta_1, t):
    """1 - beta_1^t."""
    return 1.0 - beta_1 ** t


# Built-in learning-rate schedules: name -> (engine code, number of parameters or None: piecewise's 2n + 2).
# Layouts: _schedules.pxd.
SCHEDULES = {"exponential": (1, 4), "piecewise": (2, None), "inverse_time": (3, 4), "polynomial": (4, 5),
             "cosine": (5, 6), "cosine_restarts": (6, 5)}


def _real(x):
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x)


def _schedule_error(schedule, p):
    """What is wrong with the parameters p (finite floats, the right number) of `schedule`, or None. The
    schedule classes refuse the same (Keras' messages); the C function would divide by zero or read past
    the parameters instead."""
    if schedule == "piecewise":
        n = int(p[0])
        if any(b1 <= b0 for b0, b1 in zip(p[1:1 + n], p[2:1 + n])):
            return "the boundaries must be strictly increasing"
        return None
    if not p[1] > 0:
        return "decay_steps must be > 0"
    flags = {"exponential": (3,), "inverse_time": (3,), "polynomial": (4,), "cosine": (3,)}.get(schedule, ())
    if any(p[i] not in (0.0, 1.0) for i in flags):
        return "staircase, cycle or warmup must be 0 or 1"
    if schedule == "cosine" and p[3] == 1.0 and not p[5] > 0:
        return "a warmup needs warmup_steps > 0"
    if schedule == "cosine_restarts" and not p[2] > 0:
        return "t_mul must be > 0"
    return None


def check_schedule(owner, schedule, params):
    """A schedule name and its parameters (finite floats), as the engine and learning_rate_at read them."""
    if schedule not in SCHEDULES:
        raise ValueError(f"{owner}: unknown schedule {schedule!r}; expected one of {sorted(SCHEDULES)}.")
    params = tuple(params)
    n = SCHEDULES[schedule][1]
    if n is None:
        n = 2 * int(params[0]) + 2 if params and _real(params[0]) and params[0] >= 1 \
            and params[0] == int(params[0]) else -1
    if len(params) != n or not all(_real(x) for x in params):
        raise ValueError(f"{owner}: schedule {schedule!r} takes {n if n >= 0 else '2n + 2'} finite numbers; "
                         f"received {params!r}.")
    error = _schedule_error(schedule, params)
    if error:
        raise ValueError(f"{owner}: schedule {schedule!r}: {error}; received {params!r}.")
    return params


def check_step(owner, step):
    """The 0-based optimizer step of a schedule: a finite number >= 0, as a float."""
    if not _real(step) or step < 0:
        raise ValueError(f"{owner}: argument `step` must be a finite number >= 0 (the 0-based optimizer step); "
                         f"received {describe(step)}.")
    return float(step)
