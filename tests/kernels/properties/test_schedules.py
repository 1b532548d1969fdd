"""learning_rate_at (the built-in learning-rate schedules the engine evaluates in C): compiled vs twin.

Every schedule with random valid parameters (as its Keras-named class would pass them, plus values the
classes accept but nobody would pick: negative rates, a decay rate or t_mul that overflows, restarts past
the point where a shrinking t_mul's periods add up) at random steps must give the same float, bit for bit
(the twin uses Python's math, i.e. the same libm), NaN where the C function gives NaN. Invalid parameters
and steps are refused by both with the same ValueError.
"""
import math

import pytest

pytest.importorskip("hypothesis", reason="the property tests need hypothesis (pip install '.[test]')")
from hypothesis import example, given, strategies as st  # noqa: E402

from ._props import compiled, prop_settings, same_outcome, twin  # noqa: E402

KERNELS = ("learning_rate_at",)

RATE = st.one_of(st.floats(0, 1), st.floats(-10, 10), st.sampled_from([0.0, 1e-3, 0.1, 1.0]))
DECAY_STEPS = st.one_of(st.integers(1, 100000).map(float), st.floats(1e-3, 1e6), st.sampled_from([1.0, 10.0]))
FRACTION = st.one_of(st.floats(0, 1), st.floats(-2, 3))
FLAG = st.sampled_from([0.0, 1.0])
STEP = st.one_of(st.integers(0, 50), st.integers(0, 10**7), st.floats(0, 1e7), st.sampled_from([0, 1, 10, 100]))


@st.composite
def piecewise(draw):
    n = draw(st.integers(1, 6))
    bounds = sorted(set(draw(st.lists(st.one_of(st.integers(0, 1000).map(float), st.floats(-10, 1e6)),
                                      min_size=n, max_size=n))))
    values = draw(st.lists(RATE, min_size=len(bounds) + 1, max_size=len(bounds) + 1))
    return (float(len(bounds)), *bounds, *values)


SCHEDULES = {
    # initial, decay_steps, decay_rate, staircase
    "exponential": st.tuples(RATE, DECAY_STEPS, st.one_of(st.floats(0, 1), st.floats(-3, 3)), FLAG),
    "inverse_time": st.tuples(RATE, DECAY_STEPS, st.one_of(st.floats(0, 1), st.floats(-3, 3)), FLAG),
    "piecewise": piecewise(),
    # initial, decay_steps, end_learning_rate, power, cycle
    "polynomial": st.tuples(RATE, DECAY_STEPS, RATE, st.one_of(st.floats(0, 3), st.floats(-3, 3)), FLAG),
    # initial, decay_steps, alpha, warmup, warmup_target, warmup_steps (> 0 with a warmup, 0 without)
    "cosine": st.one_of(st.tuples(RATE, DECAY_STEPS, FRACTION, st.just(0.0), st.just(0.0), st.just(0.0)),
                        st.tuples(RATE, DECAY_STEPS, FRACTION, st.just(1.0), RATE, DECAY_STEPS)),
    # initial, first_decay_steps, t_mul (> 0), m_mul, alpha
    "cosine_restarts": st.tuples(RATE, DECAY_STEPS, st.one_of(st.sampled_from([1.0, 2.0, 0.5]), st.floats(1e-3, 4)),
                                 st.one_of(st.floats(0, 1), st.floats(-2, 3)), FRACTION),
}


def _same_float(got, want, what):
    assert type(got) is float and type(want) is float, (type(got), type(want))
    assert got == want or (math.isnan(got) and math.isnan(want)), f"{what}: {got!r} vs twin {want!r}"


CASES = st.one_of(*[st.tuples(st.just(name), params) for name, params in sorted(SCHEDULES.items())])


@prop_settings()
@given(case=CASES, steps=st.lists(STEP, min_size=1, max_size=8))
# found by this test: the twin raised where C (and Keras' ops) give inf or NaN
@example(case=("polynomial", (0.0, 1.0, 0.0, -1.0, 0.0)), steps=[1])  # math.pow(0, -1) raised; C's pow: inf
@example(case=("polynomial", (0.0, 10.0, 0.0, 0.0, 1.0)), steps=[5e-324])  # cycle: ceil(step/ds) = 0, then step/0
@example(case=("exponential", (0.1, 10.0, -0.5, 0.0)), steps=[5])  # math.pow(-0.5, 0.5) raised; C's pow: NaN
@example(case=("cosine_restarts", (1.0, 10.0, 0.5, 1.0, 0.0)), steps=[25])  # past the sum of t_mul's periods
# (20 steps): math.log(-0.25) raised; C's log: NaN
@example(case=("inverse_time", (0.1, 1.0, -0.5, 1.0)), steps=[2])  # 1 + decay_rate q = 0: the twin's x / 0 raised
def test_every_schedule_matches_its_twin(case, steps):
    _check(*case, steps)


