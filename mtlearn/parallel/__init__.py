"""Training strategies: one entry point, one small module per way of using threads.

    from mtlearn import parallel
    history = parallel.train(model, loss, (X, y), strategy="sync", threads=4,
                             epochs=1, batch_size=64, lr=0.05, seed=0)

``parallel.STRATEGIES`` maps each name to its class; ``Strategy.description`` says what it
does in one line. Every strategy returns a :class:`History` and joins every thread it
started before returning, on success, error and interrupt alike.
"""

from ..runtime.threads import WorkerGroup
from .api import STRATEGIES, describe, train
from .history import History
from .prefetch import Prefetcher, random_shift
from .schedules import ideal_schedule, measured_schedule, step_window
from .task import Histories, train_many

__all__ = ["Histories", "History", "Prefetcher", "STRATEGIES", "WorkerGroup", "describe",
           "ideal_schedule", "measured_schedule", "random_shift", "step_window", "train",
           "train_many"]
