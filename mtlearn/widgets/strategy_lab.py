"""StrategyLab: train one model serially and with a parallel strategy, and compare them.

The controls are the knobs of notebooks 05-08: the model (the course CNN on shapes, an LSTM
on the adding problem, or a wide multi-layer perceptron on shapes), the strategy (every key
of ``parallel.STRATEGIES``), the number of threads (worker processes for ``"process"``),
the batch size and the epochs. Run trains the model once with ``serial`` and once with the
chosen strategy — the same seed, the same batches, the same starting weights — and shows:

* the loss of both runs against wall-clock time (a faster strategy reaches a loss sooner);
* the chosen strategy's per-thread timeline for a few steps (compute, wait, reduce, ...);
* the time per step of both, as bars with the speedup; with **sweep threads** the strategy
  runs at 1, 2, ... N threads instead and the speedup curve is drawn against the ideal line
  and Amdahl's law, its serial fraction fitted to the points (up to the core count).

The measuring is :func:`measure_scaling`, which notebooks and ``benchmarks/bench_parallel.py``
call directly: each round runs ``serial`` and then the strategy at every worker count, one
after the other in this process (so a busy neighbour slows all of them alike), and the
median over rounds is kept. Time per step is measured from the end of the first step to the
end of the last, so starting threads or processes and the first, slower step are left out
(they show in the loss curve, which starts later). Stop is noticed between runs
(``measure_scaling`` reports before each one). The lab's defaults run in a second or two on
two cores.
"""

from __future__ import annotations

from dataclasses import dataclass

import ipywidgets as W

from .. import parallel, tasks, viz
from ..experiments import (
    MODELS,
    SAMPLES,
    Scaling,
    max_relative_difference,
    measure_scaling,
    step_durations,
)
from ..parallel import History
from ..runtime import info, laws
from .base import Dashboard

BATCH_SIZES = (32, 64, 128, 256, 512)
MAX_EPOCHS = 10
#: Steps of the chosen strategy drawn in the timeline (after the first one).
TIMELINE_STEPS = 3
#: The name of a dashboard's worker thread ends so (``Dashboard.run``).
CALLER_SUFFIX = "-run"


# ------------------------------------------------------------------------ the lab
@dataclass
class StrategyLabResult:
    """What one Run of the lab measured: its settings and the :class:`Scaling` (one round:
    ``serial`` and the strategy at the chosen count, or at 1..N with the sweep)."""

    model: str
    strategy: str
    threads: int
    batch_size: int
    epochs: int
    num_params: int
    scaling: Scaling

    @property
    def serial(self) -> History:
        return self.scaling.serial

    @property
    def runs(self) -> dict[int, History]:
        """Workers -> the strategy's run."""
        return self.scaling.histories

    @property
    def history(self) -> History:
        """The strategy's run at the chosen count."""
        return self.runs[self.threads]

    @property
    def speedup(self) -> dict[int, float]:
        """Workers -> speedup over serial."""
        return dict(zip(self.scaling.threads, self.scaling.speedup, strict=True))

    @property
    def serial_fraction(self) -> float | None:
        return self.scaling.serial_fraction() if len(self.runs) > 1 else None

    def _workers(self, n: int) -> str:
        if self.strategy == "process":
            return "process" if n == 1 else "processes"
        return "thread" if n == 1 else "threads"

    def summary(self) -> str:
        """Settings; serial and the strategy (ms/step, speedup, loss); how far their losses
        differ; the strategy's own measurements; the sweep and its Amdahl fit."""
        h, s, sc = self.history, self.serial, self.scaling
        # The times the speedups come from (medians); an asynchronous strategy is timed per
        # update, over a longer run (experiments.measure_scaling).
        per = "update" if getattr(sc, "asynchronous", False) else "step"
        ms = 1e3 * sc.seconds[sc.threads.index(self.threads)]
        lines = [f"{MODELS[self.model]}, batch {self.batch_size}, {self.epochs} "
                 f"epoch{'s' * (self.epochs != 1)} ({s.steps} steps), {self.num_params:,} "
                 f"parameters, {sc.cores} cores",
                 f"serial: {1e3 * sc.serial_seconds:.1f} ms/step, loss {s.losses[0]:.4f} -> "
                 f"{s.losses[-1]:.4f}, {s.wall_time:.2f} s in all",
                 f"{self.strategy} on {self.threads} {self._workers(self.threads)}: "
                 f"{ms:.1f} ms/{per} ({self.speedup[self.threads]:.2f}x serial), {h.steps} "
                 f"{per}s, loss {h.losses[0]:.4f} -> {h.losses[-1]:.4f}, {h.wall_time:.2f} s "
                 "in all"]
        if self.strategy != "serial" and h.steps == s.steps:
            diff = max_relative_difference(s.losses, h.losses)
            lines.append(f"largest relative difference of the losses from serial: {diff:.1e}")
        notes = {k: v for k, v in h.info.items() if k in (
            "barriers_per_step", "wait_fraction", "bubble", "bubble_theory", "startup_s",
            "staleness_mean", "stages", "micro_batches") and v is not None}
        if notes:
            lines.append("  " + ", ".join(f"{k} {_fmt(v)}" for k, v in notes.items()))
        if len(self.runs) > 1:
            sweep = ", ".join(f"{n}: {x:.2f}x" for n, x in self.speedup.items())
            lines.append(f"speedup over serial by {self._workers(2)}: {sweep}")
            frac = self.serial_fraction
            if frac is not None:
                lines.append(f"Amdahl fit up to {sc.cores} cores: serial fraction s = "
                             f"{frac:.2f} ({laws.limit_text(frac)})")
        if self.threads > sc.cores:
            lines.append(f"note: {self.threads} {self._workers(self.threads)} on {sc.cores} "
                         "cores: oversubscribed, they take turns")
        return "\n".join(lines)

    # -- figures -------------------------------------------------------------------------
    def loss_figure(self):
        """Loss of every step against wall-clock time, serial and the strategy."""
        logy, title = self.model == "lstm", "Loss against wall-clock time"
        fig = viz.loss_curve(self.serial.losses, times=self.serial.step_times,
                             label="serial", color="#C44E52", smooth=1, logy=logy, title=title)
        ax = fig.axes[0]
        h = self.history
        viz.loss_curve(h.losses, times=h.step_times, label=f"{self.strategy} x{self.threads}",
                       color="#4C72B0", smooth=1, logy=logy, ax=ax, title=title)
        if self.model == "lstm":
            ax.set_ylabel("loss (mean squared error)")
        return fig

    def timeline_figure(self):
        """The chosen strategy's threads during a few steps after the first: the thread
        that called ``train`` (a dashboard's worker, or a notebook's main thread) is the
        row "main", the strategy's own threads follow in order."""
        h = self.history
        t = h.step_times
        window = None
        if len(t) >= 2:
            end = t[min(len(t) - 1, TIMELINE_STEPS)]
            window = (t[0] - 0.1 * (end - t[0]), end)
        spans = [("main", *s[1:]) if s[0].endswith(CALLER_SUFFIX) else tuple(s)
                 for s in h.trace]
        return viz.timeline(spans, window=window,
                            title=f"{self.strategy} on {self.threads} "
                                  f"{self._workers(self.threads)}: a few steps")

    def speedup_figure(self):
        """Time per step as bars (one run), or the speedup curve with Amdahl (a sweep)."""
        if len(self.runs) > 1:
            return self.scaling.figure()
        bars = {"serial": step_durations(self.serial),
                f"{self.strategy} x{self.threads}": step_durations(self.history)}
        return viz.timing_bars(bars, log=False, baseline="serial", ylabel="time per step",
                               title="Time per step (median, min-max whiskers)")

    def figures(self) -> list:
        return [self.loss_figure(), self.timeline_figure(), self.speedup_figure()]


