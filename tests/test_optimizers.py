"""Optimizers: three steps of ``apply`` vs hand-written Keras 3 formulas (docs/keras_semantics.md#optimizers),
defaults, string identifiers, the ``lr`` alias, and argument errors.

The reference updates below are written from the formulas in the semantics
document, in float64, independently of ``fastnn._kernels._reference``.
"""
import warnings

import numpy as np
import pytest

from fastnn import optimizers
from fastnn.optimizers import SGD, Adadelta, Adam, RMSprop
from fastnn.optimizers import base as optimizer_base

from _checks import assert_close

STEPS = 3


# ----------------------------------------------------------------------------- hand-written formulas
def ref_sgd(w, grads, learning_rate=0.01, momentum=0.0, nesterov=False):
    lr = learning_rate
    w = w.astype(np.float64).copy()
    m = np.zeros_like(w)
    for g in grads:
        if momentum == 0:
            w = w - lr * g
            continue
        m = momentum * m - lr * g
        if nesterov:
            w = w + momentum * m - lr * g
        else:
            w = w + m
    return w


def ref_rmsprop(w, grads, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False):
    lr = learning_rate
    w = w.astype(np.float64).copy()
    v = np.zeros_like(w)
    mom = np.zeros_like(w)
    mg = np.zeros_like(w)
    for g in grads:
        v = rho * v + (1 - rho) * g * g
        if centered:
            mg = rho * mg + (1 - rho) * g
            denom = v - mg * mg + epsilon
        else:
            denom = v + epsilon
        inc = lr * g / np.sqrt(denom)  # epsilon INSIDE the sqrt (Keras; PyTorch puts it outside)
        if momentum > 0:
            mom = momentum * mom + inc
            w = w - mom
        else:
            w = w - inc
    return w


def ref_adam(w, grads, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False):
    lr = learning_rate
    w = w.astype(np.float64).copy()
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    vhat = np.zeros_like(w)
    for i, g in enumerate(grads):
        t = i + 1
        alpha = lr * np.sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t)
        m = m + (g - m) * (1 - beta_1)
        v = v + (g * g - v) * (1 - beta_2)
        if amsgrad:
            vhat = np.maximum(vhat, v)
            w = w - alpha * m / (np.sqrt(vhat) + epsilon)
        else:
            w = w - alpha * m / (np.sqrt(v) + epsilon)
    return w


def ref_adadelta(w, grads, learning_rate=0.001, rho=0.95, epsilon=1e-7):
    lr = learning_rate
    w = w.astype(np.float64).copy()
    a = np.zeros_like(w)
    d = np.zeros_like(w)
    for g in grads:
        a = rho * a + (1 - rho) * g * g
        delta = -np.sqrt(d + epsilon) / np.sqrt(a + epsilon) * g
        d = rho * d + (1 - rho) * delta * delta
        w = w + lr * delta
    return w


