"""``plot_history``: training curves from ``model.fit``'s History, best epoch marked.

One panel per quantity (``loss``, then each metric), the training value and,
when there is one, the validation value per epoch, as in the curves of
Deep Learning with Python §4.1 and the TensorFlow overfitting tutorial. The
best epoch is marked on each panel: the epoch with the lowest validation
(else training) loss/error, or the highest accuracy-like metric (names ending
in ``acc``, ``accuracy``, ``auc``, ``precision``, ``recall``; the rule
EarlyStopping's ``mode='auto'`` uses in tf.keras 2.x, docs/keras_semantics.md#monitor-mode).
"""
import math
import numbers
import os

from fastnn.utils._matplotlib import import_pyplot
from fastnn.utils.validation import describe

_MAX_SUFFIXES = ("acc", "accuracy", "auc", "precision", "recall")
# Not training curves: ReduceLROnPlateau / LearningRateScheduler add these keys.
_SKIPPED_BY_DEFAULT = ("lr", "learning_rate")
_TRAIN_COLOUR, _VAL_COLOUR, _BEST_COLOUR = "#1f77b4", "#ff7f0e", "#2ca02c"


def best_epoch(values, name):
    """(index, value) of the best entry of ``values`` for the quantity ``name`` (NaNs ignored)."""
    higher_is_better = name.endswith(_MAX_SUFFIXES)
    best = None
    for i, value in enumerate(values):
        if value is None or math.isnan(value):
            continue
        if best is None or (value > values[best] if higher_is_better else value < values[best]):
            best = i
    return (None, None) if best is None else (best, values[best])


def _history_dict(history):
    data = getattr(history, "history", history)
    if not isinstance(data, dict) or not data:
        raise TypeError("plot_history: argument `history` must be the History returned by `model.fit` (or "
                        f"its `.history` dict of per-epoch lists); received {describe(history)}.")
    clean = {}
    for key, values in data.items():
        if not isinstance(key, str) or isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
            raise TypeError(f"plot_history: `history` must map metric names to per-epoch lists of numbers; "
                            f"entry {key!r} is {describe(values)}.")
        values = list(values)
        if not values or not all(isinstance(v, numbers.Real) for v in values):
            raise TypeError(f"plot_history: `history` must map metric names to per-epoch lists of numbers; "
                            f"entry {key!r} is {describe(values)}.")
        clean[key] = [float(v) for v in values]
    lengths = {key: len(v) for key, v in clean.items() if not key.startswith("val_")} or \
        {key: len(v) for key, v in clean.items()}
    n_epochs = max(lengths.values())
    for key, length in lengths.items():
        if length != n_epochs:
            raise ValueError(f"plot_history: every entry of `history` must hold one value per epoch; {key!r} "
                             f"has {length} values but others have {n_epochs}.")
    for key, values in clean.items():
        if len(values) > n_epochs:
            raise ValueError(f"plot_history: {key!r} has {len(values)} values but the training entries have "
                             f"{n_epochs}, one per epoch.")
    return clean, n_epochs


