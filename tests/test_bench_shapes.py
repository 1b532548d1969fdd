"""bench/bench_shapes.py's model grid, and the NumPy baseline it measures fastnn against.

No timing here: the grid must cover every axis the issue names, every model must build
through fastnn's public API with the benchmark's initial weights, and the NumPy
baseline must do the same maths as fastnn's reference kernels (_reference.py) step by step.
"""
import dataclasses
import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

import fastnn
from fastnn._kernels import _reference as R

BENCH = Path(__file__).resolve().parent.parent / "bench"


def _import_bench(name):
    sys.path.insert(0, str(BENCH))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(BENCH))


grid = _import_bench("grid")
numpy_mlp = _import_bench("numpy_mlp")
bench_shapes = _import_bench("bench_shapes")


# --------------------------------------------------------------------------- the grid
def test_grid_covers_every_axis_of_the_issue():
    models = grid.GRID
    assert len(models) >= 24
    assert len({m.name for m in models}) == len(models)
    assert {len(m.hidden) for m in models} >= {1, 2, 3, 4, 5}
    widths = [w for m in models for w in m.hidden]
    assert min(widths) == 8 and max(widths) == 2048
    batches = {m.batch for m in models}
    assert min(batches) == 16 and max(batches) == 1024
    assert {m.activation for m in models} >= {"relu", "tanh", "sigmoid"}
    sgd = [m.opt_args for m in models if m.optimizer == "sgd"]
    assert any(not a.get("momentum") for a in sgd)
    assert any(a.get("momentum") and not a.get("nesterov") for a in sgd)
    assert any(a.get("nesterov") for a in sgd)
    assert {m.optimizer for m in models} >= {"sgd", "rmsprop", "adam", "adadelta"}
    assert {m.zeros for m in models} >= {0.0, 0.5, 0.8}
    assert {m.dtype for m in models} == {"float32", "float64"}
    for flag in ("batch_norm", "dropout", "l2", "sample_weight"):
        assert {bool(getattr(m, flag)) for m in models} == {True, False}, flag
    losses = [m.loss for m in models]
    assert {"binary_crossentropy", "mse"} <= set(losses)
    assert sum(loss.endswith("categorical_crossentropy") for loss in losses) > len(losses) // 2
    assert any(m.compute_bound for m in models) and not all(m.compute_bound for m in models)
    assert all(m.rows >= m.batch for m in models)


def test_quick_mode_has_three_tiny_models():
    assert len(grid.QUICK) == 3
    assert all(m.rows * m.macs_per_row <= 20_000_000 for m in grid.QUICK)
    assert not set(m.name for m in grid.QUICK) & set(m.name for m in grid.GRID)


def test_feature_pairs_change_one_thing():
    features = {f for f, _, _ in grid.FEATURES}
    assert features == {"l2", "sample_weight", "precision_recall", "bias=False+BN+Act", "float64"}
    for pairs in (grid.FEATURE_PAIRS, grid.QUICK_FEATURE_PAIRS):
        assert {p[1] for p in pairs} == features
        for name, feature, base, variant, limit in pairs:
            changed = {f.name for f in dataclasses.fields(base) if getattr(base, f.name) != getattr(variant, f.name)}
            assert changed - {"name"} and len(changed - {"name"}) == 1, name
            assert limit == (2.2 if feature == "float64" else 1.3)


def test_flop_convention():
    m = grid.Model(name="m", inputs=3, hidden=(4,), outputs=2, rows=10)
    assert m.macs_per_row == 3 * 4 + 4 * 2
    assert m.flops_per_epoch == 6 * 10 * (3 * 4 + 4 * 2)


def test_data_is_fixed_learnable_and_has_the_zero_fraction():
    for model in grid.QUICK + [dataclasses.replace(grid.find("onehot-d2-w128-b64-adam"), rows=600)]:
        x, y, sw = grid.make_data(model)
        x2, y2, _ = grid.make_data(model)
        np.testing.assert_array_equal(x, x2)
        np.testing.assert_array_equal(y, y2)
        assert x.shape == (model.rows, model.inputs) and x.dtype == np.dtype(model.dtype)
        assert abs(float((x == 0).mean()) - model.zeros) < 0.03
        assert (sw is not None) == model.sample_weight
        if model.loss == "sparse_categorical_crossentropy":
            assert len(np.unique(y)) >= 3
        elif model.loss == "binary_crossentropy":
            assert y.shape == (model.rows, 1) and 0.4 < float(y.mean()) < 0.6


