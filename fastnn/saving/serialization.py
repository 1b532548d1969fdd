"""Configs: fastnn objects <-> JSON-ready ``{"class_name": ..., "config": {...}}`` dicts.

``from_config`` only ever instantiates fastnn's own classes. A class name from a
config is looked up in a registry built from fastnn's public modules
(``fastnn.layers``, ``optimizers``, ``losses``, ``metrics``, ``initializers``,
``regularizers``) and the model classes that registered themselves
(``Sequential``); nothing is imported, evaluated or unpickled, and an unknown
name raises a ``ValueError`` listing the known ones. Saving checks the same
registries, so a model that uses a class fastnn could not rebuild (a user
subclass, say) fails when it is saved rather than when it is loaded. Keras'
``custom_objects`` has no counterpart: fastnn computes gradients with its own
kernels, so it only supports its own layers anyway.

The registries are rebuilt on each call (they are small), so classes added to
those modules later are picked up without being listed here.
"""
import json
import numbers

from fastnn import initializers, layers, losses, metrics, optimizers, regularizers
from fastnn.utils.validation import describe

_KINDS = {
    "layer": (layers, layers.Layer),
    "optimizer": (optimizers, optimizers.Optimizer),
    "loss": (losses, losses.Loss),
    "metric": (metrics, metrics.Metric),
    "initializer": (initializers, initializers.Initializer),
    "regularizer": (regularizers, regularizers.Regularizer),
    "schedule": (optimizers.schedules, optimizers.schedules.LearningRateSchedule),
}
# Exceptions a fastnn constructor raises for a bad argument; anything else is a bug and propagates.
_CONFIG_ERRORS = (TypeError, ValueError, KeyError, OverflowError)
# Model classes register themselves (``register_model_class``) instead of being imported here:
# fastnn.models imports fastnn.saving for ``model.save`` and friends, so saving importing the models
# would close an import circle (Keras 3 has the same direction: keras/src/models/model.py imports
# keras.src.saving, which does not import the models). ``import fastnn`` imports fastnn.models, so
# Sequential is registered before anything can be saved or loaded.
_MODEL_CLASSES = {}


def register_model_class(cls):
    """Class decorator: ``load_model``/``save_model`` accept and rebuild models of class ``cls``."""
    _MODEL_CLASSES[cls.__name__] = cls
    return cls


def registry(kind):
    """{class name: class} of fastnn's own classes of ``kind`` ('layer', 'optimizer', 'loss', 'metric',
    'initializer', 'regularizer' or 'model')."""
    if kind == "model":
        return dict(_MODEL_CLASSES)
    module, base = _KINDS[kind]
    found = {}
    for value in vars(module).values():
        if isinstance(value, type) and issubclass(value, base) and value is not base \
                and value.__module__.startswith("fastnn."):
            found[value.__name__] = value
    return found


# ---------------------------------------------------------------------------- serialize
def _check_registered(kind, obj):
    cls = type(obj)
    if registry(kind).get(cls.__name__) is not cls:
        raise ValueError(f"Cannot save {kind} {describe(obj)}: fastnn files can only hold fastnn's own "
                         f"classes, and {cls.__module__}.{cls.__qualname__} is not one of them.")


def serialize(kind, obj):
    """``{"class_name", "config"}`` for a fastnn object of ``kind``."""
    _check_registered(kind, obj)
    if kind == "optimizer" and obj.schedule is not None:
        _check_registered("schedule", obj.schedule)  # a schedule of your own: its class could not be rebuilt
    return {"class_name": type(obj).__name__, "config": obj.get_config()}


def serialize_model(model):
    """The model's config, checked to be rebuildable (every layer a fastnn class)."""
    _check_registered("model", model)
    for layer in model.layers:
        _check_registered("layer", layer)
        for key, value in vars(layer).items():
            if key.endswith("_regularizer") and value is not None:
                _check_registered("regularizer", value)
    config = model.get_config()
    # Sequential.get_config() has no `trainable`; keep it so a frozen model stays frozen.
    config.setdefault("trainable", model.trainable)
    return {"class_name": type(model).__name__, "config": config}


