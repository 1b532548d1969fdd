"""Saving and loading models and weights in fastnn's own portable format.

``model.save("m.keras")`` / ``fastnn.models.load_model("m.keras")`` round-trip the
architecture, the weights, the compile arguments and the optimizer state;
``model.save_weights("m.weights.h5")`` / ``model.load_weights(...)`` the weights only.
The files hold fastnn's own format under Keras' names (``.fastnn`` and ``.weights.npz``
work too); Keras cannot read them, and genuine Keras files are refused with an explanation.
Files are zips of JSON and ``.npy`` arrays (no pickle), written atomically and checked
on load; ``fastnn.saving.file_format`` documents the layout, ``saving_api`` what
resuming training exactly needs.
"""
from fastnn.saving.saving_api import load_model, load_weights, save_model, save_weights

__all__ = ["load_model", "load_weights", "save_model", "save_weights"]
