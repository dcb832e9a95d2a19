"""``pipeline``: pipeline model parallelism (GPipe; 1F1B with flushes) — event-driven threads.

The model's layers are cut into K contiguous **stages**, one thread each. Stage k receives
activations from stage k-1 on a ``queue.Queue``, runs its layers forward and puts the result
on stage k+1's queue; gradients travel back the same way. Nothing else synchronises the
threads: each one blocks on its queue until there is work — the event-driven style.

One batch alone would keep only one stage busy at a time, so each batch is cut into M
**micro-batches** that follow each other down the pipeline. The last stage computes the loss;
every stage adds the gradients of all micro-batches into its slice of one flat gradient
vector (each micro-batch's loss gradient scaled by its share m_i/B of the batch, so the sum
is the full-batch mean gradient) and applies the optimizer once per batch, to its slice only.
The result equals one big-batch step, as in ``serial``.

Two schedules (time in units of one micro-batch forward F or backward B, K=3, M=4)::

    "gpipe": all forwards, then all backwards        "1f1b": after K-1-k warm-up forwards,
    time ->   0  1  2  3  4  5  6  7  8  9 10 11     stage k alternates one F and one B
    stage 0: F0 F1 F2 F3  .  .  .  . B0 B1 B2 B3     stage 0: F0 F1 F2  .  . B0 F3 B1  . B2  . B3
    stage 1:  . F0 F1 F2 F3  .  . B0 B1 B2 B3  .     stage 1:  . F0 F1  . B0 F2 B1 F3 B2  . B3  .
    stage 2:  .  . F0 F1 F2 F3 B0 B1 B2 B3  .  .     stage 2:  .  . F0 B0 F1 B1 F2 B2 F3 B3  .  .

The dots are the **bubble**: with equal stages, each stage idles K-1 of its M+K-1 slots in
each direction, a fraction (K-1)/(M+K-1) (GPipe, Huang et al. 2019): more micro-batches,
smaller bubble. 1F1B with a flush at the end of every batch (PipeDream-Flush, Narayanan et al.
2021, as in Megatron-LM; PipeDream's original 1F1B was asynchronous, with weight stashing)
has the same bubble but a stage holds the activations of at
most K micro-batches at once instead of M; ``history.info["peak_live"]`` shows it. Backwards
run in micro-batch order under both schedules, so gradients add up in the same order and
both give bit-for-bit the same numbers.

Options: ``stages`` (K; default ``threads``, but at most the number of layers, since a
stage needs a layer; an explicit value above it is an error), ``micro_batches`` (M; default
4, or ``batch_size`` if smaller), ``schedule`` (``"gpipe"`` or ``"1f1b"``). The cuts balance
a cost estimate: for each layer, parameters x output positions (the multiply-adds of one
sample: ``Conv2D`` weights are used at every output pixel, ``LSTM`` weights at every time
step) plus one per output element, from a dry run on one sample.

The trace has ``forward``, ``backward``, ``wait`` (blocked on a queue: the bubble) and
``update`` spans per stage thread. ``history.info`` holds ``bubble`` (measured: the idle
fraction of the stage threads, see :func:`bubble_fraction`), ``bubble_theory`` (the
formula), ``stage_busy`` (seconds of work per stage: the formula assumes them equal),
``peak_live``, ``cuts`` and ``stage_layers``.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import queue

import numpy as np

from ..nn import backward_of as backward
from ..runtime import checks
from ..runtime.threads import Aborted, get
from .base import Strategy, split_bounds
from .layerwise import layer_slots, probe, refuse_nested

SCHEDULES = ("gpipe", "1f1b")
_END = object()      # no more batches: passed down the pipeline, stage to stage
_ABORT = object()    # the group is shutting down: put on every queue


def schedule(k: int, stages: int, micro_batches: int, kind: str) -> list[tuple[str, int]]:
    """Stage ``k``'s work for one batch, in order: ``("F", i)`` / ``("B", i)`` for micro-batch i."""
    M = micro_batches
    if kind == "gpipe":
        return [("F", i) for i in range(M)] + [("B", i) for i in range(M)]
    warm = min(stages - 1 - k, M)            # 1F1B: fill the pipeline, then one F, one B
    ops = [("F", i) for i in range(warm)]
    for i in range(M - warm):
        ops += [("F", warm + i), ("B", i)]
    return ops + [("B", i) for i in range(M - warm, M)]


def layer_costs(model, x: np.ndarray) -> list[int]:
    """Estimated work of each layer for the sample ``x`` (shape ``(1, ...)``): parameters x
    output positions, plus one per output element (see the module docstring)."""
    costs = []
    for layer, out in zip(model.layers, probe(model, x), strict=True):
        n_params = sum(int(np.size(p)) for p in layer.params.values())
        positions = out.shape[2] * out.shape[3] if out.ndim == 4 else out.size // out.shape[-1]
        costs.append(n_params * positions + out.size)
    return costs


