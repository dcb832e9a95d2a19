"""ipywidgets dashboards for the notebooks: each composes the library and the figures.

Every dashboard is a class with ``.widget`` (display it), ``.run()`` (what the Run button
does; callable from code, which is how the tests drive it) and an ``Output`` area of its own.
"""

from .cnn_lab import CNNLab, CNNLabResult
from .rnn_lab import RNNLab, RNNLabResult

__all__: list[str] = []
__all__ += ["CNNLab", "CNNLabResult"]
__all__ += ["RNNLab", "RNNLabResult"]
