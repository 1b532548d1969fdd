"""Losses: values vs hand-written NumPy (Keras 3 semantics), float64 finite-difference checks of every
``backward`` (logits and probabilities paths), hand-derived values, target validation and identifiers."""
import numpy as np
import pytest

from fastnn import losses
from fastnn.losses import (BinaryCrossentropy, CategoricalCrossentropy, MeanAbsoluteError, MeanSquaredError,
                           SparseCategoricalCrossentropy)

from _checks import assert_close, numerical_gradient

EPS = 1e-7  # keras.backend.epsilon()
K = 4
N = 5


# ----------------------------------------------------------------------------- NumPy formulas (Keras 3)
def np_softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def np_log_softmax(z):
    s = z - z.max(axis=-1, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=-1, keepdims=True))


def np_one_hot(labels, k):
    return np.eye(k)[np.asarray(labels, dtype=np.intp)]


def np_mse(y, p):
    return ((p - y) ** 2).mean(axis=-1)


def np_mae(y, p):
    return np.abs(p - y).mean(axis=-1)


def np_bce(y, p, from_logits=False, label_smoothing=0.0):
    y = y * (1 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        p = 1 / (1 + np.exp(-p))
    p = np.clip(p, EPS, 1 - EPS)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p)).mean(axis=-1)


def np_cce(y, p, from_logits=False, label_smoothing=0.0):
    k = p.shape[-1]
    y = y * (1 - label_smoothing) + label_smoothing / k
    if from_logits:
        return -(y * np_log_softmax(p)).sum(axis=-1)
    p = p / p.sum(axis=-1, keepdims=True)
    p = np.clip(p, EPS, 1 - EPS)
    return -(y * np.log(p)).sum(axis=-1)


def np_scce(labels, p, from_logits=False):
    return np_cce(np_one_hot(labels, p.shape[-1]), p, from_logits)


def _approx(value, tol):
    return pytest.approx(value, rel=tol["rtol"], abs=tol.get("atol", 0.0))


def _data(seed=0, n=N, k=K):
    rng = np.random.default_rng(seed)
    logits = 2 * rng.standard_normal((n, k))
    probs = np_softmax(logits)
    labels = rng.integers(0, k, n)
    onehot = np_one_hot(labels, k)
    binary = rng.integers(0, 2, (n, k)).astype(np.float64)
    soft = rng.uniform(0, 1, (n, k))
    real = rng.standard_normal((n, k))
    return dict(logits=logits, probs=probs, labels=labels, onehot=onehot, binary=binary, soft=soft, real=real)


# ----------------------------------------------------------------------------- values
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_regression_losses_match_numpy(dtype):
    d = _data()
    y, p = d["real"], d["real"][::-1] * 0.7 + 0.1
    tol = dict(rtol=1e-6, atol=1e-7) if dtype == np.float32 else dict(rtol=1e-12)
    for cls, fn, functional in [(MeanSquaredError, np_mse, losses.mean_squared_error),
                                (MeanAbsoluteError, np_mae, losses.mean_absolute_error)]:
        assert cls()(y.astype(dtype), p.astype(dtype)) == _approx(fn(y, p).mean(), tol)
        assert_close(functional(y.astype(dtype), p.astype(dtype)), fn(y, p).astype(dtype), **tol)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_binary_crossentropy_matches_numpy(from_logits, label_smoothing, dtype):
    d = _data(1)
    p = d["logits"] if from_logits else 1 / (1 + np.exp(-d["logits"]))
    for y in (d["binary"], d["soft"]):
        loss = BinaryCrossentropy(from_logits=from_logits, label_smoothing=label_smoothing)
        expected = np_bce(y, p, from_logits, label_smoothing).mean()
        tol = dict(rtol=1e-5) if dtype == np.float32 else dict(rtol=1e-12)
        assert loss(y.astype(dtype), p.astype(dtype)) == _approx(expected, tol)
        per_sample = losses.binary_crossentropy(y.astype(dtype), p.astype(dtype), from_logits=from_logits,
                                                label_smoothing=label_smoothing)
        assert_close(per_sample, np_bce(y, p, from_logits, label_smoothing).astype(dtype), **tol)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_categorical_crossentropy_matches_numpy(from_logits, label_smoothing, dtype):
    d = _data(2)
    p = d["logits"] if from_logits else d["probs"]
    tol = dict(rtol=1e-5) if dtype == np.float32 else dict(rtol=1e-12)
    for y in (d["onehot"], d["soft"] / d["soft"].sum(axis=1, keepdims=True)):
        loss = CategoricalCrossentropy(from_logits=from_logits, label_smoothing=label_smoothing)
        expected = np_cce(y, p, from_logits, label_smoothing)
        assert loss(y.astype(dtype), p.astype(dtype)) == _approx(expected.mean(), tol)
        per_sample = losses.categorical_crossentropy(y.astype(dtype), p.astype(dtype),
                                                     from_logits=from_logits, label_smoothing=label_smoothing)
        assert_close(per_sample, expected.astype(dtype), **tol)


