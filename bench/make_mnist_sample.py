"""Regenerate fastnn/datasets/data/mnist_sample.npz, the MNIST sample bundled with fastnn.

The sample is the first 5,000 training and the first 1,000 test images of real
MNIST, with their labels, in the layout of Keras' mnist.npz. It lets the demo
and the README example run offline; ``fastnn.datasets.mnist.load_sample()``
reads it.

    python bench/make_mnist_sample.py [MNIST_DIR]

MNIST_DIR is anything ``mnist.load_data(path=...)`` accepts (a folder holding
the four IDX files, directly or in mnist/, or Keras' mnist.npz); without it
the usual lookup applies ($FASTNN_DATA_DIR, ~/.keras/datasets, ...).
"""
import os
import sys

import numpy as np

N_TRAIN, N_TEST = 5000, 1000
MAX_BYTES = 2 * 1024 * 1024
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "fastnn", "datasets", "data",
                   "mnist_sample.npz")


def main(argv):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
    from fastnn.datasets import mnist

    (x_train, y_train), (x_test, y_test) = mnist.load_data(argv[1] if len(argv) > 1 else "mnist.npz")
    out = os.path.normpath(OUT)
    np.savez_compressed(out, x_train=x_train[:N_TRAIN], y_train=y_train[:N_TRAIN], x_test=x_test[:N_TEST],
                        y_test=y_test[:N_TEST])
    size = os.path.getsize(out)
    if size >= MAX_BYTES:
        raise SystemExit(f"{out} is {size} bytes; the bundled sample must stay below {MAX_BYTES}.")
    print(f"wrote {out}: {N_TRAIN} train + {N_TEST} test images, {size} bytes")


if __name__ == "__main__":
    main(sys.argv)
