"""Keras-compatible data set loaders: ``mnist``, ``fashion_mnist``, ``imdb``.

The submodules are imported on first use (PEP 562), so ``import fastnn`` does
not pay for them; ``fastnn.datasets.mnist.load_data()`` and
``from fastnn.datasets import imdb`` both work as in Keras.
"""
import importlib

__all__ = ["mnist", "fashion_mnist", "imdb"]


def __getattr__(name):
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
