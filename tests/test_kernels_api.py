"""The compiled kernel modules export exactly _reference's kernels, with identical signatures.

thinc's test_ops_consistency in spirit: a kernel whose parameters, defaults or
names drift from its NumPy twin breaks FASTNN_KERNELS=reference and the tests
that compare the two.
"""
import importlib
import inspect

import pytest

from fastnn import _kernels
from fastnn._kernels import _reference as R

KERNEL_NAMES = _kernels.KERNEL_NAMES


def _compiled_modules():
    return {name: importlib.import_module(f"fastnn._kernels.{name}") for name in _kernels._COMPILED_MODULES}


def _public_kernels(module):
    """Public callables a compiled module defines (not ones it imports)."""
    names = set()
    for name in dir(module):
        obj = getattr(module, name)
        if name.startswith("_") or not callable(obj):
            continue
        if getattr(obj, "__module__", None) == module.__name__:
            names.add(name)
    return names


def test_compiled_modules_export_exactly_the_reference_kernels():
    exported = {}
    for mod_name, module in _compiled_modules().items():
        for name in _public_kernels(module):
            assert name not in exported, f"{name} defined in both {exported.get(name)} and {mod_name}"
            exported[name] = mod_name
    missing = sorted(set(KERNEL_NAMES) - set(exported))
    extra = sorted(set(exported) - set(KERNEL_NAMES))
    assert not missing, f"compiled modules lack {missing}"
    assert not extra, f"compiled modules define kernels _reference does not have: {extra}"


def _compiled(name):
    for module in _compiled_modules().values():
        if name in _public_kernels(module):
            return getattr(module, name)
    pytest.fail(f"no compiled {name}")


@pytest.mark.parametrize("name", KERNEL_NAMES)
def test_signatures_match_the_reference(name):
    ref, comp = _kernels.twin(name), _compiled(name)
    assert inspect.signature(comp) == inspect.signature(ref), name
    if inspect.isclass(ref):
        assert inspect.isclass(comp)
        public = [m for m, v in vars(ref).items() if callable(v) and not m.startswith("_")]
        for method in public:
            assert hasattr(comp, method), f"{name}.{method} missing"
            assert inspect.signature(getattr(comp, method)) == inspect.signature(getattr(ref, method)), \
                f"{name}.{method}"


def test_selector_uses_the_compiled_kernels():
    if _kernels.BACKEND != "compiled":
        pytest.skip("FASTNN_KERNELS=reference run")
    for name in KERNEL_NAMES:
        assert getattr(_kernels, name) is not _kernels.twin(name), name


def test_constants_agree_with_the_reference():
    from fastnn._kernels import _engine_plan as P
    from fastnn._kernels import engine
    assert set(engine._LOSS_CODES) == set(P.LOSSES) and set(engine._OPT_CODES) == set(P.OPTIMIZERS)
    # losses.pyx clips with FASTNN_EPSILON (csrc/fastnn_kernels.h): check it through a clipped value
    from fastnn._kernels import losses
    import numpy as np
    p = np.array([[0.0, 1.0]])
    assert losses.bxent_forward(p, np.array([[1.0, 1.0]]))[0] == R.bxent_forward(p, np.array([[1.0, 1.0]]))[0]
