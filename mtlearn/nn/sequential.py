"""``Sequential``: a stack of layers that owns one flat parameter vector.

Every layer's arrays are views into ``model.params`` (1-D, contiguous), and ``backward``
returns the gradient as one flat vector aligned with it. Flat vectors turn the parallel
strategies' hard parts into one-liners: an allreduce is a sum of vectors, a Hogwild update is
``params -= lr * g``, and an optimizer never needs to know the layers.
"""

from __future__ import annotations

import inspect

import numpy as np

from .layer import DEFAULT_DTYPE, check_dtype


class Sequential:
    """Layers applied in order, with one flat parameter vector.

    ``Sequential(*layers, seed=0, dtype=np.float32)`` re-initialises every layer that has
    ``reset_parameters(rng, dtype)`` from one Generator made from ``seed`` (same seed, same
    model). Any object with ``params``, ``forward(x) -> (out, cache)`` and
    ``backward(dout, cache) -> (dx, grads)`` can be a layer.

    Attributes: ``layers`` (list), ``params`` (1-D array of all parameters, in layer order).
    """

    def __init__(self, *layers, seed: int | None = 0, dtype=DEFAULT_DTYPE):
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        for i, layer in enumerate(layers):
            missing = [a for a in ("params", "forward", "backward") if not hasattr(layer, a)]
            if missing:
                raise TypeError(f"Sequential: layer {i} ({layer!r}) has no {', '.join(missing)}")
        self.layers = list(layers)
        self._skip_first_dx = bool(layers) and _accepts_need_dx(layers[0])
        self.dtype = check_dtype(dtype)
        rng = np.random.default_rng(seed)
        for layer in self.layers:
            if hasattr(layer, "reset_parameters"):
                layer.reset_parameters(rng, self.dtype)
        self._bind()

    def _bind(self) -> None:
        """Copy every layer's arrays into one flat vector and make them views into it."""
        self._slots = []       # (layer index, name, start, stop, shape)
        start = 0
        for i, layer in enumerate(self.layers):
            for name, arr in layer.params.items():
                stop = start + int(np.size(arr))
                self._slots.append((i, name, start, stop, np.shape(arr)))
                start = stop
        self.params = np.empty(start, dtype=self.dtype)
        for i, name, a, b, shape in self._slots:
            layer = self.layers[i]
            self.params[a:b] = np.ravel(layer.params[name])
            layer.params[name] = self.params[a:b].reshape(shape)

    @property
    def num_params(self) -> int:
        """Number of scalar parameters."""
        return int(self.params.size)

    def param_slices(self) -> list[tuple[int, str, slice]]:
        """``(layer index, parameter name, slice of model.params)`` for every parameter."""
        return [(i, name, slice(a, b)) for i, name, a, b, _ in self._slots]

    def use_buffer(self, buf: np.ndarray, copy: bool = True) -> None:
        """Move the parameters into ``buf``: ``model.params`` becomes ``buf`` and every
        layer's arrays become views into it (e.g. shared memory that worker processes read).

        buf : 1-D contiguous array of ``num_params`` elements of the model's dtype
        copy : copy the current values into ``buf`` first; ``False`` when ``buf`` already
            holds them (a worker process attaching to parameters its parent wrote)
        """
        if (not isinstance(buf, np.ndarray) or buf.shape != self.params.shape
                or buf.dtype != self.params.dtype or not buf.flags.c_contiguous):
            raise ValueError(f"use_buffer: buf must be a contiguous {self.params.dtype} array "
                             f"of shape {self.params.shape}, got {type(buf).__name__} "
                             f"{getattr(buf, 'dtype', '')} {np.shape(buf)}")
        if copy:
            buf[...] = self.params
        self.params = buf
        for i, name, a, b, shape in self._slots:
            self.layers[i].params[name] = buf[a:b].reshape(shape)

    def __setstate__(self, state: dict) -> None:
        # pickle and copy.deepcopy rebuild the layers' arrays as separate copies: make them
        # views into the flat vector again, so the unpickled model keeps the contract.
        self.__dict__.update(state)
        self.use_buffer(self.params, copy=False)

    def forward(self, x: np.ndarray):
        """Run every layer. ``x`` is the first layer's input -> ``(out, cache)``."""
        caches = []
        for layer in self.layers:
            x, cache = layer.forward(x)
            caches.append(cache)
        return x, caches

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)[0]

    def backward(self, dout: np.ndarray, cache, grads: np.ndarray | None = None,
                 need_dx: bool = True):
        """Backpropagate ``dout`` (the gradient of the output) through every layer.

        Returns ``(dx, grads)``: ``dx`` has the input's shape (``None`` when ``need_dx`` is
        False, which skips the first layer's input gradient, as PyTorch does for inputs that
        need none); ``grads`` is a flat vector aligned with ``params``, written into the
        caller's buffer ``grads`` when one is given (so each thread can own its own).
        """
        if grads is None:
            grads = np.empty_like(self.params)
        elif grads.shape != self.params.shape:
            raise ValueError(f"Sequential.backward: grads must have shape {self.params.shape}, "
                             f"got {grads.shape}")
        slots = iter(reversed(self._slots))
        slot = next(slots, None)
        for i in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[i]
            if i == 0 and not need_dx and self._skip_first_dx:
                dout, g = layer.backward(dout, cache[i], need_dx=False)
            else:
                dout, g = layer.backward(dout, cache[i])
            while slot is not None and slot[0] == i:
                _, name, a, b, _ = slot
                grads[a:b] = np.ravel(g[name])
                slot = next(slots, None)
        return dout, grads

    def loss_and_grads(self, loss, x: np.ndarray, y: np.ndarray,
                       grads: np.ndarray | None = None):
        """One forward and backward pass through the model and ``loss``.

        Returns ``(loss value: float, grads: flat vector aligned with params, out)``.
        """
        out, cache = self.forward(x)
        value, lcache = loss.forward(out, y)
        _, grads = self.backward(loss.backward(lcache), cache, grads=grads, need_dx=False)
        return value, grads, out

    def predict(self, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
        """Outputs for ``x`` in batches (inference only, nothing is kept)."""
        return np.concatenate([self(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])

    def __repr__(self) -> str:
        body = "".join(f"\n  ({i}): {layer!r}" for i, layer in enumerate(self.layers))
        return f"Sequential({body}\n)  # {self.num_params:,} parameters, {self.dtype}"


def _accepts_need_dx(layer) -> bool:
    try:
        return "need_dx" in inspect.signature(layer.backward).parameters
    except (TypeError, ValueError):
        return False
