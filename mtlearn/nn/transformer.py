"""A Transformer language model from the layers: positions, blocks, and the model itself.

Attention (:mod:`mtlearn.nn.attention`) treats its input as a *set*: shuffle the positions
and the outputs are shuffled the same way. :class:`PositionalEmbedding` adds a learned
vector per position so that order matters. :class:`TransformerBlock` is the pre-norm block
of GPT-2 and of ``torch.nn.TransformerEncoderLayer(norm_first=True)``::

    x = x + attention(LayerNorm(x))          every position reads the others
    x = x + MLP(LayerNorm(x))                MLP = Linear(E, hidden) -> GELU -> Linear(hidden, E)

The ``x +`` paths (residual connections) let the gradient reach the first block unchanged,
the way an LSTM's cell state carries it back through time. :func:`char_transformer` stacks
them into a next-character model with the interface of :func:`~mtlearn.nn.char_model`:
ids ``(N, T)`` in, logits ``(N, T, V)`` out, causal so that position t sees only
characters ``<= t`` and predicts character t+1. :func:`sample_transformer` generates text
from it.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping

import numpy as np

from ..runtime import checks
from .activations import GELU
from .attention import MultiheadAttention
from .dense import Dense
from .embedding import Embedding
from .layer import DEFAULT_DTYPE, Layer, as_generator, check_dtype
from .norm import LayerNorm
from .sampling import next_token
from .sequential import Sequential


class PositionalEmbedding(Layer):
    """Add a learned vector per position: ``out[:, t] = x[:, t] + weight[t]``.

    Parameters
    ----------
    max_len : int, the longest sequence the table covers
    embed_dim : int, E
    dtype, rng : parameter dtype and init seed; ``weight ~ N(0, 1)`` like ``nn.Embedding``

    Shapes: input ``(N, T, E)`` with ``T <= max_len``, output the same; ``weight
    (max_len, E)`` (in PyTorch: an ``nn.Embedding(max_len, E)`` applied to ``arange(T)``).
    """

    def __init__(self, max_len: int, embed_dim: int, *, dtype=DEFAULT_DTYPE, rng=None):
        super().__init__()
        self.max_len = checks.integer("PositionalEmbedding: max_len", max_len, min=1)
        self.embed_dim = checks.integer("PositionalEmbedding: embed_dim", embed_dim, min=1)
        self.reset_parameters(rng, dtype)

    def reset_parameters(self, rng=None, dtype=DEFAULT_DTYPE) -> None:
        """``weight ~ N(0, 1)``, as ``torch.nn.Embedding``."""
        rng, dtype = as_generator(rng), check_dtype(dtype)
        shape = (self.max_len, self.embed_dim)
        self.params = {"weight": rng.standard_normal(shape).astype(dtype, copy=False)}

    def forward(self, x: np.ndarray):
        self._check_input(x)
        if x.ndim != 3 or x.shape[2] != self.embed_dim or x.shape[1] > self.max_len:
            raise self._shape_error(x, f"(N, T, {self.embed_dim}) with T <= {self.max_len} "
                                       f"(the length of the position table)")
        T = x.shape[1]
        return x + self.params["weight"][:T], T

    def backward(self, dout: np.ndarray, cache, need_dx: bool = True):
        T = cache
        dw = np.zeros_like(self.params["weight"])
        dw[:T] = dout.sum(axis=0)            # every sequence of the batch adds to row t
        return (dout if need_dx else None), {"weight": dw}

    def __repr__(self) -> str:
        return f"PositionalEmbedding({self.max_len}, {self.embed_dim})"


class SubLayerParams(MutableMapping):
    """A composite layer's parameters: every sub-layer's arrays under
    ``"<sub-layer>.<name>"`` (the names of ``torch.nn.Module.state_dict``).

    Reading or assigning ``params["linear1.weight"]`` reads or assigns
    ``sub_layers["linear1"].params["weight"]`` itself, so when ``nn.Sequential`` makes the
    block's arrays views into its flat vector, the sub-layers compute with those views.
    """

    def __init__(self, sub_layers: dict[str, Layer]):
        self._subs = sub_layers

    def _find(self, key: str) -> tuple[dict, str]:
        sub, _, name = key.partition(".")
        if sub not in self._subs or name not in self._subs[sub].params:
            raise KeyError(key)
        return self._subs[sub].params, name

    def __getitem__(self, key: str) -> np.ndarray:
        params, name = self._find(key)
        return params[name]

    def __setitem__(self, key: str, value: np.ndarray) -> None:
        params, name = self._find(key)          # no new names: the layout is fixed
        params[name] = value

    def __delitem__(self, key: str) -> None:
        raise TypeError("a composite layer's parameters cannot be removed")

    def __iter__(self) -> Iterator[str]:
        for sub, layer in self._subs.items():
            for name in layer.params:
                yield f"{sub}.{name}"

    def __len__(self) -> int:
        return sum(len(layer.params) for layer in self._subs.values())

    def __repr__(self) -> str:
        return "{" + ", ".join(f"{k!r}: {np.shape(v)}" for k, v in self.items()) + "}"


class TransformerBlock(Layer):
    """One pre-norm Transformer block: ``x + attn(LN(x))``, then ``x + MLP(LN(x))``.

    Parameters
    ----------
    embed_dim : int, E (divisible by ``num_heads``)
    num_heads : int, H
    hidden : int, the MLP's hidden units (4E in GPT-2)
    causal : bool, each position attends only to itself and earlier positions
    dtype, rng : parameter dtype and init seed/Generator

    Shapes: input ``(N, T, E)``, output the same. Sub-layers (attributes, run in this order):
    ``norm1`` LayerNorm(E), ``self_attn`` MultiheadAttention(E, H), ``norm2`` LayerNorm(E),
    ``linear1`` Dense(E, hidden), ``activation`` GELU (tanh), ``linear2`` Dense(hidden, E).
    ``params`` names their arrays ``"norm1.weight"``, ``"self_attn.in_proj_weight"``, ...
    like ``torch.nn.TransformerEncoderLayer(E, H, hidden, dropout=0, batch_first=True,
    norm_first=True)``'s ``state_dict`` (whose ``self_attn.out_proj.weight`` is
    ``self_attn.out_proj_weight`` here), so weights copy across.
    """

    def __init__(self, embed_dim: int, num_heads: int, hidden: int, causal: bool = False, *,
                 dtype=DEFAULT_DTYPE, rng=None):
        super().__init__()
        self.embed_dim = checks.integer("TransformerBlock: embed_dim", embed_dim, min=1)
        self.hidden = checks.integer("TransformerBlock: hidden", hidden, min=1)
        rng, dtype = as_generator(rng), check_dtype(dtype)
        E = self.embed_dim
        self.norm1 = LayerNorm(E, dtype=dtype)
        self.self_attn = MultiheadAttention(E, num_heads, causal, dtype=dtype, rng=rng)
        self.norm2 = LayerNorm(E, dtype=dtype)
        self.linear1 = Dense(E, self.hidden, dtype=dtype, rng=rng)
        self.activation = GELU()
        self.linear2 = Dense(self.hidden, E, dtype=dtype, rng=rng)
        self.num_heads, self.causal = self.self_attn.num_heads, self.self_attn.causal
        self.params = SubLayerParams({"norm1": self.norm1, "self_attn": self.self_attn,
                                      "norm2": self.norm2, "linear1": self.linear1,
                                      "linear2": self.linear2})

    def reset_parameters(self, rng=None, dtype=DEFAULT_DTYPE) -> None:
        """Every sub-layer's ``reset_parameters``, in order, from one Generator."""
        rng, dtype = as_generator(rng), check_dtype(dtype)
        for layer in (self.norm1, self.self_attn, self.norm2, self.linear1, self.linear2):
            layer.reset_parameters(rng, dtype)

    def forward(self, x: np.ndarray):
        self._check_input(x)
        E = self.embed_dim
        if x.ndim != 3 or x.shape[2] != E:
            raise self._shape_error(x, f"(N, T, {E})")
        h, c_norm1 = self.norm1.forward(x)
        a, c_attn = self.self_attn.forward(h)
        x1 = x + a
        h2, c_norm2 = self.norm2.forward(x1)
        # The MLP sees every position as one row of a (N*T, E) matrix: one GEMM each way
        # (on the 3-D array numpy would make N smaller ones).
        z, c_lin1 = self.linear1.forward(h2.reshape(-1, E))
        g, c_act = self.activation.forward(z)
        m, c_lin2 = self.linear2.forward(g)
        out = m.reshape(x.shape)
        out += x1
        return out, (c_norm1, c_attn, c_norm2, c_lin1, c_act, c_lin2)

    def backward(self, dout: np.ndarray, cache, need_dx: bool = True):
        c_norm1, c_attn, c_norm2, c_lin1, c_act, c_lin2 = cache
        E = self.embed_dim
        grads = {}
        dg, grads["linear2"] = self.linear2.backward(dout.reshape(-1, E), c_lin2)
        dz, _ = self.activation.backward(dg, c_act)
        dh2, grads["linear1"] = self.linear1.backward(dz, c_lin1)
        dx1, grads["norm2"] = self.norm2.backward(dh2.reshape(dout.shape), c_norm2)
        dx1 += dout                               # the residual path
        dh, grads["self_attn"] = self.self_attn.backward(dx1, c_attn)
        dx, grads["norm1"] = self.norm1.backward(dh, c_norm1, need_dx)
        if need_dx:
            dx += dx1
        return dx, {f"{sub}.{name}": g for sub in self.params._subs
                    for name, g in grads[sub].items()}

    def __repr__(self) -> str:
        causal = ", causal=True" if self.causal else ""
        return f"TransformerBlock({self.embed_dim}, {self.num_heads}, {self.hidden}{causal})"


