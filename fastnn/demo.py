"""The demo: train the Keras tutorial's MNIST MLP and print its test accuracy.

    fastnn-demo [--epochs 5] [--batch-size 32] [--sample]     (or: python -m fastnn.demo)

It reads MNIST the way ``fastnn.datasets.mnist.load_data()`` does (explicit
files, ``$FASTNN_DATA_DIR``, Keras' cache, fastnn's cache, else a download).
With no files and no network it trains on the real-MNIST sample bundled with
fastnn (5,000 training images) and says so.
"""
import argparse
import sys
import time

import fastnn as keras
from fastnn import _kernels as K
from fastnn.datasets import mnist
from fastnn.datasets._files import DatasetNotFoundError


def load_mnist(force_sample=False):
    """((x_train, y_train), (x_test, y_test)) and a description of where they came from."""
    if not force_sample:
        try:
            return mnist.load_data(), "MNIST (60,000 training / 10,000 test images)"
        except DatasetNotFoundError as exc:
            print(f"Full MNIST not available ({str(exc).splitlines()[0]})", file=sys.stderr)
    return mnist.load_sample(), "the bundled MNIST sample (5,000 training / 1,000 test images)"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="fastnn-demo", description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--sample", action="store_true", help="train on the bundled 5,000-image sample")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    keras.utils.set_random_seed(args.seed)
    ((x_train, y_train), (x_test, y_test)), source = load_mnist(args.sample)
    print(f"Training on {source} with fastnn {keras.__version__} ({K.BACKEND} kernels, "
          f"{keras.get_num_threads()} threads)")

    model = keras.Sequential([
        keras.layers.Flatten(input_shape=(28, 28)),
        keras.layers.Dense(128, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.summary()
    start = time.perf_counter()
    model.fit(x_train / 255.0, y_train, epochs=args.epochs, batch_size=args.batch_size,
              validation_data=(x_test / 255.0, y_test))
    seconds = time.perf_counter() - start
    loss, accuracy = model.evaluate(x_test / 255.0, y_test, verbose=0)
    print(f"Trained {args.epochs} epochs in {seconds:.2f} s ({seconds / args.epochs:.3f} s/epoch, "
          "validation included).")
    print(f"Test accuracy: {accuracy:.4f} (test loss {loss:.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
