"""Bad save paths, bad files to load and bad callback arguments: each raises a clear error naming the path or
argument (tests/bad_input/_harness.py runs the cases). Loading hostile files runs in a child process, where a
crash would be caught and pinned to its case."""
import io
import json
import os
import zipfile

import numpy as np
import pytest

from fastnn import Sequential, callbacks
from fastnn.layers import Dense, Input
from fastnn.models import load_model

from bad_input._harness import check, check_isolated, ids, run_isolated

X = np.random.default_rng(0).random((8, 4)).astype(np.float32)
Y = np.arange(8) % 3


def _model(optimizer="adam"):
    model = Sequential([Input((4,)), Dense(3, activation="softmax")])
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    return model


def fit(*cbs, epochs=1, **kwargs):
    return _model().fit(X, Y, epochs=epochs, verbose=0, callbacks=list(cbs), validation_split=0.25, **kwargs)


def _file(name, content=b"x"):
    with open(name, "wb") as handle:
        handle.write(content)
    return name


def _dir(name):
    os.makedirs(name, exist_ok=True)
    return name


SAVE = [
    ("save/path an int", lambda: _model().save(42), TypeError, r"`filepath` must be a str or os\.PathLike"),
    ("save/path None", lambda: _model().save(None), TypeError, r"`filepath`.*NoneType"),
    ("save/no extension", lambda: _model().save("model"), ValueError, r"add a `\.keras` extension.*'model\.keras'"),
    ("save/txt extension", lambda: _model().save("m.txt"), ValueError, r"`\.keras` extension.*filepath='m\.txt'"),
    ("save/weights name", lambda: _model().save("m.weights.h5"), ValueError,
     r"'m\.weights\.h5' is a weights file name.*save_weights"),
    ("save/a directory", lambda: _model().save(_dir("d.keras")), ValueError, r"'d\.keras': it is a directory"),
    ("save/missing directory", lambda: _model().save("nowhere/m.keras"), FileNotFoundError,
     r"directory '.*nowhere' does not exist"),
    ("save/under a regular file", lambda: _model().save(os.path.join(_file("plain"), "m.keras")),
     NotADirectoryError, r"'.*plain' is a file, not a directory"),
    ("save/overwrite False", lambda: _model().save(_file("exists.keras"), overwrite=False), FileExistsError,
     r"'exists\.keras' already exists; pass overwrite=True"),
    ("save/name too long", lambda: _model().save("m" * 300 + ".keras"), OSError,
     r"Cannot save to 'm{300}\.keras': the file name is too long"),
    ("save/null byte", lambda: _model().save("m\0.keras"), ValueError,
     r"save: argument `filepath` contains a null character; received 'm\\x00\.keras'"),
    ("load/null byte", lambda: load_model("m\0.keras"), ValueError, r"load_model: argument `filepath` contains a null"),
    ("save_weights/model name", lambda: _model().save_weights("w.keras"), ValueError,
     r"must end in `\.weights\.h5`.*'w\.weights\.h5'"),
    ("save_weights/unbuilt", lambda: Sequential([Dense(3)]).save_weights("w.weights.h5"), ValueError,
     r"has not been built yet"),
    ("save_weights/path a list", lambda: _model().save_weights(["w.weights.h5"]), TypeError, r"`filepath`"),
    ("save_weights/overwrite False", lambda: _model().save_weights(_file("e.weights.h5"), overwrite=False),
     FileExistsError, r"already exists"),
    ("load_weights/unbuilt", lambda: Sequential([Dense(3)]).load_weights("w.weights.h5"), ValueError,
     r"not been built yet"),
    ("load_weights/missing", lambda: _model().load_weights("missing.weights.h5"), FileNotFoundError,
     r"File not found: filepath='missing\.weights\.h5'"),
]

