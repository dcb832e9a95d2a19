"""What every strategy shares: argument checks, the batch plan, optimizers, the History.

A strategy is a class with a ``name``, a one-line ``description``, the ``options`` it
accepts (name -> default) and a ``train()`` method. ``Strategy.run()`` wraps it: BLAS
pinned to one thread per worker, the clock, the tracer, and the ``History`` at the end.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time

import numpy as np
from threadpoolctl import threadpool_limits

from .. import nn
from ..trace import Tracer
from .history import History
from .prefetch import Prefetcher


class Cancelled(Exception):
    """Raised by ``record_step`` once a run's ``cancel`` event is set (e.g. by ``train_many``
    when another job failed): the strategy then stops like on any other error."""


def check_int(name: str, value, minimum: int = 1) -> int:
    """``value`` as an int >= ``minimum``, or TypeError/ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def make_plan(n: int, batch_size: int, epochs: int, seed: int) -> list[np.ndarray]:
    """The index array of every step: each epoch a seeded permutation cut into full batches
    (a last partial batch is dropped, so every step has exactly ``batch_size`` samples)."""
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


class Strategy:
    """Base class of the training strategies (see the module docstring)."""

    name = "base"
    description = ""
    options: dict = {}
    #: strategies that split each batch need batch_size >= threads
    splits_batch = True

    def __init__(self, model, loss, X, y, *, threads=1, epochs=1, batch_size=64, lr=0.05,
                 seed=0, optimizer=None, prefetch=0, augment=None, check_finite=True,
                 trace=True, blas_threads=1, **options):
        self.model, self.loss, self.X, self.y = model, loss, X, y
        self.threads, self.epochs, self.batch_size = threads, epochs, batch_size
        self.lr, self.seed, self.prefetch, self.augment = lr, seed, prefetch, augment
        self.optimizer_factory = optimizer
        self.check_finite, self.blas_threads = check_finite, blas_threads
        self.opts = {**type(self).options, **options}
        self.tracer = Tracer(enabled=trace)
        self.plan = make_plan(len(X), batch_size, epochs, seed)
        self.history = History(self.name, threads)
        self.cancel = threading.Event()        # set from any thread: stop at the next step
        self._t0 = 0.0

    # -- pieces strategies use -----------------------------------------------------------
    def make_optimizer(self, params: np.ndarray) -> nn.Optimizer:
        """The optimizer for ``params`` (the whole flat vector or a slice of it): the
        ``optimizer`` factory given to ``train``, or plain SGD with ``lr``. Optimizers work
        element-wise, so one per slice updates exactly as one for the whole vector."""
        if self.optimizer_factory is None:
            return nn.SGD(params, lr=self.lr)
        return self.optimizer_factory(params)

    def batches(self):
        """Context manager giving an iterator over ``(xb, yb)`` for every step of the plan:
        from a :class:`Prefetcher` thread when ``prefetch > 0``, else loaded on demand."""
        if self.prefetch:
            return Prefetcher(self.X, self.y, self.plan, self.prefetch, self.augment,
                              self.seed, self.tracer)
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
        :class:`Cancelled` if ``cancel`` was set (every strategy calls this once a step)."""
        step = len(self.history.losses)
        if self.cancel.is_set():
            raise Cancelled(f"{self.name}: cancelled at step {step}")
        self.history.losses.append(float(loss))
        self.history.step_times.append(time.perf_counter() - self._t0)
        if self.check_finite and not math.isfinite(loss):
            raise FloatingPointError(f"the loss is {loss} at step {step}: training diverged "
                                     "(lower lr, or pass check_finite=False to go on)")

    # -- the template --------------------------------------------------------------------
    def train(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def run(self) -> History:
        """Train, timed and traced; returns the :class:`History`."""
        limits = (threadpool_limits(limits=self.blas_threads, user_api="blas")
                  if self.blas_threads else contextlib.nullcontext())
        c0 = time.thread_time()
        with limits:
            self._t0 = time.perf_counter()
            self.tracer.origin = self._t0
            try:
                self.train()
            finally:
                h = self.history
                h.wall_time = time.perf_counter() - self._t0
                h.thread_cpu = {"main": time.thread_time() - c0, **h.thread_cpu}
                h.trace = self.tracer.spans()
        return self.history
