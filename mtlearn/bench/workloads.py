"""The GIL lab's workloads: one kind of work each, a fixed total amount split across threads.

Each workload is a plain function doing ``units`` units of work (read those first), plus a
:class:`Workload` entry saying how many units make one run (about 0.2 s on one core of a
2020s laptop at ``work=1.0``) and what happens to the GIL while it runs:

==============  ===================================================  ==========================
name            one unit of work                                     the GIL
==============  ===================================================  ==========================
``python``      1,000 iterations of integer arithmetic in bytecode   held throughout
``numpy``       a chain of 4 ufuncs over one 32,768-element array    released inside each call
``numpy_small`` the same chain over 2,048 arrays of 16 elements      held (< 500 elements)
``matmul``      one 256 x 256 float64 GEMM, BLAS pinned to 1 thread  released inside BLAS
``io``          a 1 ms blocking wait (``time.sleep``)                released while waiting
``mixed``       one synchronous step: Python work, then a wait       held for a fraction s
==============  ===================================================  ==========================

numpy releases the GIL only around loops longer than 500 elements (and BLAS calls), so
``numpy`` and ``numpy_small`` do the same arithmetic with opposite results. Every thread
gets its own arrays: threads never write to shared memory here.

``mixed`` is the one workload that is not split by units: every thread runs every step,
doing 1/N of each step's Python work and 1/N of its waiting, and the threads meet at a
barrier before each step — like synchronous data-parallel training. With the GIL, the
Python parts queue up one after another, so a step takes ``s + (1 - s)/N`` of its
one-thread time: Amdahl's law with serial fraction ``s = serial_fraction``.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..runtime import checks

# ---------------------------------------------------------------------------- the work


def python_loop(units: int) -> int:
    """``units`` x 1,000 iterations of integer arithmetic, all Python bytecode.

    On a normal build the thread holds the GIL the whole time (it only lets go every
    switch interval), so two threads take as long as one doing both halves.
    """
    total = 0
    for i in range(units * 1000):
        total += i * i % 7
    return total


NUMPY_ELEMENTS = 32_768          # per unit, for both numpy workloads
SMALL_ARRAY = 16                 # elements per array in numpy_small (< 500: GIL held)


def ufunc_chain(np, a, out) -> None:
    """The arithmetic both numpy workloads do: ``out = sin(sqrt(a * 1.0001 + 0.5))``,
    four ufunc calls writing in place (``out=``), so nothing is allocated. ``np`` is the
    numpy module, passed in: this file imports numpy only when a numpy workload runs."""
    np.multiply(a, 1.0001, out=out)
    np.add(out, 0.5, out=out)
    np.sqrt(out, out=out)
    np.sin(out, out=out)


def numpy_large(elements: int = NUMPY_ELEMENTS) -> Callable[[int], None]:
    """A kernel doing ``units`` ufunc chains over one array of ``elements`` float64.

    Each ufunc loop over more than 500 elements runs with the GIL released, so threads
    overlap except for a microsecond of Python per call. The arrays (2 x 256 KiB) are
    this thread's own and fit in its core's cache.
    """
    import numpy as np

    a = np.linspace(0.0, 1.0, elements)
    out = np.empty_like(a)

    def kernel(units: int) -> None:
        for _ in range(units):
            ufunc_chain(np, a, out)
    return kernel


def numpy_tiny(elements: int = NUMPY_ELEMENTS, size: int = SMALL_ARRAY) -> Callable[[int], None]:
    """The same ``elements`` per unit as :func:`numpy_large`, in arrays of ``size``.

    Each call now costs more Python (argument parsing, dispatch) than arithmetic, and
    loops this short never release the GIL: numpy in tiny arrays behaves like Python.
    """
    import numpy as np

    arrays = [np.linspace(0.0, 1.0, size) for _ in range(elements // size)]
    outs = [np.empty_like(a) for a in arrays]

    def kernel(units: int) -> None:
        for _ in range(units):
            for a, out in zip(arrays, outs, strict=True):
                ufunc_chain(np, a, out)
    return kernel


def gemm(size: int = 256) -> Callable[[int], None]:
    """A kernel doing ``units`` float64 matrix products ``C = A @ B`` of ``size`` x ``size``.

    BLAS releases the GIL for the whole product. How many threads BLAS itself uses is
    set by the caller (:func:`mtlearn.bench.blas_threads`): the scaling runs pin it to 1
    so that N Python threads use N cores, not N x (BLAS threads).
    """
    import numpy as np

    rng = np.random.default_rng(0)
    a, b = rng.random((size, size)), rng.random((size, size))
    c = np.empty((size, size))

    def kernel(units: int) -> None:
        for _ in range(units):
            np.matmul(a, b, out=c)
    return kernel


IO_WAIT = 0.001                  # seconds per io unit


def io_wait(units: int, seconds: float = IO_WAIT) -> None:
    """``units`` blocking waits of ``seconds`` each, standing in for a disk or network read.

    ``time.sleep`` releases the GIL and uses no CPU, so threads overlap fully — even more
    threads than cores.
    """
    for _ in range(units):
        time.sleep(seconds)


_PY_RATE: list[float] = []       # python_loop units per second on this interpreter, measured once


def python_rate() -> float:
    """How many :func:`python_loop` units per second one thread runs here (measured once
    per process, ~20 ms; ``mixed`` uses it to turn a fraction of time into iterations).

    Timed with the thread's CPU clock, so a busy machine (which takes the core away now and
    then) does not make the rate look low and ``mixed`` run less Python than it should."""
    if not _PY_RATE:
        python_loop(20)                      # warm up
        times = []
        for _ in range(3):
            c0 = time.thread_time()
            python_loop(100)
            times.append(time.thread_time() - c0)
        _PY_RATE.append(100 / max(statistics.median(times), 1e-9))
    return _PY_RATE[0]


def mixed_steps(n_threads: int, barrier: threading.Barrier | None, span,
                serial_fraction: float = 0.5, step_seconds: float = 0.02
                ) -> Callable[[int], None]:
    """One thread's part of the ``mixed`` workload: a kernel running ``steps`` steps.

    In each step the thread waits for the others at ``barrier`` (span ``wait``), runs its
    1/N share of ``serial_fraction x step_seconds`` of Python (span ``compute``, holds the
    GIL), then its 1/N share of the rest as a blocking wait (span ``io``, releases it).
    ``barrier`` is None in a process pool, where every process has its own GIL anyway.
    """
    py_units = serial_fraction * step_seconds * python_rate() / n_threads
    iterations = round(py_units * 1000)
    wait = (1.0 - serial_fraction) * step_seconds / n_threads

    def kernel(steps: int) -> None:
        for _ in range(steps):
            if barrier is not None:
                with span("wait"):
                    barrier.wait()
            with span("compute"):
                total = 0
                for i in range(iterations):      # python_loop's body, by iterations
                    total += i * i % 7
            if wait > 0:
                with span("io"):
                    time.sleep(wait)
    return kernel


# ---------------------------------------------------------------------------- the registry


@dataclass(frozen=True)
class Workload:
    """A named workload: what one unit is, how many make one run, and how to build one
    thread's kernel.

    For the workloads that ``split`` their units among the threads, ``make(**params)``
    returns ``kernel(units)`` with the thread's own buffers, and :meth:`task` runs it a
    ``chunk`` of units at a time, one span of ``kind`` per chunk. ``mixed`` (``split`` is
    False) gets ``make(n_threads, shared, span, **params)`` and records its own spans;
    ``make_shared(n_threads)`` builds what its threads share (a barrier).
    """

    name: str
    summary: str                 # one line, for tables
    gil: str                     # "held", "released" or "mixed"
    unit: str                    # what one unit is
    units: int                   # units in one run at work=1.0
    make: Callable[..., Callable[[int], object]]
    chunk: int = 1               # units per traced span
    kind: str = "compute"        # span kind of its chunks
    needs_numpy: bool = False
    cpu_bound: bool = True                    # needs a core per thread to scale
    blas_threads: int | None = None           # pin BLAS to this many threads while it runs
    split: bool = True
    params: dict = field(default_factory=dict)   # tunable parameters and their defaults
    bounds: dict = field(default_factory=dict)   # parameter -> (lowest, highest) allowed
    make_shared: Callable[[int], object] | None = None

    def check_params(self, params: dict) -> dict:
        """``params`` merged over the defaults; ValueError for unknown ones or out of range,
        TypeError for a value that is not a number."""
        unknown = sorted(set(params) - set(self.params))
        if unknown:
            allowed = ", ".join(self.params) or "no parameters"
            raise ValueError(f"workload {self.name!r} got unknown parameter(s) {unknown}; "
                             f"it takes {allowed}")
        merged = {**self.params, **params}
        for name, (low, high) in self.bounds.items():
            merged[name] = checks.number(name, merged[name], min=low, max=high)
        return merged

    def task(self, n_threads: int, shared, span, params: dict) -> Callable[[int], None]:
        """One thread's ``task(units)``, built (buffers allocated) before any timing."""
        if not self.split:
            return self.make(n_threads, shared, span, **params)
        return chunked(self.make(**params), self.chunk, self.kind, span)


