"""Stepping through an ``nn.Sequential`` one layer at a time, as model parallelism must.

The data-parallel strategies call ``model.loss_and_grads`` and never look inside the model.
``pipeline`` (a run of layers per thread) and ``tensor`` (every layer split across threads)
have to drive the layers themselves; these are small pieces they share (the third,
stepping back through one layer with or without its input gradient, is ``nn.backward_of``).
"""

from __future__ import annotations

import numpy as np


def layer_slots(model) -> list[list[tuple[str, slice]]]:
    """For each layer of ``model``, its ``(parameter name, slice of model.params)`` pairs.

    A layer's slices are contiguous and follow the layer order, so layers ``a .. b-1`` own
    the single range ``model.params[first slice of a : last slice of b-1]``.
    """
    slots: list[list[tuple[str, slice]]] = [[] for _ in model.layers]
    for i, name, sl in model.param_slices():
        slots[i].append((name, sl))
    return slots


def probe(model, x: np.ndarray) -> list[np.ndarray]:
    """The output of every layer for a few samples ``x``: a dry run on the calling thread
    before any worker starts, which gives every layer's output shape and turns a shape
    mismatch into an error raised before any thread exists."""
    outs = []
    for layer in model.layers:
        x, _ = layer.forward(x)
        outs.append(x)
    return outs


def refuse_nested(model, strategy: str) -> None:
    """Model-parallel strategies step through ``model.layers`` one by one, so a model nested
    inside the model (its gradient is one flat vector, not named arrays) is refused."""
    for i, layer in enumerate(model.layers):
        if hasattr(layer, "layers"):
            raise ValueError(f"strategy {strategy!r} steps through the model's layers one by "
                             f"one; layer {i} is a nested model ({type(layer).__name__}): "
                             "flatten it into one nn.Sequential")
