"""RNNLab: train an RNN, LSTM or GRU on characters or on the adding problem, and watch it learn.

The controls are what notebook 03 is about: the cell, the hidden size, the sequence length
(how far back the gradient flows), the number of steps and the learning rate, and, for the
character model, the sampling temperature. Run trains on the dashboard's worker thread with
BLAS at one thread and shows a summary, the loss against the loss to beat, and (for
characters) generated text. Moving the temperature slider after a run samples new text from
the trained model without training again. The defaults train in about a second (characters)
or three (the adding problem, which the LSTM then solves) on two cores.

The adding problem is ``tasks.get("rnn" | "lstm" | "gru")`` trained by
``parallel.train(strategy="serial")``. The characters are trained by truncated BPTT
(:func:`mtlearn.nn.fit_tbptt`): each chunk starts from the state the previous one left,
which a strategy of ``parallel.train`` (independent, shuffled batches) cannot do. Stop ends
either at its next step (the same :attr:`Dashboard.cancel` event); what was trained so far
is shown, marked stopped.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import ipywidgets as W
import numpy as np
from threadpoolctl import threadpool_limits

from .. import data, nn, parallel, tasks, viz
from .base import Dashboard, Stopped

TASKS = {"chars": "characters (arithmetic corpus)", "adding": "the adding problem"}
CELLS = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}
#: Starting values per task: (sequence length, hidden size, steps).
DEFAULTS = {"chars": (32, 64, 150), "adding": (50, 32, 1500)}
BATCH_SIZE = 32
SAMPLE_LENGTH = 160
#: Sequences of the adding problem held out to measure the test error.
TEST_N = 500


@dataclass
class RNNLabResult:
    """One training run of the lab: its settings, the loss of every step and the final score.

    ``metric`` is the mean loss of the last 10 steps (chars, nats per character) or the mean
    squared error on 500 new sequences (adding); ``baseline`` is the score to beat (the
    unigram entropy, or the error of always answering 1.0). ``model`` (and ``vocab`` for
    chars) are kept so that :meth:`sample` can generate more text. ``stopped``: Stop ended
    the run after ``len(losses)`` of ``steps`` steps.
    """

    task: str
    cell: str
    hidden: int
    seq_len: int
    steps: int
    lr: float
    num_params: int
    baseline: float
    losses: list[float] = field(default_factory=list)
    step_times: list[float] = field(default_factory=list)
    wall_time: float = 0.0
    metric: float = math.nan
    samples: dict[float, str] = field(default_factory=dict)
    model: nn.Sequential | None = field(default=None, repr=False)
    vocab: data.Vocabulary | None = field(default=None, repr=False)
    stopped: bool = False

    @property
    def ms_per_step(self) -> float:
        return 1e3 * self.wall_time / max(len(self.losses), 1)

    @property
    def beats_baseline(self) -> float:
        """``metric / baseline``: below 1 the model learnt something a constant cannot."""
        return self.metric / self.baseline

    def summary(self) -> str:
        """The score against the baseline, time and ms/step, the settings; a hint when the
        run diverged, solved the task, did not beat the baseline or was stopped."""
        what = ("loss {m:.3f} nats/char (unigram baseline {b:.3f})" if self.task == "chars"
                else "test MSE {m:.4f} (always answering 1.0: {b:.3f})")
        lines = [f"{self.cell.upper()}({self.hidden}) on {TASKS[self.task]}, sequence length "
                 f"{self.seq_len}: " + what.format(m=self.metric, b=self.baseline),
                 f"{len(self.losses)} steps in {self.wall_time:.2f} s ({self.ms_per_step:.1f} "
                 f"ms/step), lr {self.lr:.3g}, {self.num_params:,} parameters"]
        if self.stopped:
            lines.append(f"stopped after {len(self.losses)} of {self.steps} steps")
        if not math.isfinite(self.metric):
            lines.append("the loss diverged: lower the learning rate")
        elif self.task == "adding" and self.metric < 0.01:
            lines.append("solved")
        elif self.beats_baseline > 0.9:
            lines.append("no better than the baseline yet: more steps, another cell, or "
                         "another lr")
        return "\n".join(lines)

    def figure(self):
        ylabel = "loss (nats/char)" if self.task == "chars" else "mean squared error"
        label = "unigram" if self.task == "chars" else "always 1.0"
        return viz.loss_vs_baseline({f"{self.cell.upper()}({self.hidden})": self.losses},
                                    baseline=self.baseline, baseline_label=label,
                                    ylabel=ylabel, logy=self.task == "adding",
                                    title=f"{self.cell.upper()} on {TASKS[self.task]}")

    def figures(self) -> list:
        return [self.figure()]

    def sample(self, temperature: float, length: int = SAMPLE_LENGTH, seed: int = 0) -> str:
        """Text generated by the trained character model (chars runs only)."""
        if self.task != "chars" or self.model is None:
            raise ValueError("RNNLabResult.sample: only a character model can generate text")
        with threadpool_limits(limits=1, user_api="blas"):
            text = nn.sample(self.model, "\n", length, temperature=temperature, rng=seed,
                             vocab=self.vocab)
        self.samples[temperature] = text
        return text


def describe_sample(text: str, temperature: float) -> str:
    """A sample with a header saying how many of its lines are well formed and correct."""
    score = data.score_arithmetic(text)
    return (f"sampled at temperature {temperature:g}: {score['well_formed']:.0%} of "
            f"{score['lines']} lines well formed, {score['correct']:.0%} correct sums\n"
            + text.strip("\n"))


class RNNLab(Dashboard):
    """Train a recurrent model with the chosen settings; plot its loss against the baseline.

    Keyword arguments set the controls' starting values (``RNNLab(task="adding",
    cell="rnn")``); the sequence length, hidden size and steps default to values that work
    for the task. From code: set ``lab.<name>_<kind>.value`` (``lab.steps_slider.value =
    100``) and call ``lab.run()``, which returns an :class:`RNNLabResult`.
    """

    title = "RNN lab: train a recurrent network"

    def __init__(self, *, task: str = "chars", cell: str = "lstm", seq_len: int | None = None,
                 hidden: int | None = None, steps: int | None = None, lr: float = 0.01,
                 temperature: float = 0.8, seed: int = 0):
        if task not in TASKS:
            raise ValueError(f"RNNLab: task must be one of {list(TASKS)}, got {task!r}")
        super().__init__()
        self.seed = seed
        d = DEFAULTS[task]
        slow = {"continuous_update": False}
        self.task_dropdown = W.Dropdown(options=[(v, k) for k, v in TASKS.items()], value=task,
                                        description="task")
        self.cell_buttons = W.ToggleButtons(options=[(v, k) for k, v in CELLS.items()],
                                            value=cell, description="cell")
        self.hidden_slider = W.IntSlider(value=hidden or d[1], min=8, max=256, step=8,
                                         description="hidden size", **slow)
        self.seq_len_slider = W.IntSlider(value=seq_len or d[0], min=2, max=200,
                                          description="sequence length", **slow)
        self.steps_slider = W.IntSlider(value=steps or d[2], min=10, max=3000, step=10,
                                        description="steps", **slow)
        self.lr_slider = W.FloatLogSlider(value=lr, base=10, min=-4, max=0, step=0.1,
                                          readout_format=".2g", description="learning rate",
                                          **slow)
        self.temperature_slider = W.FloatSlider(value=temperature, min=0.0, max=2.0, step=0.1,
                                                description="temperature", **slow)
        self.task_dropdown.observe(self._on_task, names="value")
        self.temperature_slider.observe(self._on_temperature, names="value")

    def controls(self) -> list[W.Widget]:
        return [self.task_dropdown, self.cell_buttons, self.hidden_slider, self.seq_len_slider,
                self.steps_slider, self.lr_slider, self.temperature_slider]

    def _on_task(self, change) -> None:
        (self.seq_len_slider.value, self.hidden_slider.value,
         self.steps_slider.value) = DEFAULTS[change["new"]]

    def _on_temperature(self, change) -> None:
        """Sample new text from the last trained character model (no training)."""
        result = self.result
        if self.running or result is None or result.task != "chars":
            return
        self.show_text(describe_sample(result.sample(change["new"]), change["new"]))

    # -- the experiment ------------------------------------------------------------------
    def experiment(self, report) -> RNNLabResult:
        # Read every control once: moving a slider during a run changes the next run only.
        task, cell = self.task_dropdown.value, self.cell_buttons.value
        hidden, seq_len = int(self.hidden_slider.value), int(self.seq_len_slider.value)
        steps, lr = int(self.steps_slider.value), float(self.lr_slider.value)
        last = -math.inf

        def on_step(step: int, loss: float) -> None:
            nonlocal last
            # A few updates per second are enough: each one is a message to the browser.
            now = time.perf_counter()
            if step == steps or now - last >= 0.1:
                last = now
                self.progress(step / steps, f"step {step}/{steps}, loss {loss:.3g}")

        report(0.0, "preparing data")
        with np.errstate(all="ignore"):
            if task == "chars":
                result = self._train_chars(cell, hidden, seq_len, steps, lr, on_step)
            else:
                result = self._train_adding(cell, hidden, seq_len, steps, lr, on_step)
        if not result.losses:                            # stopped before the first step
            raise Stopped
        if task == "chars":
            result.sample(float(self.temperature_slider.value))
        return result

    def _train_chars(self, cell, hidden, seq_len, steps, lr, on_step) -> RNNLabResult:
        text = data.char_corpus()
        vocab = data.Vocabulary.from_text(text)
        ids = vocab.encode(text)
        chunks = data.tbptt_batches(ids, BATCH_SIZE, seq_len)
        model = nn.char_model(len(vocab), cell, hidden_size=hidden, seed=self.seed)
        result = RNNLabResult("chars", cell, hidden, seq_len, steps, lr, model.num_params,
                              data.unigram_loss(ids), model=model, vocab=vocab)
        opt = nn.Adam(model.params, lr=lr)
        start = time.perf_counter()

        def until_stopped(todo):
            # fit_tbptt takes chunks as they come: Stop ends the run at the next one.
            for chunk in todo:
                if self.cancel.is_set():
                    return
                yield chunk

        def step_done(k: int, loss: float, done: int) -> None:
            result.step_times.append(time.perf_counter() - start)
            on_step(done + k, loss)

        with threadpool_limits(limits=1, user_api="blas"):
            # Passes over the corpus; the state starts from zeros at each pass.
            while len(result.losses) < steps and not self.cancel.is_set():
                done = len(result.losses)
                losses, _ = nn.fit_tbptt(
                    model, until_stopped(chunks[:steps - done]), opt, clip_norm=5.0,
                    on_step=lambda k, v, done=done: step_done(k, v, done))
                result.losses += losses
        result.wall_time = time.perf_counter() - start
        result.stopped = len(result.losses) < steps
        result.metric = float(np.mean(result.losses[-10:])) if result.losses else math.nan
        return result

    def _train_adding(self, cell, hidden, seq_len, steps, lr, on_step) -> RNNLabResult:
        n = steps * BATCH_SIZE + TEST_N
        task = tasks.get(cell, n=n, seed=self.seed, seq_len=seq_len, hidden=hidden,
                         val_fraction=TEST_N / n)
        model = task.model()
        yte = task.val[1]
        result = RNNLabResult("adding", cell, hidden, seq_len, steps, lr, model.num_params,
                              float(np.mean((yte - 1.0) ** 2)), model=model)
        h = parallel.train(model, task.loss, task.data, strategy="serial", epochs=1,
                           batch_size=BATCH_SIZE, lr=lr, seed=self.seed,
                           optimizer=lambda p: nn.Adam(p, lr=lr), check_finite=False,
                           blas_threads=1, on_step=on_step, cancel=self.cancel)
        result.losses, result.step_times = h.losses, h.step_times
        result.wall_time, result.stopped = h.wall_time, h.cancelled
        result.metric = task.evaluate(model)[0]
        return result

    def render(self, result: RNNLabResult) -> None:
        super().render(result)
        for temperature, text in result.samples.items():
            self.show_text(describe_sample(text, temperature))