def test_every_model_builds_through_the_public_api_with_the_benchmark_weights():
    models = grid.GRID + grid.QUICK + [p[3] for p in grid.QUICK_FEATURE_PAIRS]
    for model in models:
        small = dataclasses.replace(model, inputs=min(model.inputs, 64),
                                    hidden=tuple(min(u, 64) for u in model.hidden))
        net = grid.build_keras(small, fastnn)
        weights = grid.initial_weights(small)
        assert [w.shape for w in net.get_weights()] == [w.shape for w in weights], model.name
        net.set_weights(weights)
        if not (small.bn_idiom or small.precision_recall):
            trainer = numpy_mlp.NumpyMLP(small.inputs, small.layers, small.loss, small.optimizer, small.opt_args,
                                         batch_norm=small.batch_norm, dropout=small.dropout, l2=small.l2,
                                         dtype=small.dtype)
            trainer.set_weights(weights)


def test_summary_row_marks_targets():
    model = grid.Model(name="m", inputs=256, hidden=(256,), batch=64, rows=1000)
    args = type("A", (), {"threads": 2, "machine": {"cpu": "x"}})()
    res = {"fastnn": {"sec_per_epoch": 1.0, "loss": 1.0}, "numpy": {"sec_per_epoch": 3.0, "loss": 1.01},
           "torch": {"sec_per_epoch": 1.5, "loss": 2.0}}
    row = bench_shapes.summarize_model(model, res, {"float32": 0.001}, args)
    assert row["ok_numpy"] is True and row["ok_torch"] is False and row["ok_peak"] is True
    assert row["spread"] > bench_shapes.LOSS_SPREAD and row["line"].count("PASS") == 2


# --------------------------------------------------------------------------- the NumPy baseline
OPT_RULES = {
    "sgd": lambda w, g, s, kw, t: R.sgd_update(w, g, s[0], kw.get("learning_rate", 0.01), kw.get("momentum", 0.0),
                                               kw.get("nesterov", False)),
    "rmsprop": lambda w, g, s, kw, t: R.rmsprop_update(w, g, s[0], s[1], None, kw.get("learning_rate", 0.001),
                                                       kw.get("rho", 0.9), kw.get("momentum", 0.0), 1e-7),
    "adam": lambda w, g, s, kw, t: R.adam_update(w, g, s[0], s[1], None, kw.get("learning_rate", 0.001), 0.9,
                                                 0.999, 1e-7, t),
    "adadelta": lambda w, g, s, kw, t: R.adadelta_update(w, g, s[0], s[1], kw.get("learning_rate", 0.001), 0.95,
                                                         1e-7),
}
LOSS_KERNELS = {"sparse_categorical_crossentropy": R.softmax_xent_backward,
                "categorical_crossentropy": R.softmax_xent_backward,
                "binary_crossentropy": R.sigmoid_bxent_backward, "mse": R.mse_backward}


def _reference_steps(model, weights, x, y, sw, steps, seed):
    """Keras' training steps from fastnn's reference kernels, unshuffled; returns (batch losses, weights)."""
    hidden, act, b = len(model.hidden), model.activation, model.batch
    per_layer = 6 if model.batch_norm else 2
    w = [a.copy() for a in weights]
    dense = [(w[l * per_layer], w[l * per_layer + 1]) for l in range(hidden)] + [(w[-2], w[-1])]
    bn = [w[l * per_layer + 2:l * per_layer + 6] for l in range(hidden)] if model.batch_norm else []
    trainable = [a for pair in dense for a in pair] + [a for g in bn for a in g[:2]]
    state = [[np.zeros_like(a), np.zeros_like(a)] for a in trainable]
    rng = np.random.default_rng([seed, 1])
    losses = []
    for step in range(steps):
        rows = slice(step * b, (step + 1) * b)
        xb, yb, swb = x[rows], y[rows], None if sw is None else sw[rows].astype(np.float64)
        inputs, caches, h = [], [], xb
        for l in range(hidden):
            inputs.append(h)
            pre = R.dense_forward(h, *dense[l])
            a = R.activation_forward(pre, act)
            h, cache = a, {"a": a, "pre": pre}
            if model.batch_norm:
                h, mean, var = R.batch_norm_forward_train(a, bn[l][0], bn[l][1], 1e-3)
                R.batch_norm_update_moving(bn[l][2], bn[l][3], mean, var, 0.99)
                cache.update(mean=mean, var=var)
            if model.dropout:
                h, cache["mask"] = R.dropout_forward(h, rng.random(h.shape, dtype=h.dtype), model.dropout)
            caches.append(cache)
        inputs.append(h)
        z = R.dense_forward(h, *dense[-1])
        loss_sum, g = LOSS_KERNELS[model.loss](z, yb, scale=1.0 / len(xb), sample_weight=swb)
        penalty = sum(R.l1_l2_forward(k, 0.0, model.l2) for k, _ in dense)
        losses.append(loss_sum / len(xb) + penalty)
        grads = [np.zeros_like(a) for a in trainable]
        for l in range(hidden, -1, -1):
            g = R.dense_backward(g, inputs[l], dense[l][0], grads[2 * l], grads[2 * l + 1], compute_dX=l > 0)
            if l == 0:
                break
            c = caches[l - 1]
            if model.dropout:
                g = R.dropout_backward(g, c["mask"], model.dropout)
            if model.batch_norm:
                i = 2 * (hidden + 1) + 2 * (l - 1)
                g = R.batch_norm_backward(g, c["a"], c["mean"], c["var"], bn[l - 1][0], 1e-3, grads[i], grads[i + 1])
            g = R.activation_backward(g, c["a"], act, X=c["pre"])
        for l, (k, _) in enumerate(dense):
            R.l1_l2_backward(k, 0.0, model.l2, grads[2 * l])
        for p, gp, s in zip(trainable, grads, state):
            OPT_RULES[model.optimizer](p, gp, s, model.opt_args, step + 1)
    return losses, w


