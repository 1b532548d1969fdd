"""Every kernel has a property test: the kernels the compiled modules export (the public names of
fastnn._kernels, which tests/test_kernels_api.py holds equal to the twins') are each listed in the
KERNELS tuple of a module of this package, which compares it with its twin under hypothesis; the
engine's random models are tests/kernels/test_engine.py's. A new kernel without one fails here.

Read from the sources (not imported), so this runs where hypothesis is not installed, too.
"""
import ast
from pathlib import Path

from fastnn import _kernels

HERE = Path(__file__).parent
# kernels whose property test lives outside this package: (file, test function)
ELSEWHERE = {"Engine": (HERE.parent / "test_engine.py",
                        "test_random_models_match_the_twin_and_are_bitwise_on_any_thread_count")}


def _covered():
    """{kernel: [files]} from the literal KERNELS tuple of each test module here."""
    covered = {}
    for path in sorted(HERE.glob("test_*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "KERNELS" for t in node.targets):
                for name in ast.literal_eval(node.value):
                    covered.setdefault(name, []).append(path.name)
    return covered


def test_every_kernel_has_a_property_test():
    covered = _covered()
    for name, (path, test) in ELSEWHERE.items():
        source = path.read_text()
        assert f"def {test}(" in source and "@given(" in source, f"{name}: {path.name}::{test} is gone"
        covered.setdefault(name, []).append(path.name)
    missing = sorted(set(_kernels.KERNEL_NAMES) - set(covered))
    assert not missing, (f"kernels without a property test: {missing}; add a hypothesis test comparing each "
                         "with its twin to tests/kernels/properties/ and list it in that module's KERNELS")
    unknown = sorted(set(covered) - set(_kernels.KERNEL_NAMES))
    assert not unknown, f"KERNELS lists names that are not kernels: {unknown}"
