"""``python -m mtlearn train MODEL``: train a model on a built-in dataset, with any strategy.

    python -m mtlearn train cnn                                # serial: the baseline
    python -m mtlearn train cnn --strategy sync --threads 2    # the same steps on 2 threads
    python -m mtlearn train lstm                               # characters of arithmetic
    python -m mtlearn train gru --dataset adding --epochs 2

``cnn`` learns images (``--dataset shapes`` or ``digits``: the tasks ``cnn`` and
``cnn-digits`` of :mod:`mtlearn.tasks`); ``rnn``, ``lstm`` and ``gru`` learn the arithmetic
corpus character by character (``--dataset chars``, then a sample of generated text) or the
adding problem (``--dataset adding``: the tasks ``rnn``, ``lstm``, ``gru``).

Every run goes through ``parallel.train`` (by way of ``training.fit``), so the rules are
its rules: the last partial batch of each epoch is dropped, every argument is checked
before anything trains (a bad one exits with status 2 and argparse's message), and a run
whose loss stops being a finite number stops there (status 1), not after the last epoch.

``chars`` trains on windows of ``--seq-len`` characters, each read from a zero state, so
that any strategy can shuffle and split them. Notebook 03's ``nn.fit_tbptt`` carries the
state from one chunk to the next instead, which ties it to one thread (its docstring says
why).
"""

from __future__ import annotations

import sys
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass

from ..runtime import checks

RECURRENT = ("rnn", "lstm", "gru")
DATASETS = {"cnn": ("shapes", "digits"), **{m: ("chars", "adding") for m in RECURRENT}}
#: the keys of ``parallel.STRATEGIES``, written out so that building the parser imports no
#: numpy (``python -m mtlearn gil`` runs in interpreters that may lack it); a test checks
#: that the two agree
STRATEGIES = ("serial", "sync", "hogwild", "asyncio", "process", "pipeline", "tensor")
#: option -> the datasets it applies to (given for another one, it is an error, not ignored)
APPLIES = {"n": ("shapes", "digits", "adding"), "hidden": ("chars", "adding"),
           "seq_len": ("chars", "adding"), "temperature": ("chars",)}
DEFAULT_N = {"shapes": 2000, "digits": 1797, "adding": 10000}
MAX_N = 1_000_000

_int = checks.for_argparse(checks.integer, min=1)


def add_parser(sub) -> None:
    s = sub.add_parser("train", help="train a model on a built-in dataset",
                       description="Train a model on a built-in dataset through "
                                   "parallel.train, with any strategy; prints the time per "
                                   "step and the result.")
    s.add_argument("model", choices=["cnn", *RECURRENT], help="which model")
    s.add_argument("--dataset", choices=["shapes", "digits", "chars", "adding"], default=None,
                   help="cnn: shapes (default) or digits; rnn/lstm/gru: chars (default) "
                        "or adding")
    s.add_argument("--strategy", choices=STRATEGIES, default="serial",
                   help="how to train: serial (default, the baseline) or a threading "
                        "strategy of mtlearn.parallel")
    s.add_argument("--threads", type=checks.for_argparse(checks.workers), default=1,
                   help="workers of the strategy (default 1)")
    s.add_argument("--epochs", type=_int, default=5, help="passes over the data (default 5)")
    s.add_argument("--batch-size", type=_int, default=32,
                   help="samples per step (default 32); the last partial batch of each "
                        "epoch is dropped")
    s.add_argument("--lr", type=checks.for_argparse(checks.number, min=0, min_open=True),
                   default=None,
                   help="learning rate (default 0.05 with SGD and momentum 0.9 for cnn, "
                        "0.01 with Adam otherwise)")
    s.add_argument("--n", type=checks.for_argparse(checks.integer, min=10, max=MAX_N),
                   default=None,
                   help="samples in all, a fifth held out for validation: images "
                        "(shapes, default 2000; digits, at most 1797) or sequences "
                        "(adding, default 10000)")
    s.add_argument("--hidden", type=_int, default=None,
                   help="hidden size of rnn/lstm/gru (default 128 for chars, 32 for adding)")
    s.add_argument("--seq-len", type=_int, default=None,
                   help="steps per sequence: the window of characters (chars, default 32) "
                        "or the sequence length (adding, default 50)")
    s.add_argument("--temperature", type=checks.for_argparse(checks.number, min=0),
                   default=None, help="sampling temperature of the generated text (chars, "
                                      "default 0.8)")
    s.add_argument("--seed", type=checks.for_argparse(checks.seed), default=0,
                   help="seeds the data, the model and the batch order (default 0)")
    s.add_argument("--blas-threads", type=checks.for_argparse(checks.workers), default=1,
                   help="BLAS threads while training (default 1)")
    s.add_argument("--quiet", action="store_true", help="no progress on stderr")
    s.set_defaults(func=run, parser=s)


