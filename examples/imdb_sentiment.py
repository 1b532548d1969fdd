"""IMDB movie-review sentiment, and how to see overfitting (Deep Learning with Python, §4.1).

Reviews become multi-hot vectors over the 10,000 most frequent words; a
16-16-1 network (ReLU, ReLU, sigmoid) is trained with RMSprop and binary
cross-entropy for 20 epochs of batch 512, holding out the first 10,000
training reviews for validation. The training curves show the classic
picture: training loss keeps falling, validation loss is lowest after a few
epochs (around the 4th) and then rises, because the model starts to memorise
the training reviews. The script finds that best epoch, then retrains a
fresh model for that many epochs on all 25,000 training reviews and reports
its test accuracy (about 0.88).

    python examples/imdb_sentiment.py [--epochs 20] [--samples N] [--output-dir DIR]

``--samples N`` uses the first N training reviews (the first 40 % of them for
validation, as 10,000 of 25,000). Saves ``history.png``.
"""
import argparse
import os
import sys

import fastnn as keras
from fastnn.utils.training_curves import best_epoch

HERE = os.path.dirname(os.path.abspath(__file__))
NUM_WORDS = 10000


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20, help="epochs of the first run (book: 20)")
    parser.add_argument("--samples", type=int, default=None, help="use the first N training reviews only")
    parser.add_argument("--output-dir", default=os.path.join(HERE, "output", "imdb_sentiment"),
                        help="folder for the figures")
    parser.add_argument("--seed", type=int, default=1)
    return parser.parse_args(argv)


def build():
    model = keras.Sequential([
        keras.layers.Dense(16, activation="relu", input_shape=(NUM_WORDS,)),
        keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(1, activation="sigmoid"),
    ])
    model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["accuracy"])
    return model


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.output_dir, exist_ok=True)
    keras.utils.set_random_seed(args.seed)

    (train_data, train_labels), (test_data, test_labels) = keras.datasets.imdb.load_data(num_words=NUM_WORDS)
    train_data, train_labels = train_data[:args.samples], train_labels[:args.samples]
    x_train = keras.utils.multi_hot(train_data, NUM_WORDS)  # scipy.sparse CSR, float32
    x_test = keras.utils.multi_hot(test_data, NUM_WORDS)
    y_train, y_test = train_labels.astype("float32"), test_labels.astype("float32")

    n_val = round(0.4 * x_train.shape[0])  # 10,000 of 25,000, as in the book
    x_val, partial_x_train = x_train[:n_val], x_train[n_val:]
    y_val, partial_y_train = y_train[:n_val], y_train[n_val:]
    print(f"Training on {partial_x_train.shape[0]} reviews, validating on {n_val}, "
          f"testing on {x_test.shape[0]}")

    model = build()
    history = model.fit(partial_x_train, partial_y_train, epochs=args.epochs, batch_size=512,
                        validation_data=(x_val, y_val))
    path = os.path.join(args.output_dir, "history.png")
    fig = keras.utils.plot_history(history, to_file=path)
    print(f"Saved {path}")
    import matplotlib.pyplot as plt

    plt.close(fig)

    h = history.history
    best, best_loss = best_epoch(h["val_loss"], "val_loss")
    best += 1  # epochs are numbered from 1
    print()
    print(f"Training loss fell from {h['loss'][0]:.4f} after epoch 1 to {h['loss'][-1]:.4f} after epoch "
          f"{len(h['loss'])}, and training accuracy rose to {h['accuracy'][-1]:.4f}.")
    print(f"Validation loss was lowest after epoch {best} ({best_loss:.4f}, validation accuracy "
          f"{h['val_accuracy'][best - 1]:.4f}) and ended at {h['val_loss'][-1]:.4f}: after epoch {best} the "
          "model overfits, learning the training reviews rather than what makes a review positive.")
    print(f"Retraining a fresh model for {best} epochs on all {x_train.shape[0]} training reviews.")
    print()

    keras.utils.set_random_seed(args.seed)
    final = build()
    final.fit(x_train, y_train, epochs=best, batch_size=512)
    test_loss, test_accuracy = final.evaluate(x_test, y_test, verbose=0)
    print(f"Final metrics: best_epoch={best} best_val_loss={best_loss:.4f} test_loss={test_loss:.4f} "
          f"test_accuracy={test_accuracy:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
