"""``plot_model``: draw a model's layer stack to PNG, SVG or PDF, without graphviz.

Keras' ``plot_model`` needs pydot plus the system graphviz binaries, and fails
when either is missing (fchollet/deep-learning-with-python-notebooks#236,
keras-team/keras#10935; docs/keras_semantics.md#plot-model). A Sequential model is a
straight chain, so fastnn lays it out itself: one box per layer (``name
(Type)``, optionally the input/output shapes, dtype, activation, parameter
count and trainable flag), arrows between them, top-to-bottom (``rankdir='TB'``)
or left-to-right (``'LR'``). SVG is written directly and needs no extra
package; PNG and PDF are drawn with matplotlib (``pip install "fastnn[plot]"``).

Arguments, defaults and the return value follow tf.keras 2.15
(``keras/utils/vis_utils.py``): ``show_layer_names=True``, ``dpi=96``, a file
without extension is written as PNG, ``layer_range`` takes two name patterns
(``re.match``), and the result is an ``IPython.display`` object when IPython is
loaded (a :class:`~fastnn.utils.plot_image.PlotImage` otherwise; ``None`` for
PDF). ``show_params`` is a fastnn addition: the parameter count per layer and
the total under the stack.
"""
import os
import re

from fastnn.utils._diagram import Diagram, text_width
from fastnn.utils._matplotlib import import_matplotlib
from fastnn.utils.plot_image import display_object
from fastnn.utils.summary_utils import NOT_BUILT_MESSAGE, format_size
from fastnn.utils.validation import describe, shape_str

_FORMATS = {"": "png", ".png": "png", ".svg": "svg", ".pdf": "pdf"}

# Title-bar colour per layer type (light tints, so black text stays readable).
_TYPE_COLOURS = {
    "InputLayer": "#d9ead3",
    "Dense": "#cfe2f3",
    "Flatten": "#e8e8e8",
    "Activation": "#fff2cc",
    "Dropout": "#fce5cd",
    "BatchNormalization": "#ead1dc",
}
_DEFAULT_COLOUR = "#e0e0e0"
_STROKE = "#4d4d4d"
_MUTED = "#5f6368"

# Geometry in CSS px (1/96 inch).
_TITLE_SIZE, _BODY_SIZE, _HEAD_SIZE = 13.0, 12.0, 10.0
_TITLE_H, _HEAD_H, _ROW_H = 26.0, 16.0, 20.0
_PAD, _GAP, _MARGIN = 12.0, 34.0, 16.0


