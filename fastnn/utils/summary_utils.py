"""``print_summary``: the plain-text ``model.summary()`` of tf.keras 2.13-2.15.

Layout and wrapping follow TFK ``tf_keras/utils/layer_utils.py``
(``print_summary``'s sequential branch, ``print_row``, ``readable_memory_size``,
``weight_memory_size``): width 65, column stops at 45/85/100 % of the width,
table rows padded to the width, a blank row after every layer, parameter
counts without thousands separators and sizes in Byte/KB/MB/GB (/1024, two
decimals). As in TFK, the title and the totals lines are not padded. K3's
``rich`` table was not copied: it needs a dependency and its box-drawing
characters do not survive every log file.
"""
from fastnn.utils.validation import describe, shape_str

NOT_BUILT_MESSAGE = (
    "This model has not yet been built. Build the model first by calling `build()` "
    "or by calling the model on a batch of data."
)

_UNITS = ("Byte", "KB", "MB", "GB", "TB", "PB")

# TFK print_row breaks a long cell just after the end of a tuple/list/dict item.
_LINE_BREAKS = ("),", "},", "],", "',")


def format_size(num_bytes):
    """Human-readable memory size: ``397.54 KB``, ``0.00 Byte`` (TFK ``readable_memory_size``)."""
    size = float(num_bytes)
    for unit in _UNITS:
        if size / 1024 < 1:
            return f"{size:.2f} {unit}"
        size /= 1024
    return f"{size:.2f} {_UNITS[-1]}"


def _unique(weights):
    # Count each weight once even if a model lists it twice (TFK dedupes by id).
    return list({id(w): w for w in weights}.values())


def _count(weights):
    return int(sum(int(w.size) for w in _unique(weights)))


def _memory(weights):
    return int(sum(int(w.size) * w.dtype.itemsize for w in _unique(weights)))


def _format_output_shape(shape):
    if isinstance(shape, list):  # several outputs
        return "[" + ", ".join(_format_output_shape(s) for s in shape) + "]"
    return shape_str(shape)


def _rows(fields, positions):
    """Lines of one table row; a cell too long for its column wraps onto
    further lines (TFK ``print_row`` with nested_level=0)."""
    left = [str(f) for f in fields]
    last = len(positions) - 1
    lines = []
    while any(left):
        line = ""
        for col in range(len(left)):
            start = positions[col - 1] if col > 0 else 0
            space = 0 if col == last else 2  # two spaces between columns
            cutoff = positions[col] - start - space
            if col != last:
                cutoff -= 1  # the leading space of the row / column alignment
            cutoff = max(cutoff, 1)  # never loop forever on a tiny line_length
            fit = left[col][:cutoff]
            breaks = [fit.find(b) + len(b) for b in _LINE_BREAKS if fit.find(b) >= 0]
            if breaks:
                cutoff = min(breaks)
                fit = fit[:cutoff]
            if col == 0:
                line += " "
            line += fit + " " * space
            left[col] = left[col][cutoff:]
            line += " " * (positions[col] - len(line))
        lines.append(line)
    return lines


def print_summary(model, line_length=None, positions=None, print_fn=None):
    """Print a summary of a Sequential-like model in the tf.keras 2.15 format.

    Args:
        model: a built model with ``name``, ``layers``, ``trainable_weights``
            and ``non_trainable_weights``; each layer has ``name``,
            ``output_shape`` and ``count_params()``.
        line_length: total width of the table (default 65).
        positions: the right edge of each of the three columns, as fractions
            of ``line_length`` (default ``[0.45, 0.85, 1.0]``) or, if the last
            is > 1, as absolute character positions.
        print_fn: called once per line with the line as its only argument;
            defaults to ``print``.
    """
    if not getattr(model, "built", True):
        raise ValueError(NOT_BUILT_MESSAGE)
    if print_fn is None:
        print_fn = print
    line_length = line_length or 65
    if isinstance(line_length, bool) or not isinstance(line_length, int) or line_length <= 0:
        raise ValueError(
            f"print_summary: `line_length` must be a positive integer; received {describe(line_length)}."
        )
    positions = list(positions) if positions is not None else [0.45, 0.85, 1.0]
    if len(positions) != 3:
        raise ValueError(
            "print_summary: `positions` must hold 3 column positions (Layer (type), Output Shape, "
            f"Param #); received {describe(positions)}."
        )
    if positions[-1] <= 1:
        positions = [int(line_length * p) for p in positions]

    rows = []
    for layer in model.layers:
        output_shape = getattr(layer, "output_shape", None)
        if output_shape is None:
            raise ValueError(NOT_BUILT_MESSAGE)
        name = f"{layer.name} ({type(layer).__name__})"
        rows.append([name, _format_output_shape(output_shape), layer.count_params()])

    print_fn(f'Model: "{model.name}"')
    print_fn("_" * line_length)
    for line in _rows(["Layer (type)", "Output Shape", "Param #"], positions):
        print_fn(line)
    print_fn("=" * line_length)
    for fields in rows:
        for line in _rows(fields, positions):
            print_fn(line)
        print_fn(" " * line_length)
    print_fn("=" * line_length)

    trainable, non_trainable = model.trainable_weights, model.non_trainable_weights
    trainable_count, non_trainable_count = _count(trainable), _count(non_trainable)
    trainable_memory, non_trainable_memory = _memory(trainable), _memory(non_trainable)
    print_fn(
        f"Total params: {trainable_count + non_trainable_count} "
        f"({format_size(trainable_memory + non_trainable_memory)})"
    )
    print_fn(f"Trainable params: {trainable_count} ({format_size(trainable_memory)})")
    print_fn(f"Non-trainable params: {non_trainable_count} ({format_size(non_trainable_memory)})")
    print_fn("_" * line_length)
