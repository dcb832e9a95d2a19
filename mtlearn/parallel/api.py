"""``parallel.train``: check every argument, pick the strategy, run it."""

from __future__ import annotations

import numpy as np

from ..runtime import checks
from .aio import Asyncio
from .base import Strategy
from .config import RunConfig
from .history import History
from .hogwild import Hogwild
from .pipeline import Pipeline
from .process import Process
from .serial import Serial
from .sync import Sync
from .tensor import Tensor

#: name -> strategy class (``cls.description`` is its one-line summary)
STRATEGIES: dict[str, type[Strategy]] = {cls.name: cls for cls in (
    Serial, Sync, Hogwild, Asyncio, Process, Pipeline, Tensor,
)}


def describe() -> str:
    """One line per strategy: name and description."""
    return "\n".join(f"{name:9} {cls.description}" for name, cls in STRATEGIES.items())


def train(model, loss, data, strategy: str = "serial", threads: int = 1, epochs: int = 1,
          batch_size: int = 64, lr: float = 0.05, seed: int = 0, optimizer=None, *,
          prefetch: int = 0, augment=None, check_finite: bool = True, trace: bool = True,
          blas_threads: int | None = 1, on_step=None, on_epoch=None, cancel=None,
          **strategy_options) -> History:
    """Train ``model`` in place on ``data = (X, y)`` with the chosen strategy.

    Parameters
    ----------
    model : ``nn.Sequential`` (flat ``params``; layers keep no per-call state)
    loss : e.g. ``nn.SoftmaxCrossEntropy()`` or ``nn.MSELoss()``
    data : ``(X, y)``, numpy arrays: ``X`` of shape (N, ...) as the model expects (real,
        finite), ``y`` (N, ...) targets
    strategy : a key of :data:`STRATEGIES`
    threads : workers (threads, or processes for ``"process"``), int from 1 to 1024
    epochs, batch_size : passes over the data; samples per optimizer step. **The last
        partial batch of each epoch is dropped** (each epoch reshuffles), so every step has
        ``batch_size`` samples and every strategy makes the same steps.
    lr : learning rate of the default optimizer, plain SGD (the one default optimizer)
    seed : int >= 0, seeds the batch order (and anything random in a strategy)
    optimizer : ``None`` or a factory ``params -> nn.Optimizer`` such as
        ``lambda p: nn.SGD(p, lr=0.05, momentum=0.9)``; strategies may call it on slices
    prefetch : ``N > 0`` loads batches ``N`` ahead on a producer thread (:class:`Prefetcher`)
    augment : optional ``augment(xb, rng) -> xb`` applied while loading
    check_finite : stop with ``FloatingPointError`` naming the step when the loss is NaN/inf
    trace : record per-thread spans into ``History.trace``
    blas_threads : BLAS threads during training (1 = one per worker; None leaves it alone)
    on_step : optional ``on_step(step, loss)`` called after every step (step counts from
        1) — progress bars; it runs on the thread that finished the step
    on_epoch : optional ``on_epoch(epoch, history)`` called after each epoch's last step —
        validation, logging
    cancel : optional ``threading.Event``; setting it (from any thread) stops the run at its
        next step, and ``train`` returns the History so far with ``cancelled=True``
    strategy_options : options of the chosen strategy (see its ``options``)

    Returns a :class:`History` that records how it was made (``history.config``,
    ``history.machine``). Every check happens before any thread starts: arguments, data
    (NaN/inf named as such), a dry run of forward and backward on two samples, the
    optimizer factory called once on a copy of the parameters.
    """
    return prepare(model, loss, data, strategy, threads, epochs, batch_size, lr, seed, optimizer,
                   prefetch=prefetch, augment=augment, check_finite=check_finite, trace=trace,
                   blas_threads=blas_threads, on_step=on_step, on_epoch=on_epoch, cancel=cancel,
                   **strategy_options).run()


