"""Engine step of a 784-256-256-256-10 MLP (tanh or relu), batch 64, one thread.

    python bench/bench_tanh_mlp.py [--activation tanh|relu|sigmoid] [--steps 200] [--repeat 7]

Synthetic data: 784 features with 80% zeros (MNIST-like sparsity), 10 classes. Prints one JSON
line: microseconds per train step (min and median of `repeat` runs of `steps` steps each).
The profile that motivated csrc/fastnn_math.h: with glibc's scalar tanhf this model spent ~20%
of a step in __expm1f + __tanhf, and the relu model ran 1.5x faster.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import environment, setup_threads, timeit  # noqa: E402

p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--activation", default="tanh")
p.add_argument("--steps", type=int, default=200)
p.add_argument("--repeat", type=int, default=7)
ARGS = p.parse_args()
setup_threads(1)

import json  # noqa: E402

import numpy as np  # noqa: E402

try:
    import fastnn  # noqa: F401
except ImportError:
    sys.path.insert(1, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
import fastnn  # noqa: E402


def check(model, X):
    """The engine's outputs agree with a NumPy forward pass of the same weights (before any timing)."""
    h = X.astype(np.float64)
    weights = model.get_weights()
    for i in range(0, len(weights), 2):
        h = h @ weights[i] + weights[i + 1]
        if i + 2 < len(weights):
            h = {"tanh": np.tanh, "relu": lambda z: np.maximum(z, 0),
                 "sigmoid": lambda z: 1 / (1 + np.exp(-z))}[ARGS.activation](h)
    p = np.exp(h - h.max(axis=1, keepdims=True))
    expected = p / p.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(model.predict_on_batch(X), expected, rtol=1e-4, atol=1e-5)


def main():
    rng = np.random.default_rng(0)
    S, B = 64 * ARGS.steps, 64
    X = rng.random((S, 784), dtype=np.float32)
    X[rng.random((S, 784)) < 0.8] = 0
    y = rng.integers(0, 10, S)
    model = fastnn.Sequential([fastnn.layers.Input((784,))] +
                              [fastnn.layers.Dense(256, activation=ARGS.activation) for _ in range(3)] +
                              [fastnn.layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.train_on_batch(X[:B], y[:B])  # builds the runner and its engine
    check(model, X[:B])
    engine = model._runner.engine(B)[0]
    engine._force_threads = 1
    order = np.arange(S)
    t = timeit(lambda: engine.train_steps(X, y, order, 0, ARGS.steps, 0, 1e-3), repeat=ARGS.repeat, warmup=1)
    env = environment()
    print(json.dumps({"name": "time_engine_step", "activation": ARGS.activation, "batch": B, "threads": 1,
                      "us_per_step_min": round(t["min"] / ARGS.steps * 1e6, 1),
                      "us_per_step_median": round(t["median"] / ARGS.steps * 1e6, 1),
                      "cpu": env.get("cpu"), "load": os.getloadavg()}))


if __name__ == "__main__":
    main()
