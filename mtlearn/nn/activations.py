"""Element-wise activations and ``Flatten``: layers without parameters."""

from __future__ import annotations

import numpy as np

from .layer import Layer


class ReLU(Layer):
    """``max(x, 0)`` element-wise; any shape in, the same shape (and memory layout) out."""

    def forward(self, x: np.ndarray):
        self._check_input(x)
        out = np.maximum(x, 0)
        return out, out

    def backward(self, dout: np.ndarray, cache, need_dx: bool = True):
        if not need_dx:
            return None, {}
        out = cache
        # Gradient flows where the unit was active; 0 counts as inactive, as in PyTorch.
        # (np.where with a scalar is ~7x slower than this multiply by a boolean mask)
        return dout * (out > 0), {}

    def __repr__(self) -> str:
        return "ReLU()"


class Tanh(Layer):
    """``tanh(x)`` element-wise; ``d tanh = 1 - tanh**2``."""

    def forward(self, x: np.ndarray):
        self._check_input(x)
        out = np.tanh(x)
        return out, out

    def backward(self, dout: np.ndarray, cache, need_dx: bool = True):
        if not need_dx:
            return None, {}
        out = cache
        return dout * (1 - out * out), {}

    def __repr__(self) -> str:
        return "Tanh()"


class Flatten(Layer):
    """``(N, d1, d2, ...) -> (N, d1*d2*...)`` in C order (the order ``torch.flatten`` uses)."""

    def forward(self, x: np.ndarray):
        self._check_input(x)
        if x.ndim < 2:
            raise self._shape_error(x, "(N, ...) with at least 2 dimensions")
        return x.reshape(x.shape[0], -1), x.shape

    def backward(self, dout: np.ndarray, cache, need_dx: bool = True):
        return (dout.reshape(cache) if need_dx else None), {}

    def __repr__(self) -> str:
        return "Flatten()"
