"""optim.pyx (flat in-place optimizer updates) against its NumPy twin."""
import numpy as np
import pytest

from fastnn._kernels import _reference as R
from fastnn._kernels import optim as C

from .conftest import arrange, assert_twin

# (name, hyper-parameters, slots used)
CASES = [
    ("sgd", dict(learning_rate=0.1), 0),
    ("sgd", dict(learning_rate=0.1, momentum=0.9), 1),
    ("sgd", dict(learning_rate=0.1, momentum=0.9, nesterov=True), 1),
    ("rmsprop", dict(learning_rate=0.01, rho=0.9), 1),
    ("rmsprop", dict(learning_rate=0.01, rho=0.8, momentum=0.5), 2),
    ("rmsprop", dict(learning_rate=0.01, rho=0.9, momentum=0.5, centered=True, epsilon=1e-6), 3),
    ("adam", dict(learning_rate=0.01, beta_1=0.9, beta_2=0.999, epsilon=1e-7, iteration=1), 2),
    ("adam", dict(learning_rate=0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-7, iteration=17), 2),
    ("adam", dict(learning_rate=0.01, beta_1=0.9, beta_2=0.999, epsilon=1e-7, iteration=3, amsgrad=True), 3),
    ("adadelta", dict(learning_rate=1.0, rho=0.95, epsilon=1e-7), 2),
    ("adagrad", dict(learning_rate=0.01, epsilon=1e-7), 1),
    ("adamax", dict(learning_rate=0.01, beta_1=0.9, beta_2=0.999, epsilon=1e-7, iteration=1), 2),
    ("adamax", dict(learning_rate=0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-7, iteration=9), 2),
    ("nadam", dict(learning_rate=0.01, beta_1=0.9, beta_2=0.999, epsilon=1e-7, iteration=1), 2),
    ("nadam", dict(learning_rate=0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-7, iteration=30), 2),
    ("lion", dict(learning_rate=0.01, beta_1=0.9, beta_2=0.99), 1),
]


def _call(mod, name, w, g, slots, hyper):
    s = list(slots) + [None] * (3 - len(slots))
    if name == "sgd":
        return mod.sgd_update(w, g, s[0], **hyper)
    if name == "rmsprop":
        return mod.rmsprop_update(w, g, s[0], s[1], s[2], **hyper)
    if name == "adam":
        return mod.adam_update(w, g, s[0], s[1], s[2], **hyper)
    if name in ("adamax", "nadam"):
        return getattr(mod, name + "_update")(w, g, s[0], s[1], **hyper)
    if name in ("adagrad", "lion"):
        return getattr(mod, name + "_update")(w, g, s[0], **hyper)
    return mod.adadelta_update(w, g, s[0], s[1], **hyper)


@pytest.mark.parametrize("name,hyper,n_slots", CASES, ids=[f"{c[0]}{i}" for i, c in enumerate(CASES)])
@pytest.mark.parametrize("N", (37, 100003))
def test_matches_reference_over_steps(name, hyper, n_slots, N, dtype, n_threads, layout, rng):
    w = rng.standard_normal(N).astype(dtype)
    slots = [np.abs(rng.standard_normal(N)).astype(dtype) * 0.1 for _ in range(n_slots)]
    if name == "rmsprop" and hyper.get("centered"):
        slots[0] = slots[2] ** 2 + dtype(0.01)  # v >= mg^2 keeps v - mg^2 positive at every step
    wr, slots_r = w.copy(), [s.copy() for s in slots]
    for step in range(3):
        g = rng.standard_normal(N).astype(dtype)
        h = dict(hyper, n_threads=n_threads)
        assert _call(C, name, w, arrange(g, layout), slots, h) is None
        _call(R, name, wr, g, slots_r, hyper)
    assert_twin(w, wr, dtype, name)
    for s, sr in zip(slots, slots_r):
        assert_twin(s, sr, dtype, name)
    if dtype == np.float32:  # same operations in the same order: bit for bit on x86-64
        np.testing.assert_array_equal(w, wr)


@pytest.mark.parametrize("dtype_", (np.float32, np.float64))
def test_rmsprop_blocks_of_zero_gradient_are_the_same_bits(dtype_, rng):
    """Plain RMSprop skips the square root and division on blocks of 16 whose gradient is all +0.0
    (a bag-of-words kernel row absent from the batch): the same bits as the full update, with the
    zero blocks at and off block boundaries, a -0.0 gradient (which must take the full update: it
    turns a w of -0.0 into +0.0) and a short tail."""
    N = 16 * 40 + 7
    w = rng.standard_normal(N).astype(dtype_)
    v = np.abs(rng.standard_normal(N)).astype(dtype_) * 0.1
    g = rng.standard_normal(N).astype(dtype_)
    g[16:48] = 0          # two whole blocks
    g[70:100] = 0         # one whole block (80..95) and pieces of two
    g[N - 7:] = 0         # the tail
    g[128:144] = 0
    g[130] = -0.0         # a block with a negative zero: the full update
    w[128:144] = -0.0
    wr, vr = w.copy(), v.copy()
    for _ in range(2):
        C.rmsprop_update(w, g, v, None, None, 0.01, rho=0.9, n_threads=1)
        R.rmsprop_update(wr, g, vr, None, None, 0.01, rho=0.9)
    np.testing.assert_array_equal(v, vr)
    np.testing.assert_array_equal(w, wr)
    assert np.signbit(w[130]) == np.signbit(wr[130]) and not np.signbit(w[130])  # -0.0 - (-0.0) = +0.0
    assert np.signbit(w[129])                                                       # untouched -0.0


