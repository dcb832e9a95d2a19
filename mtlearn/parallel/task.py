"""``train_many``: task parallelism — several independent models trained at once.

The article's "one thread per model" (an RNN, an LSTM, ... each started on its own thread)
done soundly. Each job is a dict of :func:`parallel.train` arguments, run as ``train`` would
run it (``strategy="serial"`` unless the job says otherwise), on a thread of a pool::

    jobs = [dict(name="rnn", model=rnn, loss=mse, data=(X, y), epochs=3),
            dict(name="lstm", model=lstm, loss=mse, data=(X, y), epochs=3),
            dict(name="gru", model=gru, loss=mse, data=(X, y), epochs=3)]
    histories = parallel.train_many(jobs, threads=2)   # [History of rnn, of lstm, of gru]

    rnn   ─ compute ─ update ─ compute ─ update ───┤
    lstm  ─ compute ─── update ─ compute ─── update ───┤
    gru   ┄┄┄┄┄┄┄┄┄ wait for a free thread ┄┄┄┄┄┄┄┄┄┄┄ ─ compute ─ update ─ ...

What makes it sound:

* a **pool** of ``threads`` workers (``concurrent.futures.ThreadPoolExecutor``; by default
  one per core, at most one per job), not a thread per model: extra jobs wait their turn
  instead of fighting over the cores;
* every job has its **own model** — checked: two jobs updating one parameter vector would be
  a race, not a speed-up (they may share data, which they only read);
* **BLAS** is limited once, around the whole pool (``blas_threads``, one BLAS thread per
  Python thread by default): threadpoolctl's limit is process-wide for OpenBLAS, so the jobs
  run with ``blas_threads=None`` instead of each setting it from its own thread;
* every job is **checked before any starts**, so a mistake in the last job does not surface
  after the first ones trained for minutes;
* **errors**: the first job to fail cancels the others — jobs not started never start,
  running ones stop at their next step — every thread is joined, and its error is raised
  with its own traceback and a note naming the job. Ctrl-C stops everything the same way.

How much it helps depends, as always, on how much of each job's time is spent in numpy
code that releases the GIL: measure it. The result is the list of ``History`` in job order,
with ``trace``: every job's spans on one timeline, one row per job.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

from threadpoolctl import threadpool_limits

from ..runtime import checks
from ..runtime.threads import GRACE, POLL, interrupts
from ..runtime.trace import Span
from .api import prepare
from .history import History


class Histories(list):
    """The :class:`History` of every job, in job order (a plain ``list``), plus what the
    whole call measured.

    Attributes
    ----------
    names : list of str, the jobs' names (``"job-0"``, ... unless a job had a ``name``)
    threads : int, the size of the pool
    wall_time : float, seconds for the whole call
    trace : list of ``trace.Span`` on one clock (seconds since the call started), one row per
        job: the thread that ran job ``"lstm"`` is named ``"lstm"``, threads the job started
        itself ``"lstm/sync-0"`` and so on; a ``wait`` span from 0 shows how long a job
        waited for a free thread of the pool
    """

    def __init__(self, histories, names, threads: int, wall_time: float, trace: list[Span]):
        super().__init__(histories)
        self.names, self.threads = names, threads
        self.wall_time, self.trace = wall_time, trace

    def summary(self) -> str:
        """One line per job, and the total."""
        lines = [f"{len(self)} jobs on {self.threads} thread(s) in {self.wall_time:.3f} s"]
        for name, h in zip(self.names, self, strict=True):
            loss = f", loss {h.losses[0]:.4f} -> {h.losses[-1]:.4f}" if h.losses else ""
            lines.append(f"  {name}: {h.strategy} on {h.threads} thread(s), {h.steps} steps in "
                         f"{h.wall_time:.3f} s, started at {h.info['started']:.3f} s{loss}")
        return "\n".join(lines)


def train_many(jobs, threads: int | None = None, *, blas_threads: int | None = 1) -> Histories:
    """Train several independent models at once, each job on a thread of a pool.

    Parameters
    ----------
    jobs : list of dict
        Each dict holds :func:`parallel.train` keyword arguments — ``model``, ``loss``,
        ``data`` (required), ``strategy`` (default ``"serial"``), ``threads``, ``epochs``,
        ``lr``, ... — and optionally a ``name`` for the timeline (default ``"job-<i>"``).
        Every job needs its own model; ``blas_threads`` belongs to ``train_many``.
    threads : int >= 1, or None
        Size of the pool: how many jobs run at once (None: one per core, at most one per job).
    blas_threads : int >= 1, or None
        BLAS threads while the jobs run, set once for all (None leaves it alone).

    Returns a :class:`Histories`: the ``History`` of every job in job order (``history.info``
    gains ``job``, ``thread`` and ``started``, seconds after the call started) with the
    combined ``trace``. Every job is checked before any starts (``TypeError``/``ValueError``
    naming the job); the first job that fails stops the others and its error is raised.
    """
    names, runners = check_jobs(jobs)
    if threads is None:
        threads = min(len(runners), os.cpu_count() or 1)
    threads = checks.workers("threads", threads)
    if blas_threads is not None:
        blas_threads = checks.workers("blas_threads", blas_threads)
    limits = (threadpool_limits(limits=blas_threads, user_api="blas")
              if blas_threads else contextlib.nullcontext())
    ran_on = [""] * len(runners)               # the pool thread that ran each job
    futures: list = []
    failed: list[tuple[int, BaseException]] = []

    def stop_all() -> None:
        for f in futures:
            f.cancel()                         # jobs not started yet never start
        for runner in runners:
            runner.abort()                     # running ones stop now (or at their next step)

    def run_job(i: int) -> History:
        ran_on[i] = threading.current_thread().name
        try:
            return runners[i].run()
        except BaseException as exc:
            failed.append((i, exc))
            stop_all()
            raise

    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="train_many")
    with limits, interrupts(stop_all):
        t0 = time.perf_counter()
        try:
            for i in range(len(runners)):
                futures.append(pool.submit(run_job, i))
            pending = futures
            while pending and not failed:      # short waits: see runtime.threads.POLL
                _, pending = wait(pending, timeout=POLL, return_when=FIRST_EXCEPTION)
        finally:
            late: set = set()
            if failed or not all(f.done() for f in futures):
                stop_all()                     # an error or Ctrl-C: stop every job
                pool.shutdown(wait=False, cancel_futures=True)
                _, late = wait(futures, timeout=GRACE)   # each job's own grace, and ours
                if late and failed:
                    failed[0][1].add_note(f"train_many: {len(late)} job(s) still running "
                                          f"{GRACE:g} s after the stop were abandoned")
            if not late:
                pool.shutdown(wait=True)       # join the pool's threads
    wall_time = time.perf_counter() - t0       # the pool has joined its threads
    if failed:
        i, exc = failed[0]
        exc.add_note(f"raised by train_many's job {i} ({names[i]!r}); the others were stopped")
        raise exc

    histories = [f.result() for f in futures]
    trace = []
    for name, runner, h, thread in zip(names, runners, histories, ran_on, strict=True):
        started = runner.tracer.origin - t0    # the job's own clock started there
        h.info.update(job=name, thread=thread, started=started)
        trace.append(Span(name, "wait", 0.0, started, 0.0))
        trace += [s._replace(thread=name if s.thread == thread else f"{name}/{s.thread}",
                             start=s.start + started, end=s.end + started) for s in h.trace]
    trace.sort(key=lambda s: (s.start, s.thread))
    return Histories(histories, names, threads, wall_time, trace)


def check_jobs(jobs) -> tuple[list[str], list]:
    """Check every job and build its strategy object, starting nothing; returns the jobs'
    names and their runners."""
    if not isinstance(jobs, list | tuple):
        raise TypeError(f"jobs must be a list of dicts of parallel.train arguments, got "
                        f"{type(jobs).__name__}")
    if not jobs:
        raise ValueError("jobs must not be empty")
    names: list[str] = []
    runners = []
    owner: dict[int, int] = {}                 # id(model) -> index of the job using it
    for i, job in enumerate(jobs):
        if not isinstance(job, dict):
            raise TypeError(f"jobs[{i}] must be a dict of parallel.train arguments, got "
                            f"{type(job).__name__}")
        kwargs = dict(job)
        name = str(kwargs.pop("name", f"job-{i}"))
        where = f"jobs[{i}] ({name!r})"
        missing = [k for k in ("model", "loss", "data") if k not in kwargs]
        if missing:
            raise TypeError(f"{where}: missing {', '.join(missing)}")
        if "blas_threads" in kwargs:
            raise TypeError(f"{where}: blas_threads is set once for all jobs: pass it to "
                            "train_many (the BLAS limit is process-wide)")
        if name in names:
            raise ValueError(f"{where}: another job is already named {name!r}")
        j = owner.setdefault(id(kwargs["model"]), i)
        if j != i:
            raise ValueError(f"{where}: uses the same model as jobs[{j}]; each job needs its "
                             "own model (both would update one set of parameters at once)")
        try:
            runners.append(prepare(**kwargs, blas_threads=None))
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{where}: {exc}") from None
        names.append(name)
    return names, runners
