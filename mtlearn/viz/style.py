"""One figure style for the whole course: same sizes, colours and labels everywhere.

Also the pieces every figure module uses: :class:`CourseFigure`, :func:`axes`, and
:func:`legend_outside`, which keeps a legend off the data.
Figures are made with ``matplotlib.figure.Figure`` rather than ``pyplot``, so they can be
drawn from any thread (a dashboard's worker) and a notebook shows one exactly once.
"""

from __future__ import annotations

import io

from matplotlib.figure import Figure

# Colour per span kind / series, shared by every figure (timelines, curves, bars). Kinds
# that share a timeline differ in hue, not only in lightness: a faint (low CPU) compute bar
# must not pass for a load bar, nor a wait for a blocking I/O call.
COLORS = {
    "compute": "#4C72B0", "forward": "#4C72B0", "backward": "#55A868",
    "wait": "#C44E52", "reduce": "#8172B2", "update": "#CCB974", "load": "#937860",
    "io": "#DA8BC3",                  # a blocking wait (sleep, socket, disk): GIL released
    "ideal": "#999999", "amdahl": "#DD8452", "measured": "#4C72B0",
    "train": "#4C72B0", "validation": "#DD8452",
    "baseline": "#333333",            # the reference every bar or curve is compared with
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


def legend_outside(ax, handles=None, **kwargs):
    """Draw the legend of ``ax`` to the right of its plotting area, where it can never cover
    a curve or a bar (the figure's constrained layout makes room for it). ``handles``
    defaults to the labelled artists of ``ax``; ``kwargs`` go to ``ax.legend``. Returns the
    legend, or None when nothing is labelled."""
    if handles is None:
        handles, _ = ax.get_legend_handles_labels()
    if not handles:
        return None
    options = {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0), "fontsize": 8,
               "borderaxespad": 0.0, **kwargs}
    return ax.legend(handles=handles, **options)
