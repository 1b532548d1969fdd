"""AdamW, Nadam, Adagrad, Adamax and Lion against Keras 3's own test numbers, ported as data.

Each golden case is ``test_correctness_with_golden`` of keras-team/keras ``keras/src/optimizers/<name>_test.py``
(https://github.com/keras-team/keras/tree/master/keras/src/optimizers): x = ones(10); one step with gradient
0.01 everywhere, then five with arange(0.1, 1.1, 0.1); x is compared with each row before the next step
(rtol = atol = 5e-4, as Keras). ``test_single_step`` and ``test_weight_decay`` are ported the same way.
These run the per-op kernels (``Optimizer.apply``); tests/test_optimizer_options.py trains through the engine.
"""
import numpy as np
import pytest

from fastnn.optimizers import Adagrad, Adamax, AdamW, Lion, Nadam

GOLDEN = {
    "adamw": (lambda: AdamW(learning_rate=1.0, weight_decay=0.5, epsilon=2), [
        [0.4998] * 10,
        [0.2486, 0.2475, 0.2463, 0.2451, 0.244, 0.2428, 0.2417, 0.2405, 0.2394, 0.2382],
        [0.1223, 0.1198, 0.1174, 0.1149, 0.1124, 0.11, 0.1075, 0.1051, 0.1027, 0.1003],
        [0.0586, 0.0549, 0.0512, 0.0475, 0.0439, 0.0402, 0.0366, 0.033, 0.0294, 0.0258],
        [0.0263, 0.0215, 0.0167, 0.012, 0.0073, 0.0026, -0.0021, -0.0067, -0.0113, -0.0159]]),
    "nadam": (lambda: Nadam(learning_rate=0.5, beta_1=0.5, beta_2=0.67, epsilon=1e-5), [
        [0.4281] * 10,
        [-0.1738, -0.1731, -0.1726, -0.1723, -0.1721, -0.172, -0.1719, -0.1718, -0.1718, -0.1717],
        [-0.7115, -0.7103, -0.7096, -0.7092, -0.709, -0.7088, -0.7086, -0.7085, -0.7085, -0.7084],
        [-1.2335, -1.2322, -1.2313, -1.2309, -1.2306, -1.2304, -1.2302, -1.2301, -1.23, -1.2299],
        [-1.7492, -1.7478, -1.7469, -1.7464, -1.7461, -1.7459, -1.7457, -1.7456, -1.7455, -1.7454]]),
    "adagrad": (lambda: Adagrad(learning_rate=0.2, initial_accumulator_value=0.3, epsilon=1e-6), [
        [0.9963] * 10,
        [0.9604, 0.9278, 0.9003, 0.8784, 0.8615, 0.8487, 0.8388, 0.8313, 0.8255, 0.8209],
        [0.9251, 0.8629, 0.8137, 0.7768, 0.7497, 0.7298, 0.7151, 0.704, 0.6956, 0.6891],
        [0.8903, 0.8012, 0.7342, 0.6862, 0.6521, 0.6277, 0.6099, 0.5967, 0.5867, 0.579],
        [0.856, 0.7422, 0.6604, 0.6037, 0.5644, 0.5367, 0.5168, 0.5021, 0.491, 0.4825]]),
    "adamax": (lambda: Adamax(learning_rate=0.2, beta_1=0.85, beta_2=0.95, epsilon=1e-6), [
        [0.8] * 10,
        [0.6827, 0.6873, 0.6888, 0.6896, 0.6901, 0.6904, 0.6906, 0.6908, 0.6909, 0.691],
        [0.5333, 0.5407, 0.5431, 0.5444, 0.5451, 0.5456, 0.546, 0.5462, 0.5464, 0.5466],
        [0.368, 0.3773, 0.3804, 0.382, 0.3829, 0.3835, 0.384, 0.3843, 0.3846, 0.3848],
        [0.1933, 0.204, 0.2076, 0.2094, 0.2105, 0.2112, 0.2117, 0.2121, 0.2124, 0.2126]]),
    "lion": (lambda: Lion(), [[0.999] * 10, [0.998] * 10, [0.997] * 10, [0.996] * 10, [0.995] * 10]),
}

