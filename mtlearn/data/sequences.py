"""Generated sequence tasks, shaped ``(N, T, features)`` like the recurrent layers' input.

- :func:`sine_waves` -- predict the next value of a sine wave (regression, short memory).
- :func:`adding_problem` -- add the two marked numbers of a long sequence (regression, long
  memory): the classic test of whether a recurrent network can carry information over many
  steps (Hochreiter & Schmidhuber 1997).
"""

from __future__ import annotations

import numpy as np


def _check(n, seq_len, min_len, dtype):
    for name, v, least in (("n", n, 1), ("seq_len", seq_len, min_len)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < least:
            raise ValueError(f"{name} must be an integer >= {least}, got {v!r}")
    if np.dtype(dtype).kind != "f":
        raise ValueError(f"dtype must be a floating-point dtype, got {dtype!r}")


def sine_waves(n, seq_len=50, *, seed=0, noise=0.0, dtype=np.float32):
    """Sine waves of random frequency and phase; the target is the next value.

    Parameters
    ----------
    n : int, number of sequences
    seq_len : int >= 1, steps per input sequence
    seed : int or numpy.random.Generator
    noise : standard deviation of Gaussian noise added to the inputs (not the target)
    dtype : floating dtype of X and y

    Returns
    -------
    X : ndarray of shape (n, seq_len, 1)
        ``sin(2 pi f t + phi)`` for ``t = 0 .. seq_len-1``, with ``f ~ U(0.02, 0.2)`` cycles
        per step and ``phi ~ U(0, 2 pi)``.
    y : ndarray of shape (n, 1)
        The value at ``t = seq_len``.
    """
    _check(n, seq_len, 1, dtype)
    rng = np.random.default_rng(seed)
    freq = rng.uniform(0.02, 0.2, size=(n, 1))
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1))
    s = np.sin(2 * np.pi * freq * np.arange(seq_len + 1) + phase)
    X = s[:, :-1, None]
    if noise:
        X = X + noise * rng.standard_normal(X.shape)
    return X.astype(dtype), s[:, -1:].astype(dtype)


def adding_problem(n, seq_len=50, *, seed=0, dtype=np.float32):
    """The adding problem: the target is the sum of the two marked values of a sequence.

    Each step has two features: a value ``~ U(0, 1)`` and a marker, 1 at exactly two steps
    (one drawn in the first half of the sequence, one in the second) and 0 elsewhere. The
    version of Le, Jaitly & Hinton (2015) and Arjovsky, Shah & Bengio (2016). The target has
    mean 1 and variance 1/6, so always answering 1.0 scores a mean squared error of about
    0.167; a model must remember the first marked value for up to ``seq_len`` steps to do
    better than about 0.08 (knowing only the second value).

    Parameters
    ----------
    n : int, number of sequences
    seq_len : int >= 2
    seed : int or numpy.random.Generator
    dtype : floating dtype of X and y

    Returns
    -------
    X : ndarray of shape (n, seq_len, 2)
        ``X[..., 0]`` the values, ``X[..., 1]`` the markers.
    y : ndarray of shape (n, 1)
        The sum of the two marked values, in [0, 2].
    """
    _check(n, seq_len, 2, dtype)
    rng = np.random.default_rng(seed)
    half = seq_len // 2
    values = rng.uniform(0, 1, size=(n, seq_len))
    first = rng.integers(0, half, size=n)
    second = rng.integers(half, seq_len, size=n)
    rows = np.arange(n)
    markers = np.zeros((n, seq_len))
    markers[rows, first] = 1
    markers[rows, second] = 1
    y = values[rows, first] + values[rows, second]
    X = np.stack([values, markers], axis=2)
    return X.astype(dtype), y[:, None].astype(dtype)
