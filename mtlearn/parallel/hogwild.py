"""``hogwild``: asynchronous, lock-free SGD on shared weights (Niu, Recht, Ré, Wright 2011).

All workers share one model and its flat parameter vector ``model.params``. Each worker, on
its own, takes the next batch, computes its gradient from whatever the parameters are at that
moment, and applies its update in place — no barrier, no lock, no waiting for the others::

    worker 0:  load ─ compute ───── update ─ load ─ compute ───── update ─ ...
    worker 1:     load ─ compute ───── update ─ load ─ compute ───── update ─ ...
                         └ reads the weights just before worker 0 changes them:
                           its gradient is one update "stale" when it is applied

Layers keep no per-call state, so many threads may run the same model at once. The update
``params -= lr * g`` is where the race is: numpy releases the GIL inside the subtraction
(for arrays of more than 500 elements), so two updates can interleave and one can overwrite
part of the other (a *lost update*). The optimizer is shared as well: with momentum, its
velocity is updated in the same racy way.
Hogwild! argues that when updates are small and sparse such collisions are rare and cost
little, and that skipping the lock is worth it. ``lock=True`` puts a ``threading.Lock``
around each update — the locked variant to compare with: no update is lost any more, but
reads stay stale, since nobody waits for the others before reading. The time spent waiting
for the lock is traced as ``wait``.

**Staleness** measures the asynchrony: for every update, how many other updates were applied
between the moment this worker read the parameters (the start of its forward pass) and the
moment its own update landed (an update counts once it is recorded). With one worker it is
always 0; with N workers busy computing it is typically up to about N - 1. ``history.info``
holds ``staleness`` (one value per update, in update order), ``staleness_mean``,
``staleness_max`` and ``updates_per_thread``.

Which batches? Workers take the batches of the **shared plan** — the same seeded batches, in
the same order, that ``serial`` uses — each worker taking the next one when it is free. So
a run has exactly as many updates as serial training, over exactly the same data, and any
difference in the loss curve comes from the asynchrony alone (with ``threads=1`` this *is*
serial training, bit for bit). Taking the next batch is the one short critical section (not
traced, so that ``wait`` spans show the update lock alone); a worker never waits for
another's computation. ``prefetch`` and ``augment`` work as everywhere else.

``history.losses`` lists each update's batch loss in the order the updates happened.
Results differ from run to run once there are two or more workers: the interleaving is up
to the operating system.
"""

from __future__ import annotations

import contextlib
import threading

import numpy as np

from .base import Strategy


class Hogwild(Strategy):
    name = "hogwild"
    description = "asynchronous: each thread updates the shared weights without locks"
    options = {"lock": False}
    splits_batch = False                       # every worker uses whole batches

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not isinstance(self.opts["lock"], bool):
            raise TypeError(f"lock must be True or False, got {self.opts['lock']!r}")

    def train(self) -> None:
        model, tracer, lock = self.model, self.tracer, self.opts["lock"]
        opt = self.make_optimizer(model.params)   # one optimizer, shared like the weights
        update_lock = threading.Lock() if lock else None
        feed_lock = threading.Lock()           # the plan is shared: one batch per taker
        book_lock = threading.Lock()           # guards the bookkeeping below, not the weights
        staleness: list[int] = []
        state = {"applied": 0}                 # updates applied so far, by all workers
        updates = [0] * self.threads

        # One gate per worker, held around its update: once the run has stopped, the caller
        # takes every gate once, so no worker (even one abandoned mid-step) can change
        # model.params after train() has returned or raised.
        gates = [threading.Lock() for _ in range(self.threads)]
        stop = threading.Event()               # set when the run ends, however it ends

        with self.batches() as batches:
            feed = iter(batches)

            def worker(k: int) -> None:
                grads = np.empty_like(model.params)      # this worker's own gradient buffer
                while True:
                    with feed_lock:
                        batch = next(feed, None)
                    if batch is None:
                        return
                    xb, yb = batch
                    seen = state["applied"]              # the parameters as they are now
                    with tracer.span("compute"):
                        loss, g, _ = model.loss_and_grads(self.loss, xb, yb, grads=grads)
                    guard = (_holding(update_lock, tracer) if update_lock
                             else contextlib.nullcontext())
                    with gates[k], guard, tracer.span("update"):
                        if stop.is_set():
                            return                       # the run is over: change nothing
                        opt.step(g)                      # params -= lr * g, in place
                    with book_lock:
                        staleness.append(state["applied"] - seen)
                        state["applied"] += 1
                        updates[k] += 1
                        self.record_step(loss)

            group = self.workers(self.threads, worker, on_abort=[stop.set])
            try:
                group.run()
            finally:
                stop.set()
                for gate in gates:                       # wait out any update in progress
                    if gate.acquire(timeout=1.0):
                        gate.release()
        self.history.thread_cpu.update(group.cpu)
        info = self.history.info
        info["lock"] = lock
        info["staleness"] = staleness
        info["staleness_mean"] = float(np.mean(staleness)) if staleness else 0.0
        info["staleness_max"] = max(staleness, default=0)
        info["updates_per_thread"] = updates


@contextlib.contextmanager
def _holding(lock: threading.Lock, tracer):
    """``with lock:``, with the time spent waiting to acquire it traced as ``wait``."""
    with tracer.span("wait"):
        lock.acquire()
    try:
        yield
    finally:
        lock.release()