def balanced_cuts(costs: list[int], stages: int) -> list[tuple[int, int]]:
    """Cut ``costs`` into ``stages`` contiguous, non-empty runs ``[(lo, hi)]`` so that the
    costliest run is as cheap as possible (the slowest stage sets the pipeline's pace)."""
    total = [0, *itertools.accumulate(costs)]

    @functools.cache
    def best(n: int, k: int) -> tuple[int, tuple[int, ...]]:
        """(cost of the costliest run, cut points) for the first n layers in k runs."""
        if k == 1:
            return total[n], (0,)
        return min((max(best(i, k - 1)[0], total[n] - total[i]), best(i, k - 1)[1] + (i,))
                   for i in range(k - 1, n))

    edges = [*best(len(costs), stages)[1], len(costs)]
    return list(itertools.pairwise(edges))


def bubble_fraction(trace, stages: int, micro_batches: int) -> tuple[float, list[float]]:
    """The measured bubble: ``(overall, per step)`` from the spans of the stage threads.

    A step's window runs from its first forward to its last backward on any stage; the
    bubble is the part of ``stages x window`` not spent in ``forward``/``backward`` spans
    (waiting on queues, mostly). Each stage thread runs 2M such spans per step, in order.
    """
    work: dict[str, list] = {}
    for s in trace:
        if s.thread.startswith("pipeline-") and s.kind in ("forward", "backward"):
            work.setdefault(s.thread, []).append(s)
    if len(work) != stages:
        return float("nan"), []
    n = 2 * micro_batches
    per_step = [[spans[i:i + n] for i in range(0, len(spans), n)]
                for spans in (sorted(v, key=lambda s: s.start) for v in work.values())]
    busy_total = window_total = 0.0
    steps = []
    for step in zip(*per_step, strict=False):
        window = max(s.end for g in step for s in g) - min(s.start for g in step for s in g)
        busy = sum(s.end - s.start for g in step for s in g)
        steps.append(1 - busy / (stages * window) if window > 0 else 0.0)
        busy_total += busy
        window_total += stages * window
    return (1 - busy_total / window_total if window_total else float("nan")), steps


class Pipeline(Strategy):
    name = "pipeline"
    description = "pipeline model parallel: layer stages on threads, micro-batches via queues"
    options = {"stages": None, "micro_batches": None, "schedule": "gpipe"}
    splits_batch = False       # the batch is split into micro-batches, not across threads

    def __init__(self, model, loss, X, y, config=None, **kw):
        super().__init__(model, loss, X, y, config, **kw)
        refuse_nested(model, self.name)
        n_layers = len(model.layers)
        stages, micro, kind = (self.opts[o] for o in ("stages", "micro_batches", "schedule"))
        if stages is None:
            stages = min(self.threads, n_layers)
        stages = checks.integer("stages", stages, min=1)
        if stages > n_layers:
            raise ValueError(f"stages must be <= the number of layers ({n_layers}), got {stages}")
        if micro is None:
            micro = min(4, self.batch_size)
        micro = checks.integer("micro_batches", micro, min=1)
        if micro > self.batch_size:
            raise ValueError(f"micro_batches must be <= batch_size ({self.batch_size}), "
                             f"got {micro}")
        if kind not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {kind!r}")
        self.stages, self.micro_batches, self.schedule = stages, micro, kind
        self.cuts = balanced_cuts(layer_costs(model, X[:1]), stages)

    def train(self) -> None:
        K, B = self.stages, self.batch_size
        micro = split_bounds(B, self.micro_batches)
        links = Links(K, np.empty_like(self.model.params))
        stages = [Stage(self, links, k, micro) for k in range(K)]
        group = self.workers(K, lambda k: stages[k].run(), on_abort=[links.unblock])
        links.group = group
        with group, self.batches() as batches:
            for xb, yb in batches:
                for lo, hi in micro:
                    links.acts[0].put((xb[lo:hi], yb[lo:hi]))
                self.record_step(links.receive(links.losses))
            links.acts[0].put(_END)
        self.history.thread_cpu.update(group.cpu)
        self._record_info([stage.peak_live for stage in stages])

    def _record_info(self, peak_live: list[int]) -> None:
        K, M = self.stages, self.micro_batches
        info = self.history.info
        info.update(stages=K, micro_batches=M, schedule=self.schedule,
                    cuts=[list(c) for c in self.cuts],
                    stage_layers=[[repr(layer) for layer in self.model.layers[lo:hi]]
                                  for lo, hi in self.cuts],
                    peak_live=peak_live, bubble_theory=(K - 1) / (M + K - 1))
        if not self.tracer.enabled:
            info.update(bubble=None, bubble_per_step=[], stage_busy=[])
            return
        spans = self.tracer.spans()
        info["bubble"], info["bubble_per_step"] = bubble_fraction(spans, K, M)
        # Seconds of forward + backward per stage: unequal stages are why a real pipeline's
        # bubble exceeds the formula, which assumes equal ones.
        info["stage_busy"] = [sum(s.end - s.start for s in spans if s.thread == f"pipeline-{k}"
                                  and s.kind in ("forward", "backward")) for k in range(K)]


