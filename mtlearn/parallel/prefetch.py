"""Event-driven data loading: a producer thread fills a bounded queue with ready batches.

While the trainer computes step ``s``, the producer gathers (and, optionally, augments)
the batches for steps ``s+1 .. s+depth``. ``queue.Queue(maxsize=depth)`` is the whole
protocol: ``put`` blocks when the consumer is behind, ``get`` blocks when the producer is;
an ``Event`` tells the producer to stop, and a sentinel tells the consumer the data ended.
Gathering ``X[idx]`` is a numpy copy that releases the GIL, so it really overlaps.
"""

from __future__ import annotations

import queue
import threading
import time

import numpy as np

from ..runtime.threads import Aborted, get
from ..runtime.trace import no_span

_END = object()
_ABORTED = object()   # put by abort(): the consumer stops at once


class Prefetcher:
    """Iterate over ``(xb, yb)`` for each index array of ``plan``, prepared ``depth`` ahead.

    Parameters
    ----------
    X, y : arrays (N, ...) and (N,)
    plan : list of integer index arrays, one per step
    depth : int >= 1, how many batches may wait in the queue
    augment : optional ``augment(xb, rng) -> xb`` run in the producer (e.g.
        :func:`random_shift`); ``seed`` seeds its Generator
    tracer : optional ``trace.Tracer``; the producer records ``load`` spans

    Use as a context manager (``with Prefetcher(...) as batches: for xb, yb in batches``):
    leaving the block stops and joins the producer even if the consumer stops early.
    """

    def __init__(self, X, y, plan, depth: int = 2, augment=None, seed: int = 0, tracer=None):
        if not isinstance(depth, int) or depth < 1:
            raise ValueError(f"prefetch depth must be an int >= 1, got {depth!r}")
        self.X, self.y, self.plan, self.depth = X, y, plan, depth
        self.augment, self.seed, self.tracer = augment, seed, tracer
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name="prefetch", daemon=True)
        self.cpu = 0.0

    def _span(self, kind):
        return self.tracer.span(kind) if self.tracer is not None else no_span(kind)

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        rng = np.random.default_rng(self.seed)
        c0 = time.thread_time()
        try:
            for idx in self.plan:
                with self._span("load"):
                    xb, yb = self.X[idx], self.y[idx]
                    if self.augment is not None:
                        xb = self.augment(xb, rng)
                if not self._put((xb, yb)):
                    return
            self._put(_END)
        except BaseException as exc:  # every failure is handed to the consumer
            self._put(exc)
        finally:
            self.cpu = time.thread_time() - c0     # CPU seconds of the producer thread

    def __iter__(self):
        while True:
            item = get(self._queue)
            if item is _END:
                return
            if item is _ABORTED:
                raise Aborted("prefetch: the run was stopped")
            if isinstance(item, BaseException):
                raise item
            yield item

    def start(self) -> Prefetcher:
        self._thread.start()
        return self

    def abort(self) -> None:
        """Stop the producer and wake a consumer waiting for a batch (from any thread)."""
        self._stop.set()
        try:
            self._queue.put_nowait(_ABORTED)
        except queue.Full:                  # the consumer is not waiting: it has batches
            pass

    def close(self) -> None:
        """Stop the producer and wait for it (safe to call twice)."""
        self._stop.set()
        while True:                         # unblock a producer stuck in put()
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        if self._thread.is_alive():
            self._thread.join()

    def __enter__(self) -> Prefetcher:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


def random_shift(max_shift: int = 2):
    """Augmentation for images ``(N, C, H, W)``: shift each image by up to ``max_shift``
    pixels in each direction (zeros enter at the border). Returns ``augment(xb, rng)``."""
    if not isinstance(max_shift, int) or max_shift < 0:
        raise ValueError(f"max_shift must be an int >= 0, got {max_shift!r}")

    def augment(xb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        n, _, h, w = xb.shape
        m = max_shift
        padded = np.zeros((n, xb.shape[1], h + 2 * m, w + 2 * m), dtype=xb.dtype)
        padded[:, :, m:m + h, m:m + w] = xb
        dy, dx = rng.integers(0, 2 * m + 1, size=(2, n))
        out = np.empty_like(xb)
        for i in range(n):
            out[i] = padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w]
        return out
    return augment