def test_works_on_any_shape_of_contiguous_arena(rng):
    w = rng.standard_normal((3, 4)).astype(np.float32)
    g = rng.standard_normal((3, 4)).astype(np.float32)
    wr = w.copy()
    C.sgd_update(w, g, None, 0.5)
    R.sgd_update(wr, g, None, 0.5)
    np.testing.assert_array_equal(w, wr)


def test_bad_input():
    w = np.zeros(5, np.float32)
    g = np.zeros(5, np.float32)
    with pytest.raises(ValueError, match="`m` is required"):
        C.sgd_update(w, g, None, 0.1, momentum=0.9)
    with pytest.raises(ValueError, match="`g` must have 5 elements"):
        C.sgd_update(w, np.zeros(4, np.float32), None, 0.1)
    with pytest.raises(ValueError, match="`g` must have dtype float32"):
        C.sgd_update(w, np.zeros(5), None, 0.1)
    with pytest.raises(ValueError, match="`v` must be a float32 array of 5 elements"):
        C.adam_update(w, g, np.zeros(5, np.float32), np.zeros(5), None, 0.1, 0.9, 0.999, 1e-7, 1)
    with pytest.raises(ValueError, match="`w` must be a float32 or float64 NumPy array"):
        C.sgd_update([0.0] * 5, g, None, 0.1)
    ro = np.zeros(5, np.float32)
    ro.setflags(write=False)
    with pytest.raises(ValueError, match="`w` is updated in place"):
        C.sgd_update(ro, g, None, 0.1)
    with pytest.raises(ValueError, match="`learning_rate` must be finite"):
        C.sgd_update(w, g, None, float("nan"))
    with pytest.raises(ValueError, match="`learning_rate` must be a real number; received"):
        C.sgd_update(w, g, None, "0.1")  # float("0.1") would have accepted it


# (schedule, params, steps): every built-in schedule's C function against its twin, at and around the steps
# where its branches change (boundaries, warmup end, decay end, restarts).
SCHEDULE_CASES = [
    ("exponential", (0.1, 10, 0.96, 0.0), (0, 1, 9, 10, 11, 1000)),
    ("exponential", (0.1, 10, 0.5, 1.0), (0, 9, 10, 25)),
    ("piecewise", (2, 100000, 110000, 1.0, 0.5, 0.1), (0, 100000, 100001, 110000, 110001)),
    ("inverse_time", (0.1, 1.0, 0.5, 0.0), (0, 1, 2, 7)),
    ("inverse_time", (0.1, 4.0, 0.5, 1.0), (0, 3, 4, 9)),
    ("polynomial", (0.1, 10000, 0.01, 0.5, 0.0), (0, 1, 5000, 10000, 20000)),
    ("polynomial", (0.1, 10, 0.01, 2.0, 1.0), (0, 5, 10, 11, 25)),
    ("cosine", (0.1, 1000, 0.0, 0.0, 0.0, 0.0), (0, 1, 500, 999, 1000, 2000)),
    ("cosine", (0.0, 1000, 0.1, 1.0, 0.1, 100.0), (0, 50, 99, 100, 101, 600, 1100, 5000)),
    ("cosine_restarts", (1.0, 10, 2.0, 1.0, 0.0), (0, 5, 9, 10, 11, 29, 30, 31, 100)),
    ("cosine_restarts", (1.0, 10, 1.0, 0.5, 0.1), (0, 5, 10, 15, 20, 35)),
]


@pytest.mark.parametrize("schedule,params,steps", SCHEDULE_CASES,
                         ids=[f"{c[0]}{i}" for i, c in enumerate(SCHEDULE_CASES)])
def test_schedules_match_reference_bit_for_bit(schedule, params, steps):
    for step in steps:
        assert C.learning_rate_at(schedule, params, step) == R.learning_rate_at(schedule, params, step), step


def test_schedule_bad_input():
    with pytest.raises(ValueError, match="unknown schedule 'linear'"):
        C.learning_rate_at("linear", (0.1,), 0)
    with pytest.raises(ValueError, match="'exponential' takes 4 finite numbers"):
        C.learning_rate_at("exponential", (0.1, 10), 0)
    with pytest.raises(ValueError, match="takes 4 finite numbers"):
        R.learning_rate_at("exponential", (0.1, 10, float("nan"), 0), 0)


def test_step_must_be_a_positive_integer(rng):
    w, g = np.zeros(4), np.ones(4)
    with pytest.raises(ValueError, match="`iteration` must be an integer >= 1"):
        C.adamax_update(w, g, np.zeros(4), np.zeros(4), 0.1, iteration=0)
