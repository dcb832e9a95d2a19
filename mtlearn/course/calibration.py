"""How much of this machine is free right now: measured in a third of a second, first.

Every timing in the course depends on it. Two threads on a 2-core machine run a numpy
step about twice as fast as one — but only if nothing else wants those cores. A browser,
a build or another notebook takes cores away, and every speedup measured meanwhile comes
out low for a reason that has nothing to do with threads or the GIL. So each notebook
starts with :func:`calibrate` and every verdict is read against it.

How it measures. A GIL-releasing numpy workload (``np.sin`` over a float64 array, written
into a second array, so nothing is allocated) runs first on one thread, then on as many
threads as the machine has logical CPUs, at the same time:

    free = (calls per second, all threads together) / (calls per CPU-second, one thread)

One thread's calls per *CPU*-second is the speed of one core, even on a busy machine
(``time.thread_time`` only advances while the thread runs). The threads together get as
many cores' worth of work done as the machine lets them have: on an idle 2-core machine
``free`` is about 1.9-2.0; with one other program spinning on a core, our 2 threads share 2
cores with it and get about 1.3. Each call is made long enough (at least ~0.4 ms) that the
microsecond of Python around it, under the GIL, stays negligible even on 64 threads.

When is the machine *busy*? When ``free < 0.75 x capacity`` (:data:`QUIET_FRACTION`):
on 2 cores below 1.5 — one other busy program already brings it to ~1.3, while an idle
2-core machine measures ~1.9, far from the line. ``capacity`` is the physical core count
where SMT doubles the logical CPUs (two hardware threads share one core's arithmetic
units, so 16 logical CPUs on 8 cores measure ~9-10, not 16), capped by a container's CPU
quota. Near the line (within 0.1 x capacity) two more rounds are measured and the median of
all is used, so an idle machine does not flip between "quiet" and "busy" from run to run.

The load average (Unix: runnable threads averaged over the last minute) is reported beside
it, not used to decide: it includes this notebook's own work of the last minute.
"""

from __future__ import annotations

import datetime
import math
import os
import statistics
import threading
import time
from dataclasses import asdict, dataclass, field

from ..runtime import checks, info
from ..runtime.threads import WorkerGroup
from . import markers

#: the machine is busy when less than this share of its capacity is free
QUIET_FRACTION = 0.75
#: within this share of capacity from the line, measure two more rounds
BORDER = 0.10
#: the most threads a calibration starts (a 128-CPU server is measured on 64)
MAX_THREADS = 64
#: one call should take at least this long on one thread (seconds), so that the Python
#: part of a call (~1 us, under the GIL) stays below 1% of it on 2 threads and ~15% on 64
MIN_CALL = 0.4e-3
#: array sizes tried, smallest first (float64 elements; 2**17 is 1 MiB per array)
ELEMENTS = (2**14, 2**15, 2**16, 2**17)

_last: list[Calibration] = []
_lock = threading.Lock()


def capacity(cores: int, physical_cores: int | None = None,
             cpu_quota: float | None = None) -> float:
    """The cores' worth of numpy work this machine can do at once when idle: the physical
    cores where known (SMT siblings share one core's arithmetic), else the logical CPUs,
    capped by a container's CPU quota; at least 1."""
    cores = checks.integer("cores", cores, min=1)
    cap = float(cores)
    if physical_cores:
        cap = min(cap, float(checks.integer("physical_cores", physical_cores, min=1)))
    if cpu_quota:
        cap = min(cap, checks.number("cpu_quota", cpu_quota, min=0, min_open=True))
    return max(cap, 1.0)


def is_busy(free: float, capacity: float, fraction: float = QUIET_FRACTION) -> bool:
    """True when fewer than ``fraction x capacity`` cores were free (e.g. below 1.5 of 2)."""
    free = checks.number("free", free, min=0)
    capacity = checks.number("capacity", capacity, min=0, min_open=True)
    fraction = checks.number("fraction", fraction, min=0, max=1)
    return free < fraction * capacity


def _plural(n: float, word: str) -> str:
    return f"{word}" if n == 1 else f"{word}s"


