"""Max pooling over ``kH x kW`` windows, any stride (overlapping windows included)."""

from __future__ import annotations

import numpy as np

from ..runtime import checks
from .layer import Layer


def _taps(n_out: int, k: int, s: int):
    """Slices picking tap ``v`` of every window along one axis: ``v, v+s, ..., v+s*(n_out-1)``."""
    return [slice(v, v + s * (n_out - 1) + 1, s) for v in range(k)]


def _max_along(x: np.ndarray, axis: int, k: int, s: int, n_out: int):
    """Max over windows of ``k`` taps, stride ``s``, along ``axis`` (2 = rows, 3 = columns).

    Returns ``(best, arg)``: the maxima and, as uint8, which tap held the first maximum.
    """
    index = [slice(None)] * 4
    best = arg = None
    for v, taps in enumerate(_taps(n_out, k, s)):
        index[axis] = taps
        xv = x[tuple(index)]
        if best is None:
            best = xv
            continue
        better = (xv > best).view(np.uint8)      # strict: the first maximum wins ties
        best = np.maximum(best, xv)
        # v is larger than every tap index seen so far, so max() records "v if better".
        arg = better if v == 1 else np.maximum(arg, better * np.uint8(v))
    if arg is None:                              # a window of one tap
        arg = np.zeros(best.shape, dtype=np.uint8)
    return best, arg


def _route_back(dout: np.ndarray, arg: np.ndarray, axis: int, k: int, s: int, size: int):
    """Adjoint of :func:`_max_along`: send each gradient to the tap that held the maximum."""
    n_out = dout.shape[axis]
    shape = list(dout.shape)
    shape[axis] = size
    # When the windows tile the axis exactly, every input gets exactly one write below.
    tiled = s == k and size == k * n_out
    dx = np.empty(shape, dtype=dout.dtype) if tiled else np.zeros(shape, dtype=dout.dtype)
    index = [slice(None)] * 4
    for v, taps in enumerate(_taps(n_out, k, s)):
        index[axis] = taps
        if s < k:
            dx[tuple(index)] += dout * (arg == v)    # overlapping windows share inputs
        else:
            np.multiply(dout, arg == v, out=dx[tuple(index)])
    return dx


class MaxPool2D(Layer):
    """Max over each window, like ``torch.nn.MaxPool2d(kernel_size, stride)``.

    Parameters
    ----------
    kernel_size : int or (kH, kW), each from 1 to 255
    stride : int or (sH, sW); ``None`` (the default) is ``kernel_size`` on both axes

    Shapes: ``(N, C, H, W) -> (N, C, Ho, Wo)``, ``Ho = (H - kH) // sH + 1``,
    ``Wo = (W - kW) // sW + 1``. The gradient goes to the first maximum of each window in
    row-major order (as in PyTorch), so ties never double-count.

    How: the max over a rectangle is the max over rows of the max over columns, so the
    window is reduced one axis at a time, each a few vectorised passes over the whole batch
    (``kW`` then ``kH`` taps) instead of ``kH*kW``. Channel-major memory layout (see
    ``conv.py``) is kept.
    """

    def __init__(self, kernel_size, stride=None):
        super().__init__()
        self.kernel_size = checks.int_pair("MaxPool2D: kernel_size", kernel_size, min=1)
        if max(self.kernel_size) > 255:          # which tap held the max is kept as a uint8
            raise ValueError(f"MaxPool2D: kernel_size must be at most 255, got {kernel_size!r}")
        self.stride = (self.kernel_size if stride is None
                       else checks.int_pair("MaxPool2D: stride", stride, min=1))

    def output_shape(self, h: int, w: int) -> tuple[int, int]:
        """Spatial output size for an ``h x w`` input."""
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        return (h - kh) // sh + 1, (w - kw) // sw + 1

    def forward(self, x: np.ndarray):
        self._check_input(x)
        kh, kw = self.kernel_size
        if x.ndim != 4 or x.shape[2] < kh or x.shape[3] < kw:
            raise self._shape_error(x, f"(N, C, H, W) with H >= {kh}, W >= {kw}")
        sh, sw = self.stride
        ho, wo = self.output_shape(x.shape[2], x.shape[3])
        xt = x.transpose(1, 0, 2, 3)
        cols, arg_w = _max_along(xt, 3, kw, sw, wo)     # (C, N, H, Wo)
        out, arg_h = _max_along(cols, 2, kh, sh, ho)    # (C, N, Ho, Wo)
        if out.base is not None:                        # a 1x1 window: own the result
            out = out.copy()
        return out.transpose(1, 0, 2, 3), (arg_w, arg_h, x.shape)

    def backward(self, dout: np.ndarray, cache, need_dx: bool = True):
        if not need_dx:
            return None, {}
        arg_w, arg_h, (N, C, H, W) = cache
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        dt = dout.transpose(1, 0, 2, 3)
        dcols = _route_back(dt, arg_h, 2, kh, sh, H)
        dxt = _route_back(dcols, arg_w, 3, kw, sw, W)
        return dxt.transpose(1, 0, 2, 3), {}

    def __repr__(self) -> str:
        def short(pair):
            return pair[0] if pair[0] == pair[1] else pair
        stride = "" if self.stride == self.kernel_size else f", stride={short(self.stride)}"
        return f"MaxPool2D({short(self.kernel_size)}{stride})"
