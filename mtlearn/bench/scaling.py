"""Scaling runs: the same fixed work on 1, 2, 4... threads, and what the speedup tells us.

``scaling("python", threads=[1, 2, 4])`` times a workload at each thread count (median of
``repeats``, with min and max) and returns a :class:`ScalingResult`: speedup over the
1-thread run — the work done serially on the calling thread, in the same rounds —,
efficiency, and each thread's CPU time next to the wall time. ``result.amdahl()`` fits
Amdahl's serial fraction ``s`` to the speedups and ``result.usl()`` the Universal
Scalability Law's σ and κ (the laws: :mod:`.laws`). ``traced_run("python", threads=2)`` is
one run with every thread's spans recorded, for a timeline figure.
"""

from __future__ import annotations

import statistics
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field

from ..runtime import checks, info
from ..runtime.laws import AmdahlFit, USLFit, fit_amdahl, fit_usl
from ..runtime.trace import Tracer
from .blas import blas_threads
from .machine import build_info
from .runner import Run, check_counts, check_work, process_pool, run_processes, run_threads
from .workloads import WORKLOADS, Workload, get_workload, numpy_available

# ---------------------------------------------------------------------------- results


@dataclass
class ScalingResult:
    """Timings of one workload at several thread (or process) counts.

    Every list is aligned with ``threads`` (which always starts at 1). ``seconds`` is the
    median wall time over ``repeats`` (``seconds_min``/``seconds_max`` the spread,
    ``walls`` every repeat); ``speedup = seconds[0] / seconds`` and ``efficiency =
    speedup / threads``. From the median run: ``cpu_per_thread`` (each thread's CPU time),
    ``cpu_seconds`` (their sum) and ``cpu_wall`` (the threads' mean CPU time over the wall
    time: about 1/N for N threads taking turns on the GIL, about 1 when they truly run in
    parallel, near 0 while they wait). ``mode`` is ``"threads"`` or ``"processes"``;
    ``startup`` is the time to start the process pool (0 for threads).
    """

    workload: str
    mode: str
    threads: list[int]
    seconds: list[float]
    seconds_min: list[float]
    seconds_max: list[float]
    speedup: list[float]
    efficiency: list[float]
    cpu_seconds: list[float]
    cpu_per_thread: list[list[float]]
    cpu_wall: list[float]
    walls: list[list[float]]
    repeats: int
    work: float
    units: int
    params: dict = field(default_factory=dict)
    cores: int = 1
    python: str = ""
    free_threaded_build: bool = False
    gil_enabled: bool = True
    startup: float = 0.0

    def _points(self, upto: int | None) -> tuple[list[int], list[float]]:
        pts = [(n, S) for n, S in zip(self.threads, self.speedup, strict=True)
               if upto is None or n <= upto]
        return [n for n, _ in pts], [S for _, S in pts]

    def amdahl(self, upto: int | None = None) -> AmdahlFit:
        """Fit Amdahl's law to the speedups, using thread counts up to ``upto`` (default:
        all). CPU-bound work cannot go faster than the core count, whatever its serial
        fraction: fit with ``upto=result.cores`` to read ``s`` from those points alone."""
        return fit_amdahl(*self._points(upto))

    def usl(self, upto: int | None = None) -> USLFit:
        """Fit the Universal Scalability Law (σ, κ) to the speedups at counts up to
        ``upto`` (default: all; the USL's κ is what makes a curve turn down, so the counts
        past the peak are what it needs)."""
        return fit_usl(*self._points(upto))

    def at(self, n: int) -> dict:
        """Every per-count value at ``n`` threads, as a dict."""
        i = self.threads.index(n)
        keys = ("seconds", "seconds_min", "seconds_max", "speedup", "efficiency",
                "cpu_seconds", "cpu_per_thread", "cpu_wall", "walls")
        return {"threads": n, **{k: getattr(self, k)[i] for k in keys}}

    def table(self) -> str:
        """A small text table, one line per thread count."""
        w = WORKLOADS[self.workload].summary if self.workload in WORKLOADS else "custom"
        build = "free-threaded" if self.free_threaded_build else "GIL build"
        head = (f"{self.workload} ({w}) on {self.mode}; Python {self.python} {build}, "
                f"GIL {'on' if self.gil_enabled else 'off'}, {self.cores} cores")
        lines = [head, f"{self.mode:>9}  {'seconds':>7}  {'(min-max)':<15}  speedup  "
                       f"efficiency  CPU/wall per thread"]
        for i, n in enumerate(self.threads):
            lines.append(f"{n:>9}  {self.seconds[i]:7.3f}  "
                         f"({self.seconds_min[i]:.3f}-{self.seconds_max[i]:.3f})  "
                         f"{self.speedup[i]:6.2f}x  {self.efficiency[i]:10.0%}  "
                         f"{self.cpu_wall[i]:.2f}")
        if len(self.threads) > 1:
            fit = self.amdahl()
            lines.append(f"Amdahl fit: serial fraction s = {fit.serial_fraction:.2f} "
                         f"({fit.limit})")
            u = self.usl()
            peak = (f"peak {u.peak_speedup:.2f}x at {u.peak_threads:.1f} threads"
                    if u.kappa > 0 else "no peak")
            lines.append(f"USL fit: σ = {u.sigma:.3f}, κ = {u.kappa:.4f} ({peak})")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ScalingResult:
        return cls(**d)


# ---------------------------------------------------------------------------- running


