"""What every strategy shares: the run's configuration, the batch plan, optimizers, stopping.

A strategy is a class with a ``name``, a one-line ``description``, the ``options`` it
accepts (name -> default) and a ``train()`` method. ``Strategy.run()`` wraps it: BLAS
pinned to one thread per worker, the clock, the tracer, Ctrl-C handled safely (see
:func:`mtlearn.runtime.threads.interrupts`), and the ``History`` at the end.

How a run stops early, three ways, all ending at a step boundary or sooner:

* ``cancel`` (an Event the caller passes to ``train``, e.g. a dashboard's Stop button): the
  run stops at its next step and ``train`` *returns* the History so far, with
  ``history.cancelled = True``;
* an error in any thread, or Ctrl-C: :meth:`Strategy.abort` wakes every thread the run
  started (barriers broken, queues unblocked) and the error (or ``KeyboardInterrupt``)
  reaches the caller within about a second, even when a worker is stuck in a long step;
* ``train_many`` stopping its other jobs when one fails: :meth:`Strategy.abort` too.
"""

from __future__ import annotations

import contextlib
import functools
import math
import threading
import time
from collections.abc import Callable

import numpy as np
from threadpoolctl import ThreadpoolController, threadpool_limits

from .. import nn
from ..runtime import info
from ..runtime.threads import Aborted, WorkerGroup, interrupts
from ..runtime.trace import Tracer
from .config import RunConfig
from .history import History
from .prefetch import Prefetcher


class Cancelled(Exception):
    """Raised by ``record_step`` once the run's ``cancel`` event is set; ``run`` turns it
    into a normal return with ``history.cancelled = True``."""


def make_plan(n: int, batch_size: int, epochs: int, seed: int) -> list[np.ndarray]:
    """The index array of every step: each epoch a seeded permutation cut into full batches.

    **The rule for the last partial batch, everywhere in mtlearn:** it is dropped, so every
    step has exactly ``batch_size`` samples and every strategy (and every worker count)
    makes exactly the same steps; each epoch reshuffles, so no sample is left out for long.
    """
    rng = np.random.default_rng(seed)
    per_epoch = n // batch_size
    plan = []
    for _ in range(epochs):
        order = rng.permutation(n)
        plan.extend(order[i * batch_size:(i + 1) * batch_size] for i in range(per_epoch))
    return plan


