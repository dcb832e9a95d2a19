"""ipywidgets dashboards for the notebooks: each composes the library and the figures.

Every dashboard is a class with ``.widget`` (display it), ``.run()`` (what the Run button
does; callable from code, which is how the tests drive it) and an ``Output`` area of its own.
"""

from .cnn_lab import CNNLab, CNNLabResult
from .gil_lab import OversubscriptionLab, OversubscriptionLabResult, ScalingLab, ScalingLabResult
from .hogwild_lab import HogwildLab, HogwildLabResult
from .pipeline_lab import PipelineLab, PipelineLabResult
from .rnn_lab import RNNLab, RNNLabResult
from .strategy_lab import StrategyLab, StrategyLabResult

__all__: list[str] = []
__all__ += ["CNNLab", "CNNLabResult"]
__all__ += ["RNNLab", "RNNLabResult"]
__all__ += ["StrategyLab", "StrategyLabResult"]
__all__ += ["OversubscriptionLab", "OversubscriptionLabResult", "ScalingLab", "ScalingLabResult"]
__all__ += ["HogwildLab", "HogwildLabResult"]
__all__ += ["PipelineLab", "PipelineLabResult"]
