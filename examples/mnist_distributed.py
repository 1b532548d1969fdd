"""The MNIST multi-layer perceptron trained data-parallel over MPI processes (issue 16).

    pip install ".[mpi]"
    mpirun -n 2 python examples/mnist_distributed.py [--epochs 5] [--batch-size 64] [--samples N]

(as root: add --allow-run-as-root; on one machine with fewer cores than processes: --oversubscribe; on
several machines: --hostfile hosts). Every process loads the data, takes its contiguous share of each
global batch of --batch-size rows, and the gradients are averaged over the global batch in a fixed order:
the processes end with the same weights, bit for bit, and the test accuracy of one process training with
the same global batch (0.977 with the defaults). Rank 0 prints the progress and saves the model. Run alone
(`python examples/mnist_distributed.py`), it trains in one process.
"""
import argparse
import hashlib
import os
import sys

import fastnn as keras
from fastnn import distribution

HERE = os.path.dirname(os.path.abspath(__file__))


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64, help="the global batch (all processes together)")
    parser.add_argument("--samples", type=int, default=None, help="train on the first N images only")
    parser.add_argument("--output-dir", default=os.path.join(HERE, "output", "mnist_distributed"))
    parser.add_argument("--seed", type=int, default=1)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    distribution.initialize()  # a no-op outside mpirun
    distribution.set_distribution(distribution.DataParallel())
    rank, size = distribution.process_id(), distribution.num_processes()
    keras.utils.set_random_seed(args.seed)  # (rank 0's weights and generators are broadcast by fit anyway)

    (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    x_train, y_train = x_train[:args.samples], y_train[:args.samples]
    x_train, x_test = x_train / 255.0, x_test / 255.0
    if rank == 0:
        print(f"{size} process(es), global batch {args.batch_size} "
              f"({args.batch_size // size}-{-(-args.batch_size // size)} rows per process and step)")

    model = keras.Sequential([
        keras.layers.Flatten(input_shape=(28, 28)),
        keras.layers.Dense(128, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size,
              validation_data=(x_test, y_test), verbose=2)
    test_loss, test_accuracy = model.evaluate(x_test, y_test, verbose=0)  # the same numbers on every rank

    digest = hashlib.sha256(b"".join(w.tobytes() for w in model.get_weights())).hexdigest()[:16]
    print(f"rank {rank}: weights sha256 {digest}", flush=True)
    if rank == 0:
        os.makedirs(args.output_dir, exist_ok=True)
        path = os.path.join(args.output_dir, "mnist.keras")
        model.save(path)  # (model.save is a no-op on the other ranks)
        print(f"Saved {path}")
        print(f"Final metrics: test_loss={test_loss:.4f} test_accuracy={test_accuracy:.4f} processes={size}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
