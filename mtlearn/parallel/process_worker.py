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
    worker -> parent   ("error", phase, exception, text, summary, notes)   raised; exits

The numbers themselves never travel through the pipe: parameters, gradients and the batch
live in :class:`SharedArrays`, which every process maps into its own memory.

A worker never outlives its parent (see "Lifetimes" in :mod:`.process` for the whole
design). Its part: a *watchdog* thread waits on the **lifeline**, a pipe whose write end only
the parent holds. Whenever the parent process ends — returns, crashes, SIGTERM, SIGKILL — the
kernel closes that end; the watchdog wakes, removes the shared-memory names if the parent
had not removed them yet (it does so once every worker is set up), and ends the process with
``os._exit`` at once, even while the main thread is in the middle of a long step. From the
first step on, Linux's ``PR_SET_PDEATHSIG`` also has the kernel SIGKILL the worker when its
parent goes: the backstop for a main thread that holds the GIL in one long C call, where the
watchdog thread cannot run.
"""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
import signal
import sys
import threading
import time
import traceback
from multiprocessing import connection, shared_memory

import numpy as np
from threadpoolctl import threadpool_limits

# Python 3.13 added track=False: an attaching process need not register the segment with
# the resource tracker (only its creator, who unlinks it, should).
_ATTACH = {"track": False} if sys.version_info >= (3, 13) else {}
#: exit code of a worker whose watchdog saw the parent go
ORPHANED = 70
_PR_SET_PDEATHSIG = 1                          # from <linux/prctl.h>


class SharedArrays:
    """Named numpy arrays, each in its own ``multiprocessing.shared_memory`` segment.

    The parent :meth:`create`\\ s them and hands :meth:`specs` to the workers, which
    :meth:`attach`; every process sees the same bytes. ``arrays[key]`` is this process's
    view. :meth:`unlink` removes the names from the system (the memory stays mapped in every
    process that attached, and is freed when the last one unmaps it); :meth:`close` drops the
    views and unmaps the segments.
    """

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}
        self.segments: dict[str, shared_memory.SharedMemory] = {}
        self.unlinked = False

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

    def unlink(self) -> None:
        """Remove the segments' names from the system (the creator's job; safe to repeat).
        Processes that attached keep their mappings; nothing is left behind once they end."""
        if self.unlinked:
            return
        self.unlinked = True
        for seg in self.segments.values():
            with contextlib.suppress(FileNotFoundError):
                seg.unlink()

    def close(self, unlink: bool = False) -> None:
        """Drop this process's views and unmap the segments (``unlink`` first removes their
        names, see :meth:`unlink`). Safe to call twice.

        Every numpy view of a segment must be gone by then: ``mmap`` refuses to unmap memory
        that an array still points into. A view kept only by a reference cycle is collected
        here; one that is still referenced raises ``BufferError`` naming the array — a bug
        to fix where the view is kept, never to be left for the interpreter to report at
        exit.
        """
        if unlink:                             # first, so no error below can skip it
            self.unlink()
        self.arrays.clear()
        segments, self.segments = self.segments, {}
        stuck = _close_all(segments)
        if stuck:
            gc.collect()
            stuck = _close_all(stuck)
        if stuck:
            self._stuck = stuck                # closed again (and reported) at exit otherwise
            raise BufferError(f"shared array(s) {sorted(stuck)} still have numpy views "
                              "alive after close(): drop every array, slice and model "
                              "parameter view of shared memory before closing it")


def _close_all(segments: dict) -> dict:
    """Close each segment; return those a live view still pins (``BufferError``)."""
    stuck = {}
    for key, seg in segments.items():
        try:
            seg.close()
        except BufferError:
            stuck[key] = seg
    return stuck


def unlink_segment(name: str) -> None:
    """Remove the shared-memory segment ``name`` from the system without attaching to it
    (POSIX ``shm_unlink``; nothing to do on Windows, where a segment ends with its last
    handle). A name already gone is fine."""
    try:
        import _posixshmem  # what multiprocessing.shared_memory uses
    except ImportError:
        return
    with contextlib.suppress(FileNotFoundError):
        _posixshmem.shm_unlink("/" + name)


def die_with_parent() -> None:
    """Linux: ask the kernel to SIGKILL this process when its parent ends
    (``prctl(PR_SET_PDEATHSIG)``); elsewhere, or if that fails, nothing."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)


