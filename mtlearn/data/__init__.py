"""Offline datasets: generated and small shipped data, and the tools to batch them.

Nothing here downloads: every dataset is generated from a seed or read from a file inside
the package, so the course runs without a network and gives the same numbers everywhere.
This package imports nothing else from mtlearn.

Images, shaped (N, C, H, W):

- :func:`shapes` -- generated images of circles, squares, triangles and crosses
  (``SHAPE_CLASSES``), any number, any size.
- :func:`digits` -- 1,797 real 8x8 handwritten digits (UCI optdigits, via scikit-learn's
  copy; see ``LICENSE-digits.txt``).

Sequences, shaped (N, T, features):

- :func:`sine_waves` -- next-value prediction on sine waves of random frequency and phase.
- :func:`adding_problem` -- add the two marked values of a long sequence (long memory).

Text, one character per token:

- :func:`char_corpus` -- the shipped arithmetic corpus (``37+58=95`` per line), made by
  :func:`generate_arithmetic`; :class:`Vocabulary` numbers its characters.
- :func:`tbptt_batches` -- consecutive chunks for truncated backpropagation through time.
- :func:`unigram_loss` -- the loss to beat; :func:`score_arithmetic` -- are sampled sums right?

Splitting and batching, for any of them:

- :func:`split` -- a seeded (stratified) train/validation split.
- :func:`batches` -- one epoch of minibatches ``(xb, yb)``, seeded shuffling.
- :func:`num_batches` -- how many batches an epoch has.
"""

from .batching import batches, num_batches, split
from .digits import digits
from .images import SHAPE_CLASSES, shapes
from .sequences import adding_problem, sine_waves
from .text import (
    Vocabulary,
    char_corpus,
    generate_arithmetic,
    score_arithmetic,
    tbptt_batches,
    unigram_loss,
)

__all__ = ["SHAPE_CLASSES", "batches", "digits", "num_batches", "shapes", "split",
           "Vocabulary", "adding_problem", "char_corpus", "generate_arithmetic",
           "score_arithmetic", "sine_waves", "tbptt_batches", "unigram_loss"]
