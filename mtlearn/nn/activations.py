"""Element-wise activations and ``Flatten``: layers without parameters."""

from __future__ import annotations

import math

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


class GELU(Layer):
    """The Gaussian error linear unit, tanh approximation (``torch.nn.GELU(approximate=
    "tanh")``, the activation of GPT-2 and BERT)::

        gelu(x) = x * h(x),   h(x) = (1 + tanh(c (x + a x^3))) / 2,   c = sqrt(2/pi), a = 0.044715

    ``h`` is a smooth step from 0 to 1 (close to the normal CDF), so GELU is a ReLU with the
    corner rounded off. Any shape in, the same shape out. The derivative is
    ``h + x h'``, with ``h' = 2 h (1 - h) c (1 + 3 a x^2)`` (since ``(1 - tanh^2) / 2 =
    2 h (1 - h)``), so backward needs only ``x`` and ``h`` from the forward pass.
    """

    C = math.sqrt(2 / math.pi)
    A = 0.044715

    def forward(self, x: np.ndarray):
        self._check_input(x)
        # in place on one temporary: each numpy call on a large array is one pass over memory
        h = x * x
        h *= self.A * self.C
        h += self.C
        h *= x                                  # c (x + a x^3)
        np.tanh(h, out=h)
        h += 1
        h *= 0.5
        return x * h, (x, h)

    def backward(self, dout: np.ndarray, cache, need_dx: bool = True):
        if not need_dx:
            return None, {}
        x, h = cache
        slope = x * x
        slope *= 3 * self.A * self.C
        slope += self.C
        slope *= x                              # x c (1 + 3 a x^2)
        step = 1 - h
        step *= h
        step *= 2                               # 2 h (1 - h)
        slope *= step
        slope += h                              # h + x h'
        slope *= dout
        return slope, {}

    def __repr__(self) -> str:
        return 'GELU(approximate="tanh")'
