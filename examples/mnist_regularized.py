"""A regularised MNIST MLP trained until EarlyStopping says stop.

Two hidden layers of 256 and 128 ReLU units, each followed by
BatchNormalization and Dropout(0.2); Adam, sparse categorical cross-entropy,
batch 128, up to 50 epochs with 10 % of the training images held out
(``validation_split=0.1``). ``EarlyStopping(monitor="val_loss", patience=3,
restore_best_weights=True)`` ends training three epochs after the validation
loss stopped improving and puts back the weights of the best epoch; the test
accuracy is then about 0.98. The training curves mark that best epoch.

    python examples/mnist_regularized.py [--epochs 50] [--samples N] [--output-dir DIR]

Saves ``history.png`` and ``model.png`` into the output folder.
"""
import argparse
import os
import sys

import fastnn as keras

HERE = os.path.dirname(os.path.abspath(__file__))


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=50, help="maximum epochs (EarlyStopping ends sooner)")
    parser.add_argument("--samples", type=int, default=None, help="train on the first N images only")
    parser.add_argument("--patience", type=int, default=3, help="EarlyStopping patience")
    parser.add_argument("--output-dir", default=os.path.join(HERE, "output", "mnist_regularized"),
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

    model = keras.Sequential([
        keras.layers.Flatten(input_shape=(28, 28)),
        keras.layers.Dense(256, activation="relu"),
        keras.layers.BatchNormalization(),
        keras.layers.Dropout(0.2),
        keras.layers.Dense(128, activation="relu"),
        keras.layers.BatchNormalization(),
        keras.layers.Dropout(0.2),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.summary()
    path = os.path.join(args.output_dir, "model.png")
    keras.utils.plot_model(model, to_file=path, show_shapes=True, show_params=True)
    print(f"Saved {path}")

    early_stopping = keras.callbacks.EarlyStopping(monitor="val_loss", patience=args.patience,
                                                   restore_best_weights=True, verbose=1)
    history = model.fit(x_train, y_train, epochs=args.epochs, batch_size=128, validation_split=0.1,
                        callbacks=[early_stopping])
    epochs_run = len(history.history["loss"])
    best = early_stopping.best_epoch + 1
    test_loss, test_accuracy = model.evaluate(x_test, y_test, verbose=0)
    stopped = "early stopping" if early_stopping.stopped_epoch else "the epoch limit"
    print(f"Trained {epochs_run} epochs (ended by {stopped}); best validation loss "
          f"{early_stopping.best:.4f} after epoch {best}, whose weights were restored.")

    path = os.path.join(args.output_dir, "history.png")
    fig = keras.utils.plot_history(history, to_file=path)
    print(f"Saved {path}")
    import matplotlib.pyplot as plt

    plt.close(fig)
    print(f"Final metrics: epochs_run={epochs_run} best_epoch={best} test_loss={test_loss:.4f} "
          f"test_accuracy={test_accuracy:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
