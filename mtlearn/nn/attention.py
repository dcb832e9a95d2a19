"""Multi-head self-attention, array for array PyTorch's ``torch.nn.MultiheadAttention``.

Every position of a sequence looks at every position (or, ``causal=True``, at every earlier
one) and takes a weighted average of what it finds there. For one head with ``D`` features::

    q_t, k_t, v_t = W_q x_t + b_q,  W_k x_t + b_k,  W_v x_t + b_v     query, key, value
    P[t, s] = softmax_s(q_t . k_s / sqrt(D))                         attention weights
    c_t = sum_s P[t, s] v_s                                          the head's output

H heads with ``D = E / H`` features each run side by side, their outputs are concatenated
and mixed by the output projection: ``out_t = W_o [c_t^1; ...; c_t^H] + b_o``.
:func:`mtlearn.nn.attention_naive.attention_forward_naive` is exactly that, one head and
one query position at a time; read it first.

Unlike a recurrence, nothing here waits for the previous position: the whole sequence is
computed at once, in a few large matrix products. That is the parallelism *along time*
that an RNN does not have (notebook 03b measures it). The fast version below does, for a
batch of N sequences of T positions:

1. **One GEMM for every query, key and value** of every head and position:
   ``(N*T, E) @ (E, 3E)``. The heads are then views (no copies): the result, reshaped to
   ``(N, T, 3, H, D)``, holds q, k and v of head h at ``[:, :, 0/1/2, h]``.
2. **Batched matrix products for the scores and the weighted sums**: ``np.matmul`` on
   ``(N, H, T, D)`` stacks, which calls BLAS once per (sequence, head) from C.
3. **The scores are stored key-major**, ``(T_keys, N, H, T_queries)``. The softmax runs
   over the keys; numpy reduces over a short *last* axis with a slow loop per row (a max
   over rows of 32 took ~30x longer than over the first axis on the machine this was
   written on), while over the *first* axis it combines whole contiguous rows with vector
   instructions. ``np.matmul(..., out=...)`` writes the scores straight into that layout
   through a transposed view, and reads them back the same way: BLAS takes either
   orientation, so the layout costs nothing.

Parameters (PyTorch's names and shapes): ``in_proj_weight (3E, E)`` — the rows of W_q,
then W_k, then W_v, head h owning rows ``h*D:(h+1)*D`` of each — ``in_proj_bias (3E,)``,
``out_proj_weight (E, E)``, ``out_proj_bias (E,)``.
"""

from __future__ import annotations

import copy
import functools
import math

import numpy as np

from ..runtime import checks
from .layer import DEFAULT_DTYPE, Layer, as_generator, check_dtype, sum_product, uniform


@functools.lru_cache(maxsize=64)
def causal_mask(T: int, dtype) -> np.ndarray:
    """``(T, 1, 1, T)`` additive mask in the key-major layout: ``-inf`` where key ``s`` comes
    after query ``t`` (``s > t``), 0 elsewhere; added to the scores before the softmax, it
    turns those weights into exact zeros. Made once per (T, dtype) and read-only, so every
    call and every thread shares it."""
    mask = np.zeros((T, T), dtype=dtype)
    mask[np.tril_indices(T, -1)] = -np.inf          # [s, t] with s > t
    mask.flags.writeable = False
    return mask[:, None, None, :]


