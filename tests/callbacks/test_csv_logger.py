"""CSVLogger: Keras 3 semantics (K3 callbacks/csv_logger.py)."""
import csv
import pathlib

import numpy as np
import pytest

import fastnn
from fastnn.callbacks import CSVLogger
from fastnn.layers import Dense, Input
from fastnn.utils.rng_utils import set_random_seed


def read_rows(path, separator=","):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f, delimiter=separator))


def log_epochs(logger, epoch_logs):
    logger.on_train_begin()
    for epoch, logs in enumerate(epoch_logs):
        logger.on_epoch_end(epoch, logs)
    logger.on_train_end()


# ---------------------------------------------------------------------------- unit
def test_defaults_and_attributes(tmp_path):
    logger = CSVLogger(tmp_path / "log.csv")
    assert logger.filename == str(tmp_path / "log.csv")
    assert (logger.sep, logger.append) == (",", False)


def test_header_is_epoch_then_sorted_keys_and_rows_end_in_crlf(tmp_path):
    path = tmp_path / "log.csv"
    log_epochs(CSVLogger(str(path)), [{"val_loss": 0.5, "loss": 1.0, "accuracy": 0.25, "val_accuracy": 0.75},
                                      {"val_loss": 0.25, "loss": 0.5, "accuracy": 0.5, "val_accuracy": 1.0}])
    assert path.read_bytes() == (b"epoch,accuracy,loss,val_accuracy,val_loss\r\n"
                                 b"0,0.25,1.0,0.75,0.5\r\n"
                                 b"1,0.5,0.5,1.0,0.25\r\n")


def test_without_validation_keys_val_columns_are_added_and_written_as_na(tmp_path):
    # K3 adds val_<key> columns when the first epoch has none (validation may start later).
    path = tmp_path / "log.csv"
    log_epochs(CSVLogger(path), [{"loss": 1.0}, {"loss": 0.5, "val_loss": 0.75}])
    assert read_rows(path) == [["epoch", "loss", "val_loss"], ["0", "1.0", "NA"], ["1", "0.5", "0.75"]]


def test_keys_missing_in_a_later_epoch_are_na_and_new_keys_are_ignored(tmp_path):
    path = tmp_path / "log.csv"
    log_epochs(CSVLogger(path), [{"loss": 1.0, "val_loss": 2.0}, {"loss": 0.5, "extra": 3.0}])
    assert read_rows(path) == [["epoch", "loss", "val_loss"], ["0", "1.0", "2.0"], ["1", "0.5", "NA"]]


def test_separator(tmp_path):
    path = tmp_path / "log.tsv"
    log_epochs(CSVLogger(path, separator="\t"), [{"loss": 1.0, "val_loss": 2.0}])
    assert path.read_text(encoding="utf-8").splitlines() == ["epoch\tloss\tval_loss", "0\t1.0\t2.0"]


@pytest.mark.parametrize("separator", ["", ";;", None, 1])
def test_bad_separator_raises(tmp_path, separator):
    with pytest.raises(ValueError, match="separator"):
        CSVLogger(tmp_path / "log.csv", separator=separator)


def test_bad_filename_raises():
    with pytest.raises(TypeError, match="filename"):
        CSVLogger(None)


def test_values_written_in_full_precision_and_strings_and_arrays(tmp_path):
    path = tmp_path / "log.csv"
    log_epochs(CSVLogger(path), [{"loss": 0.1 + 0.2, "note": "a,b", "vec": np.array([1, 2]),
                                  "scalar": np.array(0.5), "val_loss": np.float32(0.25)}])
    header, row = read_rows(path)
    values = dict(zip(header, row))
    assert float(values["loss"]) == 0.1 + 0.2
    assert values["note"] == "a,b"  # quoted by the csv module, read back intact
    assert values["vec"] == "[1, 2]"
    assert values["scalar"] == "0.5" and values["val_loss"] == "0.25"


def test_overwrites_by_default(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("old contents\n")
    log_epochs(CSVLogger(path), [{"loss": 1.0, "val_loss": 2.0}])
    assert read_rows(path) == [["epoch", "loss", "val_loss"], ["0", "1.0", "2.0"]]


def test_append_adds_rows_without_a_second_header(tmp_path):
    path = tmp_path / "log.csv"
    log_epochs(CSVLogger(path, append=True), [{"loss": 1.0, "val_loss": 2.0}])  # new file: header written
    log_epochs(CSVLogger(path, append=True), [{"loss": 0.5, "val_loss": 1.5}])
    assert read_rows(path) == [["epoch", "loss", "val_loss"], ["0", "1.0", "2.0"], ["0", "0.5", "1.5"]]


def test_append_to_an_empty_file_writes_the_header(tmp_path):
    path = tmp_path / "log.csv"
    path.touch()
    log_epochs(CSVLogger(path, append=True), [{"loss": 1.0, "val_loss": 2.0}])
    assert read_rows(path)[0] == ["epoch", "loss", "val_loss"]


def test_rows_are_flushed_each_epoch_and_the_file_closed_at_train_end(tmp_path):
    path = tmp_path / "log.csv"
    logger = CSVLogger(path)
    logger.on_train_begin()
    logger.on_epoch_end(0, {"loss": 1.0, "val_loss": 2.0})
    assert len(read_rows(path)) == 2  # readable while training runs
    logger.on_train_end()
    assert logger.csv_file.closed


def test_reused_instance_starts_a_new_file_with_new_keys(tmp_path):
    path = tmp_path / "log.csv"
    logger = CSVLogger(path)
    log_epochs(logger, [{"loss": 1.0}])
    log_epochs(logger, [{"loss": 0.5, "mae": 0.25, "val_loss": 1.0, "val_mae": 0.5}])
    assert read_rows(path) == [["epoch", "loss", "mae", "val_loss", "val_mae"],
                               ["0", "0.5", "0.25", "1.0", "0.5"]]


# ---------------------------------------------------------------------------- through fit
def test_fit_writes_one_row_per_epoch_matching_history(tmp_path):
    rs = np.random.RandomState(0)
    x = rs.randn(40, 3).astype(np.float32)
    y = (x.sum(axis=1, keepdims=True) > 0).astype(np.float32)
    set_random_seed(0)
    model = fastnn.Sequential([Input((3,)), Dense(1, activation="sigmoid")])
    model.compile(optimizer="sgd", loss="binary_crossentropy", metrics=["accuracy"])
    path = pathlib.Path(tmp_path) / "training.log"
    history = model.fit(x, y, epochs=3, verbose=0, validation_split=0.25, callbacks=[CSVLogger(path)])
    header, *rows = read_rows(path)
    assert header == ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]
    assert [row[0] for row in rows] == ["0", "1", "2"]
    for k, key in enumerate(header[1:], start=1):
        assert [float(row[k]) for row in rows] == history.history[key]


def test_fit_with_validation_freq_fills_na(tmp_path):
    x = np.random.RandomState(0).randn(16, 3).astype(np.float32)
    y = x[:, :1].copy()
    set_random_seed(0)
    model = fastnn.Sequential([Input((3,)), Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    path = tmp_path / "log.csv"
    model.fit(x, y, epochs=4, verbose=0, validation_split=0.25, validation_freq=2,
              callbacks=[CSVLogger(path)])
    rows = read_rows(path)
    assert rows[0] == ["epoch", "loss", "val_loss"]
    assert [row[2] == "NA" for row in rows[1:]] == [True, False, True, False]