@pytest.mark.parametrize("label_shape", ["flat", "column"])
@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sparse_categorical_crossentropy_matches_numpy(from_logits, label_shape, dtype):
    d = _data(3)
    p = d["logits"] if from_logits else d["probs"]
    labels = d["labels"] if label_shape == "flat" else d["labels"].reshape(-1, 1)
    tol = dict(rtol=1e-5) if dtype == np.float32 else dict(rtol=1e-12)
    expected = np_scce(d["labels"], p, from_logits)
    loss = SparseCategoricalCrossentropy(from_logits=from_logits)
    assert loss(labels, p.astype(dtype)) == _approx(expected.mean(), tol)
    # float labels holding whole numbers are accepted (Keras casts them)
    assert loss(labels.astype(np.float32), p.astype(dtype)) == _approx(expected.mean(), tol)
    assert_close(losses.sparse_categorical_crossentropy(labels, p.astype(dtype), from_logits=from_logits),
                 expected.astype(dtype), **tol)


def test_categorical_crossentropy_normalises_unnormalised_probabilities():
    """Keras 3 divides y_pred by its sum before clipping (K3 backend/numpy/nn.py)."""
    p = np.array([[2.0, 1.0, 1.0]])
    y = np.array([[1.0, 0.0, 0.0]])
    assert CategoricalCrossentropy()(y, p) == pytest.approx(-np.log(0.5), rel=1e-12)


# ----------------------------------------------------------------------------- hand values
@pytest.mark.parametrize("k", [2, 3, 10])
def test_ce_of_equal_logits_is_log_k(k):
    logits = np.zeros((3, k))
    assert CategoricalCrossentropy(from_logits=True)(np.eye(k)[[0, 1, 1]], logits) == pytest.approx(np.log(k))
    assert SparseCategoricalCrossentropy(from_logits=True)(np.array([0, 1, k - 1]), logits) == \
        pytest.approx(np.log(k))
    uniform = np.full((3, k), 1.0 / k)
    assert SparseCategoricalCrossentropy()(np.array([0, 1, k - 1]), uniform) == pytest.approx(np.log(k))
    # float32 too (Keras' default dtype)
    assert CategoricalCrossentropy(from_logits=True)(np.eye(k, dtype=np.float32)[[0, 1, 1]],
                                                     logits.astype(np.float32)) == pytest.approx(np.log(k),
                                                                                                 rel=1e-6)


def test_bce_hand_values():
    assert BinaryCrossentropy()(np.array([0.0, 1.0]), np.array([0.5, 0.5])) == pytest.approx(np.log(2))
    assert BinaryCrossentropy(from_logits=True)(np.array([0.0, 1.0]), np.zeros(2)) == pytest.approx(np.log(2))
    # -log(0.8) and -log(0.8): both samples 80 % right.
    assert BinaryCrossentropy()(np.array([[1.0], [0.0]]), np.array([[0.8], [0.2]])) == \
        pytest.approx(-np.log(0.8))


def test_mse_mae_hand_values():
    y = np.array([[0.0, 1.0], [2.0, 2.0]])
    p = np.array([[1.0, 1.0], [0.0, 2.0]])
    # per-sample mse [0.5, 2.0] -> 1.25; mae [0.5, 1.0] -> 0.75
    assert MeanSquaredError()(y, p) == pytest.approx(1.25)
    assert MeanAbsoluteError()(y, p) == pytest.approx(0.75)


