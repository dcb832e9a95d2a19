"""Optimizers that update a flat parameter vector in place.

``opt = SGD(model.params, lr=0.1, momentum=0.9)`` then ``opt.step(grads)`` each step, with
``grads`` a flat vector aligned with the parameters. Updates are in place so every view into
``params`` (the layers' arrays, other threads) sees them at once. The formulas are PyTorch's.
"""

from __future__ import annotations

import numpy as np


def _check_vector(name: str, v: np.ndarray) -> np.ndarray:
    if not isinstance(v, np.ndarray) or v.ndim != 1:
        raise ValueError(f"{name} must be a 1-D numpy array (a model's flat vector), "
                         f"got {type(v).__name__} of shape {np.shape(v)}")
    return v


class Optimizer:
    """Base class: holds the flat ``params`` it updates and the hyper-parameters."""

    def __init__(self, params: np.ndarray, lr: float):
        self.params = _check_vector("params", params)
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr!r}")
        self.lr = float(lr)
        self.steps = 0

    def _check(self, grads: np.ndarray) -> np.ndarray:
        if np.shape(grads) != self.params.shape:
            raise ValueError(f"grads must have shape {self.params.shape}, got {np.shape(grads)}")
        return grads

    def step(self, grads: np.ndarray) -> None:  # pragma: no cover - interface
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum and (L2) weight decay.

    ``g = grads + weight_decay * p``; ``v = momentum * v + g``; ``p -= lr * v``
    (or ``p -= lr * (g + momentum * v)`` with ``nesterov=True``).
    """

    def __init__(self, params, lr=0.01, momentum=0.0, weight_decay=0.0, nesterov=False):
        super().__init__(params, lr)
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
        if nesterov and momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0")
        self.momentum, self.weight_decay, self.nesterov = momentum, weight_decay, nesterov
        self.velocity = np.zeros_like(params) if momentum else None

    def step(self, grads: np.ndarray) -> None:
        """Apply one update to ``params`` in place. grads: same shape as params."""
        g = self._check(grads)
        p = self.params
        if self.weight_decay:
            g = g + self.weight_decay * p
        if self.momentum:
            v = self.velocity
            v *= self.momentum
            v += g
            g = g + self.momentum * v if self.nesterov else v
        p -= self.lr * g
        self.steps += 1


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias correction and optional L2 weight decay."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr)
        b1, b2 = betas
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            raise ValueError(f"betas must lie in [0, 1), got {betas!r}")
        self.betas, self.eps, self.weight_decay = (b1, b2), eps, weight_decay
        self.m = np.zeros_like(params)
        self.v = np.zeros_like(params)

    def step(self, grads: np.ndarray) -> None:
        """Apply one update to ``params`` in place. grads: same shape as params."""
        g = self._check(grads)
        if self.weight_decay:
            g = g + self.weight_decay * self.params
        b1, b2 = self.betas
        self.steps += 1
        self.m *= b1
        self.m += (1 - b1) * g
        self.v *= b2
        self.v += (1 - b2) * (g * g)
        mhat_scale = self.lr / (1 - b1 ** self.steps)
        vhat = self.v / (1 - b2 ** self.steps)
        self.params -= mhat_scale * self.m / (np.sqrt(vhat) + self.eps)
