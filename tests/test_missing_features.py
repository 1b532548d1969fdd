"""Keras names fastnn lacks say what to use instead; monitors that are not logged name the close match."""
import numpy as np
import pytest

import fastnn
from fastnn import callbacks, layers


@pytest.mark.parametrize("module,name,hint", [
    (fastnn, "mixed_precision", "float32"),
    (fastnn, "Model", "Sequential"),
    (fastnn.models, "Model", "Sequential"),
    (fastnn.callbacks, "TensorBoard", "CSVLogger"),
    (fastnn.callbacks, "BackupAndRestore", "ModelCheckpoint"),
    (fastnn.layers, "Conv2D", "Flatten then Dense"),
    (fastnn.layers, "LSTM", "multi_hot"),
    (fastnn.layers, "Concatenate", "branch or merge"),
    (fastnn.utils, "TensorBoard", None),
])
def test_missing_names_raise_attribute_error_with_the_alternative(module, name, hint):
    with pytest.raises(AttributeError, match=f"has no attribute '{name}'") as info:
        getattr(module, name)
    if hint:
        assert hint in str(info.value)
    assert not hasattr(module, name)


def test_from_import_of_a_missing_name_shows_the_hint():
    with pytest.raises(ImportError, match="TensorBoard"):
        from fastnn.callbacks import TensorBoard  # noqa: F401


def test_functional_call_on_an_input_names_sequential():
    with pytest.raises(TypeError, match="no functional API.*Sequential"):
        layers.Dense(4)(fastnn.Input((3,)))


def _fit(monitor_callback, validation=True):
    model = fastnn.Sequential([fastnn.Input((2,)), layers.Dense(2, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = np.zeros((8, 2), np.float32), np.arange(8) % 2
    model.fit(x, y, epochs=1, verbose=0, callbacks=[monitor_callback],
              validation_data=(x, y) if validation else None)


@pytest.mark.parametrize("callback", [
    lambda: callbacks.EarlyStopping(monitor="val_acc"),
    lambda: callbacks.ReduceLROnPlateau(monitor="val_acc"),
])
def test_val_acc_monitor_names_val_accuracy(callback):
    # Keras 3 warns "... conditioned on metric `val_acc` which is not available. Available metrics are: ..."
    with pytest.warns(UserWarning, match=r"`val_acc` which is not available\. Available metrics are: .*"
                                         r"Did you mean 'val_accuracy'\?"):
        _fit(callback())


def test_checkpoint_val_acc_monitor_names_val_accuracy(tmp_path):
    with pytest.warns(UserWarning, match="Can save best model only with val_acc available.*'val_accuracy'"):
        _fit(callbacks.ModelCheckpoint(str(tmp_path / "m.keras"), monitor="val_acc", save_best_only=True))


def test_val_monitor_without_validation_data_says_so():
    with pytest.warns(UserWarning, match="no validation metrics: pass `validation_data`"):
        _fit(callbacks.EarlyStopping(monitor="val_loss"), validation=False)
