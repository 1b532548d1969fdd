"""print_summary / format_size: the tf.keras 2.13-2.15 text layout (docs/keras_semantics.md#summary)."""
from types import SimpleNamespace

import numpy as np
import pytest

from fastnn.utils.summary_utils import NOT_BUILT_MESSAGE, format_size, print_summary


class _FakeLayer:
    def __init__(self, name, output_shape, n_params):
        self.name = name
        self.output_shape = output_shape
        self._n_params = n_params

    def count_params(self):
        return self._n_params


class Flatten(_FakeLayer):
    pass


class Dense(_FakeLayer):
    pass


class BatchNormalization(_FakeLayer):
    pass


def _mnist_mlp():
    f32 = np.float32
    return SimpleNamespace(
        name="sequential",
        built=True,
        layers=[
            Flatten("flatten", (None, 784), 0),
            Dense("dense", (None, 128), 100480),
            Dense("dense_1", (None, 10), 1290),
        ],
        trainable_weights=[
            np.zeros((784, 128), f32),
            np.zeros(128, f32),
            np.zeros((128, 10), f32),
            np.zeros(10, f32),
        ],
        non_trainable_weights=[],
    )


def _pad(line):
    return line.ljust(65)


# Table rows are padded to 65 characters; the title and totals lines are not
# (TFK print_summary prints those with print_fn directly).
EXPECTED_MNIST_MLP = [
    'Model: "sequential"',
    "_" * 65,
    _pad(" Layer (type)                Output Shape              Param #"),
    "=" * 65,
    _pad(" flatten (Flatten)           (None, 784)               0"),
    " " * 65,
    _pad(" dense (Dense)               (None, 128)               100480"),
    " " * 65,
    _pad(" dense_1 (Dense)             (None, 10)                1290"),
    " " * 65,
    "=" * 65,
    "Total params: 101770 (397.54 KB)",
    "Trainable params: 101770 (397.54 KB)",
    "Non-trainable params: 0 (0.00 Byte)",
    "_" * 65,
]


def _lines(model, **kwargs):
    lines = []
    print_summary(model, print_fn=lines.append, **kwargs)
    return lines


def test_mnist_mlp_exact_text():
    assert _lines(_mnist_mlp()) == EXPECTED_MNIST_MLP


def test_default_print_fn_writes_to_stdout(capsys):
    print_summary(_mnist_mlp())
    assert capsys.readouterr().out == "\n".join(EXPECTED_MNIST_MLP) + "\n"


def test_column_stops_at_29_55():
    header = _lines(_mnist_mlp())[2]
    assert header.index("Output Shape") == 29
    assert header.index("Param #") == 55
    assert all(len(line) == 65 for line in _lines(_mnist_mlp())[1:11])


def test_single_dense_30_66_kb():
    model = SimpleNamespace(
        name="sequential_1",
        built=True,
        layers=[Dense("dense_2", (None, 10), 7850)],
        trainable_weights=[np.zeros((784, 10), np.float32), np.zeros(10, np.float32)],
        non_trainable_weights=[],
    )
    lines = _lines(model)
    assert lines[0] == 'Model: "sequential_1"'
    assert "Total params: 7850 (30.66 KB)" in lines
    assert "Trainable params: 7850 (30.66 KB)" in lines


def test_non_trainable_weights_and_no_thousands_separator():
    c = 256
    model = SimpleNamespace(
        name="sequential",
        built=True,
        layers=[
            Dense("dense", (None, c), 784 * c + c),
            BatchNormalization("batch_normalization", (None, c), 4 * c),
        ],
        trainable_weights=[np.zeros((784, c), np.float32), np.zeros(c, np.float32)]
        + [np.ones(c, np.float32), np.zeros(c, np.float32)],
        non_trainable_weights=[np.zeros(c, np.float32), np.ones(c, np.float32)],
    )
    lines = _lines(model)
    total = 784 * c + c + 4 * c
    assert f"Total params: {total} ({format_size(total * 4)})" in lines
    assert f"Trainable params: {total - 2 * c} ({format_size((total - 2 * c) * 4)})" in lines
    assert "Non-trainable params: 512 (2.00 KB)" in lines
    assert not any("," in line for line in lines if "params" in line)
    assert _pad(" batch_normalization (Batch  (None, 256)               1024") in lines


def test_duplicate_weight_counted_once():
    model = _mnist_mlp()
    model.trainable_weights = model.trainable_weights + model.trainable_weights[:1]
    assert "Total params: 101770 (397.54 KB)" in _lines(model)


def test_memory_uses_dtype_itemsize():
    model = SimpleNamespace(
        name="m",
        built=True,
        layers=[Dense("dense", (None, 1), 2)],
        trainable_weights=[np.zeros(2, np.float64)],
        non_trainable_weights=[],
    )
    assert "Total params: 2 (16.00 Byte)" in _lines(model)


@pytest.mark.parametrize(
    "num_bytes, expected",
    [
        (0, "0.00 Byte"),
        (1023, "1023.00 Byte"),
        (1024, "1.00 KB"),
        (407080, "397.54 KB"),
        (31400, "30.66 KB"),
        (int(1.5 * 1024**2), "1.50 MB"),
        (3 * 1024**3, "3.00 GB"),
    ],
)
def test_format_size(num_bytes, expected):
    assert format_size(num_bytes) == expected


def test_long_name_and_multiple_outputs_wrap_like_tf_keras():
    model = _mnist_mlp()
    model.layers[1].name = "a_really_long_layer_name_that_wraps"
    model.layers[1].output_shape = [(None, 10), (None, 5)]
    lines = _lines(model)
    # Column 0 holds 26 characters; column 1 breaks after "),".
    assert lines[6] == _pad(" a_really_long_layer_name_t  [(None, 10),              100480")
    assert lines[7] == _pad(" hat_wraps (Dense)            (None, 5)]")
    assert lines[8] == " " * 65
    assert all(len(line) == 65 for line in lines[1:12])


def test_one_element_shape_and_numpy_ints():
    model = _mnist_mlp()
    model.layers[0].output_shape = (None, np.int64(784))
    assert _lines(model)[4].startswith(" flatten (Flatten)           (None, 784)  ")


def test_custom_line_length_and_absolute_positions():
    lines = _lines(_mnist_mlp(), line_length=80)
    assert lines[1] == "_" * 80
    assert lines[2].index("Output Shape") == 36  # int(80 * 0.45)
    assert lines[2].index("Param #") == 68  # int(80 * 0.85)
    lines = _lines(_mnist_mlp(), line_length=70, positions=[30, 60, 70])
    assert lines[2].index("Output Shape") == 30
    assert lines[2].index("Param #") == 60
    assert len(lines[4]) == 70


def test_bad_positions_raise():
    with pytest.raises(ValueError, match="positions"):
        print_summary(_mnist_mlp(), positions=[0.5, 1.0], print_fn=lambda line: None)


def test_not_built_model_raises_keras_message():
    model = _mnist_mlp()
    model.built = False
    with pytest.raises(ValueError) as info:
        print_summary(model, print_fn=lambda line: None)
    assert str(info.value) == NOT_BUILT_MESSAGE
    assert "This model has not yet been built" in NOT_BUILT_MESSAGE


def test_layer_without_output_shape_raises():
    model = _mnist_mlp()
    model.layers[2].output_shape = None
    printed = []
    with pytest.raises(ValueError, match="has not yet been built"):
        print_summary(model, print_fn=printed.append)
    assert printed == []  # nothing half-printed