def _serialize_metric(identifier):
    if isinstance(identifier, str):
        return identifier
    if isinstance(identifier, type):
        # A metric class (``metrics=[CategoricalAccuracy]``): rebuilt as the class itself.
        if registry("metric").get(identifier.__name__) is not identifier:
            raise ValueError(f"Cannot save metric {identifier!r}: it is not one of fastnn's metric classes.")
        return {"class_name": identifier.__name__, "config": None}
    return serialize("metric", identifier)


def serialize_compile(model):
    """The arguments ``compile`` was given, as JSON (None if the model is not compiled)."""
    if not model.compiled:
        return None
    ids = list(zip(model._metric_ids, model._metric_weighted))
    config = {"optimizer": serialize("optimizer", model.optimizer),
              "loss": None if model.loss is None else serialize("loss", model.loss),
              "metrics": [_serialize_metric(m) for m, w in ids if not w]}
    if any(w for _, w in ids):  # only then, so files of models without them keep their three keys
        config["weighted_metrics"] = [_serialize_metric(m) for m, w in ids if w]
    return config


# ---------------------------------------------------------------------------- deserialize
def _class_for(kind, spec, where):
    if not isinstance(spec, dict) or not isinstance(spec.get("class_name"), str) or "config" not in spec:
        raise ValueError(f"{where}: expected a {kind} as {{\"class_name\": ..., \"config\": ...}}; received "
                         f"{describe(spec)}")
    known = registry(kind)
    cls = known.get(spec["class_name"])
    if cls is None:
        raise ValueError(f"{where}: unknown {kind} class {spec['class_name']!r}. fastnn rebuilds only its "
                         f"own classes: {', '.join(sorted(known))}.")
    return cls


def _check_config_dict(config, where):
    if not isinstance(config, dict) or not all(isinstance(k, str) for k in config):
        raise ValueError(f"{where}: a config must be a JSON object with string keys; received "
                         f"{describe(config)}")


def _nested_kind(key):
    if key == "learning_rate":
        return "schedule"
    return "regularizer" if key.endswith("_regularizer") else "initializer"


def deserialize(kind, spec, where="config"):
    """Rebuild a fastnn object of ``kind`` from ``{"class_name", "config"}``."""
    cls = _class_for(kind, spec, where)
    config = spec["config"]
    where = f"{where} ({spec['class_name']})"
    _check_config_dict(config, where)
    # Nested objects are initializers (Dense's kernel_initializer, ...) or regularizers (`*_regularizer`).
    config = {key: deserialize(_nested_kind(key), value, f"{where} `{key}`")
              if isinstance(value, dict) and "class_name" in value else value
              for key, value in config.items()}
    try:
        return cls.from_config(config) if hasattr(cls, "from_config") else cls(**config)
    except _CONFIG_ERRORS as exc:
        raise ValueError(f"{where}: cannot rebuild the {kind} from its config: {exc}") from exc


def deserialize_model(spec, where="config"):
    cls = _class_for("model", spec, where)
    _check_config_dict(spec["config"], where)
    return cls.from_config(spec["config"])


def sequential_from_config(cls, config):
    """``Sequential.from_config``: layers from their configs, built if the config has an input shape."""
    where = f"{cls.__name__} config"
    _check_config_dict(config, where)
    unknown = set(config) - {"name", "layers", "build_input_shape", "trainable"}
    if unknown:
        raise ValueError(f"{where}: unrecognized key(s) {sorted(unknown)}")
    entries = config.get("layers", [])
    if not isinstance(entries, list):
        raise ValueError(f"{where}: `layers` must be a list; received {describe(entries)}")
    shape = config.get("build_input_shape")
    if shape is not None and not (isinstance(shape, (list, tuple)) and len(shape) >= 2 and all(
            d is None or (isinstance(d, numbers.Integral) and not isinstance(d, bool) and d > 0)
            for d in shape)):
        raise ValueError(f"{where}: `build_input_shape` must be a list of positive integers or null (with "
                         f"the batch dimension first); received {describe(shape)}")
    built_layers = [deserialize("layer", entry, f"{where} layer {i}") for i, entry in enumerate(entries)]
    name, trainable = config.get("name"), config.get("trainable", True)
    if (name is not None and not isinstance(name, str)) or not isinstance(trainable, bool):
        raise ValueError(f"{where}: `name` must be a string and `trainable` a boolean; received {name!r}, "
                         f"{trainable!r}")
    try:
        model = cls(name=name, trainable=trainable)
        for layer in built_layers:
            model.add(layer)
        if shape is not None and built_layers and not model.built:
            model.build(tuple(shape))
    except _CONFIG_ERRORS as exc:
        raise ValueError(f"{where}: cannot rebuild the model from its config: {exc}") from exc
    return model


