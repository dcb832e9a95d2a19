"""Losses: ``forward(pred, target) -> (loss, cache)``, ``backward(cache) -> dpred``.

Both average over the batch, like PyTorch's default ``reduction="mean"``.
"""

from __future__ import annotations

import numpy as np

from .layer import check_real


class SoftmaxCrossEntropy:
    """Softmax followed by the negative log-likelihood of integer class labels.

    ``forward(logits (N, K), y (N,) ints in [0, K)) -> (loss: float, cache)``;
    ``backward(cache) -> dlogits (N, K)``, which is ``(softmax(logits) - onehot(y)) / N``.
    """

    def forward(self, logits: np.ndarray, y: np.ndarray):
        check_real(logits, "SoftmaxCrossEntropy: logits")
        y = np.asarray(y)
        if logits.ndim != 2 or y.shape != (logits.shape[0],):
            raise ValueError(f"SoftmaxCrossEntropy: expected logits (N, K) and labels (N,), "
                             f"got {tuple(logits.shape)} and {tuple(y.shape)}")
        if y.dtype.kind not in "iu":
            raise ValueError(f"SoftmaxCrossEntropy: labels must be integers, got {y.dtype}")
        n, k = logits.shape
        if n and (y.min() < 0 or y.max() >= k):
            raise ValueError(f"SoftmaxCrossEntropy: labels must lie in [0, {k}), "
                             f"got values from {y.min()} to {y.max()}")
        shifted = logits - logits.max(axis=1, keepdims=True)   # stable: exp never overflows
        logsumexp = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        logp = shifted - logsumexp
        rows = np.arange(n)
        loss = -logp[rows, y].mean()
        return float(loss), (logp, y)

    def backward(self, cache) -> np.ndarray:
        logp, y = cache
        n = logp.shape[0]
        d = np.exp(logp)
        d[np.arange(n), y] -= 1
        d /= n
        return d

    def __repr__(self) -> str:
        return "SoftmaxCrossEntropy()"


class MSELoss:
    """Mean squared error over all elements: ``mean((pred - target)**2)``.

    ``forward(pred, target)`` with equal shapes ``-> (loss: float, cache)``;
    ``backward(cache) -> dpred`` of ``pred``'s shape.
    """

    def forward(self, pred: np.ndarray, target: np.ndarray):
        check_real(pred, "MSELoss: pred")
        target = check_real(np.asarray(target), "MSELoss: target")
        if pred.shape != target.shape:
            raise ValueError(f"MSELoss: pred and target must have the same shape, "
                             f"got {tuple(pred.shape)} and {tuple(target.shape)}")
        diff = pred - target
        return float(np.mean(diff * diff)), diff

    def backward(self, cache) -> np.ndarray:
        diff = cache
        return diff * (2 / diff.size)

    def __repr__(self) -> str:
        return "MSELoss()"