def test_probability_clipping():
    """A predicted probability of exactly 0 for the true class costs -log(1e-7), not infinity."""
    y = np.array([[1.0, 0.0]])
    assert CategoricalCrossentropy()(y, np.array([[0.0, 1.0]])) == pytest.approx(-np.log(EPS), rel=1e-9)
    assert BinaryCrossentropy()(np.array([1.0]), np.array([0.0])) == pytest.approx(-np.log(EPS), rel=1e-9)
    assert BinaryCrossentropy()(np.array([0.0]), np.array([1.0])) == pytest.approx(-np.log(EPS), rel=1e-6)
    perfect = CategoricalCrossentropy()(y, np.array([[1.0, 0.0]]))
    assert 0 < perfect < 2e-7


def test_logits_paths_are_stable_for_large_logits():
    z = np.array([[1000.0, -1000.0]])
    assert CategoricalCrossentropy(from_logits=True)(np.array([[0.0, 1.0]]), z) == pytest.approx(2000.0)
    assert BinaryCrossentropy(from_logits=True)(np.array([[1.0, 0.0]]), z) == pytest.approx(0.0, abs=1e-12)
    assert BinaryCrossentropy(from_logits=True)(np.array([[0.0, 1.0]]), z) == pytest.approx(1000.0)


# ----------------------------------------------------------------------------- gradients (float64)
def _fd_check(loss, y_pred, y_prepared, logits, scale=0.37, eps=1e-6, rtol=1e-6, atol=1e-9):
    y_pred = np.ascontiguousarray(y_pred, dtype=np.float64)
    total, grad = loss.backward(y_pred.copy(), y_prepared, scale, logits=logits)
    per_sample = loss.per_sample(y_pred.copy(), y_prepared, logits=logits)
    assert total == pytest.approx(float(per_sample.sum()), rel=1e-12)
    assert isinstance(total, float)
    assert grad.shape == y_pred.shape and grad.dtype == np.float64

    def objective(x):
        return scale * float(loss.per_sample(x, y_prepared, logits=logits).astype(np.float64).sum())

    numeric = numerical_gradient(objective, y_pred.copy(), eps)
    assert_close(grad, numeric, rtol=rtol, atol=atol, err_msg=f"{type(loss).__name__} logits={logits}")


def test_mse_mae_gradients():
    d = _data(4)
    y = d["real"]
    p = y + np.where(np.abs(d["soft"] - 0.5) < 0.1, 0.3, d["soft"] - 0.5)  # away from the MAE kink
    for loss in (MeanSquaredError(), MeanAbsoluteError()):
        _fd_check(loss, p, loss.prepare_targets(y, K, np.float64), logits=False)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
@pytest.mark.parametrize("from_logits", [False, True])
def test_binary_crossentropy_gradients(from_logits, label_smoothing):
    d = _data(5)
    loss = BinaryCrossentropy(from_logits=from_logits, label_smoothing=label_smoothing)
    p = d["logits"] if from_logits else np.clip(1 / (1 + np.exp(-d["logits"])), 0.05, 0.95)
    for y in (d["binary"], d["soft"]):
        _fd_check(loss, p, loss.prepare_targets(y, K, np.float64), logits=from_logits)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("from_logits", [False, True])
def test_categorical_crossentropy_gradients(from_logits, label_smoothing):
    d = _data(6)
    loss = CategoricalCrossentropy(from_logits=from_logits, label_smoothing=label_smoothing)
    # Probabilities path: positive values NOT summing to 1 also exercise the normalisation's gradient.
    p = d["logits"] if from_logits else 0.2 + d["soft"]
    for y in (d["onehot"], d["soft"]):
        _fd_check(loss, p, loss.prepare_targets(y, K, np.float64), logits=from_logits)


@pytest.mark.parametrize("from_logits", [False, True])
def test_sparse_categorical_crossentropy_gradients(from_logits):
    d = _data(7)
    loss = SparseCategoricalCrossentropy(from_logits=from_logits)
    p = d["logits"] if from_logits else 0.2 + d["soft"]
    _fd_check(loss, p, loss.prepare_targets(d["labels"], K, np.float64), logits=from_logits)


