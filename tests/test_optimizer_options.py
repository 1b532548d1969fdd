"""Keras 3's base-optimizer options and schedules, trained through the engine (compiled, and its twin):
clipnorm / clipvalue / global_clipnorm, decoupled weight decay (and exclude_from_weight_decay),
gradient_accumulation_steps, learning-rate schedules (built-in: in the compiled loop; your own: a Python
call per step), ``optimizer.learning_rate`` as a variable, History's ``learning_rate``, one optimizer per
model, and saving. Semantics: keras/src/optimizers/base_optimizer.py (``_backend_apply_gradients``)."""
import math

import numpy as np
import pytest

import fastnn
from fastnn import Sequential, optimizers
from fastnn.layers import Dense
from fastnn.models import load_model
from fastnn.optimizers import SGD, Adam, Nadam, schedules
from fastnn.utils import set_random_seed

from _checks import use_reference_engine

N, F = 32, 5


@pytest.fixture(autouse=True)
def _fresh():
    fastnn.backend.clear_session()
    set_random_seed(0)


def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, F)).astype(np.float32)
    y = (x @ rng.standard_normal((F, 2)) * 3).astype(np.float32)
    return x, y


def _model(optimizer, twin=False, seed=0):
    set_random_seed(seed)
    model = Sequential([Dense(3, activation="tanh", input_shape=(F,)), Dense(2)])
    model.compile(optimizer=optimizer, loss="mse")
    return use_reference_engine(model) if twin else model


def _step(optimizer, batch_size=N, epochs=1, twin=False):
    """Weights before and after `epochs` of full-batch (or batch_size) steps, unshuffled."""
    model = _model(optimizer, twin)
    w0 = [w.copy() for w in model.get_weights()]
    x, y = _data()
    model.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=False, verbose=0)
    return w0, model.get_weights(), model


def _grads():
    """Each weight's gradient at the starting weights: one plain SGD step with lr 1 moves w by -g."""
    w0, w1, _ = _step(SGD(learning_rate=1.0))
    return w0, [a - b for a, b in zip(w0, w1)]


