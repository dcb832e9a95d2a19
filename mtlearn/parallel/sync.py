"""``sync``: synchronous data parallelism — the algorithm behind PyTorch DDP and Horovod.

Every step, the batch is cut into one shard per worker. Each worker computes the gradient of
its shard into its own flat buffer; a ``threading.Barrier`` waits for all of them; then the
buffers are summed **in parallel**: worker k adds up slice k of the flat vector across all
buffers (a reduce-scatter) and updates that slice of the parameters, which every worker
reads at the next step (the all-gather is free in shared memory). The result equals one
big-batch step, whatever the number of workers.

The main thread only hands out batches and records the loss::

    main:     publish batch ─ start.wait() ───────────────────────────── end.wait() ─ ...
    worker k:               start.wait() ─ compute ─ mid.wait() ─ reduce k ─ update k ─ end.wait()
"""

from __future__ import annotations

import numpy as np

from ..runtime.threads import Barrier
from .base import Strategy, split_bounds


class Sync(Strategy):
    name = "sync"
    description = "synchronous data parallel: shard the batch, barrier, parallel allreduce"

    def train(self) -> None:
        T, B, model, tracer = self.threads, self.batch_size, self.model, self.tracer
        shards = split_bounds(B, T)
        slices = split_bounds(model.params.size, T)
        grads = np.zeros((T, model.params.size), dtype=model.params.dtype)  # one row each
        total = np.empty_like(model.params)
        shard_loss = [0.0] * T
        start = Barrier(T + 1)       # workers + main: a batch is ready
        mid = Barrier(T)             # all shard gradients are in
        end = Barrier(T + 1)         # all slices are updated
        state = {"batch": None}

        def worker(k: int) -> None:
            lo, hi = shards[k]
            plo, phi = slices[k]
            opt = self.make_optimizer(model.params[plo:phi])
            weight = (hi - lo) / B             # shard mean -> share of the batch mean
            while True:
                with tracer.span("wait"):
                    start.wait()
                if state["batch"] is None:
                    return
                xb, yb = state["batch"]
                with tracer.span("compute"):
                    loss, g, _ = model.loss_and_grads(self.loss, xb[lo:hi], yb[lo:hi],
                                                      grads=grads[k])
                    g *= weight
                    shard_loss[k] = loss * weight
                with tracer.span("wait"):
                    mid.wait()
                with tracer.span("reduce"):
                    np.sum(grads[:, plo:phi], axis=0, out=total[plo:phi])
                with tracer.span("update"):
                    opt.step(total[plo:phi])
                with tracer.span("wait"):
                    end.wait()

        group = self.workers(T, worker, on_abort=[start.abort, mid.abort, end.abort])
        with group, self.batches() as batches:
            for batch in batches:
                state["batch"] = batch
                start.wait()
                end.wait()
                self.record_step(sum(shard_loss))
            state["batch"] = None
            start.wait()                       # release the workers: no more batches
        self.history.thread_cpu.update(group.cpu)
