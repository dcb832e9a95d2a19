"""Running a group of worker threads, and stopping it, the way every part of mtlearn needs.

``WorkerGroup`` starts N threads, waits for them, and makes failure boring:

* the first exception in any worker is re-raised in the caller with its original traceback,
  with a note naming the worker thread;
* the moment a worker fails (or the caller is interrupted) the ``on_abort`` callbacks run:
  they break the caller's barriers and unblock its queues, so no thread waits forever;
* every thread is joined before the group's ``with`` block (or ``run``) returns or raises.
  A worker still busy ``grace`` seconds after an abort — stuck in one long numpy call,
  which nothing in Python can interrupt — is *abandoned*: it is a daemon thread, it stops
  at its next check of ``stop``, and the error says so, so the caller is not held hostage;
* if starting the threads fails part-way (the OS refuses a thread), the ones already
  started are stopped and joined before the error is raised.

Ctrl-C, done safely: :func:`interrupts` (used around every training run on the main
thread). By default Python raises ``KeyboardInterrupt`` in the main thread wherever it
happens to be — possibly inside ``queue.Queue.get`` or ``Barrier.wait``, between two lines
of ``threading.Condition``. The exception can then leave that lock or queue inconsistent,
and the worker threads sharing it wait forever: the rare hang of a pipeline run when
interrupted. Within :func:`interrupts` the SIGINT handler only records the interrupt and
wakes a small watchdog thread, which runs the abort callbacks from outside the main
thread; the main thread then leaves its barrier or queue through the normal abort path and
``KeyboardInterrupt`` is raised at the end, from a clean state::

    main:      ... barrier.wait() ──(broken)──> group joined ──> raise KeyboardInterrupt
    SIGINT:        handler: interrupted = True, wake watchdog
    watchdog:                    abort(): barrier.abort(), queues get a sentinel

Only the standard library is used here.
"""

from __future__ import annotations

import _thread
import contextlib
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator

#: seconds a group waits for its workers after an abort before it abandons the stuck ones
GRACE = 0.5


class Aborted(Exception):
    """Raised in a worker that was woken because the group is shutting down."""


