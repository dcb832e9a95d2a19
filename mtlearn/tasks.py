"""The one registry of ready-made problems: a model factory, a loss and data, by name.

Every notebook, dashboard, benchmark, test and the command line that needs "the course CNN
on shapes" or "an LSTM on the adding problem" gets it here, so they all train the same
thing::

    from mtlearn import tasks
    t = tasks.get("cnn", n=2048, seed=0)          # a Task
    model = t.model()                              # a fresh, seeded model (same every call)
    history = parallel.train(model, t.loss, t.data, lr=t.lr, ...)
    t.accuracy(model)                              # on the validation split

:data:`TASKS` maps each name to a one-line description. Shapes and class counts come from
the data (``num_classes`` is read from the labels, never typed in). ``dtype=np.float64`` is
what comparisons within 1e-10 use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from . import data, nn
from .runtime import checks

#: name -> what it is, in one line
TASKS = {
    "cnn": "course CNN on generated shapes (1x28x28 images, 4 classes)",
    "cnn-digits": "course CNN on the shipped 8x8 digits (10 classes)",
    "mlp": "MLP 784 -> 128 -> 4 on shapes: a step that is mostly two matrix products",
    "wide": "wide MLP 784 -> 1024 -> 1024 -> 4 on shapes: large GEMMs",
    "balanced-mlp": "12 equal Dense(576, 576) blocks on 24x24 shapes: equal pipeline stages",
    "rnn": "RNN(2 -> 32) -> last step -> Dense on the adding problem (T = 20)",
    "lstm": "LSTM(2 -> 32) -> last step -> Dense on the adding problem (T = 20)",
    "gru": "GRU(2 -> 32) -> last step -> Dense on the adding problem (T = 20)",
    "transformer": "causal character Transformer (2 blocks, E = 64, 4 heads) on the arithmetic "
                   "corpus (T = 32)",
    "char-lstm": "character LSTM(151) on the arithmetic corpus (T = 32): the Transformer's "
                 "parameter count",
}


@dataclass(frozen=True)
class Task:
    """One ready-made problem.

    Attributes
    ----------
    name : a key of :data:`TASKS`
    model : ``model() -> nn.Sequential``, a freshly initialised model, the same every call
    loss : the loss object (``nn.SoftmaxCrossEntropy()`` or ``nn.MSELoss()``)
    data : ``(X, y)`` training data; X ``(N, C, H, W)`` images or ``(N, T, 2)`` sequences
    val : ``(X, y)`` held-out data of the same kind
    lr : a learning rate that trains it well with ``SGD(momentum=0.9)``
    num_classes : int for classification (read from the labels), None for regression
    """

    name: str
    model: Callable[[], nn.Sequential]
    loss: object
    data: tuple[np.ndarray, np.ndarray]
    val: tuple[np.ndarray, np.ndarray]
    lr: float
    num_classes: int | None = None
    info: dict = field(default_factory=dict)

    @property
    def description(self) -> str:
        return TASKS[self.name]

    def evaluate(self, model, split: str = "val") -> tuple[float, float | None]:
        """``(mean loss, accuracy or None)`` of ``model`` on ``"val"`` or ``"train"``."""
        X, y = self.val if checks.choice("split", split, ("val", "train")) == "val" else self.data
        out = model.predict(X)
        value, _ = self.loss.forward(out, y)
        if self.num_classes is None:
            return float(value), None
        return float(value), float(np.mean(np.argmax(out, axis=1) == y))

    def accuracy(self, model, split: str = "val") -> float:
        """Fraction of correct classes on ``split`` (classification tasks only)."""
        if self.num_classes is None:
            raise ValueError(f"task {self.name!r} is a regression: it has no accuracy")
        return self.evaluate(model, split)[1]


def get(name: str, *, n: int = 2048, seed: int = 0, dtype=np.float32,
        val_fraction: float = 0.2, **options) -> Task:
    """The :class:`Task` called ``name`` (a key of :data:`TASKS`).

    n : samples in all (train + validation; ``cnn-digits`` has at most 1,797)
    seed : draws the data and initialises the model
    dtype : float dtype of the data and the model
    val_fraction : share of the samples held out for validation (stratified for classes)
    options : per task — ``image_size`` and ``channels`` for ``cnn``; ``seq_len`` and
        ``hidden`` for ``rnn``/``lstm``/``gru``; ``width`` for ``wide``; ``seq_len`` for
        ``transformer`` and ``char-lstm``, with ``embed_dim``, ``num_heads``, ``hidden`` and
        ``num_blocks`` for ``transformer`` and ``hidden`` for ``char-lstm``
    """
    checks.choice("name", name, TASKS)
    n = checks.integer("n", n, min=4)
    seed = checks.seed("seed", seed)
    val_fraction = checks.number("val_fraction", val_fraction, min=0, max=0.9)
    build = _BUILDERS[name]
    try:
        return build(name, n=n, seed=seed, dtype=dtype, val_fraction=val_fraction, **options)
    except TypeError as exc:
        if "unexpected keyword" in str(exc):
            raise TypeError(f"task {name!r} takes no option(s) {sorted(options)}") from None
        raise


def recurrent_jobs(hidden: int = 256, *, n: int = 1024, epochs: int = 1,
                   batch_size: int = 128, seed: int = 0) -> list[dict]:
    """An RNN, an LSTM and a GRU, each with ``hidden`` units, on the same adding problem
    (sequences of 20 steps, ``n`` of them), as ``parallel.train_many`` jobs: the tasks
    ``rnn``, ``lstm`` and ``gru`` at this hidden size. Returns a list of job dicts (``name``,
    ``model``, ``loss``, ``data``, ``epochs``, ``batch_size``, ``lr``, ``seed``), each with a
    model of its own and all with the same data, which they only read::

        runs = parallel.train_many(tasks.recurrent_jobs(256), threads=2)

    With a large ``hidden`` most of each time step is matrix products, which release the
    GIL; with a small one the Python of every time step, which holds it, is most of the
    step.
    """
    hidden = checks.integer("hidden", hidden, min=1)
    jobs = []
    for name in ("rnn", "lstm", "gru"):
        task = get(name, n=n, seed=seed, val_fraction=0, hidden=hidden)
        data = jobs[0]["data"] if jobs else task.data     # one copy of the samples for all
        jobs.append(dict(name=name, model=task.model(), loss=task.loss, data=data,
                         epochs=epochs, batch_size=batch_size, lr=task.lr, seed=seed))
    return jobs


def _split(X, y, val_fraction, seed, stratify):
    if val_fraction == 0:
        return (X, y), (X[:0], y[:0])
    Xt, yt, Xv, yv = data.split(X, y, val_fraction=val_fraction, seed=seed, stratify=stratify)
    return (Xt, yt), (Xv, yv)


def _classes(y) -> int:
    return int(np.max(y)) + 1


def _images(name, *, n, seed, dtype, val_fraction, image_size=28, channels=(8, 16),
            width=1024):
    if name == "cnn-digits":
        X, y = data.digits(dtype=dtype)
        X, y = X[:n], y[:n]
    else:
        side = 24 if name == "balanced-mlp" else image_size
        X, y = data.shapes(n, size=side, seed=seed, dtype=dtype)
    k = _classes(y)
    (Xt, yt), val = _split(X, y, val_fraction, seed, stratify=True)
    c, side = X.shape[1], X.shape[-1]
    pixels = c * side * side
    if name in ("cnn", "cnn-digits"):
        def model():
            return nn.course_cnn(c, side, k, tuple(channels), seed=seed, dtype=dtype)
        lr = 0.05
    elif name == "mlp":
        def model():
            return nn.Sequential(nn.Flatten(), nn.Dense(pixels, 128), nn.ReLU(),
                                 nn.Dense(128, k), seed=seed, dtype=dtype)
        lr = 0.05
    elif name == "wide":
        def model():
            return nn.Sequential(nn.Flatten(), nn.Dense(pixels, width), nn.ReLU(),
                                 nn.Dense(width, width), nn.ReLU(), nn.Dense(width, k),
                                 seed=seed, dtype=dtype)
        lr = 0.01
    else:                                       # balanced-mlp
        def model():
            return nn.balanced_mlp(pixels, num_classes=k, seed=seed, dtype=dtype)
        lr = 0.01
    return Task(name, model, nn.SoftmaxCrossEntropy(), (Xt, yt), val, lr, k)


def _adding(name, *, n, seed, dtype, val_fraction, seq_len=20, hidden=32):
    X, y = data.adding_problem(n, seq_len, seed=seed, dtype=dtype)
    train, val = _split(X, y, val_fraction, seed, stratify=False)
    cell = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[name]

    def model():
        return nn.Sequential(cell(X.shape[-1], hidden), nn.LastStep(), nn.Dense(hidden, 1),
                             seed=seed, dtype=dtype)
    return Task(name, model, nn.MSELoss(), train, val, 0.02, None, {"seq_len": seq_len})


def _chars(name, *, n, seed, dtype, val_fraction, seq_len=32, hidden=None, embed_dim=None,
           num_heads=None, num_blocks=None):
    """Next-character prediction on the shipped arithmetic corpus: ``n`` windows of
    ``seq_len`` characters at seeded random places, X the ids (stored in ``dtype``, whole
    numbers, which ``nn.Embedding`` reads), y the ids one character later (int64). The
    validation windows come from the last ``val_fraction`` of the text, the training
    windows from the rest, so no validation character is trained on."""
    seq_len = checks.integer("seq_len", seq_len, min=1)
    shape = {"embed_dim": embed_dim, "num_heads": num_heads, "num_blocks": num_blocks}
    if name == "char-lstm" and any(v is not None for v in shape.values()):
        raise TypeError(f"task {name!r} takes no option(s) "
                        f"{sorted(k for k, v in shape.items() if v is not None)}")
    text = data.char_corpus()
    vocab = data.Vocabulary.from_text(text)
    ids = vocab.encode(text)
    rng = np.random.default_rng(seed)
    n_val = round(n * val_fraction)
    cut = len(ids) - round(len(ids) * val_fraction)

    def windows(lo, hi, count):
        starts = rng.integers(lo, hi - seq_len, size=count)[:, None] + np.arange(seq_len)
        return ids[starts].astype(dtype), ids[starts + 1]
    train = windows(0, cut, n - n_val)
    val = windows(cut, len(ids), n_val) if n_val else (train[0][:0], train[1][:0])
    V = len(vocab)
    if name == "transformer":
        hidden = 256 if hidden is None else hidden

        E, H, L = embed_dim or 64, num_heads or 4, 2 if num_blocks is None else num_blocks

        def model():
            return nn.char_transformer(V, E, H, hidden, L, max_len=seq_len, seed=seed,
                                       dtype=dtype)
    else:
        hidden = 151 if hidden is None else hidden

        def model():
            return nn.char_model(V, "lstm", hidden_size=hidden, seed=seed, dtype=dtype)
    info = {"vocab": vocab, "seq_len": seq_len, "unigram": data.unigram_loss(ids[:cut], V)}
    return Task(name, model, nn.SequenceCrossEntropy(), train, val, 0.1, None, info)


_BUILDERS = {"cnn": _images, "cnn-digits": _images, "mlp": _images, "wide": _images,
             "balanced-mlp": _images, "rnn": _adding, "lstm": _adding, "gru": _adding,
             "transformer": _chars, "char-lstm": _chars}