def char_transformer(vocab_size: int, embed_dim: int = 64, num_heads: int = 4,
                     hidden: int = 256, num_blocks: int = 2, max_len: int = 64, *,
                     seed: int = 0, dtype=np.float32) -> Sequential:
    """A causal character Transformer: ids ``(N, T)`` (``T <= max_len``) to logits
    ``(N, T, V)``::

        Embedding(V, E) -> PositionalEmbedding(max_len, E)
          -> num_blocks x TransformerBlock(E, H, hidden, causal=True) -> LayerNorm(E) -> Dense(E, V)

    The defaults are the model of ``benchmarks/bench_transformer.py`` (about 105,000
    parameters with the arithmetic corpus's 13 characters).
    """
    vocab_size = checks.integer("vocab_size", vocab_size, min=1)
    embed_dim = checks.integer("embed_dim", embed_dim, min=1)
    num_blocks = checks.integer("num_blocks", num_blocks, min=0)
    blocks = [TransformerBlock(embed_dim, num_heads, hidden, causal=True)
              for _ in range(num_blocks)]
    return Sequential(Embedding(vocab_size, embed_dim), PositionalEmbedding(max_len, embed_dim),
                      *blocks, LayerNorm(embed_dim), Dense(embed_dim, vocab_size),
                      seed=seed, dtype=dtype)


