"""Offline datasets: generated and small shipped data, and the tools to batch them.

Nothing here downloads: every dataset is generated from a seed or read from a file inside
the package, so the course runs without a network and gives the same numbers everywhere.
This package imports nothing else from mtlearn.

Images, shaped (N, C, H, W):

- :func:`shapes` -- generated images of circles, squares, triangles and crosses
  (``SHAPE_CLASSES``), any number, any size.
- :func:`digits` -- 1,797 real 8x8 handwritten digits (UCI optdigits, via scikit-learn's
  copy; see ``LICENSE-digits.txt``).

Splitting and batching, for any of them:

- :func:`split` -- a seeded (stratified) train/validation split.
- :func:`batches` -- one epoch of minibatches ``(xb, yb)``, seeded shuffling.
- :func:`num_batches` -- how many batches an epoch has.
"""

from .batching import batches, num_batches, split
from .digits import digits
from .images import SHAPE_CLASSES, shapes

__all__ = ["SHAPE_CLASSES", "batches", "digits", "num_batches", "shapes", "split"]