@dataclass
class Problem:
    """What one dataset trains: model, loss, data, optimizer, and how to report the result."""

    model: object
    loss: object
    data: tuple
    val: tuple | None
    lr: float
    optimizer: str                   # "sgd" (with momentum 0.9) or "adam"
    header: list[str]
    report: Callable                 # report(model, result) -> lines to print
    epoch_line: Callable | None = None   # epoch_line(epoch, losses, seconds, result) -> str


def run(args) -> int:
    parser = args.parser
    dataset = args.dataset or DATASETS[args.model][0]
    if dataset not in DATASETS[args.model]:
        parser.error(f"argument --dataset: {args.model} trains on "
                     f"{' or '.join(DATASETS[args.model])}, not {dataset!r}")
    for name, datasets in APPLIES.items():
        if getattr(args, name) is not None and dataset not in datasets:
            parser.error(f"argument --{name.replace('_', '-')}: not used by --dataset "
                         f"{dataset} (only by {', '.join(datasets)})")
    if args.strategy == "serial" and args.threads != 1:
        parser.error(f"argument --threads: strategy serial runs on one thread; choose "
                     f"another --strategy to train on {args.threads}")
    from .. import parallel

    if parallel.STRATEGIES[args.strategy].splits_batch and args.batch_size < args.threads:
        parser.error(f"argument --threads: strategy {args.strategy} splits each batch across "
                     f"its threads, so at most --batch-size ({args.batch_size}) threads, got "
                     f"{args.threads}")
    problem = BUILDERS[dataset](args, dataset)
    n_train = len(problem.data[0])
    if args.batch_size > n_train:
        parser.error(f"argument --batch-size: must be at most the number of training "
                     f"samples ({n_train}), got {args.batch_size}")
    return _train(args, problem)


def _train(args, problem: Problem) -> int:
    from .. import nn, parallel
    from ..runtime import info
    from ..training import fit
    from .common import ProgressBar

    lr = problem.lr if args.lr is None else args.lr
    if problem.optimizer == "sgd":
        def optimizer(p):
            return nn.SGD(p, lr=lr, momentum=0.9)
        opt_text = f"SGD(lr={lr:g}, momentum=0.9)"
    else:
        def optimizer(p):
            return nn.Adam(p, lr=lr)
        opt_text = f"Adam(lr={lr:g})"
    model = problem.model
    for line in problem.header:
        print(line)
    print(f"{model.num_params:,} parameters; strategy {args.strategy} on "
          f"{_workers(args.strategy, args.threads)}; {opt_text}; BLAS {args.blas_threads} "
          f"thread{'s' * (args.blas_threads != 1)}; {info.cpu_count()} cores")
    settings = dict(strategy=args.strategy, threads=args.threads, epochs=args.epochs,
                    batch_size=args.batch_size, lr=lr, seed=args.seed, optimizer=optimizer,
                    blas_threads=args.blas_threads)
    try:    # every check of parallel.train, before anything trains (prepare starts nothing)
        parallel.api.prepare(model, problem.loss, problem.data, **settings)
    except (TypeError, ValueError) as exc:
        args.parser.error(str(exc))
    per_epoch = len(problem.data[0]) // args.batch_size
    bar = None if args.quiet else ProgressBar(args.epochs * per_epoch, per_epoch)
    watch = Divergence(bar)
    try:
        # Overflow on the way to a NaN loss is reported once, below, not as numpy warnings.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            result = fit(model, problem.loss, problem.data, problem.val, on_step=watch,
                         cancel=watch.cancel, **settings)
    except FloatingPointError as exc:        # parallel.train: a NaN or infinite loss
        watch.reason = str(exc).split(":")[0]          # "the loss is nan at step 12"
    finally:
        if bar is not None:
            bar.close()
    if watch.reason:
        print(f"mtlearn train: training diverged: {watch.reason}; try a smaller --lr (this "
              f"run: {lr:g})", file=sys.stderr)
        return 1
    losses = result.losses
    for e, seconds in enumerate(result.epoch_times, 1):
        epoch_losses = losses[(e - 1) * per_epoch:e * per_epoch]
        if problem.epoch_line is not None:
            print(problem.epoch_line(e, epoch_losses, seconds, result))
        else:
            print(f"epoch {e:2d}  mean loss {sum(epoch_losses) / len(epoch_losses):.4f}  "
                  f"{seconds:.2f} s")
    h = result.history
    print(f"{h.strategy} on {_workers(h.strategy, h.threads)}: {h.steps} steps in "
          f"{h.wall_time:.2f} s ({1e3 * h.wall_time / max(h.steps, 1):.2f} ms/step)")
    for line in problem.report(model, result):
        print(line)
    return 0


def _workers(strategy: str, n: int) -> str:
    unit = "process" if strategy == "process" else "thread"
    return f"{n} {unit}{'es' if unit == 'process' else 's'}" if n != 1 else f"1 {unit}"


