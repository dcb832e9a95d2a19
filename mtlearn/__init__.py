"""mtlearn: measure how threads speed up (or fail to speed up) neural-network training.

Layers, bottom up (a module imports only from layers below it; tests/test_layers.py checks):
``runtime`` (standard library only: info, threads, checks, trace) → ``nn``, ``data`` →
``tasks`` → ``parallel``, ``bench`` → ``experiments`` → ``distributed``, ``cli`` →
``widgets``, ``course``; ``viz`` draws from results and traces.
"""

from .runtime import info, trace

__version__ = "0.1.0"
__all__ = ["__version__", "info", "trace"]