def test_clipped_probability_has_zero_own_gradient():
    """Where p is clipped, Keras' gradient through the clip is 0 for that entry's log term."""
    loss = BinaryCrossentropy()
    y = np.array([[1.0, 0.0, 1.0]])
    p = np.array([[0.0, 0.5, 1.0]])
    _, grad = loss.backward(p, y, 1.0, logits=False)
    assert grad[0, 0] == 0 and grad[0, 2] == 0
    assert grad[0, 1] == pytest.approx(2.0 / 3)  # (p - y) / (p (1 - p)) / K = 0.5 / 0.25 / 3


def test_fused_gradients_hand_values():
    """d/dz of softmax-CE is (softmax(z) - y) * scale; of sigmoid-BCE (sigmoid(z) - y) / K * scale."""
    d = _data(8)
    z, y = d["logits"], d["onehot"]
    _, g = CategoricalCrossentropy(from_logits=True).backward(z, y, 0.5, logits=True)
    assert_close(g, (np_softmax(z) - y) * 0.5, rtol=1e-12, atol=1e-15)
    _, g = BinaryCrossentropy(from_logits=True).backward(z, d["binary"], 0.5, logits=True)
    assert_close(g, (1 / (1 + np.exp(-z)) - d["binary"]) / K * 0.5, rtol=1e-12, atol=1e-15)


# ----------------------------------------------------------------------------- target validation
def test_integer_labels_with_categorical_crossentropy():
    loss = CategoricalCrossentropy()
    for y in (np.array([0, 3, 1]), np.array([[0], [3], [1]])):
        with pytest.raises(ValueError) as info:
            loss(y, np.full((3, 10), 0.1))
        msg = str(info.value)
        assert "sparse_categorical_crossentropy" in msg
        assert "to_categorical" in msg
        assert "(None, 10)" in msg and "(3," in msg


def test_one_hot_with_sparse_categorical_crossentropy():
    with pytest.raises(ValueError) as info:
        SparseCategoricalCrossentropy()(np.eye(4)[[0, 1, 2]], np.full((3, 4), 0.25))
    msg = str(info.value)
    assert "one-hot" in msg and "'categorical_crossentropy'" in msg and "(3, 4)" in msg


@pytest.mark.parametrize("bad", [10, -1, 12])
def test_sparse_label_out_of_range(bad):
    y = np.array([0, 1, bad])
    with pytest.raises(ValueError) as info:
        SparseCategoricalCrossentropy()(y, np.full((3, 10), 0.1))
    msg = str(info.value)
    assert f"label value of {bad}" in msg and "[0, 9]" in msg and "10 output units" in msg


def test_non_integer_sparse_labels():
    with pytest.raises(ValueError, match="integer class ids") as info:
        SparseCategoricalCrossentropy()(np.array([0.0, 1.5]), np.full((2, 3), 1 / 3))
    assert "float64" in str(info.value)


@pytest.mark.parametrize("bad", [2.0, -0.5, 255.0])
def test_bce_targets_outside_unit_interval(bad):
    with pytest.raises(ValueError, match=r"\[0, 1\]") as info:
        BinaryCrossentropy()(np.array([0.0, bad]), np.array([0.2, 0.3]))
    assert "binary_crossentropy" in str(info.value)


@pytest.mark.parametrize("loss", [MeanSquaredError(), MeanAbsoluteError(), BinaryCrossentropy(),
                                  CategoricalCrossentropy(), SparseCategoricalCrossentropy()],
                         ids=lambda l: l.name)
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_targets(loss, bad):
    if isinstance(loss, SparseCategoricalCrossentropy):
        y, p = np.array([0.0, bad]), np.full((2, 3), 1 / 3)
    else:
        y, p = np.array([[0.0, 1.0], [bad, 0.0]]), np.full((2, 2), 0.5)
    with pytest.raises(ValueError, match="NaN") as info:
        loss(y, p)
    assert loss.name in str(info.value)


def test_target_shape_mismatch():
    with pytest.raises(ValueError) as info:
        MeanSquaredError()(np.zeros((3, 2)), np.zeros((3, 4)))
    assert "(3, 2)" in str(info.value) and "(None, 4)" in str(info.value)


def test_reductions_accepted_and_bad_ones_rejected():
    # Keras 3's reductions (tests/test_keras_cases_losses.py checks their values); tf.keras' "auto" is the default
    for reduction in ("sum_over_batch_size", "sum", None, "none", "mean", "mean_with_sample_weight"):
        assert MeanSquaredError(reduction=reduction).reduction == reduction
    assert MeanSquaredError(reduction="auto").reduction == "sum_over_batch_size"
    with pytest.raises(ValueError, match="argument `reduction`.*received reduction='total'"):
        MeanSquaredError(reduction="total")