class Links:
    """The queues between the threads: activations into each stage, gradients into each
    stage from the next one, and each step's loss from the last stage to the main thread."""

    def __init__(self, stages: int, grads: np.ndarray):
        self.grads = grads          # the flat gradient: each stage writes only its own slice
        self.acts = [queue.Queue() for _ in range(stages)]    # into stage k: (x, y)
        self.back = [queue.Queue() for _ in range(stages)]    # into stage k: dout from k+1
        self.losses: queue.Queue = queue.Queue()
        self.group = None

    def unblock(self) -> None:
        """The group is shutting down: wake whoever waits on a queue."""
        for q in (*self.acts, *self.back, self.losses):
            q.put(_ABORT)

    def receive(self, q: queue.Queue, tracer=None):
        """The next item of ``q`` (traced as ``wait``); Aborted if the group is stopping."""
        with (tracer.span("wait") if tracer is not None else contextlib.nullcontext()):
            item = get(q)
        if item is _ABORT or (self.group is not None and self.group.stop.is_set()):
            raise Aborted
        return item


class Stage:
    """Stage ``k`` of the pipeline: layers ``lo:hi`` of the model on one thread. Each turn
    of :meth:`run` is one batch: the schedule's forwards and backwards of its micro-batches,
    then one optimizer step on the stage's own slice of the parameters."""

    def __init__(self, strategy: Pipeline, links: Links, k: int, micro: list[tuple[int, int]]):
        self.strategy, self.links, self.k = strategy, links, k
        self.model, self.tracer, self.loss = strategy.model, strategy.tracer, strategy.loss
        K, B = strategy.stages, strategy.batch_size
        self.lo, self.hi = strategy.cuts[k]
        self.first, self.last = k == 0, k == K - 1
        self.share = [(hi - lo) / B for lo, hi in micro]   # micro-batch mean -> batch mean
        self.ops = schedule(k, K, strategy.micro_batches, strategy.schedule)
        self.slots = layer_slots(self.model)
        mine = [sl for layer in self.slots[self.lo:self.hi] for _, sl in layer]
        self.plo, self.phi = (mine[0].start, mine[-1].stop) if mine else (0, 0)
        self.opt = (strategy.make_optimizer(self.model.params[self.plo:self.phi])
                    if self.phi > self.plo else None)
        self.grads = links.grads
        self.caches: dict[int, tuple] = {}                  # micro-batch -> its backward's needs
        self.peak_live = 0
        self.step_loss = 0.0

    def run(self) -> None:
        links, k = self.links, self.k
        while True:                                         # one batch per turn
            self.step_loss = 0.0
            for op, i in self.ops:
                if op == "F":
                    item = links.receive(links.acts[k], self.tracer)
                    if item is _END:                # comes in place of a batch's first input
                        if not self.last:
                            links.acts[k + 1].put(_END)
                        return
                    with self.tracer.span("forward"):
                        self.forward(i, *item)
                else:
                    dout = None if self.last else links.receive(links.back[k], self.tracer)
                    with self.tracer.span("backward"):
                        self.backward(i, dout)
            if self.opt is not None:
                with self.tracer.span("update"):
                    self.opt.step(self.grads[self.plo:self.phi])
            if self.last:
                links.losses.put(self.step_loss)

    def forward(self, i: int, x, y) -> None:
        """Micro-batch ``i`` through this stage's layers; the last stage adds its loss."""
        layer_caches = []
        for j in range(self.lo, self.hi):
            layer = self.model.layers[j]
            try:
                x, cache = layer.forward(x)
            except Exception as exc:
                exc.add_note(f"in the forward pass of layer {j} ({type(layer).__name__}), "
                             f"pipeline stage {self.k}")
                raise
            layer_caches.append(cache)
        if self.last:                               # the loss is the last stage's last layer
            value, loss_cache = self.loss.forward(x, y)
            self.step_loss += value * self.share[i]
            self.caches[i] = (layer_caches, loss_cache)
        else:
            self.links.acts[self.k + 1].put((x, y))
            self.caches[i] = (layer_caches, None)
        self.peak_live = max(self.peak_live, len(self.caches))

    def backward(self, i: int, dout) -> None:
        """Micro-batch ``i`` back through this stage's layers, adding its weight gradients
        (micro-batches in order: the same sums every run); the input gradient goes on to
        the previous stage."""
        layer_caches, loss_cache = self.caches.pop(i)
        if self.last:
            dout = self.loss.backward(loss_cache)
            dout *= self.share[i]                   # micro-batch mean -> its share of the batch's
        for j in range(self.hi - 1, self.lo - 1, -1):
            layer = self.model.layers[j]
            try:
                dout, g = backward(layer, dout, layer_caches[j - self.lo], need_dx=j > 0)
            except Exception as exc:
                exc.add_note(f"in the backward pass of layer {j} ({type(layer).__name__}), "
                             f"pipeline stage {self.k}")
                raise
            for name, sl in self.slots[j]:
                if i == 0:
                    self.grads[sl] = np.ravel(g[name])
                else:
                    self.grads[sl] += np.ravel(g[name])
        if not self.first:
            self.links.back[self.k - 1].put(dout)
