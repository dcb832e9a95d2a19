"""Ready-made models used across the course, benchmarks and command line."""

from __future__ import annotations

import numpy as np

from ..runtime import checks
from .activations import Flatten, ReLU
from .conv import Conv2D
from .dense import Dense
from .pool import MaxPool2D
from .sequential import Sequential


def course_cnn(in_channels: int = 1, image_size: int = 28, num_classes: int = 10,
               channels: tuple[int, int] = (8, 16), *, seed: int = 0,
               dtype=np.float32) -> Sequential:
    """The course CNN: ``Conv(3x3, pad 1) ReLU MaxPool(2)`` twice, then ``Flatten Dense``.

    Input ``(N, in_channels, image_size, image_size)`` with ``image_size`` divisible by 4;
    output logits ``(N, num_classes)``. With the defaults it is
    ``Conv2D(1,8,3,padding=1) ReLU MaxPool2D(2) Conv2D(8,16,3,padding=1) ReLU MaxPool2D(2)
    Flatten Dense(784,10)``, the model of ``benchmarks/bench_nn.py``.
    """
    in_channels = checks.integer("in_channels", in_channels, min=1)
    num_classes = checks.integer("num_classes", num_classes, min=1)
    if checks.integer("image_size", image_size, min=4) % 4:
        raise ValueError(f"course_cnn: image_size must be divisible by 4, got {image_size}")
    if not isinstance(channels, tuple | list) or len(channels) != 2:
        raise TypeError(f"channels must be a pair (c1, c2) of ints, got {channels!r}")
    c1, c2 = (checks.integer(f"channels[{k}]", c, min=1) for k, c in enumerate(channels))
    side = image_size // 4
    return Sequential(
        Conv2D(in_channels, c1, 3, padding=1), ReLU(), MaxPool2D(2),
        Conv2D(c1, c2, 3, padding=1), ReLU(), MaxPool2D(2),
        Flatten(), Dense(c2 * side * side, num_classes),
        seed=seed, dtype=dtype)


def balanced_mlp(width: int = 576, blocks: int = 12, num_classes: int = 4, *,
                 seed: int = 0, dtype=np.float32) -> Sequential:
    """``Flatten``, then ``blocks`` times ``Dense(width, width) ReLU``, then
    ``Dense(width, num_classes)``: every block costs the same, so K stages of
    ``blocks / K`` blocks each take equal time (the last one also has the small output
    layer). Input: images whose ``C*H*W`` is ``width``, e.g. ``(N, 1, 24, 24)`` for 576."""
    width = checks.integer("width", width, min=1)
    blocks = checks.integer("blocks", blocks, min=0)
    layers = [Flatten()]
    for _ in range(blocks):
        layers += [Dense(width, width), ReLU()]
    return Sequential(*layers, Dense(width, num_classes), seed=seed, dtype=dtype)
