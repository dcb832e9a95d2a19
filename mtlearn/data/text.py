"""A character-level corpus shipped with the package, its vocabulary, and batches for
truncated backpropagation through time.

The corpus is a small arithmetic language, one sum per line::

    37+58=95
    4+81=85

It is generated (:func:`generate_arithmetic`), so it is free of copyright and endless; the
shipped file ``arithmetic.txt`` is ``generate_arithmetic(6000, seed=0)``, about 55 kB. A
character model sees structure at three levels, and its samples show which it has learnt:
the format (digits, ``+``, digits, ``=``, digits, newline), plausible lengths, and, hardest,
correct sums (:func:`score_arithmetic` counts them). A model that ignores context scores the
unigram entropy (:func:`unigram_loss`, about 2.5 nats per character here); the operands are
random, so even a model that adds perfectly cannot go below about 1.0 nats per character.
"""

from __future__ import annotations

import re
from importlib import resources

import numpy as np

CORPUS_FILE = "arithmetic.txt"
_LINE = re.compile(r"(\d+)\+(\d+)=(\d+)")


def generate_arithmetic(n_lines, *, seed=0, max_operand=99) -> str:
    """``n_lines`` sums ``a+b=c`` with ``a, b`` uniform in ``0..max_operand``, one per line.

    Returns a string ending in a newline; same seed, same text.
    """
    if isinstance(n_lines, bool) or not isinstance(n_lines, (int, np.integer)) or n_lines < 1:
        raise ValueError(f"n_lines must be an integer >= 1, got {n_lines!r}")
    if max_operand < 0:
        raise ValueError(f"max_operand must be >= 0, got {max_operand!r}")
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, max_operand + 1, size=(2, n_lines))
    return "".join(f"{x}+{y}={x + y}\n" for x, y in zip(a.tolist(), b.tolist(), strict=True))


def char_corpus() -> str:
    """The shipped arithmetic corpus (``generate_arithmetic(6000, seed=0)``) as one string."""
    return resources.files(__package__).joinpath(CORPUS_FILE).read_text(encoding="ascii")


class Vocabulary:
    """The characters of a text, numbered: ``encode(str) -> ids``, ``decode(ids) -> str``.

    ``Vocabulary.from_text(text)`` numbers the distinct characters in sorted order;
    ``len(vocab)`` is the number of characters, ``vocab.chars`` the string of all of them.
    """

    def __init__(self, chars: str):
        if len(set(chars)) != len(chars) or not chars:
            raise ValueError(f"Vocabulary: chars must be distinct and non-empty, got {chars!r}")
        self.chars = chars
        self.index = {c: i for i, c in enumerate(chars)}

    @classmethod
    def from_text(cls, text: str) -> Vocabulary:
        return cls("".join(sorted(set(text))))

    def encode(self, text: str) -> np.ndarray:
        """``text`` -> int64 ids of shape (len(text),)."""
        try:
            return np.fromiter((self.index[c] for c in text), dtype=np.int64, count=len(text))
        except KeyError as e:
            raise ValueError(f"Vocabulary: character {e.args[0]!r} is not in the vocabulary "
                             f"{self.chars!r}") from None

    def decode(self, ids) -> str:
        """ids (any shape, flattened) -> the string they stand for."""
        return "".join(self.chars[i] for i in np.asarray(ids).reshape(-1).tolist())

    def __len__(self) -> int:
        return len(self.chars)

    def __repr__(self) -> str:
        return f"Vocabulary({self.chars!r})"


def tbptt_batches(ids, batch_size, seq_len):
    """Cut a token stream into chunks for truncated BPTT.

    The stream is split into ``batch_size`` contiguous rows of equal length; chunk k is
    columns ``k*seq_len .. (k+1)*seq_len`` of every row, so row n of chunk k+1 continues
    row n of chunk k, and the recurrent state at the end of one chunk is the right start for
    the next. Targets are the inputs shifted by one token.

    Parameters
    ----------
    ids : 1-D int array, the encoded text (at least ``batch_size + 1`` tokens)
    batch_size : int, rows (independent streams)
    seq_len : int, steps per chunk (the last chunk may be shorter)

    Returns
    -------
    list of ``(x, y)``, each of shape (batch_size, T) with ``T <= seq_len``: read-only views
    of the stream, ``y[:, t]`` the token after ``x[:, t]``.
    """
    ids = np.asarray(ids)
    for name, v in (("batch_size", batch_size), ("seq_len", seq_len)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    if ids.ndim != 1 or ids.dtype.kind not in "iu":
        raise ValueError(f"ids must be a 1-D integer array, got {ids.dtype} of shape {ids.shape}")
    row = (len(ids) - 1) // batch_size
    if row < 1:
        raise ValueError(f"{len(ids)} tokens are too few for batch_size={batch_size}: "
                         f"need at least {batch_size + 1}")
    x = ids[:batch_size * row].reshape(batch_size, row)
    y = ids[1:batch_size * row + 1].reshape(batch_size, row)
    x.flags.writeable = y.flags.writeable = False
    return [(x[:, s:s + seq_len], y[:, s:s + seq_len]) for s in range(0, row, seq_len)]


def unigram_loss(ids, vocab_size=None) -> float:
    """The entropy (nats per token) of the token frequencies of ``ids``: the cross-entropy
    loss of the best model that ignores context, i.e. the baseline a sequence model must beat.
    """
    counts = np.bincount(np.asarray(ids).reshape(-1), minlength=vocab_size or 0)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def score_arithmetic(text: str) -> dict:
    """How good is generated arithmetic? Looks at every complete line of ``text``.

    Returns ``{"lines": n, "well_formed": fraction matching a+b=c (digits only),
    "correct": fraction that are also right}`` (fractions of ``lines``; 0 when no lines).
    """
    lines = text.split("\n")[:-1]           # the last piece has no newline: incomplete
    matches = [_LINE.fullmatch(line) for line in lines]
    good = [m for m in matches if m]
    right = sum(int(m[1]) + int(m[2]) == int(m[3]) for m in good)
    n = len(lines)
    return {"lines": n, "well_formed": len(good) / n if n else 0.0,
            "correct": right / n if n else 0.0}
