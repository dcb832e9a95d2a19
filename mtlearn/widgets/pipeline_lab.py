"""PipelineLab: cut a model into K stages, feed it M micro-batches, and measure the bubble.

Notebook 07's dashboard. Run trains the chosen model with ``parallel.train(strategy=
"pipeline", stages=K, micro_batches=M, schedule=...)`` — K threads, one per stage, linked
by queues (GPipe, Huang et al. 2019; PipeDream's 1F1B) — and shows:

* the measured bubble (the idle share of the stage threads) on the theory curve
  ``(K-1)/(M+K-1)``, for the chosen M or, with *sweep*, for M = 1, 2, 4, 8, 16 as well;
* how many micro-batches' activations each stage kept alive at once (GPipe: all M; 1F1B:
  at most K);
* the per-stage timeline of the last step (``viz.timeline``): forward, backward, and
  ``wait`` — the bubble, as the stage threads see it;
* the schedule drawn twice: measured (the last step's boxes, labelled with their
  micro-batch) and idealised (the same schedule with equal stages and a backward twice as
  long as a forward, :func:`ideal_schedule`).

Two models, both from :mod:`mtlearn.tasks`: ``"balanced-mlp"``, a stack of equal
Dense+ReLU blocks (:func:`mtlearn.nn.balanced_mlp`), whose stages take equal time when K
divides the number of blocks — the case the formula assumes; and ``"cnn"``, the course CNN,
whose layers differ in cost so that its stages cannot be equal. A serial run of the same
model gives the time per step to compare with. Stop cancels the run in progress
(``parallel.train(cancel=...)``) and shows nothing: a part of a sweep is no result.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import ipywidgets as W

from .. import parallel, tasks, viz
from ..parallel.history import History
from ..parallel.pipeline import SCHEDULES
from ..parallel.schedules import ideal_schedule, measured_schedule, step_window
from ..viz.style import FIGSIZE, CourseFigure, legend_outside
from .base import Dashboard, Stopped

#: model -> (task name, short name)
MODELS = {"mlp": ("balanced-mlp", "balanced MLP"), "cnn": ("cnn", "course CNN")}
SWEEP = (1, 2, 4, 8, 16)
MICRO_BATCHES = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32)
BATCH_SIZES = (32, 64, 128, 256)
MAX_STAGES = 6
MAX_STEPS = 20
LR = 0.01


@dataclass
class PipelineLabResult:
    """One press of Run: settings, the pipeline run's :class:`History`, the bubble of every
    measured M (``sweep``: M -> bubble of each step), and the serial time per step."""

    model: str
    stages: int
    micro_batches: int
    schedule: str
    batch_size: int
    history: History | None = None
    sweep: dict[int, list[float]] = field(default_factory=dict)
    serial_ms: float = float("nan")

    @property
    def bubble(self) -> float:
        return self.history.info["bubble"]

    @property
    def bubble_theory(self) -> float:
        return self.history.info["bubble_theory"]

    @property
    def peak_live(self) -> list[int]:
        return self.history.info["peak_live"]

    @property
    def ms_per_step(self) -> float:
        return 1e3 * self.history.wall_time / max(self.history.steps, 1)

    def summary(self) -> str:
        """Settings, the bubble measured and in theory, time per step against serial, the
        work and layers of each stage, and the peak live activations."""
        info = self.history.info
        busy = ", ".join(f"{1e3 * t:.0f}" for t in info["stage_busy"])
        layers = [f"  stage {k}: " + compact([name.split("(")[0] for name in stage])
                  for k, stage in enumerate(info["stage_layers"])]
        K, M = self.stages, self.micro_batches
        lines = [
            f"{MODELS[self.model][1]}: K = {K} stages, M = {M} micro-batches of "
            f"{self.batch_size // M}{'+' * (self.batch_size % M != 0)}, schedule "
            f"{self.schedule}, {self.history.steps} steps",
            f"bubble measured {self.bubble:.1%}, theory (K-1)/(M+K-1) = "
            f"{self.bubble_theory:.1%}",
            f"time per step: pipeline {self.ms_per_step:.1f} ms, serial {self.serial_ms:.1f} ms",
            f"work per stage (ms, forward + backward, all steps): {busy}",
            "layers of each stage:", *layers,
            f"peak live activations per stage: {self.peak_live} (GPipe keeps M = {M}; "
            f"1F1B at most K - k <= K = {K})",
        ]
        return "\n".join(lines)

    def figures(self) -> list:
        """Bubble vs theory with peak live activations; the last step's timeline; the
        schedule measured and idealised."""
        K, M = self.stages, self.micro_batches
        top = CourseFigure(figsize=(FIGSIZE[0] * 1.8, FIGSIZE[1]), layout="constrained")
        left, right = top.subplots(1, 2)
        viz.bubble_curve(K, self.sweep, max_micro_batches=max(32, *self.sweep), ax=left,
                         title=f"Bubble: measured vs (K-1)/(M+K-1), K = {K}")
        left.plot([M], [100 * self.bubble], "*", markersize=14, color="#C44E52",
                  label=f"this run, M = {M}")
        legend_outside(left)
        viz.peak_live_bars({self.schedule: self.peak_live}, micro_batches=M, ax=right)
        threads = [f"pipeline-{k}" for k in range(K)]      # stage order, top to bottom
        timeline = viz.timeline(self.history.trace, threads=threads,
                                kinds=["forward", "backward", "wait", "update"],
                                window=step_window(self.history), show_cpu=False,
                                title="The last step, thread by thread (wait = bubble)")
        sched = CourseFigure(figsize=(FIGSIZE[0] * 1.4, 0.9 * K + 2.6), layout="constrained")
        measured_ax, ideal_ax = sched.subplots(2, 1)
        viz.schedule_chart(measured_schedule(self.history), ax=measured_ax,
                           time_label="time (ms)", title=f"{self.schedule}: measured, last step")
        viz.schedule_chart(ideal_schedule(K, M, self.schedule), ax=ideal_ax,
                           time_label="time (forward passes)",
                           title=f"{self.schedule}: ideal (equal stages, backward = 2 forwards)")
        return [top, timeline, sched]


def compact(names: list[str]) -> str:
    """Layer names with runs of a repeated pair or name written once with a count:
    ``["Flatten", "Dense", "ReLU", "Dense", "ReLU", "Dense"]`` -> ``"Flatten (Dense ReLU) x2
    Dense"``."""
    out, i = [], 0
    while i < len(names):
        for width in (2, 1):
            unit = names[i:i + width]
            n = 1
            while len(unit) == width and names[i + n * width:i + (n + 1) * width] == unit:
                n += 1
            if n > 1:
                out.append(f"({' '.join(unit)}) x{n}" if width == 2 else f"{unit[0]} x{n}")
                i += n * width
                break
        else:
            out.append(names[i])
            i += 1
    return " ".join(out)