def chunked(kernel: Callable[[int], object], chunk: int, kind: str, span):
    """``kernel`` run ``chunk`` units at a time, one span per chunk."""
    def task(units: int) -> None:
        done = 0
        while done < units:
            c = min(chunk, units - done)
            with span(kind):
                kernel(c)
            done += c
    return task


WORKLOADS: dict[str, Workload] = {w.name: w for w in [
    Workload("python", "pure-Python loop", "held", "1,000 loop iterations", 5000,
             lambda: python_loop, chunk=50),
    Workload("numpy", "ufuncs on 32k-element arrays", "released",
             "4 ufuncs over 32,768 float64", 1200, numpy_large, chunk=16, needs_numpy=True),
    Workload("numpy_small", "the same ufuncs on 16-element arrays", "held",
             "4 ufuncs over 2,048 x 16 float64", 80, numpy_tiny, needs_numpy=True),
    Workload("matmul", "256x256 GEMMs, BLAS at 1 thread", "released",
             "one 256x256 float64 matmul", 480, gemm, chunk=8, needs_numpy=True,
             blas_threads=1),
    Workload("io", "1 ms blocking waits", "released", "one 1 ms sleep", 200,
             lambda: io_wait, chunk=5, kind="io", cpu_bound=False),
    Workload("mixed", "per step: Python share s, then a wait", "mixed",
             "one 20 ms synchronous step", 10, mixed_steps, split=False, cpu_bound=False,
             params={"serial_fraction": 0.5, "step_seconds": 0.02},
             bounds={"serial_fraction": (0.0, 1.0), "step_seconds": (1e-4, 10.0)},
             make_shared=threading.Barrier),
]}


def get_workload(name) -> Workload:
    """The :class:`Workload` called ``name`` (or ``name`` itself if it is one)."""
    if isinstance(name, Workload):
        return name
    return WORKLOADS[checks.choice("workload", name, WORKLOADS)]


def numpy_available() -> bool:
    """True when numpy can be imported in this interpreter (the numpy workloads need it)."""
    try:
        import numpy  # noqa: F401
    except ImportError:
        return False
    return True
