#!/usr/bin/env python
"""The regularised MNIST tutorial end to end: BatchNormalization + Dropout vs the same model without them.

    FASTNN_DATA_DIR=/path/to/datasets python bench/bench_regularized.py [--threads N]
        [--epochs 30] [--patience 3] [--n-train N] [--output results.jsonl]

Model (the classic regularised MLP tutorial, ``import fastnn as keras``)::

    Flatten -> Dense(128, relu) -> BatchNormalization -> Dropout(0.2) -> Dense(10, softmax)
    compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    fit(x_train / 255, y_train, epochs=30, validation_split=0.2,
        callbacks=[EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)])

and, measured in the same run (same process, same data, same protocol), the plain model without
BatchNormalization and Dropout. For each: seconds per epoch (the median of epochs 2..N, each timed
from on_epoch_begin to on_epoch_end, so it includes the validation pass; epoch 1 is reported
separately), the epoch EarlyStopping stopped at, the best epoch and the test accuracy. Targets
(issue 4): the regularised model stops on its own, reaches a test accuracy >= 0.975, and costs at
most 1.3x the plain model per epoch. A missed target is reported (``"ok": false`` and a warning),
never hidden. Which training path ran (the fused engine or the layer-by-layer path) is recorded.

Before timing (STYLE.md habit 15) the BatchNormalization and Dropout kernels are checked against
their NumPy twins on a tutorial-sized batch. Output: a human summary, then one JSON line per result
(stdout, and --output), like bench_training.py.
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import JsonLines, environment, load_average, setup_threads  # noqa: E402

TARGET_ACCURACY = 0.975
TARGET_RATIO = 1.3


def parse():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=None, help="threads (default: fastnn's default)")
    p.add_argument("--epochs", type=int, default=30, help="maximum epochs (EarlyStopping usually stops first)")
    p.add_argument("--patience", type=int, default=3, help="EarlyStopping patience")
    p.add_argument("--n-train", type=int, default=None, help="use only the first N training images (smoke runs)")
    p.add_argument("--seed", type=int, default=1, help="set_random_seed before each model")
    p.add_argument("--output", default=None, help="append JSON lines to this file")
    return p.parse_args()


ARGS = parse()
setup_threads(ARGS.threads)

import numpy as np  # noqa: E402

try:
    import fastnn  # noqa: F401  (installed, or on PYTHONPATH)
except ImportError:  # running from a source checkout built with --inplace
    sys.path.insert(1, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
import fastnn as keras  # noqa: E402
from fastnn import _kernels as K  # noqa: E402
from fastnn._kernels import _reference as R  # noqa: E402


def build(regularized):
    layers = [keras.layers.Flatten(input_shape=(28, 28)), keras.layers.Dense(128, activation="relu")]
    if regularized:
        layers += [keras.layers.BatchNormalization(), keras.layers.Dropout(0.2)]
    layers += [keras.layers.Dense(10, activation="softmax")]
    model = keras.Sequential(layers)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


class EpochTimer(keras.callbacks.Callback):
    """Wall time of each epoch, validation included (epoch hooks only: the engine may run chunked)."""

    def __init__(self):
        super().__init__()
        self.seconds = []
        self._t0 = None

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._t0)


def check_kernels():
    """The compiled BatchNormalization/Dropout kernels agree with their twins on a (32, 128) float32 batch."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 128)).astype(np.float32) * 2 + 1
    dy = rng.standard_normal((32, 128)).astype(np.float32)
    gamma, beta = rng.uniform(0.5, 2, 128).astype(np.float32), rng.standard_normal(128).astype(np.float32)
    tol = dict(rtol=1e-5, atol=1e-6)
    got, want = K.batch_norm_forward_train(x, gamma, beta, 1e-3), R.batch_norm_forward_train(x, gamma, beta, 1e-3)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, **tol)
    grads = [np.zeros(128, np.float32) for _ in range(4)]
    np.testing.assert_allclose(K.batch_norm_backward(dy, x, want[1], want[2], gamma, 1e-3, grads[0], grads[1]),
                               R.batch_norm_backward(dy, x, want[1], want[2], gamma, 1e-3, grads[2], grads[3]),
                               **tol)
    np.testing.assert_allclose(grads[0], grads[2], **tol)
    np.testing.assert_allclose(grads[1], grads[3], **tol)
    u = rng.random(x.shape, dtype=np.float32)
    for a, b in zip(K.dropout_forward(x, u, 0.2), R.dropout_forward(x, u, 0.2)):
        np.testing.assert_array_equal(a, b)
    return K.BACKEND


