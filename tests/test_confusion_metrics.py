"""Precision, Recall and AUC: Keras 3's docstring examples, hand computations and straightforward NumPy
versions of Keras' definitions (K3 metrics/confusion_metrics.py), the stateful API, configs, errors, and
their use in compile/fit/evaluate."""
import numpy as np
import pytest

import fastnn
from fastnn import Sequential, metrics
from fastnn.layers import Dense, Dropout
from fastnn.metrics import AUC, Precision, Recall
from fastnn.utils import set_random_seed, to_categorical


def _counts(y, p, thresholds, w=None):
    """tp, fp, tn, fn per threshold by direct comparison (Keras' unoptimized path), flattened."""
    y, p = np.asarray(y, np.float64).reshape(-1) != 0, np.asarray(p, np.float32).reshape(-1)
    w = np.ones(y.shape) if w is None else np.asarray(w, np.float64).reshape(-1)
    out = []
    for t in np.asarray(thresholds, np.float32):
        pred = p > t
        out.append([np.sum(w * (y & pred)), np.sum(w * (~y & pred)), np.sum(w * (~y & ~pred)),
                    np.sum(w * (y & ~pred))])
    return np.array(out).T


def _keras_thresholds(n):
    return [-1e-7] + [(i + 1) / (n - 1) for i in range(n - 2)] + [1 + 1e-7]


def _ratio(a, b):
    return np.where(b > 0, a / np.where(b > 0, b, 1), 0.0)


def _roc_auc(y, p, n=200, w=None, summation="interpolation"):
    tp, fp, tn, fn = _counts(y, np.clip(p, 0, 1), _keras_thresholds(n), w)
    tpr, fpr = _ratio(tp, tp + fn), _ratio(fp, fp + tn)
    heights = {"interpolation": (tpr[:-1] + tpr[1:]) / 2, "minoring": np.minimum(tpr[:-1], tpr[1:]),
               "majoring": np.maximum(tpr[:-1], tpr[1:])}[summation]
    return float(np.sum((fpr[:-1] - fpr[1:]) * heights))


def _pr_auc_interpolated(y, p, n=200):
    """Davis & Goadrich's interpolation as in Keras' AUC.interpolate_pr_auc, one interval at a time."""
    tp, fp, _, fn = _counts(y, np.clip(p, 0, 1), _keras_thresholds(n))
    area = 0.0
    for i in range(n - 1):
        dtp, pa, pb = tp[i] - tp[i + 1], tp[i] + fp[i], tp[i + 1] + fp[i + 1]
        if pa - pb <= 0 or tp[i + 1] + fn[i + 1] <= 0:
            continue
        slope = dtp / (pa - pb)
        intercept = tp[i + 1] - slope * pb
        log_ratio = np.log(pa / pb) if pa > 0 and pb > 0 else 0.0
        area += slope * (dtp + intercept * log_ratio) / (tp[i + 1] + fn[i + 1])
    return area


def _mann_whitney(y, p):
    """The exact ROC AUC: P(score of a positive > score of a negative), ties counting 1/2."""
    pos, neg = p[y == 1], p[y == 0]
    return float(np.mean((pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])))


# ----------------------------------------------------------------------------- Keras' docstring examples
def test_keras_docstring_examples():
    m = Precision()
    m.update_state([0, 1, 1, 1], [1, 0, 1, 1])
    assert m.result() == pytest.approx(2 / 3)
    m.reset_state()
    m.update_state([0, 1, 1, 1], [1, 0, 1, 1], sample_weight=[0, 0, 1, 0])
    assert m.result() == 1.0
    for k, expected in ((2, 0.0), (4, 0.5)):  # top_k over the last axis of a 1-D y_pred
        m = Precision(top_k=k)
        m.update_state([0, 0, 1, 1], [1, 1, 1, 1])
        assert m.result() == expected
    r = Recall()
    r.update_state([0, 1, 1, 1], [1, 0, 1, 1])
    assert r.result() == pytest.approx(2 / 3)
    a = AUC(num_thresholds=3)
    a.update_state([0, 0, 1, 1], [0, 0.5, 0.3, 0.9])  # tp=[2,1,0] fp=[2,0,0]: ((1+0.5)/2)*(1-0) = 0.75
    assert a.result() == pytest.approx(0.75)
    a.reset_state()
    a.update_state([0, 0, 1, 1], [0, 0.5, 0.3, 0.9], sample_weight=[1, 0, 0, 1])
    assert a.result() == pytest.approx(1.0)


