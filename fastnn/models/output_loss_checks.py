"""Does the loss fit the model's output? Mismatches that train to nothing, caught before the first step.

The combinations below run without any error in Keras and are among the most reported "my model does not
learn" questions. Keras 3 warns about two of them (and only deep inside the loss); fastnn checks them all
once per ``fit``/``evaluate``/``train_on_batch`` (per compile and output), and names the fix:

* a cross-entropy over classes on ONE output unit: the softmax of one number, or one probability normalised
  to sum to 1, is always 1.0, so the loss is exactly 0 and nothing trains. Keras 3 warns
  (``keras/src/losses/losses.py`` categorical_crossentropy: SyntaxWarning "expected y_pred.shape to be
  (batch_size, num_classes) with num_classes > 1 ... Consider using 'binary_crossentropy'") and trains on
  at loss 0.0; fastnn raises, since no run of that model can learn anything;
* ``softmax`` over one unit (any loss): the output is constant 1.0. Keras 3 warns (``keras/src/ops/nn.py``
  softmax: "Did you mean to use a sigmoid instead?"); fastnn raises for the same reason;
* ``softmax`` with ``binary_crossentropy`` on several units: the units compete, so they cannot be the
  independent yes/no answers the loss scores, and ``'accuracy'`` then means binary accuracy per unit, which
  looks high for one-hot targets. Keras is silent; fastnn warns (it does train, so it is not an error);
* ``sigmoid`` with a categorical cross-entropy on several units: the loss renormalises the outputs to sum
  to 1 (Keras' ``p / sum(p)``), a softmax done badly. Keras is silent; fastnn warns;
* ``from_logits=False`` on an output that is not a probability (no activation, ``relu``, ``tanh``): the
  loss clips the outputs to [1e-7, 1 - 1e-7] and most gradients vanish. Keras is silent; fastnn warns;
* ``from_logits=True`` on a softmax/sigmoid output: probabilities squashed twice. Keras' TensorFlow backend
  warns ("received `from_logits=True`, but the `output` argument was produced by a Softmax activation and
  thus does not represent logits. Was this intended?"); fastnn warns with the fix.
"""
import warnings

from fastnn import losses as losses_module
from fastnn.layers.dropout import Dropout

# Activations whose outputs are probabilities a cross-entropy on probabilities accepts.
_PROBABILITIES = {"sigmoid", "softmax", "hard_sigmoid"}


def output_activation(model):
    """(layer, activation name) of the model's output, or (layer, None) when no activation decides it
    (a BatchNormalization last, say). Dropout is skipped: it is the identity outside training."""
    for layer in reversed(model.layers):
        if isinstance(layer, Dropout):
            continue
        return layer, getattr(layer, "activation_name", None)
    return None, None


def check_output_fits_loss(model, loss, n_outputs):
    """Raise for a model/loss pair that cannot learn; warn for one that learns the wrong thing."""
    layer, act = output_activation(model)
    if layer is None:
        return
    where = f"the model's output layer '{layer.name}'"
    categorical = isinstance(loss, (losses_module.CategoricalCrossentropy,
                                    losses_module.SparseCategoricalCrossentropy))
    binary = isinstance(loss, losses_module.BinaryCrossentropy)
    if categorical and n_outputs == 1:
        raise ValueError(
            f"Loss {loss.name!r} needs one output unit per class, but {where} has 1 unit: the loss "
            "would be 0 for every sample and nothing would train. For two classes with 0/1 labels use "
            "Dense(1, activation='sigmoid') with loss='binary_crossentropy'; for K classes use "
            "Dense(K, activation='softmax') with 'categorical_crossentropy' (one-hot targets) or "
            "'sparse_categorical_crossentropy' (integer labels).")
    if act == "softmax" and n_outputs == 1:
        raise ValueError(
            f"{where[0].upper() + where[1:]} applies softmax to 1 unit: its output is always 1.0 and nothing "
            "would train. Use activation='sigmoid' for a single probability (with "
            "loss='binary_crossentropy'), or one unit per class with softmax.")
    if not (categorical or binary) or act is None:
        return
    if binary and act == "softmax":
        _warn(f"{where[0].upper() + where[1:]} uses softmax on {n_outputs} units with loss {loss.name!r}: "
              "softmax makes the units compete, while binary_crossentropy scores each unit as an independent "
              "yes/no (and 'accuracy' becomes binary accuracy per unit, which looks high for one-hot targets). "
              "For one class per sample use 'categorical_crossentropy' (one-hot targets) or "
              "'sparse_categorical_crossentropy' (integer labels); for several labels per sample use "
              "activation='sigmoid'.")
    elif categorical and act == "sigmoid":
        _warn(f"{where[0].upper() + where[1:]} uses sigmoid on {n_outputs} units with loss {loss.name!r}: the "
              "loss rescales the outputs to sum to 1, a poor substitute for softmax. Use "
              "activation='softmax' for one class per sample, or loss='binary_crossentropy' for several "
              "labels per sample.")
    elif loss.from_logits and act in _PROBABILITIES:
        _warn(f"Loss {loss.name!r} received `from_logits=True`, but {where} applies {act}, so its outputs "
              f"are probabilities, not logits. Remove the activation (activation=None) to keep "
              f"from_logits=True, or create the loss with from_logits=False.")
    elif not loss.from_logits and act not in _PROBABILITIES:
        fix = "sigmoid" if binary else "softmax"
        _warn(f"Loss {loss.name!r} expects probabilities (from_logits=False), but {where} has activation "
              f"{act!r}: its outputs are clipped to [1e-7, 1 - 1e-7] and most gradients vanish. Use "
              f"activation={fix!r}, or keep the outputs as logits and create the loss with from_logits=True.")


def _warn(message):
    # stacklevel 6: the user's line calling fit/evaluate (-> _prepare_data -> _check_output_fits_loss ->
    # check_output_fits_loss -> here)
    warnings.warn(message, UserWarning, stacklevel=6)
