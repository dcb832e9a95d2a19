"""``asyncio``: the synchronous data-parallel algorithm of ``sync``, driven by an event loop.

The numbers are exactly those of ``sync``: the same shards of each batch, the same scaling
of the shard gradients, the same slice-wise reduction and one optimizer per slice — so it
equals serial training within rounding and repeats itself bit for bit. What changes is who
coordinates. Instead of worker threads meeting at barriers, one coroutine hands pieces of
work to a thread pool and *awaits* them; ``await asyncio.gather(...)`` is the barrier::

    loop thread:  load ─ gather ┄┄┄┄┄┄┄┄┄┄┄┄┄┄┄┄┄┄ gather ┄┄┄┄┄┄┄┄┄┄┄┄┄┄┄┄┄┄┄┄┄┄ record ─ load ...
    pool thread k:        compute shard k               reduce slice k ─ update slice k

Why our own ``ThreadPoolExecutor``: ``asyncio.to_thread`` runs on the loop's default
executor, which has ``min(32, cores + 4)`` threads, not the ``threads`` you asked for. Ours
has exactly ``threads`` workers, lives for the whole call, and is shut down — its threads
joined — on every way out (``with`` block).

Why a helper thread, sometimes: ``asyncio.run`` refuses to start when an event loop is
already running in the calling thread, and in Jupyter one always is (the kernel's loop runs
your cell). ``train`` is an ordinary blocking function, so it then runs its own loop in a
fresh thread and joins it; the caller's loop simply waits, as it would for any strategy.

Errors and Ctrl-C: a failing piece of work reaches the caller at once with its own
traceback (``asyncio.wait(..., return_when=FIRST_EXCEPTION)`` does not wait for the other
pieces of that step). Ctrl-C, or an error elsewhere, cancels the coroutine from outside the
loop (``loop.call_soon_threadsafe(task.cancel)``). Either way the pool is shut down; pieces
still running get a grace period, then are left to finish on their own (a worker stuck in a
long numpy call cannot be stopped), and ``history.info["abandoned"]`` counts them.

Trace: ``compute``, ``reduce`` and ``update`` in the pool threads (``asyncio_0``, ...);
``wait`` (the awaits) and ``load`` in the loop's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as futures_wait

import numpy as np

from ..runtime.threads import GRACE, POLL
from .base import Strategy, split_bounds


class Asyncio(Strategy):
    name = "asyncio"
    description = "the sync algorithm driven by an event loop: gather over a thread pool"

    def train(self) -> None:
        # Each pool thread runs under the run's BLAS limit (see Strategy.in_worker); the pool's
        # threads end with the run, so the limit is set once per thread and never undone.
        pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="asyncio",
                                  initializer=self.in_worker(lambda: None, keep=True))
        self.pending: set = set()                # pool work not finished yet
        try:
            try:
                asyncio.get_running_loop()
            except RuntimeError:              # no loop running here: the usual case
                asyncio.run(self.steps(pool))
            else:                             # e.g. in Jupyter: our loop needs its own thread
                self.run_in_helper_thread(pool)
        except BaseException as exc:
            # After an error or Ctrl-C, pieces of work may still run (a peer stuck in a long
            # step): wait for them a moment, then leave them to finish on their own.
            pool.shutdown(wait=False, cancel_futures=True)
            _, late = futures_wait(self.pending, timeout=GRACE)
            if late:
                self.history.info["abandoned"] = len(late)
                exc.add_note(f"asyncio: {len(late)} piece(s) of work still running {GRACE:g} s "
                             "after the run stopped were abandoned (their threads end when "
                             "the step does)")
            else:
                pool.shutdown(wait=True)      # nothing runs: join the pool's threads
            raise
        pool.shutdown(wait=True)

    async def steps(self, pool: ThreadPoolExecutor) -> None:
        """The training loop as a coroutine: per batch, two rounds of work on the pool."""
        T, B, model, tracer = self.threads, self.batch_size, self.model, self.tracer
        shards = split_bounds(B, T)
        slices = split_bounds(model.params.size, T)
        grads = np.zeros((T, model.params.size), dtype=model.params.dtype)  # one row each
        total = np.empty_like(model.params)
        opts = [self.make_optimizer(model.params[lo:hi]) for lo, hi in slices]
        loop, task = asyncio.get_running_loop(), asyncio.current_task()

        def wake() -> None:                   # abort() from another thread: stop awaiting
            with contextlib.suppress(RuntimeError):      # the loop may be closed already
                loop.call_soon_threadsafe(task.cancel)
        self.on_abort(wake)

        def compute(k: int, xb, yb) -> float:
            lo, hi = shards[k]
            weight = (hi - lo) / B             # shard mean -> share of the batch mean
            with tracer.span("compute"):
                loss, g, _ = model.loss_and_grads(self.loss, xb[lo:hi], yb[lo:hi],
                                                  grads=grads[k])
                g *= weight
            return loss * weight

        def reduce_and_update(k: int) -> None:
            lo, hi = slices[k]
            with tracer.span("reduce"):
                np.sum(grads[:, lo:hi], axis=0, out=total[lo:hi])
            with tracer.span("update"):
                opts[k].step(total[lo:hi])

        async def on_every_worker(fn, *args) -> list:
            """``fn(k, *args)`` for k in 0..T-1 on the pool; wait for all, then raise the
            first error (in k order) if any."""
            work = [pool.submit(self.timed, fn, k, *args) for k in range(T)]
            self.pending.update(work)
            waiting = {asyncio.wrap_future(w) for w in work}
            try:
                with tracer.span("wait"):
                    while waiting:            # short waits: see runtime.threads.POLL
                        done, waiting = await asyncio.wait(
                            waiting, timeout=POLL, return_when=asyncio.FIRST_EXCEPTION)
                        if any(f.exception() is not None for f in done):
                            break
            finally:
                for f in waiting:             # leaving early: detach from the loop
                    f.cancel()
            for w in work:                    # the first error in k order, at once
                if w.done() and w.exception() is not None:
                    raise w.exception()
            self.pending.difference_update(work)
            return [w.result() for w in work]

        with self.batches() as batches:
            for xb, yb in batches:
                shard_loss = await on_every_worker(compute, xb, yb)
                await on_every_worker(reduce_and_update)
                self.record_step(sum(shard_loss))

    def timed(self, fn, *args):
        """Run ``fn(*args)`` in a pool thread, adding the CPU time it took to that thread's
        entry of ``history.thread_cpu`` (each thread writes only its own entry)."""
        c0 = time.thread_time()
        try:
            return fn(*args)
        except BaseException as exc:
            exc.add_note(f"raised in worker thread {threading.current_thread().name}")
            raise
        finally:
            cpu, name = self.history.thread_cpu, threading.current_thread().name
            cpu[name] = cpu.get(name, 0.0) + time.thread_time() - c0

    def run_in_helper_thread(self, pool: ThreadPoolExecutor) -> None:
        """``asyncio.run(self.steps(pool))`` in a fresh thread, joined before returning."""
        group = self.workers(1, lambda _: asyncio.run(self.steps(pool)), name="asyncio-loop")
        try:
            group.run()
        finally:
            self.history.thread_cpu.update(group.cpu)
