"""fastnn.utils.numerical_utils.to_categorical against hand-built one-hot arrays (Keras 3 semantics)."""
import numpy as np
import pytest

from fastnn.utils.numerical_utils import to_categorical


def one_hot_by_hand(labels, num_classes):
    labels = np.asarray(labels)
    out = np.zeros(labels.shape + (num_classes,), dtype=np.float32)
    for index in np.ndindex(labels.shape):
        out[index + (int(labels[index]),)] = 1.0
    return out


def test_keras_docstring_example():
    out = to_categorical([0, 1, 2, 3], num_classes=4)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.eye(4, dtype=np.float32))


@pytest.mark.parametrize("shape", [(7,), (3, 4), (2, 3, 2)])
@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.int64])
def test_matches_hand_built_one_hot(shape, dtype):
    labels = np.random.default_rng(0).integers(0, 5, size=shape).astype(dtype)
    out = to_categorical(labels, num_classes=6)
    assert out.shape == shape + (6,) and out.dtype == np.float32
    np.testing.assert_array_equal(out, one_hot_by_hand(labels, 6))
    assert (out.sum(axis=-1) == 1).all()


def test_num_classes_inferred_as_max_plus_one():
    out = to_categorical(np.array([2, 0, 1, 2]))
    np.testing.assert_array_equal(out, one_hot_by_hand([2, 0, 1, 2], 3))
    assert to_categorical([0, 4]).shape == (2, 5)


def test_trailing_axis_of_one_is_squeezed():
    labels = np.array([[1], [0], [3]])
    out = to_categorical(labels, num_classes=4)
    assert out.shape == (3, 4)
    np.testing.assert_array_equal(out, one_hot_by_hand([1, 0, 3], 4))
    assert to_categorical(np.zeros((2, 3, 1), dtype=int), 2).shape == (2, 3, 2)
    assert to_categorical(np.array([1]), 3).shape == (1, 3)  # a 1-D (1,) is not squeezed


def test_scalar_list_and_empty_inputs():
    np.testing.assert_array_equal(to_categorical(2, num_classes=3), [0, 0, 1])
    np.testing.assert_array_equal(to_categorical([[0, 1]], 2), [[[1, 0], [0, 1]]])
    empty = to_categorical(np.array([], dtype=int), num_classes=3)
    assert empty.shape == (0, 3) and empty.dtype == np.float32


def test_whole_floats_and_bools_are_labels():
    np.testing.assert_array_equal(to_categorical(np.array([1.0, 0.0, 2.0]), 3), one_hot_by_hand([1, 0, 2], 3))
    np.testing.assert_array_equal(to_categorical(np.array([True, False])), [[0, 1], [1, 0]])


def test_input_is_not_modified():
    labels = np.array([[2], [1]])
    to_categorical(labels, 3)
    assert labels.tolist() == [[2], [1]]


@pytest.mark.parametrize("x, num_classes, match", [
    ([0, -1, 2], None, r"`x` must hold class indices >= 0; received the label -1"),
    ([0, 10, 3], 10, r"`x` must hold class indices below num_classes=10; received the label 10"),
    ([0, 1.5], None, r"`x` must hold integer class indices; received the value 1.5"),
    ([0, np.nan], 3, r"`x` must hold integer class indices; received the value nan"),
    (["cat", "dog"], None, r"`x` must hold integer class indices; received"),
    ([[0, None]], 2, r"`x` must hold integer class indices; received"),
    ([0, 1], 0, r"`num_classes` must be a positive integer; received 0"),
    ([0, 1], -3, r"`num_classes` must be a positive integer; received -3"),
    ([0, 1], 2.5, r"`num_classes` must be a positive integer; received 2.5"),
    ([0, 1], True, r"`num_classes` must be a positive integer"),
    (np.array([], dtype=int), None, r"cannot infer `num_classes` from an empty `x`"),
])
def test_errors_name_the_argument_and_the_value(x, num_classes, match):
    with pytest.raises(ValueError, match=match) as info:
        to_categorical(x, num_classes=num_classes)
    assert str(info.value).startswith("to_categorical")


def test_error_suggests_enough_classes():
    with pytest.raises(ValueError, match=r"Pass num_classes=8 or larger"):
        to_categorical(np.array([[1, 7]]), num_classes=5)