class WorkerGroup:
    """Run ``target(k)`` for ``k in range(n)`` on ``n`` threads named ``f"{name}-{k}"``.

    ``on_abort`` callables (e.g. ``barrier.abort``) run once when a worker fails or the
    caller is interrupted. Workers raising ``threading.BrokenBarrierError`` or
    :class:`Aborted` after an abort are following it, not failing. Use as a context
    manager around the caller's own part of the work, or call :meth:`run`.
    """

    def __init__(self, n: int, target: Callable[[int], None], name: str = "worker",
                 on_abort: list[Callable[[], None]] | None = None, grace: float = GRACE):
        self.n, self.target, self.name, self.grace = n, target, name, grace
        self.on_abort = list(on_abort or [])
        self.stop = threading.Event()          # set when the group is shutting down
        self.cpu: dict[str, float] = {}        # thread name -> CPU seconds it used
        self.abandoned: list[str] = []         # workers still running when the group gave up
        self._errors: list[BaseException] = []
        self._lock = threading.Lock()
        # One raw lock per worker, held while it runs: acquiring it with a timeout is how the
        # caller waits for a worker (a plain flag says "finished" without a race).
        self._running = [_thread.allocate_lock() for _ in range(n)]
        self._finished = [False] * n
        self.threads = [threading.Thread(target=self._main, args=(k,), name=f"{name}-{k}",
                                         daemon=True) for k in range(n)]
        self._started = 0

    # -- inside the workers -------------------------------------------------------------
    def _main(self, k: int) -> None:
        c0 = time.thread_time()
        try:
            self.target(k)
        except (threading.BrokenBarrierError, Aborted):
            if not self.stop.is_set():       # broken without an abort: a real failure
                self.fail(RuntimeError(f"{self.name}-{k}: a barrier broke unexpectedly"))
        except BaseException as exc:  # every failure must reach the caller
            _add_note(exc, f"raised in worker thread {self.name}-{k}")
            self.fail(exc)
        finally:
            self.cpu[threading.current_thread().name] = time.thread_time() - c0
            self._finished[k] = True
            self._running[k].release()

    def fail(self, exc: BaseException) -> None:
        """Record ``exc`` (the first one wins) and shut the group down."""
        with self._lock:
            self._errors.append(exc)
        self.abort()

    def abort(self) -> None:
        """Wake every waiting worker (idempotent; safe from any thread but a signal handler)."""
        with self._lock:
            if self.stop.is_set():
                return
            self.stop.set()
        for callback in self.on_abort:
            callback()

    # -- in the caller ---------------------------------------------------------------------
    def start(self) -> None:
        """Start every worker. If the OS refuses a thread part-way, stop and join the ones
        already started, then raise (the error names how many started)."""
        try:
            for k, t in enumerate(self.threads):
                self._running[k].acquire()
                try:
                    t.start()
                except BaseException:
                    self._running[k].release()
                    raise
                self._started += 1
        except BaseException as exc:
            self._shutdown()
            self._note_abandoned(exc)
            _add_note(exc, f"{self.name}: only {self._started} of {self.n} threads could be "
                      "started; those were stopped and joined (ask for fewer threads)")
            raise

    def _wait(self, deadline: float | None, until_failure: bool = False) -> bool:
        """Wait for the started workers until ``deadline`` (``perf_counter`` time; None:
        forever) or, with ``until_failure``, until the group is aborted. True if all ended."""
        for k in range(self._started):
            while not self._finished[k]:
                if until_failure and self.stop.is_set():
                    return False
                timeout = 0.05 if deadline is None else min(0.05, deadline - time.perf_counter())
                if timeout <= 0:
                    return False
                if self._running[k].acquire(timeout=timeout):
                    self._running[k].release()
        for t in self.threads[:self._started]:
            t.join()                 # each has finished its target: this only reaps it
        return True

    def alive(self) -> list[str]:
        """Names of the workers that have not finished."""
        return [t.name for k, t in enumerate(self.threads[:self._started])
                if not self._finished[k]]

    def _shutdown(self) -> None:
        """Abort, wait up to ``grace`` seconds, abandon whoever is still running."""
        self.abort()
        if not self._wait(time.perf_counter() + self.grace):
            self.abandoned = self.alive()

    def join(self) -> None:
        """Wait for all workers; re-raise the first worker error (after waiting ``grace``
        for the others). Ctrl-C or any error in the caller aborts the group the same way."""
        try:
            if self._wait(None, until_failure=True):
                self.raise_error()
                return
        except BaseException as exc:
            self._shutdown()
            self._note_abandoned(exc)
            raise
        self._shutdown()
        self.raise_error()
        if self.abandoned:                       # stopped from outside, workers left behind
            exc = Aborted(f"{self.name}: the group was stopped")
            self._note_abandoned(exc)
            raise exc

    def raise_error(self) -> None:
        """Re-raise the first recorded worker error, if any."""
        if self._errors:
            self._note_abandoned(self._errors[0])
            raise self._errors[0]

    def _note_abandoned(self, exc: BaseException) -> None:
        if self.abandoned:
            _add_note(exc, f"{', '.join(self.abandoned)} still running {self.grace:g} s after "
                      "the group stopped: abandoned (daemon threads; each stops at its next "
                      "check, and changes nothing once the group has stopped)")

    def run(self) -> None:
        """``start`` then ``join``."""
        self.start()
        self.join()

    def __enter__(self) -> WorkerGroup:
        self.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.join()
            return
        # The caller failed, was interrupted, or saw a barrier broken by a failing worker:
        # shut down, and prefer the worker's original error to the broken barrier.
        self._shutdown()
        if isinstance(exc, threading.BrokenBarrierError | Aborted) and self._errors:
            self.raise_error()
        self._note_abandoned(exc)


#: how often a thread blocked in a :class:`Barrier` or a polling wait wakes up: it lets the
#: main thread run Python's signal handlers (Ctrl-C) while it waits. A lock acquire is woken
#: by a real SIGINT on Linux, but not by ``_thread.interrupt_main`` nor on Windows.
POLL = 0.05


