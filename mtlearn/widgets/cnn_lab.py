"""CNNLab: train the course CNN on shapes or digits and watch the loss and the accuracy.

The controls are the hyper-parameters a learner tries first: dataset, optimizer, learning
rate, filters in the first convolution, epochs, batch size, and how many threads BLAS may
use. Run trains the task's CNN (``tasks.get("cnn")`` or ``tasks.get("cnn-digits")``) with
``parallel.train(strategy="serial")`` on one Python thread (the dashboard's worker),
measures the validation accuracy after each epoch (``on_epoch``), and shows a summary and
the loss and accuracy curves. Stop ends the run at its next step; what it trained so far is
shown, marked stopped. The defaults train in about a second on two cores.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import ipywidgets as W
import numpy as np

from .. import info, nn, parallel, tasks, viz
from .base import Dashboard, Stopped

#: dataset -> the task that trains the course CNN on it
DATASETS = {"shapes": "cnn", "digits": "cnn-digits"}
#: Images generated for the ``shapes`` dataset (1,600 to train, 400 to validate).
SHAPES_N = 2000
#: A learning rate that works for each optimizer; choosing an optimizer selects it.
DEFAULT_LR = {"sgd": 0.05, "adam": 3e-3}
OPTIMIZERS = {"sgd": "SGD + momentum 0.9", "adam": "Adam"}
FILTERS = (4, 8, 16)
BATCH_SIZES = (16, 32, 64, 128)
MAX_EPOCHS = 20


@dataclass
class CNNLabResult:
    """One training run of the lab: its settings and what it measured. ``losses[i]`` is
    the loss of step ``i``, ``step_times[i]`` when it ended (seconds from the start),
    ``val_accuracy[e]`` the validation accuracy after epoch ``e``. ``stopped``: Stop ended
    the run after ``len(losses)`` of ``total_steps`` steps."""

    dataset: str
    optimizer: str
    lr: float
    filters: int
    epochs: int
    batch_size: int
    blas_threads: int
    num_classes: int
    num_params: int
    total_steps: int = 0
    losses: list[float] = field(default_factory=list)
    step_times: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    wall_time: float = 0.0
    stopped: bool = False

    @property
    def final_accuracy(self) -> float:
        return self.val_accuracy[-1] if self.val_accuracy else float("nan")

    @property
    def ms_per_step(self) -> float:
        return 1e3 * self.wall_time / max(len(self.losses), 1)

    @property
    def diverged(self) -> bool:
        """True when the loss stopped being a finite number (nan or inf)."""
        return not all(math.isfinite(v) for v in self.losses)

    def summary(self) -> str:
        """Accuracy, time and ms/step; the settings that produced them; a hint when the run
        diverged, stayed at chance level or was stopped."""
        epochs = len(self.val_accuracy)
        done = (f"validation accuracy {self.final_accuracy:.1%} after {epochs} "
                f"epoch{'s' * (epochs != 1)}" if epochs else "no epoch finished")
        lines = [f"{self.dataset}: {done} in {self.wall_time:.2f} s ({self.ms_per_step:.1f} "
                 f"ms/step, {len(self.losses)} steps of {self.batch_size})",
                 f"{OPTIMIZERS[self.optimizer]}, lr {self.lr:.3g}, {self.filters} filters, "
                 f"{self.num_params:,} parameters, BLAS {self.blas_threads} "
                 f"thread{'s' * (self.blas_threads != 1)}"]
        if self.stopped:
            lines.append(f"stopped after {len(self.losses)} of {self.total_steps} steps")
        if self.diverged:
            lines.append("the loss diverged (nan/inf): lower the learning rate")
        elif epochs and self.final_accuracy <= 1.5 / self.num_classes:
            lines.append("about chance level: the learning rate may be too high (units that "
                         "die) or too low, or training too short")
        return "\n".join(lines)

    def figure(self, wall_clock: bool = False):
        """Loss per step (or against wall-clock time) and validation accuracy per epoch."""
        return viz.training_curves(self.losses, self.val_accuracy,
                                   times=self.step_times if wall_clock else None,
                                   chance=1 / self.num_classes, title=self._title())

    def figures(self) -> list:
        return [self.figure()]

    def _title(self) -> str:
        return (f"course CNN on {self.dataset}: {OPTIMIZERS[self.optimizer]}, "
                f"lr {self.lr:.3g}, {self.filters} filters")


class CNNLab(Dashboard):
    """Train the course CNN with the chosen hyper-parameters; plot loss and accuracy.

    Keyword arguments set the controls' starting values (``CNNLab(dataset="digits",
    optimizer="adam", epochs=10)``; ``lr=None`` takes the optimizer's default). From code:
    set ``lab.<name>_<kind>.value`` (``lab.epochs_slider.value = 5``) and call
    ``lab.run()``, which returns a :class:`CNNLabResult`. Out-of-range numbers are clamped
    by the sliders; a dataset, optimizer, filter count or batch size that is not offered
    raises ``traitlets.TraitError``.
    """

    title = "CNN lab: train the course CNN"

    def __init__(self, *, dataset: str = "shapes", optimizer: str = "sgd",
                 lr: float | None = None, filters: int = 8, epochs: int = 3,
                 batch_size: int = 32, blas_threads: int = 1, seed: int = 0):
        super().__init__()
        self.seed = seed
        slow = {"continuous_update": False}
        self.dataset_dropdown = W.Dropdown(
            options=[("shapes (28x28, 4 classes)", "shapes"),
                     ("digits (8x8, 10 classes)", "digits")],
            value=dataset, description="dataset")
        self.optimizer_dropdown = W.Dropdown(options=[(v, k) for k, v in OPTIMIZERS.items()],
                                             value=optimizer, description="optimizer")
        self.lr_slider = W.FloatLogSlider(value=DEFAULT_LR[optimizer] if lr is None else lr,
                                          base=10, min=-4, max=0, step=0.1,
                                          readout_format=".2g", description="learning rate",
                                          **slow)
        self.filters_buttons = W.ToggleButtons(options=list(FILTERS), value=filters,
                                               description="filters (conv 1)",
                                               tooltips=[f"conv 1: {f}, conv 2: {2 * f} filters"
                                                         for f in FILTERS])
        self.epochs_slider = W.IntSlider(value=epochs, min=1, max=MAX_EPOCHS,
                                         description="epochs", **slow)
        self.batch_size_dropdown = W.Dropdown(options=list(BATCH_SIZES), value=batch_size,
                                              description="batch size")
        self.blas_threads_slider = W.IntSlider(value=blas_threads, min=1,
                                               max=max(info.cpu_count(), 1),
                                               description="BLAS threads", **slow)
        # Each optimizer has its own good step size: SGD's 0.05 makes Adam jump around.
        self.optimizer_dropdown.observe(
            lambda ch: setattr(self.lr_slider, "value", DEFAULT_LR[ch["new"]]), names="value")

    def controls(self) -> list[W.Widget]:
        return [self.dataset_dropdown, self.optimizer_dropdown, self.lr_slider,
                self.filters_buttons, self.epochs_slider, self.batch_size_dropdown,
                self.blas_threads_slider]

    def experiment(self, report) -> CNNLabResult:
        # Read every control once: moving a slider during a run changes the next run only.
        name, opt_name = self.dataset_dropdown.value, self.optimizer_dropdown.value
        lr, filters = float(self.lr_slider.value), int(self.filters_buttons.value)
        epochs, batch = int(self.epochs_slider.value), int(self.batch_size_dropdown.value)
        blas = int(self.blas_threads_slider.value)
        report(0.0, f"loading {name}")
        task = tasks.get(DATASETS[name], n=SHAPES_N, seed=self.seed,
                         channels=(filters, 2 * filters))
        model = task.model()
        result = CNNLabResult(name, opt_name, lr, filters, epochs, batch, blas,
                              task.num_classes, model.num_params)
        per_epoch = len(task.data[0]) // batch          # parallel.train drops partial batches
        result.total_steps = total = epochs * per_epoch
        last = -math.inf

        def on_step(step: int, loss: float) -> None:
            nonlocal last
            # Widget updates cost messages to the browser: a few per second are enough.
            now = time.perf_counter()
            if step == total or now - last >= 0.1:
                last = now
                self.progress(step / total, f"epoch {-(-step // per_epoch)}/{epochs}, "
                                            f"step {step}/{total}, loss {loss:.3g}")

        def on_epoch(epoch: int, history) -> None:
            result.val_accuracy.append(task.accuracy(model))

        factory = ((lambda p: nn.SGD(p, lr=lr, momentum=0.9)) if opt_name == "sgd"
                   else (lambda p: nn.Adam(p, lr=lr)))
        # A too-large learning rate may overflow: that is a result to show, not a warning.
        with np.errstate(all="ignore"):
            h = parallel.train(model, task.loss, task.data, strategy="serial", epochs=epochs,
                               batch_size=batch, lr=lr, seed=self.seed, optimizer=factory,
                               check_finite=False, blas_threads=blas, on_step=on_step,
                               on_epoch=on_epoch, cancel=self.cancel)
        if not h.losses:                                  # stopped before the first step
            raise Stopped
        result.losses, result.step_times = h.losses, h.step_times
        result.wall_time, result.stopped = h.wall_time, h.cancelled
        return result
