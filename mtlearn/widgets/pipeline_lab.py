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

Two models: ``"mlp"``, a stack of equal Dense+ReLU blocks (:func:`mtlearn.nn.balanced_mlp`), whose
stages take equal time when K divides the number of blocks — the case the formula assumes;
and ``"cnn"``, the course CNN, whose layers differ in cost so that its stages cannot be
equal. A serial run of the same model gives the time per step to compare with.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import ipywidgets as W

from .. import data, nn, viz
from ..parallel.history import History
from ..parallel.pipeline import SCHEDULES
from ..parallel.schedules import ideal_schedule, measured_schedule, step_window
from ..viz.style import FIGSIZE, CourseFigure
from .base import Dashboard, StoppableTraining

MODELS = {"mlp": "balanced MLP (12 equal Dense+ReLU blocks)", "cnn": "course CNN"}
#: (image side, blocks) of the balanced MLP: 24x24 images, so every Dense is 576 x 576
MLP_SIDE, MLP_BLOCKS = 24, 12
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

    @property
    def summary(self) -> str:
        info = self.history.info
        busy = ", ".join(f"{1e3 * t:.0f}" for t in info["stage_busy"])
        layers = " | ".join(" ".join(name.split("(")[0] for name in stage)
                            for stage in info["stage_layers"])
        K, M = self.stages, self.micro_batches
        lines = [
            f"{MODELS[self.model]}: K = {K} stages, M = {M} micro-batches of "
            f"{self.batch_size // M}{'+' * (self.batch_size % M != 0)}, schedule "
            f"{self.schedule}, {self.history.steps} steps",
            f"bubble measured {self.bubble:.1%}, theory (K-1)/(M+K-1) = "
            f"{self.bubble_theory:.1%}",
            f"time per step: pipeline {self.ms_per_step:.1f} ms, serial {self.serial_ms:.1f} ms",
            f"work per stage (ms, forward + backward, all steps): {busy}",
            f"stages: {layers}",
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
        left.legend(fontsize=8)
        viz.peak_live_bars({self.schedule: self.peak_live}, micro_batches=M, ax=right)
        threads = [f"pipeline-{k}" for k in range(K)]
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


def _load(model: str, n: int):
    if model == "mlp":
        X, y = data.shapes(n, size=MLP_SIDE, seed=0)
        return X, y, nn.balanced_mlp
    X, y = data.shapes(n, seed=0)
    return X, y, lambda seed=0: nn.course_cnn(num_classes=4, seed=seed)


class PipelineLab(StoppableTraining, Dashboard):
    """Pipeline parallelism: stages K, micro-batches M, schedule, model -> the bubble.

    Keyword arguments set the controls' starting values (``PipelineLab(stages=4,
    micro_batches=16)``). From code: set ``lab.<control>.value`` and call ``lab.run()``,
    which returns a :class:`PipelineLabResult`.
    """

    title = "Pipeline lab: stages, micro-batches and the bubble"

    def __init__(self, *, model: str = "mlp", stages: int = 2, micro_batches: int = 4,
                 schedule: str = "gpipe", batch_size: int = 256, steps: int = 3,
                 sweep: bool = True, seed: int = 0):
        self._start = dict(model=model, stages=stages, micro_batches=micro_batches,
                           schedule=schedule, batch_size=batch_size, steps=steps, sweep=sweep)
        self.seed = seed
        super().__init__()

    def controls(self) -> list[W.Widget]:
        s = self._start
        wide = {"description_width": "130px"}
        self.model = W.Dropdown(options=[(v, k) for k, v in MODELS.items()], value=s["model"],
                                description="model", style=wide)
        self.stages = W.IntSlider(value=s["stages"], min=1, max=MAX_STAGES,
                                  continuous_update=False, description="stages K", style=wide)
        self.micro_batches = W.SelectionSlider(options=list(MICRO_BATCHES),
                                               value=s["micro_batches"],
                                               continuous_update=False,
                                               description="micro-batches M", style=wide)
        self.schedule = W.ToggleButtons(options=list(SCHEDULES), value=s["schedule"],
                                        description="schedule", style=wide)
        self.batch_size = W.Dropdown(options=list(BATCH_SIZES), value=s["batch_size"],
                                     description="batch size", style=wide)
        self.steps = W.IntSlider(value=s["steps"], min=1, max=MAX_STEPS,
                                 continuous_update=False, description="steps", style=wide)
        self.sweep = W.Checkbox(value=s["sweep"], description="also measure M = "
                                + ", ".join(map(str, SWEEP)), style=wide)
        return [self.model, self.stages, self.micro_batches, self.schedule, self.batch_size,
                self.steps, self.sweep]

    def experiment(self, report) -> PipelineLabResult:
        # Read every control once: moving a slider during a run changes the next run only.
        name, K, M = self.model.value, int(self.stages.value), int(self.micro_batches.value)
        kind, batch = self.schedule.value, int(self.batch_size.value)
        steps, sweep = int(self.steps.value), bool(self.sweep.value)
        if M > batch:
            raise ValueError(f"micro-batches M ({M}) must be <= the batch size ({batch})")
        report(0.0, "making the data")
        X, y, make = _load(name, steps * batch)
        loss = nn.SoftmaxCrossEntropy()
        common = dict(epochs=1, batch_size=batch, lr=LR, seed=self.seed)
        others = [m for m in SWEEP if m != M and m <= batch] if sweep else []
        total = 2 + len(others)
        result = PipelineLabResult(name, K, M, kind, batch)
        report(0.5 / total, "serial reference")
        serial = self.train(make(seed=self.seed), loss, (X, y), strategy="serial", **common)
        result.serial_ms = 1e3 * serial.wall_time / max(serial.steps, 1)
        report(1 / total, f"pipeline: K = {K}, M = {M}, {kind}")
        h = self.train(make(seed=self.seed), loss, (X, y), strategy="pipeline", threads=K,
                       stages=K, micro_batches=M, schedule=kind, **common)
        result.history = h
        result.sweep[M] = h.info["bubble_per_step"]
        for j, m in enumerate(others):
            report((2 + j) / total, f"sweep: K = {K}, M = {m}")
            hm = self.train(make(seed=self.seed), loss, (X, y), strategy="pipeline", threads=K,
                            stages=K, micro_batches=m, schedule=kind, **common)
            result.sweep[m] = hm.info["bubble_per_step"]
        result.sweep = dict(sorted(result.sweep.items()))
        report(1.0, "done")
        return result

    def render(self, result: PipelineLabResult) -> None:
        self.show_text(result.summary)
        for fig in result.figures():
            self.show_figure(fig)
