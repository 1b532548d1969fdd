"""A tiny vector drawing (boxes, lines, arrows, text) with two renderers.

``plot_model`` lays out its boxes once, in CSS pixels (1/96 inch, y growing
downwards), into a :class:`Diagram`; ``to_svg`` writes that drawing as SVG
text with no dependency at all, ``save_with_matplotlib`` draws the same
primitives on a matplotlib figure for PNG/PDF. Text is monospace in both, so
the layout can size boxes from character counts without font metrics
(DejaVu Sans Mono, matplotlib's bundled monospace font, advances 0.602 em;
Menlo, Consolas and Courier are 0.55-0.6 em).
"""
from xml.sax.saxutils import escape, quoteattr

CHAR_WIDTH = 0.602  # advance of one monospace character, in em
FONT_FAMILY = "DejaVu Sans Mono, Menlo, Consolas, Liberation Mono, Courier New, monospace"
_PX_TO_PT = 72.0 / 96.0


def text_width(text, size):
    """Width in px of ``text`` set in the monospace font at ``size`` px."""
    return len(text) * size * CHAR_WIDTH


class Diagram:
    """Drawing primitives on a ``width`` x ``height`` px canvas (origin top left)."""

    def __init__(self, width, height, background="#ffffff"):
        self.width = float(width)
        self.height = float(height)
        self.background = background
        self.items = []

    def group(self, gid, cls):
        """Start an SVG group ``<g id=gid class=cls>`` holding the items up to :meth:`end_group`."""
        self.items.append(("group", dict(gid=gid, cls=cls)))

    def end_group(self):
        self.items.append(("end_group", {}))

    def rect(self, x, y, w, h, fill, stroke=None, stroke_width=1.0):
        self.items.append(("rect", dict(x=x, y=y, w=w, h=h, fill=fill, stroke=stroke,
                                        stroke_width=stroke_width)))

    def line(self, x1, y1, x2, y2, stroke, stroke_width=1.0):
        self.items.append(("line", dict(x1=x1, y1=y1, x2=x2, y2=y2, stroke=stroke,
                                        stroke_width=stroke_width)))

    def arrow(self, x1, y1, x2, y2, stroke, stroke_width=1.5, head=7.0):
        """A line from (x1, y1) to (x2, y2) ending in a filled triangular head; axis-aligned only."""
        dx, dy = x2 - x1, y2 - y1
        length = max(abs(dx), abs(dy)) or 1.0
        ux, uy = dx / length, dy / length  # unit direction (axis-aligned)
        bx, by = x2 - ux * head, y2 - uy * head  # base of the head
        self.line(x1, y1, bx, by, stroke, stroke_width)
        half = head * 0.55
        points = [(x2, y2), (bx - uy * half, by + ux * half), (bx + uy * half, by - ux * half)]
        self.items.append(("polygon", dict(points=points, fill=stroke, cls="arrow")))

    def text(self, x, y, text, size, anchor="middle", weight="normal", fill="#000000"):
        """``text`` centred vertically on ``y``; ``anchor`` is 'start', 'middle' or 'end' at ``x``."""
        self.items.append(("text", dict(x=x, y=y, text=str(text), size=size, anchor=anchor, weight=weight,
                                        fill=fill)))

    # -- SVG -----------------------------------------------------------------------
    def to_svg(self):
        """The drawing as an SVG 1.1 document (a ``str``)."""
        w, h = _num(self.width), _num(self.height)
        out = ['<?xml version="1.0" encoding="UTF-8" standalone="no"?>',
               f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{w}px" height="{h}px" '
               f'viewBox="0 0 {w} {h}" font-family={quoteattr(FONT_FAMILY)}>',
               f'<rect width="{w}" height="{h}" fill="{self.background}"/>']
        for kind, a in self.items:
            if kind == "group":
                out.append(f'<g id={quoteattr(a["gid"])} class={quoteattr(a["cls"])}>')
            elif kind == "end_group":
                out.append("</g>")
            elif kind == "rect":
                stroke = (f' stroke="{a["stroke"]}" stroke-width="{_num(a["stroke_width"])}"'
                          if a["stroke"] else "")
                out.append(f'<rect x="{_num(a["x"])}" y="{_num(a["y"])}" width="{_num(a["w"])}" '
                           f'height="{_num(a["h"])}" fill="{a["fill"]}"{stroke}/>')
            elif kind == "line":
                out.append(f'<line x1="{_num(a["x1"])}" y1="{_num(a["y1"])}" x2="{_num(a["x2"])}" '
                           f'y2="{_num(a["y2"])}" stroke="{a["stroke"]}" '
                           f'stroke-width="{_num(a["stroke_width"])}"/>')
            elif kind == "polygon":
                points = " ".join(f"{_num(x)},{_num(y)}" for x, y in a["points"])
                out.append(f'<polygon class="{a["cls"]}" points="{points}" fill="{a["fill"]}"/>')
            else:  # text
                weight = ' font-weight="bold"' if a["weight"] == "bold" else ""
                out.append(f'<text x="{_num(a["x"])}" y="{_num(a["y"])}" font-size="{_num(a["size"])}" '
                           f'text-anchor="{a["anchor"]}" dominant-baseline="central" fill="{a["fill"]}"'
                           f'{weight}>{escape(a["text"])}</text>')
        out.append("</svg>")
        return "\n".join(out) + "\n"

    # -- matplotlib (PNG, PDF) ----------------------------------------------------------------
    def save_with_matplotlib(self, path, format, dpi):
        """Render with matplotlib's object API (no pyplot, so no backend or global figure state)."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.patches import Polygon, Rectangle

        fig = Figure(figsize=(self.width / 96.0, self.height / 96.0), dpi=dpi, facecolor=self.background)
        FigureCanvasAgg(fig)
        ax = fig.add_axes([0, 0, 1, 1])
        ax.set_xlim(0, self.width)
        ax.set_ylim(self.height, 0)  # y down, as in SVG
        ax.axis("off")
        for kind, a in self.items:
            if kind in ("group", "end_group"):
                continue
            if kind == "rect":
                ax.add_patch(Rectangle((a["x"], a["y"]), a["w"], a["h"], facecolor=a["fill"],
                                       edgecolor=a["stroke"] or "none",
                                       linewidth=a["stroke_width"] * _PX_TO_PT if a["stroke"] else 0))
            elif kind == "line":
                ax.plot([a["x1"], a["x2"]], [a["y1"], a["y2"]], color=a["stroke"],
                        linewidth=a["stroke_width"] * _PX_TO_PT, solid_capstyle="butt")
            elif kind == "polygon":
                ax.add_patch(Polygon(a["points"], closed=True, facecolor=a["fill"], edgecolor="none"))
            else:
                ha = {"start": "left", "middle": "center", "end": "right"}[a["anchor"]]
                ax.text(a["x"], a["y"], a["text"], fontsize=a["size"] * _PX_TO_PT, family="monospace",
                        weight=a["weight"], color=a["fill"], ha=ha, va="center_baseline")
        fig.savefig(path, format=format, dpi=dpi, facecolor=self.background)


def _num(value):
    """A coordinate for SVG: integers without '.0', others with at most 2 decimals."""
    value = round(float(value), 2)
    return str(int(value)) if value == int(value) else f"{value:g}"
