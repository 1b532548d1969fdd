"""ModelCheckpoint: Keras 3 semantics (K3 callbacks/model_checkpoint.py) on scripted logs and small real fits.

Unit tests drive the callback with a fake model that records what it saves; the integration tests run
``fastnn.Sequential.fit`` on tiny data and load the files back.
"""
import os

import numpy as np
import pytest

import fastnn
from fastnn.callbacks import CallbackList, LambdaCallback, ModelCheckpoint
from fastnn.layers import Dense
from fastnn.models import Sequential, load_model
from fastnn.utils.rng_utils import set_random_seed


class FakeModel:
    """Records the saves; what ModelCheckpoint touches of a model."""

    def __init__(self, metrics=()):
        self._compiled_metrics = list(metrics)
        self.saved = []

    def save(self, filepath, overwrite=True):
        self.saved.append(("model", filepath))
        open(filepath, "wb").close()

    def save_weights(self, filepath, overwrite=True):
        self.saved.append(("weights", filepath))
        open(filepath, "wb").close()


def drive(callback, values, monitor="val_loss"):
    """Epoch ends with logs {"loss": 0.5, monitor: value}; returns the fake model."""
    model = FakeModel()
    callback.set_model(model)
    callback.on_train_begin()
    for epoch, value in enumerate(values):
        callback.on_epoch_begin(epoch)
        callback.on_epoch_end(epoch, {"loss": 0.5, monitor: value})
    callback.on_train_end()
    return model


@pytest.fixture(autouse=True)
def _fresh():
    fastnn.backend.clear_session()
    set_random_seed(0)


def _data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4)).astype(np.float32)
    return x, (x[:, 0] - x[:, 1] > 0).astype(np.float32)