def check_workload(workload, params: dict) -> tuple[Workload, dict]:
    """The workload and its full parameters, or ValueError; RuntimeError when it needs
    numpy and this interpreter has none."""
    w = get_workload(workload)
    params = w.check_params(params)
    if w.needs_numpy and not numpy_available():
        raise RuntimeError(f"workload {w.name!r} needs numpy, which this Python cannot import")
    return w, params


def scaling(workload: str = "python", threads=(1, 2, 4), repeats: int = 3, *,
            work: float = 1.0, processes: bool = False, warmup: bool = True,
            progress=None, **params) -> ScalingResult:
    """Time ``workload`` on each number of ``threads``, the same total work every time.

    Parameters
    ----------
    workload : str
        One of ``bench.WORKLOADS``: ``python``, ``numpy``, ``numpy_small``, ``matmul``,
        ``io``, ``mixed``.
    threads : list of int
        Thread counts; 1 is always added: the serial run on the calling thread that
        every speedup is relative to.
    repeats : int
        Timed runs per count; the thread counts are interleaved round by round, so a
        noisy neighbour slows all counts alike.
    work : float
        Scale of the fixed total work; 1.0 is about 0.2 s on one core.
    processes : bool
        Run the same shares in a pool of processes instead (each has its own GIL; the
        pool's start-up is reported as ``startup``, not timed).
    warmup : bool
        One untimed run at the largest count first.
    progress : callable, optional
        ``progress(fraction, text)``, called between runs from the calling thread; it may
        raise to stop the experiment (dashboards do).
    **params
        The workload's parameters, e.g. ``serial_fraction=0.3`` for ``mixed``.

    Every argument is checked (ValueError naming it) before any thread starts. The
    ``matmul`` workload runs with BLAS pinned to 1 thread, set before the threads start.
    """
    w, params = check_workload(workload, params)
    counts = check_counts(threads, "threads")
    repeats = checks.integer("repeats", repeats, min=1)
    work = check_work(work)
    processes = checks.boolean("processes", processes)
    warmup = checks.boolean("warmup", warmup)
    progress = checks.function("progress", progress, optional=True)
    pin = blas_threads(w.blas_threads) if w.blas_threads and not processes else nullcontext()
    runs: dict[int, list[Run]] = {n: [] for n in counts}
    total = repeats * len(counts) + bool(warmup)
    done = 0
    startup = 0.0

    def step(text: str) -> None:
        if progress is not None:
            progress(done / total, text)

    pool_cm = nullcontext()
    if processes:
        t0 = time.perf_counter()
        pool_cm = process_pool(max(counts))
    with pool_cm as pool, pin:
        if processes:
            # Start every worker (they start lazily) and import the workload in each.
            run_processes(pool, w, max(counts), min(work, 0.05), params)
            startup = time.perf_counter() - t0

        def once(n: int, scale: float) -> Run:
            if processes:
                return run_processes(pool, w, n, scale, params)
            return run_threads(w, n, scale, params)

        if warmup:
            step(f"{w.name}: warm-up")
            once(max(counts), work * 0.25)
            done += 1
        for r in range(repeats):
            for n in counts:
                step(f"{w.name}: {n} {'processes' if processes else 'threads'}, "
                     f"repeat {r + 1}/{repeats}")
                runs[n].append(once(n, work))
                done += 1
    if progress is not None:
        progress(1.0, f"{w.name}: done")
    return _summarise(w, counts, runs, repeats, work, params, processes, startup)


def _summarise(w: Workload, counts: list[int], runs: dict[int, list[Run]], repeats: int,
               work: float, params: dict, processes: bool, startup: float) -> ScalingResult:
    seconds, mins, maxs, cpu, per_thread, cpu_wall, walls = [], [], [], [], [], [], []
    for n in counts:
        ws = [r.wall for r in runs[n]]
        med = statistics.median(ws)
        mid = min(runs[n], key=lambda r: abs(r.wall - med))    # the run nearest the median
        seconds.append(med)
        mins.append(min(ws))
        maxs.append(max(ws))
        walls.append(ws)
        per_thread.append(list(mid.cpu))
        cpu.append(sum(mid.cpu))
        cpu_wall.append(sum(mid.cpu) / (n * mid.wall) if mid.wall > 0 else 0.0)
    speedup = [seconds[0] / s for s in seconds]
    return ScalingResult(
        workload=w.name, mode="processes" if processes else "threads", threads=counts,
        seconds=seconds, seconds_min=mins, seconds_max=maxs, speedup=speedup,
        efficiency=[S / n for S, n in zip(speedup, counts, strict=True)],
        cpu_seconds=cpu, cpu_per_thread=per_thread, cpu_wall=cpu_wall, walls=walls,
        repeats=repeats, work=work, units=max(1, round(w.units * work)), params=dict(params),
        cores=info.cpu_count(), python=build_info()["python"],
        free_threaded_build=info.free_threaded_build(), gil_enabled=info.gil_enabled(),
        startup=startup)


def traced_run(workload: str = "python", threads: int = 2, *, work: float = 0.5,
               **params) -> Run:
    """One traced run of ``workload`` on ``threads`` threads, for a timeline figure
    (``viz.timeline(run.spans)``).

    Returns a :class:`Run` whose ``spans`` (one per chunk of work, and for ``mixed`` one
    per phase of each step: ``wait``, ``compute``, ``io``) have times relative to the
    run's start and ``worker-0``, ``worker-1``... as thread names. A short untraced run
    comes first, to warm up.
    """
    w, params = check_workload(workload, params)
    n = checks.workers("threads", threads)
    work = check_work(work)
    with blas_threads(w.blas_threads) if w.blas_threads else nullcontext():
        run_threads(w, n, min(work, 0.1), params)                  # warm-up
        return run_threads(w, n, work, params, tracer=Tracer())
