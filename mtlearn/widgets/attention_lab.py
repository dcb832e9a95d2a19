"""AttentionLab: time per batch against sequence length, a recurrent network against a
Transformer with as many parameters, on one thread and on several (notebook 03b).

A recurrent layer must take the T positions of a sequence one after another: T dependent
steps, each a small matrix product plus the fixed cost of a dozen numpy calls. Attention
computes all T positions at once, in a few large products whose size grows with T while
their number does not. So the recurrent network's time grows in proportion to T from the
start, while the Transformer's starts higher (more layers, more calls) and grows slowly
until its larger products, and finally its T x T attention scores, dominate: somewhere in
between, the curves cross. The measurements here are shared by the notebook, its dashboard
and ``benchmarks/bench_transformer.py``:

- :func:`time_vs_length` — median seconds per training step for each sequence length and
  thread count (``serial`` on one thread, ``sync`` on more), both models interleaved;
- :func:`matching_hidden` — the hidden size that gives a character RNN/LSTM/GRU a given
  number of parameters;
- :func:`train_for` — ``parallel.train`` for a fixed wall-clock budget (equal-time races);
- :func:`article_jobs` — the article's "RNN", "LSTM", "GLM" and "Transformer" threads as
  ``parallel.train_many`` jobs.
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from dataclasses import dataclass, field

import ipywidgets as W
import numpy as np
from threadpoolctl import threadpool_limits

from .. import data, nn, parallel, tasks, viz
from ..runtime import checks
from ..runtime import info as runtime_info
from .base import Dashboard

#: the Transformer of the lab, the benchmark and the ``transformer`` task
EMBED_DIM, HIDDEN, BLOCKS = 64, 256, 2
#: the character models' embedding size (``nn.char_model``'s default)
CHAR_EMBEDDING = 16
GATES = {"rnn": 1, "gru": 3, "lstm": 4}


def corpus() -> tuple[np.ndarray, data.Vocabulary]:
    """The arithmetic corpus as ids, and its vocabulary."""
    text = data.char_corpus()
    vocab = data.Vocabulary.from_text(text)
    return vocab.encode(text), vocab


def windows(ids: np.ndarray, seq_len: int, n: int, seed: int = 0):
    """``n`` windows of ``seq_len`` ids at seeded random places: ``(X float32 (n, T), y int64
    (n, T))``, y one character later (what ``parallel.train`` takes)."""
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, len(ids) - seq_len - 1, size=n)[:, None] + np.arange(seq_len)
    return ids[starts].astype(np.float32), ids[starts + 1]


def transformer(vocab_size: int, max_len: int, num_heads: int = 4, seed: int = 0):
    """The lab's causal Transformer: 2 blocks, E = 64, MLP 256, ``num_heads`` heads."""
    return nn.char_transformer(vocab_size, EMBED_DIM, num_heads, HIDDEN, BLOCKS,
                               max_len=max_len, seed=seed)


def matching_hidden(cell: str, num_params: int, vocab_size: int,
                    embedding_dim: int = CHAR_EMBEDDING) -> int:
    """The hidden size H for which ``nn.char_model(vocab_size, cell, H, embedding_dim)`` has
    the number of parameters closest to ``num_params``.

    Its count is ``V E + g (H (E + H) + 2 H) + H V + V`` with g gates (RNN 1, GRU 3,
    LSTM 4): a quadratic in H, solved, then the nearest whole H taken.
    """
    g = GATES[checks.choice("cell", cell, GATES)]
    V, E = vocab_size, embedding_dim

    def count(H):
        return V * E + g * (H * (E + H) + 2 * H) + H * V + V
    b, c = g * (E + 2) + V, V * E + V - num_params
    root = (-b + math.sqrt(b * b - 4 * g * c)) / (2 * g)
    return min((max(1, math.floor(root)), math.ceil(root)),
               key=lambda H: abs(count(H) - num_params))