class PipelineLab(Dashboard):
    """Pipeline parallelism: stages K, micro-batches M, schedule, model -> the bubble.

    Keyword arguments set the controls' starting values (``PipelineLab(stages=4,
    micro_batches=16)``). From code: set ``lab.<name>_<kind>.value``
    (``lab.stages_slider.value = 3``) and call ``lab.run()``, which returns a
    :class:`PipelineLabResult`.
    """

    title = "Pipeline lab: stages, micro-batches and the bubble"

    def __init__(self, *, model: str = "mlp", stages: int = 2, micro_batches: int = 4,
                 schedule: str = "gpipe", batch_size: int = 256, steps: int = 3,
                 sweep: bool = True, seed: int = 0):
        super().__init__()
        self.seed = seed
        slow = {"continuous_update": False}
        self.model_dropdown = W.Dropdown(
            options=[(f"{short}: {tasks.TASKS[name]}", key)
                     for key, (name, short) in MODELS.items()],
            value=model, description="model")
        self.stages_slider = W.IntSlider(value=stages, min=1, max=MAX_STAGES,
                                         description="stages K", **slow)
        self.micro_batches_slider = W.SelectionSlider(options=list(MICRO_BATCHES),
                                                      value=micro_batches,
                                                      description="micro-batches M", **slow)
        self.schedule_buttons = W.ToggleButtons(options=list(SCHEDULES), value=schedule,
                                                description="schedule")
        self.batch_size_dropdown = W.Dropdown(options=list(BATCH_SIZES), value=batch_size,
                                              description="batch size")
        self.steps_slider = W.IntSlider(value=steps, min=1, max=MAX_STEPS,
                                        description="steps", **slow)
        self.sweep_checkbox = W.Checkbox(value=sweep, description="also measure M = "
                                         + ", ".join(map(str, SWEEP)))

    def controls(self) -> list[W.Widget]:
        return [self.model_dropdown, self.stages_slider, self.micro_batches_slider,
                self.schedule_buttons, self.batch_size_dropdown, self.steps_slider,
                self.sweep_checkbox]

    def experiment(self, report) -> PipelineLabResult:
        # Read every control once: moving a slider during a run changes the next run only.
        name, K = self.model_dropdown.value, int(self.stages_slider.value)
        M, kind = int(self.micro_batches_slider.value), self.schedule_buttons.value
        batch, steps = int(self.batch_size_dropdown.value), int(self.steps_slider.value)
        sweep = bool(self.sweep_checkbox.value)
        if M > batch:
            raise ValueError(f"micro-batches M ({M}) must be <= the batch size ({batch})")
        report(0.0, "making the data")
        task = tasks.get(MODELS[name][0], n=steps * batch, seed=self.seed, val_fraction=0)

        def train(strategy: str, **options) -> History:
            h = parallel.train(task.model(), task.loss, task.data, strategy=strategy,
                               epochs=1, batch_size=batch, lr=LR, seed=self.seed,
                               cancel=self.cancel, **options)
            if h.cancelled:          # a stopped run has no bubble to show
                raise Stopped
            return h

        others = [m for m in SWEEP if m != M and m <= batch] if sweep else []
        total = 2 + len(others)
        result = PipelineLabResult(name, K, M, kind, batch)
        report(0.5 / total, "serial reference")
        serial = train("serial")
        result.serial_ms = 1e3 * serial.wall_time / max(serial.steps, 1)
        report(1 / total, f"pipeline: K = {K}, M = {M}, {kind}")
        h = train("pipeline", threads=K, stages=K, micro_batches=M, schedule=kind)
        result.history = h
        result.sweep[M] = h.info["bubble_per_step"]
        for j, m in enumerate(others):
            report((2 + j) / total, f"sweep: K = {K}, M = {m}")
            hm = train("pipeline", threads=K, stages=K, micro_batches=m, schedule=kind)
            result.sweep[m] = hm.info["bubble_per_step"]
        result.sweep = dict(sorted(result.sweep.items()))
        report(1.0, "done")
        return result
