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

**Transformer blocks, Megatron-style.** An ``nn.TransformerBlock`` is split the way Megatron-LM
splits one (Shoeybi et al. 2019): worker k takes a contiguous range of the attention *heads*
and of the MLP's *hidden units*. Its heads need only its rows of ``in_proj_weight`` (their
queries, keys and values) and its columns of ``out_proj_weight`` (the inputs that read those
heads); its hidden units only its rows of ``linear1`` and its columns of ``linear2``. So each
worker computes a *partial* output of full width, and the block's output is their sum::

    worker 0: h = norm1(x)                                   ─ barrier
    worker k: a_k = attention over heads k (h)               ─ barrier
    worker k: batch rows k of  x1 = x + (a_0 + ... + a_{T-1} + out_proj_bias)   ─ barrier
    worker 0: h2 = norm2(x1)                                 ─ barrier
    worker k: m_k = linear2 cols k (GELU(linear1 rows k (h2)))  ─ barrier
    worker k: batch rows k of  out = x1 + (m_0 + ... + m_{T-1} + linear2.bias)  ─ barrier

and backward mirrors it (each sum of partial input gradients is one more reduce). Megatron
keeps the layer norms and residual adds replicated on every GPU and needs one all-reduce per
sub-layer; here worker 0 runs them, a barrier on each side, as it runs every unsplit layer.
A worker's parameters are then not contiguous (columns of ``out_proj_weight`` and
``linear2``), so the block's *updates* are shared differently from its computation: each
matrix and split bias is cut into T contiguous pieces, one per worker. That is safe without a
further barrier: every worker that reads those arrays has done so before the block's last
reduce in backward, which a worker passes before its update. The norms and the two output
biases, which worker 0 alone reads, stay with worker 0. ``split_layers`` lists each block's
``heads`` and ``units`` per worker.
"""

from __future__ import annotations

import contextlib
import copy
from typing import NamedTuple

import numpy as np

from .. import nn
from ..nn import backward_of as backward
from ..runtime.threads import Barrier
from .base import Strategy, split_bounds
from .layerwise import layer_slots, probe, refuse_nested


def is_split(layer) -> bool:
    """Whether ``tensor`` splits this layer's outputs across the workers."""
    return isinstance(layer, nn.Conv2D | nn.Dense)


def is_block(layer) -> bool:
    """Whether ``tensor`` splits this layer's heads and hidden units (a Transformer block)."""
    return isinstance(layer, nn.TransformerBlock)


class BlockSplit(NamedTuple):
    """How a Transformer block is split: each worker's ``(lo, hi)`` of the attention heads
    and of the MLP's hidden units."""

    heads: list[tuple[int, int]]
    units: list[tuple[int, int]]


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


def split_plan(model, threads: int) -> list:
    """For each layer, the output rows ``[(lo, hi)]`` of every worker, a :class:`BlockSplit`
    for a Transformer block, or ``None`` for a layer that is not split (worker 0 runs it)."""
    def plan(layer):
        if is_block(layer):
            return BlockSplit(split_bounds(layer.num_heads, threads),
                              split_bounds(layer.hidden, threads))
        return split_bounds(out_size(layer), threads) if is_split(layer) else None
    return [plan(layer) for layer in model.layers]


#: the parameters of a Transformer block that worker 0 alone reads, and so alone updates
BLOCK_WORKER0 = ("norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias",
                 "self_attn.out_proj_bias", "linear2.bias")


def owned_slices(model, threads: int) -> list[list[tuple[int, str, slice]]]:
    """For each worker, the ``(layer, parameter name, slice of model.params)`` it updates:
    its rows of every split layer, and a contiguous piece of every split array of a
    Transformer block; worker 0 also owns every parameter of unsplit layers and a block's
    :data:`BLOCK_WORKER0`."""
    plan = split_plan(model, threads)
    owned: list[list[tuple[int, str, slice]]] = [[] for _ in range(threads)]
    for i, slots in enumerate(layer_slots(model)):
        for name, sl in slots:
            if plan[i] is None or (isinstance(plan[i], BlockSplit) and name in BLOCK_WORKER0):
                owned[0].append((i, name, sl))
                continue
            if isinstance(plan[i], BlockSplit):
                for k, (lo, hi) in enumerate(split_bounds(sl.stop - sl.start, threads)):
                    if hi > lo:
                        owned[k].append((i, name, slice(sl.start + lo, sl.start + hi)))
                continue
            row = (sl.stop - sl.start) // out_size(model.layers[i])
            for k, (lo, hi) in enumerate(plan[i]):
                if hi > lo:
                    owned[k].append((i, name, slice(sl.start + lo * row, sl.start + hi * row)))
    return owned


