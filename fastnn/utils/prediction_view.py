"""Prediction views for image classifiers: the image beside its class probabilities.

The views of TensorFlow's "Basic classification" tutorial (its ``plot_image``
and ``plot_value_array`` helpers), as library functions: the image, labelled
with the predicted class, its probability and the true class, beside a bar
chart of all class probabilities; the predicted bar is blue when it is the
true class and red when it is not, and the true class's bar is blue.
``plot_prediction`` draws one sample, ``plot_predictions`` a grid.
"""
import math
import numbers
import os

import numpy as np

from fastnn.utils._matplotlib import import_pyplot
from fastnn.utils.validation import describe, shape_str

RIGHT_COLOUR = "#1f77b4"  # blue, as in the TensorFlow tutorial
WRONG_COLOUR = "#d62728"  # red
_BAR_COLOUR = "#9e9e9e"
_NEUTRAL_COLOUR = "#424242"  # predicted bar when the true class is unknown


# --------------------------------------------------------------------------- checks
def _images(owner, images, single):
    arg = "`image`" if single else "`images`"
    if not _numeric(images):
        raise TypeError(f"{owner}: argument {arg} must be a numeric array; received {describe(images)}.")
    arr = np.asarray(images)
    batch = arr[None] if single else arr
    expected = ("(height, width), (height, width, 1|3|4) or a flat (height*width,) vector" if single else
                "(n, height, width), (n, height, width, 1|3|4) or flat (n, height*width)")
    if batch.ndim == 2:  # flat vectors: square grayscale images (MNIST's 784 = 28 x 28)
        side = int(round(math.sqrt(batch.shape[1])))
        if side * side != batch.shape[1]:
            raise ValueError(f"{owner}: argument {arg} must have shape {expected}; received shape "
                             f"{shape_str(arr.shape)}, whose {batch.shape[1]} values per image are not a "
                             "square image. Reshape them to (height, width) first.")
        batch = batch.reshape(batch.shape[0], side, side)
    if batch.ndim == 4 and batch.shape[-1] == 1:
        batch = batch[..., 0]
    if not (batch.ndim == 3 or (batch.ndim == 4 and batch.shape[-1] in (3, 4))):
        raise ValueError(f"{owner}: argument {arg} must have shape {expected}; received shape "
                         f"{shape_str(arr.shape)}.")
    return batch


def _probabilities(owner, probabilities, n, single):
    name = "probabilities"
    arr = np.asarray(probabilities, dtype=np.float64) if _numeric(probabilities) else None
    if arr is None:
        raise TypeError(f"{owner}: argument `{name}` must be a numeric array of class probabilities; "
                        f"received {describe(probabilities)}.")
    batch = arr[None] if single else arr
    expected = "(num_classes,)" if single else f"({n}, num_classes), one row per image"
    if batch.ndim != 2 or batch.shape[0] != n:
        raise ValueError(f"{owner}: argument `{name}` must have shape {expected}; received shape "
                         f"{shape_str(arr.shape)}.")
    if batch.shape[1] == 1:  # one sigmoid output: P(class 1); show both classes
        batch = np.concatenate([1.0 - batch, batch], axis=1)
    if not np.all(np.isfinite(batch)):
        raise ValueError(f"{owner}: argument `{name}` contains NaN or infinite values.")
    low, high = batch.min(), batch.max()
    sums = batch.sum(axis=1)
    if low < -1e-6 or high > 1 + 1e-6 or np.max(np.abs(sums - 1.0)) > 1e-3:
        raise ValueError(f"{owner}: argument `{name}` must hold class probabilities (each row in [0, 1], "
                         "summing to 1, e.g. the output of a softmax layer); received values in "
                         f"[{low:.4g}, {high:.4g}] with row sums in [{sums.min():.4g}, {sums.max():.4g}]. If "
                         "the model outputs logits (a last Dense layer without activation), apply "
                         "fastnn.activations.softmax first.")
    return batch


def _numeric(value):
    try:
        arr = np.asarray(value)
    except Exception:  # ragged lists and the like
        return False
    return arr.dtype != object and (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool)


