"""Measured comparisons shared by the notebooks, the dashboards and the benchmarks.

``measure_scaling`` times a training strategy at several worker counts against ``serial``
on one of a few ready-made tasks (:data:`MODELS`), round by round so that a noisy machine
slows every configuration alike, and returns a :class:`Scaling` with speedups, an Amdahl fit
and a figure. Sits above ``parallel``, ``bench`` and ``viz`` (it uses all three) and below
``widgets``.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from . import data, info, nn, parallel, viz
from .bench import fit_serial_fraction
from .parallel import History

MODELS = {"cnn": "course CNN on shapes (28x28, 4 classes)",
          "lstm": "LSTM(2 -> 32) on the adding problem (T = 20)",
          "wide": "wide MLP on shapes (784 -> 1024 -> 1024 -> 4)"}
#: Training samples of each model's dataset: enough for a few steps of the largest batch.
SAMPLES = 2048
SEQ_LEN = 20
WIDTH = 1024
#: SGD with momentum 0.9 at this learning rate (element-wise, so every strategy may apply
#: it slice by slice and still equal serial training).
LR = {"cnn": 0.05, "lstm": 0.02, "wide": 0.01}


def make_task(name: str, seed: int = 0, samples: int = SAMPLES, dtype=np.float32):
    """``(model_factory, loss, (X, y))`` for one of :data:`MODELS`. Every call of the factory
    builds the same freshly initialised model (the same seed), in ``dtype``."""
    if name in ("cnn", "wide"):
        X, y = data.shapes(samples, seed=seed, dtype=dtype)
        k = len(data.SHAPE_CLASSES)
        if name == "cnn":
            def factory():
                return nn.course_cnn(num_classes=k, seed=seed, dtype=dtype)
        else:
            side = X.shape[-1]

            def factory():
                return nn.Sequential(nn.Flatten(), nn.Dense(side * side, WIDTH), nn.ReLU(),
                                     nn.Dense(WIDTH, WIDTH), nn.ReLU(), nn.Dense(WIDTH, k),
                                     seed=seed, dtype=dtype)
        return factory, nn.SoftmaxCrossEntropy(), (X, y)
    if name == "lstm":
        X, y = data.adding_problem(samples, SEQ_LEN, seed=seed, dtype=dtype)

        def factory():
            return nn.Sequential(nn.LSTM(2, 32), nn.LastStep(), nn.Dense(32, 1), seed=seed,
                                 dtype=dtype)
        return factory, nn.MSELoss(), (X, y)
    raise ValueError(f"model must be one of {list(MODELS)}, got {name!r}")


def seconds_per_step(history: History) -> float:
    """Wall seconds per optimizer step, from the end of the first step to the end of the
    last (start-up and the first step left out); the whole run's mean with one step."""
    t = history.step_times
    if len(t) >= 2:
        return (t[-1] - t[0]) / (len(t) - 1)
    return history.wall_time / max(len(t), 1)


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


