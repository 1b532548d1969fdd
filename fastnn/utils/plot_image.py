"""``PlotImage``: an image file that displays itself inline in Jupyter.

``plot_model`` returns what Keras returns where it can: an
``IPython.display.Image`` (PNG) or ``IPython.display.SVG`` when IPython is
already loaded, i.e. when running under IPython or Jupyter. Elsewhere it
returns a ``PlotImage``: it has the same ``_repr_png_`` / ``_repr_svg_`` hooks
(so it still displays inline if handed to a notebook later) and ``data`` /
``filename`` attributes, without paying ~0.4 s to import IPython in a plain
script only to build an object nobody displays.
"""
import os
import sys

_FORMATS = ("png", "svg")


class PlotImage:
    """An image written to ``filename``; ``data`` holds its bytes (PNG) or text (SVG).

    Args:
        filename: the path of the image file.
        format: ``'png'`` or ``'svg'``.
    """

    def __init__(self, filename, format):
        if format not in _FORMATS:
            raise ValueError(f"PlotImage: argument `format` must be one of {_FORMATS}; received {format!r}.")
        self.filename = os.fspath(filename)
        self.format = format
        if format == "svg":
            with open(self.filename, encoding="utf-8") as f:
                self.data = f.read()
        else:
            with open(self.filename, "rb") as f:
                self.data = f.read()

    def _repr_png_(self):
        return self.data if self.format == "png" else None

    def _repr_svg_(self):
        return self.data if self.format == "svg" else None

    def __repr__(self):
        return f"<PlotImage {self.filename!r} ({self.format}, {len(self.data)} bytes)>"


def display_object(filename, format):
    """The object ``plot_model`` returns for an image file (``None`` for formats Jupyter cannot show)."""
    if format not in _FORMATS:
        return None  # Keras returns nothing for PDF either
    if "IPython" in sys.modules:
        from IPython import display

        if format == "svg":
            return display.SVG(filename=os.fspath(filename))
        return display.Image(filename=os.fspath(filename))
    return PlotImage(filename, format)
