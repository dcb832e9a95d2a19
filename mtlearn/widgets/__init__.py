"""ipywidgets dashboards for the notebooks: each composes the library and the figures.

Every dashboard is a class: a cell ending in it shows it (``lab = CNNLab()`` then ``lab``);
its controls are attributes named by what they set and what they are
(``lab.epochs_slider``, ``lab.model_dropdown``, ``lab.sweep_checkbox``); ``lab.run()`` does
what the Run button does and returns the result (callable from code, which is how the tests
drive it), ``lab.stop()`` what Stop does. Every result has ``summary()`` (text) and
``figures()`` (matplotlib figures), which the dashboard shows in an ``Output`` area of its
own. See :mod:`mtlearn.widgets.base`.
"""

from .attention_lab import AttentionLab, LengthTimings
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
__all__ += ["AttentionLab", "LengthTimings"]