def _fmt(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


class StrategyLab(Dashboard):
    """Train with ``serial`` and with a chosen strategy; compare loss, timeline and speed.

    Keyword arguments set the controls' starting values (``StrategyLab(strategy="tensor",
    threads=4, sweep=True)``); ``samples`` sets the size of the dataset (2,048; smaller makes
    quicker runs). From code: set ``lab.<name>_<kind>.value`` (``lab.strategy_dropdown.value
    = "tensor"``) and call ``lab.run()``, which returns a :class:`StrategyLabResult`.
    """

    title = "Strategy lab: serial against a parallel strategy"

    def __init__(self, *, model: str = "cnn", strategy: str = "sync", threads: int = 2,
                 batch_size: int = 256, epochs: int = 2, sweep: bool = False, seed: int = 0,
                 samples: int = SAMPLES):
        super().__init__()
        self.seed, self.samples = seed, samples
        slow = {"continuous_update": False}
        self.model_dropdown = W.Dropdown(options=[(v, k) for k, v in MODELS.items()],
                                         value=model, description="model")
        self.strategy_dropdown = W.Dropdown(options=[(f"{k}: {cls.description}", k)
                                                     for k, cls in parallel.STRATEGIES.items()],
                                            value=strategy, description="strategy")
        self.threads_slider = W.IntSlider(value=threads, min=1, max=max(4, info.cpu_count()),
                                          description="threads", **slow)
        self.batch_size_dropdown = W.Dropdown(options=list(BATCH_SIZES), value=batch_size,
                                              description="batch size")
        self.epochs_slider = W.IntSlider(value=epochs, min=1, max=MAX_EPOCHS,
                                         description="epochs", **slow)
        self.sweep_checkbox = W.Checkbox(value=sweep,
                                         description="sweep threads 1..N (speedup curve, "
                                                     "Amdahl fit)")

    def controls(self) -> list[W.Widget]:
        return [self.model_dropdown, self.strategy_dropdown, self.threads_slider,
                self.batch_size_dropdown, self.epochs_slider, self.sweep_checkbox]

    def experiment(self, report) -> StrategyLabResult:
        # Read every control once: moving a slider during a run changes the next run only.
        name, strategy = self.model_dropdown.value, self.strategy_dropdown.value
        threads, batch = int(self.threads_slider.value), int(self.batch_size_dropdown.value)
        epochs, sweep = int(self.epochs_slider.value), bool(self.sweep_checkbox.value)
        if strategy == "serial":               # one thread, whatever the slider says
            threads, sweep = 1, False
        counts = list(range(1, threads + 1)) if sweep else [threads]
        report(0.0, f"preparing {name}")
        scaling = measure_scaling(name, strategy, counts, batch_size=batch, epochs=epochs,
                                  repeats=1, samples=self.samples, seed=self.seed,
                                  report=lambda f, text: report(0.95 * f, text))
        num_params = tasks.get(name, n=16, seed=self.seed, val_fraction=0).model().num_params
        report(1.0, "drawing")
        return StrategyLabResult(name, strategy, threads, batch, epochs, num_params, scaling)