def _model():
    model = Sequential([Dense(6, activation="relu", input_shape=(4,)), Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    return model


# ---------------------------------------------------------------------------- arguments
def test_defaults_match_keras(tmp_path):
    cb = ModelCheckpoint(tmp_path / "m.keras")
    assert (cb.monitor, cb.verbose, cb.save_best_only, cb.save_weights_only, cb.mode, cb.save_freq) == \
        ("val_loss", 0, False, False, "auto", "epoch")
    assert cb.initial_value_threshold is None and cb.best is None
    assert cb.filepath == str(tmp_path / "m.keras")


@pytest.mark.parametrize("name", ["m.keras", "m.h5", "m.fastnn", "{epoch:02d}.keras"])
def test_model_file_names_keras_accepts(name):
    ModelCheckpoint(name)


@pytest.mark.parametrize("kwargs, match", [
    ({"filepath": "m"}, r"The filepath provided must end in `\.keras`.*Received: filepath=m"),
    ({"filepath": "m.npz"}, r"must end in `\.keras`"),
    ({"filepath": "w.weights.h5"}, r"names a weights file; pass `save_weights_only=True`"),
    ({"filepath": "w.keras", "save_weights_only": True},
     r"When using `save_weights_only=True` in `ModelCheckpoint`, the filepath provided must end in `\.weights\.h5`"),
    ({"filepath": "m.keras", "save_freq": "batch"}, r"Unrecognized save_freq: 'batch'"),
    ({"filepath": "m.keras", "save_freq": 0}, r"Unrecognized save_freq: 0"),
    ({"filepath": "m.keras", "initial_value_threshold": "0.5"}, r"`initial_value_threshold` must be a finite"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ModelCheckpoint(**kwargs)
    with pytest.raises(TypeError, match="`filepath` must be a str or os.PathLike"):
        ModelCheckpoint(3)


def test_epoch_saving_does_not_force_per_batch_hooks(tmp_path):
    # The trainer runs many steps per call unless a callback needs every batch.
    assert not CallbackList([ModelCheckpoint(tmp_path / "m.keras")]).needs_batch_hooks
    assert CallbackList([ModelCheckpoint(tmp_path / "m.keras", save_freq=3)]).needs_batch_hooks


# ---------------------------------------------------------------------------- what is saved when
def test_saves_every_epoch_with_formatted_names(tmp_path):
    cb = ModelCheckpoint(str(tmp_path / "ckpt-{epoch:02d}-{val_loss:.2f}.keras"))
    model = drive(cb, [1.0, 0.8, 0.9])
    assert model.saved == [("model", str(tmp_path / f"ckpt-{e:02d}-{v:.2f}.keras"))
                           for e, v in ((1, 1.0), (2, 0.8), (3, 0.9))]


def test_save_best_only_saves_only_improvements(tmp_path, capsys):
    path = str(tmp_path / "best.keras")
    cb = ModelCheckpoint(path, save_best_only=True, verbose=1)
    model = drive(cb, [1.0, 0.8, 0.9, 0.7, float("nan"), 0.75])
    assert len(model.saved) == 3 and cb.best == 0.7  # epochs 1, 2, 4
    out = capsys.readouterr().out
    assert out == (f"\nEpoch 1: val_loss improved from None to 1.00000, saving model to {path}\n"
                   f"\nEpoch 1: finished saving model to {path}\n"
                   f"\nEpoch 2: val_loss improved from 1.00000 to 0.80000, saving model to {path}\n"
                   f"\nEpoch 2: finished saving model to {path}\n"
                   "\nEpoch 3: val_loss did not improve from 0.80000\n"
                   f"\nEpoch 4: val_loss improved from 0.80000 to 0.70000, saving model to {path}\n"
                   f"\nEpoch 4: finished saving model to {path}\n"
                   "\nEpoch 5: val_loss did not improve from 0.70000\n"
                   "\nEpoch 6: val_loss did not improve from 0.70000\n")
    # the best value is kept for a later fit (the file holds it), as in Keras
    assert len(drive(cb, [0.72, 0.6]).saved) == 1


def test_verbose_message_without_save_best_only(tmp_path, capsys):
    path = str(tmp_path / "w-{epoch}.weights.h5")
    model = drive(ModelCheckpoint(path, save_weights_only=True, verbose=1), [1.0])
    assert model.saved == [("weights", str(tmp_path / "w-1.weights.h5"))]
    assert capsys.readouterr().out == (f"\nEpoch 1: saving model to {tmp_path / 'w-1.weights.h5'}\n"
                                       f"\nEpoch 1: finished saving model to {tmp_path / 'w-1.weights.h5'}\n")


def test_mode_max_and_initial_value_threshold(tmp_path):
    cb = ModelCheckpoint(tmp_path / "m.keras", monitor="val_accuracy", save_best_only=True,
                         initial_value_threshold=0.8)
    model = drive(cb, [0.7, 0.85, 0.8, 0.9], monitor="val_accuracy")  # 'auto' maximises accuracy
    assert len(model.saved) == 2 and cb.best == 0.9
    cb = ModelCheckpoint(tmp_path / "m.keras", monitor="val_loss", mode="max", save_best_only=True)
    assert len(drive(cb, [0.1, 0.2, 0.15]).saved) == 2


def test_missing_monitor_warns_and_saves_anyway(tmp_path):
    cb = ModelCheckpoint(tmp_path / "m.keras", save_best_only=True)
    with pytest.warns(UserWarning, match="Can save best model only with val_loss available. Available metrics "
                                         "are: loss,accuracy"):
        cb.set_model(FakeModel())
        cb.on_epoch_end(0, {"loss": 0.3, "accuracy": 0.9})
    assert len(cb.model.saved) == 1


def test_unknown_monitor_direction_fails_before_training(tmp_path):
    cb = ModelCheckpoint(tmp_path / "m.keras", monitor="val_f1", save_best_only=True)
    cb.set_model(FakeModel())
    with pytest.raises(ValueError, match="monitor=val_f1, but fastnn isn't able to automatically determine"):
        cb.on_train_begin()
    ModelCheckpoint(tmp_path / "m.keras", monitor="val_f1").on_train_begin()  # nothing to compare: fine


def test_unformattable_path_and_directory_path(tmp_path):
    cb = ModelCheckpoint(str(tmp_path / "{val_acc:.2f}.keras"))
    cb.set_model(FakeModel())
    with pytest.raises(KeyError, match=r'Failed to format this callback filepath: ".*\{val_acc:.2f\}\.keras". '
                                       r"Reason: .*val_acc"):
        cb.on_epoch_end(0, {"loss": 0.1})
    (tmp_path / "d.keras").mkdir()
    cb = ModelCheckpoint(tmp_path / "d.keras")
    cb.set_model(FakeModel())
    with pytest.raises(IOError, match="Please specify a non-directory filepath for ModelCheckpoint"):
        cb.on_epoch_end(0, {})


# ---------------------------------------------------------------------------- real fits
def test_fit_saves_models_that_load_back(tmp_path):
    x, y = _data()
    model = _model()
    pattern = str(tmp_path / "run" / "ckpt-{epoch:02d}-{val_loss:.2f}.keras")  # `run/` is created
    history = model.fit(x, y, epochs=3, batch_size=10, verbose=0, validation_split=0.25,
                        callbacks=[ModelCheckpoint(pattern)])
    expected = sorted(f"ckpt-{e + 1:02d}-{v:.2f}.keras" for e, v in enumerate(history.history["val_loss"]))
    assert sorted(os.listdir(tmp_path / "run")) == expected
    last = load_model(tmp_path / "run" / expected[-1])
    np.testing.assert_array_equal(last.predict(x, verbose=0), model.predict(x, verbose=0))


def test_save_best_only_file_holds_the_best_epochs_weights(tmp_path):
    x, y = _data()
    xv, yv = _data(seed=1)
    model = _model()
    model.compile(fastnn.optimizers.SGD(1.5), "binary_crossentropy")  # a large step: val_loss goes up and down
    snapshots = []
    record = LambdaCallback(on_epoch_end=lambda epoch, logs: snapshots.append(model.get_weights()))
    history = model.fit(x, y, epochs=8, batch_size=8, verbose=0, validation_data=(xv, yv),
                        callbacks=[ModelCheckpoint(tmp_path / "best.weights.h5", save_best_only=True,
                                                   save_weights_only=True), record])
    val_loss = history.history["val_loss"]
    assert np.argmin(val_loss) != len(val_loss) - 1, "pick data where the last epoch is not the best"
    fresh = _model()
    fresh.load_weights(tmp_path / "best.weights.h5")
    for a, b in zip(fresh.get_weights(), snapshots[int(np.argmin(val_loss))]):
        np.testing.assert_array_equal(a, b)


def test_integer_save_freq_counts_batches_across_epochs(tmp_path):
    x, y = _data()
    model = _model()
    cb = ModelCheckpoint(str(tmp_path / "e{epoch}-b{batch}.keras"), save_freq=3)
    model.fit(x, y, epochs=2, batch_size=10, verbose=0, callbacks=[cb])  # 4 batches per epoch
    assert sorted(os.listdir(tmp_path)) == ["e1-b3.keras", "e2-b2.keras"]