# ----------------------------------------------------------------------------- Precision / Recall
@pytest.fixture
def binary():
    rng = np.random.default_rng(0)
    y = (rng.random((60, 3)) > 0.6).astype(np.float32)
    p = rng.random((60, 3)).astype(np.float32)
    p[:4] = 0.5  # on the default threshold: not positive (strict >)
    return y, p


def test_precision_recall_against_counts_at_several_thresholds(binary):
    y, p = binary
    w = np.random.default_rng(1).random(60)
    thresholds = [0.7, 0.2, 0.5]  # results come back in this order
    prec, rec = Precision(thresholds=thresholds), Recall(thresholds=thresholds)
    for m in (prec, rec):
        m.update_state(y, p, sample_weight=w)
    tp, fp, _, fn = _counts(y, p, thresholds, np.repeat(w, 3))
    np.testing.assert_allclose(prec.result(), tp / (tp + fp), rtol=1e-12)
    np.testing.assert_allclose(rec.result(), tp / (tp + fn), rtol=1e-12)
    assert prec.thresholds == thresholds


def test_result_is_a_ratio_of_totals_not_a_mean_of_batch_ratios():
    m = Precision()
    m.update_state([[1]], [[0.9]])                    # tp 1
    m.update_state([[0], [0], [0]], [[0.9]] * 3)      # fp 3
    assert m.result() == 0.25                         # 1 / 4, not mean(1, 0) = 0.5
    assert Recall().result() == 0.0                   # divide_no_nan before any update


def test_class_id_and_top_k(binary):
    y, p = binary
    m = Precision(class_id=1)
    m.update_state(y, p)
    tp, fp, _, _ = _counts(y[:, 1], p[:, 1], [0.5])
    assert m.result() == pytest.approx(tp[0] / (tp[0] + fp[0]))
    # top_k=1: only each row's largest prediction can be positive (threshold NEG_INF: it always is)
    m = Precision(top_k=1)
    m.update_state(y, p)
    best = p.argmax(axis=1)
    assert m.result() == pytest.approx(np.mean(y[np.arange(60), best]))
    # top_k then class_id: column 2 counts as predicted only where it is the row's largest
    m = Recall(top_k=1, class_id=2)
    m.update_state(y, p)
    predicted = best == 2
    assert m.result() == pytest.approx(np.sum(predicted & (y[:, 2] == 1)) / np.sum(y[:, 2] == 1))


# ----------------------------------------------------------------------------- AUC
def test_roc_auc_is_exact_for_predictions_on_the_threshold_grid():
    rng = np.random.default_rng(2)
    p = rng.choice([0.1, 0.4, 0.4, 0.7, 0.9], 200)
    y = (rng.random(200) < p).astype(np.float32)
    m = AUC(num_thresholds=11)  # thresholds at 0.1 steps: the trapezoids are exactly the Mann-Whitney AUC
    m.update_state(y, p)
    assert m.result() == pytest.approx(_mann_whitney(y, p), abs=1e-12)


@pytest.mark.parametrize("summation", ["interpolation", "minoring", "majoring"])
def test_roc_auc_matches_keras_definition_and_approximates_the_exact_auc(summation):
    rng = np.random.default_rng(3)
    p = rng.random(500).astype(np.float32)
    y = (rng.random(500) < p).astype(np.float32)
    w = rng.random(500)
    m = AUC(summation_method=summation)
    m.update_state(y[:200], p[:200], sample_weight=w[:200])
    m.update_state(y[200:], p[200:], sample_weight=w[200:])
    assert m.result() == pytest.approx(_roc_auc(y, p, w=w, summation=summation), abs=1e-12)
    unweighted = AUC()
    unweighted.update_state(y, p)
    assert unweighted.result() == pytest.approx(_mann_whitney(y, p), abs=5e-3)


def test_pr_auc_interpolation_and_majoring():
    rng = np.random.default_rng(4)
    p = rng.random(300).astype(np.float32)
    y = (rng.random(300) < p ** 2).astype(np.float32)
    m = AUC(curve="PR", num_thresholds=50)
    m.update_state(y, p)
    assert m.result() == pytest.approx(_pr_auc_interpolated(y, p, 50), abs=1e-12)
    tp, fp, _, fn = _counts(y, p, _keras_thresholds(50))
    recall, precision = _ratio(tp, tp + fn), _ratio(tp, tp + fp)
    m = AUC(curve="pr", summation_method="majoring", num_thresholds=50)
    m.update_state(y, p)
    assert m.result() == pytest.approx(np.sum((recall[:-1] - recall[1:]) * np.maximum(precision[:-1],
                                                                                        precision[1:])), abs=1e-12)


