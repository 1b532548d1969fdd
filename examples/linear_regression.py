"""The "Hello World" of machine learning: learn y = 2x - 1 from six points.

Reproduces the first exercise of Google's "Intro to TensorFlow for Deep
Learning" / "TensorFlow in Practice" (Laurence Moroney): one Dense unit, SGD,
mean squared error, 500 epochs, then ``model.predict([10.0])``, which comes out
close to, but not exactly, 19 (the network only ever saw six points).

    python examples/linear_regression.py [--epochs 500] [--output-dir DIR]

Saves ``fit.png`` (the points and the learned line) and ``loss.png`` (the loss
per epoch, from ``fastnn.utils.plot_history``) into the output folder.
"""
import argparse
import os
import sys

import numpy as np

import fastnn as keras

HERE = os.path.dirname(os.path.abspath(__file__))


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=500, help="training epochs (tutorial: 500)")
    parser.add_argument("--output-dir", default=os.path.join(HERE, "output", "linear_regression"),
                        help="folder for the figures")
    parser.add_argument("--seed", type=int, default=1)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.output_dir, exist_ok=True)
    keras.utils.set_random_seed(args.seed)

    xs = np.array([-1.0, 0.0, 1.0, 2.0, 3.0, 4.0], dtype=float)
    ys = np.array([-3.0, -1.0, 1.0, 3.0, 5.0, 7.0], dtype=float)

    model = keras.Sequential([keras.layers.Dense(units=1, input_shape=[1])])
    model.compile(optimizer="sgd", loss="mean_squared_error")
    history = model.fit(xs, ys, epochs=args.epochs, verbose=0)

    prediction = float(model.predict(np.array([10.0]), verbose=0)[0, 0])
    kernel, bias = (float(w.ravel()[0]) for w in model.get_weights())
    sign = "-" if bias < 0 else "+"
    print(f"Learned y = {kernel:.4f} x {sign} {abs(bias):.4f} (the data follows y = 2 x - 1)")
    print(f"model.predict([10.0]) = {prediction:.4f} (2 * 10 - 1 = 19)")

    import matplotlib.pyplot as plt  # after fastnn.utils picked a backend (Agg when headless)

    fig = keras.utils.plot_history(history)
    fig.axes[0].set_yscale("log")
    save(fig, args.output_dir, "loss.png")

    fig, ax = plt.subplots(figsize=(5.0, 3.6))
    line_x = np.linspace(-2.0, 11.0, 2)
    ax.plot(line_x, 2 * line_x - 1, color="#9e9e9e", linestyle="--", label="y = 2x - 1")
    ax.plot(line_x, model.predict(line_x, verbose=0)[:, 0], color="#1f77b4", label="model")
    ax.plot(xs, ys, "o", color="#1f77b4", label="training points")
    ax.plot([10.0], [prediction], "*", markersize=12, color="#d62728",
            label=f"predict(10) = {prediction:.3f}")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    save(fig, args.output_dir, "fit.png")

    print(f"Final metrics: loss={history.history['loss'][-1]:.6f} prediction_at_10={prediction:.4f} "
          f"kernel={kernel:.4f} bias={bias:.4f}")
    return 0


def save(fig, folder, name):
    import matplotlib.pyplot as plt

    path = os.path.join(folder, name)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"Saved {path}")


if __name__ == "__main__":
    sys.exit(main())
