"""The convoy effect: a CPU-bound thread delays a thread that only waits for I/O.

A thread coming back from a blocking call (here a 1 ms ``time.sleep``, standing in for a
socket read) must take the GIL back before running its next bytecode. If a CPU-bound
thread holds it, the waiter asks it to let go and the holder does so at the next switch
interval (``sys.getswitchinterval()``, 5 ms by default): each short I/O task then pays up to
one switch interval of extra latency (CPython issue bpo-7946). A shorter interval cuts the
latency and costs the CPU-bound thread some throughput; a free-threaded build has no
convoy at all.

``convoy()`` measures that extra latency against switch intervals, and always puts the
interval back as it was.
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from dataclasses import asdict, dataclass

from ..runtime import checks, info
from ..runtime.threads import WorkerGroup


@dataclass
class ConvoyResult:
    """Extra latency of a short I/O task while CPU-bound threads run.

    Lists are aligned with ``switch_intervals`` (seconds). ``latency_*`` is the time an
    I/O task took beyond its own ``wait`` (median, 90th percentile, max; every sample in
    ``latencies``); ``baseline_*`` the same with no CPU-bound thread running;
    ``cpu_rate`` the CPU-bound threads' loop iterations per second during each run.
    """

    switch_intervals: list[float]
    latency_median: list[float]
    latency_p90: list[float]
    latency_max: list[float]
    latencies: list[list[float]]
    cpu_rate: list[float]
    baseline_median: float
    baseline_p90: float
    wait: float
    samples: int
    cpu_threads: int
    default_interval: float
    cores: int
    gil_enabled: bool

    def table(self) -> str:
        lines = [f"extra latency of a {self.wait * 1e3:g} ms I/O task while {self.cpu_threads} "
                 f"CPU-bound thread(s) run (GIL {'on' if self.gil_enabled else 'off'}, "
                 f"{self.cores} cores); alone: {self.baseline_median * 1e3:.2f} ms",
                 "switch interval   median ms   p90 ms   max ms   CPU loop rate"]
        for i, s in enumerate(self.switch_intervals):
            lines.append(f"{s * 1e3:>12.2f} ms  {self.latency_median[i] * 1e3:>10.2f}  "
                         f"{self.latency_p90[i] * 1e3:>7.2f}  {self.latency_max[i] * 1e3:>7.2f}"
                         f"   {self.cpu_rate[i] / 1e6:>8.2f} M/s")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ConvoyResult:
        return cls(**d)


def _check_intervals(values) -> list[float]:
    """A non-empty list of switch intervals, each in seconds, > 0 and <= 1."""
    if isinstance(values, str | bytes) or not hasattr(values, "__iter__"):
        raise TypeError(f"switch_intervals must be a list of seconds such as [0.001, 0.005], "
                        f"got {values!r}")
    out = [checks.number("switch_intervals (each)", v, min=0, max=1.0, min_open=True)
           for v in values]
    if not out:
        raise ValueError("switch_intervals must not be empty; try [0.001, 0.005]")
    return out


def _percentile(xs: list[float], q: float) -> float:
    ys = sorted(xs)
    return ys[min(len(ys) - 1, round(q * (len(ys) - 1)))]


def _io_latencies(samples: int, wait: float) -> list[float]:
    """``samples`` short I/O tasks in this thread: how much longer than ``wait`` each took."""
    out = []
    for _ in range(samples):
        t0 = time.perf_counter()
        time.sleep(wait)                       # the blocking call: releases the GIL
        total = 0
        for i in range(100):                   # a little Python work to handle the "reply"
            total += i
        out.append(time.perf_counter() - t0 - wait)
    return out


def _spin(stop: threading.Event, ready: threading.Barrier, counts: list, i: int) -> None:
    """A CPU-bound thread: pure-Python arithmetic until ``stop`` is set."""
    ready.wait()
    n = 0
    x = 0
    while not stop.is_set():
        for j in range(1000):
            x += j * j % 7
        n += 1000
    counts[i] = n


def _with_cpu_threads(k: int, samples: int, wait: float) -> tuple[list[float], float]:
    """I/O latencies measured while ``k`` CPU-bound threads run, and their loop rate."""
    stop = threading.Event()
    ready = threading.Barrier(k + 1)           # the CPU-bound threads and this one
    counts = [0] * k
    with WorkerGroup(k, lambda i: _spin(stop, ready, counts, i), "cpu-bound",
                     on_abort=[stop.set, ready.abort]):
        ready.wait()
        t0 = time.perf_counter()
        time.sleep(0.01)                       # let the CPU-bound threads get going
        lat = _io_latencies(samples, wait)
        stop.set()                             # the group joins them on leaving the block
    return lat, sum(counts) / (time.perf_counter() - t0)


def convoy(switch_intervals=(0.0005, 0.001, 0.005, 0.02), samples: int = 30, *,
           wait: float = 0.001, cpu_threads: int = 1, progress=None) -> ConvoyResult:
    """Latency of short I/O tasks while ``cpu_threads`` pure-Python threads run, for each
    switch interval (seconds; ``sys.setswitchinterval``), and with no CPU-bound thread.

    Takes about ``samples x (wait + interval)`` per interval. The switch interval is
    restored afterwards, on error too. ``progress(fraction, text)`` is called between
    intervals and may raise to stop.
    """
    intervals = _check_intervals(switch_intervals)
    samples = checks.integer("samples", samples, min=1)
    cpu_threads = checks.workers("cpu_threads", cpu_threads)
    wait = checks.number("wait", wait, min=0, max=1)
    progress = checks.function("progress", progress, optional=True)
    old = sys.getswitchinterval()
    lats, rates = [], []
    try:
        base = _io_latencies(samples, wait)
        for k, s in enumerate(intervals):
            if progress is not None:
                progress(k / len(intervals), f"switch interval {s * 1e3:g} ms")
            sys.setswitchinterval(s)
            lat, rate = _with_cpu_threads(cpu_threads, samples, wait)
            lats.append(lat)
            rates.append(rate)
    finally:
        sys.setswitchinterval(old)
    if progress is not None:
        progress(1.0, "done")
    return ConvoyResult(
        switch_intervals=intervals,
        latency_median=[statistics.median(x) for x in lats],
        latency_p90=[_percentile(x, 0.9) for x in lats],
        latency_max=[max(x) for x in lats], latencies=lats, cpu_rate=rates,
        baseline_median=statistics.median(base), baseline_p90=_percentile(base, 0.9),
        wait=wait, samples=samples, cpu_threads=cpu_threads, default_interval=old,
        cores=info.cpu_count(), gil_enabled=info.gil_enabled())