SINGLE_STEP = {  # learning_rate=0.5, vars [1, 2, 3, 4], grads [1, 6, 7, 2]
    "adamw": (AdamW, [0.4980, 1.4960, 2.494, 3.492]),
    "nadam": (Nadam, [0.4686, 1.4686, 2.4686, 3.4686]),
    "adagrad": (Adagrad, [0.5233, 1.5007, 2.5005, 3.5061]),
    "adamax": (Adamax, [0.5, 1.5, 2.5, 3.5]),
    "lion": (Lion, [0.5, 1.5, 2.5, 3.5]),
}


@pytest.mark.parametrize("name", sorted(GOLDEN))
@pytest.mark.parametrize("dtype", (np.float32, np.float64))
def test_golden(name, dtype):
    make, golden = GOLDEN[name]
    opt = make()
    x = np.ones(10, dtype)
    grads = np.arange(0.1, 1.1, 0.1).astype(dtype)
    opt.apply(x, np.full(10, 0.01, dtype))
    for row in golden:
        np.testing.assert_allclose(x, row, rtol=5e-4, atol=5e-4)
        opt.apply(x, grads)


@pytest.mark.parametrize("name", sorted(SINGLE_STEP))
def test_single_step(name):
    cls, expected = SINGLE_STEP[name]
    x = np.array([1.0, 2.0, 3.0, 4.0], np.float32)
    cls(learning_rate=0.5).apply(x, np.array([1.0, 6.0, 7.0, 2.0], np.float32))
    np.testing.assert_allclose(x, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("cls", (AdamW, Nadam, Adagrad, Adamax, Lion))
def test_weight_decay_applies_before_the_update(cls):
    """Keras' test_weight_decay: three optimizers with weight_decay=0.004 and lr=1.0 each decay var1 once
    (zero gradients): 2 * 0.996^3."""
    var = np.array([2.0], np.float32)
    for _ in range(3):
        cls(learning_rate=1.0, weight_decay=0.004).apply(var, np.zeros(1, np.float32))
    assert var[0] == pytest.approx(1.9760959, abs=1e-6)


def test_adamw_requires_weight_decay():
    with pytest.raises(ValueError, match="Argument `weight_decay` must be a float. Received: weight_decay=None"):
        AdamW(weight_decay=None)


@pytest.mark.parametrize("beta_1", (-0.1, 0.0, 1.1))
def test_lion_beta_1_range(beta_1):
    with pytest.raises(ValueError, match=r"`beta_1` must be in the \[0, 1\] range. Otherwise, the optimizer "
                                         rf"degenerates to SignSGD. Received: beta_1={beta_1}."):
        Lion(beta_1=beta_1)


@pytest.mark.parametrize("make", [lambda: AdamW(learning_rate=0.5, weight_decay=0.008, beta_1=0.5, beta_2=0.67,
                                                epsilon=1e-5, amsgrad=True),
                                  lambda: Lion(learning_rate=0.5, beta_1=0.5, beta_2=0.67),
                                  lambda: Nadam(learning_rate=0.5, beta_1=0.5, beta_2=0.67, epsilon=1e-5),
                                  lambda: Adagrad(learning_rate=0.5, initial_accumulator_value=0.2, epsilon=1e-5),
                                  lambda: Adamax(learning_rate=0.5, beta_1=0.8, beta_2=0.95, epsilon=1e-5,
                                                 clipnorm=1.0, gradient_accumulation_steps=3)])
def test_config_round_trip(make):
    """Keras' test_config (run_class_serialization_test): from_config(get_config()) gives the same config."""
    opt = make()
    config = opt.get_config()
    again = type(opt).from_config(config)
    assert again.get_config() == config
    for key in ("weight_decay", "clipnorm", "clipvalue", "global_clipnorm", "gradient_accumulation_steps",
                "use_ema", "ema_momentum", "learning_rate", "name"):
        assert key in config


def test_defaults_are_keras():
    assert (Nadam().beta_1, Nadam().beta_2, Nadam().epsilon, float(Nadam().learning_rate)) == (0.9, 0.999, 1e-7,
                                                                                               0.001)
    assert (Adagrad().initial_accumulator_value, Adagrad().epsilon) == (0.1, 1e-7)
    assert (Lion().beta_1, Lion().beta_2, float(Lion().learning_rate)) == (0.9, 0.99, 0.001)
    assert (AdamW().weight_decay, AdamW().name, Adamax().name) == (0.004, "adamw", "adamax")
