"""``Activation``: applies an activation function to its input."""
from fastnn import _kernels as K
from fastnn import activations
from fastnn._kernels._engine_plan import act_needs_x
from fastnn.layers.base import Layer


class Activation(Layer):
    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)
        self._cache = None

    @property
    def activation_name(self):
        return self.activation.__name__

    @property
    def activation_spec(self):
        """The activation as the kernels and the engine take it: a name, or (name, *params)."""
        return self.activation_name

    def call(self, inputs, training=False, logits=False):
        """``logits=True`` passes the input through (the trainer fuses softmax/sigmoid into the loss)."""
        act = "linear" if logits else self.activation_spec
        # Rows over the LAST axis: softmax normalises over it (Keras), elementwise ones don't care.
        flat = (-1, inputs.shape[-1])
        outputs = inputs if act == "linear" else K.activation_forward(inputs.reshape(flat), act).reshape(inputs.shape)
        self._cache = (inputs if act != "linear" and act_needs_x(act) else None, outputs, act)
        return outputs

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        inputs, outputs, act = self._cache
        if act == "linear":
            return dy
        flat = (-1, outputs.shape[-1])
        return K.activation_backward(dy.reshape(flat), outputs.reshape(flat), act,
                                     X=None if inputs is None else inputs.reshape(flat)).reshape(dy.shape)

    def get_config(self):
        config = super().get_config()
        config["activation"] = self.activation_name
        return config
