"""``Sequential``: a linear stack of layers that owns one parameter arena.

All weights of a built model live in one contiguous buffer (``_params``) and
their gradients in a second with the same layout (``_grads``); each layer's
``Weight`` holds views into them. An optimizer step is therefore one flat
kernel call, and the fused training engine sees the whole model as offsets
into one array (llm.c's ``params_memory``).
"""
import numpy as np

from fastnn.distribution.distribution_lib import writes_files
from fastnn.layers.base import Layer, _as_shape
from fastnn.layers.input_layer import InputLayer
from fastnn.layers.weight import set_values
from fastnn.models.trainer import Trainer
from fastnn.saving import pickling, saving_api, serialization
from fastnn.utils.array_utils import aligned_empty, aligned_zeros
from fastnn.utils.naming import auto_name
from fastnn.utils.validation import check_kwargs, describe, shape_str


@serialization.register_model_class
class Sequential(Trainer):
    def __init__(self, layers=None, name=None, trainable=True, **kwargs):
        check_kwargs("Sequential", kwargs)
        self.name = name or auto_name("Sequential")
        self._layers = []
        self.trainable = trainable
        self._batch_input_shape = None
        self.built = False
        self._params = None
        self._grads = None
        super().__init__()
        if layers is not None:
            if isinstance(layers, Layer):
                layers = [layers]
            if not isinstance(layers, (list, tuple)):
                raise TypeError(f"Sequential: argument `layers` must be a list of layers; received "
                                f"{describe(layers)}")
            for layer in layers:
                self.add(layer)

    # ------------------------------------------------------------------ structure
    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        """As in Keras, setting it sets every layer's flag too (a frozen BatchNormalization then runs in
        inference mode); layers added later keep their own flag, but a frozen model trains nothing."""
        self._trainable = bool(value)
        for layer in self._layers:
            layer.trainable = self._trainable
        if hasattr(self, "_runner"):
            self._invalidate_engine()

    def add(self, layer):
        if not isinstance(layer, Layer):
            raise TypeError("The added layer must be an instance of class Layer. "
                            f"Received: layer={describe(layer)}")
        if isinstance(layer, InputLayer):
            if self._layers:
                raise ValueError("Sequential: an InputLayer can only be the first layer of the model; "
                                 f"the model already has {len(self._layers)} layer(s).")
            self._batch_input_shape = layer.batch_input_shape
            return
        if any(existing.name == layer.name for existing in self._layers):
            raise ValueError("All layers added to a Sequential model should have unique names. "
                             f"Name '{layer.name}' is already the name of a layer in this model. Update the "
                             "`name` argument to pass a unique name.")
        if not self._layers and self._batch_input_shape is None and layer.batch_input_shape is not None:
            self._batch_input_shape = layer.batch_input_shape
        self._layers.append(layer)
        self.built = False
        if self._batch_input_shape is not None:
            self.build()

    def pop(self):
        if not self._layers:
            raise TypeError("There are no layers in the model.")
        layer = self._layers.pop()
        self.built = False
        if self._layers and self._batch_input_shape is not None:
            self.build()
        return layer

    @property
    def layers(self):
        return list(self._layers)

    def get_layer(self, name=None, index=None):
        if index is not None:
            return self._layers[index]
        for layer in self._layers:
            if layer.name == name:
                return layer
        raise ValueError(f"No such layer: {name}. Existing layers are: {[l.name for l in self._layers]}.")

    # ------------------------------------------------------------------ building
    def build(self, input_shape=None):
        if input_shape is not None:
            input_shape = _as_shape(f"Sequential '{self.name}'.build", "input_shape", input_shape)
            if len(input_shape) < 2:
                raise ValueError(f"Sequential '{self.name}'.build: argument `input_shape` must include the batch "
                                 f"dimension, e.g. (None, 784); received {shape_str(input_shape)}")
            self._batch_input_shape = (None,) + input_shape[1:]
        if self._batch_input_shape is None:
            raise ValueError(f"Sequential '{self.name}' cannot be built without an input shape. Pass "
                             "`input_shape` to the first layer, start with `Input(shape=...)`, or call "
                             "`build((None, features))`.")
        if not self._layers:
            raise ValueError(f"Sequential '{self.name}' has no layers to build.")
        shape = self._batch_input_shape
        for layer in self._layers:
            shape = layer.build_for(shape)
        self._pack_arena()
        self.built = True

    def _pack_arena(self):
        weights = self.weights
        dtypes = {w.dtype for w in weights}
        if len(dtypes) > 1:
            raise ValueError(f"Sequential '{self.name}': all layers must use one dtype; found {sorted(map(str, dtypes))}")
        dtype = dtypes.pop() if dtypes else np.dtype(np.float32)
        total = sum(w.value.size for w in weights)
        params = aligned_empty(total, dtype)
        grads = aligned_zeros(total, dtype)
        offset = 0
        self._offsets = {}
        for weight in weights:
            n = weight.value.size
            weight.bind(params[offset:offset + n].reshape(weight.shape), grads[offset:offset + n].reshape(weight.shape))
            self._offsets[id(weight)] = offset
            offset += n
        self._params, self._grads = params, grads
        self._invalidate_engine()

    def weight_offset(self, weight):
        """Offset of ``weight`` in the parameter arena (set when the arena is packed)."""
        return self._offsets[id(weight)]

    @property
    def input_shape(self):
        return self._batch_input_shape

    @property
    def output_shape(self):
        if not self.built:
            raise ValueError(f"Sequential '{self.name}' has not been built yet.")
        return self._layers[-1].output_shape

    # ------------------------------------------------------------------ weights
    @property
    def weights(self):
        return [w for layer in self._layers for w in layer.weights]

    @property
    def trainable_weights(self):
        if not self.trainable:
            return []
        return [w for layer in self._layers for w in layer.trainable_weights]

    @property
    def non_trainable_weights(self):
        if not self.trainable:
            return self.weights
        return [w for layer in self._layers for w in layer.non_trainable_weights]

    def count_params(self):
        self._require_built("count_params")
        return int(sum(w.value.size for w in self.weights))

    def get_weights(self):
        return [w.numpy() for w in self.weights]

    def set_weights(self, weights):
        self._require_built("set_weights")
        weights = list(weights)
        own = self.weights
        if len(weights) != len(own):
            raise ValueError(f"Sequential '{self.name}' expects {len(own)} weight arrays; received {len(weights)}.")
        set_values(own, weights, "set_weights")

    def _require_built(self, what):
        if not self.built:
            raise ValueError(f"This model has not yet been built. Build the model first by calling `build()` or "
                             f"by calling the model on a batch of data (needed for `{what}`).")

    # ------------------------------------------------------------------ display and config
    def summary(self, line_length=None, positions=None, print_fn=None):
        from fastnn.utils.summary_utils import print_summary

        print_summary(self, line_length=line_length, positions=positions, print_fn=print_fn)

    def get_config(self):
        return {"name": self.name, "layers": [{"class_name": type(l).__name__, "config": l.get_config()}
                                              for l in self._layers],
                "build_input_shape": self._batch_input_shape}

    def to_json(self, **kwargs):
        """The architecture (and compile arguments) as a JSON string in Keras 3's layout; no weights.
        ``fastnn.models.model_from_json`` rebuilds it. ``kwargs`` go to ``json.dumps``."""
        return serialization.model_to_json(self, **kwargs)

    def __reduce__(self):
        # pickle / copy.deepcopy: the bytes of the saved file, weights and optimizer state included (as
        # Keras 3 pickles models; fastnn.saving.pickling)
        return pickling.model_from_bytes, (pickling.model_to_bytes(self),)

    def __repr__(self):
        return f"<Sequential name={self.name}, layers={len(self._layers)}, built={self.built}>"

    def __str__(self):
        return f"Sequential '{self.name}' with layers " + ", ".join(
            f"{l.name} {shape_str(l.output_shape) if l.output_shape else ''}" for l in self._layers)

    # ------------------------------------------------------------------ saving (fastnn.saving does the work)
    def save(self, filepath, overwrite=True):
        """Save the architecture, weights, compile arguments and optimizer state; ``filepath`` ends in
        ``.keras`` (Keras' name), ``.fastnn``, ``.h5`` or ``.hdf5``, and the file holds fastnn's own format
        (``fastnn.saving.file_format``), which ``fastnn.models.load_model`` reads and Keras cannot. Under a
        data-parallel distribution only rank 0 writes."""
        if writes_files():
            saving_api.save_model(self, filepath, overwrite=overwrite)

    def save_weights(self, filepath, overwrite=True):
        """Save the weights (in ``self.weights`` order) in fastnn's format to a ``.weights.h5`` (Keras' name)
        or ``.weights.npz`` file. Under a data-parallel distribution only rank 0 writes."""
        if writes_files():
            saving_api.save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath):
        """Load weights written by ``save_weights`` (or ``save``) into this built model."""
        saving_api.load_weights(self, filepath)

    @classmethod
    def from_config(cls, config):
        """A new, freshly initialised model from ``get_config()``'s output (built if it has an input
        shape)."""
        return serialization.sequential_from_config(cls, config)
