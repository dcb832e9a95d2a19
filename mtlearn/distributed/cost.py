"""What an allreduce costs: the ring model and a fit of it to measured times.

In a ring allreduce of ``n`` bytes over ``N`` ranks, the vector is cut into ``N`` chunks;
``N - 1`` steps of reduce-scatter leave each rank with one fully summed chunk, and ``N - 1``
steps of all-gather hand every chunk to every rank. Each step a rank sends one chunk
(``n / N`` bytes), so each rank sends ``2 (N - 1) / N * n`` bytes in all — almost ``2 n``,
*whatever N*: that is why the ring scales. (MPI libraries pick among several algorithms by
message size; for large messages they use reduce-scatter + all-gather, which sends the same.)

The classic latency-bandwidth ("alpha-beta") model of its time::

    t(n, N) = 2 (N - 1) * latency + 2 (N - 1) / N * n / bandwidth

:func:`fit_allreduce` finds ``latency`` and ``bandwidth`` from measured times; the
"bus bandwidth" :func:`bus_bandwidth` (the name NCCL's tests use) is the measured
counterpart of ``bandwidth`` for one message size.
"""

from __future__ import annotations

import numpy as np


def ring_allreduce_bytes(nbytes, ranks: int):
    """Bytes each rank sends in a ring allreduce of ``nbytes`` over ``ranks``:
    ``2 (ranks - 1) / ranks * nbytes`` (0 for one rank)."""
    if ranks < 1:
        raise ValueError(f"ranks must be >= 1, got {ranks}")
    return 2 * (ranks - 1) / ranks * np.asarray(nbytes, dtype=float)


def allreduce_time(nbytes, ranks: int, latency: float, bandwidth: float):
    """Seconds the alpha-beta model predicts: ``2 (ranks - 1)`` messages of ``latency``
    seconds each, plus :func:`ring_allreduce_bytes` at ``bandwidth`` bytes/s."""
    return 2 * (ranks - 1) * latency + ring_allreduce_bytes(nbytes, ranks) / bandwidth


def bus_bandwidth(nbytes, seconds, ranks: int):
    """Bytes/s each rank moved: :func:`ring_allreduce_bytes` over the measured time."""
    return ring_allreduce_bytes(nbytes, ranks) / np.asarray(seconds, dtype=float)


def fit_allreduce(nbytes, seconds, ranks: int) -> dict:
    """Fit :func:`allreduce_time` to measured ``seconds`` for message sizes ``nbytes``.

    Least squares on *relative* errors, so small and large messages count alike. Returns
    ``{"latency": s, "bandwidth": bytes/s}`` (each at least a tiny positive number).
    """
    if ranks < 2:
        raise ValueError("an allreduce over one rank sends nothing: fit needs ranks >= 2")
    n = np.asarray(nbytes, dtype=float)
    t = np.asarray(seconds, dtype=float)
    if n.shape != t.shape or n.size < 2:
        raise ValueError("nbytes and seconds must have the same length, at least 2")
    # t = a * 2(N-1) + b * ring_bytes, with a = latency, b = 1 / bandwidth; rows scaled by 1/t
    A = np.stack([np.full_like(n, 2.0 * (ranks - 1)), ring_allreduce_bytes(n, ranks)], axis=1)
    coef, *_ = np.linalg.lstsq(A / t[:, None], np.ones_like(t), rcond=None)
    latency = max(float(coef[0]), 1e-9)
    bandwidth = 1.0 / max(float(coef[1]), 1e-15)
    return {"latency": latency, "bandwidth": bandwidth}
