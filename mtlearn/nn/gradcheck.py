"""Gradient checking: compare ``backward`` with central finite differences, in float64.

The check uses the scalar ``L = sum(forward(x) * R)`` for a fixed random ``R`` (so every
output element matters), or a real loss when one is given. Each input and parameter entry
is nudged by ``±eps`` and ``(L(+) - L(-)) / (2 eps)`` is compared with the analytic
gradient. The error of an array is ``|a - n| / max(|a|, |n|)`` in the 2-norm; with
``eps = 1e-6`` in float64 a correct layer scores about 1e-9 or better, a wrong one > 1e-2.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..runtime import checks
from .layer import Layer

THRESHOLD = 1e-6


def numerical_gradient(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of the scalar function ``f()`` with respect to the array ``x``,
    perturbed in place and restored. Returns an array of ``x``'s shape."""
    grad = np.zeros_like(x, dtype=np.float64)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    if not np.shares_memory(flat, x):
        raise ValueError("numerical_gradient needs an array whose reshape is a view")
    for k in range(flat.size):
        old = flat[k]
        flat[k] = old + eps
        plus = f()
        flat[k] = old - eps
        minus = f()
        flat[k] = old
        gflat[k] = (plus - minus) / (2 * eps)
    return grad


def relative_error(a: np.ndarray, n: np.ndarray) -> float:
    """``||a - n|| / max(||a||, ||n||)`` (0 when both are 0)."""
    scale = max(float(np.linalg.norm(a)), float(np.linalg.norm(n)))
    return float(np.linalg.norm(np.asarray(a) - np.asarray(n)) / scale) if scale else 0.0


@dataclass
class GradcheckResult:
    """Outcome of :func:`gradcheck`: ``max_rel_error`` over every checked array, the
    per-array ``errors`` (``"input"`` and each parameter name), and ``passed``."""

    max_rel_error: float
    errors: dict[str, float] = field(default_factory=dict)
    threshold: float = THRESHOLD

    @property
    def passed(self) -> bool:
        return self.max_rel_error < self.threshold

    def __float__(self) -> float:
        return self.max_rel_error

    def __repr__(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        detail = ", ".join(f"{k}: {v:.1e}" for k, v in self.errors.items())
        return (f"gradcheck {verdict}: max relative error {self.max_rel_error:.2e} "
                f"(threshold {self.threshold:.0e}; {detail})")


def gradcheck(layer, x: np.ndarray, target=None, loss=None, *, eps: float = 1e-6,
              threshold: float = THRESHOLD, check_input: bool = True,
              seed: int = 0) -> GradcheckResult:
    """Check ``layer.backward`` (a layer or a ``Sequential``) against finite differences.

    Parameters
    ----------
    layer : a layer or a model (``Sequential``) with float64 parameters, or any object with
        ``params``, ``forward`` and ``backward``
    x : float64 input of the shape the layer expects
    target, loss : optional; when given the scalar is ``loss.forward(out, target)``,
        otherwise ``sum(out * R)`` with ``R`` drawn from ``seed``
    eps : finite-difference step; threshold : pass if every relative error is below it
    check_input : also check the gradient with respect to ``x``

    Returns a :class:`GradcheckResult`; ``float(result)`` is the max relative error. Its
    ``errors`` are keyed ``"input"`` and each parameter's name (a model's are numbered by
    layer: ``"0.weight"``), so a failure points at the array that is wrong.
    """
    eps = checks.number("eps", eps, min=0, min_open=True)
    threshold = checks.number("threshold", threshold, min=0, min_open=True)
    check_input = checks.boolean("check_input", check_input)
    seed = checks.seed("seed", seed)
    if not isinstance(x, np.ndarray):
        raise TypeError(f"gradcheck: x must be a float64 numpy array, got {type(x).__name__}")
    # A Layer names its arrays (a model through its layers); a duck-typed layer has a dict.
    params = layer.named_params() if isinstance(layer, Layer) else dict(layer.params)
    bad = [k for k, v in params.items() if v.dtype != np.float64]
    if x.dtype != np.float64 or bad:
        raise ValueError("gradcheck needs float64 input and parameters (build the layer with "
                         f"dtype=np.float64); got x {x.dtype}, float32 params: {bad}")
    x = x.copy()
    out, cache = layer.forward(x)
    if loss is None:
        r = np.random.default_rng(seed).standard_normal(np.shape(out))

        def scalar() -> float:
            return float(np.sum(layer.forward(x)[0] * r))
        dout = r
    else:
        def scalar() -> float:
            return float(loss.forward(layer.forward(x)[0], target)[0])
        dout = loss.backward(loss.forward(out, target)[1])
    dx, grads = layer.backward(dout, cache)
    analytic = layer.named_grads(grads) if isinstance(layer, Layer) else dict(grads)
    errors = {}
    if check_input and dx is None:
        raise ValueError(f"gradcheck: {layer!r}.backward returned dx = None (its input has no "
                         f"gradient, like an Embedding's ids); pass check_input=False")
    if check_input:
        errors["input"] = relative_error(dx, numerical_gradient(scalar, x, eps))
    for name, arr in params.items():
        errors[name] = relative_error(analytic[name], numerical_gradient(scalar, arr, eps))
    return GradcheckResult(max(errors.values(), default=0.0), errors, threshold)
