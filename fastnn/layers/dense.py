"""``Dense``: ``output = activation(inputs @ kernel + bias)``, kernel shaped (input_dim, units)."""
from fastnn import _kernels as K
from fastnn import activations, initializers, regularizers
from fastnn._kernels._engine_plan import act_needs_x
from fastnn.layers.base import Layer
from fastnn.utils.sparse_utils import CSRRows
from fastnn.utils.validation import check_positive_int, describe, shape_str


class Dense(Layer):
    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.units = check_positive_int(f"Dense '{self.name}'", "units", units)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        # Penalties on the weights, added to the training loss (fastnn.regularizers).
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        if activity_regularizer is not None:
            raise ValueError(f"Dense '{self.name}': argument `activity_regularizer` is not supported by fastnn "
                             f"yet; received {describe(activity_regularizer)}. Use `kernel_regularizer` or "
                             "`bias_regularizer`.")
        self.kernel = None
        self.bias = None
        self._cache = None

    def build(self, input_shape):
        if len(input_shape) != 2 or input_shape[-1] is None:
            hint = " Add a Flatten layer first." if len(input_shape) > 2 else ""
            raise ValueError(f"Dense '{self.name}' expects input of shape (None, features); "
                             f"received {shape_str(input_shape)}.{hint}")
        self.kernel = self.add_weight("kernel", (input_shape[-1], self.units), self.kernel_initializer,
                                      regularizer=self.kernel_regularizer)
        if self.use_bias:
            self.bias = self.add_weight("bias", (self.units,), self.bias_initializer,
                                        regularizer=self.bias_regularizer)
        self.built = True

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    @property
    def activation_name(self):
        return self.activation.__name__

    def call(self, inputs, training=False, logits=False):
        """``logits=True`` returns the pre-activation (the trainer fuses softmax/sigmoid into the loss)."""
        act = "linear" if logits else self.activation_name
        bias = self.bias.value if self.use_bias else None
        # gelu, silu, ... differentiate from their input: keep the pre-activation for backward
        fused = "linear" if act_needs_x(act) else act
        if isinstance(inputs, CSRRows):
            # Multi-hot / bag-of-words input: sum the kernel rows of the active features.
            m = inputs.matrix
            outputs = K.csr_dense_forward(m.indptr, m.indices, m.data, self.kernel.value, bias, fused,
                                          rows=inputs.rows)
        else:
            outputs = K.dense_forward(inputs, self.kernel.value, bias, fused)
        z = None
        if fused != act:
            z, outputs = outputs, K.activation_forward(outputs, act)
        self._cache = (inputs, outputs, act, z)
        return outputs

    def backward(self, dy, need_dx=True):
        if self._cache is None:
            raise RuntimeError(f"Dense '{self.name}': backward() called before call().")
        inputs, outputs, act, z = self._cache
        dz = dy if act == "linear" else K.activation_backward(dy, outputs, act, X=z)
        db = self.bias.grad if self.use_bias else None
        if isinstance(inputs, CSRRows):
            if need_dx:
                raise ValueError(f"Dense '{self.name}': sparse inputs are only supported by the first layer.")
            m = inputs.matrix
            K.csr_dense_backward(m.indptr, m.indices, m.data, dz, self.kernel.grad, db, rows=inputs.rows)
            return None
        return K.dense_backward(dz, inputs, self.kernel.value, self.kernel.grad, db, compute_dX=need_dx)

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, activation=self.activation_name, use_bias=self.use_bias,
                      kernel_initializer=initializers.serialize(self.kernel_initializer),
                      bias_initializer=initializers.serialize(self.bias_initializer),
                      kernel_regularizer=regularizers.serialize(self.kernel_regularizer),
                      bias_regularizer=regularizers.serialize(self.bias_regularizer))
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("kernel_initializer", "bias_initializer"):
            value = config.get(key)
            if isinstance(value, dict):
                config[key] = getattr(initializers, value["class_name"]).from_config(value["config"])
        for key in ("kernel_regularizer", "bias_regularizer"):
            config[key] = regularizers.get(config.get(key))
        return cls(**config)

    def __repr__(self):
        return f"<Dense name={self.name}, units={self.units}, activation={self.activation_name}>"

