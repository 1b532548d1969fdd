"""plot_prediction / plot_predictions: image beside class-probability bars, coloured right/wrong."""
import sys

import numpy as np
import pytest

from _images import png_pixels, png_size
from fastnn.utils import plot_prediction, plot_predictions
from fastnn.utils.prediction_view import RIGHT_COLOUR, WRONG_COLOUR

plt = pytest.importorskip("matplotlib.pyplot")
to_hex = pytest.importorskip("matplotlib.colors").to_hex
GREY = "#9e9e9e"


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def _probs(n, k=10, seed=0):
    return np.random.default_rng(seed).dirichlet(np.full(k, 0.3), size=n)


def _digits(n, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, 28, 28), dtype=np.uint8)


def _bar_colours(ax):
    return [to_hex(p.get_facecolor()) for p in ax.patches]


def test_single_view_right_prediction(tmp_path):
    probs = np.full(10, 0.02)
    probs[7] = 0.82
    fig = plot_prediction(_digits(1)[0], probs, true_label=7, to_file=tmp_path / "p.png")
    ax_img, ax_bar = fig.axes
    assert len(ax_img.get_images()) == 1 and ax_img.get_images()[0].get_array().shape == (28, 28)
    colours = _bar_colours(ax_bar)
    assert len(colours) == 10
    assert colours[7] == RIGHT_COLOUR and colours.count(GREY) == 9
    np.testing.assert_allclose([p.get_height() for p in ax_bar.patches], probs)
    label = ax_img.xaxis.get_label()
    assert label.get_text() == "predicted: 7 (82.0%)\ntrue: 7" and to_hex(label.get_color()) == RIGHT_COLOUR
    width, height = png_size(tmp_path / "p.png")
    assert (width, height) == (700, 320)
    pixels = png_pixels(tmp_path / "p.png")
    blue = np.array([0x1F, 0x77, 0xB4]) / 255
    assert np.all(np.abs(pixels - blue) < 0.02, axis=-1).sum() > 500  # the tall blue bar is in the image


def test_single_view_wrong_prediction_with_class_names():
    names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
             "Ankle boot"]
    probs = np.full(10, 0.05)
    probs[6] = 0.55
    fig = plot_prediction(_digits(1)[0] / 255.0, probs, true_label=np.int64(0), class_names=names)
    ax_img, ax_bar = fig.axes
    colours = _bar_colours(ax_bar)
    assert colours[6] == WRONG_COLOUR and colours[0] == RIGHT_COLOUR and colours.count(GREY) == 8
    label = ax_img.xaxis.get_label()
    assert label.get_text() == "predicted: Shirt (55.0%)\ntrue: T-shirt/top"
    assert to_hex(label.get_color()) == WRONG_COLOUR
    assert [t.get_text() for t in ax_bar.get_xticklabels()] == names


def test_single_view_without_truth_flat_image_and_one_hot_label():
    probs = _probs(1)[0]
    fig = plot_prediction(_digits(1)[0].reshape(784), probs)
    assert fig.axes[0].get_images()[0].get_array().shape == (28, 28)
    assert fig.axes[0].xaxis.get_label().get_text().startswith(f"predicted: {probs.argmax()} (")
    assert _bar_colours(fig.axes[1]).count(GREY) == 9
    one_hot = np.eye(10)[3]
    fig = plot_prediction(_digits(1)[0], probs, true_label=one_hot)
    assert fig.axes[0].xaxis.get_label().get_text().endswith("\ntrue: 3")


def test_sigmoid_output_is_shown_as_two_classes():
    fig = plot_prediction(_digits(1)[0], [0.8], true_label=1)
    heights = [p.get_height() for p in fig.axes[1].patches]
    np.testing.assert_allclose(heights, [0.2, 0.8])


