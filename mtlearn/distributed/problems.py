"""The training job of ``python -m mtlearn.distributed train cnn``, built from a seed.

Every rank calls :func:`cnn_problem` with the same arguments and gets the same model and
data, bit for bit: nothing has to be sent before training starts. (A real system would give
each rank its own files; here the data set is small and generated.) The problem itself is
``mtlearn.tasks``' ``"cnn"`` / ``"cnn-digits"``, all of it used for training; tests and
notebooks call this in-process to train the very same job with ``parallel.train`` and compare.
"""

from __future__ import annotations

import numpy as np

from .. import tasks
from ..runtime import checks

DATASETS = ("shapes", "digits")


def cnn_problem(n: int = 2000, *, dataset: str = "shapes", image_size: int = 28,
                channels: tuple[int, int] = (8, 16), seed: int = 0, dtype=np.float32):
    """``(model, loss, (X, y))``: the course CNN and its images.

    n : images (``shapes`` draws ``n``; ``digits`` keeps the first ``n`` of its 1,797)
    dataset : ``"shapes"`` (generated, ``image_size`` pixels square) or ``"digits"`` (8x8)
    channels : channels of the two convolutions (the course CNN has ``(8, 16)``)
    seed : draws the images and initialises the model
    dtype : ``np.float32`` (fast) or ``np.float64`` (for comparing within 1e-10)

    ``X`` has shape (n, 1, H, W) and ``dtype``; ``y`` (n,) int64 labels.
    """
    checks.choice("dataset", dataset, DATASETS)
    options = {"image_size": image_size} if dataset == "shapes" else {}
    t = tasks.get("cnn" if dataset == "shapes" else "cnn-digits", n=n, seed=seed, dtype=dtype,
                  val_fraction=0, channels=tuple(channels), **options)
    return t.model(), t.loss, t.data