@dataclass
class Calibration:
    """One measurement of how much of the machine was free.

    ``free`` is in cores (one idle core = 1.0); ``capacity`` is what an idle machine gives
    (see :func:`capacity`); ``busy`` is ``free < quiet_fraction x capacity``. ``rounds``
    are the per-round ``free`` values whose median is ``free``; ``load`` is the 1-minute
    load average (None where the OS has none). :meth:`to_dict` is a plain dict to store
    with any result; ``str()`` is the one line a notebook prints.
    """

    free: float
    capacity: float
    threads: int
    cores: int
    physical_cores: int | None = None
    cpu_quota: float | None = None
    load: float | None = None
    rounds: list[float] = field(default_factory=list)
    elements: int = 0
    call_ms: float = 0.0
    seconds: float = 0.0
    when: str = ""
    quiet_fraction: float = QUIET_FRACTION

    @property
    def busy(self) -> bool:
        return is_busy(self.free, self.capacity, self.quiet_fraction)

    @property
    def fraction(self) -> float:
        """``free / capacity`` (can exceed 1 a little: SMT siblings add a bit)."""
        return self.free / self.capacity

    # -- text ---------------------------------------------------------------------------
    def _of(self) -> str:
        cap = self.capacity
        text = f"{self.free:.1f} of {cap:g} {_plural(cap, 'core')}"
        if self.cpu_quota and cap == self.cpu_quota and cap < self.cores:
            text += f" (container quota; {self.cores} logical CPUs)"
        elif cap < self.cores:
            text += f" ({self.cores} logical CPUs)"
        return text

    def short(self) -> str:
        """``1.9 of 2 cores free`` — how verdicts quote it."""
        return f"{self._of()} free"

    def marker(self) -> str:
        """``[calibration free=1.93 capacity=2 threads=2 busy=0 load=0.35]``."""
        return markers.write("calibration", free=round(self.free, 3), capacity=self.capacity,
                             threads=self.threads, busy=self.busy, load=self.load)

    def sentence(self) -> str:
        """The line without its marker."""
        load = ("" if self.load is None else
                f", load average {self.load:.2f} over the last minute on {self.cores} "
                f"logical {_plural(self.cores, 'CPU')}")
        how = (f"numpy on {self.threads} {_plural(self.threads, 'thread')} ran "
               f"{self.free:.2f}x one thread's rate")
        if self.busy:
            state = ("BUSY: timings below will be low, because other programs hold cores "
                     "that our threads need")
        else:
            state = "quiet: timings below should be representative of this machine"
        return f"Calibration: {self.short()} ({how}){load} — {state}."

    def __str__(self) -> str:
        return f"{self.sentence()} {self.marker()}"

    __repr__ = __str__

    def banner(self) -> str:
        """HTML warning shown when the machine is busy ('' when it is quiet)."""
        if not self.busy:
            return ""
        load = ("" if self.load is None else
                f" The load average was {self.load:.2f} over the last minute on "
                f"{self.cores} logical CPUs: above {self.cores}, threads queue for a core.")
        return (
            "<div style='border-left:6px solid #C44E52;background:#fbeaea;padding:8px 12px;"
            "margin:4px 0'><b>&#9888; This machine is busy right now.</b> Only "
            f"{self._of()} were free for a short numpy test (an idle machine gives about "
            f"{self.capacity:g}).{load} The timings in this notebook will be lower than on an "
            "idle machine — speedups most of all, because our threads wait for cores that "
            "other programs hold. Close what you can (a build, a video, other notebooks), "
            "then rerun the calibration; the verdicts below say when a number is low for "
            "this reason.</div>")

    def _repr_html_(self) -> str:
        color = "#C44E52" if self.busy else "#55A868"
        line = (f"<div style='color:{color}'>{_escape(self.sentence())} "
                f"<span style='color:#999;font-size:smaller'>{self.marker()}</span></div>")
        return self.banner() + line

    # -- storing --------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """A plain dict (JSON-ready) with ``busy`` and ``fraction`` added."""
        return {**asdict(self), "busy": self.busy, "fraction": self.fraction}

    @classmethod
    def from_dict(cls, d: dict) -> Calibration:
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in names})

    @classmethod
    def from_numbers(cls, free: float, cores: int, *, physical_cores: int | None = None,
                     cpu_quota: float | None = None, load: float | None = None,
                     quiet_fraction: float = QUIET_FRACTION) -> Calibration:
        """A calibration from given numbers instead of a measurement (for tests, and for
        re-reading one stored elsewhere)."""
        cap = capacity(cores, physical_cores, cpu_quota)
        free = checks.number("free", free, min=0)
        return cls(free=free, capacity=cap, threads=cores, cores=cores,
                   physical_cores=physical_cores, cpu_quota=cpu_quota, load=load,
                   rounds=[free], quiet_fraction=quiet_fraction)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def load_average() -> float | None:
    """The 1-minute load average, or None where the OS has none (Windows)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def _thread_clock_is_fine() -> bool:
    """``time.thread_time`` ticks finely enough to time ~0.1 s (Windows: 15.6 ms ticks)."""
    try:
        return time.get_clock_info("thread_time").resolution <= 1e-3
    except (ValueError, OSError):
        return False


def _size_workload(np):
    """Arrays for one call of at least :data:`MIN_CALL` seconds (or the largest size)."""
    for n in ELEMENTS:
        a = np.linspace(0.0, 3.0, n)
        out = np.empty_like(a)
        np.sin(a, out=out)                              # first touch of the pages
        best = math.inf
        for _ in range(3):
            t0 = time.perf_counter()
            np.sin(a, out=out)
            best = min(best, time.perf_counter() - t0)
        if best >= MIN_CALL:
            break
    return n, best


def _arrays(np, n_threads: int, elements: int) -> list:
    """Each thread's own input and output arrays, their pages touched before any clock
    runs (a first touch costs a page fault, not arithmetic)."""
    arrays = [(np.linspace(0.0, 3.0, elements), np.empty(elements)) for _ in range(n_threads)]
    for a, out in arrays:
        np.sin(a, out=out)
    return arrays


def _burst(np, arrays: list, seconds: float) -> list[tuple[int, float, float, float]]:
    """Run ``np.sin`` on one thread per pair of ``arrays`` for about ``seconds``, all
    starting together; per thread ``(calls, start, end, cpu seconds)``."""
    n_threads = len(arrays)
    go = threading.Event()
    results: list = [None] * n_threads

    def work(k: int) -> None:
        a, out = arrays[k]
        go.wait()
        if group.stop.is_set():
            return
        c0, t0 = time.thread_time(), time.perf_counter()
        deadline = t0 + seconds
        calls = 0
        t = t0
        while t < deadline:
            np.sin(a, out=out)
            calls += 1
            t = time.perf_counter()
        results[k] = (calls, t0, t, time.thread_time() - c0)

    group = WorkerGroup(n_threads, work, name="calibrate", on_abort=[go.set])
    with group:
        go.set()
    return results


def calibrate(seconds: float = 0.3, *, threads: int | None = None) -> Calibration:
    """Measure how many cores are free right now (see the module's docstring); takes about
    ``seconds`` plus a few milliseconds. ``threads`` defaults to the logical CPUs this
    process may use (at most :data:`MAX_THREADS`, and at most the container's quota,
    rounded up).

    The result is also kept as :func:`last` (verdicts read it) and noted in
    ``mtlearn.info`` (``info.machine_info()["notes"]["calibration"]``), so every result
    recorded afterwards carries it.
    """
    import numpy as np

    seconds = checks.number("seconds", seconds, min=0.02, max=10)
    machine = info.machine_info()
    cores = machine["cores"]
    quota = machine.get("cpu_quota")
    cap = capacity(cores, machine.get("physical_cores"), quota)
    if threads is None:
        threads = min(cores, MAX_THREADS, math.ceil(quota) if quota else cores)
    threads = checks.workers("threads", threads)
    t_start = time.perf_counter()
    elements, call = _size_workload(np)

    arrays = _arrays(np, threads, elements)
    # one thread: calls per CPU-second is one core's speed, however busy the machine is
    [(calls1, s1, e1, cpu1)] = _burst(np, arrays[:1], seconds / 4)
    use_cpu = _thread_clock_is_fine() and cpu1 > 0
    rate1 = calls1 / (cpu1 if use_cpu else max(e1 - s1, 1e-9))

    def round_free() -> float:
        res = _burst(np, arrays, seconds / 4)
        span = max(r[2] for r in res) - min(r[1] for r in res)
        return sum(r[0] for r in res) / max(span, 1e-9) / rate1

    rounds = [round_free() for _ in range(3)]
    if abs(statistics.median(rounds) / cap - QUIET_FRACTION) < BORDER:
        rounds += [round_free() for _ in range(2)]       # near the line: look again
    cal = Calibration(
        free=round(statistics.median(rounds), 3), capacity=cap, threads=threads, cores=cores,
        physical_cores=machine.get("physical_cores"), cpu_quota=quota, load=load_average(),
        rounds=[round(r, 3) for r in rounds], elements=elements, call_ms=round(call * 1e3, 3),
        seconds=round(time.perf_counter() - t_start, 3),
        when=datetime.datetime.now().astimezone().isoformat(timespec="seconds"))
    remember(cal)
    return cal


def remember(cal: Calibration) -> None:
    """Make ``cal`` the current calibration (:func:`last`) and note it in ``mtlearn.info``."""
    with _lock:
        _last[:] = [cal]
    info.note("calibration", f"{cal.short()} at {cal.when or 'an unknown time'} "
                             f"({'busy' if cal.busy else 'quiet'})")


def last() -> Calibration | None:
    """The latest calibration made in this process, or None."""
    with _lock:
        return _last[0] if _last else None


def forget() -> None:
    """Drop the current calibration (tests; a notebook that wants a fresh one)."""
    with _lock:
        _last.clear()
