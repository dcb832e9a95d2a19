"""``tensor``: intra-layer model parallelism, Megatron-style in spirit — one layer, T threads.

Data parallelism splits the *batch*; tensor parallelism splits each *layer*. Every
``Conv2D`` has its output channels, and every ``Dense`` its output features, cut into T
contiguous slices, one per worker. Worker k owns rows ``lo:hi`` of the weight and bias (a
*shard*: a copy of the layer whose parameters are views of those rows), computes that slice
of the output, and writes it into one shared output array. Every worker needs the whole
output before the next layer, so each layer ends at a ``threading.Barrier``::

    forward, layer l:   worker k: out[:, lo_k:hi_k] = shard_k(x) ─ barrier ─ x = out
    backward, layer l:  worker k: dW, db of its rows; partial dx_k = dout[:, lo_k:hi_k] @ W_k
                        ─ barrier ─ worker k adds up batch rows k of dx_0 + ... + dx_{T-1}
                        ─ barrier ─ dout = dx

Each weight row's gradient comes from one worker only, but every worker's rows touch the
whole input, so the input gradient is a sum of T partial ones: summed in worker order, it
is the same number every run. Layers that are not split (``ReLU``, ``MaxPool2D``,
``Flatten``, ``LSTM``, ``LastStep``, a layer of your own) run on worker 0 while the others
wait at that layer's barrier — exact, and a serial fraction you can see on the timeline.
A worker that owns no rows (more threads than channels) still meets every barrier. Every
worker of a split layer reads the whole input (each ``Conv2D`` shard unfolds it with its own
im2col), as Megatron keeps activations replicated on every GPU.

Real tensor parallelism synchronises less: it keeps element-wise layers split (a ``ReLU``
after a split ``Conv2D`` needs no gather) and pairs a column-split layer with a row-split
one. Here every layer is its own synchronisation point, on purpose, so that its cost shows.

Every parameter is read and written by one worker only — its owner, which runs the shard or
the unsplit layer — so the update needs no further barrier: worker k applies the optimizer
to its own slices of the flat vector (optimizers are element-wise, so this equals serial).

This is the point of the strategy: a barrier per layer, and two per split layer backward,
costs something every step whatever the layer's size. ``history.info["barriers_per_step"]``
counts them (two more per step hand each batch over from the main thread); the trace shows
them as ``wait`` spans next to ``forward``, ``backward``, ``reduce`` and ``update``, and
``info["wait_fraction"]`` is the workers' share of time spent in them. ``split_layers`` (with
each worker's slice) and ``worker0_layers`` say which layers ran how.
"""

from __future__ import annotations

import copy
import threading

import numpy as np

from .. import nn
from ..nn import backward_of as backward
from ..runtime.threads import Barrier
from .base import Strategy, split_bounds
from .layerwise import layer_slots, probe


def is_split(layer) -> bool:
    """Whether ``tensor`` splits this layer's outputs across the workers."""
    return isinstance(layer, nn.Conv2D | nn.Dense)


def out_size(layer) -> int:
    """Output channels of a ``Conv2D``, output features of a ``Dense``."""
    return layer.out_channels if isinstance(layer, nn.Conv2D) else layer.out_features


def out_index(layer, lo: int, hi: int) -> tuple:
    """Index of output slice ``lo:hi``: the channel axis (1) of a ``Conv2D`` output, the
    last axis of a ``Dense`` output."""
    if isinstance(layer, nn.Conv2D):
        return (slice(None), slice(lo, hi))
    return (Ellipsis, slice(lo, hi))


def make_shard(layer, lo: int, hi: int):
    """A copy of a split ``layer`` that computes output rows ``lo:hi`` only; its parameters
    are views of the layer's, so they always hold the current values."""
    shard = copy.copy(layer)
    shard.params = {name: p[lo:hi] for name, p in layer.params.items()}
    if isinstance(layer, nn.Conv2D):
        shard.out_channels = hi - lo
    else:
        shard.out_features = hi - lo
    return shard


def split_plan(model, threads: int) -> list[list[tuple[int, int]] | None]:
    """For each layer, the output rows ``[(lo, hi)]`` of every worker, or ``None`` for a
    layer that is not split (worker 0 runs it)."""
    return [split_bounds(out_size(layer), threads) if is_split(layer) else None
            for layer in model.layers]


def owned_slices(model, threads: int) -> list[list[tuple[int, str, slice]]]:
    """For each worker, the ``(layer, parameter name, slice of model.params)`` it owns:
    its rows of every split layer; worker 0 also owns every parameter of unsplit layers."""
    plan = split_plan(model, threads)
    owned: list[list[tuple[int, str, slice]]] = [[] for _ in range(threads)]
    for l, slots in enumerate(layer_slots(model)):
        for name, sl in slots:
            if plan[l] is None:
                owned[0].append((l, name, sl))
                continue
            row = (sl.stop - sl.start) // out_size(model.layers[l])
            for k, (lo, hi) in enumerate(plan[l]):
                if hi > lo:
                    owned[k].append((l, name, slice(sl.start + lo * row, sl.start + hi * row)))
    return owned


def add_rows(parts: list, out: np.ndarray, lo: int, hi: int) -> None:
    """``out[lo:hi] = sum of part[lo:hi]`` over the parts present, in worker order (a fixed
    order: the same bits every run)."""
    if hi == lo:
        return
    first = True
    for part in parts:
        if part is None:                   # that worker owns no rows of the layer
            continue
        if first:
            out[lo:hi] = part[lo:hi]
            first = False
        else:
            out[lo:hi] += part[lo:hi]