def split_bounds(n: int, parts: int) -> list[tuple[int, int]]:
    """``[(lo, hi)]`` cutting ``range(n)`` into ``parts`` contiguous, near-equal pieces."""
    edges = [n * k // parts for k in range(parts + 1)]
    return list(zip(edges[:-1], edges[1:], strict=True))


@functools.cache
def blas_controller() -> ThreadpoolController:
    """One threadpoolctl controller per process (finding the libraries takes ~1 ms)."""
    return ThreadpoolController()


class Strategy:
    """Base class of the training strategies (see the module docstring).

    Built by :func:`parallel.api.prepare` from a checked :class:`RunConfig`; the config's
    fields are also available as attributes (``self.threads``, ``self.batch_size``, ...).
    """

    name = "base"
    description = ""
    options: dict = {}
    #: strategies that split each batch need batch_size >= threads
    splits_batch = True

    def __init__(self, model, loss, X, y, config: RunConfig | None = None, **fields):
        if config is None:           # keyword form, for strategies built outside prepare()
            options = {k: fields.pop(k) for k in list(fields) if k in type(self).options}
            config = RunConfig(strategy=self.name, options=options, **fields)
        self.config = config
        self.model, self.loss, self.X, self.y = model, loss, X, y
        self.threads, self.epochs, self.batch_size = config.threads, config.epochs, \
            config.batch_size
        self.lr, self.seed, self.prefetch = config.lr, config.seed, config.prefetch
        self.augment, self.optimizer_factory = config.augment, config.optimizer
        self.check_finite, self.blas_threads = config.check_finite, config.blas_threads
        self.opts = {**type(self).options, **config.options}
        self.tracer = Tracer(enabled=config.trace)
        self.plan = make_plan(len(X), config.batch_size, config.epochs, config.seed)
        self.steps_per_epoch = len(self.plan) // config.epochs
        self.history = History(self.name, config.threads, config=config.describe())
        self.cancel = config.cancel if config.cancel is not None else threading.Event()
        self.stopped = False                   # set by abort(): the run is being torn down
        self._on_abort: list[Callable[[], None]] = []
        self._abort_lock = threading.Lock()
        self._t0 = 0.0
        self._prefetcher: Prefetcher | None = None

    # -- pieces strategies use -----------------------------------------------------------
    def make_optimizer(self, params: np.ndarray) -> nn.Optimizer:
        """The optimizer for ``params`` (the whole flat vector or a slice of it): the
        ``optimizer`` factory given to ``train``, or plain SGD with ``lr`` (the one default
        optimizer of mtlearn). Optimizers work element-wise, so one per slice updates exactly
        as one for the whole vector."""
        if self.optimizer_factory is None:
            return nn.SGD(params, lr=self.lr)
        return self.optimizer_factory(params)

    def workers(self, n: int, target: Callable[[int], None], on_abort=(),
                name: str | None = None) -> WorkerGroup:
        """A :class:`WorkerGroup` of ``n`` threads named after the strategy, which
        :meth:`abort` shuts down along with everything else the run started."""
        group = WorkerGroup(n, self.in_worker(target), name or self.name,
                            on_abort=list(on_abort))
        self.on_abort(group.abort)
        return group

    def in_worker(self, target: Callable, keep: bool = False):
        """``target`` wrapped to run under this run's BLAS limit in the worker thread itself.

        ``run()`` sets the limit on the calling thread; with OpenBLAS built with pthreads that
        holds for the whole process, but OpenMP builds and MKL keep one limit per thread
        (``info.blas_limit_scope()``), so there each worker must set it too (cheap: ~0.1 ms).
        ``keep=True`` leaves the limit set when ``target`` returns (a pool thread's
        initializer).
        """
        if not self.blas_threads or info.machine_info()["blas_limit_scope"] != "thread":
            return target
        limit = self.blas_threads

        def limited(*args):
            limiter = blas_controller().limit(limits=limit, user_api="blas")
            if keep:
                return target(*args)
            with limiter:
                return target(*args)
        return limited

    def on_abort(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when the run is aborted (at once if it already was)."""
        with self._abort_lock:
            if not self.stopped:
                self._on_abort.append(callback)
                return
        callback()

    def abort(self) -> None:
        """Stop the run from any thread (not from a signal handler): every registered group
        and prefetcher is woken; the run ends with the error that caused the abort, or
        ``KeyboardInterrupt``, or :class:`Aborted`."""
        with self._abort_lock:
            if self.stopped:
                return
            self.stopped = True
            callbacks = list(self._on_abort)
        for callback in callbacks:
            callback()

    def batches(self):
        """Context manager giving an iterator over ``(xb, yb)`` for every step of the plan:
        from a :class:`Prefetcher` thread when ``prefetch > 0``, else loaded on demand."""
        if self.prefetch:
            prefetcher = Prefetcher(self.X, self.y, self.plan, self.prefetch, self.augment,
                                    self.seed, self.tracer)
            self.on_abort(prefetcher.abort)
            self._prefetcher = prefetcher          # its thread's CPU goes into the History
            return prefetcher
        return contextlib.nullcontext(self._load_each())

    def _load_each(self):
        rng = np.random.default_rng(self.seed)
        for idx in self.plan:
            with self.tracer.span("load"):
                xb, yb = self.X[idx], self.y[idx]
                if self.augment is not None:
                    xb = self.augment(xb, rng)
            yield xb, yb

    def record_step(self, loss: float) -> None:
        """Append one step's loss; stop on NaN/inf unless ``check_finite=False``; raise
        :class:`Cancelled` if ``cancel`` was set and :class:`Aborted` if the run was
        aborted; call the ``on_step``/``on_epoch`` callbacks. Every strategy calls this once
        a step (from the thread that finished the step)."""
        step = len(self.history.losses)
        if self.stopped:
            raise Aborted(f"{self.name}: stopped at step {step}")
        if self.cancel.is_set():
            raise Cancelled(f"{self.name}: cancelled at step {step}")
        self.history.losses.append(float(loss))
        self.history.step_times.append(time.perf_counter() - self._t0)
        if self.check_finite and not math.isfinite(loss):
            raise FloatingPointError(
                f"the loss is {loss} at step {step}: training diverged (the data were checked "
                "and are finite, so lower lr, or pass check_finite=False to go on)")
        config = self.config
        if config.on_step is not None:
            config.on_step(step + 1, float(loss))
        if config.on_epoch is not None and (step + 1) % self.steps_per_epoch == 0:
            config.on_epoch((step + 1) // self.steps_per_epoch, self.history)

    # -- the template --------------------------------------------------------------------
    def train(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def run(self) -> History:
        """Train, timed and traced; returns the :class:`History`."""
        limits = (threadpool_limits(limits=self.blas_threads, user_api="blas")
                  if self.blas_threads else contextlib.nullcontext())
        c0 = time.thread_time()
        h = self.history
        with limits, interrupts(self.abort):
            self._t0 = time.perf_counter()
            self.tracer.origin = self._t0
            try:
                self.train()
            except Cancelled:
                if self.stopped or not self.cancel.is_set():
                    raise
                h.cancelled = True
            except BaseException:
                self.abort()                   # whatever the strategy left running
                raise
            finally:
                h.wall_time = time.perf_counter() - self._t0
                h.thread_cpu = {"main": time.thread_time() - c0, **h.thread_cpu}
                if self._prefetcher is not None:
                    h.thread_cpu["prefetch"] = self._prefetcher.cpu
                h.trace = self.tracer.spans()
        return h
