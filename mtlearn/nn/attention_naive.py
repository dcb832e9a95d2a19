"""Multi-head attention written one head and one query position at a time: the reference.

Read this first. :func:`attention_forward_naive` is the definition — for each head, each
position t asks every position s (every ``s <= t`` when causal) how well its key matches
t's query, turns the matches into weights with a softmax, and averages the values with
them — and :func:`attention_backward_naive` walks the same loops backwards.
:class:`mtlearn.nn.MultiheadAttention` computes the same numbers in a few large matrix
products and is tested against these functions.

Conventions: ``x (N, T, E)``; ``p`` a dict with PyTorch's ``in_proj_weight (3E, E)``,
``in_proj_bias (3E,)``, ``out_proj_weight (E, E)``, ``out_proj_bias (E,)``. Forward returns
``(out (N, T, E), tape)``; backward takes ``dout (N, T, E)`` and the tape and returns
``(dx, grads)``.
"""

from __future__ import annotations

import numpy as np


def _softmax(z: np.ndarray) -> np.ndarray:
    """Softmax over the last axis."""
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _head_params(p: dict, h: int, D: int, E: int):
    """Head ``h``'s ``(W_q, b_q, W_k, b_k, W_v, b_v)``: rows ``h*D:(h+1)*D`` of each third
    of ``in_proj_weight`` and ``in_proj_bias``."""
    rows = [slice(j * E + h * D, j * E + (h + 1) * D) for j in range(3)]
    return [a for r in rows for a in (p["in_proj_weight"][r], p["in_proj_bias"][r])]


def attention_forward_naive(x, p, num_heads, causal=False):
    """``out_t = W_o [c_t^1; ...; c_t^H] + b_o`` with, for head h and position t,
    ``c_t = sum_s softmax_s(q_t . k_s / sqrt(D)) v_s`` over ``s <= t`` if ``causal`` else
    every s."""
    N, T, E = x.shape
    D = E // num_heads
    ctx = np.zeros((N, T, E), dtype=x.dtype)
    tape = []
    for h in range(num_heads):
        wq, bq, wk, bk, wv, bv = _head_params(p, h, D, E)
        q, k, v = x @ wq.T + bq, x @ wk.T + bk, x @ wv.T + bv      # each (N, T, D)
        weights = []
        for t in range(T):
            seen = t + 1 if causal else T                           # positions t may read
            scores = np.einsum("nd,nsd->ns", q[:, t], k[:, :seen]) / np.sqrt(D)
            a = _softmax(scores)                                    # (N, seen)
            ctx[:, t, h * D:(h + 1) * D] = np.einsum("ns,nsd->nd", a, v[:, :seen])
            weights.append(a)
        tape.append((q, k, v, weights))
    out = ctx @ p["out_proj_weight"].T + p["out_proj_bias"]
    return out, (x, ctx, tape, num_heads)


def attention_backward_naive(dout, tape, p):
    """Backward through :func:`attention_forward_naive`. Returns ``(dx, grads)``."""
    x, ctx, heads, num_heads = tape
    N, T, E = x.shape
    D = E // num_heads
    grads = {"out_proj_weight": np.einsum("nto,nte->oe", dout, ctx),
             "out_proj_bias": dout.sum(axis=(0, 1)),
             "in_proj_weight": np.zeros_like(p["in_proj_weight"]),
             "in_proj_bias": np.zeros_like(p["in_proj_bias"])}
    dctx = dout @ p["out_proj_weight"]
    dx = np.zeros_like(x)
    for h, (q, k, v, weights) in enumerate(heads):
        dq, dk, dv = np.zeros_like(q), np.zeros_like(k), np.zeros_like(v)
        for t in range(T):
            a = weights[t]
            seen = a.shape[1]
            dc = dctx[:, t, h * D:(h + 1) * D]                        # (N, D)
            da = np.einsum("nd,nsd->ns", dc, v[:, :seen])
            dv[:, :seen] += a[:, :, None] * dc[:, None, :]
            # softmax: ds_s = a_s (da_s - sum_r a_r da_r); then the 1/sqrt(D) scale
            ds = a * (da - (a * da).sum(axis=1, keepdims=True)) / np.sqrt(D)
            dq[:, t] = np.einsum("ns,nsd->nd", ds, k[:, :seen])
            dk[:, :seen] += ds[:, :, None] * q[:, t][:, None, :]
        for j, d in enumerate((dq, dk, dv)):                        # the three projections
            rows = slice(j * E + h * D, j * E + (h + 1) * D)
            grads["in_proj_weight"][rows] = np.einsum("ntd,nte->de", d, x)
            grads["in_proj_bias"][rows] = d.sum(axis=(0, 1))
            dx += d @ p["in_proj_weight"][rows]
    return dx, grads
