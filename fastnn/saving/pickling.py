"""``pickle`` and ``copy.deepcopy`` of a model, through its saved file (as Keras 3 pickles models).

Keras 3 (``keras/src/saving/keras_saveable.py``) pickles a model as the bytes of its ``.keras`` file,
and unpickling loads them; fastnn does the same with its own format. So a pickled or deep-copied model
has the same architecture, weights, compile arguments and optimizer state (Adam's moments and step
count), and the file's checks guard unpickling: nothing but fastnn's own classes is rebuilt, whatever
the bytes hold. The copy's optimizer is a new object (one optimizer cannot train two models).
"""
import os
import tempfile

from fastnn.saving import saving_api


def model_to_bytes(model):
    """The bytes of ``model``'s saved file."""
    with tempfile.TemporaryDirectory(prefix="fastnn-pickle-") as directory:
        path = os.path.join(directory, "model.keras")
        saving_api.save_model(model, path)
        with open(path, "rb") as handle:
            return handle.read()


def model_from_bytes(data):
    """The model saved in ``data`` (from ``model_to_bytes``), compiled as it was."""
    with tempfile.TemporaryDirectory(prefix="fastnn-pickle-") as directory:
        path = os.path.join(directory, "model.keras")
        with open(path, "wb") as handle:
            handle.write(data)
        return saving_api.load_model(path)
