"""One figure style for the whole course: same sizes, colours and labels everywhere."""

from __future__ import annotations

# Colour per span kind / series, shared by every figure (timelines, curves, bars).
COLORS = {
    "compute": "#4C72B0", "forward": "#4C72B0", "backward": "#55A868",
    "wait": "#C44E52", "reduce": "#8172B2", "update": "#CCB974", "load": "#64B5CD",
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
