"""fastnn.regularizers: Keras 3 names, defaults, formulas, identifiers and configs
(K3 keras/src/regularizers/regularizers.py). The effect on training is tested in test_trainer_weights.py."""
import numpy as np
import pytest

from fastnn import regularizers
from fastnn.regularizers import L1, L1L2, L2, Regularizer


def test_defaults_match_keras():
    assert L1().l1 == 0.01
    assert L2().l2 == 0.01
    assert (L1L2().l1, L1L2().l2) == (0.0, 0.0)
    assert L1(None).l1 == 0.01 and L1L2(l1=None, l2=0.5).get_config() == {"l1": 0.0, "l2": 0.5}
    assert (regularizers.l1, regularizers.l2, regularizers.l1_l2) == (L1, L2, L1L2)  # Keras 3 aliases


def test_penalties_match_the_keras_docstring_examples():
    ones = np.ones((5, 5), np.float32)
    assert L2(2.0)(ones) == 50.0                      # "regularizer = L2(2.); ... 50.0"
    np.testing.assert_allclose(L1(0.01)(ones), 0.25)  # the Dense kernel example's 0.25
    x = np.array([[-1.0, 2.0], [0.5, 0.0]])
    np.testing.assert_allclose(L1L2(l1=0.1, l2=0.2)(x), 0.1 * 3.5 + 0.2 * 5.25, rtol=1e-15)


def test_backward_accumulates_the_gradient_and_returns_the_penalty():
    x = np.array([[-1.0, 2.0], [0.5, 0.0]])
    grad = np.ones_like(x)
    assert L1L2(l1=0.1, l2=0.2).backward(x, grad) == L1L2(l1=0.1, l2=0.2)(x)
    np.testing.assert_allclose(grad, 1 + 0.1 * np.sign(x) + 0.4 * x, rtol=1e-15)


@pytest.mark.parametrize("identifier, cls, config", [
    ("l1", L1, {"l1": 0.01}),
    ("l2", L2, {"l2": 0.01}),
    ("l1_l2", L1L2, {"l1": 0.01, "l2": 0.01}),  # the L1L2 docstring: "the default values used are 0.01"
    ("L1L2", L1L2, {"l1": 0.0, "l2": 0.0}),
    (L2, L2, {"l2": 0.01}),
    ({"class_name": "L2", "config": {"l2": 0.5}}, L2, {"l2": 0.5}),
])
def test_get(identifier, cls, config):
    reg = regularizers.get(identifier)
    assert type(reg) is cls and reg.get_config() == config


def test_get_passes_instances_and_none_through():
    reg = L2(0.3)
    assert regularizers.get(reg) is reg
    assert regularizers.get(None) is None


def test_config_round_trip():
    reg = L1L2(l1=0.25, l2=0.5)
    assert L1L2.from_config(reg.get_config()).get_config() == reg.get_config()
    assert regularizers.serialize(reg) == {"class_name": "L1L2", "config": {"l1": 0.25, "l2": 0.5}}
    assert regularizers.serialize(None) is None
    assert repr(reg) == "L1L2(l1=0.25, l2=0.5)"


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf"), "0.1", True])
def test_bad_factors_name_the_argument(bad):
    with pytest.raises(ValueError, match=r"L2: argument `l2` must be a non-negative number"):
        L2(bad)
    with pytest.raises(ValueError, match=r"L1L2: argument `l1` must be a non-negative number"):
        L1L2(l1=bad)


def test_bad_identifiers():
    with pytest.raises(ValueError, match=r"Could not interpret regularizer identifier: 'l3'.*'l1', 'l2', 'l1_l2'"):
        regularizers.get("l3")
    with pytest.raises(ValueError, match="a regularizer function cannot be used"):
        regularizers.get(lambda w: 0.01 * np.sum(w ** 2))
    with pytest.raises(ValueError, match="Known classes: L1, L2, L1L2"):
        regularizers.get({"class_name": "OrthogonalRegularizer", "config": {}})
    with pytest.raises(ValueError, match="Could not interpret regularizer identifier: 0.01"):
        regularizers.get(0.01)


def test_custom_subclass_must_define_its_penalty():
    class Half(Regularizer):
        pass

    with pytest.raises(NotImplementedError, match="Half must implement __call__ and backward"):
        Half()(np.ones(2))