class Tensor(Strategy):
    name = "tensor"
    description = "tensor model parallel: each Conv2D/Dense split over threads, a barrier a layer"
    splits_batch = False        # the layers are split, not the batch

    def __init__(self, model, loss, X, y, config=None, **kw):
        super().__init__(model, loss, X, y, config, **kw)
        # A dry run on one sample (before any thread) gives every layer's output shape.
        self.outputs = [(out.shape[1:], out.dtype) for out in probe(model, X[:1])]

    def train(self) -> None:
        T, B, model, tracer = self.threads, self.batch_size, self.model, self.tracer
        layers, L = model.layers, len(model.layers)
        plan = split_plan(model, T)
        owned = owned_slices(model, T)
        shards = [None if p is None else [make_shard(layer, lo, hi) if hi > lo else None
                                          for lo, hi in p]
                  for layer, p in zip(layers, plan, strict=True)]
        # Shared arrays, allocated once: each split layer's output (conv: channel-major in
        # memory, like Conv2D's own output) and its input gradient; the partial gradients.
        outs: list = [None] * L
        dxs: list = [None] * L
        for l, layer in enumerate(layers):
            if plan[l] is None:
                continue
            shape, dtype = self.outputs[l]
            if isinstance(layer, nn.Conv2D):
                C, Ho, Wo = shape
                outs[l] = np.empty((C, B, Ho, Wo), dtype=dtype).transpose(1, 0, 2, 3)
            else:
                outs[l] = np.empty((B, *shape), dtype=dtype)
            if l > 0:                                     # dx = dout @ W: the output's dtype
                dxs[l] = np.empty((B, *self.outputs[l - 1][0]), dtype=dtype)
        partials = [[None] * T for _ in range(L)]        # [layer][worker] -> partial dx
        grads = np.empty_like(model.params)
        rows = split_bounds(B, T)                         # batch rows each worker reduces
        start = Barrier(T + 1)                  # workers + main: a batch is ready
        layer_done = Barrier(T)                 # one sync point, reused
        end = Barrier(T + 1)                    # all slices are updated
        barriers = [0] * T
        state: dict = {"batch": None}

        def worker(k: int) -> None:
            my_rows = rows[k]
            by_layer: dict[int, list[tuple[str, slice]]] = {}
            for l, name, sl in owned[k]:
                by_layer.setdefault(l, []).append((name, sl))
            opts = [(sl, self.make_optimizer(model.params[sl])) for _, _, sl in owned[k]]

            def sync(barrier: threading.Barrier) -> None:
                with tracer.span("wait"):
                    barrier.wait()
                barriers[k] += 1

            def store(l: int, g: dict) -> None:
                for name, sl in by_layer.get(l, ()):
                    grads[sl] = np.ravel(g[name])

            while True:
                sync(start)
                if state["batch"] is None:
                    return
                x, yb = state["batch"]
                caches: list = [None] * L
                for l, layer in enumerate(layers):
                    with tracer.span("forward"):
                        if plan[l] is not None:
                            if shards[l][k] is not None:
                                out, caches[l] = shards[l][k].forward(x)
                                outs[l][out_index(layer, *plan[l][k])] = out
                        elif k == 0:
                            outs[l], caches[l] = layer.forward(x)
                    sync(layer_done)
                    x = outs[l]
                if k == 0:
                    with tracer.span("forward"):
                        state["loss"], lcache = self.loss.forward(x, yb)
                        state["dout"] = self.loss.backward(lcache)
                sync(layer_done)
                dout = state["dout"]
                for l in range(L - 1, -1, -1):
                    layer, need_dx = layers[l], l > 0      # the data needs no gradient
                    with tracer.span("backward"):
                        if plan[l] is not None:
                            if shards[l][k] is not None:
                                d_mine = dout[out_index(layer, *plan[l][k])]
                                partials[l][k], g = backward(shards[l][k], d_mine, caches[l],
                                                             need_dx)
                                store(l, g)
                        elif k == 0:
                            dxs[l], g = backward(layer, dout, caches[l], need_dx)
                            store(l, g)
                    if not need_dx:
                        continue
                    sync(layer_done)
                    if plan[l] is not None:
                        with tracer.span("reduce"):
                            add_rows(partials[l], dxs[l], *my_rows)
                        sync(layer_done)
                    dout = dxs[l]
                with tracer.span("update"):
                    for sl, opt in opts:
                        opt.step(grads[sl])
                sync(end)

        group = self.workers(T, worker, on_abort=[start.abort, layer_done.abort, end.abort])
        with group, self.batches() as batches:
            for batch in batches:
                state["batch"] = batch
                start.wait()
                end.wait()
                self.record_step(state["loss"])
            state["batch"] = None
            start.wait()                       # release the workers: no more batches
        self.history.thread_cpu.update(group.cpu)
        self._record_info(plan, barriers)

    def _record_info(self, plan, barriers: list[int]) -> None:
        steps = max(self.history.steps, 1)
        spans = [s for s in self.tracer.spans() if s.thread.startswith("tensor-")]
        total = sum(s.end - s.start for s in spans)
        wait = sum(s.end - s.start for s in spans if s.kind == "wait")
        self.history.info.update(
            barriers_per_step=(barriers[0] - 1) // steps,     # the final release is not a step
            split_layers=[{"layer": l, "name": repr(self.model.layers[l]),
                           "slices": [list(b) for b in p]}
                          for l, p in enumerate(plan) if p is not None],
            worker0_layers=[l for l, p in enumerate(plan) if p is None],
            wait_fraction=wait / total if total else None)
