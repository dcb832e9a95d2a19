"""Small float64 training problems shared by the strategy tests, the 1e-10 check, and a
layer that fails on purpose."""

import threading
import time

import numpy as np

from mtlearn import nn, parallel, tasks

#: strategies that must reproduce serial training agree with it to this relative tolerance
REL = 1e-10

#: strategies that must reproduce serial training (float64, within REL); test_parallel.py
#: checks that each is registered, so a missing one fails instead of shrinking the tests
EXACT = ["sync", "asyncio", "pipeline", "tensor", "process"]


def cnn_case(n=96):
    """``(model factory, loss, X, y)``: the course CNN with 4 and 6 channels on 12x12 shapes,
    float64, all ``n`` samples for training (from :mod:`mtlearn.tasks`)."""
    t = tasks.get("cnn", n=n, seed=3, image_size=12, channels=(4, 6), dtype=np.float64,
                  val_fraction=0)
    return t.model, t.loss, *t.data


def lstm_case(n=96):
    """``(model factory, loss, X, y)``: LSTM(2, 8) -> LastStep -> Dense on the adding problem
    (T = 12), float64."""
    t = tasks.get("lstm", n=n, seed=4, seq_len=12, hidden=8, dtype=np.float64,
                  val_fraction=0)
    return t.model, t.loss, *t.data


CASES = {"cnn": cnn_case, "lstm": lstm_case}


def train_case(case, strategy, threads, **kw):
    """Train a fresh model of ``case`` (a key of :data:`CASES` or a case function) with the
    tests' usual settings (1 epoch of batches of 24, lr 0.1, seed 5) overridden by ``kw``;
    returns ``(History, final parameters)``."""
    make, loss, X, y = (CASES[case] if isinstance(case, str) else case)()
    model = make()
    kw = {"epochs": 1, "batch_size": 24, "lr": 0.1, "seed": 5, **kw}
    h = parallel.train(model, loss, (X, y), strategy=strategy, threads=threads, **kw)
    return h, model.params.copy()


def assert_close(a, b, what="result"):
    """``max |a - b| <= REL * max |b|``: equal to serial up to rounding."""
    a, b = np.asarray(a), np.asarray(b)
    assert np.max(np.abs(a - b)) <= REL * np.max(np.abs(b)), f"{what}: differs from serial"


class Exploding(nn.ReLU):
    """A ReLU that raises ``RuntimeError(message)`` on its third call, from whichever
    thread runs it."""

    def __init__(self, message="boom in a worker"):
        super().__init__()
        self.message = message
        self.calls = 0
        self.lock = threading.Lock()

    def forward(self, x):
        with self.lock:
            self.calls += 1
            if self.calls == 3:
                raise RuntimeError(self.message)
        return super().forward(x)


class GoesNaN(nn.ReLU):
    """A ReLU whose output turns NaN after its first call (the dry run ``train`` makes on
    two samples before any thread starts): training diverges at step 0."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        out, cache = super().forward(x)
        return (out * np.nan if self.calls > 1 else out), cache


class Trap(nn.ReLU):
    """A ReLU that, on chosen calls, gets stuck (waits for ``release``, up to 30 s) or
    raises ``RuntimeError("injected fault on call N")``; ``failed_at`` is when it raised.
    Call 1 is the dry run ``train`` makes before any thread starts (pipeline and tensor
    make one more, for their plans). It survives pickling (the process strategy)."""

    def __init__(self, stick=(), fail=()):
        super().__init__()
        self.stick, self.fail = set(stick), set(fail)
        self.calls = 0
        self.failed_at = None
        self._events()

    def _events(self):
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.stuck = threading.Event()

    def forward(self, x):
        with self.lock:
            self.calls += 1
            call = self.calls
        if call in self.stick:
            self.stuck.set()
            self.release.wait(30)
        if call in self.fail:
            self.failed_at = time.perf_counter()
            raise RuntimeError(f"injected fault on call {call}")
        return super().forward(x)

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items()
                if k not in ("lock", "release", "stuck")}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._events()