def _validation_epochs(key, count, epochs):
    """The epochs at which ``count`` validation values were recorded.

    ``fit(validation_freq=k)`` validates after the epochs whose 1-based number is a multiple of k, so the
    values cannot be placed from their count alone when several k give that count; then this raises.
    """
    if count == len(epochs):
        return list(epochs)
    first, last = epochs[0], epochs[-1]
    candidates = [k for k in range(1, last + 1) if last // k - (first - 1) // k == count]
    if len(candidates) != 1:
        raise ValueError(f"plot_history: {key!r} has {count} values for {len(epochs)} epochs, as after "
                         "`fit(validation_freq=k)`, but several k fit that count, so they cannot be placed; "
                         "pass the `.history` dict without the 'val_' entries, or plot them yourself.")
    return [e for e in epochs if e % candidates[0] == 0]


def _metric_names(data, metrics):
    bases = []
    for key in data:
        base = key[4:] if key.startswith("val_") else key
        if base not in bases:
            bases.append(base)
    if metrics is None:
        chosen = [b for b in bases if b not in _SKIPPED_BY_DEFAULT]
        if "loss" in chosen:  # loss first, as Keras logs it
            chosen.remove("loss")
            chosen.insert(0, "loss")
        return chosen or bases
    if isinstance(metrics, str):
        metrics = [metrics]
    if not isinstance(metrics, (list, tuple)) or not metrics or not all(isinstance(m, str) for m in metrics):
        raise TypeError("plot_history: argument `metrics` must be a metric name or a list of names such as "
                        f"['loss', 'accuracy']; received {describe(metrics)}.")
    for name in metrics:
        if name not in bases:
            raise ValueError(f"plot_history: metric {name!r} is not in the history; available: {bases} "
                             "(validation values are drawn with their training metric; pass the name without "
                             "'val_').")
    return list(metrics)


def plot_history(history, metrics=None, to_file=None):
    """Plot loss and metrics per epoch, training vs validation, with the best epoch marked.

    Args:
        history: the ``History`` returned by ``model.fit`` or its ``history``
            dict (``{'loss': [...], 'val_loss': [...], ...}``).
        metrics: name or list of names to plot (without the ``val_`` prefix);
            ``None`` plots ``loss`` and every metric in the history (not the
            learning rate).
        to_file: optional file name; the figure is also saved there (PNG,
            SVG, PDF, ... by extension).

    Returns:
        The matplotlib ``Figure`` (a pyplot figure: ``plt.show()`` displays
        it, Jupyter shows it below the cell, ``plt.close(fig)`` frees it).
    """
    plt = import_pyplot("plot_history")
    if to_file is not None and not isinstance(to_file, (str, os.PathLike)):
        raise TypeError(f"plot_history: argument `to_file` must be a file name; received "
                        f"{describe(to_file)}.")
    data, n_epochs = _history_dict(history)
    names = _metric_names(data, metrics)
    first_epoch = 1
    recorded = getattr(history, "epoch", None)
    if isinstance(recorded, list) and len(recorded) == n_epochs and recorded:
        first_epoch = int(recorded[0]) + 1  # fit(initial_epoch=k) numbers epochs from k + 1
    epochs = list(range(first_epoch, first_epoch + n_epochs))
    val_epochs = {name: _validation_epochs("val_" + name, len(data["val_" + name]), epochs)
                  for name in names if "val_" + name in data}

    cols = min(len(names), 3)
    rows = math.ceil(len(names) / cols)
    fig = plt.figure(figsize=(4.6 * cols, 3.5 * rows))
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[len(names):]:
        ax.set_visible(False)
    for ax, name in zip(axes, names):
        train, val = data.get(name), data.get("val_" + name)
        marker = "o" if n_epochs <= 30 else None
        if train is not None:
            ax.plot(epochs, train, color=_TRAIN_COLOUR, marker=marker, markersize=3.5, label="training")
        if val is not None:
            ax.plot(val_epochs[name], val, color=_VAL_COLOUR, marker=marker, markersize=3.5, linestyle="--",
                    label="validation")
        judged, at, on = (val, val_epochs.get(name), "validation") if val is not None else \
            (train, epochs, "training")
        index, value = best_epoch(judged, name)
        if index is not None:
            # "_"-prefixed labels stay out of the legend; the star's label says it all.
            ax.axvline(at[index], color=_BEST_COLOUR, linewidth=1.0, linestyle=":", label="_best epoch")
            ax.plot([at[index]], [value], marker="*", markersize=12, color=_BEST_COLOUR, linestyle="none",
                    label=f"best epoch {at[index]} ({on} {value:.4g})")
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    fig.tight_layout()
    if to_file is not None:
        fig.savefig(to_file, dpi=100)
    return fig
