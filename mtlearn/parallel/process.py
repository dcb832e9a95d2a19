"""``process``: synchronous data parallelism with worker *processes* instead of threads.

The algorithm is ``sync``'s — cut the batch into one shard per worker, each worker's gradient
scaled by its share of the batch, a sum in a fixed order, one update — so it equals serial
training; only the workers differ. A process has its own interpreter (and its own GIL), so
even pure-Python work runs in parallel; the price is starting the processes (0.02-1 s, kept
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

Option ``start_method``: ``"fork"``, ``"forkserver"``, ``"spawn"``, or ``None`` for
:func:`default_start_method`: the platform's default (``fork`` on Linux up to Python 3.13,
``forkserver`` from 3.14, ``spawn`` on macOS and Windows) — except that ``fork`` becomes
``forkserver`` (``spawn`` where there is none) whenever this process runs other threads,
as a Jupyter kernel always does. Why: ``fork`` copies the whole process but only the
calling thread; a lock another thread held at that instant (in ``logging``, an I/O buffer,
the allocator, the import system) stays locked forever in the child, which can then
deadlock. That is why Python 3.12 warns "use of fork() may lead to deadlocks in the child"
in a multi-threaded process (on the free-threaded build as well) and why 3.14 stopped
making it the default. With ``forkserver`` the workers are forked from a small server
process that runs no threads of ours; it preloads numpy and mtlearn once, so after its
first start (~0.2 s) a worker starts about as fast as with ``fork``. With ``spawn`` and
``forkserver`` a worker imports what it unpickles, so the model's classes must live in a
module (or a script's ``__main__`` guarded by ``if __name__ == "__main__":``), not in a
notebook cell.

Failures: an exception in a worker is re-raised in the caller as the same exception
(``KeyboardInterrupt`` included; a ``RuntimeError`` when it cannot be pickled), with the
worker's formatted traceback as its ``__cause__`` (:class:`RemoteTraceback`, as
``concurrent.futures`` does) and notes naming the worker process, the step, and the layer
it came from (``nn.Sequential`` notes that).
A worker that dies without a word (killed, ``os._exit``) raises :class:`WorkerDied`. On an
error or Ctrl-C, a worker still busy with its step is terminated at once instead of being
waited for (its result is no longer needed), and a note on the error says so: the caller
hears of the failure within a fraction of a second even when a peer is stuck in a long
step.

Lifetimes — nothing outlives the call, even when the caller is killed:

* on every path the caller survives (success, error, Ctrl-C) every process is joined and
  every shared-memory segment is closed, and its name removed;
* the segment *names* are removed as soon as every worker has mapped the segments (end of
  start-up): the memory stays shared, and the kernel frees it when the last process holding
  it ends, so from then on no crash of anyone can leave a file in ``/dev/shm``;
* each worker watches a *lifeline* pipe whose write end only the parent holds, and exits
  the moment the parent process ends (SIGKILL included) — removing the segment names
  itself if that happens during start-up (see :mod:`.process_worker`); Linux's
  ``PR_SET_PDEATHSIG`` backs this up once the steps run. The one trap is ``fork``: a forked
  child inherits every descriptor of its parent, including the parent's ends of the pipes,
  so it would keep its own lifeline alive and never see the parent go. An
  ``os.register_at_fork`` hook therefore closes, in every forked child, the parent-side
  pipe ends of every run in progress;
* the resource tracker that ``multiprocessing.shared_memory`` starts is the last survivor:
  once the parent and every worker are gone it removes any segment still registered.

Timelines: workers time their spans with ``time.perf_counter`` and send them with each reply;
the parent records them with ``Tracer.add(thread="proc-k")``. This assumes perf_counter is
one clock for all processes of the machine — true where it is CLOCK_MONOTONIC (Linux),
mach_absolute_time (macOS) or QueryPerformanceCounter (Windows). ``History.thread_cpu``
gets each worker's process CPU time; ``History.info`` the start method and start-up time.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import pickle
import signal
import threading
import time
from multiprocessing import connection
from typing import NoReturn

import numpy as np

from ..runtime import checks
from ..runtime.threads import Aborted
from .base import Strategy, split_bounds
from .process_worker import SharedArrays, worker_main

START_METHODS = (None, "spawn", "forkserver", "fork")
#: seconds the workers get to exit after "stop" before they are terminated (normal end)
GRACE = 2.0
#: the same after an error or Ctrl-C, when their work is no longer needed
QUICK = 0.3
#: longest blocking wait in the parent, so an abort from another thread is seen promptly
POLL = 0.05
#: modules the forkserver imports once, so that each worker does not import them again
PRELOAD = ["__main__", "mtlearn.parallel.process_worker", "mtlearn.nn"]

# The parent's ends of the pipes of every run in progress in this process: a forked child
# must not keep them open (see "Lifetimes" in the module docstring).
_PARENT_ENDS: set = set()
_preloaded = False


def _close_parent_ends() -> None:
    for conn in list(_PARENT_ENDS):
        with contextlib.suppress(OSError):
            conn.close()
    _PARENT_ENDS.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_parent_ends)


def default_start_method() -> str:
    """The start method ``start_method=None`` uses now (see the module docstring): the
    platform's default, with ``fork`` replaced by ``forkserver`` (or ``spawn``) while this
    process runs other Python threads."""
    methods = mp.get_all_start_methods()       # the platform's default comes first
    method = methods[0]
    if method == "fork" and threading.active_count() > 1:
        method = "forkserver" if "forkserver" in methods else "spawn"
    return method


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
    the process counterpart of :class:`~mtlearn.runtime.threads.WorkerGroup`.

    ``shared.arrays`` holds the parent's views of the shared arrays; ``cpu`` the CPU seconds
    each worker reported last. :meth:`abort` (from any thread) makes a waiting
    :meth:`gather` raise :class:`Aborted` within :data:`POLL` seconds. Use as a context
    manager: leaving it always runs :meth:`close`.
    """

    def __init__(self, ctx, n: int):
        self.ctx, self.n = ctx, n
        self.shared = SharedArrays()
        self.procs: list = []
        self.conns: list = []
        self.cpu: dict[str, float] = {f"proc-{k}": 0.0 for k in range(n)}
        self.busy: set[int] = set()            # workers given work they have not answered
        self.during = "start-up"
        self.stop = threading.Event()
        self._owner: dict = {}                 # pipe end or sentinel -> worker index
        self._lifeline = None                  # the write end; only this process holds it

    def start(self, payload: bytes, shards, blas_threads, trace: bool) -> list:
        """Start the workers (``shared`` must hold every array), wait until each is ready,
        then remove the segment names (every worker has mapped them). Returns their
        "ready" replies."""
        specs = self.shared.specs()
        reader, self._lifeline = self.ctx.Pipe(duplex=False)
        _PARENT_ENDS.add(self._lifeline)
        try:
            for k in range(self.n):
                ours, theirs = self.ctx.Pipe()
                self.conns.append(ours)
                _PARENT_ENDS.add(ours)
                try:
                    p = self.ctx.Process(target=worker_main, name=f"proc-{k}", daemon=True,
                                         args=(k, theirs, reader, payload, specs, shards[k],
                                               blas_threads, trace))
                    p.start()
                finally:
                    theirs.close()             # the child has its own; ours would hide EOF
                self.procs.append(p)
                self.busy.add(k)
                self._owner[ours] = self._owner[p.sentinel] = k
        finally:
            reader.close()                     # the workers have theirs
        replies = self.gather("start-up")
        self.shared.unlink()
        return replies

    def abort(self) -> None:
        """Make :meth:`gather` stop waiting (safe from any thread, idempotent)."""
        self.stop.set()

    def send(self, message, during: str) -> None:
        """Send ``message`` to every worker (one that has died is reported by gather)."""
        self.during = during
        for k, conn in enumerate(self.conns):
            self.busy.add(k)
            with contextlib.suppress(BrokenPipeError):
                conn.send(message)

    def gather(self, during: str) -> list:
        """One reply from every worker, in worker order. Raises a worker's error as soon as
        it arrives, :class:`WorkerDied` as soon as a process ends without one, or
        :class:`Aborted` once :meth:`abort` was called."""
        self.during = during
        replies: list = [None] * self.n
        pending = set(range(self.n))
        while pending:
            if self.stop.is_set():
                raise Aborted(f"process: stopped during {during}")
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
                self.busy.discard(k)
                if reply[0] == "error":
                    self._reraise(k, during, *reply[1:])
                self.cpu[f"proc-{k}"] = reply[-1]
                replies[k] = reply
                pending.discard(k)
        return replies

    def _died(self, k: int, during: str) -> NoReturn:
        self.busy.discard(k)
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

    def _reraise(self, k: int, during: str, phase: str, blob, text: str, headline: str,
                 notes: list[str]) -> NoReturn:
        exc = None
        if blob is not None:
            with contextlib.suppress(Exception):
                exc = pickle.loads(blob)
        # KeyboardInterrupt stays what it is; SystemExit and the like would end the caller's
        # program, so they arrive as a RuntimeError, like an exception pickle cannot carry.
        if not isinstance(exc, Exception | KeyboardInterrupt):
            exc = RuntimeError(headline)
            for note in notes:                 # e.g. the layer that raised it
                exc.add_note(note)
        exc.add_note(f"raised in worker process proc-{k} (pid {self.procs[k].pid}) during "
                     f"{during}; its traceback is printed above")
        if phase == "setup":
            exc.add_note("a worker process failed to set up: with the spawn and forkserver "
                         "start methods the model's classes must be importable (defined in a "
                         "module, or in a script under if __name__ == '__main__'; not in a "
                         "notebook cell or an interactive session)")
        raise exc from RemoteTraceback(text)

    def close(self, failure: BaseException | None = None) -> None:
        """Stop and join every worker, then close every shared-memory segment and remove its
        name. Safe on any path.

        After a normal run (``failure`` None) the workers get :data:`GRACE` seconds to exit
        and must exit cleanly (code 0: a worker that could not release its shared memory
        fails the run). After a ``failure``, workers still busy with their step are
        terminated at once, the others get :data:`QUICK` seconds, and a note on
        ``failure`` names each process that had to be terminated.
        """
        terminated: list[str] = []
        try:
            for conn in self.conns:
                with contextlib.suppress(OSError, ValueError):   # the worker may be gone
                    conn.send(None)
            if failure is not None:
                for k in sorted(self.busy):
                    if self.procs[k].exitcode is None:
                        self.procs[k].terminate()
                        terminated.append(f"proc-{k} (pid {self.procs[k].pid}, still busy "
                                          f"with {self.during})")
            deadline = time.monotonic() + (GRACE if failure is None else QUICK)
            for p in self.procs:
                p.join(max(0.0, deadline - time.monotonic()))
            for k, p in enumerate(self.procs):
                if p.exitcode is None:
                    p.terminate()
                    terminated.append(f"proc-{k} (pid {p.pid}, did not stop when asked)")
            for p in self.procs:
                p.join(1.0)
                if p.exitcode is None:
                    p.kill()
                    p.join()
        finally:
            for conn in self.conns:
                _PARENT_ENDS.discard(conn)
                conn.close()
            if self._lifeline is not None:     # every worker has exited: nobody to tell
                _PARENT_ENDS.discard(self._lifeline)
                self._lifeline.close()
            codes = [p.exitcode for p in self.procs]
            for p in self.procs:
                with contextlib.suppress(ValueError):
                    p.close()
            self.shared.close(unlink=True)
        if terminated and failure is not None:
            failure.add_note("terminated at once, their work no longer needed: "
                             + "; ".join(terminated))
        if failure is None:
            bad = [(k, code) for k, code in enumerate(codes) if code != 0]
            if bad:
                raise WorkerDied("worker process(es) " + ", ".join(
                    f"proc-{k} (exit code {code})" for k, code in bad) + " did not end "
                    "cleanly after training; see the traceback printed above (e.g. a "
                    "BufferError: a view of shared memory kept alive)")

    def __enter__(self) -> ProcessGroup:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc is None:
            self.close()
            return
        try:
            self.close(exc)
        except Exception as problem:           # the run's own error matters more
            exc.add_note(f"while stopping the worker processes: {type(problem).__name__}: "
                         f"{problem}")


