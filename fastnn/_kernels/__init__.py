"""Kernel selection: the compiled (Cython/OpenMP) kernels, or their NumPy twin.

Everything above this package calls kernels through this namespace only, e.g.
``from fastnn import _kernels as K; K.dense_forward(...)``.

``FASTNN_KERNELS=reference`` selects the pure-NumPy twin in ``_reference``.
Otherwise the compiled modules are used; if they cannot be imported (a source
checkout that was never built) fastnn falls back to the twin and says so with
a ``RuntimeWarning`` -- never silently, because it is many times slower.
"""
import os
import warnings

from . import _reference, _reference_engine

# The NumPy twins: every public callable these modules define is a kernel the compiled modules must define too.
_TWIN_MODULES = (_reference, _reference_engine)
KERNEL_NAMES = tuple(sorted(
    name for module in _TWIN_MODULES for name in dir(module)
    if not name.startswith("_") and callable(getattr(module, name))
    and getattr(getattr(module, name), "__module__", None) == module.__name__
))

_COMPILED_MODULES = ("activations", "dense", "losses", "metrics", "optim", "engine", "sparse", "bag_of_words",
                     "regularizers", "dropout", "batch_norm", "unpickle", "random")


def twin(name):
    """The NumPy twin of kernel `name`."""
    for module in _TWIN_MODULES:
        if name in vars(module):
            return getattr(module, name)
    raise AttributeError(name)


def _load_compiled():
    import importlib

    namespace = {}
    for module_name in _COMPILED_MODULES:
        module = importlib.import_module(f"{__name__}.{module_name}")
        for name in KERNEL_NAMES:
            if hasattr(module, name):
                namespace[name] = getattr(module, name)
    missing = sorted(set(KERNEL_NAMES) - set(namespace))
    if missing:
        raise ImportError(f"compiled kernels are missing {missing}")
    return namespace


def _select():
    wanted = os.environ.get("FASTNN_KERNELS", "compiled").strip().lower()
    if wanted not in ("compiled", "reference"):
        raise ValueError(f"FASTNN_KERNELS must be 'compiled' or 'reference'; received {wanted!r}")
    if wanted == "reference":
        return "reference", {name: twin(name) for name in KERNEL_NAMES}
    try:
        return "compiled", _load_compiled()
    except ImportError as exc:
        warnings.warn(
            f"fastnn's compiled kernels could not be imported ({exc}); running on the pure-NumPy "
            "reference kernels, which are several times slower. Install fastnn with `pip install .` "
            "(or set FASTNN_KERNELS=reference to silence this).",
            RuntimeWarning,
            stacklevel=3,
        )
        return "reference", {name: twin(name) for name in KERNEL_NAMES}


def __getattr__(name):
    # Kernels are chosen on first use, not at `import fastnn`: the compiled modules pull
    # in scipy.linalg (for cython_blas), about 0.2 s that a script which only imports
    # fastnn, or only loads a data set, should not pay (docs/keras_semantics.md#import-time).
    if name == "BACKEND" or name in KERNEL_NAMES:
        backend, namespace = _select()
        globals().update(namespace)
        globals()["BACKEND"] = backend
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

ACTIVATIONS = _reference.ACTIVATIONS
LOSSES = _reference.LOSSES
METRICS = _reference.METRICS
OPTIMIZERS = _reference.OPTIMIZERS
EPSILON = _reference.EPSILON