class Barrier:
    """A cyclic barrier for ``parties`` threads, like ``threading.Barrier`` (``wait``,
    ``abort``, ``BrokenBarrierError``), whose waiting threads wake every :data:`POLL`
    seconds to look again. That is the only difference, and the reason it exists: the main
    thread waiting here keeps running its signal handlers, so Ctrl-C is seen at once on
    every platform (see :func:`interrupts`)."""

    def __init__(self, parties: int):
        self.parties = parties
        self._cond = threading.Condition(threading.Lock())
        self._count = 0            # threads waiting in the current round
        self._round = 0            # bumped each time the barrier opens
        self._broken = False

    def wait(self) -> int:
        """Block until ``parties`` threads have called ``wait``; returns this thread's
        arrival index (0 .. parties-1). Raises ``threading.BrokenBarrierError`` if the
        barrier is (or gets) aborted."""
        with self._cond:
            if self._broken:
                raise threading.BrokenBarrierError
            index, my_round = self._count, self._round
            self._count += 1
            if self._count == self.parties:          # the last one opens the barrier
                self._count, self._round = 0, self._round + 1
                self._cond.notify_all()
                return index
            while self._round == my_round and not self._broken:
                self._cond.wait(POLL)
            if self._round == my_round:              # broken while we waited
                raise threading.BrokenBarrierError
            return index

    def abort(self) -> None:
        """Break the barrier: every waiting (and future) ``wait`` raises BrokenBarrierError."""
        with self._cond:
            self._broken = True
            self._cond.notify_all()

    @property
    def broken(self) -> bool:
        return self._broken


def get(q: queue.Queue):
    """``q.get()`` that wakes every :data:`POLL` seconds to look again (see :class:`Barrier`
    for why the main thread must not block for good)."""
    while True:
        try:
            return q.get(timeout=POLL)
        except queue.Empty:
            pass


def _add_note(exc: BaseException, note: str) -> None:
    notes = getattr(exc, "__notes__", [])
    if note not in notes:
        exc.add_note(note)


class Interrupts:
    """What :func:`interrupts` yields: ``interrupted`` (Ctrl-C seen), ``check()``."""

    def __init__(self) -> None:
        self.interrupted = False

    def check(self) -> None:
        """Raise ``KeyboardInterrupt`` if Ctrl-C was pressed (call it at safe points)."""
        if self.interrupted:
            raise KeyboardInterrupt


@contextlib.contextmanager
def interrupts(on_interrupt: Callable[[], None]) -> Iterator[Interrupts]:
    """Within the block, Ctrl-C calls ``on_interrupt()`` from a watchdog thread instead of
    raising ``KeyboardInterrupt`` wherever the main thread happens to be; the block then
    ends with ``KeyboardInterrupt`` (see the module docstring for why).

    Only active on the main thread and when SIGINT has Python's default handler; elsewhere
    (a worker thread, SIGINT ignored or handled by someone else) it changes nothing and
    ``on_interrupt`` is never called. Nesting is fine: the inner block does nothing.
    """
    state = Interrupts()
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield state
        return
    wake = _thread.allocate_lock()            # released by Ctrl-C, or when the block ends
    wake.acquire()

    def handler(signum, frame) -> None:       # runs in the main thread: touch nothing shared
        state.interrupted = True
        with contextlib.suppress(RuntimeError):   # already released: nothing more to do
            wake.release()

    def watchdog() -> None:
        wake.acquire()
        if state.interrupted:
            on_interrupt()

    dog = threading.Thread(target=watchdog, name="interrupt-watchdog", daemon=True)
    signal.signal(signal.SIGINT, handler)     # from here Ctrl-C never raises in this thread
    failure = None
    try:
        dog.start()
        yield state
    except BaseException as exc:
        failure = exc
        if not state.interrupted:
            raise
    finally:
        with contextlib.suppress(RuntimeError):   # send the watchdog home
            wake.release()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if dog.ident is not None:
            dog.join()
    if state.interrupted:
        interrupt = KeyboardInterrupt()
        for note in getattr(failure, "__notes__", []):   # e.g. which workers were abandoned
            interrupt.add_note(note)
        raise interrupt from None   # what the abort raised on its way out is noise here