def _labels(owner, labels, n, num_classes, single):
    if labels is None:
        return None
    name = "true_label" if single else "true_labels"
    if not _numeric(labels):
        raise TypeError(f"{owner}: argument `{name}` must hold integer class ids; received "
                        f"{describe(labels)}.")
    batch = np.asarray(labels)
    if single:  # a class id, or a one-hot vector
        batch = batch.reshape(1) if batch.ndim == 0 else batch.reshape(1, -1) if batch.ndim == 1 and \
            batch.shape[0] == num_classes else batch
    if batch.shape == (n, num_classes):  # one-hot rows
        batch = batch.argmax(axis=1)
    elif batch.shape == (n, 1):
        batch = batch[:, 0]
    if batch.shape != (n,):
        expected = (f"an integer class id (or a one-hot vector of {num_classes})" if single else
                    f"of shape ({n},) (class ids) or ({n}, {num_classes}) (one-hot)")
        raise ValueError(f"{owner}: argument `{name}` must be {expected}; received {describe(labels)}.")
    if not np.all(np.mod(batch, 1) == 0):
        raise ValueError(f"{owner}: argument `{name}` must hold integer class ids; received "
                         f"{describe(labels)}.")
    batch = batch.astype(np.int64)
    if batch.min() < 0 or batch.max() >= num_classes:
        raise ValueError(f"{owner}: argument `{name}` must hold class ids in [0, {num_classes - 1}] "
                         f"({num_classes} classes); received values in [{batch.min()}, {batch.max()}].")
    return batch


def _class_names(owner, class_names, num_classes):
    if class_names is None:
        return [str(i) for i in range(num_classes)]
    if isinstance(class_names, (str, bytes)) or not hasattr(class_names, "__len__") \
            or len(class_names) != num_classes:
        raise ValueError(f"{owner}: argument `class_names` must be a list of {num_classes} names, one per "
                         f"class; received {describe(class_names)}.")
    return [str(c) for c in class_names]


def _check_to_file(owner, to_file):
    if to_file is not None and not isinstance(to_file, (str, os.PathLike)):
        raise TypeError(f"{owner}: argument `to_file` must be a file name; received {describe(to_file)}.")


# --------------------------------------------------------------------------- drawing
def _draw_image(ax, image, caption, colour, fontsize):
    gray = image.ndim == 2
    scale = 255.0 if image.dtype == np.uint8 or float(np.max(image)) > 1.0 else 1.0
    if gray:
        # 'binary': dark ink on white, as in the tutorial.
        ax.imshow(image, cmap="binary", vmin=0.0, vmax=scale)
    else:
        ax.imshow(np.clip(image / scale, 0.0, 1.0))
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    ax.set_xlabel(caption, color=colour, fontsize=fontsize)


def _draw_bars(ax, probs, predicted, true, names, tick_labels):
    bars = ax.bar(range(len(probs)), probs, color=_BAR_COLOUR)
    if true is None:
        bars[predicted].set_color(_NEUTRAL_COLOUR)
    else:
        bars[predicted].set_color(RIGHT_COLOUR if predicted == true else WRONG_COLOUR)
        bars[true].set_color(RIGHT_COLOUR)
    ax.set_ylim(0.0, 1.0)
    ax.set_xticks(range(len(probs)))
    if tick_labels:
        long_names = max(len(n) for n in names) > 2
        ax.set_xticklabels(names, rotation=60 if long_names else 0, ha="right" if long_names else "center",
                           fontsize="small")
    else:
        ax.set_xticklabels([])
    ax.set_yticks([0.0, 0.5, 1.0] if tick_labels else [])
    return bars


def _verdict(predicted, true, names, confidence, short):
    if short:  # the tutorial's "7 98% (7)"
        text = f"{names[predicted]} {100 * confidence:.0f}%"
        return text + ("" if true is None else f" ({names[true]})")
    text = f"predicted: {names[predicted]} ({100 * confidence:.1f}%)"
    return text + ("" if true is None else f"\ntrue: {names[true]}")


def _colour(predicted, true):
    if true is None:
        return "black"
    return RIGHT_COLOUR if predicted == true else WRONG_COLOUR


