"""Matplotlib figures from results and traces (no training or measuring happens here).

Each function takes plain results (lists, arrays, result objects) and returns a
``matplotlib.figure.Figure`` (or draws on ``ax=`` when given one).
"""

from .style import apply_style

__all__ = ["apply_style"]