def train_for(model, loss, dataset, seconds: float, *, max_epochs: int = 100,
              **train_kw) -> parallel.History:
    """``parallel.train(model, loss, dataset, **train_kw)`` stopped at the first step that
    ends ``seconds`` after the start (or after ``max_epochs``); ``history.cancelled`` says
    that the time ran out. Two models given the same ``seconds`` are compared at equal
    wall-clock time."""
    seconds = checks.number("seconds", seconds, min=0, min_open=True)
    cancel, start = threading.Event(), time.perf_counter()
    on_step = train_kw.pop("on_step", None)

    def stop_when_late(step: int, value: float) -> None:
        if on_step is not None:
            on_step(step, value)
        if time.perf_counter() - start >= seconds:
            cancel.set()
    return parallel.train(model, loss, dataset, epochs=max_epochs, cancel=cancel,
                          on_step=stop_when_late, **train_kw)


def article_jobs(n: int = 2048, *, epochs: int = 1, batch_size: int = 32, lr: float = 0.01,
                 seed: int = 0) -> list[dict]:
    """The four models the article starts threads for, as ``parallel.train_many`` jobs.

    The article's code sample trains an "RNN", an "LSTM", a "GLM" and a "Transformer" on
    threads of their own. "GLM" is most likely the General Language Model family (GLM,
    ChatGLM), itself a Transformer language model, so one causal character Transformer
    answers both names; the GRU takes the fourth place. All four are next-character models
    on the same ``n`` windows of the arithmetic corpus (the ``transformer`` task's data),
    each with about the Transformer's number of parameters, trained with Adam::

        histories = parallel.train_many(article_jobs(), threads=2)

    Returns a list of job dicts (``name``, ``model``, ``loss``, ``data``, ``epochs``,
    ``batch_size``, ``seed``, ``optimizer``), each with a model of its own.
    """
    task = tasks.get("transformer", n=n, seed=seed)
    V = len(task.info["vocab"])
    size = task.model().num_params
    models = {
        "RNN": nn.char_model(V, "rnn", matching_hidden("rnn", size, V), seed=seed),
        "LSTM": nn.char_model(V, "lstm", matching_hidden("lstm", size, V), seed=seed),
        "GLM/Transformer": task.model(),
        "GRU": nn.char_model(V, "gru", matching_hidden("gru", size, V), seed=seed),
    }
    return [dict(name=name, model=model, loss=task.loss, data=task.data, epochs=epochs,
                 batch_size=batch_size, seed=seed,
                 optimizer=lambda p: nn.Adam(p, lr=lr)) for name, model in models.items()]


