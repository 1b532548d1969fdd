"""Callbacks: hooks into fit / evaluate / predict (Keras 3 semantics)."""
from fastnn._missing import missing_attribute
from fastnn.callbacks.callback import Callback
from fastnn.callbacks.callback_list import CallbackList
from fastnn.callbacks.history import History
from fastnn.callbacks.progbar_logger import ProgbarLogger
from fastnn.callbacks.csv_logger import CSVLogger
from fastnn.callbacks.early_stopping import EarlyStopping
from fastnn.callbacks.lambda_callback import LambdaCallback
from fastnn.callbacks.learning_rate_scheduler import LearningRateScheduler
from fastnn.callbacks.model_checkpoint import ModelCheckpoint
from fastnn.callbacks.reduce_lr_on_plateau import ReduceLROnPlateau
from fastnn.callbacks.terminate_on_nan import TerminateOnNaN

__all__ = ["Callback", "CallbackList", "History", "ProgbarLogger"]
__all__ += ["CSVLogger", "EarlyStopping", "LambdaCallback", "LearningRateScheduler", "ModelCheckpoint",
            "ReduceLROnPlateau", "TerminateOnNaN"]


def __getattr__(name):
    # A Keras name fastnn lacks: say what to use instead (fastnn._missing).
    raise missing_attribute(__name__, name)
