"""``CSVLogger``: stream the epoch logs to a CSV file, one row per epoch.

Keras 3 semantics (K3 ``keras/src/callbacks/csv_logger.py``), kept exactly
because other tools read these files:

* the file is opened in ``on_train_begin`` (``"w"``, or ``"a"`` with
  ``append=True``) and closed in ``on_train_end``; with ``append=True`` the
  header is written only if the file is missing or empty;
* the columns are ``epoch`` (0-based) then the first epoch's log keys, sorted;
  if that epoch had no ``val_*`` key, ``val_<key>`` columns are added for every
  key, because validation may run on later epochs only (``validation_freq``);
  a key missing from an epoch is written as ``NA``;
* the ``csv.excel`` dialect with the given delimiter, so rows end in ``\\r\\n``
  and fields are quoted only when needed.

Difference: K3 wraps iterable values in literal quotes *and* lets the csv
module quote them again (``\"\"\"[1, 2]\"\"\"``); fastnn writes ``[1, 2]`` and
lets the csv module quote it once.
"""
import collections.abc
import csv
import os

import numpy as np

from fastnn.callbacks.callback import Callback
from fastnn.utils.validation import describe


def _format_value(value):
    if isinstance(value, str):
        return value
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value[()]
    if isinstance(value, collections.abc.Iterable):
        return f"[{', '.join(map(str, value))}]"
    return value


class CSVLogger(Callback):
    """Callback that streams epoch results to a CSV file.

    Args:
        filename: path of the CSV file, e.g. ``"run/log.csv"`` (str or
            path-like).
        separator: string used to separate fields. Defaults to ``","``.
        append: ``True`` appends to an existing file (useful to continue
            training); ``False`` overwrites it. Defaults to ``False``.
    """

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        try:
            self.filename = os.fspath(filename)
        except TypeError:
            raise TypeError(
                f"CSVLogger: argument `filename` must be a path; received {describe(filename)}.") from None
        if not isinstance(separator, str) or len(separator) != 1:
            # The csv module only takes one-character delimiters; say so before training starts.
            raise ValueError(f"CSVLogger: argument `separator` must be a one-character string; received "
                             f"{describe(separator)}.")
        self.sep = separator
        self.append = bool(append)
        self.writer = None
        self.keys = None
        self.append_header = True
        self.csv_file = None

    def on_train_begin(self, logs=None):
        if self.append:
            # An existing non-empty file already has its header.
            self.append_header = not (os.path.isfile(self.filename) and os.path.getsize(self.filename) > 0)
            mode = "a"
        else:
            self.append_header = True
            mode = "w"
        self._close()
        # newline="" as the csv module requires: the dialect writes its own "\r\n".
        self.csv_file = open(self.filename, mode, newline="", encoding="utf-8")
        self.writer = None
        self.keys = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs.keys())
            if self.keys and not any(key.startswith("val_") for key in self.keys):
                self.keys.extend(["val_" + key for key in self.keys])
        if self.writer is None:
            dialect = type("CSVLoggerDialect", (csv.excel,), {"delimiter": self.sep})
            self.writer = csv.DictWriter(self.csv_file, fieldnames=["epoch"] + self.keys, dialect=dialect)
            if self.append_header:
                self.writer.writeheader()
        row = {"epoch": epoch}
        row.update((key, _format_value(logs.get(key, "NA"))) for key in self.keys)
        self.writer.writerow(row)
        self.csv_file.flush()

    def on_train_end(self, logs=None):
        self._close()
        self.writer = None

    def _close(self):
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