CALLBACKS = [
    ("early_stopping/patience negative", lambda: callbacks.EarlyStopping(patience=-1), ValueError,
     r"`patience`.*-1"),
    ("early_stopping/patience float", lambda: callbacks.EarlyStopping(patience=1.5), ValueError,
     r"`patience`.*1\.5"),
    ("early_stopping/mode unknown", lambda: callbacks.EarlyStopping(mode="up"), UserWarning,
     r"EarlyStopping mode 'up' is unknown, fallback to auto mode"),
    ("early_stopping/min_delta string", lambda: callbacks.EarlyStopping(min_delta="0.1"), ValueError,
     r"`min_delta`.*'0\.1'"),
    ("early_stopping/baseline string", lambda: callbacks.EarlyStopping(baseline="low"), ValueError,
     r"`baseline`.*'low'"),
    ("early_stopping/monitor a number", lambda: callbacks.EarlyStopping(monitor=3), (TypeError, ValueError),
     r"`monitor`.*3"),
    ("early_stopping/monitor missing from logs", lambda: fit(callbacks.EarlyStopping(monitor="val_acc")),
     UserWarning, r"val_acc.*not available.*Available metrics are"),
    ("early_stopping/start_from_epoch negative", lambda: callbacks.EarlyStopping(start_from_epoch=-2), ValueError,
     r"`start_from_epoch`.*-2"),
    ("checkpoint/path an int", lambda: callbacks.ModelCheckpoint(7), TypeError, r"`filepath` must be a str"),
    ("checkpoint/bad extension", lambda: callbacks.ModelCheckpoint("ckpt.txt"), ValueError,
     r"must end in `\.keras`.*filepath=ckpt\.txt"),
    ("checkpoint/weights only with a model name", lambda: callbacks.ModelCheckpoint("c.keras",
                                                                                   save_weights_only=True),
     ValueError, r"save_weights_only=True.*must end in `\.weights\.h5`"),
    ("checkpoint/weights name without weights only", lambda: callbacks.ModelCheckpoint("c.weights.h5"),
     ValueError, r"names a weights file.*save_weights_only=True"),
    ("checkpoint/save_freq zero", lambda: callbacks.ModelCheckpoint("c.keras", save_freq=0), ValueError,
     r"Unrecognized save_freq: 0"),
    ("checkpoint/save_freq string", lambda: callbacks.ModelCheckpoint("c.keras", save_freq="batch"), ValueError,
     r"Unrecognized save_freq: 'batch'"),
    ("checkpoint/mode unknown", lambda: callbacks.ModelCheckpoint("c.keras", mode="best"), UserWarning,
     r"ModelCheckpoint mode 'best' is unknown"),
    ("checkpoint/threshold string", lambda: callbacks.ModelCheckpoint("c.keras", initial_value_threshold="x"),
     ValueError, r"`initial_value_threshold`.*'x'"),
    ("checkpoint/missing format key", lambda: fit(callbacks.ModelCheckpoint("c-{val_acc:.2f}.keras")), KeyError,
     r"Failed to format this callback filepath.*val_acc"),
    ("checkpoint/into a directory", lambda: fit(callbacks.ModelCheckpoint(_dir("ck.keras"))), OSError,
     r"non-directory filepath|is a directory"),
    ("checkpoint/under a regular file", lambda: fit(callbacks.ModelCheckpoint(os.path.join(_file("f"), "c.keras"))),
     NotADirectoryError, r"'.*f' is a file, not a directory"),
    ("reduce_lr/factor one", lambda: callbacks.ReduceLROnPlateau(factor=1.0), ValueError, r"factor.*1\.0"),
    ("reduce_lr/factor above one", lambda: callbacks.ReduceLROnPlateau(factor=2), ValueError, r"factor.*2"),
    ("reduce_lr/patience negative", lambda: callbacks.ReduceLROnPlateau(patience=-1), ValueError,
     r"`patience`.*-1"),
    ("reduce_lr/min_lr negative", lambda: callbacks.ReduceLROnPlateau(min_lr=-0.1), ValueError,
     r"`min_lr`.*-0\.1"),
    ("lr_scheduler/not callable", lambda: callbacks.LearningRateScheduler(0.1), (TypeError, ValueError),
     r"`schedule` must be a function `schedule\(epoch, lr\) -> float`; received 0\.1"),
    ("lr_scheduler/returns a string", lambda: fit(callbacks.LearningRateScheduler(lambda epoch, lr: "fast")),
     ValueError, r"schedule.*'fast'"),
    ("lr_scheduler/returns a negative rate", lambda: fit(callbacks.LearningRateScheduler(lambda epoch, lr: -1.0)),
     ValueError, r"learning_rate.*-1\.0"),
    ("lr_scheduler/returns NaN", lambda: fit(callbacks.LearningRateScheduler(lambda epoch, lr: float("nan"))),
     ValueError, r"learning_rate.*nan"),
    ("csv_logger/filename an int", lambda: callbacks.CSVLogger(5), (TypeError, ValueError), r"`filename`"),
    ("csv_logger/into a missing directory", lambda: fit(callbacks.CSVLogger("nowhere/log.csv")),
     FileNotFoundError, r"No such file or directory: 'nowhere/log\.csv'"),
    ("lambda_callback/not callable", lambda: callbacks.LambdaCallback(on_epoch_end=3), (TypeError, ValueError),
     r"`on_epoch_end` must be a function or None; received 3"),
    ("lambda_callback/unknown hook", lambda: callbacks.LambdaCallback(on_epoch_ends=print), TypeError,
     r"on_epoch_ends"),
    ("progbar/count_mode unknown", lambda: callbacks.ProgbarLogger(count_mode="batches"), ValueError,
     r"count_mode.*'batches'"),
    ("fit/callbacks a class", lambda: fit(callbacks.History), (TypeError, ValueError), r"[Cc]allback.*History"),
    ("fit/callbacks None inside", lambda: fit(None), (TypeError, ValueError), r"[Cc]allback.*None"),
]


