"""``parallel.train``: check every argument, pick the strategy, run it."""

from __future__ import annotations

import numpy as np

from .aio import Asyncio
from .base import Strategy, check_int
from .history import History
from .hogwild import Hogwild
from .pipeline import Pipeline
from .process import Process
from .serial import Serial
from .sync import Sync
from .tensor import Tensor

#: name -> strategy class (``cls.description`` is its one-line summary)
STRATEGIES: dict[str, type[Strategy]] = {cls.name: cls for cls in (
    Serial, Sync, Hogwild, Asyncio, Process, Pipeline, Tensor,
)}


def describe() -> str:
    """One line per strategy: name and description."""
    return "\n".join(f"{name:9} {cls.description}" for name, cls in STRATEGIES.items())


def train(model, loss, data, strategy: str = "serial", threads: int = 1, epochs: int = 1,
          batch_size: int = 64, lr: float = 0.05, seed: int = 0, optimizer=None, *,
          prefetch: int = 0, augment=None, check_finite: bool = True, trace: bool = True,
          blas_threads: int | None = 1, **strategy_options) -> History:
    """Train ``model`` in place on ``data = (X, y)`` with the chosen strategy.

    Parameters
    ----------
    model : ``nn.Sequential`` (flat ``params``; layers keep no per-call state)
    loss : e.g. ``nn.SoftmaxCrossEntropy()`` or ``nn.MSELoss()``
    data : ``(X, y)``, ``X`` of shape (N, ...) as the model expects, ``y`` (N, ...) targets
    strategy : a key of :data:`STRATEGIES`
    threads : workers (threads, or processes for ``"process"``), int >= 1
    epochs, batch_size : passes over the data; samples per optimizer step (the last partial
        batch of an epoch is dropped so every strategy sees the same steps)
    lr : learning rate of the default optimizer, plain SGD
    seed : seeds the batch order (and anything random in a strategy)
    optimizer : ``None`` or a factory ``params -> nn.Optimizer`` such as
        ``lambda p: nn.SGD(p, lr=0.05, momentum=0.9)``; strategies may call it on slices
    prefetch : ``N > 0`` loads batches ``N`` ahead on a producer thread (:class:`Prefetcher`)
    augment : optional ``augment(xb, rng) -> xb`` applied while loading
    check_finite : stop with ``FloatingPointError`` naming the step when the loss is NaN/inf
    trace : record per-thread spans into ``History.trace``
    blas_threads : BLAS threads during training (1 = one per worker; None leaves it alone)
    strategy_options : options of the chosen strategy (see its ``options``)

    Returns a :class:`History`. All checks happen before any thread starts.
    """
    return prepare(model, loss, data, strategy, threads, epochs, batch_size, lr, seed, optimizer,
                   prefetch=prefetch, augment=augment, check_finite=check_finite, trace=trace,
                   blas_threads=blas_threads, **strategy_options).run()


def prepare(model, loss, data, strategy: str = "serial", threads: int = 1, epochs: int = 1,
            batch_size: int = 64, lr: float = 0.05, seed: int = 0, optimizer=None, *,
            prefetch: int = 0, augment=None, check_finite: bool = True, trace: bool = True,
            blas_threads: int | None = 1, **strategy_options) -> Strategy:
    """Check every argument of :func:`train` and build the strategy object, starting
    nothing; ``.run()`` on it trains. (``train_many`` checks all its jobs this way first.)"""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {sorted(STRATEGIES)}, got {strategy!r}")
    cls = STRATEGIES[strategy]
    threads = check_int("threads", threads)
    epochs = check_int("epochs", epochs)
    batch_size = check_int("batch_size", batch_size)
    prefetch = check_int("prefetch", prefetch, minimum=0)
    if blas_threads is not None:
        blas_threads = check_int("blas_threads", blas_threads)
    unknown = sorted(set(strategy_options) - set(cls.options))
    if unknown:
        known = ", ".join(sorted(cls.options)) or "none"
        raise TypeError(f"strategy {strategy!r} has no option(s) {unknown}; its options: {known}")
    params = getattr(model, "params", None)
    if not isinstance(params, np.ndarray) or params.ndim != 1:
        raise TypeError("model must have a flat 1-D params vector (use nn.Sequential), got "
                        f"{type(model).__name__}")
    try:
        X, y = data
    except (TypeError, ValueError):
        raise TypeError("data must be a pair (X, y)") from None
    if len(X) != len(y):
        raise ValueError(f"data: X and y must have the same length, got {len(X)} and {len(y)}")
    if batch_size > len(X):
        raise ValueError(f"batch_size must be <= the number of samples {len(X)}, got {batch_size}")
    if cls.splits_batch and batch_size < threads:
        raise ValueError(f"batch_size ({batch_size}) must be >= threads ({threads}): each "
                         "worker needs at least one sample")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    if optimizer is not None and not callable(optimizer):
        raise TypeError("optimizer must be None or a factory params -> nn.Optimizer, got "
                        f"{type(optimizer).__name__}")
    return cls(model, loss, X, y, threads=threads, epochs=epochs, batch_size=batch_size,
               lr=lr, seed=seed, optimizer=optimizer, prefetch=prefetch, augment=augment,
               check_finite=check_finite, trace=trace, blas_threads=blas_threads,
               **strategy_options)