@dataclass
class LengthTimings:
    """What :func:`time_vs_length` measured.

    ``seconds[model][threads][T]`` is the list of per-round medians of the time per training
    step (seconds); ``params[model]`` the parameter count; ``models`` the two labels,
    recurrent first.
    """

    lengths: list[int]
    threads: list[int]
    batch_size: int
    models: list[str]
    params: dict[str, int]
    seconds: dict[str, dict[int, dict[int, list[float]]]] = field(default_factory=dict)
    machine: dict = field(default_factory=dict)
    stopped: bool = False

    def median(self, model: str, threads: int, T: int) -> float:
        return statistics.median(self.seconds[model][threads][T])

    def curve(self, model: str, threads: int) -> np.ndarray:
        return np.array([self.median(model, threads, T) for T in self.lengths])

    def faster_at(self, threads: int) -> list[int]:
        """The lengths at which the Transformer's step was the faster one."""
        rec, tf = (self.curve(m, threads) for m in self.models)
        return [T for T, a, b in zip(self.lengths, rec, tf, strict=True) if b < a]

    def where_faster(self, threads: int) -> str:
        """Where the Transformer's step was the faster one, in words: ``"at T = 16 to
        128"``."""
        return _lengths_text(self.faster_at(threads), self.lengths)

    def crossover(self, threads: int) -> int | None:
        """The shortest length at which the Transformer's step was the faster one (``None``
        if it never was)."""
        faster = self.faster_at(threads)
        return faster[0] if faster else None

    def speedup(self, model: str, T: int) -> float:
        """Time on one thread over time on the most threads, at length ``T``."""
        return self.median(model, self.threads[0], T) / self.median(model, self.threads[-1], T)

    def table(self) -> str:
        """Milliseconds per step, one row per length."""
        cols = [(m, k) for k in self.threads for m in self.models]
        head = "    T | " + " | ".join(f"{_short(m)}, {k} thr".rjust(17) for m, k in cols)
        rows = [head, "-" * len(head)]
        for T in self.lengths:
            rows.append(f"{T:5d} | " + " | ".join(
                f"{1e3 * self.median(m, k, T):14.2f} ms" for m, k in cols))
        return "\n".join(rows)

    def summary(self) -> str:
        """The table, where the curves cross, and the speedup on more threads."""
        lines = [self.table(), ""]
        for k in self.threads:
            lines.append(f"{k} thread(s): the Transformer's step was the faster one "
                         f"{self.where_faster(k)}")
        if len(self.threads) > 1:
            T = self.lengths[-1]
            lines.append(f"at T = {T}, {self.threads[-1]} threads vs 1: " + ", ".join(
                f"{_short(m)} {self.speedup(m, T):.2f}x" for m in self.models))
        return "\n".join(lines)

    def figures(self) -> list:
        return [self.figure()]

    def figure(self, ax=None):
        """Milliseconds per training step against T (log-log), solid for one thread, dashed
        for the most; the crossover on one thread marked."""
        fig, ax = viz.style.axes(ax)
        colors = dict(zip(self.models, ("#C44E52", "#4C72B0"), strict=True))
        for m in self.models:
            for k, style in zip(self.threads, ("-", "--", ":", "-."), strict=False):
                ax.plot(self.lengths, 1e3 * self.curve(m, k), style, marker="o", markersize=3,
                        color=colors[m], label=f"{m}, {k} thread{'s' if k > 1 else ''}")
        cross = self.crossover(self.threads[0])
        if cross is not None and cross != self.lengths[0]:
            ax.axvline(cross, color=viz.style.COLORS["baseline"], linewidth=0.8,
                       linestyle=":", label=f"Transformer faster, 1 thread (T = {cross})")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length T")
        ax.set_ylabel("ms per training step")
        ax.set_title(f"Batch of {self.batch_size} sequences, equal parameters")
        viz.style.legend_outside(ax)
        return fig


def _short(model: str) -> str:
    return model.split("(")[0]


def _lengths_text(faster: list[int], lengths: list[int]) -> str:
    """``"at T = 16 to 128"``, ``"at T = 8 and 64"``, ``"at every length"``, ...: the lengths
    of ``faster`` as runs of consecutive entries of ``lengths``."""
    if not faster:
        return f"at no length up to T = {lengths[-1]}"
    if faster == lengths:
        return "at every length"
    runs, run = [], [faster[0]]
    for T in faster[1:]:
        if lengths.index(T) == lengths.index(run[-1]) + 1:
            run.append(T)
        else:
            runs.append(run)
            run = [T]
    runs.append(run)
    parts = [f"{r[0]}" if len(r) == 1 else f"{r[0]} to {r[-1]}" for r in runs]
    return "at T = " + (" and ".join(parts) if len(parts) <= 2 else ", ".join(parts))