class Process(Strategy):
    name = "process"
    description = ("synchronous data parallel with worker processes and shared memory "
                   "(no GIL shared)")
    options = {"start_method": None}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        method = checks.choice("start_method", self.opts["start_method"], START_METHODS)
        if method is not None and method not in mp.get_all_start_methods():
            raise ValueError(f"start_method {method!r} is not available on this platform "
                             f"(available: {mp.get_all_start_methods()})")
        self.start_method = method
        try:    # checked here, before anything starts: workers get the model by pickle
            self.payload = pickle.dumps((self.model, self.loss))
        except Exception as exc:               # pickle raises several types
            raise TypeError(f"strategy 'process' sends the model and loss to its workers with "
                            f"pickle, which failed: {exc}. Keep locks, open files and "
                            "functions defined inside functions out of layers and "
                            "losses") from exc

    def context(self):
        """The multiprocessing context to start workers with (resolved now: whether other
        threads run matters at the moment of starting)."""
        global _preloaded
        method = self.start_method or default_start_method()
        ctx = mp.get_context(method)
        if method == "forkserver" and self.start_method is None and not _preloaded:
            ctx.set_forkserver_preload(PRELOAD)    # only read when the server first starts
            _preloaded = True
        return ctx

    def train(self) -> None:
        T, B, model, tracer = self.threads, self.batch_size, self.model, self.tracer
        ctx = self.context()
        with ProcessGroup(ctx, T) as group:
            self.on_abort(group.abort)         # Ctrl-C, train_many: stop waiting, tear down
            arrays = group.shared.arrays
            group.shared.create("params", model.params.shape, model.params.dtype)
            group.shared.create("grads", (T, model.params.size), model.params.dtype)
            group.shared.create("x", (B, *self.X.shape[1:]), self.X.dtype)
            group.shared.create("y", (B, *np.shape(self.y)[1:]), np.asarray(self.y[:1]).dtype)
            arrays["params"][...] = model.params
            t0 = time.perf_counter()
            with tracer.span("wait"):
                group.start(self.payload, split_bounds(B, T), self.blas_threads, tracer.enabled)
            self.history.info.update(start_method=ctx.get_start_method(),
                                     startup_s=time.perf_counter() - t0)
            opt = self.make_optimizer(model.params)    # the parent's model is the master copy
            total = np.empty_like(model.params)
            with self.batches() as batches:
                for step, (xb, yb) in enumerate(batches):
                    self._publish(arrays, xb, yb)
                    with tracer.span("wait"):
                        group.send(step, f"step {step}")
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