@pytest.mark.parametrize("model", [
    grid.Model(name="softmax-tanh-adam-bn-dropout-l2-sw", inputs=12, hidden=(16, 8), activation="tanh", batch=16,
               batch_norm=True, dropout=0.25, l2=1e-3, sample_weight=True, outputs=5),
    grid.Model(name="sgd-plain-relu", inputs=12, hidden=(16,), optimizer="sgd", batch=16, outputs=5),
    grid.Model(name="binary-rmsprop-momentum-l2", inputs=12, hidden=(16, 8), optimizer="rmsprop",
               opt_args={"momentum": 0.5}, batch=16, l2=1e-3, loss="binary_crossentropy", outputs=1),
    grid.Model(name="mse-nesterov-sigmoid-bn-sw", inputs=12, hidden=(16, 8), activation="sigmoid", optimizer="sgd",
               opt_args={"momentum": 0.9, "nesterov": True}, batch=16, batch_norm=True, sample_weight=True,
               loss="mse", outputs=3),
    grid.Model(name="onehot-adadelta-dropout", inputs=12, hidden=(16,), optimizer="adadelta",
               opt_args={"learning_rate": 1.0}, batch=16, dropout=0.4, loss="categorical_crossentropy", outputs=5),
] + [grid.Model(name=f"{act}-adam-bn", inputs=12, hidden=(16, 8), activation=act, batch=16, batch_norm=True,
                outputs=5) for act in ("gelu", "silu", "elu", "leaky_relu")], ids=lambda m: m.name)
def test_numpy_baseline_matches_the_reference_kernels(model):
    steps, seed = 3, 7
    model = dataclasses.replace(model, rows=steps * model.batch, zeros=0.5)
    x, y, sw = grid.make_data(model)
    weights = grid.initial_weights(model)
    expected_losses, expected_weights = _reference_steps(model, weights, x, y, sw, steps, seed)

    trainer = numpy_mlp.NumpyMLP(model.inputs, model.layers, model.loss, model.optimizer, model.opt_args, seed=seed,
                                 batch_norm=model.batch_norm, dropout=model.dropout, l2=model.l2, dtype=model.dtype)
    trainer.set_weights(weights)
    losses = []
    for step in range(steps):   # one batch per fit call: the loss of every step
        rows = slice(step * model.batch, (step + 1) * model.batch)
        history = trainer.fit(x[rows], y[rows], epochs=1, batch_size=model.batch, shuffle=False,
                              sample_weight=None if sw is None else sw[rows])
        losses.append(history["loss"][0])
    np.testing.assert_allclose(losses, expected_losses, rtol=2e-5)
    for got, want in zip(trainer.get_weights(), expected_weights):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_numpy_optimizers_flush_denormal_slots_only():
    numpy_optim = _import_bench("numpy_optim")
    tiny = np.finfo(np.float32).tiny
    opt = numpy_optim.make_optimizer("adam", 4)
    opt.m[...] = [tiny / 4, -tiny / 2, tiny, 0.5]
    opt.v[...] = [tiny / 8, 1.0, 0.0, -tiny]
    opt.flush_denormals()
    np.testing.assert_array_equal(opt.m, np.array([0, 0, tiny, 0.5], np.float32))
    np.testing.assert_array_equal(opt.v, np.array([0, 1, 0, -tiny], np.float32))