def test_grid_counts_axes_bars_and_wrong_captions(tmp_path):
    n = 15
    probs = _probs(n)
    labels = np.random.default_rng(1).integers(0, 10, size=n)
    fig = plot_predictions(_digits(n), probs, true_labels=labels, num_cols=3, to_file=tmp_path / "g.png")
    assert len(fig.axes) == 2 * n
    images, bars = fig.axes[0::2], fig.axes[1::2]
    assert all(len(ax.get_images()) == 1 for ax in images)
    assert all(len(ax.patches) == 10 for ax in bars)
    wrong = probs.argmax(axis=1) != labels
    captions = [ax.xaxis.get_label() for ax in images]
    assert [to_hex(c.get_color()) == WRONG_COLOUR for c in captions] == list(wrong)
    for i, caption in enumerate(captions):
        assert caption.get_text() == f"{probs[i].argmax()} {100 * probs[i].max():.0f}% ({labels[i]})"
        colours = _bar_colours(bars[i])
        assert colours[labels[i]] == RIGHT_COLOUR
        assert colours[probs[i].argmax()] == (WRONG_COLOUR if wrong[i] else RIGHT_COLOUR)
    # 5 rows of 3 samples, laid out left to right then down
    rows = sorted({round(ax.get_position().y0, 3) for ax in images})
    assert len(rows) == 5
    assert png_size(tmp_path / "g.png") == (round(4.4 * 3 * 100), round(2.2 * 5 * 100))


def test_grid_rgb_one_hot_labels_and_fewer_images_than_columns():
    rgb = np.random.default_rng(0).random((2, 8, 8, 3))
    fig = plot_predictions(rgb, _probs(2, k=3), true_labels=np.eye(3)[[0, 2]], num_cols=5)
    assert len(fig.axes) == 4
    assert fig.axes[0].get_images()[0].get_array().shape == (8, 8, 3)


@pytest.mark.parametrize("call, message", [
    (lambda: plot_prediction(_digits(1)[0], np.linspace(-2, 3, 10)),
     r"must hold class probabilities .*received values in \[-2, 3\].*apply fastnn\.activations\.softmax"),
    (lambda: plot_prediction(_digits(1)[0], _probs(2)),
     r"`probabilities` must have shape \(num_classes,\); received shape \(2, 10\)"),
    (lambda: plot_prediction(np.zeros(700), _probs(1)[0]),
     r"`image` must have shape .*received shape \(700,\), whose 700 values per image are not a square image"),
    (lambda: plot_prediction(np.zeros((2, 3, 4, 5)), _probs(1)[0]), r"`image` must have shape"),
    (lambda: plot_prediction(_digits(1)[0], _probs(1)[0], true_label=10),
     r"`true_label` must hold class ids in \[0, 9\] \(10 classes\); received values in \[10, 10\]"),
    (lambda: plot_prediction(_digits(1)[0], _probs(1)[0], true_label=2.5), r"`true_label` must hold integer"),
    (lambda: plot_prediction(_digits(1)[0], _probs(1)[0], class_names=["a", "b"]),
     r"`class_names` must be a list of 10 names, one per class; received \['a', 'b'\]"),
    (lambda: plot_predictions(_digits(3), _probs(4)),
     r"`probabilities` must have shape \(3, num_classes\), one row per image; received shape \(4, 10\)"),
    (lambda: plot_predictions(_digits(3), _probs(3), true_labels=[1, 2]),
     r"`true_labels` must be of shape \(3,\) \(class ids\) or \(3, 10\) \(one-hot\)"),
    (lambda: plot_predictions(_digits(3), _probs(3), num_cols=0), r"`num_cols` must be a positive integer"),
    (lambda: plot_predictions(np.zeros((0, 28, 28)), np.zeros((0, 10))), r"`images` must hold at least one"),
    (lambda: plot_predictions(["a"], _probs(1)), r"`images` must be a numeric array"),
    (lambda: plot_predictions(_digits(1), _probs(1), to_file=1), r"`to_file` must be a file name"),
])
def test_bad_arguments(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()
    assert plt.get_fignums() == []


def test_without_matplotlib_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    for fn in (plot_prediction, plot_predictions):
        message = rf"{fn.__name__} needs matplotlib.*pip install \"fastnn\[plot\]\""
        with pytest.raises(ImportError, match=message):
            fn(_digits(1), _probs(1))