def test_multi_label_label_weights_logits_and_clipping():
    rng = np.random.default_rng(5)
    p = rng.random((100, 3)).astype(np.float32)
    y = (rng.random((100, 3)) < p).astype(np.float32)
    per_label = [_roc_auc(y[:, j], p[:, j]) for j in range(3)]
    m = AUC(multi_label=True, num_labels=3)
    m.update_state(y, p)
    assert m.result() == pytest.approx(np.mean(per_label), abs=1e-12)
    m = AUC(multi_label=True, label_weights=[1.0, 3.0, 0.0])
    m.update_state(y, p)
    assert m.result() == pytest.approx((per_label[0] + 3 * per_label[1]) / 4, abs=1e-12)
    flat = AUC(label_weights=[1.0, 3.0, 0.0])  # not multi-label: the weights weight the flattened entries
    flat.update_state(y, p)
    assert flat.result() == pytest.approx(_roc_auc(y, p, w=np.tile([1.0, 3.0, 0.0], 100)), abs=1e-12)
    logits = np.log(p / (1 - p))
    m = AUC(from_logits=True)
    m.update_state(y, logits)
    assert m.result() == pytest.approx(_roc_auc(y, p), abs=1e-6)
    m = AUC()
    m.update_state([[1], [0]], [[7.0], [-3.0]])  # evenly spaced thresholds: predictions clipped to [0, 1]
    assert m.result() == 1.0 and m.thresholds[0] == -1e-7 and m.thresholds[-1] == 1 + 1e-7
    m = AUC(thresholds=[0.6, 0.2])  # explicit thresholds are sorted and framed by -eps and 1+eps
    assert m.thresholds == [-1e-7, 0.2, 0.6, 1 + 1e-7] and m.num_thresholds == 4


# ----------------------------------------------------------------------------- API, configs, errors
def test_strings_names_and_configs():
    for name, cls in (("precision", Precision), ("recall", Recall), ("auc", AUC), ("AUC", AUC)):
        m = metrics.get(name)
        assert type(m) is cls and m.name == name and m.direction == "up"
    for m in (Precision(thresholds=[0.3, 0.6], class_id=1, name="p"), Recall(top_k=2),
              AUC(num_thresholds=20, curve="PR", summation_method="minoring", multi_label=True,
                  label_weights=[1.0, 2.0], from_logits=True), AUC(thresholds=[0.2, 0.5])):
        config = m.get_config()
        assert type(m).from_config(config).get_config() == config


@pytest.mark.parametrize("make, match", [
    (lambda: Precision(thresholds=1.5), r"Precision: threshold values must be in \[0, 1\]"),
    (lambda: Recall(thresholds=[0.5, None]), r"Recall: threshold values must be in \[0, 1\]"),
    (lambda: Precision(top_k=0), r"`top_k` must be a positive integer"),
    (lambda: Recall(class_id=-1), r"`class_id` must be a non-negative integer"),
    (lambda: AUC(num_thresholds=1), r"`num_thresholds` must be an integer > 1"),
    (lambda: AUC(curve="ROCK"), r'invalid `curve` value: "ROCK"'),
    (lambda: AUC(summation_method="riemann"), r'invalid `summation_method` value: "riemann"'),
    (lambda: AUC(num_labels=3), r"`num_labels` is needed only when `multi_label` is True"),
    (lambda: AUC(label_weights=[-1.0]), r"`label_weights` must be a 1-D list of non-negative numbers"),
])
def test_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_updates():
    with pytest.raises(ValueError, match=r"must have the shape of `y_pred`, \(2, 3\).*to_categorical\(y, 3\)"):
        Precision().update_state([0, 2], np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"`class_id=3` is out of range for predictions with 3 classes"):
        Recall(class_id=3).update_state(np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"`top_k=4` is larger than the 3 predictions"):
        Precision(top_k=4).update_state(np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"`sample_weight` must be a number, one weight per sample \(2,\)"):
        AUC().update_state([0, 1], [0.2, 0.8], sample_weight=[1.0])
    with pytest.raises(ValueError, match=r"`label_weights` has 2 entries for predictions with 3 labels"):
        AUC(label_weights=[1, 1]).update_state(np.zeros((2, 3)), np.zeros((2, 3)))
    m = AUC(multi_label=True)
    m.update_state(np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"received predictions with 2 labels after 3"):
        m.update_state(np.zeros((2, 2)), np.zeros((2, 2)))


# ----------------------------------------------------------------------------- in compile / fit / evaluate
def _binary_model():
    fastnn.backend.clear_session()
    set_random_seed(0)
    model = Sequential([Dense(4, activation="relu", input_shape=(3,)), Dense(1, activation="sigmoid")])
    model.compile("sgd", "binary_crossentropy", metrics=["precision", Recall(thresholds=[0.3, 0.6]), "auc"])
    return model


