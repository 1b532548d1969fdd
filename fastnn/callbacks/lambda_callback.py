"""``LambdaCallback``: a callback built from plain functions.

Keras 3 semantics (K3 ``keras/src/callbacks/lambda_callback.py``): each
function given replaces the hook of the same name on the instance; hooks not
given stay the base class no-ops. Functions take the hook's arguments:
``on_epoch_begin/end(epoch, logs)``, ``on_train_begin/end(logs)``,
``on_train_batch_begin/end(batch, logs)`` (``logs`` passed by keyword), and so
on for every other hook name passed as a keyword argument.

Only the hooks actually given are set, as instance attributes, which is what
``CallbackList.needs_batch_hooks`` inspects: a LambdaCallback without a train
batch function keeps the trainer on its fast chunked path, and one with
``on_train_batch_end`` (or ``on_batch_end``, ...) gets called after every batch.

Difference from K3: K3 copies every keyword argument into the instance, so a
misspelt hook (``on_epoch_ends=``) was silently never called; fastnn accepts
only ``Callback`` hook names and callables.
"""
from fastnn.callbacks.callback import Callback
from fastnn.utils.validation import describe

# Every hook a function may replace: the public ``on_*`` methods of Callback.
_HOOKS = tuple(sorted(name for name in vars(Callback) if name.startswith("on_")))


class LambdaCallback(Callback):
    """Callback for creating simple, custom callbacks on the fly.

    Args:
        on_epoch_begin: called at the beginning of every epoch.
        on_epoch_end: called at the end of every epoch.
        on_train_begin: called at the beginning of model training.
        on_train_end: called at the end of model training.
        on_train_batch_begin: called at the beginning of every train batch.
        on_train_batch_end: called at the end of every train batch.
        **kwargs: any other ``Callback`` hook, e.g. ``on_test_end=fn``.
    """

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None, on_train_end=None,
                 on_train_batch_begin=None, on_train_batch_end=None, **kwargs):
        super().__init__()
        unknown = sorted(name for name in kwargs if name not in _HOOKS)
        if unknown:
            raise TypeError(f"LambdaCallback: unrecognized keyword arguments {unknown}. Expected callback "
                            f"hook names: {', '.join(_HOOKS)}.")
        hooks = dict(kwargs, on_epoch_begin=on_epoch_begin, on_epoch_end=on_epoch_end,
                     on_train_begin=on_train_begin, on_train_end=on_train_end,
                     on_train_batch_begin=on_train_batch_begin, on_train_batch_end=on_train_batch_end)
        for name, function in hooks.items():
            if function is None:
                continue
            if not callable(function):
                raise TypeError(f"LambdaCallback: argument `{name}` must be a function or None; received "
                                f"{describe(function)}.")
            setattr(self, name, function)
