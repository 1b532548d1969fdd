"""plot_history: one panel per quantity, training vs validation lines, the best epoch marked."""
import math
import sys

import numpy as np
import pytest

import fastnn as keras
from _images import parse_svg, png_pixels, png_size
from fastnn.utils import plot_history
from fastnn.utils.training_curves import best_epoch

plt = pytest.importorskip("matplotlib.pyplot")

HISTORY = {
    "loss": [0.9, 0.5, 0.35, 0.25, 0.18, 0.12],
    "accuracy": [0.60, 0.80, 0.86, 0.90, 0.93, 0.95],
    "val_loss": [0.7, 0.45, 0.38, 0.41, 0.47, 0.55],  # best (lowest) at epoch 3
    "val_accuracy": [0.70, 0.83, 0.85, 0.87, 0.86, 0.84],  # best (highest) at epoch 4
    "learning_rate": [1e-3] * 6,
}


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def _lines(ax):
    return {line.get_label(): line for line in ax.get_lines()}


def test_panels_lines_and_best_epochs(tmp_path):
    fig = plot_history(HISTORY, to_file=tmp_path / "h.png")
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["loss", "accuracy"]  # learning_rate is not a training curve
    loss, acc = _lines(axes[0]), _lines(axes[1])
    assert len(axes[0].get_lines()) == 4  # training, validation, best-epoch rule, best-epoch star
    np.testing.assert_array_equal(loss["training"].get_xdata(), [1, 2, 3, 4, 5, 6])
    np.testing.assert_array_equal(loss["training"].get_ydata(), HISTORY["loss"])
    np.testing.assert_array_equal(loss["validation"].get_ydata(), HISTORY["val_loss"])
    star = loss["best epoch 3 (validation 0.38)"]
    assert list(star.get_xdata()) == [3] and list(star.get_ydata()) == [0.38]
    assert list(loss["_best epoch"].get_xdata()) == [3, 3]  # the vertical rule
    assert list(acc["best epoch 4 (validation 0.87)"].get_xdata()) == [4]
    legend = [t.get_text() for t in axes[0].get_legend().get_texts()]
    assert legend == ["training", "validation", "best epoch 3 (validation 0.38)"]
    width, height = png_size(tmp_path / "h.png")
    assert (width, height) == (round(fig.get_figwidth() * 100), round(fig.get_figheight() * 100))
    pixels = png_pixels(tmp_path / "h.png")
    for colour in ("#1f77b4", "#ff7f0e", "#2ca02c"):  # training, validation, best epoch
        rgb = np.array([int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)])
        assert np.all(np.abs(pixels - rgb) < 0.02, axis=-1).sum() > 50, colour


def test_without_validation_the_best_epoch_is_judged_on_training():
    fig = plot_history({"loss": [3.0, 2.0, 2.5], "acc": [0.1, 0.5, 0.4]})
    loss, acc = (_lines(ax) for ax in fig.axes)
    assert set(loss) == {"training", "_best epoch", "best epoch 2 (training 2)"}
    assert "best epoch 2 (training 0.5)" in acc  # 'acc' is maximised, as EarlyStopping's auto mode does


def test_from_a_real_fit_history_with_initial_epoch():
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(64, 3)).astype(np.float32)
    y = x @ np.array([1.0, -2.0, 0.5], dtype=np.float32)
    model = keras.Sequential([keras.layers.Dense(1, input_shape=(3,))])
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    history = model.fit(x, y, epochs=5, initial_epoch=2, validation_split=0.25, verbose=0)
    fig = plot_history(history)
    lines = _lines(fig.axes[0])
    assert [ax.get_title() for ax in fig.axes] == ["loss", "mae"]
    np.testing.assert_array_equal(lines["training"].get_xdata(), [3, 4, 5])  # epochs 3..5, as Keras prints
    np.testing.assert_allclose(lines["validation"].get_ydata(), history.history["val_loss"])


def test_validation_every_few_epochs_is_placed_at_its_epochs():
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(64, 3)).astype(np.float32)
    model = keras.Sequential([keras.layers.Dense(1, input_shape=(3,))])
    model.compile(optimizer="sgd", loss="mse")
    history = model.fit(x, x[:, 0], epochs=7, validation_data=(x, x[:, 0]), validation_freq=3, verbose=0)
    assert len(history.history["val_loss"]) == 2
    lines = _lines(plot_history(history).axes[0])
    assert list(lines["validation"].get_xdata()) == [3, 6]
    np.testing.assert_array_equal(lines["training"].get_xdata(), range(1, 8))
    assert list(lines["_best epoch"].get_xdata())[0] in (3, 6)


def test_metrics_argument_and_wrapping():
    fig = plot_history(HISTORY, metrics="accuracy")
    assert [ax.get_title() for ax in fig.axes] == ["accuracy"]
    many = {f"m{i}": [1.0, 0.5] for i in range(4)}
    fig = plot_history(many)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(fig.axes) == 6 and len(visible) == 4  # 2 rows of 3 panels
    fig = plot_history(HISTORY, metrics=["learning_rate"])
    assert [ax.get_title() for ax in fig.axes] == ["learning_rate"]


def test_nan_epochs_are_skipped_for_the_best_epoch():
    assert best_epoch([math.nan, 0.5, 0.2, math.nan], "loss") == (2, 0.2)
    assert best_epoch([math.nan], "loss") == (None, None)
    fig = plot_history({"loss": [math.nan, math.nan]})
    assert set(_lines(fig.axes[0])) == {"training"}


def test_svg_output(tmp_path):
    plot_history(HISTORY, to_file=tmp_path / "h.svg")
    parse_svg(tmp_path / "h.svg")


@pytest.mark.parametrize("history, kwargs, error, message", [
    ([0.1, 0.2], {}, TypeError, r"must be the History returned by `model.fit`.*received \[0.1, 0.2"),
    ({}, {}, TypeError, r"`history` must be the History"),
    ({"loss": "abc"}, {}, TypeError, r"entry 'loss' is 'abc'"),
    ({"loss": [0.1, None]}, {}, TypeError, r"per-epoch lists of numbers; entry 'loss'"),
    ({"loss": [1.0, 2.0], "acc": [1.0]}, {}, ValueError, r"per epoch; 'acc' has 1 values but others have 2"),
    ({"loss": [1.0], "val_loss": [1.0, 2.0]}, {}, ValueError, r"'val_loss' has 2 values but the training"),
    ({"loss": [1.0] * 10, "val_loss": [1.0, 2.0]}, {}, ValueError,
     r"'val_loss' has 2 values for 10 epochs, as after `fit\(validation_freq=k\)`, but several k fit"),
    (HISTORY, {"metrics": "val_loss"}, ValueError, r"metric 'val_loss' is not in the history; available: "
                                                   r"\['loss', 'accuracy', 'learning_rate'\]"),
    (HISTORY, {"metrics": 3}, TypeError, r"`metrics` must be a metric name or a list of names"),
    (HISTORY, {"to_file": 3}, TypeError, r"`to_file` must be a file name; received 3"),
])
def test_bad_arguments(history, kwargs, error, message):
    with pytest.raises(error, match=message):
        plot_history(history, **kwargs)
    assert plt.get_fignums() == []  # no half-built figure left behind


def test_without_matplotlib_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"plot_history needs matplotlib, which is not installed\. Install "
                                          r"fastnn's plotting extra with `pip install \"fastnn\[plot\]\"`"):
        plot_history(HISTORY)
