"""Optimizers that update a flat parameter vector in place.

``opt = SGD(model.params, lr=0.1, momentum=0.9)`` then ``opt.step(grads)`` each step, with
``grads`` a flat vector aligned with the parameters. Updates are in place so every view into
``params`` (the layers' arrays, other threads) sees them at once. The formulas are PyTorch's.
"""

from __future__ import annotations

import numpy as np

from ..runtime import checks


def _check_params(v) -> np.ndarray:
    """The vector an optimizer updates in place: a non-empty 1-D floating numpy array."""
    if not isinstance(v, np.ndarray) or v.dtype.kind != "f":
        got = f"{v.dtype} array" if isinstance(v, np.ndarray) else type(v).__name__
        raise TypeError(f"params must be a 1-D floating numpy array (a model's flat vector "
                        f"model.params), got {got} of shape {np.shape(v)}")
    if v.ndim != 1:
        raise ValueError(f"params must be a 1-D array (a model's flat vector model.params), "
                         f"got shape {v.shape}")
    # Like torch.optim ("optimizer got an empty parameter list"): training a model made only
    # of ReLU/Flatten/MaxPool2D layers would run and change nothing. An empty *slice* of a
    # model's vector is fine: a worker's share is empty when there are more workers than
    # parameters, and its optimizer then has nothing to do.
    if v.size == 0 and not (isinstance(v.base, np.ndarray) and v.base.size):
        raise ValueError("params is empty: the model has no parameters to train; give it a "
                         "layer with parameters (Dense, Conv2D, LSTM, ...)")
    return v


class Optimizer:
    """Base class: holds the flat ``params`` it updates and the hyper-parameters.

    ``params`` is a 1-D floating array, ``model.params`` or a slice of it (empty only as a
    slice of a non-empty vector), and ``lr`` a finite number > 0; every argument is checked
    on construction.
    """

    def __init__(self, params: np.ndarray, lr: float):
        self.params = _check_params(params)
        self.lr = checks.number("lr", lr, min=0, min_open=True)
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
        self.momentum = checks.fraction("momentum", momentum)
        self.weight_decay = checks.number("weight_decay", weight_decay, min=0)
        self.nesterov = checks.boolean("nesterov", nesterov)
        if nesterov and self.momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0")
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
    """Adam (Kingma & Ba 2015) with bias correction and optional L2 weight decay.

    ``betas``: two numbers in [0, 1); ``eps`` > 0 keeps the step finite where a gradient
    has always been 0 (``m = v = 0``); ``weight_decay`` >= 0.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr)
        if not isinstance(betas, tuple | list):
            raise TypeError(f"betas must be a pair (beta1, beta2) of numbers in [0, 1), "
                            f"got {betas!r} ({type(betas).__name__})")
        if len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2) of numbers in [0, 1), "
                             f"got {len(betas)} values: {betas!r}")
        self.betas = (checks.fraction("betas[0]", betas[0]), checks.fraction("betas[1]", betas[1]))
        self.eps = checks.number("eps", eps, min=0, min_open=True)
        self.weight_decay = checks.number("weight_decay", weight_decay, min=0)
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