@pytest.mark.parametrize("twin", (False, True))
def test_clipnorm_clips_each_weight(twin):
    w0, g = _grads()
    c = 0.05
    _, w1, _ = _step(SGD(learning_rate=1.0, clipnorm=c), twin=twin)
    for a, b, gw in zip(w0, w1, g):
        norm = np.sqrt(np.sum(gw.astype(np.float64) ** 2))
        np.testing.assert_allclose(b, a - gw * c / max(norm, c), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("twin", (False, True))
def test_global_clipnorm_scales_all_gradients_together(twin):
    w0, g = _grads()
    c = 0.1
    total = math.sqrt(sum(float(np.sum(gw.astype(np.float64) ** 2)) for gw in g))
    assert total > c
    _, w1, _ = _step(SGD(learning_rate=1.0, global_clipnorm=c), twin=twin)
    for a, b, gw in zip(w0, w1, g):
        np.testing.assert_allclose(b, a - gw * c / total, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("twin", (False, True))
def test_clipvalue(twin):
    w0, g = _grads()
    _, w1, _ = _step(SGD(learning_rate=1.0, clipvalue=0.01), twin=twin)
    for a, b, gw in zip(w0, w1, g):
        np.testing.assert_allclose(b, a - np.clip(gw, -0.01, 0.01), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("twin", (False, True))
def test_weight_decay_is_decoupled_and_excludes_by_name(twin):
    """w = w - w * wd * lr, then the update with the gradient at the undecayed weights; the biases are
    spared with exclude_from_weight_decay(var_names=['bias'])."""
    w0, g = _grads()
    opt = SGD(learning_rate=0.5, weight_decay=0.1)
    opt.exclude_from_weight_decay(var_names=["bias"])
    _, w1, _ = _step(opt, twin=twin)
    for k, (a, b, gw) in enumerate(zip(w0, w1, g)):
        decayed = a if k % 2 else a - a * 0.1 * 0.5  # kernel, bias, kernel, bias
        np.testing.assert_allclose(b, decayed - 0.5 * gw, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("twin", (False, True))
def test_gradient_accumulation_updates_every_n_steps_with_the_mean(twin):
    """Two batches of N/2 accumulated = one step with their mean gradient (the gradient of the whole batch);
    iterations counts updates (Keras 3: steps // gradient_accumulation_steps)."""
    w0, g = _grads()
    opt = SGD(learning_rate=1.0, gradient_accumulation_steps=2)
    _, w1, model = _step(opt, batch_size=N // 2, twin=twin)
    for a, b, gw in zip(w0, w1, g):
        np.testing.assert_allclose(b, a - gw, rtol=1e-5, atol=1e-6)
    assert opt.iterations == 1 and opt._iterations == 2
    # one more batch only accumulates: the weights do not move
    x, y = _data()
    before = model.get_weights()
    model.train_on_batch(x[:N // 2], y[:N // 2])
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("twin", (False, True))
def test_builtin_schedule_in_the_loop_equals_a_python_schedule(twin):
    """ExponentialDecay runs in C inside the engine's loop; the same formula as a LearningRateSchedule subclass
    is called from Python once per step. The two give the same bits."""
    builtin = schedules.ExponentialDecay(0.05, decay_steps=2, decay_rate=0.5)

    class Mine(schedules.LearningRateSchedule):
        def __call__(self, step):
            return 0.05 * 0.5 ** (step / 2)

    _, wa, ma = _step(Nadam(learning_rate=builtin), batch_size=8, epochs=2, twin=twin)
    _, wb, mb = _step(Nadam(learning_rate=Mine()), batch_size=8, epochs=2, twin=twin)
    for a, b in zip(wa, wb):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert ma.optimizer.iterations == 8
    assert float(ma.optimizer.learning_rate) == pytest.approx(0.05 * 0.5 ** 4)


def test_compiled_and_twin_agree_with_every_option():
    for opt in (lambda: Adam(clipnorm=0.1, weight_decay=0.01, gradient_accumulation_steps=2,
                             learning_rate=schedules.CosineDecay(0.0, 10, warmup_target=0.1, warmup_steps=3)),
                lambda: optimizers.Lion(global_clipnorm=0.2, learning_rate=0.01),
                lambda: optimizers.Adagrad(clipvalue=0.1, learning_rate=0.1)):
        _, wc, _ = _step(opt(), batch_size=4, epochs=2)
        _, wr, _ = _step(opt(), batch_size=4, epochs=2, twin=True)
        for a, b in zip(wc, wr):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_learning_rate_is_a_variable():
    opt = Adam(learning_rate=0.01)
    lr = opt.learning_rate
    assert float(lr) == 0.01 and lr == 0.01 and lr.numpy() == np.float32(0.01) and lr * 2 == 0.02
    lr.assign(0.02)
    assert opt.learning_rate == 0.02
    opt.learning_rate = 0.03
    assert float(lr) == 0.03  # the same variable
    with pytest.raises(ValueError, match="non-negative number"):
        opt.learning_rate = -1.0
    sched = Adam(learning_rate=schedules.InverseTimeDecay(0.1, 1.0, 0.5))
    assert float(sched.learning_rate) == pytest.approx(0.1)
    with pytest.raises(TypeError, match="hence its learning rate is not settable"):
        sched.learning_rate = 0.1
    with pytest.raises(TypeError, match="not settable"):
        sched.learning_rate.assign(0.1)


def test_history_logs_a_schedules_rate():
    x, y = _data()
    model = _model(SGD(learning_rate=schedules.PiecewiseConstantDecay([3], [0.1, 0.01])))
    history = model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    # the rate the next step uses: schedule(4) after epoch 1, schedule(8) after epoch 2
    assert history.history["learning_rate"] == [pytest.approx(0.01), pytest.approx(0.01)]
    plain = _model(SGD(learning_rate=0.1), seed=1)
    assert "learning_rate" not in plain.fit(x, y, epochs=1, verbose=0).history


def test_one_optimizer_cannot_train_two_models():
    opt = Adam()
    a = _model(opt)
    x, y = _data()
    a.fit(x, y, epochs=1, verbose=0)
    a.compile(optimizer=opt, loss="mse")  # the same model again is fine
    b = Sequential([Dense(2, input_shape=(F,))])
    with pytest.raises(ValueError, match="already holds the state .* create a new optimizer instance"):
        b.compile(optimizer=opt, loss="mse")


def test_one_optimizer_compiled_twice_fails_when_the_second_model_trains():
    opt = Adam()
    a, b = _model(opt), _model(opt, seed=1)  # neither trained yet: Keras builds on the first apply
    x, y = _data()
    a.fit(x, y, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="cannot also train model"):
        b.fit(x, y, epochs=1, verbose=0)


def test_save_and_load_keep_schedule_options_and_state(tmp_path):
    opt = Nadam(learning_rate=schedules.CosineDecayRestarts(0.01, 3), clipnorm=1.0, gradient_accumulation_steps=2,
                weight_decay=0.01)
    x, y = _data()
    model = _model(opt)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    model.save(tmp_path / "m.fastnn")
    loaded = load_model(tmp_path / "m.fastnn")
    assert loaded.optimizer.get_config() == opt.get_config()
    assert isinstance(loaded.optimizer.schedule, schedules.CosineDecayRestarts)
    assert loaded.optimizer._iterations == 4 and loaded.optimizer.iterations == 2
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    loaded.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_a_python_schedule_cannot_be_saved(tmp_path):
    class Mine(schedules.LearningRateSchedule):
        def __call__(self, step):
            return 0.1

    model = _model(SGD(learning_rate=Mine()))
    with pytest.raises(ValueError, match="fastnn files can only hold fastnn's own classes"):
        model.save(tmp_path / "m.fastnn")


def test_option_errors():
    with pytest.raises(ValueError, match="Only one of `clipnorm`, `clipvalue` and `global_clipnorm`"):
        SGD(clipnorm=1.0, clipvalue=1.0)
    with pytest.raises(ValueError, match="`gradient_accumulation_steps` must be an integer >= 2"):
        SGD(gradient_accumulation_steps=1)
    with pytest.raises(ValueError, match="`use_ema` is not supported by fastnn yet"):
        SGD(use_ema=True)
