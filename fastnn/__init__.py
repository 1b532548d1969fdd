"""fastnn: Keras-compatible neural networks that train fast on an ordinary CPU.

    import fastnn as keras
    model = keras.Sequential([keras.layers.Flatten(input_shape=(28, 28)),
                              keras.layers.Dense(128, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
"""
from fastnn import (activations, backend, callbacks, config, datasets, distribution, initializers, layers, losses,
                    metrics, models, optimizers, regularizers, utils)
from fastnn._config import _warn_if_openmp_missing, get_num_threads, set_num_threads, show_config
from fastnn._missing import missing_attribute
from fastnn._version import __version__
from fastnn.layers import Input
from fastnn.models import Sequential

__all__ = ["Input", "Sequential", "__version__", "activations", "backend", "callbacks", "config", "datasets",
           "distribution", "get_num_threads", "initializers", "layers", "losses", "metrics", "models", "optimizers",
           "regularizers", "set_num_threads", "show_config", "utils"]

_warn_if_openmp_missing()


def __getattr__(name):
    # A Keras name fastnn lacks: say what to use instead (fastnn._missing).
    raise missing_attribute(__name__, name)
