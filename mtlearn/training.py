"""Training with a validation score after each epoch: a thin layer over ``parallel.train``.

``fit`` trains through :func:`mtlearn.parallel.train` — by default its ``serial`` strategy,
the one baseline loop of mtlearn that every parallel strategy is compared with — and adds
what a learner watches: the validation accuracy after each epoch (through ``on_epoch``) and
the time of each epoch. Progress goes through ``on_step`` and a Stop button through
``cancel``, exactly as in ``parallel.train``. So ``fit(model, loss, data, lr=0.05, seed=0)``
makes the same steps, with the same losses, as ``parallel.train(model, loss, data,
strategy="serial", lr=0.05, seed=0)``.

The rules are ``parallel.train``'s, stated there once:

* **default optimizer**: plain SGD with ``lr`` (``nn.SGD(params, lr=lr)``); ``momentum=0.9``
  adds momentum to it, ``optimizer=`` passes any other;
* **the last partial batch of each epoch is dropped** (each epoch reshuffles), so every step
  has ``batch_size`` samples.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from . import nn, parallel
from .parallel.api import check_data
from .parallel.history import History
from .runtime import checks


@dataclass
class FitResult:
    """What :func:`fit` measured.

    Attributes
    ----------
    losses : list of float, the training loss of every step
    val_accuracy : list of float in [0, 1], one per epoch (empty without validation data)
    epoch_times : list of float, seconds of training in each epoch (validation not included)
    wall_time : float, seconds for the whole call (validation included)
    history : the :class:`~mtlearn.parallel.History` of the run (trace, config, machine)
    cancelled : True when ``cancel`` stopped the run early (the lists then stop there too)
    """

    losses: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    epoch_times: list[float] = field(default_factory=list)
    wall_time: float = 0.0
    history: History | None = None
    cancelled: bool = False

    @property
    def final_accuracy(self) -> float | None:
        return self.val_accuracy[-1] if self.val_accuracy else None


def accuracy(model, X: np.ndarray, y: np.ndarray, batch_size: int = 512) -> float:
    """Fraction of ``X`` (N, ...) whose arg-max output equals the label ``y`` (N,)."""
    return float(np.mean(model.predict(X, batch_size).argmax(axis=1) == y))


def fit(model, loss, train: tuple[np.ndarray, np.ndarray],
        val: tuple[np.ndarray, np.ndarray] | None = None, *, epochs: int = 5,
        batch_size: int = 64, lr: float = 0.05, momentum: float = 0.0, optimizer=None,
        seed: int = 0, on_step: Callable[[int, float], None] | None = None,
        cancel: threading.Event | None = None, check_finite: bool = True,
        strategy: str = "serial", threads: int = 1,
        blas_threads: int | None = None) -> FitResult:
    """Train ``model`` in place with minibatch gradient descent; validate after each epoch.

    Parameters
    ----------
    model : ``nn.Sequential`` (a flat ``params`` vector and ``loss_and_grads``)
    loss : e.g. ``nn.SoftmaxCrossEntropy()``
    train : ``(X, y)``: ``X`` (N, ...) as the model expects, ``y`` (N, ...) targets
    val : optional ``(X_val, y_val)`` of the same kind; after each epoch the accuracy of
        the model's arg-max output on it is appended to ``FitResult.val_accuracy``
    epochs, batch_size : passes over ``train``; samples per step (the last partial batch
        of each epoch is dropped)
    lr, momentum : the default optimizer, ``nn.SGD(params, lr=lr, momentum=momentum)``;
        ``momentum=0`` (the default) is plain SGD, ``parallel.train``'s default optimizer
    optimizer : instead of ``lr``/``momentum``: a factory ``params -> nn.Optimizer`` (as
        ``parallel.train`` takes), or, with ``strategy="serial"``, an optimizer already made
        on ``model.params`` (``nn.Adam(model.params, lr=3e-3)``)
    seed : int >= 0, the batch order
    on_step : ``on_step(step, loss)`` after every step (1-based), e.g. a progress bar
    cancel : a ``threading.Event``; setting it stops the run at its next step and ``fit``
        returns what it has, with ``cancelled=True``
    check_finite : stop with ``FloatingPointError`` at the first NaN/inf loss
    strategy, threads : how to train (a key of ``parallel.STRATEGIES`` and its workers);
        ``"serial"`` on one thread is the baseline
    blas_threads : BLAS threads while training. ``None``, the default here, leaves them as
        the caller set them (a notebook's ``threadpool_limits``, a lab's BLAS slider); this
        is the one default that differs from ``parallel.train``, which pins them to 1 per
        worker — pass ``blas_threads=1`` for its exact arithmetic

    Returns a :class:`FitResult`. Every argument is checked (by ``parallel.train``, and
    ``val`` here) before the first step.
    """
    factory = _optimizer_factory(model, optimizer, lr, momentum, strategy)
    if val is not None:
        val = _check_val(val)
    log = _EpochLog(model, val)
    history = parallel.train(model, loss, train, strategy=strategy, threads=threads,
                             epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                             optimizer=factory, check_finite=check_finite,
                             blas_threads=blas_threads, on_step=on_step, on_epoch=log,
                             cancel=cancel)
    return FitResult(losses=history.losses, val_accuracy=log.accuracy,
                     epoch_times=log.times, wall_time=history.wall_time, history=history,
                     cancelled=history.cancelled)


class _EpochLog:
    """``on_epoch`` of :func:`fit`: times the epoch that just ended, then validates.

    Times come from the run's own clock (``history.step_times``, seconds since the start),
    less the time spent validating, so ``times`` holds training time only."""

    def __init__(self, model, val) -> None:
        self.model, self.val = model, val
        self.accuracy: list[float] = []
        self.times: list[float] = []
        self._end = 0.0            # run clock when the previous epoch's validation ended

    def __call__(self, epoch: int, history: History) -> None:
        end = history.step_times[-1]
        self.times.append(end - self._end)
        t0 = time.perf_counter()
        if self.val is not None:
            self.accuracy.append(accuracy(self.model, *self.val))
        self._end = end + (time.perf_counter() - t0)


def _check_val(val) -> tuple[np.ndarray, np.ndarray]:
    try:
        return check_data(val)
    except (TypeError, ValueError) as exc:
        raise type(exc)(str(exc).replace("data", "val", 1)) from None


def _optimizer_factory(model, optimizer, lr, momentum, strategy) -> Callable:
    """``fit``'s optimizer arguments as the one form ``parallel.train`` takes: a factory."""
    momentum = checks.fraction("momentum", momentum)
    if optimizer is None:
        lr = checks.number("lr", lr, min=0, min_open=True)

        def sgd(params):
            return nn.SGD(params, lr=lr, momentum=momentum)
        sgd.__qualname__ = f"SGD(lr={lr:g}, momentum={momentum:g})"   # History.config says so
        return sgd
    if momentum:
        raise ValueError("pass momentum (for the default SGD) or optimizer, not both")
    if isinstance(optimizer, type) or not callable(getattr(optimizer, "step", None)):
        return checks.function("optimizer", optimizer,
                               "a factory params -> nn.Optimizer or an nn optimizer")
    # An optimizer already made: it can only be the one of a one-optimizer strategy, and it
    # must update the model's own vector (not a copy, not another model's).
    if strategy != "serial":
        raise ValueError(f"strategy={strategy!r} makes one optimizer per worker or slice: pass "
                         "a factory, e.g. optimizer=lambda p: nn.Adam(p, lr=3e-3)")
    params = getattr(optimizer, "params", None)
    if isinstance(params, np.ndarray) and not (
            params.shape == model.params.shape and np.may_share_memory(params, model.params)):
        raise ValueError("optimizer updates an array that is not model.params; make it on "
                         "the model's vector, e.g. nn.Adam(model.params, lr=3e-3)")

    def given(params):
        return optimizer
    lr = getattr(optimizer, "lr", None)
    given.__qualname__ = type(optimizer).__name__ + (f"(lr={lr:g})" if lr is not None else "")
    return given
