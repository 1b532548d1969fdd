"""Callbacks: hooks into fit / evaluate / predict (Keras 3 semantics)."""
from fastnn.callbacks.callback import Callback
from fastnn.callbacks.callback_list import CallbackList
from fastnn.callbacks.history import History
from fastnn.callbacks.progbar_logger import ProgbarLogger

__all__ = ["Callback", "CallbackList", "History", "ProgbarLogger"]
