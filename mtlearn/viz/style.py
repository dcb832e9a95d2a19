"""One figure style for the whole course: same sizes, colours and labels everywhere.

Also the two pieces every figure module uses: :class:`CourseFigure` and :func:`axes`.
Figures are made with ``matplotlib.figure.Figure`` rather than ``pyplot``, so they can be
drawn from any thread (a dashboard's worker) and a notebook shows one exactly once.
"""

from __future__ import annotations

import io

from matplotlib.figure import Figure

# Colour per span kind / series, shared by every figure (timelines, curves, bars).
COLORS = {
    "compute": "#4C72B0", "forward": "#4C72B0", "backward": "#55A868",
    "wait": "#C44E52", "reduce": "#8172B2", "update": "#CCB974", "load": "#64B5CD",
    "io": "#DA8BC3",                  # a blocking wait (sleep, socket, disk): GIL released
    "ideal": "#999999", "amdahl": "#DD8452", "measured": "#4C72B0",
    "train": "#4C72B0", "validation": "#DD8452",
}
FIGSIZE = (6.4, 3.6)


def apply_style() -> None:
    """Set matplotlib defaults used by every course figure (call once per notebook)."""
    import matplotlib as mpl

    mpl.rcParams.update({
        "figure.figsize": FIGSIZE, "figure.dpi": 100, "axes.grid": True, "grid.alpha": 0.3,
        "axes.spines.top": False, "axes.spines.right": False, "font.size": 10,
        "legend.frameon": False,
    })


class CourseFigure(Figure):
    """A Figure that a notebook shows as a PNG whether or not ``pyplot`` was ever imported
    (IPython only learns to draw plain Figures once pyplot sets up the inline backend)."""

    def _repr_png_(self) -> bytes:
        buf = io.BytesIO()
        self.savefig(buf, format="png", bbox_inches="tight")
        return buf.getvalue()


def axes(ax=None, figsize=FIGSIZE):
    """``(fig, ax)``: the given axes and its figure, or a new figure with one axes."""
    if ax is not None:
        return ax.figure, ax
    fig = CourseFigure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()
