"""The training job of ``python -m mtlearn.distributed train cnn``, built from a seed.

Every rank calls :func:`cnn_problem` with the same arguments and gets the same model and
data, bit for bit: nothing has to be sent before training starts. (A real system would give
each rank its own files; here the data set is small and generated.) Tests and notebooks call
it in-process to train the very same job with ``parallel.train`` and compare.
"""

from __future__ import annotations

import numpy as np

from .. import data, nn

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
    if dataset == "shapes":
        X, y = data.shapes(n, size=image_size, seed=seed, dtype=dtype)
        classes = len(data.SHAPE_CLASSES)
    elif dataset == "digits":
        X, y = data.digits(dtype=dtype)
        X, y = X[:n], y[:n]
        classes = 10
    else:
        raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")
    model = nn.course_cnn(X.shape[1], X.shape[-1], classes, tuple(channels), seed=seed,
                          dtype=dtype)
    return model, nn.SoftmaxCrossEntropy(), (X, y)
