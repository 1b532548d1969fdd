"""``clone_model``: the same architecture with fresh weights (Keras' ``keras.models.clone_model``).

As in Keras 3 (``keras/src/models/cloning.py``), each layer is rebuilt from its config by default
(``layer.__class__.from_config(layer.get_config())``), so the clone has the same layer names, units,
activations, initializers and regularizers, newly initialised weights and no compile state. Copy the
weights with ``clone.set_weights(model.get_weights())``; for a copy that keeps weights and optimizer
state, use ``copy.deepcopy(model)``.
"""
from fastnn.layers.base import Layer
from fastnn.models.sequential import Sequential
from fastnn.utils.validation import check_kwargs, describe


def _default_clone(layer):
    return layer.__class__.from_config(layer.get_config())


def clone_model(model, input_tensors=None, clone_function=None, call_function=None, recursive=False, **kwargs):
    """A new ``Sequential`` with ``model``'s layers rebuilt from their configs (fresh weights).

    Args:
        model: a fastnn ``Sequential`` model.
        input_tensors: not supported (fastnn has no symbolic tensors); must be None.
        clone_function: optional ``layer -> layer``, called for every layer instead of rebuilding it from
            its config (return the layer itself to share it, as in Keras).
        call_function: not supported (no functional API); must be None.
        recursive: accepted for Keras compatibility; fastnn models hold no nested models.
    """
    check_kwargs("clone_model", kwargs)
    if not isinstance(model, Sequential):
        raise ValueError(f"Arguments `model` must be a fastnn Sequential model; received {describe(model)}")
    for name, value in (("input_tensors", input_tensors), ("call_function", call_function)):
        if value is not None:
            raise ValueError(f"clone_model: argument `{name}` is not supported by fastnn (it has no functional "
                             f"API); received {describe(value)}. Clone the model and change the copy instead.")
    if clone_function is not None and not callable(clone_function):
        raise ValueError(f"clone_model: argument `clone_function` must be a callable; received "
                         f"{describe(clone_function)}")
    clone = clone_function or _default_clone
    layers = []
    for layer in model.layers:
        new = clone(layer)
        if not isinstance(new, Layer):
            raise ValueError(f"clone_model: `clone_function` must return a Layer; for layer '{layer.name}' "
                             f"it returned {describe(new)}")
        layers.append(new)
    copy = Sequential(name=model.name, trainable=model.trainable)
    shape = model.input_shape
    for layer in layers:
        copy.add(layer)
    if shape is not None and layers and not copy.built:
        copy.build(shape)
    return copy
