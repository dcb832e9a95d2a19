"""A plain training loop on one thread: the baseline every parallel strategy is compared to.

``fit`` runs minibatch SGD (or any :mod:`mtlearn.nn` optimizer) over a dataset and returns a
:class:`FitResult` with the loss of every step, the validation accuracy after each epoch and
the wall-clock time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from . import data, nn


@dataclass
class FitResult:
    """What :func:`fit` measured: ``losses`` (one per step), ``val_accuracy`` (one per epoch,
    empty without validation data), ``epoch_times`` and ``wall_time`` in seconds."""

    losses: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    epoch_times: list[float] = field(default_factory=list)
    wall_time: float = 0.0

    @property
    def final_accuracy(self) -> float | None:
        return self.val_accuracy[-1] if self.val_accuracy else None


def accuracy(model, X: np.ndarray, y: np.ndarray, batch_size: int = 512) -> float:
    """Fraction of ``X`` (N, ...) whose arg-max output equals the label ``y`` (N,)."""
    return float(np.mean(model.predict(X, batch_size).argmax(axis=1) == y))


def fit(model, loss, train: tuple[np.ndarray, np.ndarray],
        val: tuple[np.ndarray, np.ndarray] | None = None, *, epochs: int = 5,
        batch_size: int = 64, lr: float = 0.05, momentum: float = 0.9, optimizer=None,
        seed: int = 0, on_step: Callable[[int, float], None] | None = None) -> FitResult:
    """Train ``model`` in place with minibatch gradient descent.

    Parameters
    ----------
    model : ``nn.Sequential`` (anything with a flat ``params`` and ``loss_and_grads``)
    loss : e.g. ``nn.SoftmaxCrossEntropy()``
    train, val : ``(X, y)`` with ``X`` shaped as the model's input (N, ...) and ``y`` (N,)
    optimizer : an ``nn`` optimizer on ``model.params``; default ``SGD(lr, momentum)``
    seed : shuffling seed; on_step(step, loss) is called after every step (progress bars)
    """
    X, y = train
    if len(X) != len(y):
        raise ValueError(f"train: X and y must have the same length, got {len(X)} and {len(y)}")
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    opt = optimizer or nn.SGD(model.params, lr=lr, momentum=momentum)
    grads = np.empty_like(model.params)
    rng = np.random.default_rng(seed)
    result = FitResult()
    start = time.perf_counter()
    for _ in range(epochs):
        t0 = time.perf_counter()
        for xb, yb in data.batches(X, y, batch_size, shuffle=True, seed=rng):
            value, _, _ = model.loss_and_grads(loss, xb, yb, grads=grads)
            opt.step(grads)
            result.losses.append(value)
            if on_step:
                on_step(len(result.losses), value)
        result.epoch_times.append(time.perf_counter() - t0)
        if val is not None:
            result.val_accuracy.append(accuracy(model, *val))
    result.wall_time = time.perf_counter() - start
    return result
