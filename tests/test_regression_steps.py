"""Ten training steps through ``fit`` (the fused engine) vs a standalone NumPy trainer (llm.c
``test_gpt2.c`` expected-losses style: a gradient bug that finite differences on small shapes
miss still shows up as losses that drift apart).

The reference below is self-contained: forward pass, softmax cross-entropy and
its gradient, backprop through relu and dense layers, and Keras 3's Adam
(docs/keras_semantics.md#optimizers), written from the formulas in float64. It shares no
code with fastnn; it only starts from the model's initial weights.
"""
import numpy as np
import pytest

import fastnn
from fastnn import Sequential, optimizers
from fastnn.callbacks import Callback
from fastnn.layers import Dense
from fastnn.utils import set_random_seed

SEED = 1234
N_STEPS = 10
BATCH = 8
IN, HIDDEN, OUT = 12, 16, 5
LR, BETA_1, BETA_2, EPSILON = 0.01, 0.9, 0.999, 1e-7


def _data():
    rng = np.random.default_rng(SEED)
    x = rng.standard_normal((N_STEPS * BATCH, IN)).astype(np.float32)
    y = rng.integers(0, OUT, N_STEPS * BATCH)
    return x, y


def reference_trainer(params, x, y):
    """Plain NumPy: returns (per-step losses, final params) for N_STEPS Adam steps in order."""
    W1, b1, W2, b2 = [p.astype(np.float64).copy() for p in params]
    x = x.astype(np.float64)
    m = [np.zeros_like(p) for p in (W1, b1, W2, b2)]
    v = [np.zeros_like(p) for p in (W1, b1, W2, b2)]
    step_losses = []
    for step in range(N_STEPS):
        xb = x[step * BATCH:(step + 1) * BATCH]
        yb = y[step * BATCH:(step + 1) * BATCH]
        n = len(xb)
        # forward
        h_pre = xb @ W1 + b1
        h = np.maximum(h_pre, 0)
        z = h @ W2 + b2
        z = z - z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        step_losses.append(-logp[np.arange(n), yb].mean())
        # backward: d(mean CE)/dz = (softmax - onehot) / n
        dz = np.exp(logp)
        dz[np.arange(n), yb] -= 1
        dz /= n
        dW2 = h.T @ dz
        db2 = dz.sum(axis=0)
        dh = (dz @ W2.T) * (h_pre > 0)
        dW1 = xb.T @ dh
        db1 = dh.sum(axis=0)
        # Keras 3 Adam: alpha = lr sqrt(1 - b2^t) / (1 - b1^t); w -= alpha m / (sqrt(v) + eps)
        t = step + 1
        alpha = LR * np.sqrt(1 - BETA_2 ** t) / (1 - BETA_1 ** t)
        for i, (p, g) in enumerate(zip((W1, b1, W2, b2), (dW1, db1, dW2, db2))):
            m[i] += (g - m[i]) * (1 - BETA_1)
            v[i] += (g * g - v[i]) * (1 - BETA_2)
            p -= alpha * m[i] / (np.sqrt(v[i]) + EPSILON)
    return np.array(step_losses), [W1, b1, W2, b2]


class _RunningLoss(Callback):
    """Records the running-mean ``loss`` Keras reports after every batch."""

    def __init__(self):
        super().__init__()
        self.values = []

    def on_train_batch_end(self, batch, logs=None):
        self.values.append(logs["loss"])


def _model():
    fastnn.backend.clear_session()
    set_random_seed(SEED)
    model = Sequential([Dense(HIDDEN, activation="relu", input_shape=(IN,)),
                        Dense(OUT, activation="softmax")])
    model.compile(optimizer=optimizers.Adam(learning_rate=LR), loss="sparse_categorical_crossentropy")
    return model


def test_ten_fit_steps_match_numpy_reference():
    x, y = _data()
    model = _model()
    initial = model.get_weights()
    ref_losses, ref_params = reference_trainer(initial, x, y)
    # The reference must actually learn something, or the comparison is weak.
    assert ref_losses[-1] < ref_losses[0]

    recorder = _RunningLoss()
    history = model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0, callbacks=[recorder])
    assert model.optimizer.iterations == N_STEPS

    # Keras reports a running mean over the epoch's samples (equal batch sizes here).
    expected_running = np.cumsum(ref_losses) / np.arange(1, N_STEPS + 1)
    np.testing.assert_allclose(recorder.values, expected_running, rtol=1e-5, atol=1e-6)
    step_losses = np.array(recorder.values) * np.arange(1, N_STEPS + 1)
    step_losses[1:] -= np.array(recorder.values[:-1]) * np.arange(1, N_STEPS)
    np.testing.assert_allclose(step_losses, ref_losses, rtol=1e-5, atol=1e-5)
    assert history.history["loss"] == [pytest.approx(ref_losses.mean(), rel=1e-5)]

    for got, want, name in zip(model.get_weights(), ref_params, ("W1", "b1", "W2", "b2")):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=name)


def test_ten_epochs_of_one_step_match_without_batch_hooks():
    """Same steps, one per epoch, with no batch callback: the engine runs whole epochs in one call."""
    x, y = _data()
    model = _model()
    ref_losses, ref_params = reference_trainer(model.get_weights(), x, y)
    losses = []
    for step in range(N_STEPS):
        rows = slice(step * BATCH, (step + 1) * BATCH)
        history = model.fit(x[rows], y[rows], batch_size=BATCH, epochs=1, verbose=0)
        losses.extend(history.history["loss"])
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-5, atol=1e-6)
    for got, want, name in zip(model.get_weights(), ref_params, ("W1", "b1", "W2", "b2")):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=name)
