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

Errors and Ctrl-C: a failing piece of work reaches the caller with its own traceback,
after the other pieces of that step have finished (``gather(..., return_exceptions=True)``
waits for all, so nothing is left running). In the main thread ``asyncio.run`` turns Ctrl-C
into cancelling the coroutine; with the helper thread, the caller catches it while waiting,
sets ``cancel`` (the run stops at its next step), joins the thread and re-raises it.

Trace: ``compute``, ``reduce`` and ``update`` in the pool threads (``asyncio_0``, ...);
``wait`` (the awaits) and ``load`` in the loop's thread.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .base import Strategy, split_bounds


class Asyncio(Strategy):
    name = "asyncio"
    description = "the sync algorithm driven by an event loop: gather over a thread pool"

    def train(self) -> None:
        with ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="asyncio") as pool:
            try:
                asyncio.get_running_loop()
            except RuntimeError:              # no loop running here: the usual case
                asyncio.run(self.steps(pool))
            else:                             # e.g. in Jupyter: our loop needs its own thread
                self.run_in_helper_thread(pool)

    async def steps(self, pool: ThreadPoolExecutor) -> None:
        """The training loop as a coroutine: per batch, two rounds of work on the pool."""
        T, B, model, tracer = self.threads, self.batch_size, self.model, self.tracer
        shards = split_bounds(B, T)
        slices = split_bounds(model.params.size, T)
        grads = np.zeros((T, model.params.size), dtype=model.params.dtype)  # one row each
        total = np.empty_like(model.params)
        opts = [self.make_optimizer(model.params[lo:hi]) for lo, hi in slices]
        loop = asyncio.get_running_loop()

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
            with tracer.span("wait"):
                results = await asyncio.gather(
                    *(loop.run_in_executor(pool, self.timed, fn, k, *args) for k in range(T)),
                    return_exceptions=True)
            for r in results:
                if isinstance(r, BaseException):
                    raise r
            return results

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
        finally:
            cpu, name = self.history.thread_cpu, threading.current_thread().name
            cpu[name] = cpu.get(name, 0.0) + time.thread_time() - c0

    def run_in_helper_thread(self, pool: ThreadPoolExecutor) -> None:
        """``asyncio.run(self.steps(pool))`` in a fresh thread, joined before returning."""
        errors: list[BaseException] = []

        def main() -> None:
            c0 = time.thread_time()
            try:
                asyncio.run(self.steps(pool))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller below
                errors.append(exc)
            finally:
                self.history.thread_cpu["asyncio-loop"] = time.thread_time() - c0

        thread = threading.Thread(target=main, name="asyncio-loop", daemon=True)
        thread.start()
        try:
            while thread.is_alive():
                thread.join(0.05)              # short waits keep Ctrl-C responsive
        except BaseException:
            self.cancel.set()                  # the coroutine stops at its next step
            thread.join()
            raise
        if errors:
            raise errors[0]