# --------------------------------------------------------------------------- public
def plot_prediction(image, probabilities, true_label=None, class_names=None, to_file=None):
    """Draw one image beside a bar chart of its predicted class probabilities.

    Args:
        image: ``(height, width)`` grayscale, ``(height, width, 1|3|4)``, or a
            flat ``(height*width,)`` vector of a square image; uint8 (0-255) or
            float (0-1 or 0-255).
        probabilities: ``(num_classes,)`` class probabilities (e.g. one row of
            ``model.predict``); a single sigmoid output is shown as two classes.
        true_label: optional true class id; the view is then coloured blue
            (right) or red (wrong).
        class_names: optional list of ``num_classes`` names.
        to_file: optional file name to save the figure to.

    Returns:
        The matplotlib ``Figure`` (two axes: the image, the bar chart).
    """
    owner = "plot_prediction"
    plt = import_pyplot(owner)
    _check_to_file(owner, to_file)
    img = _images(owner, image, single=True)[0]
    probs = _probabilities(owner, probabilities, 1, single=True)[0]
    true = _labels(owner, true_label, 1, probs.shape[0], single=True)
    true = None if true is None else int(true[0])
    names = _class_names(owner, class_names, probs.shape[0])
    predicted = int(np.argmax(probs))

    fig = plt.figure(figsize=(7.0, 3.2))
    ax_img, ax_bar = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.0, 1.5]})
    colour = _colour(predicted, true)
    caption = _verdict(predicted, true, names, probs[predicted], short=False)
    _draw_image(ax_img, img, caption, colour, "medium")
    _draw_bars(ax_bar, probs, predicted, true, names, tick_labels=True)
    ax_bar.set_ylabel("probability")
    fig.tight_layout()
    if to_file is not None:
        fig.savefig(to_file, dpi=100)
    return fig


def plot_predictions(images, probabilities, true_labels=None, class_names=None, num_cols=3, to_file=None):
    """Draw a grid of prediction views: each image beside its class-probability bars.

    Args:
        images: ``(n, height, width)``, ``(n, height, width, 1|3|4)`` or flat
            ``(n, height*width)`` square images.
        probabilities: ``(n, num_classes)`` class probabilities, e.g.
            ``model.predict(images)``.
        true_labels: optional ``(n,)`` class ids (or ``(n, num_classes)``
            one-hot); right predictions are blue, wrong ones red.
        class_names: optional list of ``num_classes`` names.
        num_cols: samples per row (each sample takes an image and a bar chart).
        to_file: optional file name to save the figure to.

    Returns:
        The matplotlib ``Figure`` (two axes per sample: image, bar chart).
    """
    owner = "plot_predictions"
    plt = import_pyplot(owner)
    _check_to_file(owner, to_file)
    if isinstance(num_cols, bool) or not isinstance(num_cols, numbers.Integral) or num_cols < 1:
        raise ValueError(f"{owner}: argument `num_cols` must be a positive integer; received "
                         f"{describe(num_cols)}.")
    imgs = _images(owner, images, single=False)
    n = imgs.shape[0]
    if n == 0:
        raise ValueError(f"{owner}: argument `images` must hold at least one image; received shape "
                         f"{shape_str(np.shape(images))}.")
    probs = _probabilities(owner, probabilities, n, single=False)
    true = _labels(owner, true_labels, n, probs.shape[1], single=False)
    names = _class_names(owner, class_names, probs.shape[1])

    cols = min(int(num_cols), n)
    rows = math.ceil(n / cols)
    fig = plt.figure(figsize=(4.4 * cols, 2.2 * rows))
    grid = fig.add_gridspec(rows, 2 * cols, width_ratios=[1.0, 1.2] * cols)
    for i in range(n):
        r, c = divmod(i, cols)
        predicted = int(np.argmax(probs[i]))
        t = None if true is None else int(true[i])
        ax_img = fig.add_subplot(grid[r, 2 * c])
        ax_bar = fig.add_subplot(grid[r, 2 * c + 1])
        _draw_image(ax_img, imgs[i], _verdict(predicted, t, names, probs[i, predicted], short=True),
                    _colour(predicted, t), "small")
        _draw_bars(ax_bar, probs[i], predicted, t, names, tick_labels=False)
    fig.tight_layout()
    if to_file is not None:
        fig.savefig(to_file, dpi=100)
    return fig
