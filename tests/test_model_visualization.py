"""plot_model: SVG without dependencies, PNG/PDF through matplotlib, Keras arguments and return values."""
import sys
import types

import numpy as np
import pytest

import fastnn as keras
from _images import SVG_NS, colour_runs, parse_svg, png_pixels, png_size, svg_texts
from fastnn.utils import PlotImage, plot_model
from fastnn.utils.model_visualization import _TYPE_COLOURS


@pytest.fixture
def mlp():
    return keras.Sequential([keras.layers.Flatten(input_shape=(28, 28), name="flatten"),
                             keras.layers.Dense(128, activation="relu", name="hidden"),
                             keras.layers.Dense(10, activation="softmax", name="out")])


@pytest.fixture
def no_ipython(monkeypatch):
    monkeypatch.delitem(sys.modules, "IPython", raising=False)


def _boxes(root):
    return [g for g in root.iter(SVG_NS + "g") if g.get("class") == "layer"]


def _size(root):
    return float(root.get("width").rstrip("px")), float(root.get("height").rstrip("px"))


# -- SVG: written directly ------------------------------------------------------------------
def test_svg_has_one_box_per_layer_plus_input_with_names_and_arrows(tmp_path, mlp, no_ipython):
    result = plot_model(mlp, to_file=tmp_path / "model.svg")
    root = parse_svg(tmp_path / "model.svg")
    boxes = _boxes(root)
    assert [b.get("id") for b in boxes] == ["layer-input_layer", "layer-flatten", "layer-hidden", "layer-out"]
    assert [svg_texts(b) for b in boxes] == [["input_layer (InputLayer)"], ["flatten (Flatten)"],
                                              ["hidden (Dense)"], ["out (Dense)"]]
    arrows = [p for p in root.iter(SVG_NS + "polygon") if p.get("class") == "arrow"]
    assert len(arrows) == 3
    width, height = _size(root)
    assert 150 < width < 400 and 200 < height < 500  # a narrow vertical stack
    assert isinstance(result, PlotImage) and result.format == "svg"
    assert result._repr_svg_() == (tmp_path / "model.svg").read_text() and result._repr_png_() is None


def test_svg_shapes_params_activations_dtype_trainable(tmp_path, mlp):
    mlp.get_layer("hidden").trainable = False
    plot_model(mlp, to_file=tmp_path / "m.svg", show_shapes=True, show_dtype=True,
               show_layer_activations=True, show_trainable=True, show_params=True)
    root = parse_svg(tmp_path / "m.svg")
    by_id = {b.get("id"): svg_texts(b) for b in _boxes(root)}
    assert by_id["layer-hidden"] == ["hidden (Dense)", "Input shape", "Output shape", "(None, 784)",
                                     "(None, 128)", "dtype: float32", "activation: relu", "params: 100,480",
                                     "trainable: no"]
    assert by_id["layer-flatten"][3:5] == ["(None, 28, 28)", "(None, 784)"]
    assert "params: 1,290" in by_id["layer-out"] and "trainable: yes" in by_id["layer-out"]
    assert "activation: softmax" in by_id["layer-out"]
    assert not any(t.startswith("activation") for t in by_id["layer-flatten"])  # Flatten has none
    assert svg_texts(root)[-1] == f"Total params: {mlp.count_params():,} (397.54 KB)"


def test_svg_without_layer_names_shows_types(tmp_path, mlp):
    plot_model(mlp, to_file=tmp_path / "m.svg", show_layer_names=False)
    assert [svg_texts(b) for b in _boxes(parse_svg(tmp_path / "m.svg"))] == [
        ["InputLayer"], ["Flatten"], ["Dense"], ["Dense"]]


def test_svg_grows_with_the_stack_and_lr_is_horizontal(tmp_path, mlp):
    plot_model(mlp, to_file=tmp_path / "tb.svg")
    mlp.add(keras.layers.Dense(5, name="extra"))
    plot_model(mlp, to_file=tmp_path / "tb5.svg")
    plot_model(mlp, to_file=tmp_path / "lr5.svg", rankdir="LR")
    (w3, h3), (w5, h5) = _size(parse_svg(tmp_path / "tb.svg")), _size(parse_svg(tmp_path / "tb5.svg"))
    wl, hl = _size(parse_svg(tmp_path / "lr5.svg"))
    assert w5 == w3 and h5 > h3
    assert wl > 4 * w5 / 2 and hl < h5 / 3


def test_svg_escapes_layer_names(tmp_path):
    model = keras.Sequential([keras.layers.Dense(2, input_shape=(3,), name="a<b&c")])
    plot_model(model, to_file=tmp_path / "m.svg")
    assert "a<b&c (Dense)" in svg_texts(parse_svg(tmp_path / "m.svg"))


def test_layer_range_selects_inclusive_range_by_pattern(tmp_path, mlp):
    plot_model(mlp, to_file=tmp_path / "m.svg", layer_range=["hid", "out"])
    assert [b.get("id") for b in _boxes(parse_svg(tmp_path / "m.svg"))] == ["layer-hidden", "layer-out"]
    plot_model(mlp, to_file=tmp_path / "m.svg", layer_range=["out", "flat"])  # reversed: tf.keras swaps
    assert len(_boxes(parse_svg(tmp_path / "m.svg"))) == 4