# ---------------------------------------------------------------------------- hostile files (child process)
def _good(name="good.keras"):
    if not os.path.exists(name):
        _model().fit(X, Y, epochs=1, verbose=0)
        model = _model()
        model.fit(X, Y, epochs=1, verbose=0)
        model.save(name)
    with open(name, "rb") as handle:
        return handle.read()


def _members(data):
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _zip(members):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def _load(content, name="bad.keras", **kwargs):
    return load_model(_file(name, content), **kwargs)


def _edit(replace=None, drop=()):
    members = {k: v for k, v in _members(_good()).items() if k not in drop}
    members.update(replace or {})
    return _zip(members)


def _metadata(**changes):
    meta = json.loads(_members(_good())["metadata.json"])
    meta.update(changes)
    return _edit({"metadata.json": json.dumps(meta)})


def _config(edit):
    config = json.loads(_members(_good())["config.json"])
    edit(config)
    return _edit({"config.json": json.dumps(config)})


def _layer_config(config, **changes):
    config["model"]["config"]["layers"][-1]["config"].update(changes)


def _npy(array, **kwargs):
    buffer = io.BytesIO()
    np.save(buffer, array, **kwargs)
    return buffer.getvalue()


def _flip(data, at):
    data = bytearray(data)
    data[at] ^= 0xFF
    return bytes(data)


def _weights_member_offset(data):
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        info = zf.getinfo("weights/0000.npy")
    return info.header_offset + 30 + len(info.filename) + len(info.extra) + 150  # in the float data


