"""Stepping through an ``nn.Sequential`` one layer at a time, as model parallelism must.

The data-parallel strategies call ``model.loss_and_grads`` and never look inside the model.
``pipeline`` (a run of layers per thread) and ``tensor`` (every layer split across threads)
have to drive the layers themselves; these are the three small pieces they share.
"""

from __future__ import annotations

import inspect

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


def backward(layer, dout: np.ndarray, cache, need_dx: bool = True):
    """``layer.backward(dout, cache)``; with ``need_dx=False`` the input gradient is skipped
    where the layer supports it (the model's first layer: its input is the data)."""
    if not need_dx and "need_dx" in inspect.signature(layer.backward).parameters:
        return layer.backward(dout, cache, need_dx=False)
    return layer.backward(dout, cache)


def probe(model, x: np.ndarray) -> list[np.ndarray]:
    """The output of every layer for a few samples ``x``: a dry run on the calling thread
    before any worker starts, which gives every layer's output shape and turns a shape
    mismatch into an error raised before any thread exists."""
    outs = []
    for layer in model.layers:
        x, _ = layer.forward(x)
        outs.append(x)
    return outs
