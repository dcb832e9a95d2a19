"""Fully connected layer, ``y = x W^T + b``, with PyTorch's parameter layout."""

from __future__ import annotations

import math

import numpy as np

from ..runtime import checks
from .layer import DEFAULT_DTYPE, Layer, as_generator, check_dtype, sum_product, uniform


class Dense(Layer):
    """Affine map on the last axis, like ``torch.nn.Linear``.

    Parameters
    ----------
    in_features, out_features : int
    dtype : floating dtype of the parameters (float32 by default, float64 for gradient checks)
    rng : numpy Generator or int seed for the initialisation

    Shapes: input ``(..., in_features)``, output ``(..., out_features)``;
    ``weight (out_features, in_features)``, ``bias (out_features,)``.
    """

    def __init__(self, in_features: int, out_features: int, *, dtype=DEFAULT_DTYPE, rng=None):
        super().__init__()
        self.in_features = checks.integer("Dense: in_features", in_features, min=1)
        self.out_features = checks.integer("Dense: out_features", out_features, min=1)
        self.reset_parameters(rng, dtype)

    def reset_parameters(self, rng=None, dtype=DEFAULT_DTYPE) -> None:
        """PyTorch's default: weight and bias ~ U(-1/sqrt(in), 1/sqrt(in))."""
        rng, dtype = as_generator(rng), check_dtype(dtype)
        bound = 1 / math.sqrt(self.in_features)
        self.params = {
            "weight": uniform(rng, bound, (self.out_features, self.in_features), dtype),
            "bias": uniform(rng, bound, (self.out_features,), dtype),
        }

    def forward(self, x: np.ndarray):
        self._check_input(x)
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise self._shape_error(x, f"(..., {self.in_features})")
        w, b = self.params["weight"], self.params["bias"]
        return x @ w.T + b, x

    def backward(self, dout: np.ndarray, cache, need_dx: bool = True):
        x = cache
        w = self.params["weight"]
        d2 = dout.reshape(-1, self.out_features)
        x2 = x.reshape(-1, self.in_features)
        grads = {"weight": sum_product(d2.T, x2), "bias": d2.sum(axis=0)}
        dx = (dout @ w) if need_dx else None
        return dx, grads

    def __repr__(self) -> str:
        return f"Dense({self.in_features}, {self.out_features})"
