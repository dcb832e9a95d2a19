"""Run one workload once on N threads (or N processes) and time it.

The rules every measurement here follows (DESIGN.md, "Measurement rules"):

* the threads are built and their data allocated first, then they start together at a
  ``threading.Barrier``, so thread start-up is not part of the time;
* each thread times itself: ``perf_counter`` for wall time and ``thread_time`` for the CPU
  time it got; the run's wall time is from the first start to the last end;
* the threads are a :class:`mtlearn.runtime.threads.WorkerGroup`: every one is joined
  before returning, on success and on error; an error in a worker breaks the barriers
  (nobody waits forever) and reaches the caller with its traceback.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import wait
from dataclasses import asdict, dataclass, field
from time import perf_counter, thread_time

from ..runtime import checks
from ..runtime.threads import WorkerGroup
from ..runtime.trace import Span, Tracer, no_span
from .workloads import Workload, get_workload


def check_counts(values, name: str) -> list[int]:
    """``values`` as a sorted list of distinct thread counts, always including 1 (the
    baseline every speedup is relative to); TypeError/ValueError naming ``name``."""
    return sorted(set(checks.counts(name, values)) | {1})


def check_work(work) -> float:
    """The amount of work of a run: a number > 0 (1.0 is about 0.2 s on one core)."""
    return checks.number("work", work, min=0, max=1000, min_open=True)


def split_units(total: int, n: int) -> list[int]:
    """``total`` units shared by ``n`` threads as evenly as possible (sizes differ by <= 1)."""
    q, r = divmod(total, n)
    return [q + (i < r) for i in range(n)]


def total_units(w: Workload, work: float) -> int:
    return max(1, round(w.units * work))


@dataclass
class Run:
    """One timed run: ``threads`` workers doing one fixed amount of work together.

    ``wall`` is from the first worker's start to the last one's end; ``thread_wall`` and
    ``cpu`` are each worker's own wall and CPU time (same order as ``spans``' thread names
    ``worker-0, worker-1, ...``; a 1-thread run is the serial baseline, on the calling
    thread); ``spans`` are filled when the run was traced, with times relative to the
    run's start.
    """

    threads: int
    wall: float
    thread_wall: list[float]
    cpu: list[float]
    units: list[int]
    spans: list[Span] = field(default_factory=list)

    @property
    def cpu_wall(self) -> list[float]:
        """Each worker's CPU time over the run's wall time (1 = it ran the whole time)."""
        return [c / self.wall if self.wall > 0 else 0.0 for c in self.cpu]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["spans"] = [list(s) for s in self.spans]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Run:
        return cls(**{**d, "spans": [Span(*s) for s in d.get("spans", [])]})


def run_threads(w: Workload, n: int, work: float = 1.0, params: dict | None = None,
                tracer: Tracer | None = None) -> Run:
    """Run workload ``w`` once on ``n`` threads, the total work split among them.

    ``n = 1`` is the baseline every speedup is relative to: the work runs serially on the
    calling thread, not on one worker thread (a worker thread can be slower at the same
    work, e.g. through its own malloc arena: DESIGN.md's measurement rules). Arguments are
    assumed checked (see :func:`mtlearn.bench.scaling`); BLAS limits are the caller's
    business.
    """
    params = params or {}
    units = total_units(w, work)
    shares = split_units(units, n) if w.split else [units] * n
    span = tracer.span if tracer is not None else no_span
    shared = w.make_shared(n) if w.make_shared else None
    tasks = [w.task(n, shared, span, params) for _ in range(n)]   # allocate before timing
    start = threading.Barrier(n)
    times: list = [None] * n

    def worker(k: int) -> None:
        start.wait()
        c0 = thread_time()
        t0 = perf_counter()
        tasks[k](shares[k])
        t1 = perf_counter()
        times[k] = (t0, t1, thread_time() - c0)

    if n == 1:
        worker(0)
    else:
        aborts = [start.abort] + ([shared.abort] if hasattr(shared, "abort") else [])
        WorkerGroup(n, worker, "worker", on_abort=aborts).run()
    return _make_run(n, times, shares, tracer)


def _make_run(n: int, times: list, shares: list[int], tracer: Tracer | None) -> Run:
    t_first = min(t[0] for t in times)
    spans = []
    if tracer is not None:
        spans = [Span(s.thread, s.kind, s.start - t_first, s.end - t_first, s.cpu)
                 for s in tracer.spans(relative=False)]
    return Run(threads=n, wall=max(t[1] for t in times) - t_first,
               thread_wall=[t[1] - t[0] for t in times], cpu=[t[2] for t in times],
               units=list(shares), spans=spans)


# ---------------------------------------------------------------------------- processes

START_MARGIN = 0.05   # seconds between handing out the tasks and the common start time


def process_share(name: str, params: dict, n: int, units: int, start_at: float):
    """One process's part of a run (executed in a pool worker, hence module-level).

    Processes cannot share a ``threading.Barrier``; they start at an agreed
    ``perf_counter`` time instead (a system-wide monotonic clock on Linux, macOS and
    Windows). Returns ``(start, end, cpu)``.
    """
    w = get_workload(name)
    if w.blas_threads is not None:
        from threadpoolctl import threadpool_limits
        threadpool_limits(limits=w.blas_threads, user_api="blas")   # this worker process only
    task = w.task(n, None, no_span, params)
    delay = start_at - perf_counter()
    if delay > 0:
        time.sleep(delay)
    c0 = thread_time()
    t0 = perf_counter()
    task(units)
    t1 = perf_counter()
    return t0, t1, thread_time() - c0


def process_pool(n: int):
    """A ``ProcessPoolExecutor`` of ``n`` workers. It uses ``forkserver`` where there is one
    (the default from Python 3.14 on POSIX), since forking a process that runs threads —
    a Jupyter kernel always does — can deadlock; ``spawn`` elsewhere."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    ctx = mp.get_context(method)
    if method == "forkserver":
        # The same preload as the process strategy (read once, when the server starts), so
        # whichever starts the server first, later workers need not import numpy again.
        ctx.set_forkserver_preload(["__main__", "mtlearn.parallel.process_worker", "mtlearn.nn"])
    return ProcessPoolExecutor(max_workers=n, mp_context=ctx)


def run_processes(pool, w: Workload, n: int, work: float = 1.0,
                  params: dict | None = None) -> Run:
    """Like :func:`run_threads` but on ``n`` workers of ``pool`` (which has at least ``n``)."""
    params = params or {}
    units = total_units(w, work)
    shares = split_units(units, n) if w.split else [units] * n
    start_at = perf_counter() + START_MARGIN
    futures = [pool.submit(process_share, w.name, params, n, s, start_at) for s in shares]
    wait(futures)                             # all finished before any error is raised
    times = [f.result() for f in futures]     # re-raises a worker's error
    return _make_run(n, times, shares, None)

