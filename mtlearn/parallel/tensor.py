"""``tensor``: intra-layer model parallelism, Megatron-style in spirit — one layer, T threads.

Data parallelism splits the *batch*; tensor parallelism splits each *layer*. Every
``Conv2D`` has its output channels, and every ``Dense`` its output features, cut into T
contiguous slices, one per worker. Worker k owns rows ``lo:hi`` of the weight and bias (a
*shard*: a copy of the layer whose parameters are views of those rows), computes that slice
of the output, and writes it into one shared output array. Every worker needs the whole
output before the next layer, so each layer ends at a ``threading.Barrier``::

    forward, layer i:   worker k: out[:, lo_k:hi_k] = shard_k(x) ─ barrier ─ x = out
    backward, layer i:  worker k: dW, db of its rows; partial dx_k = dout[:, lo_k:hi_k] @ W_k
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

import contextlib
import copy

import numpy as np

from .. import nn
from ..nn import backward_of as backward
from ..runtime.threads import Barrier
from .base import Strategy, split_bounds
from .layerwise import layer_slots, probe, refuse_nested


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
    for i, slots in enumerate(layer_slots(model)):
        for name, sl in slots:
            if plan[i] is None:
                owned[0].append((i, name, sl))
                continue
            row = (sl.stop - sl.start) // out_size(model.layers[i])
            for k, (lo, hi) in enumerate(plan[i]):
                if hi > lo:
                    owned[k].append((i, name, slice(sl.start + lo * row, sl.start + hi * row)))
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
        refuse_nested(model, self.name)
        # A dry run on one sample (before any thread) gives every layer's output shape.
        self.outputs = [(out.shape[1:], out.dtype) for out in probe(model, X[:1])]

    def train(self) -> None:
        T = self.threads
        run = SharedStep(self)
        workers = [TensorWorker(self, run, k) for k in range(T)]
        group = self.workers(T, lambda k: workers[k].run(),
                             on_abort=[run.start.abort, run.layer_done.abort, run.end.abort])
        with group, self.batches() as batches:
            for batch in batches:
                run.batch = batch
                run.start.wait()
                run.end.wait()
                self.record_step(run.loss)
            run.batch = None
            run.start.wait()                   # release the workers: no more batches
        self.history.thread_cpu.update(group.cpu)
        self._record_info(run.plan, [w.barriers for w in workers])

    def _record_info(self, plan, barriers: list[int]) -> None:
        steps = max(self.history.steps, 1)
        spans = [s for s in self.tracer.spans() if s.thread.startswith("tensor-")]
        total = sum(s.end - s.start for s in spans)
        wait = sum(s.end - s.start for s in spans if s.kind == "wait")
        self.history.info.update(
            barriers_per_step=(barriers[0] - 1) // steps,     # the final release is not a step
            split_layers=[{"layer": i, "name": repr(self.model.layers[i]),
                           "slices": [list(b) for b in p]}
                          for i, p in enumerate(plan) if p is not None],
            worker0_layers=[i for i, p in enumerate(plan) if p is None],
            wait_fraction=wait / total if total else None)


class SharedStep:
    """What the workers share during a run: the split plan, the shards, the shared output
    and input-gradient arrays (allocated once), the barriers, and the current batch."""

    def __init__(self, strategy: Tensor):
        model, T, B = strategy.model, strategy.threads, strategy.batch_size
        self.plan = split_plan(model, T)
        self.owned = owned_slices(model, T)
        self.shards = [None if p is None else [make_shard(layer, lo, hi) if hi > lo else None
                                               for lo, hi in p]
                       for layer, p in zip(model.layers, self.plan, strict=True)]
        n_layers = len(model.layers)
        # Each split layer's output (conv: channel-major in memory, like Conv2D's own
        # output) and its input gradient; the partial input gradients of every worker.
        self.outs: list = [None] * n_layers
        self.dxs: list = [None] * n_layers
        for i, layer in enumerate(model.layers):
            if self.plan[i] is None:
                continue
            shape, dtype = strategy.outputs[i]
            if isinstance(layer, nn.Conv2D):
                C, Ho, Wo = shape
                self.outs[i] = np.empty((C, B, Ho, Wo), dtype=dtype).transpose(1, 0, 2, 3)
            else:
                self.outs[i] = np.empty((B, *shape), dtype=dtype)
            if i > 0:                                     # dx = dout @ W: the output's dtype
                self.dxs[i] = np.empty((B, *strategy.outputs[i - 1][0]), dtype=dtype)
        self.partials = [[None] * T for _ in range(n_layers)]   # [layer][worker] -> dx part
        self.grads = np.empty_like(model.params)
        self.rows = split_bounds(B, T)                    # batch rows each worker reduces
        self.start = Barrier(T + 1)                       # workers + main: a batch is ready
        self.layer_done = Barrier(T)                      # one sync point, reused
        self.end = Barrier(T + 1)                         # all slices are updated
        self.batch = None                                 # (x, y) of the current step
        self.loss = 0.0                                   # worker 0 writes it
        self.dout = None                                  # the loss gradient, from worker 0
        self.outs_last = None                             # the model's output this step


class TensorWorker:
    """Worker ``k``: its shard of every split layer, every unsplit layer if it is worker 0,
    its rows of the input-gradient sums, and the update of the parameters it owns."""

    def __init__(self, strategy: Tensor, run: SharedStep, k: int):
        self.strategy, self.run_state, self.k = strategy, run, k
        self.model, self.tracer = strategy.model, strategy.tracer
        self.barriers = 0
        self.by_layer: dict[int, list[tuple[str, slice]]] = {}
        for i, name, sl in run.owned[k]:
            self.by_layer.setdefault(i, []).append((name, sl))
        self.opts = [(sl, strategy.make_optimizer(self.model.params[sl]))
                     for _, _, sl in run.owned[k]]

    def sync(self, barrier: Barrier) -> None:
        with self.tracer.span("wait"):
            barrier.wait()
        self.barriers += 1

    def run(self) -> None:
        run = self.run_state
        while True:
            self.sync(run.start)
            if run.batch is None:
                return
            x, y = run.batch
            caches = self.forward(x)
            if self.k == 0:
                with self.tracer.span("forward"):
                    run.loss, loss_cache = self.strategy.loss.forward(run.outs_last, y)
                    run.dout = self.strategy.loss.backward(loss_cache)
            self.sync(run.layer_done)
            self.backward(run.dout, caches)
            with self.tracer.span("update"):
                for sl, opt in self.opts:
                    opt.step(run.grads[sl])
            self.sync(run.end)

    def forward(self, x) -> list:
        """Every layer forward: this worker's shard of split layers, unsplit layers on
        worker 0; a barrier after each layer. Returns this worker's caches."""
        run, k = self.run_state, self.k
        caches: list = [None] * len(self.model.layers)
        for i, layer in enumerate(self.model.layers):
            with self.tracer.span("forward"), _layer_note(i, layer, "forward"):
                if run.plan[i] is not None:
                    shard = run.shards[i][k]
                    if shard is not None:
                        out, caches[i] = shard.forward(x)
                        run.outs[i][out_index(layer, *run.plan[i][k])] = out
                elif k == 0:
                    run.outs[i], caches[i] = layer.forward(x)
            self.sync(run.layer_done)
            x = run.outs[i]
        run.outs_last = x
        return caches

    def backward(self, dout, caches: list) -> None:
        """Every layer backward, last to first: weight gradients of this worker's rows,
        its partial input gradient, then its batch rows of the summed input gradient."""
        run, k = self.run_state, self.k
        for i in range(len(self.model.layers) - 1, -1, -1):
            layer, need_dx = self.model.layers[i], i > 0     # the data needs no gradient
            with self.tracer.span("backward"), _layer_note(i, layer, "backward"):
                if run.plan[i] is not None:
                    shard = run.shards[i][k]
                    if shard is not None:
                        d_mine = dout[out_index(layer, *run.plan[i][k])]
                        run.partials[i][k], g = backward(shard, d_mine, caches[i], need_dx)
                        self.store(i, g)
                elif k == 0:
                    run.dxs[i], g = backward(layer, dout, caches[i], need_dx)
                    self.store(i, g)
            if not need_dx:
                continue
            self.sync(run.layer_done)
            if run.plan[i] is not None:
                with self.tracer.span("reduce"):
                    add_rows(run.partials[i], run.dxs[i], *run.rows[k])
                self.sync(run.layer_done)
            dout = run.dxs[i]

    def store(self, i: int, g: dict) -> None:
        """Write this worker's gradients of layer ``i`` into the flat gradient vector."""
        for name, sl in self.by_layer.get(i, ()):
            self.run_state.grads[sl] = np.ravel(g[name])


@contextlib.contextmanager
def _layer_note(index: int, layer, phase: str):
    """Name the layer in any error raised inside the block."""
    try:
        yield
    except Exception as exc:
        exc.add_note(f"in the {phase} pass of layer {index} ({type(layer).__name__}) of the "
                     "model")
        raise