class MultiheadAttention(Layer):
    """Self-attention over ``(N, T, E)`` batches, like
    ``torch.nn.MultiheadAttention(E, H, batch_first=True)`` called as ``mha(x, x, x)``
    (with ``attn_mask`` the causal mask when ``causal=True``).

    Parameters
    ----------
    embed_dim : int, E (divisible by ``num_heads``)
    num_heads : int, H; each head has ``head_dim = E // H`` features
    causal : bool, position t attends only to positions ``<= t`` (a language model)
    dtype, rng : parameter dtype (float32; float64 for gradient checks) and init seed

    Shapes: input ``(N, T, E)``, output ``(N, T, E)``; ``in_proj_weight (3E, E)``,
    ``in_proj_bias (3E,)``, ``out_proj_weight (E, E)``, ``out_proj_bias (E,)``.
    """

    def __init__(self, embed_dim: int, num_heads: int, causal: bool = False, *,
                 dtype=DEFAULT_DTYPE, rng=None):
        super().__init__()
        self.embed_dim = checks.integer("MultiheadAttention: embed_dim", embed_dim, min=1)
        self.num_heads = checks.integer("MultiheadAttention: num_heads", num_heads, min=1)
        if self.embed_dim % self.num_heads:
            fits = [h for h in range(1, self.embed_dim + 1) if self.embed_dim % h == 0]
            raise ValueError(f"MultiheadAttention: embed_dim must be divisible by num_heads "
                             f"(each head gets embed_dim // num_heads features), got "
                             f"embed_dim {self.embed_dim} and num_heads {self.num_heads}; "
                             f"num_heads could be one of {fits}")
        self.causal = checks.boolean("MultiheadAttention: causal", causal)
        self.head_dim = self.embed_dim // self.num_heads
        self.reset_parameters(rng, dtype)

    def reset_parameters(self, rng=None, dtype=DEFAULT_DTYPE) -> None:
        """PyTorch's: ``in_proj_weight`` Xavier-uniform, ``out_proj_weight`` like a
        ``Linear`` (U(-1/sqrt(E), 1/sqrt(E))), both biases 0."""
        rng, dtype = as_generator(rng), check_dtype(dtype)
        E = self.embed_dim
        self.params = {
            "in_proj_weight": uniform(rng, math.sqrt(6 / (E + 3 * E)), (3 * E, E), dtype),
            "in_proj_bias": np.zeros(3 * E, dtype=dtype),
            "out_proj_weight": uniform(rng, 1 / math.sqrt(E), (E, E), dtype),
            "out_proj_bias": np.zeros(E, dtype=dtype),
        }

    # The arrays below are read with np.reshape rather than taken as they are, so that a
    # head shard (see head_shard), whose parameters are strided views, runs the same code.
    def _weights(self):
        p, E = self.params, self.embed_dim
        return (np.reshape(p["in_proj_weight"], (-1, E)), np.reshape(p["in_proj_bias"], -1),
                np.reshape(p["out_proj_weight"], (E, -1)))

    def _heads(self, qkv: np.ndarray, N: int, T: int):
        """q, k, v as ``(N, H, T, D)`` views of ``qkv (N*T, 3*H*D)``."""
        per = qkv.reshape(N, T, 3, self.num_heads, self.head_dim)
        return tuple(per[:, :, j].transpose(0, 2, 1, 3) for j in range(3))

    def forward(self, x: np.ndarray):
        self._check_input(x)
        E = self.embed_dim
        if x.ndim != 3 or x.shape[2] != E or x.shape[1] == 0:
            raise self._shape_error(x, f"(N, T, {E}) with T >= 1")
        N, T, _ = x.shape
        w_in, b_in, w_out = self._weights()
        x2 = x.reshape(N * T, E)
        qkv = x2 @ w_in.T                                    # every q, k, v: one GEMM
        qkv += b_in
        q, k, v = self._heads(qkv, N, T)
        # scores[s, n, h, t] = k_s . q_t: written through a transposed view (see 3. above)
        scores = np.empty((T, N, self.num_heads, T), dtype=qkv.dtype)
        np.matmul(k, q.transpose(0, 1, 3, 2), out=scores.transpose(1, 2, 0, 3))
        if self.causal:
            scores += causal_mask(T, scores.dtype.type)
        # softmax over the keys (axis 0) of scores / sqrt(D); subtracting the max first
        # keeps exp from overflowing and does not change the result
        scores -= scores.max(axis=0)
        scores *= 1 / math.sqrt(self.head_dim)
        weights = np.exp(scores, out=scores)
        weights *= 1 / weights.sum(axis=0)
        # c[n, h, t] = sum_s P[t, s] v_s, written as (N, T, H, D): the heads side by side
        ctx = np.empty((N, T, self.num_heads, self.head_dim), dtype=qkv.dtype)
        np.matmul(weights.transpose(1, 2, 3, 0), v, out=ctx.transpose(0, 2, 1, 3))
        ctx2 = ctx.reshape(N * T, -1)
        out = ctx2 @ w_out.T
        if "out_proj_bias" in self.params:                  # a head shard has none
            out += self.params["out_proj_bias"]
        return out.reshape(N, T, E), (x2, qkv, weights, ctx2, N, T)

    def backward(self, dout: np.ndarray, cache, need_dx: bool = True):
        x2, qkv, weights, ctx2, N, T = cache
        w_in, _, w_out = self._weights()
        shapes = {name: np.shape(a) for name, a in self.params.items()}
        d2 = dout.reshape(N * T, self.embed_dim)
        ones = np.ones(N * T, dtype=d2.dtype)   # sums over positions as GEMVs (LayerNorm's trick)
        grads = {"out_proj_weight": sum_product(d2.T, ctx2).reshape(shapes["out_proj_weight"])}
        if "out_proj_bias" in self.params:
            grads["out_proj_bias"] = sum_product(ones, d2)
        dctx = (d2 @ w_out).reshape(N, T, self.num_heads, self.head_dim).transpose(0, 2, 1, 3)
        q, k, v = self._heads(qkv, N, T)
        dqkv = np.empty_like(qkv)
        dq, dk, dv = self._heads(dqkv, N, T)
        # through c_t = sum_s P[t, s] v_s:  dP[t, s] = dc_t . v_s,  dv_s = sum_t P[t, s] dc_t
        dweights = np.empty_like(weights)                  # key-major, like weights
        np.matmul(v, dctx.transpose(0, 1, 3, 2), out=dweights.transpose(1, 2, 0, 3))
        np.matmul(weights.transpose(1, 2, 0, 3), dctx, out=dv)
        # through the softmax over s: dS = P * (dP - sum_s P dP); then the 1/sqrt(D) scale
        dscores = dweights
        dscores -= (dweights * weights).sum(axis=0)
        dscores *= weights
        dscores *= 1 / math.sqrt(self.head_dim)
        # through S[t, s] = q_t . k_s:  dq_t = sum_s dS[t, s] k_s,  dk_s = sum_t dS[t, s] q_t
        np.matmul(dscores.transpose(1, 2, 3, 0), k, out=dq)
        np.matmul(dscores.transpose(1, 2, 0, 3), q, out=dk)
        grads["in_proj_weight"] = sum_product(dqkv.T, x2).reshape(shapes["in_proj_weight"])
        grads["in_proj_bias"] = sum_product(ones.astype(dqkv.dtype, copy=False), dqkv).reshape(
            shapes["in_proj_bias"])
        dx = (dqkv @ w_in).reshape(N, T, self.embed_dim) if need_dx else None
        return dx, grads

    def head_shard(self, lo: int, hi: int) -> MultiheadAttention:
        """The heads ``lo:hi`` of this layer alone, for tensor parallelism.

        The shard's parameters are views of this layer's, arranged per head:
        ``in_proj_weight (3, h, D, E)``, ``in_proj_bias (3, h, D)``, ``out_proj_weight
        (E, h, D)`` (the output projection's *columns* that read those heads), with
        ``h = hi - lo``; it has no ``out_proj_bias``. Its output is what those heads add to
        this layer's output, so the outputs of shards that cover every head once, summed,
        plus ``out_proj_bias``, are this layer's output; its ``backward`` returns gradients
        in the shard's shapes and the part of ``dx`` that flows through its heads.
        """
        lo = checks.integer("head_shard: lo", lo, min=0, max=self.num_heads)
        hi = checks.integer("head_shard: hi", hi, min=lo + 1, max=self.num_heads)
        E, H, D = self.embed_dim, self.num_heads, self.head_dim
        p = self.params
        shard = copy.copy(self)
        shard.num_heads = hi - lo
        shard.params = {
            "in_proj_weight": p["in_proj_weight"].reshape(3, H, D, E)[:, lo:hi],
            "in_proj_bias": p["in_proj_bias"].reshape(3, H, D)[:, lo:hi],
            "out_proj_weight": p["out_proj_weight"].reshape(E, H, D)[:, lo:hi],
        }
        return shard

    def __repr__(self) -> str:
        causal = ", causal=True" if self.causal else ""
        return f"MultiheadAttention({self.embed_dim}, {self.num_heads}{causal})"
