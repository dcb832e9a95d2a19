"""``process``: synchronous data parallelism with worker *processes* instead of threads.

The algorithm is ``sync``'s — cut the batch into one shard per worker, each worker's gradient
scaled by its share of the batch, a sum in a fixed order, one update — so it equals serial
training; only the workers differ. A process has its own interpreter (and its own GIL), so
even pure-Python work runs in parallel; the price is starting the processes (0.1-1 s, kept
for the whole call) and that processes share no memory unless asked to:

* the parameters (``params``), one gradient row per worker (``grads``, workers x params) and
  the current batch (``x``, ``y``) live in ``multiprocessing.shared_memory``; each worker
  unpickles the parent's model and rebinds it (``Sequential.use_buffer``) so its layers read
  the shared parameters;
* one ``multiprocessing.Pipe`` per worker carries only small messages ("step s", "done:
  loss, spans") — see :mod:`.process_worker` for the worker's side;
* the parent is the barrier and the reducer: it waits for every worker (watching each
  process's sentinel too, so a worker that dies is noticed at once), sums the gradient rows
  in worker order — a fixed order, so runs repeat bit for bit — and updates::

    parent:  load ─ copy batch ─ send ─ wait ─────────────────── reduce ─ update ─ copy params
    proc k:                           recv ─ compute grads[k] ─ send        (waits in recv)

Why the parent reduces, where ``sync`` reduces in parallel: the optimizer stays in the parent,
so any ``optimizer`` factory works (nothing but the model and loss is pickled), and a step
costs one message round trip instead of two. On the timeline that serial reduce + update is
the Amdahl fraction.

Options: ``start_method`` — ``None`` (the platform's default: ``fork`` on Linux up to Python
3.13, ``forkserver`` from 3.14, ``spawn`` on macOS and Windows), ``"spawn"``,
``"forkserver"`` or ``"fork"``. With ``spawn`` and ``forkserver`` a worker imports what it
unpickles, so the model's classes must live in a module, not in a notebook or ``__main__``.

Failures: an exception in a worker is re-raised in the caller as the same exception (a
``RuntimeError`` when it cannot be pickled), with the worker's formatted traceback as its
``__cause__`` (:class:`RemoteTraceback`, as ``concurrent.futures`` does). A worker that dies
without a word (killed, ``os._exit``) raises :class:`WorkerDied`. On every path — success,
error, Ctrl-C — every process is joined (terminated after a grace period if it does not
stop) and every shared-memory segment is closed and unlinked.

Timelines: workers time their spans with ``time.perf_counter`` and send them with each reply;
the parent records them with ``Tracer.add(thread="proc-k")``. This assumes perf_counter is
one clock for all processes of the machine — true where it is CLOCK_MONOTONIC (Linux),
mach_absolute_time (macOS) or QueryPerformanceCounter (Windows). ``History.thread_cpu``
gets each worker's process CPU time; ``History.info`` the start method and start-up time.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import pickle
import signal
import time
from multiprocessing import connection
from typing import NoReturn

import numpy as np

from .base import Strategy, split_bounds
from .process_worker import SharedArrays, worker_main

START_METHODS = (None, "spawn", "forkserver", "fork")
#: seconds the workers get to exit after "stop" before they are terminated
GRACE = 2.0
#: longest blocking wait in the parent, so Ctrl-C is handled promptly
POLL = 0.05


class RemoteTraceback(Exception):
    """The formatted traceback of an exception raised in a worker process (the
    ``__cause__`` of the exception re-raised in the caller)."""

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return f'\n"""\n{self.text.rstrip()}\n"""'


class WorkerDied(RuntimeError):
    """A worker process exited without reporting an error (killed, crashed, ``os._exit``)."""


class ProcessGroup:
    """``n`` worker processes, their pipes and the shared arrays, for one ``train`` call:
    the process counterpart of :class:`~mtlearn.parallel.WorkerGroup`.

    ``shared.arrays`` holds the parent's views of the shared arrays; ``cpu`` the CPU seconds
    each worker reported last. Use as a context manager: leaving it always runs
    :meth:`close`.
    """

    def __init__(self, ctx, n: int):
        self.ctx, self.n = ctx, n
        self.shared = SharedArrays()
        self.procs: list = []
        self.conns: list = []
        self.cpu: dict[str, float] = {f"proc-{k}": 0.0 for k in range(n)}
        self._owner: dict = {}                 # pipe end or sentinel -> worker index

    def start(self, payload: bytes, shards, blas_threads, trace: bool) -> list:
        """Start the workers (``shared`` must hold every array) and wait until each is
        ready. Returns their "ready" replies."""
        specs = self.shared.specs()
        for k in range(self.n):
            ours, theirs = self.ctx.Pipe()
            self.conns.append(ours)
            try:
                p = self.ctx.Process(target=worker_main, name=f"proc-{k}", daemon=True,
                                     args=(k, theirs, payload, specs, shards[k], blas_threads,
                                           trace))
                p.start()
            finally:
                theirs.close()                 # the child has its own; ours would hide EOF
            self.procs.append(p)
            self._owner[ours] = self._owner[p.sentinel] = k
        return self.gather("start-up")

    def send(self, message) -> None:
        """Send ``message`` to every worker (one that has died is reported by gather)."""
        for conn in self.conns:
            with contextlib.suppress(BrokenPipeError):
                conn.send(message)

    def gather(self, during: str) -> list:
        """One reply from every worker, in worker order. Raises a worker's error as soon as
        it arrives, or :class:`WorkerDied` as soon as a process ends without one."""
        replies: list = [None] * self.n
        pending = set(range(self.n))
        while pending:
            waiting = [self.conns[k] for k in pending] + [self.procs[k].sentinel for k in pending]
            for ready in connection.wait(waiting, timeout=POLL):
                k = self._owner[ready]
                if k not in pending:
                    continue
                conn = self.conns[k]
                if ready is not conn and not conn.poll():
                    self._died(k, during)      # sentinel fired and nothing was said
                try:
                    reply = conn.recv()
                except EOFError:
                    self._died(k, during)
                if reply[0] == "error":
                    self._reraise(k, during, *reply[1:])
                self.cpu[f"proc-{k}"] = reply[-1]
                replies[k] = reply
                pending.discard(k)
        return replies

    def _died(self, k: int, during: str) -> NoReturn:
        p = self.procs[k]
        p.join(1.0)
        code = p.exitcode
        how = (f"killed by {signal.Signals(-code).name}" if code is not None and code < 0
               else f"with exit code {code}")
        hint = ("killed, out of memory, os._exit?" if during != "start-up" else
                "with spawn or forkserver, a script must start training under "
                "if __name__ == '__main__':")
        raise WorkerDied(f"worker process proc-{k} (pid {p.pid}) died {how} during {during} "
                         f"without reporting an error ({hint})")

    def _reraise(self, k: int, during: str, phase: str, blob, text: str) -> NoReturn:
        exc = None
        if blob is not None:
            with contextlib.suppress(Exception):
                exc = pickle.loads(blob)
        if not isinstance(exc, Exception):     # not picklable, or SystemExit and the like
            exc = RuntimeError(text.rstrip().splitlines()[-1])
        exc.add_note(f"raised in worker process proc-{k} during {during}; its traceback is "
                     "printed above")
        if phase == "setup":
            exc.add_note("a worker process failed to set up: with the spawn and forkserver "
                         "start methods the model's classes must be importable (defined in a "
                         "module, not in a notebook or __main__)")
        raise exc from RemoteTraceback(text)

    def close(self) -> None:
        """Stop and join every worker (terminate, then kill, the ones that do not exit),
        then close and unlink every shared-memory segment. Safe on any path."""
        try:
            for conn in self.conns:
                with contextlib.suppress(OSError, ValueError):   # the worker may be gone
                    conn.send(None)
            deadline = time.monotonic() + GRACE
            for p in self.procs:
                p.join(max(0.0, deadline - time.monotonic()))
            for p in self.procs:
                if p.exitcode is None:
                    p.terminate()
            for p in self.procs:
                p.join(1.0)
                if p.exitcode is None:
                    p.kill()
                    p.join()
        finally:
            for conn in self.conns:
                conn.close()
            for p in self.procs:
                with contextlib.suppress(ValueError):
                    p.close()
            self.shared.close(unlink=True)

    def __enter__(self) -> ProcessGroup:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Process(Strategy):
    name = "process"
    description = ("synchronous data parallel with worker processes and shared memory "
                   "(no GIL shared)")
    options = {"start_method": None}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        method = self.opts["start_method"]
        if method not in START_METHODS:
            raise ValueError(f"start_method must be one of {START_METHODS}, got {method!r}")
        if method is not None and method not in mp.get_all_start_methods():
            raise ValueError(f"start_method {method!r} is not available on this platform "
                             f"(available: {mp.get_all_start_methods()})")
        self.ctx = mp.get_context(method)
        try:    # checked here, before anything starts: workers get the model by pickle
            self.payload = pickle.dumps((self.model, self.loss))
        except Exception as exc:  # noqa: BLE001 - pickle raises several types
            raise TypeError(f"strategy 'process' sends the model and loss to its workers with "
                            f"pickle, which failed: {exc}. Keep locks, open files and "
                            "functions defined inside functions out of layers and "
                            "losses") from exc

    def train(self) -> None:
        T, B, model, tracer = self.threads, self.batch_size, self.model, self.tracer
        with ProcessGroup(self.ctx, T) as group:
            arrays = group.shared.arrays
            group.shared.create("params", model.params.shape, model.params.dtype)
            group.shared.create("grads", (T, model.params.size), model.params.dtype)
            group.shared.create("x", (B, *self.X.shape[1:]), self.X.dtype)
            group.shared.create("y", (B, *np.shape(self.y)[1:]), np.asarray(self.y[:1]).dtype)
            arrays["params"][...] = model.params
            t0 = time.perf_counter()
            with tracer.span("wait"):
                group.start(self.payload, split_bounds(B, T), self.blas_threads, tracer.enabled)
            self.history.info.update(start_method=self.ctx.get_start_method(),
                                     startup_s=time.perf_counter() - t0)
            opt = self.make_optimizer(model.params)    # the parent's model is the master copy
            total = np.empty_like(model.params)
            with self.batches() as batches:
                for step, (xb, yb) in enumerate(batches):
                    self._publish(arrays, xb, yb)
                    with tracer.span("wait"):
                        group.send(step)
                        replies = group.gather(f"step {step}")
                    for k, (_, _, spans, _) in enumerate(replies):
                        for kind, start, end, cpu in spans:
                            tracer.add(kind, start, end, cpu, thread=f"proc-{k}")
                    with tracer.span("reduce"):
                        np.sum(arrays["grads"], axis=0, out=total)   # rows in worker order
                    with tracer.span("update"):
                        opt.step(total)
                        arrays["params"][...] = model.params       # what workers read next
                    self.record_step(sum(reply[1] for reply in replies))
        self.history.thread_cpu.update(group.cpu)

    @staticmethod
    def _publish(arrays, xb, yb) -> None:
        """Copy the batch into shared memory (loading and ``augment`` ran in the parent)."""
        for key, batch in (("x", xb), ("y", yb)):
            batch = np.asarray(batch)
            if batch.shape != arrays[key].shape or batch.dtype != arrays[key].dtype:
                raise ValueError(f"strategy 'process': a batch's {key} is {batch.dtype} "
                                 f"{batch.shape}, expected {arrays[key].dtype} "
                                 f"{arrays[key].shape} (augment must keep shape and dtype)")
            arrays[key][...] = batch
