"""HogwildLab: lock-free vs locked vs synchronous training of one model, side by side.

Notebook 06's dashboard. Run trains the same model from the same starting weights three
times with the same number of threads, on the same batches in the same order:

* **lock-free** — ``parallel.train(strategy="hogwild")``: each thread takes the next batch,
  computes its gradient from the weights as they are and updates them in place, no lock
  (Hogwild!, Niu et al. 2011);
* **locked** — ``strategy="hogwild", lock=True``: the same, with a lock around each update;
* **sync** — ``strategy="sync"``: each batch split across the threads, a barrier, the
  gradients summed, one update: the serial algorithm, computed in parallel.

It shows a table (time per step, the loss of the last steps, validation loss and accuracy,
staleness), the loss of every update against wall-clock time for the three runs, and the
histogram of staleness: how many other updates landed while each gradient was computed.
The optimizer is SGD, with momentum 0.9 by default (as in notebook 02): try 0 — Hogwild!
was designed for plain SGD, and a stale gradient pushed on by momentum can send the course
CNN's training off the rails. The defaults train in about a second on two cores.

The model and the data come from :mod:`mtlearn.tasks` (``"mlp"`` or ``"cnn"``). Stop
cancels the run in progress at its next step (``parallel.train(cancel=...)``) and shows
nothing: one run of three is no comparison.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import ipywidgets as W
import numpy as np

from .. import info, nn, parallel, tasks, viz
from ..parallel.history import History
from ..viz.style import FIGSIZE, CourseFigure
from .base import Dashboard, Stopped

#: Images generated for the lab (1,600 to train, 400 to validate).
SHAPES_N = 2000
#: model (a task of :mod:`mtlearn.tasks`) -> its short name in titles
MODELS = {"mlp": "MLP", "cnn": "course CNN"}
#: run name -> (strategy, options)
RUNS = {"lock-free": ("hogwild", {"lock": False}), "locked": ("hogwild", {"lock": True}),
        "sync": ("sync", {})}
BATCH_SIZES = (16, 32, 64, 128)
#: colour of each run in every figure of the lab
COLORS = {"lock-free": "#C44E52", "locked": "#DD8452", "sync": "#4C72B0"}
MAX_THREADS = 8
MAX_EPOCHS = 20


@dataclass
class HogwildLabResult:
    """The three runs of one press of Run: settings, each run's :class:`~mtlearn.parallel.
    History` and its validation loss and accuracy after training."""

    model: str
    threads: int
    lr: float
    momentum: float
    epochs: int
    batch_size: int
    histories: dict[str, History] = field(default_factory=dict)
    val_loss: dict[str, float] = field(default_factory=dict)
    val_accuracy: dict[str, float] = field(default_factory=dict)

    @property
    def steps(self) -> int:
        return next(iter(self.histories.values())).steps if self.histories else 0

    def ms_per_step(self, name: str) -> float:
        h = self.histories[name]
        return 1e3 * h.wall_time / max(h.steps, 1)

    def last_loss(self, name: str, n: int = 10) -> float:
        """Mean training loss of the last ``n`` updates (one batch's loss is noisy)."""
        losses = self.histories[name].losses
        return float(np.mean(losses[-n:])) if losses else math.nan

    def table(self) -> str:
        """One line per run: time per step, losses, accuracy, staleness."""
        head = (f"{'run':10} {'ms/step':>8} {'wall s':>7} {'loss, last 10':>14} "
                f"{'val. loss':>10} {'val. acc.':>10}   staleness mean / max")
        lines = [head, "-" * len(head)]
        for name, h in self.histories.items():
            if "staleness" in h.info:
                stale = f"{h.info['staleness_mean']:.2f} / {h.info['staleness_max']}"
            else:
                stale = "0 (every update waits for all)"
            lines.append(f"{name:10} {self.ms_per_step(name):8.2f} {h.wall_time:7.2f} "
                         f"{self.last_loss(name):14.4f} {self.val_loss[name]:10.4f} "
                         f"{self.val_accuracy[name]:10.1%}   {stale}")
        return "\n".join(lines)

    def summary(self) -> str:
        """A title line and the table."""
        title = (f"{MODELS[self.model]} on shapes: {self.threads} thread"
                 f"{'s' * (self.threads != 1)}, batch {self.batch_size}, {self.epochs} "
                 f"epoch{'s' * (self.epochs != 1)} = {self.steps} updates per run, "
                 f"SGD, momentum {self.momentum:g}, lr {self.lr:.3g}")
        return title + "\n" + self.table()

    def figure(self):
        """Loss of every update against wall-clock time (left); staleness (right)."""
        fig = CourseFigure(figsize=(FIGSIZE[0] * 1.8, FIGSIZE[1]), layout="constrained")
        left, right = fig.subplots(1, 2)
        for name, h in self.histories.items():
            viz.loss_curve(h.losses, times=h.step_times, label=name, color=COLORS.get(name),
                           ax=left, title="Loss of each update against wall-clock time")
        stale = {name: h.info["staleness"] for name, h in self.histories.items()
                 if "staleness" in h.info}
        if stale:
            viz.staleness_histogram(stale, ax=right, colors=[COLORS.get(n) for n in stale])
        else:
            right.set_axis_off()
        fig.suptitle(f"{MODELS[self.model]}, {self.threads} thread"
                     f"{'s' * (self.threads != 1)}")
        return fig

    def figures(self) -> list:
        return [self.figure()]


class HogwildLab(Dashboard):
    """Lock-free (Hogwild!) vs locked vs synchronous training, with the same threads.

    Keyword arguments set the controls' starting values (``HogwildLab(model="mlp",
    threads=4)``). From code: set ``lab.<name>_<kind>.value`` (``lab.threads_slider.value
    = 4``) and call ``lab.run()``, which returns a :class:`HogwildLabResult`.
    """

    title = "Hogwild lab: lock-free vs locked vs synchronous updates"

    def __init__(self, *, model: str = "mlp", threads: int = 2, lr: float = 0.05,
                 momentum: float = 0.9, epochs: int = 3, batch_size: int = 32, seed: int = 0):
        super().__init__()
        self.seed = seed
        slow = {"continuous_update": False}
        self.model_dropdown = W.Dropdown(options=[(f"{k}: {tasks.TASKS[k]}", k) for k in MODELS],
                                         value=model, description="model")
        self.threads_slider = W.IntSlider(value=threads, min=1, max=MAX_THREADS,
                                          description="threads",
                                          tooltip=f"this machine has {info.cpu_count()} cores",
                                          **slow)
        self.lr_slider = W.FloatLogSlider(value=lr, base=10, min=-3, max=0, step=0.1,
                                          readout_format=".2g", description="learning rate",
                                          **slow)
        self.momentum_slider = W.FloatSlider(value=momentum, min=0.0, max=0.95, step=0.05,
                                             description="momentum", **slow)
        self.epochs_slider = W.IntSlider(value=epochs, min=1, max=MAX_EPOCHS,
                                         description="epochs", **slow)
        self.batch_size_dropdown = W.Dropdown(options=list(BATCH_SIZES), value=batch_size,
                                              description="batch size")

    def controls(self) -> list[W.Widget]:
        return [self.model_dropdown, self.threads_slider, self.lr_slider, self.momentum_slider,
                self.epochs_slider, self.batch_size_dropdown]

    def experiment(self, report) -> HogwildLabResult:
        # Read every control once: moving a slider during a run changes the next run only.
        name, threads = self.model_dropdown.value, int(self.threads_slider.value)
        lr, momentum = float(self.lr_slider.value), float(self.momentum_slider.value)
        epochs, batch = int(self.epochs_slider.value), int(self.batch_size_dropdown.value)
        report(0.0, "making the data")
        task = tasks.get(name, n=SHAPES_N, seed=self.seed)
        result = HogwildLabResult(name, threads, lr, momentum, epochs, batch)
        for j, (run, (strategy, options)) in enumerate(RUNS.items()):
            report(j / len(RUNS), f"training: {run} ({strategy}, {threads} threads)")
            model = task.model()                     # the same start for every run
            # A too-large learning rate may overflow: a result to show, not a warning.
            with np.errstate(all="ignore"):
                h = parallel.train(model, task.loss, task.data, strategy=strategy,
                                   threads=threads, epochs=epochs, batch_size=batch, lr=lr,
                                   seed=self.seed,
                                   optimizer=lambda p: nn.SGD(p, lr=lr, momentum=momentum),
                                   check_finite=False, cancel=self.cancel, **options)
                if h.cancelled:
                    raise Stopped
                result.val_loss[run], result.val_accuracy[run] = task.evaluate(model)
            result.histories[run] = h
        report(1.0, "done")
        return result
