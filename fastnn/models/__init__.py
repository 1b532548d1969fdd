"""Models: ``Sequential``, ``clone_model``, ``model_from_json``, and ``load_model`` (from ``fastnn.saving``)."""
from fastnn._missing import missing_attribute
from fastnn.models.cloning import clone_model
from fastnn.models.sequential import Sequential
from fastnn.saving.saving_api import load_model
from fastnn.saving.serialization import model_from_json

__all__ = ["Sequential", "clone_model", "load_model", "model_from_json"]


def __getattr__(name):
    # A Keras name fastnn lacks: say what to use instead (fastnn._missing).
    raise missing_attribute(__name__, name)
