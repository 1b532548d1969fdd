"""Weight regularizers with Keras 3's names, defaults and formulas.

``L1(l1=0.01)``: ``l1 * sum(|w|)``; ``L2(l2=0.01)``: ``l2 * sum(w**2)``;
``L1L2(l1=0.0, l2=0.0)``: both (K3 ``keras/src/regularizers/regularizers.py``).
``l1``, ``l2`` and ``l1_l2`` are the same classes (Keras 3 exports them under
both names, so ``l1_l2()`` has the zero defaults of ``L1L2``). The strings
``'l1'`` and ``'l2'`` give ``L1()`` and ``L2()``; ``'l1_l2'`` gives
``L1L2(l1=0.01, l2=0.01)``, as Keras 3's ``L1L2`` docstring (and tf.keras 2.x)
say. Keras 3's ``regularizers.get('l1_l2')`` itself raises, because its
registry spells the name ``'l1l2'``.

Pass them as ``Dense(..., kernel_regularizer=..., bias_regularizer=...)``.
As in Keras, the penalty of every *trainable* regularized weight, computed on
the weights a batch starts from, is added to the loss that ``fit`` and
``evaluate`` report (training batches, ``val_loss`` and ``evaluate`` alike;
K3 ``trainers/trainer.py`` ``compute_loss`` adds ``self.losses``), and its
gradient ``l1 * sign(w) + 2 * l2 * w`` is added to the weight's gradient.
Penalty and gradient are one kernel (``fastnn._kernels.l1_l2_backward``).

fastnn has no automatic differentiation, so a regularizer must also know its
gradient: a plain Python function is refused. A custom subclass of
``Regularizer`` may override ``__call__(x)`` (the penalty) and
``backward(x, grad)`` (add the gradient to ``grad``, return the penalty).
"""
import numbers

from fastnn import _kernels as K
from fastnn.utils.validation import check_non_negative_float, describe


class Regularizer:
    """Base class: ``regularizer(x)`` is the penalty of the weight array ``x`` (a float)."""

    def _factors(self):
        """(l1, l2) of an elementwise L1/L2 penalty; subclasses that are not one override
        ``__call__`` and ``backward`` instead."""
        raise NotImplementedError(f"{type(self).__name__} must implement __call__ and backward")

    def __call__(self, x):
        l1, l2 = self._factors()
        return K.l1_l2_forward(x, l1, l2)

    def backward(self, x, grad):
        """Add the penalty's gradient with respect to ``x`` to ``grad`` (in place); return the penalty."""
        l1, l2 = self._factors()
        return K.l1_l2_backward(x, l1, l2, grad)

    def get_config(self):
        raise NotImplementedError(f"{type(self).__name__} does not implement get_config()")

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def _factor(owner, name, value, default):
    # Keras replaces None by the default, and accepts any finite number >= 0 (validate_float_arg).
    return check_non_negative_float(owner, name, default if value is None else value)


class L1L2(Regularizer):
    """``l1 * sum(|x|) + l2 * sum(x**2)``. Defaults ``l1=0.0, l2=0.0`` (Keras 3)."""

    def __init__(self, l1=0.0, l2=0.0):
        self.l1 = _factor("L1L2", "l1", l1, 0.0)
        self.l2 = _factor("L1L2", "l2", l2, 0.0)

    def _factors(self):
        return self.l1, self.l2

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


class L1(Regularizer):
    """``l1 * sum(|x|)``. Default ``l1=0.01``."""

    def __init__(self, l1=0.01):
        self.l1 = _factor("L1", "l1", l1, 0.01)

    def _factors(self):
        return self.l1, 0.0

    def get_config(self):
        return {"l1": self.l1}


class L2(Regularizer):
    """``l2 * sum(x**2)`` (no factor 1/2, as Keras). Default ``l2=0.01``."""

    def __init__(self, l2=0.01):
        self.l2 = _factor("L2", "l2", l2, 0.01)

    def _factors(self):
        return 0.0, self.l2

    def get_config(self):
        return {"l2": self.l2}


# Keras 3 exports the classes under these names too.
l1, l2, l1_l2 = L1, L2, L1L2

_BY_NAME = {
    "l1": L1, "l2": L2, "l1_l2": lambda: L1L2(l1=0.01, l2=0.01),
    "L1": L1, "L2": L2, "L1L2": L1L2,
}


def get(identifier):
    """Resolve a Keras regularizer identifier: None, a string, a class, an instance, or a
    ``{"class_name": ..., "config": {...}}`` dict."""
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, str):
        factory = _BY_NAME.get(identifier)
        if factory is None:
            valid = ", ".join(repr(k) for k in _BY_NAME)
            raise ValueError(f"Could not interpret regularizer identifier: {identifier!r}. Expected one of: "
                             f"{valid}, or a regularizer object such as fastnn.regularizers.L2(0.001).")
        return factory()
    if isinstance(identifier, type) and issubclass(identifier, Regularizer):
        return identifier()
    if isinstance(identifier, dict) and isinstance(identifier.get("class_name"), str):
        cls = {c.__name__: c for c in (L1, L2, L1L2)}.get(identifier["class_name"])
        config = identifier.get("config") or {}
        if cls is None or not isinstance(config, dict):
            raise ValueError(f"Could not interpret regularizer identifier: {describe(identifier)}. Known "
                             "classes: L1, L2, L1L2.")
        return cls.from_config(config)
    if callable(identifier) and not isinstance(identifier, numbers.Number):
        raise ValueError(f"Could not interpret regularizer identifier: {describe(identifier)}. fastnn computes "
                         "gradients with its own kernels, so a regularizer function cannot be used: use "
                         "fastnn.regularizers.L1, L2 or L1L2 (or a Regularizer subclass that implements "
                         "`__call__` and `backward`).")
    raise ValueError(f"Could not interpret regularizer identifier: {describe(identifier)}. Use 'l1', 'l2', "
                     "'l1_l2' or a fastnn.regularizers object such as L2(0.001).")


def serialize(regularizer):
    """``{"class_name", "config"}`` for a regularizer, or None."""
    if regularizer is None:
        return None
    return {"class_name": type(regularizer).__name__, "config": regularizer.get_config()}
