"""Measured comparisons shared by the notebooks, the dashboards and the benchmarks.

``measure_scaling`` times a training strategy at several worker counts against ``serial``
on one of the ready-made problems of :mod:`mtlearn.tasks`, round by round so that a noisy
machine slows every configuration alike, and returns a :class:`Scaling` with speedups,
Amdahl and USL fits, and two figures (the speedup curve; the X-ray of where each worker's
time went). Sits above ``parallel``, ``bench``, ``tasks`` and ``viz`` (it uses all four) and
below ``widgets``.

How it measures (DESIGN.md, "Measurement rules"):

* every speedup is over ``serial`` on the main thread, measured in the same rounds;
* a synchronous strategy is timed in seconds per step, from the end of its first step to
  the end of its last (starting the threads and the first, slower step are left out);
* an asynchronous strategy (:data:`ASYNCHRONOUS`) makes updates whenever a worker is free,
  and N workers all finish their first update at about the same time: timing it by steps
  of a short run measures start-up, not throughput (eight "steps" of eight workers all run
  at once). It is timed in **updates per second** over a run of at least
  :data:`MIN_UPDATES_PER_WORKER` updates per worker — the run is made longer (more epochs
  over the same samples) as the worker count grows — leaving out the first update of each
  worker, which carries the start-up.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from . import nn, parallel, tasks, viz
from .bench import AmdahlFit, USLFit, fit_amdahl, fit_usl
from .parallel import History
from .runtime import checks, info, laws

#: The models the dashboards offer: task names of :mod:`mtlearn.tasks` and what they are
#: (``measure_scaling`` takes any name in ``tasks.TASKS``).
MODELS = {name: tasks.TASKS[name] for name in ("cnn", "lstm", "wide")}
#: Training samples of each run: enough for a few steps of the largest batch.
SAMPLES = 2048
#: Strategies whose workers update the weights without waiting for each other. ``asyncio``
#: is not one: it is the synchronous algorithm of ``sync``, driven by an event loop.
ASYNCHRONOUS = ("hogwild",)
#: An asynchronous run makes at least this many updates per worker (16 x workers in all).
MIN_UPDATES_PER_WORKER = 16


def seconds_per_update(history: History, workers: int = 1) -> float:
    """Wall seconds per optimizer update with start-up left out: from the end of update
    number ``workers`` to the end of the last, over the updates in between.

    With ``workers=1`` this is the time per step after the first step. For ``workers``
    asynchronous workers, the first ``workers`` updates (one per worker, all started at
    once) carry the start-up. A run with no more updates than that is timed whole
    (``wall_time`` over its updates).
    """
    t = history.step_times
    k = max(int(workers), 1)
    if len(t) > k:
        return (t[-1] - t[k - 1]) / (len(t) - k)
    return history.wall_time / max(len(t), 1)


def seconds_per_step(history: History) -> float:
    """Wall seconds per optimizer step, from the end of the first step to the end of the
    last (start-up and the first step left out); the whole run's mean with one step."""
    return seconds_per_update(history, 1)


def step_durations(history: History) -> list[float]:
    """Seconds between consecutive step ends (every step but the first)."""
    return [b - a for a, b in zip(history.step_times, history.step_times[1:], strict=False)
            if b > a] or [history.wall_time]


