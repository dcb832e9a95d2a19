"""Threads inside one rank: the rank's shard of each batch cut again, one piece per thread.

This is ``parallel.sync``'s pattern (``mtlearn/parallel/sync.py``) without the update. Thread
k computes the gradient of its piece into its own row, scaled by the piece's share of the
*whole* batch (all ranks together); a barrier; then thread k sums column slice k of the rows
into the output vector (a parallel reduce, as in ``sync``). The rank's main thread then
allreduces that vector across the ranks and updates, so only the main thread calls MPI::

    main:     shard ─ start.wait() ───────────────────────────── end.wait() ─ Allreduce ─ update
    thread k:         start.wait() ─ compute ─ mid.wait() ─ sum k ─ end.wait()

With one thread there is no barrier and no extra thread: the main thread computes.

The output vector has one more element than the model has parameters: the last one is the
rank's share of the batch's loss, so one ``Allreduce`` carries the gradient and the loss.
"""

from __future__ import annotations

import threading

import numpy as np

from ..parallel import WorkerGroup
from ..parallel.base import split_bounds


class ShardThreads:
    """Gradient of one rank's shard, computed on ``threads`` threads.

    Parameters
    ----------
    model : ``nn.Sequential`` (flat ``params``)
    loss : e.g. ``nn.SoftmaxCrossEntropy()``
    threads : int >= 1, threads for this rank (each needs at least one sample of the shard)
    shard_size : samples of each batch this rank computes
    batch_size : samples of each batch over all ranks (the weights are shares of it)
    tracer : ``trace.Tracer`` the threads record ``compute``, ``wait`` and ``reduce`` into

    Use as a context manager (threads start on entry and are joined on exit, on every path);
    :meth:`gradient` fills a vector of ``num_params + 1`` elements each step.
    """

    def __init__(self, model, loss, threads: int, shard_size: int, batch_size: int, tracer):
        self.model, self.loss, self.tracer = model, loss, tracer
        self.threads, self.batch_size = threads, batch_size
        self.pieces = split_bounds(shard_size, threads)
        self.cpu: dict[str, float] = {}
        self.group = None
        if threads > 1:
            n = model.params.size + 1
            self.rows = np.zeros((threads, n), dtype=model.params.dtype)  # one row each
            self.slices = split_bounds(n, threads)
            self.start = threading.Barrier(threads + 1)   # threads + main: a shard is ready
            self.mid = threading.Barrier(threads)         # every piece's gradient is in
            self.end = threading.Barrier(threads + 1)     # every slice is summed
            self._work = None                             # (xb, yb, out) or None: stop
            self.group = WorkerGroup(threads, self._worker, "thread",
                                     on_abort=[self.start.abort, self.mid.abort, self.end.abort])

    def _piece(self, xb, yb, lo: int, hi: int, out: np.ndarray) -> None:
        """``out[:-1]`` = gradient of samples ``lo:hi``, ``out[-1]`` = their loss, both
        scaled from a mean over the piece to its share of the batch's mean."""
        weight = (hi - lo) / self.batch_size
        loss, g, _ = self.model.loss_and_grads(self.loss, xb[lo:hi], yb[lo:hi], grads=out[:-1])
        g *= weight
        out[-1] = loss * weight

    def gradient(self, xb, yb, out: np.ndarray) -> None:
        """Write this rank's weighted gradient (and loss, last) of shard ``(xb, yb)`` into
        ``out`` (1-D, ``num_params + 1``)."""
        if self.group is None:
            with self.tracer.span("compute"):
                self._piece(xb, yb, 0, len(xb), out)
            return
        self._work = (xb, yb, out)
        self.start.wait()
        self.end.wait()

    def _worker(self, k: int) -> None:
        lo, hi = self.pieces[k]
        slo, shi = self.slices[k]
        tracer = self.tracer
        while True:
            with tracer.span("wait"):
                self.start.wait()
            if self._work is None:
                return
            xb, yb, out = self._work
            with tracer.span("compute"):
                self._piece(xb, yb, lo, hi, self.rows[k])
            with tracer.span("wait"):
                self.mid.wait()
            with tracer.span("reduce"):            # rows summed in thread order: deterministic
                np.sum(self.rows[:, slo:shi], axis=0, out=out[slo:shi])
            with tracer.span("wait"):
                self.end.wait()

    def __enter__(self) -> ShardThreads:
        if self.group is not None:
            self.group.__enter__()
        return self

    def __exit__(self, exc_type, exc, tb):
        if self.group is None:
            return None
        if exc_type is None:
            self._work = None
            self.start.wait()                      # release the threads: no more shards
        try:
            return self.group.__exit__(exc_type, exc, tb)
        finally:
            self.cpu = dict(self.group.cpu)