def run(name, regularized, data):
    (x_train, y_train), (x_test, y_test) = data
    keras.utils.set_random_seed(ARGS.seed)
    model = build(regularized)
    timer = EpochTimer()
    stopper = keras.callbacks.EarlyStopping(monitor="val_loss", patience=ARGS.patience, restore_best_weights=True)
    model.build((None, 28, 28))
    path = "engine" if model._engine_specs() is not None else "layers"
    load_before = load_average()
    history = model.fit(x_train, y_train, epochs=ARGS.epochs, batch_size=32, validation_split=0.2, verbose=0,
                        callbacks=[timer, stopper])
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    epochs_run = len(history.history["loss"])
    later = timer.seconds[1:] or timer.seconds
    return {
        "name": "time_fit_epoch",
        "params": {"model": name, "threads": keras.get_num_threads(), "batch_size": 32,
                   "n_train": int(x_train.shape[0] * 0.8) if x_train.shape[0] else 0, "max_epochs": ARGS.epochs,
                   "patience": ARGS.patience, "seed": ARGS.seed},
        "path": path,
        "sec_per_epoch": statistics.median(later),
        "first_epoch_sec": timer.seconds[0],
        "epochs_run": epochs_run,
        "stopped_early": epochs_run < ARGS.epochs,
        "best_epoch": stopper.best_epoch + 1,
        "best_val_loss": float(min(history.history["val_loss"])),
        "test_loss": float(loss),
        "test_accuracy": float(accuracy),
        "load_average_before": load_before,
        "load_average_after": load_average(),
    }


def main():
    env = environment()
    backend = check_kernels()
    (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    if ARGS.n_train:
        x_train, y_train = x_train[:ARGS.n_train], y_train[:ARGS.n_train]
    data = ((x_train / np.float32(255.0)).astype(np.float32), y_train), \
        ((x_test / np.float32(255.0)).astype(np.float32), y_test)
    print(f"kernels: {backend} (BatchNormalization/Dropout checked against the NumPy twins); "
          f"threads: {keras.get_num_threads()}; training images: {int(x_train.shape[0] * 0.8)} "
          f"(validation_split=0.2)", flush=True)
    results = {}
    for name, regularized in (("plain", False), ("regularized", True)):
        results[name] = run(name, regularized, data)
        r = results[name]
        print(f"{name:12s} {r['path']:7s} {r['sec_per_epoch']:7.2f} s/epoch (epoch 1: {r['first_epoch_sec']:.2f} s)"
              f"  stopped after {r['epochs_run']} epochs (best {r['best_epoch']})"
              f"  test accuracy {r['test_accuracy']:.4f}", flush=True)
    reg, plain = results["regularized"], results["plain"]
    ratio = reg["sec_per_epoch"] / plain["sec_per_epoch"]
    checks = {"stops_on_its_own": reg["stopped_early"], "accuracy": reg["test_accuracy"] >= TARGET_ACCURACY,
              "epoch_time_ratio": ratio <= TARGET_RATIO}
    print(f"regularized / plain time per epoch: {ratio:.2f}x (target <= {TARGET_RATIO}x)")
    for what, ok in checks.items():
        if not ok:
            print(f"WARNING: target not met: {what}", file=sys.stderr)
    out = JsonLines(ARGS.output)  # one JSON line per result: stdout and --output
    for r in (plain, reg):
        out.write({**r, "env": env})
    out.write({"name": "ratio_fit_epoch", "params": {"numerator": "regularized", "denominator": "plain"},
               "ratio": ratio, "target": TARGET_RATIO, "target_accuracy": TARGET_ACCURACY, "checks": checks,
               "ok": all(checks.values()), "env": env})
    out.close()


if __name__ == "__main__":
    main()