def plot_model(model, to_file="model.png", show_shapes=False, show_dtype=False, show_layer_names=True,
               rankdir="TB", expand_nested=False, dpi=96, layer_range=None, show_layer_activations=False,
               show_trainable=False, show_params=False, **kwargs):
    """Draw a model as a stack of layer boxes and save it to ``to_file``.

    Args:
        model: a built fastnn model (``Sequential``).
        to_file: file name of the image; ``.svg`` is written without any
            extra package, ``.png`` (also used when there is no extension)
            and ``.pdf`` need matplotlib.
        show_shapes: show each layer's input and output shape.
        show_dtype: show each layer's dtype.
        show_layer_names: show ``name (Type)`` rather than only the type.
        rankdir: ``'TB'`` draws top to bottom, ``'LR'`` left to right.
        expand_nested: accepted for Keras compatibility; a fastnn model
            cannot contain another model, so there is nothing to expand.
        dpi: resolution of PNG output (the SVG is resolution-independent).
        layer_range: ``[first, last]`` layer-name patterns (``re.match``)
            selecting the inclusive range of layers to draw.
        show_layer_activations: show the activation of layers that have one.
        show_trainable: show whether each layer is trainable.
        show_params: show each layer's parameter count and the model total
            (a fastnn addition; Keras has no such option).

    Returns:
        For PNG and SVG, an object that displays the image inline in Jupyter
        (``IPython.display.Image``/``SVG`` when IPython is loaded, else a
        ``PlotImage``); ``None`` for PDF.
    """
    if kwargs:
        raise TypeError(f"Unrecognized keyword arguments passed to plot_model: {kwargs}")
    layers = getattr(model, "layers", None)
    if not isinstance(layers, list) or not hasattr(model, "built"):
        raise TypeError(f"plot_model: argument `model` must be a fastnn model such as a Sequential; received "
                        f"{describe(model)}.")
    if not model.built or not layers:
        raise ValueError(NOT_BUILT_MESSAGE)
    if not isinstance(to_file, (str, os.PathLike)):
        raise TypeError("plot_model: argument `to_file` must be a file name (str or path) ending in .png, "
                        f".svg or .pdf; received {describe(to_file)}.")
    to_file = os.fspath(to_file)
    extension = os.path.splitext(to_file)[1].lower()
    if extension not in _FORMATS:
        raise ValueError(f"plot_model: argument `to_file` must end in .png, .svg or .pdf (no extension means "
                         f"PNG); received {to_file!r}.")
    fmt = _FORMATS[extension]
    if rankdir not in ("TB", "LR"):
        raise ValueError("plot_model: argument `rankdir` must be 'TB' (top to bottom) or 'LR' (left to "
                         f"right); received {describe(rankdir)}.")
    for name, value in (("show_shapes", show_shapes), ("show_dtype", show_dtype),
                        ("show_layer_names", show_layer_names), ("expand_nested", expand_nested),
                        ("show_layer_activations", show_layer_activations),
                        ("show_trainable", show_trainable), ("show_params", show_params)):
        if not isinstance(value, bool):
            raise TypeError(f"plot_model: argument `{name}` must be True or False; received "
                            f"{describe(value)}.")
    if isinstance(dpi, bool) or not isinstance(dpi, (int, float)) or not dpi > 0:
        raise ValueError(f"plot_model: argument `dpi` must be a positive number; received {describe(dpi)}.")
    if fmt != "svg":
        # Fail before drawing anything, and say that SVG needs nothing.
        import_matplotlib("plot_model", f"needs matplotlib to write {fmt.upper()} files (pass a `to_file` "
                                        "ending in .svg to write SVG without it)")

    start, stop = _layer_index_range(layers, layer_range)
    boxes = []
    if start == 0:
        shape = model.input_shape
        boxes.append(_Box("input_layer", "InputLayer", shape, shape, _dtype_name(layers[0]), None, 0, True))
    for layer in layers[start:stop]:
        activation = getattr(layer, "activation_name", None)
        trainable = layer.trainable and model.trainable
        boxes.append(_Box(layer.name, type(layer).__name__, layer.input_shape, layer.output_shape,
                          _dtype_name(layer), activation, layer.count_params(), trainable))
    footer = None
    if show_params:
        weights = list({id(w): w for w in model.weights}.values())
        total = sum(int(w.value.size) for w in weights)
        memory = sum(int(w.value.size) * w.value.dtype.itemsize for w in weights)
        footer = f"Total params: {total:,} ({format_size(memory)})"

    options = dict(show_shapes=show_shapes, show_dtype=show_dtype, show_layer_names=show_layer_names,
                   show_layer_activations=show_layer_activations, show_trainable=show_trainable,
                   show_params=show_params)
    diagram = _draw(boxes, rankdir, footer, options)
    directory = os.path.dirname(os.path.abspath(to_file))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"plot_model: the folder of `to_file` does not exist: {directory!r}.")
    if fmt == "svg":
        with open(to_file, "w", encoding="utf-8") as f:
            f.write(diagram.to_svg())
    else:
        diagram.save_with_matplotlib(to_file, fmt, dpi)
    return display_object(to_file, fmt)


# --------------------------------------------------------------------------- layout
class _Box:
    def __init__(self, name, type_name, input_shape, output_shape, dtype, activation, params, trainable):
        self.name, self.type_name = name, type_name
        self.input_shape, self.output_shape = input_shape, output_shape
        self.dtype, self.activation, self.params, self.trainable = dtype, activation, params, trainable

    def title(self, show_layer_names):
        return f"{self.name} ({self.type_name})" if show_layer_names else self.type_name

    def info_rows(self, o):
        rows = []
        if o["show_dtype"]:
            rows.append(f"dtype: {self.dtype}")
        if o["show_layer_activations"] and self.activation is not None:
            rows.append(f"activation: {self.activation}")
        if o["show_params"]:
            rows.append(f"params: {self.params:,}")
        if o["show_trainable"]:
            rows.append(f"trainable: {'yes' if self.trainable else 'no'}")
        return rows


def _dtype_name(layer):
    dtype = getattr(layer, "dtype", None)
    return str(getattr(dtype, "name", dtype))


def _shape_text(shape):
    return "?" if shape is None else shape_str(shape)


def _layer_index_range(layers, layer_range):
    """[start, stop) of the layers to draw (tf.keras 2.15 ``get_layer_index_bound_by_layer_name``)."""
    if layer_range is None:
        return 0, len(layers)
    if (not isinstance(layer_range, (list, tuple)) or len(layer_range) != 2
            or not all(isinstance(p, str) for p in layer_range)):
        raise ValueError("plot_model: argument `layer_range` must be a list of 2 layer-name patterns "
                         f"[first, last]; received {describe(layer_range)}.")
    names = [layer.name for layer in layers]
    lower = [i for i, name in enumerate(names) if re.match(layer_range[0], name)]
    upper = [i for i, name in enumerate(names) if re.match(layer_range[1], name)]
    if not lower or not upper:
        raise ValueError(f"plot_model: `layer_range` {list(layer_range)} does not match the layer names of "
                         f"the model; its layers are {names}.")
    if min(lower) > max(upper):
        return min(upper), max(lower) + 1
    return min(lower), max(upper) + 1