def time_vs_length(lengths=(4, 8, 16, 32, 64, 128), *, cell: str = "rnn", num_heads: int = 4,
                   threads=(1, 2), batch_size: int = 4, steps: int = 6, rounds: int = 3,
                   seed: int = 0, report=None) -> LengthTimings:
    """Time per training step against sequence length, a recurrent character model against
    the Transformer with the same number of parameters.

    For each round, each length T, each thread count and each model (interleaved, so that
    a noisy neighbour slows all alike) this trains a fresh model for ``steps`` steps of
    ``batch_size`` windows of T characters with ``parallel.train`` — strategy ``serial`` on
    one thread, ``sync`` on more — and records the median step time (the first step, which
    warms caches up, left out). The Transformer's position table is ``max(lengths)`` long
    and the recurrent model's hidden size matches its parameter count
    (:func:`matching_hidden`). ``report(fraction, text)`` is called after each run.

    Keep at least two sequences per thread when comparing thread counts: with one, the
    recurrent layer's product at each step has a single column, which BLAS computes as a
    matrix-vector product, several times faster than a two-column matrix product; that
    would be measured as a speedup of the threads.
    """
    lengths = checks.counts("lengths", lengths, min=1, max=4096)
    threads = checks.counts("threads", threads)
    batch_size = checks.integer("batch_size", batch_size, min=1)
    steps = checks.integer("steps", steps, min=2)
    rounds = checks.integer("rounds", rounds, min=1)
    if any(batch_size < k for k in threads):
        raise ValueError(f"batch_size ({batch_size}) must be at least the largest thread "
                         f"count ({max(threads)}): sync gives every thread a share")
    ids, vocab = corpus()
    V = len(vocab)
    tf_params = transformer(V, max(lengths), num_heads).num_params
    hidden = matching_hidden(cell, tf_params, V)
    makers = {f"{cell.upper()}({hidden})": lambda: nn.char_model(V, cell, hidden, seed=seed),
              f"Transformer({num_heads} heads)": lambda: transformer(V, max(lengths),
                                                                    num_heads, seed)}
    result = LengthTimings(lengths, threads, batch_size, list(makers),
                           {m: make().num_params for m, make in makers.items()},
                           {m: {k: {T: [] for T in lengths} for k in threads} for m in makers},
                           runtime_info.machine_info())
    loss = nn.SequenceCrossEntropy()
    total, done = rounds * len(lengths) * len(threads) * len(makers), 0
    for r in range(rounds):
        for T in lengths:
            X, y = windows(ids, T, batch_size * (steps + 1), seed + r)
            for k in threads:
                for m, make in makers.items():
                    h = parallel.train(make(), loss, (X, y), strategy="serial" if k == 1
                                       else "sync", threads=k, batch_size=batch_size,
                                       trace=False, seed=seed)
                    result.seconds[m][k][T].append(statistics.median(np.diff(h.step_times)))
                    done += 1
                    if report is not None:
                        report(done / total, f"round {r + 1}/{rounds}, T = {T}, {m}, "
                                             f"{k} thread(s)")
    return result


class AttentionLab(Dashboard):
    """Time per training step against sequence length: a recurrent network against a
    Transformer with as many parameters, on one thread and on more.

    Controls: the longest length (the lengths are the powers of two from 4 up to it), the
    Transformer's number of heads, the thread count compared with one thread, the recurrent
    cell and the batch size. From code: set ``lab.<name>_<kind>.value``
    (``lab.heads_dropdown.value = 8``) and call ``lab.run()``, which returns a
    :class:`LengthTimings`.
    """

    title = "Attention lab: parallel along time"

    def __init__(self, *, longest: int = 128, num_heads: int = 4, threads: int = 2,
                 cell: str = "rnn", batch_size: int = 4, rounds: int = 3):
        super().__init__()
        self.rounds = checks.integer("rounds", rounds, min=1)
        slow = {"continuous_update": False}
        self.longest_dropdown = W.Dropdown(options=[16, 32, 64, 128, 256, 512], value=longest,
                                           description="longest T")
        self.heads_dropdown = W.Dropdown(options=[1, 2, 4, 8, 16], value=num_heads,
                                         description="Transformer heads")
        self.threads_slider = W.IntSlider(value=threads, min=1,
                                          max=max(2, threads, runtime_info.cpu_count()),
                                          description="threads (vs 1)", **slow)
        self.cell_buttons = W.ToggleButtons(options=[("RNN", "rnn"), ("LSTM", "lstm"),
                                                     ("GRU", "gru")],
                                            value=cell, description="recurrent cell")
        self.batch_slider = W.IntSlider(value=batch_size, min=1, max=64,
                                        description="batch size", **slow)

    def controls(self) -> list[W.Widget]:
        return [self.longest_dropdown, self.heads_dropdown, self.threads_slider,
                self.cell_buttons, self.batch_slider]

    def experiment(self, report) -> LengthTimings:
        # Read every control once: moving one during a run changes the next run only.
        longest, k = int(self.longest_dropdown.value), int(self.threads_slider.value)
        lengths = [2 ** e for e in range(2, int(math.log2(longest)) + 1)]
        threads = sorted({1, k})
        batch = max(int(self.batch_slider.value), threads[-1])   # sync: a share per thread
        with threadpool_limits(limits=1, user_api="blas"):
            return time_vs_length(lengths, cell=self.cell_buttons.value,
                                  num_heads=int(self.heads_dropdown.value), threads=threads,
                                  batch_size=batch, rounds=self.rounds, report=report)
