"""Run each script in examples/ as users do (a subprocess, headless), with few epochs and samples.

Each test checks the printed final metrics against what the tutorial reaches in that budget and reads
the saved figures back as images. The whole file must stay well under CI's time budget (~40 s).
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import fastnn
from _images import SVG_NS, parse_svg, png_size

pytest.importorskip("matplotlib")
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
FASTNN_ROOT = str(Path(fastnn.__file__).resolve().parents[1])  # the fastnn under test, installed or not


def run_example(name, tmp_path, *args, data_dir=None):
    """Run examples/<name>.py; return (final metrics dict, stdout, output folder)."""
    out = tmp_path / "figures"
    env = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "DISPLAY", "WAYLAND_DISPLAY")}
    env["PYTHONPATH"] = FASTNN_ROOT + os.pathsep + env.get("PYTHONPATH", "")
    if data_dir is not None:
        env["FASTNN_DATA_DIR"] = str(data_dir)
    done = subprocess.run([sys.executable, str(EXAMPLES / f"{name}.py"), *args, "--output-dir", str(out)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    final = [line for line in done.stdout.splitlines() if line.startswith("Final metrics: ")]
    assert len(final) == 1, done.stdout[-3000:]
    metrics = {k: float(v) for k, v in re.findall(r"(\w+)=([-\d.e]+)", final[0])}
    saved = re.findall(r"^Saved (.+)$", done.stdout, flags=re.M)
    assert sorted(Path(p).name for p in saved) == sorted(p.name for p in out.iterdir())
    return metrics, done.stdout, out


def check_png(path, size=None):
    width, height = png_size(path)
    if size is not None:
        assert (width, height) == size
    assert 300 <= width <= 2000 and 150 <= height <= 2000, (path, width, height)
    assert path.stat().st_size < 400_000


def test_linear_regression_learns_2x_minus_1(tmp_path):
    metrics, out_text, out = run_example("linear_regression", tmp_path)  # the full 500 epochs take ~0.1 s
    assert 18.9 < metrics["prediction_at_10"] < 19.0  # "close to 19" (the tutorial prints ~18.98)
    assert abs(metrics["kernel"] - 2) < 0.01 and abs(metrics["bias"] + 1) < 0.03
    assert metrics["loss"] < 1e-3
    assert "model.predict([10.0]) = 18.9" in out_text
    check_png(out / "fit.png", (500, 360))
    check_png(out / "loss.png", (460, 350))


def test_mnist_mlp_with_prediction_views(tmp_path, mnist_data_dir):
    metrics, _, out = run_example("mnist_mlp", tmp_path, "--epochs", "1", "--samples", "3000",
                                  data_dir=mnist_data_dir)
    assert 0.8 < metrics["test_accuracy"] < 1.0 and metrics["test_loss"] < 0.7
    assert metrics["misclassified"] == round((1 - metrics["test_accuracy"]) * 10000)
    check_png(out / "history.png", (920, 350))
    check_png(out / "prediction.png", (700, 320))
    check_png(out / "predictions.png", (1320, 1100))  # 5 rows x 3 samples
    check_png(out / "mistakes.png", (1320, 1100))


def test_fashion_mnist_softmax_vs_hidden_layer(tmp_path, fashion_mnist_data_dir):
    metrics, out_text, out = run_example("fashion_mnist", tmp_path, "--epochs", "1", "--samples", "3000",
                                         data_dir=fashion_mnist_data_dir)
    assert metrics["softmax_only_test_accuracy"] > 0.6 and metrics["hidden_layer_test_accuracy"] > 0.6
    assert out_text.count('Model: "softmax_only"') == 1 and out_text.count('Model: "hidden_layer"') == 1
    for name, layers in (("softmax_only", ["input_layer", "flatten", "dense"]),
                         ("hidden_layer", ["input_layer", "flatten", "dense", "dense"])):
        root = parse_svg(out / f"{name}.svg")
        boxes = [g for g in root.iter(SVG_NS + "g") if g.get("class") == "layer"]
        assert [b.get("id").split("-", 1)[1].rstrip("_0123456789") for b in boxes] == layers
        width, height = png_size(out / f"{name}.png")  # plot_model at 96 dpi: 1 px per SVG px
        svg_size = [float(root.get(k).rstrip("px")) for k in ("width", "height")]
        assert abs(width - svg_size[0]) <= 1 and abs(height - svg_size[1]) <= 1
    check_png(out / "comparison.png", (550, 360))
    check_png(out / "history.png", (920, 350))
    check_png(out / "predictions.png", (1320, 1100))


def test_imdb_sentiment_finds_the_best_epoch(tmp_path, imdb_data_dir):
    metrics, out_text, out = run_example("imdb_sentiment", tmp_path, "--epochs", "3", "--samples", "5000",
                                         data_dir=imdb_data_dir)
    assert metrics["best_epoch"] in (1, 2, 3)
    assert 0.75 < metrics["test_accuracy"] < 1.0
    assert f"Retraining a fresh model for {int(metrics['best_epoch'])} epochs on all 5000 training reviews" \
        in out_text
    assert f"Validation loss was lowest after epoch {int(metrics['best_epoch'])} " in out_text
    check_png(out / "history.png", (920, 350))


def test_mnist_regularized_with_early_stopping(tmp_path, mnist_data_dir):
    metrics, out_text, out = run_example("mnist_regularized", tmp_path, "--epochs", "4", "--samples", "3000",
                                         "--patience", "1", data_dir=mnist_data_dir)
    assert 1 <= metrics["best_epoch"] <= metrics["epochs_run"] <= 4
    assert metrics["test_accuracy"] > 0.8
    check_png(out / "history.png", (920, 350))
    png_size(out / "model.png")
