"""Per-thread span recording: what each thread did, when, and how much CPU it got.

A *span* is one interval of one thread's life, labelled with a kind::

    Span(thread="worker-0", kind="compute", start=0.0012, end=0.0093, cpu=0.0079)

``start``/``end`` come from ``time.perf_counter`` and ``cpu`` from ``time.thread_time`` (the
CPU time this thread got during the span). CPU/wall near 1 means the thread was running;
well below 1 means it was waiting — for I/O, for another thread, or for the GIL. That ratio
is how the GIL becomes visible on a timeline.

Recording is cheap and needs no global lock: each thread appends to its own list (found
through ``threading.local``); the lists are registered once per thread, under a lock, and
only read when you ask for ``spans()``. Every span is recorded exactly once, in the thread
that ran it.

Kinds used across mtlearn: ``compute`` (CPU work), ``io`` (a blocking wait that releases the
GIL), ``wait`` (waiting for other threads: barriers, queues, locks); the training strategies
add their own (``forward``, ``backward``, ``reduce``, ``update``, ``load``).

    tracer = Tracer()
    with tracer.span("compute"):
        ...
    token = tracer.begin("io"); ...; tracer.end(token)
    @tracer.traced("forward")
    def forward(x): ...
    tracer.spans()      # list of Span, times relative to the tracer's origin, sorted by start
"""

from __future__ import annotations

import functools
import threading
from contextlib import nullcontext
from time import perf_counter, thread_time
from typing import NamedTuple

__all__ = ["Span", "Tracer", "no_span"]


class Span(NamedTuple):
    """One interval of one thread: ``(thread, kind, start, end, cpu)``, times in seconds."""

    thread: str
    kind: str
    start: float
    end: float
    cpu: float

    @property
    def wall(self) -> float:
        """Wall-clock length of the span."""
        return self.end - self.start

    @property
    def cpu_ratio(self) -> float:
        """CPU time over wall time: ~1 while running, ~0 while waiting."""
        return self.cpu / self.wall if self.wall > 0 else 0.0


class _SpanContext:
    """``with tracer.span(kind):`` — one small object per span, no lock."""

    __slots__ = ("_buf", "_kind", "_t0", "_c0")

    def __init__(self, buf: list, kind: str) -> None:
        self._buf, self._kind = buf, kind

    def __enter__(self):
        self._c0 = thread_time()
        self._t0 = perf_counter()
        return self

    def __exit__(self, *exc) -> bool:
        t1 = perf_counter()
        self._buf.append((self._kind, self._t0, t1, thread_time() - self._c0))
        return False


_NO_SPAN = nullcontext()


def no_span(kind: str):
    """The span of nothing: a context manager that records nothing, for code that takes a
    ``span(kind)`` function and runs untraced (``Tracer(enabled=False).span`` returns the
    same object)."""
    return _NO_SPAN


class Tracer:
    """Records spans from any number of threads; see the module docstring.

    Parameters
    ----------
    enabled : bool
        A disabled tracer records nothing and costs almost nothing, so code can call
        ``tracer.span(...)`` unconditionally.
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.origin = perf_counter()          # spans() reports times relative to this
        self._local = threading.local()
        self._lock = threading.Lock()         # taken once per thread, to register its buffer
        self._buffers: list[tuple[str, list]] = []   # (thread name, that thread's spans)
        self._named: dict[str, list] = {}            # buffers of spans added for a named thread

    # -- recording (hot path) -------------------------------------------------------------
    def _buffer(self) -> list:
        try:
            return self._local.buf
        except AttributeError:
            buf: list = []
            with self._lock:
                self._buffers.append((threading.current_thread().name, buf))
            self._local.buf = buf
            return buf

    def span(self, kind: str):
        """Context manager recording one span of ``kind`` in the calling thread."""
        if not self.enabled:
            return _NO_SPAN              # what no_span returns, without the call
        return _SpanContext(self._buffer(), kind)

    def begin(self, kind: str):
        """Start a span explicitly; pass the returned token to :meth:`end` in the same thread."""
        if not self.enabled:
            return None
        return (self._buffer(), kind, perf_counter(), thread_time())

    def end(self, token) -> None:
        """Finish a span started with :meth:`begin`."""
        if token is None:
            return
        t1, c1 = perf_counter(), thread_time()
        buf, kind, t0, c0 = token
        buf.append((kind, t0, t1, c1 - c0))

    def traced(self, kind: str):
        """Decorator: every call of the function is one span of ``kind``."""
        def decorate(fn):
            @functools.wraps(fn)
            def wrapper(*args, **kwargs):
                with self.span(kind):
                    return fn(*args, **kwargs)
            return wrapper
        return decorate

    def add(self, kind: str, start: float, end: float, cpu: float = 0.0,
            thread: str | None = None) -> None:
        """Record a span measured elsewhere (``perf_counter`` times), e.g. in another
        process; ``thread`` defaults to the calling thread."""
        if not self.enabled:
            return
        if thread is None:
            self._buffer().append((kind, start, end, cpu))
            return
        with self._lock:
            buf = self._named.get(thread)
            if buf is None:
                buf = self._named[thread] = []
                self._buffers.append((thread, buf))
            buf.append((kind, start, end, cpu))

    # -- reading ---------------------------------------------------------------------------
    def spans(self, relative: bool = True) -> list[Span]:
        """All spans recorded so far, sorted by start; times relative to :attr:`origin`
        unless ``relative=False`` (raw ``perf_counter`` values)."""
        with self._lock:
            buffers = [(name, list(buf)) for name, buf in self._buffers]
        t0 = self.origin if relative else 0.0
        out = [Span(name, kind, start - t0, end - t0, cpu)
               for name, buf in buffers for kind, start, end, cpu in buf]
        out.sort(key=lambda s: (s.start, s.thread))
        return out

    def __len__(self) -> int:
        with self._lock:
            return sum(len(buf) for _, buf in self._buffers)

    def threads(self) -> list[str]:
        """Names of the threads that recorded spans, in the order they first did."""
        with self._lock:
            names = [name for name, _ in self._buffers]
        return list(dict.fromkeys(names))

    def totals(self) -> dict[tuple[str, str], dict[str, float]]:
        """``{(thread, kind): {"wall", "cpu", "count"}}`` summed over spans (for bar charts)."""
        out: dict[tuple[str, str], dict[str, float]] = {}
        for s in self.spans():
            t = out.setdefault((s.thread, s.kind), {"wall": 0.0, "cpu": 0.0, "count": 0})
            t["wall"] += s.wall
            t["cpu"] += s.cpu
            t["count"] += 1
        return out

    def clear(self) -> None:
        """Forget every span and restart the clock (not while threads are recording)."""
        with self._lock:
            for _, buf in self._buffers:
                buf.clear()
        self.origin = perf_counter()

    def to_dict(self) -> dict:
        """Plain data for JSON: ``{"origin": float, "spans": [[thread, kind, start, end, cpu]]}``
        with relative times."""
        return {"origin": self.origin, "spans": [list(s) for s in self.spans()]}

    @staticmethod
    def spans_from_dict(d: dict) -> list[Span]:
        """The spans back from :meth:`to_dict` output."""
        return [Span(*s) for s in d["spans"]]

    def __repr__(self) -> str:
        return f"Tracer({len(self)} spans from {len(self.threads())} threads)"