class Divergence:
    """``on_step`` that stops a run whose loss passes ``FACTOR`` times its first value (or
    1.0, if that is more): by then it is not learning, whatever the last epochs would print.
    (A NaN or infinite loss is caught earlier, by ``parallel.train`` itself.) Calls
    ``then(step, loss)`` (a progress bar) after every step."""

    FACTOR = 10.0

    def __init__(self, then=None) -> None:
        self.then = then
        self.cancel = threading.Event()
        self.first: float | None = None
        self.reason = ""                   # set once the run has diverged

    def __call__(self, step: int, loss: float) -> None:
        if self.first is None:
            self.first = loss
        elif loss > self.FACTOR * max(self.first, 1.0) and not self.reason:
            self.reason = (f"the loss rose from {self.first:.4g} at step 1 to {loss:.4g} at "
                           f"step {step}")
            self.cancel.set()              # the run stops at its next step
        if self.then is not None:
            self.then(step, loss)


# -- the datasets ---------------------------------------------------------------------------
def _images(args, dataset) -> Problem:
    from .. import tasks

    task = tasks.get("cnn" if dataset == "shapes" else "cnn-digits",
                     n=args.n or DEFAULT_N[dataset], seed=args.seed)
    (X, _), (Xv, _) = task.data, task.val
    header = [f"{dataset}: {len(X)} train / {len(Xv)} validation images {X.shape[1:]}, "
              f"{task.num_classes} classes"]

    def epoch_line(e, losses, seconds, result):
        return (f"epoch {e:2d}  validation accuracy {result.val_accuracy[e - 1]:6.2%}  "
                f"{seconds:.2f} s")

    def report(model, result):
        line = f"final validation accuracy {result.final_accuracy:.2%}"
        if result.final_accuracy <= 1.5 / task.num_classes:
            line += (f" - about chance ({1 / task.num_classes:.0%}): the learning rate may be "
                     "too high (units that die) or too low, or training too short")
        return [line]

    return Problem(task.model(), task.loss, task.data, task.val, task.lr, "sgd", header,
                   report, epoch_line)


def _adding(args, dataset) -> Problem:
    import numpy as np

    from .. import tasks

    seq_len = args.seq_len or 50
    if seq_len < 2:
        args.parser.error("argument --seq-len: the adding problem needs at least 2 steps")
    task = tasks.get(args.model, n=args.n or DEFAULT_N[dataset], seed=args.seed,
                     seq_len=seq_len, hidden=args.hidden or 32)
    Xv, yv = task.val
    baseline = float(np.mean((yv - 1.0) ** 2))
    header = [f"adding problem: {len(task.data[0])} train / {len(Xv)} validation sequences "
              f"of {seq_len} steps",
              f"mean squared error to beat (always answering 1.0): {baseline:.3f}"]

    def report(model, result):
        mse = float(np.mean((model.predict(Xv) - yv) ** 2))
        return [f"validation mean squared error {mse:.4f} (to beat: {baseline:.3f})"]

    return Problem(task.model(), task.loss, task.data, None, 0.01, "adam", header, report)


def _chars(args, dataset) -> Problem:
    import numpy as np

    from .. import data, nn

    text = data.char_corpus()
    vocab = data.Vocabulary.from_text(text)
    ids = vocab.encode(text)
    seq_len = args.seq_len or 32
    windows = (len(ids) - 1) // seq_len
    if windows < 1:
        args.parser.error(f"argument --seq-len: must be shorter than the corpus "
                          f"({len(ids)} characters), got {seq_len}")
    # Window k: characters k*T .. k*T+T-1, and as targets the character after each.
    X = ids[:windows * seq_len].reshape(windows, seq_len)
    y = ids[1:windows * seq_len + 1].reshape(windows, seq_len)
    model = nn.char_model(len(vocab), args.model, hidden_size=args.hidden or 128,
                          seed=args.seed)
    baseline = data.unigram_loss(ids)
    temperature = 0.8 if args.temperature is None else args.temperature
    header = [f"chars: {len(text):,} characters of arithmetic, vocabulary {len(vocab)}; "
              f"{windows} windows of {seq_len} characters; {args.model.upper()}",
              f"loss to beat (unigram entropy): {baseline:.3f} nats/char"]

    def report(model, result):
        final = float(np.mean(result.losses[-10:]))
        sample = nn.sample(model, "\n", 200, temperature=temperature, rng=args.seed,
                           vocab=vocab)
        score = data.score_arithmetic(sample)
        return [f"final loss {final:.3f} nats/char ({final / baseline:.0%} of the unigram "
                f"baseline)",
                f"sample at temperature {temperature:g}: {score['well_formed']:.0%} of lines "
                f"well formed, {score['correct']:.0%} correct",
                sample.strip("\n")]

    return Problem(model, nn.SequenceCrossEntropy(), (X, y), None, 0.01, "adam", header,
                   report)


BUILDERS = {"shapes": _images, "digits": _images, "adding": _adding, "chars": _chars}