def max_relative_difference(a, b) -> float:
    """``max |a - b| / max |a|`` of two arrays or sequences (inf if their shapes differ)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        return math.inf
    scale = float(np.max(np.abs(a), initial=0.0)) or 1.0
    return float(np.max(np.abs(a - b), initial=0.0)) / scale


def run_epochs(strategy: str, workers: int, epochs: int, steps_per_epoch: int) -> int:
    """Epochs of a run: ``epochs``, or for an asynchronous strategy enough of them for
    :data:`MIN_UPDATES_PER_WORKER` updates per worker."""
    if strategy not in ASYNCHRONOUS:
        return epochs
    need = MIN_UPDATES_PER_WORKER * workers
    return max(epochs, math.ceil(need / max(steps_per_epoch, 1)))


@dataclass
class Scaling:
    """Time per update of one strategy at several worker counts, and of ``serial``.

    ``seconds[i]`` is the median over ``repeats`` rounds of the seconds per update at
    ``threads[i]`` workers (``seconds_min``/``seconds_max`` the spread): per step for a
    synchronous strategy, ``1 / (updates per second)`` for an asynchronous one
    (``asynchronous`` is True; ``updates[n]`` is how many updates its runs made, at least
    16 per worker). ``serial_seconds`` is the same for ``serial``, measured in the same
    rounds; ``times`` and ``serial_times`` hold every round's value. ``histories`` keeps the
    last run at each count, ``serial`` the last serial run. ``cores`` is this machine's
    core count.
    """

    model: str
    strategy: str
    batch_size: int
    threads: list[int]
    seconds: list[float]
    seconds_min: list[float]
    seconds_max: list[float]
    serial_seconds: float
    serial_min: float
    serial_max: float
    repeats: int
    cores: int
    serial: History
    histories: dict[int, History] = field(default_factory=dict)
    times: dict[int, list[float]] = field(default_factory=dict)
    serial_times: list[float] = field(default_factory=list)
    asynchronous: bool = False
    updates: dict[int, int] = field(default_factory=dict)

    @property
    def speedup(self) -> list[float]:
        """Serial seconds per update over the strategy's, at each count (above 1: faster)."""
        return [self.serial_seconds / s for s in self.seconds]

    @property
    def efficiency(self) -> list[float]:
        """Speedup per worker: 1.0 is perfect scaling."""
        return [x / n for x, n in zip(self.speedup, self.threads, strict=True)]

    @property
    def steps_per_second(self) -> list[float]:
        """Updates per second at each count (steps per second of a synchronous strategy)."""
        return [1.0 / s for s in self.seconds]

    def _points(self, upto: int | None) -> tuple[list[int], list[float]]:
        pts = [(n, x) for n, x in zip(self.threads, self.speedup, strict=True)
               if upto is None or n <= upto]
        return [n for n, _ in pts], [x for _, x in pts]

    def serial_fraction(self, max_threads: int | None = None) -> float | None:
        """Amdahl's ``s`` fitted (least squares on ``1/S = s + (1 - s)/n``) to the speedups
        at counts up to ``max_threads`` (default: the core count; beyond it workers take
        turns on the cores, which Amdahl's law does not describe). ``None`` without a
        count above 1 to fit."""
        fit = self.amdahl(max_threads)
        return None if fit is None else fit.serial_fraction

    def amdahl(self, upto: int | None = None) -> AmdahlFit | None:
        """Amdahl's law fitted to the speedups at counts up to ``upto`` (default: the core
        count); None without a count above 1 there."""
        threads, speedup = self._points(self.cores if upto is None else upto)
        if not any(n > 1 for n in threads):
            return None
        return fit_amdahl(threads, speedup)

    def usl(self, upto: int | None = None) -> USLFit | None:
        """The Universal Scalability Law fitted to the speedups at every count (or those up
        to ``upto``): counts past the cores are where contention shows, so it takes them
        all. None without a count above 1."""
        threads, speedup = self._points(upto)
        if not any(n > 1 for n in threads):
            return None
        return fit_usl(threads, speedup)

    def fits(self) -> list:
        """The fits there are points for: ``[AmdahlFit, USLFit]`` (figures draw each with
        its ``label`` and ``predict``)."""
        return [f for f in (self.amdahl(), self.usl()) if f is not None]

    def table(self) -> str:
        """A plain-text table: workers, ms per step or update (min-max), rate, speedup,
        efficiency; then the fits."""
        word = "processes" if self.strategy == "process" else "threads"
        unit, rate = ("update", "updates/s") if self.asynchronous else ("step", "steps/s")
        title = tasks.TASKS.get(self.model, self.model)
        lines = [f"{title}, batch {self.batch_size}: median of {self.repeats}",
                 f"  serial      {1e3 * self.serial_seconds:7.1f} ms/step "
                 f"({1e3 * self.serial_min:.1f}-{1e3 * self.serial_max:.1f}), "
                 f"{1 / self.serial_seconds:6.1f} steps/s",
                 f"  {self.strategy} {word}:"]
        if self.asynchronous:
            lines[-1] += (f" asynchronous, timed in updates per second over runs of at least "
                          f"{MIN_UPDATES_PER_WORKER} updates per worker")
        for i, n in enumerate(self.threads):
            over = "  (more than the cores)" if n > self.cores else ""
            lines.append(f"  {n:>3}        {1e3 * self.seconds[i]:7.1f} ms/{unit} "
                         f"({1e3 * self.seconds_min[i]:.1f}-{1e3 * self.seconds_max[i]:.1f}), "
                         f"{self.steps_per_second[i]:6.1f} {rate}, speedup "
                         f"{self.speedup[i]:.2f}x, efficiency {self.efficiency[i]:.0%}{over}")
        s = self.serial_fraction()
        if s is not None:
            lines.append(f"  Amdahl fit up to {self.cores} cores: serial fraction s = {s:.2f} "
                         f"({laws.limit_text(s)})")
        u = self.usl()
        if u is not None and len(self.threads) > 1:
            peak = (f"peak {u.peak_speedup:.2f}x at {u.peak_threads:.1f} workers"
                    if u.kappa > 0 else "no peak")
            lines.append(f"  USL fit: σ = {u.sigma:.3f}, κ = {u.kappa:.4f} ({peak})")
        return "\n".join(lines)

    def figure(self, ax=None, title: str | None = None, color: str | None = None):
        """The speedup over serial against the workers, ideal line, Amdahl with the fitted
        ``s`` (pass ``ax`` to overlay several strategies)."""
        return viz.speedup_curve(self.threads, self.speedup,
                                 serial_fraction=self.serial_fraction(), ax=ax, color=color,
                                 label=f"{self.strategy}, over serial",
                                 title=title or f"Speedup of {self.strategy} over serial, "
                                                f"batch {self.batch_size}")

    def xray(self, title: str | None = None):
        """Where each worker's time went at each count (stacked bars, from the last run's
        trace), beside the speedup curve with the Amdahl and USL fits: ``viz.xray``."""
        return viz.xray(self, title=title)


