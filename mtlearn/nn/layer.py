"""The layer protocol every mtlearn layer follows, and a base class that implements it.

A layer keeps no per-call state: ``forward`` returns ``(out, cache)`` and ``backward`` takes
the cache back. Two threads can therefore run the same layer on different data at once —
the property every training strategy in :mod:`mtlearn.parallel` relies on.
"""

from __future__ import annotations

import numpy as np

DEFAULT_DTYPE = np.float32


def as_generator(rng=None) -> np.random.Generator:
    """Return ``rng`` as a ``numpy.random.Generator`` (``None`` or an int seed make a new one)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (int, np.integer)):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be None, an int seed or a numpy Generator, got {type(rng).__name__}")


def check_dtype(dtype) -> np.dtype:
    """Return ``dtype`` as a floating numpy dtype, or raise ``ValueError``."""
    dt = np.dtype(dtype)
    if dt.kind != "f":
        raise ValueError(f"dtype must be a floating type such as float32 or float64, got {dt}")
    return dt


def uniform(rng: np.random.Generator, bound: float, shape, dtype) -> np.ndarray:
    """Draw ``U(-bound, bound)`` of ``shape`` in ``dtype`` (PyTorch's default initialiser)."""
    return rng.uniform(-bound, bound, size=shape).astype(dtype, copy=False)


class Layer:
    """Base class: ``params`` dict, ``forward -> (out, cache)``, ``backward -> (dx, grads)``.

    Subclasses with parameters implement ``reset_parameters(rng, dtype)``, which (re)creates
    every array in ``self.params``. Calling the layer returns only the output.
    """

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray):  # pragma: no cover - interface
        raise NotImplementedError

    def backward(self, dout: np.ndarray, cache, need_dx: bool = True):  # pragma: no cover
        raise NotImplementedError

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)[0]

    def num_params(self) -> int:
        """Number of scalar parameters."""
        return sum(int(p.size) for p in self.params.values())

    def _shape_error(self, x: np.ndarray, expected: str) -> ValueError:
        return ValueError(f"{self!r}: expected input of shape {expected}, got {tuple(x.shape)}")
