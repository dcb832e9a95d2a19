"""Generate text from a next-token model, one token at a time, with a temperature.

Generation is the recurrence at its most sequential: token t+1 cannot be chosen before
token t is known. Each step runs the model on a single token, starting from the state the
previous step ended in, turns the last logits into probabilities
``softmax(logits / temperature)`` and draws the next token from them.

Temperature 1 samples the model's own distribution; below 1 it sharpens it (safer, more
repetitive); above 1 it flattens it (more surprising, more mistakes); 0 always takes the
most likely token (greedy).
"""

from __future__ import annotations

import numpy as np

from ..runtime import checks
from .layer import as_generator
from .recurrent import forward_with_state


def softmax_with_temperature(logits: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(logits / temperature)`` over the last axis, in float64 (temperature > 0)."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z -= z.max(axis=-1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=-1, keepdims=True)


def next_token(logits: np.ndarray, temperature: float, rng: np.random.Generator) -> int:
    """The id drawn from the last position's ``logits`` (shape ``(V,)``): the most likely one
    at temperature 0, else a draw from the softmax at that temperature."""
    if temperature == 0:
        return int(np.argmax(logits))
    p = softmax_with_temperature(logits, temperature)
    return int(rng.choice(p.size, p=p))


def sample(model, prompt, length: int, *, temperature: float = 1.0, rng=None, vocab=None):
    """Continue ``prompt`` by ``length`` tokens drawn from ``model``.

    Parameters
    ----------
    model : a ``Sequential`` mapping ids ``(N, T)`` to logits ``(N, T, V)``, e.g.
        :func:`~mtlearn.nn.char_model`
    prompt : 1-D sequence of ids (at least one), or a string when ``vocab`` is given
    length : number of tokens to generate (>= 0)
    temperature : >= 0; 0 is greedy (always the most likely token)
    rng : numpy Generator or int seed (same seed, same text)
    vocab : optional object with ``encode(str) -> ids`` and ``decode(ids) -> str``
        (``mtlearn.data.Vocabulary``): then ``prompt`` and the result are strings

    Returns the generated ids (1-D int64 array, the prompt not included), or a string.
    """
    temperature = checks.number("temperature", temperature, min=0)
    length = checks.integer("length", length, min=0)
    ids = np.asarray(vocab.encode(prompt) if vocab is not None else prompt, dtype=np.int64)
    if ids.ndim != 1 or ids.size == 0:
        raise ValueError(f"sample: prompt must be a non-empty 1-D sequence of ids, "
                         f"got shape {ids.shape}")
    rng = as_generator(rng)
    out = np.empty(length, dtype=np.int64)
    logits, _, states = forward_with_state(model, ids[None, :])
    for k in range(length):
        out[k] = next_token(logits[0, -1], temperature, rng)
        if k + 1 < length:
            logits, _, states = forward_with_state(model, out[k:k + 1][None, :], states)
    return vocab.decode(out) if vocab is not None else out