def _check(schedule, params, steps):
    for step in steps:
        got, want = same_outcome(lambda: compiled("learning_rate_at")(schedule, params, step),
                                 lambda: twin("learning_rate_at")(schedule, params, step))
        assert not isinstance(got, Exception), f"{schedule}{params} at step {step}: refused valid input: {got!r}"
        _same_float(got, want, f"{schedule}{params} at step {step}")


VALID = {"exponential": (0.1, 10.0, 0.96, 0.0), "inverse_time": (0.1, 10.0, 0.5, 1.0),
         "piecewise": (2.0, 10.0, 20.0, 1.0, 0.5, 0.1), "polynomial": (0.1, 100.0, 1e-4, 1.0, 0.0),
         "cosine": (0.1, 100.0, 0.0, 1.0, 0.2, 10.0), "cosine_restarts": (0.1, 100.0, 2.0, 1.0, 0.0)}
# (schedule, index, bad value): a parameter the schedule classes refuse (Keras' checks)
BAD_PARAMS = ([(s, 1, v) for s in ("exponential", "inverse_time", "polynomial", "cosine", "cosine_restarts")
               for v in (0.0, -1.0)]  # decay_steps <= 0: step / 0
              + [(s, i, v) for s, i in (("exponential", 3), ("inverse_time", 3), ("polynomial", 4), ("cosine", 3))
                 for v in (0.5, 2.0, -1.0)]  # a flag that is neither 0 nor 1
              + [("cosine", 5, 0.0), ("cosine", 5, -3.0),  # a warmup without warmup steps
                 ("cosine_restarts", 2, 0.0), ("cosine_restarts", 2, -2.0),  # t_mul <= 0: log(t_mul)
                 ("piecewise", 2, 10.0), ("piecewise", 2, 5.0),  # boundaries not increasing
                 ("piecewise", 0, 1.5), ("piecewise", 0, 0.0), ("piecewise", 0, -2.0)]  # n not a count >= 1
              + [(s, i, v) for s in sorted(VALID) for i in (0, len(VALID[s]) - 1)
                 for v in (math.nan, math.inf, -math.inf, True, "0.1", None)])  # not a finite number
BAD_STEPS = [-1, -1e-300, math.nan, math.inf, -math.inf, True, "3", None]


@prop_settings(0.5)
@given(bad=st.sampled_from(BAD_PARAMS), extra=st.sampled_from([None, "short", "long"]), step=STEP)
def test_invalid_parameters_are_refused_by_both(bad, extra, step):
    schedule, i, value = bad
    params = list(VALID[schedule])
    params[i] = value
    if extra == "short":
        params = params[:-1]
    elif extra == "long":
        params = params + [0.0]
    got, want = same_outcome(lambda: compiled("learning_rate_at")(schedule, params, step),
                             lambda: twin("learning_rate_at")(schedule, params, step))
    assert isinstance(got, ValueError), f"{schedule}{params} accepted: {got!r}"
    assert str(got) == str(want) and str(got).startswith(f"learning_rate_at: schedule {schedule!r}"), (got, want)


@pytest.mark.parametrize("step", BAD_STEPS, ids=repr)
@pytest.mark.parametrize("schedule", sorted(VALID))
def test_invalid_steps_are_refused_by_both(schedule, step):
    got, want = same_outcome(lambda: compiled("learning_rate_at")(schedule, VALID[schedule], step),
                             lambda: twin("learning_rate_at")(schedule, VALID[schedule], step))
    assert isinstance(got, ValueError), f"{schedule} at step {step!r}: {got!r}"
    assert str(got) == str(want) and "argument `step` must be a finite number >= 0" in str(got), (got, want)


def test_an_unknown_schedule_is_refused_by_both():
    got, want = same_outcome(lambda: compiled("learning_rate_at")("linear", (0.1,), 0),
                             lambda: twin("learning_rate_at")("linear", (0.1,), 0))
    assert isinstance(got, ValueError) and str(got) == str(want) and "unknown schedule 'linear'" in str(got)