def _binary_data(n=40):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((n, 3)).astype(np.float32)
    return x, (x[:, 0] + 0.3 * rng.standard_normal(n) > 0).astype(np.float32)


def _standalone(metric, y, p):
    metric.reset_state()
    metric.update_state(y, p)
    return metric.result()


def test_fit_reports_epoch_totals_and_validation_matches_standalone_metrics():
    x, y = _binary_data()
    model = _binary_model()
    before = model.predict(x, verbose=0)
    history = model.fit(x, y, batch_size=40, epochs=2, verbose=0, validation_data=(x, y)).history
    assert set(history) == {"loss", "precision", "recall", "auc", "val_loss", "val_precision", "val_recall",
                            "val_auc"}
    # one full batch per epoch: epoch 1's training metrics are those of the initial predictions
    assert history["precision"][0] == pytest.approx(_standalone(Precision(), y, before))
    assert history["auc"][0] == pytest.approx(_standalone(AUC(), y, before))
    np.testing.assert_allclose(history["recall"][0], _standalone(Recall(thresholds=[0.3, 0.6]), y, before))
    after = model.predict(x, verbose=0)
    assert history["val_auc"][-1] == pytest.approx(_standalone(AUC(), y, after))
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    assert logs["precision"] == pytest.approx(_standalone(Precision(), y, after))
    np.testing.assert_allclose(logs["recall"], history["val_recall"][-1])


def test_multi_class_needs_one_hot_targets():
    x, y = _binary_data()
    labels = (y + (x[:, 1] > 1)).astype(int)
    model = Sequential([Dense(3, activation="softmax", input_shape=(3,))])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["auc"])
    with pytest.raises(ValueError, match=r"AUC 'auc' compares each prediction with its own label.*to_categorical"):
        model.fit(x, labels, verbose=0)
    model.compile("adam", "categorical_crossentropy", metrics=[Precision(class_id=2), "auc"])
    model.fit(x, to_categorical(labels, 3), verbose=0)


def test_saved_model_keeps_its_confusion_metrics(tmp_path):
    x, y = _binary_data()
    model = _binary_model()
    model.fit(x, y, epochs=1, verbose=0)
    path = tmp_path / "m.fastnn"
    model.save(path)
    loaded = fastnn.models.load_model(path)
    assert loaded.evaluate(x, y, verbose=0, return_dict=True).keys() == \
        model.evaluate(x, y, verbose=0, return_dict=True).keys()
    np.testing.assert_allclose(loaded.evaluate(x, y, verbose=0, return_dict=True)["recall"],
                               model.evaluate(x, y, verbose=0, return_dict=True)["recall"])


def test_metrics_see_the_labels_not_the_label_smoothed_targets():
    # Keras' metrics get y_true as given; smoothed targets (0 -> 0.1) would all count as positives.
    x, y = _binary_data()
    model = _binary_model()
    model.compile("sgd", fastnn.losses.BinaryCrossentropy(label_smoothing=0.2), metrics=["recall", "precision"])
    before = model.predict(x, verbose=0)
    history = model.fit(x, y, batch_size=40, epochs=1, verbose=0).history
    assert history["precision"][0] == pytest.approx(_standalone(Precision(), y, before))
    assert history["recall"][0] == pytest.approx(_standalone(Recall(), y, before))


class _PerBatchPrecision(Precision):
    rows_additive = False  # fed batch by batch, as a custom metric is


class _PerBatchAUC(AUC):
    rows_additive = False


class _EveryBatch(fastnn.callbacks.Callback):
    """A batch hook: fit then runs one engine call per batch (so calls start at batches other than 0)."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def on_train_batch_end(self, batch, logs=None):
        self.seen.append(dict(logs))


def test_counts_fed_once_per_engine_call_equal_counts_fed_batch_by_batch():
    x, y = _binary_data(203)
    results = []
    for metrics in (["precision", "auc"], [_PerBatchPrecision(name="precision"), _PerBatchAUC(name="auc")]):
        for hook in (None, _EveryBatch()):
            fastnn.backend.clear_session()
            set_random_seed(0)
            model = Sequential([Dense(4, activation="relu", input_shape=(3,)), Dropout(0.3),
                                Dense(1, activation="sigmoid")])
            model.compile("sgd", "binary_crossentropy", metrics=metrics)
            history = model.fit(x, y, batch_size=16, epochs=3, verbose=0, callbacks=hook and [hook]).history
            results.append((history, hook and hook.seen))
    assert results[0][0] == results[1][0] == results[2][0] == results[3][0]
    assert results[1][1] == results[3][1] and len(results[1][1]) == 3 * 13