def prepare(model, loss, data, strategy: str = "serial", threads: int = 1, epochs: int = 1,
            batch_size: int = 64, lr: float = 0.05, seed: int = 0, optimizer=None, *,
            prefetch: int = 0, augment=None, check_finite: bool = True, trace: bool = True,
            blas_threads: int | None = 1, on_step=None, on_epoch=None, cancel=None,
            **strategy_options) -> Strategy:
    """Check every argument of :func:`train` (same parameters) and build the strategy
    object, starting nothing; ``.run()`` on it trains. (``train_many`` checks all its jobs
    this way first.)"""
    cls = STRATEGIES[checks.choice("strategy", strategy, STRATEGIES)]
    unknown = sorted(set(strategy_options) - set(cls.options))
    if unknown:
        known = ", ".join(sorted(cls.options)) or "none"
        raise TypeError(f"strategy {strategy!r} has no option(s) {unknown}; its options: {known}")
    threads = checks.workers("threads", threads)
    X, y = check_data(data)
    config = RunConfig(
        strategy=strategy, threads=threads,
        epochs=checks.integer("epochs", epochs, min=1),
        batch_size=checks.integer("batch_size", batch_size, min=1, max=len(X)),
        lr=checks.number("lr", lr, min=0, min_open=True),
        seed=checks.seed("seed", seed),
        optimizer=checks.function("optimizer", optimizer, "a factory params -> nn.Optimizer",
                                  optional=True),
        prefetch=checks.integer("prefetch", prefetch, min=0),
        augment=checks.function("augment", augment, "a function augment(xb, rng) -> xb",
                                optional=True),
        check_finite=checks.boolean("check_finite", check_finite),
        trace=checks.boolean("trace", trace),
        blas_threads=None if blas_threads is None else checks.workers("blas_threads",
                                                                      blas_threads),
        options=strategy_options,
        on_step=checks.function("on_step", on_step, "a function on_step(step, loss)",
                                optional=True),
        on_epoch=checks.function("on_epoch", on_epoch, "a function on_epoch(epoch, history)",
                                 optional=True),
        cancel=check_event("cancel", cancel))
    if cls.splits_batch and config.batch_size < threads:
        raise ValueError(f"batch_size ({config.batch_size}) must be >= threads ({threads}): "
                         "each worker needs at least one sample")
    dry_run(model, loss, X, y, config)
    return cls(model, loss, X, y, config)


def check_data(data) -> tuple[np.ndarray, np.ndarray]:
    """``data`` as ``(X, y)``: numpy arrays of equal length, X real and finite."""
    try:
        X, y = data
    except (TypeError, ValueError):
        raise TypeError("data must be a pair (X, y) of numpy arrays, got "
                        f"{type(data).__name__}") from None
    for name, a in (("X", X), ("y", y)):
        if not isinstance(a, np.ndarray):
            raise TypeError(f"data: {name} must be a numpy array (np.asarray it first), got "
                            f"{type(a).__name__}")
        if a.ndim == 0 or len(a) == 0:
            raise ValueError(f"data: {name} must hold at least one sample, got shape {a.shape}")
        if a.dtype.kind not in "biuf":
            raise TypeError(f"data: {name} must hold real numbers, got dtype {a.dtype}")
    if len(X) != len(y):
        raise ValueError(f"data: X and y must have the same length, got {len(X)} and {len(y)}")
    if X.dtype.kind == "f" and not np.isfinite(X).all():
        bad = int(np.count_nonzero(~np.isfinite(X)))
        raise ValueError(f"data: X holds {bad} NaN or infinite value(s); clean the data first")
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise ValueError("data: y holds NaN or infinite values; clean the data first")
    return X, y


def check_event(name: str, value):
    """None or an object with ``is_set()`` and ``set()`` (a ``threading.Event``)."""
    if value is not None and not (callable(getattr(value, "is_set", None))
                                  and callable(getattr(value, "set", None))):
        raise TypeError(f"{name} must be None or a threading.Event, got {type(value).__name__}")
    return value


def dry_run(model, loss, X, y, config: RunConfig) -> None:
    """Everything that could fail inside a worker, tried once on this thread first: the
    model, the loss (forward and backward on two samples), ``augment`` and the optimizer
    factory (called on a copy of the parameters; its result must have ``step``)."""
    params = getattr(model, "params", None)
    if not isinstance(params, np.ndarray) or params.ndim != 1:
        raise TypeError("model must have a flat 1-D params vector (use nn.Sequential), got "
                        f"{type(model).__name__}")
    if params.size == 0:
        raise ValueError("model has no parameters: there is nothing to train")
    for name in ("forward", "backward"):
        if not callable(getattr(loss, name, None)):
            raise TypeError(f"loss must have forward(out, y) and backward(cache), such as "
                            f"nn.SoftmaxCrossEntropy(), got {type(loss).__name__}")
    xb, yb = X[:2], y[:2]
    if config.augment is not None:
        try:
            out = config.augment(xb.copy(), np.random.default_rng(config.seed))
        except Exception as exc:
            exc.add_note("raised by augment(xb, rng) in a dry run on two samples")
            raise
        if not isinstance(out, np.ndarray) or out.shape[0] != len(xb):
            raise TypeError(f"augment(xb, rng) must return an array of {len(xb)} samples, got "
                            f"{type(out).__name__} {getattr(out, 'shape', '')}")
        xb = out
    try:
        value, _, _ = model.loss_and_grads(loss, xb, yb)
    except Exception as exc:
        exc.add_note("raised in a dry run of forward and backward on two samples of data, "
                     "before any thread started")
        raise
    if not np.ndim(value) == 0:
        raise TypeError(f"loss.forward must return a scalar loss, got shape {np.shape(value)}")
    if config.optimizer is not None:
        made = config.optimizer(params.copy())
        if not callable(getattr(made, "step", None)):
            raise TypeError("optimizer must be a factory params -> nn.Optimizer (an object "
                            f"with step(grads)), but it returned {type(made).__name__}")
