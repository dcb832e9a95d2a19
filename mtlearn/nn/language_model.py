"""A next-character model, its loss, and training with truncated backpropagation through time.

The model reads token ids ``(N, T)`` and predicts, at every step, the next token:
``Embedding -> RNN/LSTM/GRU -> Dense`` gives logits ``(N, T, V)``. A long text is cut into
chunks of T steps; each chunk starts from the recurrent state the previous chunk ended in
(so the model sees the whole text as one stream) while gradients stop at chunk boundaries
(so memory and time per step stay bounded): *truncated* BPTT.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from ..runtime import checks
from .dense import Dense
from .embedding import Embedding
from .gru import GRU
from .layer import check_real
from .losses import SoftmaxCrossEntropy
from .lstm import LSTM
from .recurrent import forward_with_state
from .rnn import RNN
from .sequential import Sequential

CELLS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}


def char_model(vocab_size: int, cell: str = "lstm", hidden_size: int = 128,
               embedding_dim: int = 16, *, seed: int = 0, dtype=np.float32) -> Sequential:
    """``Embedding(V, E) -> cell(E, H) -> Dense(H, V)``: ids ``(N, T)`` to logits ``(N, T, V)``.

    ``cell`` is ``"rnn"``, ``"lstm"`` or ``"gru"``.
    """
    checks.choice("cell", cell, sorted(CELLS))
    return Sequential(Embedding(vocab_size, embedding_dim),
                      CELLS[cell](embedding_dim, hidden_size),
                      Dense(hidden_size, vocab_size), seed=seed, dtype=dtype)


class SequenceCrossEntropy:
    """Softmax cross-entropy at every time step, averaged over all ``N*T`` predictions.

    ``forward(logits (N, T, V), y (N, T) int ids) -> (loss: float, cache)``;
    ``backward(cache) -> dlogits (N, T, V)``. The loss is in nats per token: ``log(V)`` for a
    model that knows nothing, the unigram entropy for one that only knows token frequencies.
    """

    def __init__(self) -> None:
        self._ce = SoftmaxCrossEntropy()

    def forward(self, logits: np.ndarray, y: np.ndarray):
        check_real(logits, "SequenceCrossEntropy: logits")
        y = np.asarray(y)
        if logits.ndim != 3 or y.shape != logits.shape[:2]:
            raise ValueError(f"SequenceCrossEntropy: expected logits (N, T, V) and targets "
                             f"(N, T), got {tuple(logits.shape)} and {tuple(y.shape)}")
        value, cache = self._ce.forward(logits.reshape(-1, logits.shape[2]), y.reshape(-1))
        return value, (cache, logits.shape)

    def backward(self, cache) -> np.ndarray:
        inner, shape = cache
        return self._ce.backward(inner).reshape(shape)

    def __repr__(self) -> str:
        return "SequenceCrossEntropy()"


def clip_grad_norm(grads: np.ndarray, max_norm: float) -> float:
    """Scale ``grads`` in place so that its 2-norm is at most ``max_norm``; return the norm
    before clipping (``torch.nn.utils.clip_grad_norm_``'s rule)."""
    max_norm = checks.number("max_norm", max_norm, min=0, min_open=True)
    norm = float(np.linalg.norm(grads))
    if norm > max_norm:
        grads *= max_norm / (norm + 1e-6)
    return norm


def fit_tbptt(model: Sequential, chunks: Iterable[tuple[np.ndarray, np.ndarray]], optimizer, *,
              loss=None, states=None, clip_norm: float | None = None,
              on_step: Callable[[int, float], None] | None = None):
    """Train ``model`` in place on consecutive chunks with truncated BPTT.

    Why this is its own loop and not ``parallel.train`` (mtlearn's one training core, used
    by ``training.fit``): each chunk starts from the recurrent state the previous chunk
    ended in, so step k needs the *output* of step k-1, in the order of the text.
    ``parallel.train`` is built on the opposite contract: a step is a function of the
    parameters and an independent batch — batches are reshuffled every epoch, cut into
    shards or micro-batches for threads, and the layers keep no state between calls. Feeding
    it chunks would either drop the carried state (every chunk starting from zeros: plain
    windows, which is what ``python -m mtlearn train lstm`` does so that every strategy can
    run it) or smuggle state through the model and break every strategy but serial. So
    this loop stays minimal: forward from the carried state, backward, optional clipping,
    one optimizer step, in chunk order; the optimizer forms are ``parallel.train``'s.

    Parameters
    ----------
    model : a ``Sequential`` with recurrent layers, e.g. :func:`char_model`
    chunks : iterable of ``(x, y)``, each ``(N, T)`` int ids, where row n of a chunk
        continues row n of the previous one (``mtlearn.data.tbptt_batches`` makes them)
    optimizer : an ``nn`` optimizer on ``model.params`` (``nn.Adam(model.params,
        lr=0.01)``; keep it across calls to keep its state), or a factory ``params ->
        nn.Optimizer`` as ``parallel.train`` takes (``lambda p: nn.SGD(p, lr=0.05)`` is the
        default optimizer of ``parallel.train`` and ``training.fit``), called once here
    loss : default :class:`SequenceCrossEntropy`
    states : the recurrent states to start from (``None``: zeros), as returned by this
        function or :func:`~mtlearn.nn.forward_with_state`
    clip_norm : if given, clip the gradient's 2-norm to it (tames exploding gradients)
    on_step : ``on_step(step, loss)`` after every step (1-based)

    Returns ``(losses, states)``: the loss of every step and the states after the last chunk.
    """
    if clip_norm is not None:
        clip_norm = checks.number("clip_norm", clip_norm, min=0, min_open=True)
    checks.function("on_step", on_step, "a function on_step(step, loss)", optional=True)
    if callable(optimizer) and not callable(getattr(optimizer, "step", None)):
        optimizer = optimizer(model.params)
    if isinstance(optimizer, type) or not callable(getattr(optimizer, "step", None)):
        raise TypeError(f"optimizer must be an nn optimizer on model.params (e.g. "
                        f"nn.SGD(model.params, lr=0.05)) or a factory params -> optimizer, "
                        f"got {type(optimizer).__name__}")
    loss = loss or SequenceCrossEntropy()
    grads = np.empty_like(model.params)
    losses: list[float] = []
    for x, y in chunks:
        out, cache, states = forward_with_state(model, x, states)
        value, lcache = loss.forward(out, y)
        model.backward(loss.backward(lcache), cache, grads=grads, need_dx=False)
        if clip_norm is not None:
            clip_grad_norm(grads, clip_norm)
        optimizer.step(grads)
        losses.append(value)
        if on_step:
            on_step(len(losses), value)
    return losses, states
