"""Learning-rate schedules: values at chosen steps against Keras 3's documented formulas
(keras/src/optimizers/schedules/learning_rate_schedule.py docstrings), hand-computed here; argument errors;
get_config / from_config and serialize / deserialize. The C function the engine runs is compared with its
NumPy twin in tests/kernels/test_optim.py."""
import math

import pytest

from fastnn.optimizers import schedules as S

CASES = [
    # ExponentialDecay: initial * rate ^ (step / decay_steps), floor with staircase
    (S.ExponentialDecay(0.1, 10, 0.96), 0, 0.1),
    (S.ExponentialDecay(0.1, 10, 0.96), 10, 0.096),
    (S.ExponentialDecay(0.1, 10, 0.96), 15, 0.1 * 0.96 ** 1.5),
    (S.ExponentialDecay(0.1, 100000, 0.96, staircase=True), 150000, 0.096),
    # PiecewiseConstantDecay (Keras' example: 1.0 for the first 100001 steps, 0.5 for 10000, then 0.1)
    (S.PiecewiseConstantDecay([100000, 110000], [1.0, 0.5, 0.1]), 100000, 1.0),
    (S.PiecewiseConstantDecay([100000, 110000], [1.0, 0.5, 0.1]), 100001, 0.5),
    (S.PiecewiseConstantDecay([100000, 110000], [1.0, 0.5, 0.1]), 110000, 0.5),
    (S.PiecewiseConstantDecay([100000, 110000], [1.0, 0.5, 0.1]), 110001, 0.1),
    # InverseTimeDecay: initial / (1 + rate * step / decay_steps)
    (S.InverseTimeDecay(0.1, 1.0, 0.5), 2, 0.05),
    (S.InverseTimeDecay(0.1, 4.0, 0.5, staircase=True), 7, 0.1 / 1.5),
    # PolynomialDecay: (initial - end) (1 - step / decay_steps) ^ power + end
    (S.PolynomialDecay(0.1, 10000, 0.01, power=0.5), 2500, 0.09 * math.sqrt(0.75) + 0.01),
    (S.PolynomialDecay(0.1, 10000, 0.01, power=0.5), 20000, 0.01),
    (S.PolynomialDecay(0.1, 10, 0.0, power=1.0, cycle=True), 15, 0.1 * (1 - 15 / 20)),
    # CosineDecay: initial * ((1 - alpha) 0.5 (1 + cos(pi step / decay_steps)) + alpha)
    (S.CosineDecay(0.1, 1000), 500, 0.05),
    (S.CosineDecay(0.1, 1000, alpha=0.1), 1000, 0.01),
    (S.CosineDecay(0.1, 1000), 5000, 0.0),
    # ... with a linear warmup from initial to warmup_target over warmup_steps first
    (S.CosineDecay(0.0, 1000, warmup_target=0.1, warmup_steps=1000), 500, 0.05),
    (S.CosineDecay(0.0, 1000, warmup_target=0.1, warmup_steps=1000), 1000, 0.1),
    (S.CosineDecay(0.0, 1000, warmup_target=0.1, warmup_steps=1000), 1500, 0.05),
    # CosineDecayRestarts: periods of first_decay_steps * t_mul^i, peaks m_mul^i
    (S.CosineDecayRestarts(1.0, 10), 5, 0.5),
    (S.CosineDecayRestarts(1.0, 10), 10, 1.0),
    (S.CosineDecayRestarts(1.0, 10), 20, 0.5),
    (S.CosineDecayRestarts(1.0, 10, t_mul=1.0, m_mul=0.5), 15, 0.25),
]


@pytest.mark.parametrize("schedule,step,expected", CASES, ids=[f"{type(c[0]).__name__}-{c[1]}" for c in CASES])
def test_values_at_steps(schedule, step, expected):
    assert schedule(step) == pytest.approx(expected, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("schedule", sorted({type(c[0]): c[0] for c in CASES}.values(), key=lambda s: type(s).__name__),
                         ids=lambda s: type(s).__name__)
def test_config_round_trip(schedule):
    again = type(schedule).from_config(schedule.get_config())
    assert again.get_config() == schedule.get_config()
    spec = S.serialize(schedule)
    assert spec["class_name"] == type(schedule).__name__
    assert S.deserialize(spec).get_config() == schedule.get_config()
    assert again(7) == schedule(7)


def test_errors():
    with pytest.raises(ValueError, match="Argument `decay_steps` must be > 0. Received: decay_steps=0"):
        S.ExponentialDecay(0.1, 0, 0.9)
    with pytest.raises(ValueError, match="The length of boundaries should be 1 less than the length of values"):
        S.PiecewiseConstantDecay([1, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="Unknown learning rate schedule: 'Mine'"):
        S.deserialize({"class_name": "Mine", "config": {}})
    with pytest.raises(NotImplementedError, match="must override `__call__"):
        S.LearningRateSchedule()(0)


def test_custom_schedule_deserializes_with_custom_objects():
    class Mine(S.LearningRateSchedule):
        def __init__(self, rate):
            self.rate = rate

        def __call__(self, step):
            return self.rate / (step + 1)

        def get_config(self):
            return {"rate": self.rate}

    spec = S.serialize(Mine(0.3))
    assert S.deserialize(spec, custom_objects={"Mine": Mine})(2) == pytest.approx(0.1)
