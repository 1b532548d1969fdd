"""Helpers that read the image files the plotting tests produce (checked as real images, not 'it ran')."""
import struct
import xml.etree.ElementTree as ET

import numpy as np

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SVG_NS = "{http://www.w3.org/2000/svg}"


def png_size(path_or_bytes):
    """(width, height) from a PNG's IHDR chunk; fails if the bytes are not a PNG."""
    if isinstance(path_or_bytes, bytes):
        data = path_or_bytes
    else:
        with open(path_or_bytes, "rb") as f:
            data = f.read()
    assert data[:8] == PNG_SIGNATURE, "not a PNG file"
    assert data[12:16] == b"IHDR", "PNG without IHDR first"
    return struct.unpack(">II", data[16:24])


def png_pixels(path):
    """(height, width, 3) float RGB in [0, 1], decoded by matplotlib/Pillow."""
    import matplotlib.image

    pixels = matplotlib.image.imread(path)
    return np.asarray(pixels[..., :3], dtype=np.float64)


def colour_runs(line, rgb, tol=0.02):
    """Number of separate runs of pixels of colour ``rgb`` (hex or 0-1 tuple) along a 1-D pixel line."""
    if isinstance(rgb, str):
        rgb = tuple(int(rgb[i:i + 2], 16) / 255 for i in (1, 3, 5))
    match = np.all(np.abs(line - np.asarray(rgb)) < tol, axis=-1)
    return int(np.sum(match[1:] & ~match[:-1]) + match[0])


def parse_svg(path_or_text):
    """The root element of an SVG document; fails if it is not well-formed SVG."""
    if isinstance(path_or_text, str) and path_or_text.lstrip().startswith("<"):
        text = path_or_text
    else:
        with open(path_or_text, encoding="utf-8") as f:
            text = f.read()
    root = ET.fromstring(text)
    assert root.tag == SVG_NS + "svg", root.tag
    return root


def svg_texts(element):
    return [t.text for t in element.iter(SVG_NS + "text")]
