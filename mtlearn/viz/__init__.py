"""Matplotlib figures from results and traces (no training or measuring happens here).

Each function takes plain results (lists, arrays, result objects) and returns a
``matplotlib.figure.Figure`` (or draws on ``ax=`` when given one).
"""

from .gil import convoy_plot, interpreters_plot, oversubscription_heatmap, scaling_plot
from .pipeline import (
    bubble_curve,
    bubble_theory,
    peak_live_bars,
    schedule_chart,
    staleness_histogram,
)
from .sequences import adding_examples, gradient_flow, loss_vs_baseline, unrolled_recurrence
from .style import apply_style
from .timeline import amdahl_speedup, kind_colors, speedup_curve, timeline
from .training import (
    accuracy_curve,
    feature_maps,
    filter_grid,
    image_grid,
    loss_curve,
    moving_average,
    timing_bars,
    training_curves,
)
from .xray import xray

__all__ = ["apply_style"]
__all__ += ["accuracy_curve", "feature_maps", "filter_grid", "image_grid", "loss_curve",
            "moving_average", "timing_bars", "training_curves"]
__all__ += ["adding_examples", "gradient_flow", "loss_vs_baseline", "unrolled_recurrence"]
__all__ += ["amdahl_speedup", "kind_colors", "speedup_curve", "timeline"]
__all__ += ["bubble_curve", "bubble_theory", "peak_live_bars", "schedule_chart",
            "staleness_histogram"]
__all__ += ["convoy_plot", "interpreters_plot", "oversubscription_heatmap", "scaling_plot"]
__all__ += ["xray"]
