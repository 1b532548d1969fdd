"""The MNIST multi-layer perceptron of the Keras/TensorFlow beginner tutorials, with prediction views.

Flatten the 28x28 images, one hidden Dense layer of 128 ReLU units, a
10-way softmax; Adam, sparse categorical cross-entropy, 5 epochs of batch 32
(test accuracy about 0.977). Then, as in TensorFlow's "Basic classification"
tutorial, look at the predictions: one test image beside its class
probabilities, a grid of the first 15 test images, and a grid of 15 mistakes
(blue = right, red = wrong).

    python examples/mnist_mlp.py [--epochs 5] [--samples N] [--output-dir DIR]

``--samples N`` trains on the first N training images only (quick runs).
Saves ``history.png``, ``prediction.png``, ``predictions.png`` and
``mistakes.png`` into the output folder.
"""
import argparse
import os
import sys

import numpy as np

import fastnn as keras

HERE = os.path.dirname(os.path.abspath(__file__))


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5, help="training epochs (tutorial: 5)")
    parser.add_argument("--samples", type=int, default=None, help="train on the first N images only")
    parser.add_argument("--output-dir", default=os.path.join(HERE, "output", "mnist_mlp"),
                        help="folder for the figures")
    parser.add_argument("--seed", type=int, default=1)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.output_dir, exist_ok=True)
    keras.utils.set_random_seed(args.seed)

    (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    x_train, y_train = x_train[:args.samples], y_train[:args.samples]
    x_train, x_test = x_train / 255.0, x_test / 255.0
    print(f"Training on {len(x_train)} images, testing on {len(x_test)}")

    model = keras.Sequential([
        keras.layers.Flatten(input_shape=(28, 28)),
        keras.layers.Dense(128, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.summary()
    history = model.fit(x_train, y_train, epochs=args.epochs, batch_size=32, validation_data=(x_test, y_test))
    test_loss, test_accuracy = model.evaluate(x_test, y_test, verbose=0)

    probabilities = model.predict(x_test, verbose=0)
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != y_test)
    print(f"{len(wrong)} of {len(y_test)} test images are misclassified")

    save(keras.utils.plot_history(history), args.output_dir, "history.png")
    save(keras.utils.plot_prediction(x_test[0], probabilities[0], true_label=y_test[0]),
         args.output_dir, "prediction.png")
    save(keras.utils.plot_predictions(x_test[:15], probabilities[:15], true_labels=y_test[:15], num_cols=3),
         args.output_dir, "predictions.png")
    if len(wrong):
        mistakes = wrong[:15]
        fig = keras.utils.plot_predictions(x_test[mistakes], probabilities[mistakes],
                                           true_labels=y_test[mistakes], num_cols=3)
        save(fig, args.output_dir, "mistakes.png")

    print(f"Final metrics: test_loss={test_loss:.4f} test_accuracy={test_accuracy:.4f} "
          f"misclassified={len(wrong)}")
    return 0


def save(fig, folder, name):
    import matplotlib.pyplot as plt

    path = os.path.join(folder, name)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"Saved {path}")


if __name__ == "__main__":
    sys.exit(main())
