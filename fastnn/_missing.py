"""Keras names fastnn does not have, and what to use instead.

A Keras user's next line after the tutorials often reaches for ``callbacks.TensorBoard``,
``mixed_precision`` or the functional ``Model``; a bare ``AttributeError: module 'fastnn.callbacks' has
no attribute 'TensorBoard'`` says neither whether that is a typo nor what to do. Each public module's
``__getattr__`` (PEP 562) calls ``missing_attribute``, which raises an AttributeError that names the
alternative. Imported by the package ``__init__`` files, so it imports nothing of fastnn.
"""

_FUNCTIONAL = ("fastnn has no functional API (keras.Model(inputs, outputs)) and no Model subclassing: it "
               "trains layer chains, so write the chain as fastnn.Sequential([fastnn.Input(shape=...), "
               "layers.Dense(...), ...]). Graphs that branch or merge are not supported.")
_DENSE_ONLY = ("fastnn builds dense networks (multi-layer perceptrons) on the CPU: convolution, pooling, "
               "recurrent, attention and embedding layers are not available. For images, Flatten then "
               "Dense; for text, a bag of words (fastnn.utils.multi_hot) into Dense.")

# {module: {missing name: what to use instead}}
INSTEAD = {
    "fastnn": {
        "Model": _FUNCTIONAL,
        "mixed_precision": ("fastnn computes in float32 (or float64, through the layers' `dtype`) on the "
                            "CPU; mixed precision (float16/bfloat16) speeds up GPUs and TPUs and is not "
                            "available. Remove the mixed_precision.set_global_policy(...) call."),
        "ops": ("fastnn has no keras.ops tensor library: layers, losses and activations run its own "
                "kernels. Use NumPy on the arrays that predict() and get_weights() return."),
        "preprocessing": ("Use fastnn.utils.pad_sequences, fastnn.utils.multi_hot and "
                          "fastnn.utils.to_categorical; there are no preprocessing layers."),
    },
    "fastnn.models": {
        "Model": _FUNCTIONAL,
    },
    "fastnn.callbacks": {
        "TensorBoard": ("fastnn does not write TensorBoard logs. Record the epochs with "
                        "callbacks.CSVLogger('training.csv'), or plot the History that fit() returns with "
                        "fastnn.utils.plot_history(history)."),
        "BackupAndRestore": ("Use callbacks.ModelCheckpoint('ckpt.keras') (it saves the optimizer state "
                             "too) and resume with fastnn.models.load_model('ckpt.keras') and "
                             "fit(..., initial_epoch=n)."),
        "RemoteMonitor": "Send the logs yourself from a callbacks.LambdaCallback(on_epoch_end=...).",
        "SwapEMAWeights": "Optimizer `use_ema` is not supported by fastnn, so there are no EMA weights to swap.",
    },
    "fastnn.layers": {name: _DENSE_ONLY for name in (
        "Conv1D", "Conv2D", "Conv3D", "Conv2DTranspose", "SeparableConv2D", "DepthwiseConv2D",
        "MaxPooling1D", "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "GlobalMaxPooling2D",
        "LSTM", "GRU", "SimpleRNN", "Bidirectional", "Embedding", "MultiHeadAttention", "Attention")},
}
INSTEAD["fastnn.layers"].update({
    "Concatenate": _FUNCTIONAL, "Add": _FUNCTIONAL, "Multiply": _FUNCTIONAL, "Average": _FUNCTIONAL,
    "concatenate": _FUNCTIONAL, "add": _FUNCTIONAL,
})


def missing_attribute(module, name):
    """The AttributeError for ``module.name``: with the alternative when the name is a known Keras one.
    Dunder lookups (``__path__``, ``__wrapped__`` ...) get the plain error, as import machinery expects."""
    instead = INSTEAD.get(module, {}).get(name)
    if instead is None or name.startswith("__"):
        return AttributeError(f"module {module!r} has no attribute {name!r}")
    return AttributeError(f"module {module!r} has no attribute {name!r}: {instead}")
