"""Small float64 training problems shared by the strategy tests, the 1e-10 check, and a
layer that fails on purpose."""

import threading

import numpy as np

from mtlearn import data, nn

#: strategies that must reproduce serial training agree with it to this relative tolerance
REL = 1e-10


def cnn_case(n=96):
    """``(model factory, loss, X, y)``: a two-conv CNN on 12x12 shapes, float64."""
    X, y = data.shapes(n, size=12, seed=3)

    def model():
        return nn.Sequential(nn.Conv2D(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2D(2),
                             nn.Conv2D(4, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2D(2),
                             nn.Flatten(), nn.Dense(6 * 3 * 3, 4), seed=1, dtype=np.float64)
    return model, nn.SoftmaxCrossEntropy(), X.astype(np.float64), y


def lstm_case(n=96):
    """``(model factory, loss, X, y)``: LSTM -> LastStep -> Dense on the adding problem."""
    X, y = data.adding_problem(n, 12, seed=4)

    def model():
        return nn.Sequential(nn.LSTM(2, 8), nn.LastStep(), nn.Dense(8, 1),
                             seed=2, dtype=np.float64)
    return model, nn.MSELoss(), X.astype(np.float64), y.reshape(-1, 1).astype(np.float64)


CASES = {"cnn": cnn_case, "lstm": lstm_case}


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