class ColumnShard:
    """Input features ``lo:hi`` of a ``Dense``, without its bias: ``x (..., hi-lo) ->
    x @ weight[:, lo:hi].T``, this slice's part of the layer's output (the second linear
    layer of a Megatron MLP). The weight is a view of the layer's."""

    def __init__(self, layer, lo: int, hi: int):
        self.weight = layer.params["weight"][:, lo:hi]

    def forward(self, x: np.ndarray):
        return x @ self.weight.T, x

    def backward(self, dout: np.ndarray, cache):
        x = cache
        return dout @ self.weight, {"weight": dout.T @ x}


class BlockShards:
    """What the workers share to run Transformer block ``i`` split: each worker's head
    shard, ``linear1`` rows and ``linear2`` columns (``None`` where it owns none), the
    block's intermediate arrays, the partial results, and the gradient's pieces shaped like
    the block's parameters."""

    def __init__(self, block, split: BlockSplit, grads: dict[str, np.ndarray], shape):
        self.attn = [block.self_attn.head_shard(lo, hi) if hi > lo else None
                     for lo, hi in split.heads]
        self.linear1 = [make_shard(block.linear1, lo, hi) if hi > lo else None
                        for lo, hi in split.units]
        self.linear2 = [ColumnShard(block.linear2, lo, hi) if hi > lo else None
                        for lo, hi in split.units]
        self.split, self.grads = split, grads
        self.parts: list = [None] * len(split.heads)      # [worker] -> its partial result
        self.x1 = np.empty(shape[0], dtype=shape[1])      # x + attention: sums by rows
        self.dh1 = np.empty_like(self.x1)                 # gradient into norm1's output
        self.dh2 = np.empty_like(self.x1)                 # gradient into norm2's output
        self.h1 = self.h2 = self.dx1 = None               # worker 0 writes these


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
                           **({"heads": [list(b) for b in p.heads],
                               "units": [list(b) for b in p.units]}
                              if isinstance(p, BlockSplit) else {"slices": [list(b) for b in p]})}
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
        self.shards = [[make_shard(layer, lo, hi) if hi > lo else None for lo, hi in p]
                       if p is not None and not isinstance(p, BlockSplit) else None
                       for layer, p in zip(model.layers, self.plan, strict=True)]
        n_layers = len(model.layers)
        # Each split layer's output (conv: channel-major in memory, like Conv2D's own
        # output) and its input gradient; the partial input gradients of every worker.
        self.outs: list = [None] * n_layers
        self.dxs: list = [None] * n_layers
        for i, layer in enumerate(model.layers):
            if self.plan[i] is None or isinstance(self.plan[i], BlockSplit):
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
        grads = model.named_grads(self.grads)             # views into the flat gradient
        self.blocks = [None] * n_layers
        for i, layer in enumerate(model.layers):
            if isinstance(self.plan[i], BlockSplit):
                mine = {name[len(f"{i}."):]: g for name, g in grads.items()
                        if name.startswith(f"{i}.")}
                shape, dtype = strategy.outputs[i]
                self.blocks[i] = BlockShards(layer, self.plan[i], mine, ((B, *shape), dtype))
                self.outs[i] = np.empty((B, *shape), dtype=dtype)
                if i > 0:
                    self.dxs[i] = np.empty((B, *strategy.outputs[i - 1][0]), dtype=dtype)
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
            if run.blocks[i] is not None:                    # ends with a barrier
                with _layer_note(i, layer, "forward"):
                    caches[i] = self.block_forward(layer, run.blocks[i], x, run.outs[i])
                x = run.outs[i]
                continue
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
            if run.blocks[i] is not None:
                with _layer_note(i, layer, "backward"):
                    self.block_backward(layer, run.blocks[i], dout, caches[i], need_dx,
                                        run.dxs[i])
                if need_dx:
                    self.sync(run.layer_done)
                    dout = run.dxs[i]
                continue
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

    def block_forward(self, block, s: BlockShards, x, out) -> dict:
        """Transformer block forward, split over heads and hidden units (see the module
        docstring); writes the block's output into ``out``. Returns this worker's caches."""
        k, rows, E = self.k, self.run_state.rows[self.k], block.embed_dim
        done, c = self.run_state.layer_done, {}
        with self.tracer.span("forward"):
            if k == 0:
                s.h1, c["norm1"] = block.norm1.forward(x)
        self.sync(done)
        with self.tracer.span("forward"):
            s.parts[k] = None
            if s.attn[k] is not None:
                s.parts[k], c["attn"] = s.attn[k].forward(s.h1)
        self.sync(done)
        with self.tracer.span("reduce"):
            self.sum_rows(s.parts, s.x1, block.self_attn.params["out_proj_bias"], x, *rows)
        self.sync(done)
        with self.tracer.span("forward"):
            if k == 0:
                s.h2, c["norm2"] = block.norm2.forward(s.x1)
        self.sync(done)
        with self.tracer.span("forward"):
            s.parts[k] = None
            if s.linear1[k] is not None:
                z, c["linear1"] = s.linear1[k].forward(s.h2.reshape(-1, E))
                g, c["activation"] = block.activation.forward(z)
                m, c["linear2"] = s.linear2[k].forward(g)
                s.parts[k] = m.reshape(x.shape)
        self.sync(done)
        with self.tracer.span("reduce"):
            self.sum_rows(s.parts, out, block.linear2.params["bias"], s.x1, *rows)
        self.sync(done)
        return c

    def block_backward(self, block, s: BlockShards, dout, c: dict, need_dx: bool,
                       dx_out) -> None:
        """Transformer block backward, split like its forward: each worker's gradients of
        its heads and units, the partial input gradients summed by rows; worker 0 runs the
        norms and writes ``dx_out`` (when ``need_dx``)."""
        k, rows, E = self.k, self.run_state.rows[self.k], block.embed_dim
        done, g = self.run_state.layer_done, s.grads
        with self.tracer.span("backward"):
            d2 = dout.reshape(-1, E)
            s.parts[k] = None
            if s.linear1[k] is not None:
                lo, hi = s.split.units[k]
                dg, g2 = s.linear2[k].backward(d2, c["linear2"])
                dz, _ = block.activation.backward(dg, c["activation"])
                dh2, g1 = s.linear1[k].backward(dz, c["linear1"])
                s.parts[k] = dh2.reshape(dout.shape)
                g["linear2.weight"][:, lo:hi] = g2["weight"]
                g["linear1.weight"][lo:hi] = g1["weight"]
                g["linear1.bias"][lo:hi] = g1["bias"]
            if k == 0:
                g["linear2.bias"][...] = d2.sum(axis=0)
        self.sync(done)
        with self.tracer.span("reduce"):
            add_rows(s.parts, s.dh2, *rows)
        self.sync(done)
        with self.tracer.span("backward"):
            if k == 0:
                s.dx1, g_norm2 = block.norm2.backward(s.dh2, c["norm2"])
                s.dx1 += dout                                # the residual path
                self.store_named(g, "norm2", g_norm2)
        self.sync(done)
        with self.tracer.span("backward"):
            s.parts[k] = None
            if s.attn[k] is not None:
                lo, hi = s.split.heads[k]
                H, D = block.num_heads, block.self_attn.head_dim
                s.parts[k], ga = s.attn[k].backward(s.dx1, c["attn"])
                g["self_attn.in_proj_weight"].reshape(3, H, D, E)[:, lo:hi] = (
                    ga["in_proj_weight"])
                g["self_attn.in_proj_bias"].reshape(3, H, D)[:, lo:hi] = ga["in_proj_bias"]
                g["self_attn.out_proj_weight"].reshape(E, H, D)[:, lo:hi] = (
                    ga["out_proj_weight"])
            if k == 0:
                g["self_attn.out_proj_bias"][...] = s.dx1.reshape(-1, E).sum(axis=0)
        self.sync(done)
        with self.tracer.span("reduce"):
            add_rows(s.parts, s.dh1, *rows)
        self.sync(done)
        with self.tracer.span("backward"):
            if k == 0:
                dx, g_norm1 = block.norm1.backward(s.dh1, c["norm1"], need_dx)
                self.store_named(g, "norm1", g_norm1)
                if need_dx:
                    np.add(dx, s.dx1, out=dx_out)

    @staticmethod
    def sum_rows(parts: list, out: np.ndarray, bias, residual, lo: int, hi: int) -> None:
        """Batch rows ``lo:hi`` of ``out = residual + (sum of parts + bias)``: a block's
        partial outputs added up, in the order the serial layer adds them."""
        add_rows(parts, out, lo, hi)
        out[lo:hi] += bias
        out[lo:hi] += residual[lo:hi]

    @staticmethod
    def store_named(grads: dict, sub: str, g: dict) -> None:
        """Write sub-layer ``sub``'s gradients into the block's gradient views."""
        for name, value in g.items():
            grads[f"{sub}.{name}"][...] = value

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