def context_length(model) -> int:
    """The longest sequence ``model`` reads: its :class:`PositionalEmbedding`'s ``max_len``."""
    for layer in getattr(model, "layers", ()):
        if isinstance(layer, PositionalEmbedding):
            return layer.max_len
    raise ValueError(f"{type(model).__name__} has no PositionalEmbedding layer: it is not a "
                     "Transformer language model (nn.char_transformer makes one)")


def sample_transformer(model, prompt, length: int, *, temperature: float = 1.0, rng=None,
                       vocab=None):
    """Continue ``prompt`` by ``length`` tokens drawn from a Transformer language model.

    Like :func:`~mtlearn.nn.sample` (same arguments, same result), but a Transformer has no
    state to carry: each new token is predicted by running the model on the last
    ``max_len`` tokens (its context window) and reading the logits of the last position.
    (Real implementations keep every position's keys and values between steps — a "KV
    cache" — so that each step computes one new position instead of the whole window.)

    Returns the generated ids (1-D int64 array, the prompt not included), or a string when
    ``vocab`` is given.
    """
    temperature = checks.number("temperature", temperature, min=0)
    length = checks.integer("length", length, min=0)
    window = context_length(model)
    ids = np.asarray(vocab.encode(prompt) if vocab is not None else prompt, dtype=np.int64)
    if ids.ndim != 1 or ids.size == 0:
        raise ValueError(f"sample_transformer: prompt must be a non-empty 1-D sequence of "
                         f"ids, got shape {ids.shape}")
    rng = as_generator(rng)
    text = np.concatenate([ids, np.zeros(length, dtype=np.int64)])
    end = ids.size
    for _ in range(length):
        last = model(text[max(0, end - window):end][None, :])[0, -1]
        text[end] = next_token(last, temperature, rng)
        end += 1
    out = text[ids.size:]
    return vocab.decode(out) if vocab is not None else out
