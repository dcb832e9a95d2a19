"""One training run's configuration, stated once: ``parallel.train``'s arguments, frozen.

:func:`parallel.api.prepare` checks every argument and builds one :class:`RunConfig`; every
strategy reads its settings from it, and the :class:`History` of the run keeps
:meth:`RunConfig.describe` — plain data — so a saved result says how it was made.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True)
class RunConfig:
    """Everything ``parallel.train`` was asked to do, checked (see ``train`` for each field).

    Attributes
    ----------
    strategy : str, a key of ``parallel.STRATEGIES``
    threads, epochs, batch_size, prefetch : int
    lr : float, learning rate of the default optimizer (plain SGD)
    seed : int, seeds the batch order and anything random in a strategy
    optimizer : None or a factory ``params -> nn.Optimizer``
    augment : None or ``augment(xb, rng) -> xb``
    check_finite, trace : bool
    blas_threads : int or None
    options : read-only dict of the strategy's own options
    on_step : None or ``on_step(step, loss)``, called after every step (1-based step)
    on_epoch : None or ``on_epoch(epoch, history)``, called after each epoch's last step
    cancel : None or a ``threading.Event``; once set, the run stops at its next step
    """

    strategy: str = "serial"
    threads: int = 1
    epochs: int = 1
    batch_size: int = 64
    lr: float = 0.05
    seed: int = 0
    optimizer: Callable | None = None
    prefetch: int = 0
    augment: Callable | None = None
    check_finite: bool = True
    trace: bool = True
    blas_threads: int | None = 1
    options: Mapping = field(default_factory=dict)
    on_step: Callable[[int, float], object] | None = None
    on_epoch: Callable[[int, object], object] | None = None
    cancel: threading.Event | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", MappingProxyType(dict(self.options)))

    def describe(self, optimizer=None) -> dict:
        """The configuration as plain, JSON-ready data (callables by name; the optimizer as
        the ``repr`` of the one ``optimizer`` made, when given)."""
        opt = repr(optimizer) if optimizer is not None else (
            f"SGD(lr={self.lr:g})" if self.optimizer is None else _name(self.optimizer))
        return {"strategy": self.strategy, "threads": self.threads, "epochs": self.epochs,
                "batch_size": self.batch_size, "lr": self.lr, "seed": self.seed,
                "optimizer": opt, "prefetch": self.prefetch,
                "augment": None if self.augment is None else _name(self.augment),
                "check_finite": self.check_finite, "blas_threads": self.blas_threads,
                "options": {k: v if isinstance(v, int | float | str | bool | None) else repr(v)
                            for k, v in self.options.items()}}


def _name(fn) -> str:
    return getattr(fn, "__qualname__", None) or type(fn).__name__
