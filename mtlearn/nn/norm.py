"""Layer normalisation, like ``torch.nn.LayerNorm``: each vector rescaled to mean 0, variance 1.

For every position, over its last ``normalized_shape`` axes (F numbers)::

    mu = mean(x)          var = mean((x - mu)^2)          xhat = (x - mu) / sqrt(var + eps)
    out = xhat * weight + bias

A Transformer normalises the input of every attention and MLP sub-layer this way, so that
the residual stream can grow over many blocks while each sub-layer still sees inputs of a
fixed scale.

**The performance trick**: the means are matrix-vector products with a vector of ``1/F``.
numpy reduces over a short last axis (``x.mean(axis=-1)`` with F = 64) in a loop per row,
while BLAS's GEMV streams through the whole matrix: on the machine this was written on the
product was ~10x faster, and it appears four times per forward and backward. The parameter
gradients, sums over all positions, are GEMVs with a vector of ones for the same reason.
"""

from __future__ import annotations

import math

import numpy as np

from ..runtime import checks
from .layer import DEFAULT_DTYPE, Layer, check_dtype, sum_product


class LayerNorm(Layer):
    """Normalise over the last axes, with a learned scale and shift.

    Parameters
    ----------
    normalized_shape : int or tuple of ints, the trailing shape normalised over (F numbers)
    eps : number > 0 added to the variance
    dtype, rng : parameter dtype; ``rng`` is accepted like every layer's (the initial
        values are fixed: ``weight`` 1, ``bias`` 0, as in PyTorch)

    Shapes: input ``(..., *normalized_shape)``, output the same; ``weight`` and ``bias``
    ``normalized_shape``.
    """

    def __init__(self, normalized_shape, eps: float = 1e-5, *, dtype=DEFAULT_DTYPE, rng=None):
        super().__init__()
        dims = normalized_shape if isinstance(normalized_shape, tuple | list) else (
            normalized_shape,)
        if not dims:
            raise ValueError("LayerNorm: normalized_shape must have at least one dimension, "
                             "got ()")
        self.normalized_shape = tuple(checks.integer("LayerNorm: normalized_shape", d, min=1)
                                      for d in dims)
        self.eps = checks.number("LayerNorm: eps", eps, min=0, min_open=True)
        self.reset_parameters(rng, dtype)

    def reset_parameters(self, rng=None, dtype=DEFAULT_DTYPE) -> None:
        """PyTorch's: ``weight`` 1, ``bias`` 0 (``rng`` is not needed)."""
        dtype = check_dtype(dtype)
        self.params = {"weight": np.ones(self.normalized_shape, dtype=dtype),
                       "bias": np.zeros(self.normalized_shape, dtype=dtype)}

    def forward(self, x: np.ndarray):
        self._check_input(x)
        k = len(self.normalized_shape)
        if x.ndim < k or x.shape[x.ndim - k:] != self.normalized_shape:
            raise self._shape_error(x, f"(..., {', '.join(map(str, self.normalized_shape))})")
        F = math.prod(self.normalized_shape)
        w, b = self.params["weight"].reshape(-1), self.params["bias"].reshape(-1)
        dtype = np.result_type(x, w)
        x2 = x.reshape(-1, F)
        by_f = np.full(F, 1 / F, dtype=dtype)              # mean = x2 @ by_f (see above)
        xhat = x2 - (x2 @ by_f)[:, None]
        var = (xhat * xhat) @ by_f
        rstd = 1 / np.sqrt(var + self.eps)
        xhat *= rstd[:, None]
        out = xhat * w
        out += b
        return out.reshape(x.shape), (xhat, rstd, by_f, x.shape)

    def backward(self, dout: np.ndarray, cache, need_dx: bool = True):
        xhat, rstd, by_f, shape = cache
        d2 = dout.reshape(xhat.shape)
        w = self.params["weight"].reshape(-1)
        ones = np.ones(len(d2), dtype=d2.dtype)            # column sums as GEMVs too
        d_xhat = d2 * xhat
        grads = {"weight": sum_product(ones, d_xhat).reshape(self.normalized_shape),
                 "bias": sum_product(ones, d2).reshape(self.normalized_shape)}
        if not need_dx:
            return None, grads
        # dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), dxhat = dout * w
        dxhat = d2 * w
        d_xhat *= w                                        # now dxhat * xhat
        dx = xhat * (d_xhat @ by_f)[:, None]
        dx += (dxhat @ by_f)[:, None]
        np.subtract(dxhat, dx, out=dx)
        dx *= rstd[:, None]
        return dx.reshape(shape), grads

    def __repr__(self) -> str:
        shape = self.normalized_shape[0] if len(self.normalized_shape) == 1 else (
            self.normalized_shape)
        eps = "" if self.eps == 1e-5 else f", eps={self.eps:g}"
        return f"LayerNorm({shape}{eps})"