@dataclass
class Scaling:
    """Time per step of one strategy at several worker counts, and of ``serial``.

    ``seconds[i]`` is the median over ``repeats`` rounds of the seconds per step at
    ``threads[i]`` workers (``seconds_min``/``seconds_max`` the spread); ``serial_seconds``
    the same for ``serial``, measured in the same rounds; ``times`` and ``serial_times``
    hold every round's value. ``histories`` keeps the last run at each count, ``serial`` the
    last serial run. ``cores`` is this machine's core count.
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

    @property
    def speedup(self) -> list[float]:
        """Serial seconds per step over the strategy's, at each count (above 1: faster)."""
        return [self.serial_seconds / s for s in self.seconds]

    @property
    def efficiency(self) -> list[float]:
        """Speedup per worker: 1.0 is perfect scaling."""
        return [x / n for x, n in zip(self.speedup, self.threads, strict=True)]

    @property
    def steps_per_second(self) -> list[float]:
        return [1.0 / s for s in self.seconds]

    def serial_fraction(self, max_threads: int | None = None) -> float | None:
        """Amdahl's ``s`` fitted (least squares on ``1/S = s + (1 - s)/n``) to the speedups
        at counts up to ``max_threads`` (default: the core count; beyond it workers take
        turns on the cores, which Amdahl's law does not describe). ``None`` without a
        count above 1 to fit."""
        top = self.cores if max_threads is None else max_threads
        pts = [(n, x) for n, x in zip(self.threads, self.speedup, strict=True) if n <= top]
        if not any(n > 1 for n, _ in pts):
            return None
        return fit_serial_fraction([n for n, _ in pts], [x for _, x in pts])

    def table(self) -> str:
        """A plain-text table: workers, ms/step (min-max), steps/s, speedup, efficiency."""
        word = "processes" if self.strategy == "process" else "threads"
        lines = [f"{MODELS[self.model]}, batch {self.batch_size}: median of {self.repeats}",
                 f"  serial      {1e3 * self.serial_seconds:7.1f} ms/step "
                 f"({1e3 * self.serial_min:.1f}-{1e3 * self.serial_max:.1f}), "
                 f"{1 / self.serial_seconds:6.1f} steps/s",
                 f"  {self.strategy} {word}:"]
        for i, n in enumerate(self.threads):
            over = "  (more than the cores)" if n > self.cores else ""
            lines.append(f"  {n:>3}        {1e3 * self.seconds[i]:7.1f} ms/step "
                         f"({1e3 * self.seconds_min[i]:.1f}-{1e3 * self.seconds_max[i]:.1f}), "
                         f"{self.steps_per_second[i]:6.1f} steps/s, speedup "
                         f"{self.speedup[i]:.2f}x, efficiency {self.efficiency[i]:.0%}{over}")
        s = self.serial_fraction()
        if s is not None:
            most = f"{1 / s:.1f}x" if s > 0 else "no limit"
            lines.append(f"  Amdahl fit up to {self.cores} cores: serial fraction s = {s:.2f} "
                         f"(at most {most})")
        return "\n".join(lines)

    def figure(self, ax=None, title: str | None = None, color: str | None = None):
        """The speedup over serial against the workers, ideal line, Amdahl with the fitted
        ``s`` (pass ``ax`` to overlay several strategies)."""
        return viz.speedup_curve(self.threads, self.speedup,
                                 serial_fraction=self.serial_fraction(), ax=ax, color=color,
                                 label=f"{self.strategy}, over serial",
                                 title=title or f"Speedup of {self.strategy} over serial, "
                                                f"batch {self.batch_size}")


def measure_scaling(model: str = "cnn", strategy: str = "sync", threads: Sequence[int] = (1, 2),
                    *, batch_size: int = 256, epochs: int = 1, repeats: int = 3,
                    samples: int = SAMPLES, seed: int = 0, dtype=np.float32,
                    trace: bool = True, report: Callable[[float, str], None] | None = None,
                    **options) -> Scaling:
    """Measure ``strategy`` at each worker count in ``threads`` against ``serial``.

    Every run trains a fresh copy of the same model (``model`` a key of :data:`MODELS`) for
    ``epochs`` on the same ``samples`` with SGD + momentum, BLAS at one thread per worker.
    A short serial warm-up comes first; then ``repeats`` rounds of ``serial`` followed by
    the strategy at each count. ``options`` go to the strategy (e.g. ``micro_batches``).
    ``report(fraction, text)`` is called before every run (a dashboard's Stop raises there).
    """
    if strategy not in parallel.STRATEGIES:
        raise ValueError(f"strategy must be one of {sorted(parallel.STRATEGIES)}, got "
                         f"{strategy!r}")
    counts = list(dict.fromkeys(int(n) for n in threads))     # in order, each once
    if not counts or min(counts) < 1:
        raise ValueError(f"threads must be a non-empty list of ints >= 1, got {threads!r}")
    if not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be an int >= 1, got {repeats!r}")
    factory, loss, (X, y) = make_task(model, seed, samples, dtype)
    lr = LR[model]

    def train(strat: str, n: int, X=X, y=y, epochs=epochs, opts=options) -> History:
        # A too-large step may overflow: a result to show, not a warning or an error.
        with np.errstate(all="ignore"):
            return parallel.train(factory(), loss, (X, y), strategy=strat, threads=n,
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
            histories[n] = train(strategy, n)
            times[n].append(seconds_per_step(histories[n]))
            done += 1
    return Scaling(model, strategy, batch_size, counts,
                   [statistics.median(times[n]) for n in counts],
                   [min(times[n]) for n in counts], [max(times[n]) for n in counts],
                   statistics.median(serial_times), min(serial_times), max(serial_times),
                   repeats, info.cpu_count(), serial, histories, times, serial_times)