def compile_from_config(model, config, where="compile_config"):
    """``model.compile(...)`` with the optimizer, loss and metrics of a ``serialize_compile`` dict."""
    _check_config_dict(config, where)
    if not {"optimizer", "loss", "metrics"} <= set(config) <= {"optimizer", "loss", "metrics", "weighted_metrics"}:
        raise ValueError(f"{where}: expected the keys ['loss', 'metrics', 'optimizer'] (and optionally "
                         f"'weighted_metrics'); received {sorted(config)}")
    optimizer = deserialize("optimizer", config["optimizer"], f"{where} optimizer")
    loss = None if config["loss"] is None else deserialize("loss", config["loss"], f"{where} loss")
    lists = {}
    for key in ("metrics", "weighted_metrics"):
        specs = config.get(key, [])
        if not isinstance(specs, list):
            raise ValueError(f"{where}: `{key}` must be a list; received {describe(specs)}")
        metric_ids = []
        for i, spec in enumerate(specs):
            if isinstance(spec, str):
                metric_ids.append(spec)
            elif isinstance(spec, dict) and spec.get("config", 0) is None:
                metric_ids.append(_class_for("metric", spec, f"{where} {key[:-1]} {i}"))
            else:
                metric_ids.append(deserialize("metric", spec, f"{where} {key[:-1]} {i}"))
        lists[key] = metric_ids
    try:
        model.compile(optimizer=optimizer, loss=loss, metrics=lists["metrics"],
                      weighted_metrics=lists["weighted_metrics"] or None)
    except _CONFIG_ERRORS as exc:
        raise ValueError(f"{where}: cannot compile the model: {exc}") from exc
    return model


# ---------------------------------------------------------------------------- JSON strings
def model_to_json(model, **kwargs):
    """``model.to_json()``: Keras 3's layout (``keras/src/saving/serialization_lib.py``
    ``serialize_keras_object``): ``module``, ``class_name``, ``config`` (``model.get_config()``, with the
    input shape Keras keeps in ``build_config``), ``registered_name``, and ``compile_config`` when the model
    is compiled. No weights. ``kwargs`` go to ``json.dumps``."""
    spec = serialize_model(model)
    document = {"module": "fastnn.models", "class_name": spec["class_name"], "config": spec["config"],
                "registered_name": None}
    compile_config = serialize_compile(model)
    if compile_config is not None:
        document["compile_config"] = compile_config
    return json.dumps(document, **kwargs)


def model_from_json(json_string, custom_objects=None):
    """A new model (fresh weights) from ``to_json()``'s string; compiled if it was compiled, as Keras 3's
    ``deserialize_keras_object`` does with a ``compile_config``."""
    if custom_objects:
        raise ValueError("model_from_json: argument `custom_objects` is not supported: fastnn rebuilds only its "
                         f"own classes; received {describe(custom_objects)}")
    if not isinstance(json_string, (str, bytes, bytearray)):
        raise ValueError(f"model_from_json: argument `json_string` must be a JSON string; received "
                         f"{describe(json_string)}")
    try:
        document = json.loads(json_string)
    except ValueError as exc:
        raise ValueError(f"model_from_json: argument `json_string` is not valid JSON: {exc}") from exc
    where = "model_from_json"
    _check_config_dict(document, where)
    unknown = set(document) - {"module", "class_name", "config", "registered_name", "compile_config",
                               "build_config"}
    if unknown:
        raise ValueError(f"{where}: unrecognized key(s) {sorted(unknown)}")
    model = deserialize_model(document, where)
    if document.get("compile_config") is not None:
        compile_from_config(model, document["compile_config"], f"{where} compile_config")
    return model
