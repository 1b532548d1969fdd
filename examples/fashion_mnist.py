"""Fashion-MNIST with a single softmax layer, then with a hidden layer (TensorFlow's "Basic classification").

Two models on the same clothing images, both Adam + sparse categorical
cross-entropy for 10 epochs:

* ``softmax_only``: Flatten -> Dense(10, softmax), i.e. multinomial logistic
  regression (test accuracy about 0.84);
* ``hidden_layer``: Flatten -> Dense(128, relu) -> Dense(10, softmax), the
  tutorial's model (about 0.88).

Each model's ``summary()`` is printed and drawn with ``plot_model`` (PNG and
SVG, shapes and parameter counts shown); the validation accuracy of both is
compared per epoch, and the hidden-layer model's predictions are shown as the
tutorial's 5 x 3 grid of images beside their class probabilities.

    python examples/fashion_mnist.py [--epochs 10] [--samples N] [--output-dir DIR]

Saves ``softmax_only.png/.svg``, ``hidden_layer.png/.svg``, ``comparison.png``,
``history.png`` and ``predictions.png``.
"""
import argparse
import os
import sys

import fastnn as keras

HERE = os.path.dirname(os.path.abspath(__file__))
CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot"]


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10, help="training epochs (tutorial: 10)")
    parser.add_argument("--samples", type=int, default=None, help="train on the first N images only")
    parser.add_argument("--output-dir", default=os.path.join(HERE, "output", "fashion_mnist"),
                        help="folder for the figures")
    parser.add_argument("--seed", type=int, default=1)
    return parser.parse_args(argv)


def build(name):
    layers = [keras.layers.Flatten(input_shape=(28, 28))]
    if name == "hidden_layer":
        layers.append(keras.layers.Dense(128, activation="relu"))
    layers.append(keras.layers.Dense(10, activation="softmax"))
    model = keras.Sequential(layers, name=name)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.output_dir, exist_ok=True)
    keras.utils.set_random_seed(args.seed)

    (x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data()
    x_train, y_train = x_train[:args.samples], y_train[:args.samples]
    x_train, x_test = x_train / 255.0, x_test / 255.0
    print(f"Training on {len(x_train)} images, testing on {len(x_test)}")

    results, histories = {}, {}
    for name in ("softmax_only", "hidden_layer"):
        model = build(name)
        model.summary()
        for ext in ("png", "svg"):
            path = os.path.join(args.output_dir, f"{name}.{ext}")
            keras.utils.plot_model(model, to_file=path, show_shapes=True, show_params=True,
                                   show_layer_activations=True)
            print(f"Saved {path}")
        histories[name] = model.fit(x_train, y_train, epochs=args.epochs, validation_data=(x_test, y_test))
        results[name] = model.evaluate(x_test, y_test, verbose=0)
        print(f"{name}: test accuracy {results[name][1]:.4f} (test loss {results[name][0]:.4f})")

    import matplotlib.pyplot as plt  # after fastnn.utils picked a backend (Agg when headless)

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for name, colour in (("softmax_only", "#ff7f0e"), ("hidden_layer", "#1f77b4")):
        history = histories[name].history
        epochs = range(1, len(history["accuracy"]) + 1)
        ax.plot(epochs, history["accuracy"], color=colour, linestyle="--", label=f"{name} (training)")
        ax.plot(epochs, history["val_accuracy"], color=colour, marker="o", markersize=3.5,
                label=f"{name} (validation)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy")
    ax.set_title("Fashion-MNIST: one softmax layer vs a hidden layer")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    save(fig, args.output_dir, "comparison.png")
    save(keras.utils.plot_history(histories["hidden_layer"]), args.output_dir, "history.png")

    probabilities = model.predict(x_test[:15], verbose=0)  # the hidden-layer model, trained last
    fig = keras.utils.plot_predictions(x_test[:15], probabilities, true_labels=y_test[:15],
                                       class_names=CLASS_NAMES, num_cols=3)
    save(fig, args.output_dir, "predictions.png")

    print("Final metrics: " + " ".join(f"{name}_test_accuracy={results[name][1]:.4f}" for name in results)
          + " " + " ".join(f"{name}_test_loss={results[name][0]:.4f}" for name in results))
    return 0


def save(fig, folder, name):
    import matplotlib.pyplot as plt

    path = os.path.join(folder, name)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"Saved {path}")


if __name__ == "__main__":
    sys.exit(main())