def _box_geometry(box, o):
    """(content width, height) of one box in px."""
    widths = [text_width(box.title(o["show_layer_names"]), _TITLE_SIZE)]
    height = _TITLE_H
    if o["show_shapes"]:
        column = max(text_width(t, s) for t, s in (("Input shape", _HEAD_SIZE), ("Output shape", _HEAD_SIZE),
                                                   (_shape_text(box.input_shape), _BODY_SIZE),
                                                   (_shape_text(box.output_shape), _BODY_SIZE)))
        widths.append(2 * column + 2 * _PAD)  # two columns, each padded
        height += _HEAD_H + _ROW_H
    rows = box.info_rows(o)
    widths += [text_width(r, _BODY_SIZE) for r in rows]
    height += _ROW_H * len(rows) + (6.0 if rows else 0.0)
    return max(widths) + 2 * _PAD, height


def _draw(boxes, rankdir, footer, o):
    sizes = [_box_geometry(b, o) for b in boxes]
    box_w = max(w for w, _ in sizes)
    footer_h = _ROW_H + 8.0 if footer else 0.0
    if rankdir == "TB":
        heights = [h for _, h in sizes]
        width = box_w + 2 * _MARGIN
        if footer:
            width = max(width, text_width(footer, _BODY_SIZE) + 2 * _MARGIN)
        height = sum(heights) + _GAP * (len(boxes) - 1) + 2 * _MARGIN + footer_h
        x0 = (width - box_w) / 2
        positions, y = [], _MARGIN
        for h in heights:
            positions.append((x0, y, h))
            y += h + _GAP
    else:  # LR: equal boxes side by side
        box_h = max(h for _, h in sizes)
        width = len(boxes) * box_w + (len(boxes) - 1) * _GAP + 2 * _MARGIN
        if footer:
            width = max(width, text_width(footer, _BODY_SIZE) + 2 * _MARGIN)
        height = box_h + 2 * _MARGIN + footer_h
        positions = [(_MARGIN + i * (box_w + _GAP), _MARGIN, box_h) for i in range(len(boxes))]

    diagram = Diagram(width, height)
    for i, (box, (x, y, h)) in enumerate(zip(boxes, positions)):
        _draw_box(diagram, box, x, y, box_w, h, o)
        if i + 1 < len(boxes):
            nx, ny, _ = positions[i + 1]
            if rankdir == "TB":
                diagram.arrow(x + box_w / 2, y + h, x + box_w / 2, ny, _STROKE)
            else:
                mid = y + _TITLE_H / 2
                diagram.arrow(x + box_w, mid, nx, mid, _STROKE)
    if footer:
        diagram.text(width / 2, height - _MARGIN - footer_h / 2 + 4.0, footer, _BODY_SIZE, fill=_MUTED)
    return diagram


def _draw_box(d, box, x, y, w, h, o):
    colour = _TYPE_COLOURS.get(box.type_name, _DEFAULT_COLOUR)
    d.group(f"layer-{box.name}", "layer")
    d.rect(x, y, w, h, "#ffffff", _STROKE, 1.2)
    d.rect(x, y, w, _TITLE_H, colour)
    d.line(x, y + _TITLE_H, x + w, y + _TITLE_H, _STROKE, 1.0)
    d.rect(x, y, w, h, "none", _STROKE, 1.2)  # outline over the title fill
    d.text(x + w / 2, y + _TITLE_H / 2, box.title(o["show_layer_names"]), _TITLE_SIZE, weight="bold")
    cy = y + _TITLE_H
    if o["show_shapes"]:
        left, right = x + w / 4, x + 3 * w / 4
        d.text(left, cy + _HEAD_H / 2 + 2, "Input shape", _HEAD_SIZE, fill=_MUTED)
        d.text(right, cy + _HEAD_H / 2 + 2, "Output shape", _HEAD_SIZE, fill=_MUTED)
        d.text(left, cy + _HEAD_H + _ROW_H / 2, _shape_text(box.input_shape), _BODY_SIZE)
        d.text(right, cy + _HEAD_H + _ROW_H / 2, _shape_text(box.output_shape), _BODY_SIZE)
        d.line(x + w / 2, cy + 3, x + w / 2, cy + _HEAD_H + _ROW_H - 1, "#b0b0b0", 1.0)
        cy += _HEAD_H + _ROW_H
    rows = box.info_rows(o)
    if rows:
        d.line(x, cy, x + w, cy, "#b0b0b0", 1.0)
        cy += 3.0
        for row in rows:
            d.text(x + _PAD, cy + _ROW_H / 2, row, _BODY_SIZE, anchor="start")
            cy += _ROW_H
    d.end_group()