class _Watchdog:
    """Ends this worker process the moment its parent is gone (see the module docstring).

    ``stepping`` is set once the first step arrives: by then the parent has removed the
    segment names itself, and the watchdog must not touch names that might, in theory,
    have been reused since.
    """

    def __init__(self, lifeline, names: list[str]):
        self.lifeline, self.names = lifeline, names
        self.stepping = threading.Event()
        threading.Thread(target=self._watch, name="parent-watchdog", daemon=True).start()

    def _watch(self) -> None:
        # The parent never writes to the lifeline: it becomes readable only at EOF, when the
        # parent's end is closed, which the kernel does when the parent process ends.
        with contextlib.suppress(OSError, ValueError):
            connection.wait([self.lifeline])
        if not self.stepping.is_set():
            for name in self.names:
                unlink_segment(name)
        os._exit(ORPHANED)


def worker_main(k: int, conn, lifeline, payload: bytes, specs: dict,
                shard: tuple[int, int], blas_threads: int | None, trace: bool) -> None:
    """Entry point of worker process ``k``: attach, rebuild the model, serve steps.

    k : the worker's index; its gradient row is ``grads[k]``
    conn : its end of the pipe to the parent
    lifeline : read end of the parent's lifeline pipe (EOF when the parent has ended)
    payload : ``pickle.dumps((model, loss))``
    specs : :meth:`SharedArrays.specs` of ``params``, ``grads``, ``x`` and ``y``
    shard : ``(lo, hi)``, this worker's rows of every batch
    blas_threads : BLAS threads in this process (1: processes, not BLAS, share the cores)
    trace : measure spans and send them with each reply
    """
    # Ctrl-C in a terminal reaches every process of the group; the parent alone decides
    # when to stop, and tells the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    watchdog = _Watchdog(lifeline, [name for name, _, _ in specs.values()])
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
            _serve(k, conn, model, loss, shared.arrays, shard, trace, c0, watchdog)
    except BaseException as exc:               # every failure must reach the parent
        _send_error(conn, phase, exc)
        # The traceback's frames hold views of the shared batch (a layer's input, the
        # worker's shard): let them go now, so that close() below can unmap the segments.
        traceback.clear_frames(exc.__traceback__)
    finally:
        model = loss = None                    # their arrays are views into the segments
        try:
            if shared is not None:
                shared.close()                 # BufferError if a view survived: exit code 1
        finally:
            conn.close()


def _serve(k, conn, model, loss, arrays, shard, trace, c0, watchdog) -> None:
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
        if not watchdog.stepping.is_set():     # the parent has removed the segment names
            watchdog.stepping.set()
            die_with_parent()
        t1, c_1 = time.perf_counter(), time.thread_time()
        value, _, _ = model.loss_and_grads(loss, xb, yb, grads=grads)
        grads *= weight
        t2, c_2 = time.perf_counter(), time.thread_time()
        spans = [("wait", t0, t1, c_1 - c_0), ("compute", t1, t2, c_2 - c_1)] if trace else []
        conn.send(("done", float(value) * weight, spans, time.process_time() - c0))


def _send_error(conn, phase: str, exc: BaseException) -> None:
    """Send the exception (pickled when it can be), its formatted traceback, its one-line
    summary and its notes (e.g. which layer raised it: ``nn.Sequential`` adds that), so
    that even an exception that cannot be pickled arrives with what it said."""
    text = "".join(traceback.format_exception(exc))
    try:
        headline = f"{type(exc).__name__}: {exc}"
    except Exception:                          # a broken __str__ must not hide the error
        headline = type(exc).__name__
    notes = [str(note) for note in getattr(exc, "__notes__", [])]
    try:
        blob = pickle.dumps(exc)
    except Exception:                          # unpicklable exceptions still send their text
        blob = None
    with contextlib.suppress(OSError):         # the parent may be gone already
        conn.send(("error", phase, blob, text, headline, notes))