def test_svg_needs_no_matplotlib(tmp_path, mlp, monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now raises ImportError
    plot_model(mlp, to_file=tmp_path / "m.svg", show_shapes=True)
    assert len(_boxes(parse_svg(tmp_path / "m.svg"))) == 4


# -- PNG and PDF: matplotlib ---------------------------------------------------------------
def test_png_is_a_real_image_of_the_stack(tmp_path, mlp, no_ipython):
    pytest.importorskip("matplotlib")
    result = plot_model(mlp, to_file=tmp_path / "model.png", show_shapes=True, dpi=192)
    plot_model(mlp, to_file=tmp_path / "same.svg", show_shapes=True)
    width, height = png_size(tmp_path / "model.png")
    svg_w, svg_h = _size(parse_svg(tmp_path / "same.svg"))
    assert abs(width - round(svg_w * 2)) <= 1 and abs(height - round(svg_h * 2)) <= 1  # dpi 192 = 2x CSS px
    pixels = png_pixels(tmp_path / "model.png")
    box_left = float(_boxes(parse_svg(tmp_path / "same.svg"))[0].find(SVG_NS + "rect").get("x"))
    column = pixels[:, round((box_left + 5) * 2)]  # a vertical line through every box, left of the text
    assert colour_runs(column, _TYPE_COLOURS["Dense"]) == 2  # two Dense title bars
    assert colour_runs(column, _TYPE_COLOURS["InputLayer"]) == 1
    assert colour_runs(column, _TYPE_COLOURS["Flatten"]) == 1
    dark = np.all(pixels < 0.3, axis=-1).mean()
    assert 0.005 < dark < 0.2  # text and outlines were drawn, the image is not a black box
    assert isinstance(result, PlotImage) and result._repr_png_() == (tmp_path / "model.png").read_bytes()
    assert result._repr_svg_() is None


def test_default_file_name_and_no_extension_mean_png(tmp_path, mlp, monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)
    plot_model(mlp)
    png_size(tmp_path / "model.png")
    plot_model(mlp, to_file=str(tmp_path / "diagram"))
    png_size(tmp_path / "diagram")


def test_pdf_is_written_and_returns_none(tmp_path, mlp):
    pytest.importorskip("matplotlib")
    assert plot_model(mlp, to_file=tmp_path / "m.pdf", rankdir="LR") is None
    assert (tmp_path / "m.pdf").read_bytes()[:5] == b"%PDF-"


def test_png_without_matplotlib_names_the_extra_and_svg(tmp_path, mlp, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"plot_model needs matplotlib to write PNG files.*\.svg.*"
                                          r"pip install \"fastnn\[plot\]\""):
        plot_model(mlp, to_file=tmp_path / "m.png")
    assert not (tmp_path / "m.png").exists()


# -- Jupyter display objects ---------------------------------------------------------------------
def test_returns_ipython_display_objects_when_ipython_is_loaded(tmp_path, mlp, monkeypatch):
    pytest.importorskip("matplotlib")
    calls = []
    display = types.SimpleNamespace(Image=lambda filename: calls.append(("Image", filename)) or "image",
                                    SVG=lambda filename: calls.append(("SVG", filename)) or "svg")
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(display=display))
    monkeypatch.setitem(sys.modules, "IPython.display", display)
    assert plot_model(mlp, to_file=tmp_path / "m.png") == "image"
    assert plot_model(mlp, to_file=tmp_path / "m.svg") == "svg"
    assert calls == [("Image", str(tmp_path / "m.png")), ("SVG", str(tmp_path / "m.svg"))]


# -- errors ----------------------------------------------------------------------------------------
def test_unbuilt_model_raises_keras_message(tmp_path):
    model = keras.Sequential([keras.layers.Dense(3)])
    with pytest.raises(ValueError, match="This model has not yet been built"):
        plot_model(model, to_file=tmp_path / "m.svg")


@pytest.mark.parametrize("kwargs, error, message", [
    ({"to_file": "m.jpg"}, ValueError, r"`to_file` must end in \.png, \.svg or \.pdf.*received 'm\.jpg'"),
    ({"to_file": 3}, TypeError, r"`to_file` must be a file name.*received 3 \(of type int\)"),
    ({"rankdir": "BT"}, ValueError, r"`rankdir` must be 'TB' .* or 'LR' .*received 'BT'"),
    ({"show_shapes": "yes"}, TypeError, r"`show_shapes` must be True or False; received 'yes'"),
    ({"dpi": 0}, ValueError, r"`dpi` must be a positive number; received 0"),
    ({"layer_range": ["hidden"]}, ValueError, r"`layer_range` must be a list of 2 layer-name patterns"),
    ({"layer_range": ["nope", "out"]}, ValueError,
     r"does not match the layer names.*\['flatten', 'hidden', 'out'\]"),
    ({"show_shape": True}, TypeError, r"Unrecognized keyword arguments passed to plot_model: \{'show_shape'"),
])
def test_bad_arguments(tmp_path, mlp, monkeypatch, kwargs, error, message):
    monkeypatch.chdir(tmp_path)
    kwargs.setdefault("to_file", "m.svg")
    with pytest.raises(error, match=message):
        plot_model(mlp, **kwargs)


def test_not_a_model():
    with pytest.raises(TypeError, match=r"`model` must be a fastnn model such as a Sequential; received"):
        plot_model([keras.layers.Dense(3)], to_file="m.svg")


def test_missing_folder(tmp_path, mlp):
    with pytest.raises(FileNotFoundError, match="folder of `to_file` does not exist"):
        plot_model(mlp, to_file=tmp_path / "nope" / "m.svg")
