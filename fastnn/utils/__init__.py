"""Utilities with Keras' names."""
import importlib

from fastnn._missing import missing_attribute

from fastnn.utils.numerical_utils import normalize, to_categorical
from fastnn.utils.padding import pad_sequences
from fastnn.utils.progbar import Progbar
from fastnn.utils.rng_utils import set_random_seed
from fastnn.utils.sequence_utils import multi_hot

# Plotting is loaded on first use (PEP 562), so `import fastnn` stays fast; matplotlib itself is
# imported only when a plot is drawn (optional extra: pip install "fastnn[plot]").
_LAZY = {"plot_model": "model_visualization", "plot_history": "training_curves",
         "plot_prediction": "prediction_view", "plot_predictions": "prediction_view",
         "PlotImage": "plot_image"}

__all__ = ["PlotImage", "Progbar", "multi_hot", "normalize", "pad_sequences", "plot_history", "plot_model",
           "plot_prediction", "plot_predictions", "set_random_seed", "to_categorical"]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise missing_attribute(__name__, name)


def __dir__():
    return sorted(set(globals()) | set(__all__))