def measure_scaling(model: str = "cnn", strategy: str = "sync", threads: Sequence[int] = (1, 2),
                    *, batch_size: int = 256, epochs: int = 1, repeats: int = 3,
                    samples: int = SAMPLES, seed: int = 0, dtype=np.float32,
                    trace: bool = True, report: Callable[[float, str], None] | None = None,
                    **options) -> Scaling:
    """Measure ``strategy`` at each worker count in ``threads`` against ``serial``.

    Every run trains a fresh copy of the same model (``model``: a name in ``tasks.TASKS``)
    on the same ``samples`` with SGD + momentum, BLAS at one thread per worker: ``epochs``
    epochs, or — for an asynchronous strategy — as many as give at least 16 updates per
    worker. A short serial warm-up comes first; then ``repeats`` rounds of ``serial``
    followed by the strategy at each count (the module docstring says how each is timed).
    ``options`` go to the strategy (e.g. ``micro_batches``). ``report(fraction, text)`` is
    called before every run (a dashboard's Stop raises there). Every argument is checked
    before anything runs.
    """
    checks.choice("strategy", strategy, parallel.STRATEGIES)
    checks.choice("model", model, tasks.TASKS)
    counts = checks.counts("threads", threads)
    batch_size = checks.integer("batch_size", batch_size, min=1)
    epochs = checks.integer("epochs", epochs, min=1)
    repeats = checks.integer("repeats", repeats, min=1)
    samples = checks.integer("samples", samples, min=batch_size)
    trace = checks.boolean("trace", trace)
    report = checks.function("report", report, optional=True)
    task = tasks.get(model, n=samples, seed=seed, dtype=dtype, val_fraction=0)
    X, y = task.data
    lr = task.lr
    steps_per_epoch = len(X) // batch_size
    asynchronous = strategy in ASYNCHRONOUS

    def train(strat: str, n: int, X=X, y=y, epochs=epochs, opts=options) -> History:
        # A too-large step may overflow: a result to show, not a warning or an error.
        with np.errstate(all="ignore"):
            return parallel.train(task.model(), task.loss, (X, y), strategy=strat, threads=n,
                                  epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                                  optimizer=lambda p: nn.SGD(p, lr=lr, momentum=0.9),
                                  check_finite=False, trace=trace, **opts)

    total = 1 + repeats * (1 + len(counts))
    done = 0

    def tell(text: str) -> None:
        if report is not None:
            report(done / total, text)

    tell("warming up")
    warm = min(len(X), 2 * batch_size)
    train("serial", 1, X[:warm], y[:warm], 1, {})          # caches, allocator, BLAS
    done += 1
    serial_times: list[float] = []
    times: dict[int, list[float]] = {n: [] for n in counts}
    histories: dict[int, History] = {}
    serial = None
    for r in range(repeats):
        tell(f"round {r + 1}/{repeats}: serial")
        serial = train("serial", 1, opts={})
        serial_times.append(seconds_per_step(serial))
        done += 1
        for n in counts:
            tell(f"round {r + 1}/{repeats}: {strategy} x{n}")
            h = train(strategy, n, epochs=run_epochs(strategy, n, epochs, steps_per_epoch))
            histories[n] = h
            times[n].append(seconds_per_update(h, n) if asynchronous else seconds_per_step(h))
            done += 1
    return Scaling(model, strategy, batch_size, counts,
                   [statistics.median(times[n]) for n in counts],
                   [min(times[n]) for n in counts], [max(times[n]) for n in counts],
                   statistics.median(serial_times), min(serial_times), max(serial_times),
                   repeats, info.cpu_count(), serial, histories, times, serial_times,
                   asynchronous, {n: histories[n].steps for n in counts})