CASES = [
    ("sgd", SGD, ref_sgd, {}),
    ("sgd_lr", SGD, ref_sgd, {"learning_rate": 0.1}),
    ("sgd_momentum", SGD, ref_sgd, {"learning_rate": 0.1, "momentum": 0.9}),
    ("sgd_nesterov", SGD, ref_sgd, {"learning_rate": 0.1, "momentum": 0.9, "nesterov": True}),
    ("rmsprop", RMSprop, ref_rmsprop, {}),
    ("rmsprop_momentum", RMSprop, ref_rmsprop, {"learning_rate": 0.01, "momentum": 0.5}),
    ("rmsprop_centered", RMSprop, ref_rmsprop, {"learning_rate": 0.01, "centered": True}),
    ("rmsprop_centered_momentum", RMSprop, ref_rmsprop, {"centered": True, "momentum": 0.9, "rho": 0.8}),
    ("adam", Adam, ref_adam, {}),
    ("adam_hyper", Adam, ref_adam, {"learning_rate": 0.01, "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-3}),
    ("adam_amsgrad", Adam, ref_adam, {"learning_rate": 0.01, "amsgrad": True}),
    ("adadelta", Adadelta, ref_adadelta, {}),
    ("adadelta_lr1", Adadelta, ref_adadelta, {"learning_rate": 1.0, "rho": 0.9, "epsilon": 1e-6}),
]


def _data(dtype, n=7, seed=0):
    rng = np.random.default_rng(seed)
    w0 = rng.standard_normal(n).astype(dtype)
    # Gradients of varying sign and size (large, then small: v shrinks, so amsgrad's max matters).
    grads = [rng.standard_normal(n).astype(dtype) * s for s in (3.0, 0.1, 1.0)]
    return w0, grads


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_three_steps_match_keras_formulas(case, dtype):
    _, cls, ref, kwargs = case
    w0, grads = _data(dtype)
    w = w0.copy()
    opt = cls(**kwargs)
    for step, g in enumerate(grads):
        opt.apply(w, g.copy())
        assert opt.iterations == step + 1
        expected = ref(w0, [gg.astype(np.float64) for gg in grads[:step + 1]], **kwargs)
        assert w.dtype == dtype
        if dtype == np.float64:
            assert_close(w, expected, rtol=1e-12, atol=1e-15)
        else:
            assert_close(w, expected.astype(np.float32), rtol=1e-5, atol=1e-6)
    # Adam's amsgrad is visibly different from plain Adam on these gradients.
    if kwargs.get("amsgrad"):
        plain = ref_adam(w0, [g.astype(np.float64) for g in grads], **{**kwargs, "amsgrad": False})
        assert np.abs(plain - ref(w0, [g.astype(np.float64) for g in grads], **kwargs)).max() > 1e-6


def test_nesterov_and_centered_change_the_result():
    """Guard against the flags being ignored: the variants differ from the plain rules."""
    w0, grads = _data(np.float64)
    results = {}
    for name, opt in {"sgd_m": SGD(0.1, momentum=0.9), "sgd_n": SGD(0.1, momentum=0.9, nesterov=True),
                      "rms": RMSprop(0.01), "rms_c": RMSprop(0.01, centered=True)}.items():
        w = w0.copy()
        for g in grads:
            opt.apply(w, g)
        results[name] = w
    assert np.abs(results["sgd_m"] - results["sgd_n"]).max() > 1e-3
    assert np.abs(results["rms"] - results["rms_c"]).max() > 1e-4


def test_adam_first_step_is_lr_times_sign():
    """Keras Adam's first step is ~lr * sign(g) (bias correction folded into alpha)."""
    w = np.zeros(4)
    g = np.array([0.5, -2.0, 3.0, -0.1])
    Adam(learning_rate=0.01).apply(w, g)
    assert_close(w, -0.01 * np.sign(g), rtol=1e-3)


def test_state_buffers_persist_between_applies_and_per_size():
    opt = Adam()
    w = np.zeros(3, dtype=np.float32)
    opt.apply(w, np.ones(3, dtype=np.float32))
    m = opt.slots[0]
    opt.apply(w, np.ones(3, dtype=np.float32))
    assert opt.slots[0] is m
    assert opt.iterations == 2
    assert opt.slots[0].dtype == np.float32
    assert len(opt.variables()) == 2  # m and v; vhat only with amsgrad
    assert len(Adam(amsgrad=True).__class__.slot_names) == 3


# ----------------------------------------------------------------------------- defaults and identifiers
DEFAULTS = {
    SGD: {"learning_rate": 0.01, "momentum": 0.0, "nesterov": False},
    RMSprop: {"learning_rate": 0.001, "rho": 0.9, "momentum": 0.0, "epsilon": 1e-7, "centered": False},
    Adam: {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7, "amsgrad": False},
    Adadelta: {"learning_rate": 0.001, "rho": 0.95, "epsilon": 1e-7},
}


@pytest.mark.parametrize("cls", list(DEFAULTS), ids=lambda c: c.__name__)
def test_defaults(cls):
    opt = cls()
    for key, value in DEFAULTS[cls].items():
        assert getattr(opt, key) == value, key
    config = opt.get_config()
    for key, value in DEFAULTS[cls].items():
        assert config[key] == value, key


@pytest.mark.parametrize("name,cls", [("sgd", SGD), ("rmsprop", RMSprop), ("adam", Adam),
                                      ("adadelta", Adadelta), ("Adam", Adam), ("SGD", SGD), ("RMSprop", RMSprop)])
def test_string_identifiers_give_defaults(name, cls):
    opt = optimizers.get(name)
    assert type(opt) is cls
    for key, value in DEFAULTS[cls].items():
        assert getattr(opt, key) == value, key


def test_get_passes_instances_and_classes():
    opt = Adam(0.1)
    assert optimizers.get(opt) is opt
    assert type(optimizers.get(RMSprop)) is RMSprop


def test_unknown_optimizer_string_lists_valid_ones():
    with pytest.raises(ValueError, match="optimizer") as info:
        optimizers.get("adamv")
    msg = str(info.value)
    assert "'adamv'" in msg
    for name in ("sgd", "rmsprop", "adam", "adadelta", "adamw", "nadam", "lion"):
        assert repr(name) in msg


def test_uninterpretable_optimizer_identifier():
    with pytest.raises(ValueError, match="optimizer"):
        optimizers.get(3)


def test_config_round_trip():
    opt = RMSprop(learning_rate=0.05, rho=0.8, momentum=0.3, epsilon=1e-5, centered=True)
    clone = RMSprop.from_config(opt.get_config())
    assert clone.get_config() == opt.get_config()


# ----------------------------------------------------------------------------- the lr alias
@pytest.fixture
def fresh_lr_warning(monkeypatch):
    monkeypatch.setattr(optimizer_base, "_warned_lr", [])


@pytest.mark.parametrize("cls", list(DEFAULTS), ids=lambda c: c.__name__)
def test_lr_alias_is_honoured_and_warns(cls, fresh_lr_warning):
    with pytest.warns(UserWarning, match="lr") as record:
        opt = cls(lr=0.123)
    assert opt.learning_rate == 0.123
    assert "learning_rate" in str(record[0].message)
    # The rate is actually used.
    w = np.zeros(2)
    ref = cls(learning_rate=0.123)
    w_ref = np.zeros(2)
    g = np.array([1.0, -2.0])
    opt.apply(w, g)
    ref.apply(w_ref, g)
    np.testing.assert_array_equal(w, w_ref)


def test_lr_alias_warns_only_once(fresh_lr_warning):
    with pytest.warns(UserWarning):
        SGD(lr=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt = Adam(lr=0.25)
    assert opt.learning_rate == 0.25


def test_lr_attribute_is_learning_rate():
    opt = SGD(0.1)
    assert opt.lr == 0.1
    opt.lr = 0.2
    assert opt.learning_rate == 0.2


# ----------------------------------------------------------------------------- argument errors
def test_decay_raises_clear_error():
    with pytest.raises(ValueError, match="decay") as info:
        SGD(learning_rate=0.1, decay=0.01)
    assert "0.01" in str(info.value)
    SGD(decay=0.0)  # the "off" value is accepted


@pytest.mark.parametrize("cls", list(DEFAULTS), ids=lambda c: c.__name__)
def test_use_ema_raises_clear_error(cls):
    with pytest.raises(ValueError, match="use_ema") as info:
        cls(use_ema=True)
    assert "True" in str(info.value)


def test_unknown_kwargs_raise():
    with pytest.raises(ValueError, match="Argument\\(s\\) not recognized") as info:
        Adam(beta1=0.9)
    assert "beta1" in str(info.value)


@pytest.mark.parametrize("kwargs,name", [
    ({"learning_rate": -0.1}, "learning_rate"),
    ({"learning_rate": "0.1"}, "learning_rate"),
    ({"learning_rate": float("nan")}, "learning_rate"),
    ({"beta_1": 1.0}, "beta_1"),
    ({"beta_2": -0.1}, "beta_2"),
    ({"epsilon": -1e-7}, "epsilon"),
])
def test_adam_bad_hyperparameters(kwargs, name):
    with pytest.raises(ValueError, match=name):
        Adam(**kwargs)


@pytest.mark.parametrize("cls,kwargs,name", [
    (SGD, {"momentum": -0.5}, "momentum"),
    (SGD, {"momentum": 1.5}, "momentum"),
    (RMSprop, {"rho": 1.0}, "rho"),
    (Adadelta, {"rho": 2.0}, "rho"),
])
def test_other_bad_hyperparameters(cls, kwargs, name):
    with pytest.raises(ValueError, match=name):
        cls(**kwargs)