def test_sample_weight_is_sum_over_batch_size():
    # Keras 3 reduce_weighted_values: sum(w * loss) / batch_size (not / sum(w)).
    y_true = np.array([[0.0, 1.0], [0.0, 0.0], [1.0, 1.0]])
    y_pred = np.array([[1.0, 1.0], [1.0, 0.0], [1.0, 3.0]])  # per-sample MSE 0.5, 0.5, 2.0
    w = np.array([2.0, 0.0, 0.5])
    assert MeanSquaredError()(y_true, y_pred, sample_weight=w) == pytest.approx((1.0 + 0.0 + 1.0) / 3)
    assert MeanSquaredError()(y_true, y_pred, sample_weight=w[:, None]) == pytest.approx(2.0 / 3)
    ce = SparseCategoricalCrossentropy(from_logits=True)
    logits = np.array([[0.0, 0.0], [2.0, 0.0]])
    assert ce([0, 1], logits, sample_weight=[1.0, 0.0]) == pytest.approx(np.log(2) / 2)
    with pytest.raises(ValueError, match="`sample_weight` of shape \\(2,\\) cannot be broadcast to the losses of "
                                         "shape \\(3,\\)"):
        MeanSquaredError()(y_true, y_pred, sample_weight=np.ones(2))


@pytest.mark.parametrize("cls", [BinaryCrossentropy, CategoricalCrossentropy])
@pytest.mark.parametrize("value", [-0.1, 1.5])
def test_label_smoothing_range(cls, value):
    with pytest.raises(ValueError, match="label_smoothing"):
        cls(label_smoothing=value)


def test_unknown_kwargs():
    expected = "Unrecognized keyword arguments passed to MeanSquaredError"
    with pytest.raises((TypeError, ValueError), match=expected):
        MeanSquaredError(from_logit=True)


# ----------------------------------------------------------------------------- identifiers
@pytest.mark.parametrize("name,cls", [
    ("mse", MeanSquaredError), ("mean_squared_error", MeanSquaredError), ("MSE", MeanSquaredError),
    ("mae", MeanAbsoluteError), ("mean_absolute_error", MeanAbsoluteError),
    ("binary_crossentropy", BinaryCrossentropy), ("categorical_crossentropy", CategoricalCrossentropy),
    ("sparse_categorical_crossentropy", SparseCategoricalCrossentropy),
    ("CategoricalCrossentropy", CategoricalCrossentropy),
])
def test_get_strings(name, cls):
    loss = losses.get(name)
    assert type(loss) is cls
    assert loss.from_logits is False


def test_get_instances_classes_and_functions():
    inst = CategoricalCrossentropy(from_logits=True)
    assert losses.get(inst) is inst
    assert type(losses.get(BinaryCrossentropy)) is BinaryCrossentropy
    assert type(losses.get(losses.sparse_categorical_crossentropy)) is SparseCategoricalCrossentropy
    assert type(losses.get(losses.mse)) is MeanSquaredError


def test_unknown_loss_string_lists_valid_ones():
    with pytest.raises(ValueError) as info:
        losses.get("categorical_cross_entropy")
    msg = str(info.value)
    assert "'categorical_cross_entropy'" in msg and "loss" in msg
    for name in ("mse", "mae", "binary_crossentropy", "categorical_crossentropy",
                 "sparse_categorical_crossentropy"):
        assert repr(name) in msg


def test_custom_callable_loss_rejected_clearly():
    def my_loss(y_true, y_pred):
        return ((y_true - y_pred) ** 2).mean()

    with pytest.raises(ValueError) as info:
        losses.get(my_loss)
    msg = str(info.value)
    assert "Could not interpret loss identifier" in msg and "my_loss" in msg
    assert "categorical_crossentropy" in msg  # says what is accepted


def test_config():
    config = CategoricalCrossentropy(from_logits=True, label_smoothing=0.1).get_config()
    assert config == {"name": "categorical_crossentropy", "reduction": "sum_over_batch_size",
                      "from_logits": True, "label_smoothing": 0.1, "dtype": None}
    assert MeanSquaredError().name == "mean_squared_error"