LOAD = [
    ("load/missing", lambda: load_model("missing.keras"), FileNotFoundError, r"File not found"),
    ("load/path an int", lambda: load_model(3), TypeError, r"`filepath` must be a str"),
    ("load/a directory", lambda: load_model(_dir("dir.keras")), ValueError, r"it is a directory"),
    ("load/empty", lambda: _load(b""), ValueError, r"the file is empty"),
    ("load/text", lambda: _load(b"hello, this is not a model\n"), ValueError,
     r"not a fastnn file \(not a zip archive\)"),
    ("load/random bytes", lambda: _load(np.random.default_rng(1).bytes(4096)), ValueError, r"not a fastnn file"),
    ("load/zip magic then garbage", lambda: _load(b"PK\x03\x04" + b"\0" * 100), ValueError,
     r"truncated or corrupt"),
    ("load/truncated to half", lambda: _load(_good()[:len(_good()) // 2]), ValueError, r"truncated or corrupt"),
    ("load/truncated by one byte", lambda: _load(_good()[:-1]), ValueError, r"truncated or corrupt"),
    ("load/a flipped byte in the weights", lambda: _load(_flip(_good(), _weights_member_offset(_good()))),
     ValueError, r"weights/0000\.npy.*(CRC|corrupt)"),
    ("load/HDF5", lambda: _load(b"\x89HDF\r\n\x1a\n" + b"\0" * 64, "k.h5"), ValueError, r"HDF5 file.*not by fastnn"),
    ("load/Keras 3 archive", lambda: _load(_zip({"metadata.json": "{}", "config.json": "{}",
                                                 "model.weights.h5": b"\x89HDF"})), ValueError,
     r"Keras 3 `\.keras` archive"),
    ("load/a zip of something else", lambda: _load(_zip({"readme.txt": b"hi"})), ValueError,
     r"no `metadata\.json`"),
    ("load/weights file as a model", lambda: _model().save_weights("w.weights.h5") or load_model("w.weights.h5"),
     ValueError, r"it is a weights file.*load_weights"),
    ("load/metadata not JSON", lambda: _load(_edit({"metadata.json": b"{not json"})), ValueError,
     r"`metadata\.json` is not valid JSON"),
    ("load/metadata a list", lambda: _load(_edit({"metadata.json": b"[1, 2]"})), ValueError,
     r"`metadata\.json` is not a JSON object"),
    ("load/metadata NaN", lambda: _load(_edit({"metadata.json": b'{"format": NaN}'})), ValueError,
     r"not valid JSON.*NaN"),
    ("load/unknown format", lambda: _load(_metadata(format="other")), ValueError, r"gives format 'other'"),
    ("load/newer version", lambda: _load(_metadata(format_version=99)), ValueError,
     r"newer fastnn.*Upgrade fastnn"),
    ("load/version a string", lambda: _load(_metadata(format_version="1")), ValueError,
     r"no valid `format_version`"),
    ("load/weights list wrong", lambda: _load(_metadata(weights="all")), ValueError, r"no valid `weights` list"),
    ("load/missing config", lambda: _load(_edit(drop=["config.json"])), ValueError,
     r"`config\.json`.*missing"),
    ("load/missing weight member", lambda: _load(_edit(drop=["weights/0001.npy"])), ValueError,
     r"lists 2 weight arrays but the archive holds"),
    ("load/an extra member", lambda: _load(_edit({"../evil.py": b"import os"})), ValueError,
     r"members a fastnn file never has: `\.\./evil\.py`"),
    ("load/unknown layer class", lambda: _load(_config(lambda c: c["model"]["config"]["layers"][-1].update(
        class_name="Conv2D"))), ValueError, r"Cannot load.*Conv2D"),
    ("load/negative units", lambda: _load(_config(lambda c: _layer_config(c, units=-3))), ValueError,
     r"Cannot load.*units"),
    ("load/units that no longer match", lambda: _load(_config(lambda c: _layer_config(c, units=5))), ValueError,
     r"Cannot load.*shape \(4, 3\).*shape \(4, 5\)"),
    ("load/unknown optimizer", lambda: _load(_config(lambda c: c["compile_config"]["optimizer"].update(
        class_name="Lion"))), ValueError, r"Cannot load.*Lion"),
    ("load/wrong dtype array", lambda: _load(_edit({"weights/0001.npy": _npy(np.zeros(3, np.float64))})),
     ValueError, r"weights/0001\.npy.*dtype float64.*float32"),
    ("load/wrong shape array", lambda: _load(_edit({"weights/0001.npy": _npy(np.zeros(4, np.float32))})),
     ValueError, r"weights/0001\.npy.*shape \(4,\)"),
    ("load/object array", lambda: _load(_edit({"weights/0001.npy": _npy(np.array([{}, {}, {}], dtype=object),
                                                                         allow_pickle=True)})),
     ValueError, r"Python object array.*never unpickle"),
    ("load/npy garbage", lambda: _load(_edit({"weights/0001.npy": b"\x93NUMPY garbage"})), ValueError,
     r"not a valid \.npy"),
    ("load/negative step counter", lambda: _load(_edit({"optimizer/iterations.npy": _npy(np.int64(-5))})),
     ValueError, r"step counter is negative"),
    ("load/bad generator state", lambda: _load(_edit({"rng_state.json": b'{"bit_generator": "MT19937"}'}),
                                               restore_rng=True), ValueError, r"`rng_state\.json` is not a saved"),
    ("load_weights/other architecture", lambda: Sequential([Input((4,)), Dense(5)]).load_weights(
        _file("w2.weights.h5", _edit())), ValueError, r"weight 0 .*shape \(4, 3\).*shape \(4, 5\)"),
    ("load_weights/garbage", lambda: _model().load_weights(_file("g.weights.h5", b"\0" * 10)), ValueError,
     r"not a fastnn file"),
]

CASES = SAVE + CALLBACKS


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_bad_paths_and_callback_arguments(case, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    check(case)


@pytest.fixture(scope="module")
def load_results(tmp_path_factory):
    return run_isolated(__name__, "LOAD", LOAD, tmp_path_factory.mktemp("load"))


@pytest.mark.parametrize("case", LOAD, ids=ids(LOAD))
def test_bad_files_to_load(case, load_results):
    check_isolated(case, load_results)
