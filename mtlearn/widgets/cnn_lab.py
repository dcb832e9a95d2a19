"""CNNLab: train the course CNN on shapes or digits and watch the loss and the accuracy.

The controls are the hyper-parameters a learner tries first: dataset, optimizer, learning
rate, filters in the first convolution, epochs, batch size, and how many threads BLAS may
use. Run trains ``nn.course_cnn`` with :func:`mtlearn.training.fit` on one Python thread
(the dashboard's worker) and shows a one-line summary and the loss and accuracy curves.
The defaults train in about a second on two cores.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import ipywidgets as W
import numpy as np
from threadpoolctl import threadpool_limits

from .. import data, info, nn, viz
from ..training import fit
from .base import Dashboard

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
    """One training run of the lab: its settings and what :func:`~mtlearn.training.fit`
    measured. ``step_times[i]`` is when step ``i`` ended, in seconds from the start."""

    dataset: str
    optimizer: str
    lr: float
    filters: int
    epochs: int
    batch_size: int
    blas_threads: int
    num_classes: int
    num_params: int
    losses: list[float] = field(default_factory=list)
    step_times: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    wall_time: float = 0.0

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

    @property
    def summary(self) -> str:
        """One line: accuracy, time, ms/step and the settings that produced them."""
        line = (f"{self.dataset}: validation accuracy {self.final_accuracy:.1%} after "
                f"{self.epochs} epoch{'s' * (self.epochs != 1)} in {self.wall_time:.2f} s "
                f"({self.ms_per_step:.1f} ms/step, {len(self.losses)} steps of "
                f"{self.batch_size}) | {OPTIMIZERS[self.optimizer]}, lr {self.lr:.3g}, "
                f"{self.filters} filters, {self.num_params:,} parameters, "
                f"BLAS {self.blas_threads} thread{'s' * (self.blas_threads != 1)}")
        if self.diverged:
            line += " | the loss diverged (nan/inf): lower the learning rate"
        elif self.final_accuracy <= 1.5 / self.num_classes:
            line += (" | about chance level: the learning rate may be too high (units that "
                     "die) or too low, or training too short")
        return line

    def figure(self, wall_clock: bool = False):
        """Loss per step (or against wall-clock time) and validation accuracy per epoch."""
        return viz.training_curves(self.losses, self.val_accuracy,
                                   times=self.step_times if wall_clock else None,
                                   chance=1 / self.num_classes, title=self._title())

    def _title(self) -> str:
        return (f"course CNN on {self.dataset}: {OPTIMIZERS[self.optimizer]}, "
                f"lr {self.lr:.3g}, {self.filters} filters")


def _load(name: str):
    if name == "shapes":
        X, y = data.shapes(SHAPES_N, seed=0)
        return X, y, len(data.SHAPE_CLASSES)
    X, y = data.digits()
    return X, y, 10


class CNNLab(Dashboard):
    """Train the course CNN with the chosen hyper-parameters; plot loss and accuracy.

    Keyword arguments set the controls' starting values (``CNNLab(dataset="digits",
    optimizer="adam", epochs=10)``). From code: set ``lab.<control>.value`` and call
    ``lab.run()``, which returns a :class:`CNNLabResult`. Out-of-range numbers are clamped
    by the sliders; a dataset, optimizer, filter count or batch size that is not offered
    raises ``traitlets.TraitError``.
    """

    title = "CNN lab: train the course CNN"

    def __init__(self, *, dataset: str = "shapes", optimizer: str = "sgd",
                 lr: float | None = None, filters: int = 8, epochs: int = 3,
                 batch_size: int = 32, blas_threads: int = 1, seed: int = 0):
        self._start = dict(dataset=dataset, optimizer=optimizer, filters=filters,
                           epochs=epochs, batch_size=batch_size, blas_threads=blas_threads)
        self.seed = seed
        super().__init__()
        if lr is not None:
            self.lr.value = lr

    def controls(self) -> list[W.Widget]:
        s = self._start
        wide = {"description_width": "110px"}
        self.dataset = W.Dropdown(options=[("shapes (28x28, 4 classes)", "shapes"),
                                           ("digits (8x8, 10 classes)", "digits")],
                                  value=s["dataset"], description="dataset", style=wide)
        self.optimizer = W.Dropdown(options=[(v, k) for k, v in OPTIMIZERS.items()],
                                    value=s["optimizer"], description="optimizer", style=wide)
        self.lr = W.FloatLogSlider(value=DEFAULT_LR[s["optimizer"]], base=10, min=-4, max=0,
                                   step=0.1, readout_format=".2g", continuous_update=False,
                                   description="learning rate", style=wide)
        self.filters = W.ToggleButtons(options=list(FILTERS), value=s["filters"],
                                       description="filters (conv 1)", style=wide,
                                       tooltips=[f"conv 1: {f}, conv 2: {2 * f} filters"
                                                 for f in FILTERS])
        self.epochs = W.IntSlider(value=s["epochs"], min=1, max=MAX_EPOCHS,
                                  continuous_update=False, description="epochs", style=wide)
        self.batch_size = W.Dropdown(options=list(BATCH_SIZES), value=s["batch_size"],
                                     description="batch size", style=wide)
        self.blas_threads = W.IntSlider(value=s["blas_threads"], min=1,
                                        max=max(info.cpu_count(), 1), continuous_update=False,
                                        description="BLAS threads", style=wide)
        # Each optimizer has its own good step size: SGD's 0.05 makes Adam jump around.
        self.optimizer.observe(lambda ch: setattr(self.lr, "value", DEFAULT_LR[ch["new"]]),
                               names="value")
        return [self.dataset, self.optimizer, self.lr, self.filters, self.epochs,
                self.batch_size, self.blas_threads]

    def experiment(self, report) -> CNNLabResult:
        # Read every control once: moving a slider during a run changes the next run only.
        name, opt_name, lr = self.dataset.value, self.optimizer.value, float(self.lr.value)
        filters, epochs = int(self.filters.value), int(self.epochs.value)
        batch, blas = int(self.batch_size.value), int(self.blas_threads.value)
        report(0.0, f"loading {name}")
        X, y, k = _load(name)
        Xtr, ytr, Xva, yva = data.split(X, y, 0.2, seed=self.seed)
        model = nn.course_cnn(image_size=X.shape[-1], num_classes=k,
                              channels=(filters, 2 * filters), seed=self.seed)
        opt = (nn.SGD(model.params, lr=lr, momentum=0.9) if opt_name == "sgd"
               else nn.Adam(model.params, lr=lr))
        result = CNNLabResult(name, opt_name, lr, filters, epochs, batch, blas, k,
                              model.num_params)
        per_epoch = data.num_batches(len(Xtr), batch)
        total = epochs * per_epoch
        last_report = -math.inf
        start = time.perf_counter()

        def on_step(step: int, loss: float) -> None:
            nonlocal last_report
            now = time.perf_counter()
            result.step_times.append(now - start)
            # Widget updates cost messages to the browser: a few per second is enough, and
            # report() is also where Stop is noticed.
            if step == total or now - last_report >= 0.1:
                last_report = now
                report(step / total, f"epoch {-(-step // per_epoch)}/{epochs}, "
                                     f"step {step}/{total}, loss {loss:.3g}")

        # A too-large learning rate may overflow: that is a result to show, not a warning.
        with threadpool_limits(limits=blas, user_api="blas"), np.errstate(all="ignore"):
            fitted = fit(model, nn.SoftmaxCrossEntropy(), (Xtr, ytr), (Xva, yva),
                         epochs=epochs, batch_size=batch, optimizer=opt, seed=self.seed,
                         on_step=on_step)
        result.losses, result.val_accuracy = fitted.losses, fitted.val_accuracy
        result.wall_time = fitted.wall_time
        return result

    def render(self, result: CNNLabResult) -> None:
        self.show_text(result.summary)
        self.show_figure(result.figure())
