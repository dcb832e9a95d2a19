"""Running a group of worker threads the way every strategy needs it.

``WorkerGroup`` starts N threads, waits for them, and makes failure boring:

* the first exception in any worker is re-raised in the caller with its original traceback;
* the moment a worker fails (or the caller is interrupted) ``abort`` callbacks run, which
  break the strategy's barriers and unblock its queues, so no thread waits forever;
* every thread is joined before ``run`` returns or raises — none outlives the call.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Aborted(Exception):
    """Raised in a worker that was woken because the group is shutting down."""


class WorkerGroup:
    """Run ``target(k)`` for ``k in range(n)`` on ``n`` threads named ``f"{name}-{k}"``.

    ``on_abort`` callables (e.g. ``barrier.abort``) run once when a worker fails or the
    caller is interrupted. Workers raising ``threading.BrokenBarrierError`` or
    :class:`Aborted` after an abort are following it, not failing.
    """

    def __init__(self, n: int, target: Callable[[int], None], name: str = "worker",
                 on_abort: list[Callable[[], None]] | None = None):
        self.n, self.target, self.name = n, target, name
        self.on_abort = list(on_abort or [])
        self.stop = threading.Event()          # set when the group is shutting down
        self._errors: list[BaseException] = []
        self.cpu: dict[str, float] = {}        # thread name -> CPU seconds it used
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._main, args=(k,), name=f"{name}-{k}",
                                         daemon=True) for k in range(n)]

    def _main(self, k: int) -> None:
        c0 = time.thread_time()
        try:
            self.target(k)
        except (threading.BrokenBarrierError, Aborted):
            if not self.stop.is_set():       # broken without an abort: a real failure
                self.fail(RuntimeError(f"{self.name}-{k}: a barrier broke unexpectedly"))
        except BaseException as exc:  # noqa: BLE001 - every failure must reach the caller
            self.fail(exc)
        finally:
            self.cpu[threading.current_thread().name] = time.thread_time() - c0

    def fail(self, exc: BaseException) -> None:
        """Record ``exc`` (the first one wins) and shut the group down."""
        with self._lock:
            self._errors.append(exc)
        self.abort()

    def abort(self) -> None:
        """Wake every waiting worker (idempotent)."""
        with self._lock:
            if self.stop.is_set():
                return
            self.stop.set()
        for callback in self.on_abort:
            callback()

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def join(self) -> None:
        """Wait for all workers; re-raise the first worker error. Ctrl-C aborts the group,
        joins it, and re-raises ``KeyboardInterrupt``."""
        try:
            for t in self.threads:
                while t.is_alive():
                    t.join(0.05)             # short waits keep Ctrl-C responsive
        except BaseException:
            self.abort()
            for t in self.threads:
                t.join()
            raise
        self.raise_error()

    def raise_error(self) -> None:
        """Re-raise the first recorded worker error, if any."""
        if self._errors:
            raise self._errors[0]

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
        self.abort()
        for t in self.threads:
            t.join()
        if isinstance(exc, threading.BrokenBarrierError | Aborted):
            self.raise_error()
