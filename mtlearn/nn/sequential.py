"""``Sequential``: a stack of layers that owns one flat parameter vector.

Every layer's arrays are views into ``model.params`` (1-D, contiguous), and ``backward``
returns the gradient as one flat vector aligned with it. Flat vectors turn the parallel
strategies' hard parts into one-liners: an allreduce is a sum of vectors, a Hogwild update is
``params -= lr * g``, and an optimizer never needs to know the layers.

A ``Sequential`` is itself a :class:`~mtlearn.nn.Layer`, so models nest: an inner model's
vector becomes one contiguous piece of the outer one, and its ``backward`` writes its
gradient straight into the matching piece of the outer gradient.
"""

from __future__ import annotations

import numpy as np

from ..runtime import checks
from .layer import DEFAULT_DTYPE, Layer, as_generator, backward_of, check_dtype


class Sequential(Layer):
    """Layers applied in order, with one flat parameter vector.

    ``Sequential(*layers, seed=0, dtype=np.float32)`` re-initialises every layer that has
    ``reset_parameters(rng, dtype)`` from one Generator made from ``seed`` (same seed, same
    model). Any object with ``params``, ``forward(x) -> (out, cache)`` and
    ``backward(dout, cache) -> (dx, grads)`` can be a layer, a ``Sequential`` included.

    Attributes: ``layers`` (list), ``params`` (1-D array of all parameters, in layer order),
    ``num_params``, ``dtype``.
    """

    def __init__(self, *layers, seed: int | None = 0, dtype=DEFAULT_DTYPE):
        super().__init__()
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        for i, layer in enumerate(layers):
            missing = [a for a in ("params", "forward", "backward") if not hasattr(layer, a)]
            if missing:
                raise TypeError(f"Sequential: layer {i} ({layer!r}) has no {', '.join(missing)}")
            for j in range(i):
                if layers[j] is layer:
                    # one object in two places would have two slots in the flat vector, of
                    # which only the last is read: the first would train nothing
                    raise ValueError(f"Sequential: layers {j} and {i} are the same object "
                                     f"({layer!r}); create a separate layer for each place")
        seed = None if seed is None else checks.seed("seed", seed)
        self.layers = list(layers)
        self.dtype = check_dtype(dtype)
        self.reset_parameters(np.random.default_rng(seed), self.dtype)

    def reset_parameters(self, rng=None, dtype=None) -> None:
        """Re-initialise every layer that has ``reset_parameters`` from ``rng`` in order, in
        ``dtype`` (default: the model's), and rebuild the flat vector."""
        rng = as_generator(rng)
        self.dtype = check_dtype(self.dtype if dtype is None else dtype)
        for layer in self.layers:
            if hasattr(layer, "reset_parameters"):
                layer.reset_parameters(rng, self.dtype)
        self._bind()

    def _bind(self) -> None:
        """Copy every layer's arrays into one flat vector and make them views into it."""
        self._slots = []       # (layer index, name, start, stop, shape), every array in order
        self._spans = []       # (start, stop) of each layer's piece of the vector
        values = []
        start = 0
        for i, layer in enumerate(self.layers):
            first = start
            for name, arr in _arrays_of(layer).items():
                stop = start + int(np.size(arr))
                self._slots.append((i, name, start, stop, np.shape(arr)))
                values.append(arr)
                start = stop
            self._spans.append((first, start))
        self._by_layer = [[(name, a, b, shape) for j, name, a, b, shape in self._slots if j == i]
                          for i in range(len(self.layers))]
        params = np.empty(start, dtype=self.dtype)
        for (_, _, a, b, _), value in zip(self._slots, values, strict=True):
            params[a:b] = np.ravel(value)
        self._attach(params)

    def _attach(self, buf: np.ndarray) -> None:
        """Make ``buf`` the flat vector and every layer's arrays views into it."""
        self.params = buf
        for i, layer in enumerate(self.layers):
            if isinstance(layer, Sequential):      # a nested model: its piece is its vector
                a, b = self._spans[i]
                layer.use_buffer(buf[a:b], copy=False)
                continue
            for name, a, b, shape in self._by_layer[i]:
                layer.params[name] = buf[a:b].reshape(shape)

    @property
    def num_params(self) -> int:
        """Number of scalar parameters."""
        return int(self.params.size)

    def param_slices(self) -> list[tuple[int, str, slice]]:
        """``(layer index, parameter name, slice of model.params)`` for every parameter (a
        nested model's parameters are named inside it, e.g. ``"0.weight"``)."""
        return [(i, name, slice(a, b)) for i, name, a, b, _ in self._slots]

    def named_params(self) -> dict[str, np.ndarray]:
        """``{"<layer index>.<name>": array}`` for every parameter, as in
        ``torch.nn.Sequential.named_parameters``; the arrays are views into ``params``."""
        return {f"{i}.{name}": self.params[a:b].reshape(shape)
                for i, name, a, b, shape in self._slots}

    def named_grads(self, grads: np.ndarray) -> dict[str, np.ndarray]:
        """The flat gradient ``grads`` as views under the names of :meth:`named_params`."""
        return {f"{i}.{name}": grads[a:b].reshape(shape) for i, name, a, b, shape in self._slots}

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
        self._attach(buf)

    def __setstate__(self, state: dict) -> None:
        # pickle and copy.deepcopy rebuild the layers' arrays as separate copies: make them
        # views into the flat vector again, so the unpickled model keeps the contract.
        self.__dict__.update(state)
        self.use_buffer(self.params, copy=False)

    def forward(self, x: np.ndarray):
        """Run every layer. ``x`` is the first layer's input -> ``(out, cache)``."""
        caches = []
        for i, layer in enumerate(self.layers):
            try:
                x, cache = layer.forward(x)
            except Exception as exc:
                _note_layer(exc, "forward", i, layer)
                raise
            caches.append(cache)
        return x, caches

    def backward(self, dout: np.ndarray, cache, need_dx: bool = True, *,
                 grads: np.ndarray | None = None):
        """Backpropagate ``dout`` (the gradient of the output) through every layer.

        Returns ``(dx, grads)``: ``dx`` has the input's shape (``None`` when ``need_dx`` is
        False, which lets the first layer skip its input gradient, as PyTorch does for inputs
        that need none); ``grads`` is a flat vector aligned with ``params``, written into the
        caller's buffer ``grads`` when one is given (so each thread can own its own).
        """
        if grads is None:
            grads = np.empty_like(self.params)
        elif not isinstance(grads, np.ndarray) or grads.shape != self.params.shape:
            raise ValueError(f"Sequential.backward: grads must have shape {self.params.shape}, "
                             f"got {np.shape(grads)}")
        for i in range(len(self.layers) - 1, -1, -1):
            layer, need = self.layers[i], need_dx or i > 0
            try:
                if isinstance(layer, Sequential):      # writes its gradient into its own piece
                    a, b = self._spans[i]
                    dout, _ = layer.backward(dout, cache[i], need, grads=grads[a:b])
                    continue
                dout, g = backward_of(layer, dout, cache[i], need)
            except Exception as exc:
                _note_layer(exc, "backward", i, layer)
                raise
            for name, a, b, _ in self._by_layer[i]:
                grads[a:b] = np.ravel(g[name])
        return dout, grads

    def loss_and_grads(self, loss, x: np.ndarray, y: np.ndarray,
                       grads: np.ndarray | None = None):
        """One forward and backward pass through the model and ``loss``.

        Returns ``(loss value: float, grads: flat vector aligned with params, out)``.
        """
        out, cache = self.forward(x)
        value, lcache = loss.forward(out, y)
        _, grads = self.backward(loss.backward(lcache), cache, need_dx=False, grads=grads)
        return value, grads, out

    def predict(self, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
        """Outputs for ``x`` (at least one sample) in batches (inference only, nothing is
        kept)."""
        batch_size = checks.integer("batch_size", batch_size, min=1)
        if len(x) == 0:
            raise ValueError(f"predict: x must hold at least one sample, got shape "
                             f"{np.shape(x)}")
        return np.concatenate([self(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])

    def __repr__(self) -> str:
        body = "".join("\n  " + f"({i}): {layer!r}".replace("\n", "\n  ")
                       for i, layer in enumerate(self.layers))
        return f"Sequential({body}\n)  # {self.num_params:,} parameters, {self.dtype}"


def _arrays_of(layer) -> dict[str, np.ndarray]:
    """A layer's parameter arrays by name, in the order they go into the flat vector."""
    return layer.named_params() if isinstance(layer, Sequential) else layer.params


def _note_layer(exc: Exception, phase: str, index: int, layer) -> None:
    """Say which layer failed, once per model level (a worker's error then names both the
    thread and the layer)."""
    exc.add_note(f"in the {phase} pass of layer {index} ({type(layer).__name__}) of the model")
