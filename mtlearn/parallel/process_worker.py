"""The worker side of the ``process`` strategy, and the shared arrays both sides use.

This module is what a worker process imports. Its entry point :func:`worker_main` is a
module-level function on purpose: with the ``spawn`` and ``forkserver`` start methods
(``forkserver`` is Python 3.14's default on Linux) a child process starts a fresh
interpreter and finds its target by importing it, so it cannot be a closure or a function
defined in a notebook.

The conversation with the parent goes through one ``multiprocessing.Pipe`` per worker::

    worker -> parent   ("ready", cpu)                       setup done
    parent -> worker   step number                          the batch is in shared memory
    worker -> parent   ("done", loss share, spans, cpu)     my gradient row is written
    parent -> worker   None                                 stop
    worker -> parent   ("error", phase, exception, text)    something raised (then exit)

The numbers themselves never travel through the pipe: parameters, gradients and the batch
live in :class:`SharedArrays`, which every process maps into its own memory.
"""

from __future__ import annotations

import contextlib
import gc
import pickle
import signal
import sys
import time
import traceback
from multiprocessing import shared_memory

import numpy as np
from threadpoolctl import threadpool_limits

# Python 3.13 added track=False: an attaching process need not register the segment with
# the resource tracker (only its creator, who unlinks it, should).
_ATTACH = {"track": False} if sys.version_info >= (3, 13) else {}


class SharedArrays:
    """Named numpy arrays, each in its own ``multiprocessing.shared_memory`` segment.

    The parent :meth:`create`\\ s them and hands :meth:`specs` to the workers, which
    :meth:`attach`; every process sees the same bytes. ``arrays[key]`` is this process's
    view. :meth:`close` drops the views and unmaps the segments; with ``unlink=True`` (the
    creator, once every worker has exited) it also deletes them from the system.
    """

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}
        self.segments: dict[str, shared_memory.SharedMemory] = {}

    def create(self, key: str, shape: tuple, dtype) -> np.ndarray:
        """A new zero-filled shared array ``arrays[key]`` of ``shape`` and ``dtype``."""
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape)) * dtype.itemsize
        seg = shared_memory.SharedMemory(create=True, size=max(nbytes, 1))
        self.segments[key] = seg
        self.arrays[key] = self._view(seg, shape, dtype)
        self.arrays[key][...] = 0
        return self.arrays[key]

    @classmethod
    def attach(cls, specs: dict) -> SharedArrays:
        """Map the arrays described by ``specs`` (from :meth:`specs`) in this process."""
        self = cls()
        try:
            for key, (name, shape, dtype) in specs.items():
                seg = shared_memory.SharedMemory(name=name, **_ATTACH)
                self.segments[key] = seg
                self.arrays[key] = self._view(seg, shape, np.dtype(dtype))
        except BaseException:
            self.close()
            raise
        return self

    @staticmethod
    def _view(seg, shape, dtype) -> np.ndarray:
        count = int(np.prod(shape))
        return np.frombuffer(seg.buf, dtype=dtype, count=count).reshape(shape)

    def specs(self) -> dict:
        """``{key: (segment name, shape, dtype string)}``: all a worker needs to attach."""
        return {key: (self.segments[key].name, a.shape, a.dtype.str)
                for key, a in self.arrays.items()}

    def names(self) -> list[str]:
        """The system names of the segments (e.g. files under ``/dev/shm`` on Linux)."""
        return [seg.name for seg in self.segments.values()]

    def close(self, unlink: bool = False) -> None:
        """Drop this process's views and mappings; ``unlink`` also deletes the segments.
        Safe to call twice. Views handed out elsewhere must be gone first (numpy arrays
        still pointing into a segment keep it mapped: ``BufferError``)."""
        self.arrays.clear()
        segments, self.segments = list(self.segments.values()), {}
        if unlink:                             # first, so no error below can skip it
            for seg in segments:
                with contextlib.suppress(FileNotFoundError):
                    seg.unlink()
        for seg in segments:
            try:
                seg.close()
            except BufferError:                # a view is kept alive by a reference cycle
                gc.collect()
                seg.close()


def worker_main(k: int, conn, payload: bytes, specs: dict, shard: tuple[int, int],
                blas_threads: int | None, trace: bool) -> None:
    """Entry point of worker process ``k``: attach, rebuild the model, serve steps.

    k : the worker's index; its gradient row is ``grads[k]``
    conn : its end of the pipe to the parent
    payload : ``pickle.dumps((model, loss))``
    specs : :meth:`SharedArrays.specs` of ``params``, ``grads``, ``x`` and ``y``
    shard : ``(lo, hi)``, this worker's rows of every batch
    blas_threads : BLAS threads in this process (1: processes, not BLAS, share the cores)
    trace : measure spans and send them with each reply
    """
    # Ctrl-C in a terminal reaches every process of the group; the parent alone decides
    # when to stop, and tells the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    c0 = time.process_time()
    shared = model = loss = None
    phase = "setup"
    try:
        limits = (threadpool_limits(limits=blas_threads, user_api="blas") if blas_threads
                  else contextlib.nullcontext())
        with limits:
            shared = SharedArrays.attach(specs)
            model, loss = pickle.loads(payload)
            model.use_buffer(shared.arrays["params"], copy=False)   # read the parent's updates
            conn.send(("ready", time.process_time() - c0))
            phase = "step"
            _serve(k, conn, model, loss, shared.arrays, shard, trace, c0)
    except BaseException as exc:  # noqa: BLE001 - every failure must reach the parent
        _send_error(conn, phase, exc)
    finally:
        model = loss = None                    # their arrays are views into the segments
        if shared is not None:
            shared.close()
        conn.close()


def _serve(k, conn, model, loss, arrays, shard, trace, c0) -> None:
    lo, hi = shard
    B = len(arrays["x"])
    weight = (hi - lo) / B                     # shard mean -> share of the batch mean
    xb, yb, grads = arrays["x"][lo:hi], arrays["y"][lo:hi], arrays["grads"][k]
    while True:
        t0, c_0 = time.perf_counter(), time.thread_time()
        try:
            if conn.recv() is None:
                return
        except EOFError:                       # the parent has gone: nothing left to do
            return
        t1, c_1 = time.perf_counter(), time.thread_time()
        value, _, _ = model.loss_and_grads(loss, xb, yb, grads=grads)
        grads *= weight
        t2, c_2 = time.perf_counter(), time.thread_time()
        spans = [("wait", t0, t1, c_1 - c_0), ("compute", t1, t2, c_2 - c_1)] if trace else []
        conn.send(("done", float(value) * weight, spans, time.process_time() - c0))


def _send_error(conn, phase: str, exc: BaseException) -> None:
    """Send the exception (pickled when it can be) and its formatted traceback."""
    text = "".join(traceback.format_exception(exc))
    try:
        blob = pickle.dumps(exc)
    except Exception:  # noqa: BLE001 - unpicklable exceptions still send their text
        blob = None
    with contextlib.suppress(OSError):         # the parent may be gone already
        conn.send(("error", phase, blob, text))
