"""2-D convolution as one matrix multiply (im2col + GEMM).

Where the time goes in a numpy CNN is copying, not arithmetic, so this file is about memory
layout. Activations are *logically* ``(N, C, H, W)`` (PyTorch's layout, which every public
shape follows) but the convolution produces them *physically* channel-major, ``(C, N, H, W)``
in memory, returned as a transposed view. That is exactly the layout one GEMM produces, so:

* forward is one copy of the input into the column matrix and one GEMM
  ``weight (O, C*kH*kW) @ cols (C*kH*kW, N*Ho*Wo)``; no output transpose;
* the next layers (ReLU, max-pool) keep that layout, so the next im2col copies contiguous
  channel planes and backward reads ``dout`` as an ``(O, N*Ho*Wo)`` matrix with no copy.

:mod:`mtlearn.nn.conv_naive` has the same maths as plain loops, as the reference.
"""

from __future__ import annotations

import math

import numpy as np

from ..runtime import checks
from .conv_naive import conv2d_backward_naive, conv2d_forward_naive
from .layer import DEFAULT_DTYPE, Layer, as_generator, check_dtype, sum_product, uniform


def _channel_major(x: np.ndarray) -> np.ndarray:
    """View ``(N, C, H, W)`` as ``(C, N, H, W)`` (free for our own activations)."""
    return x.transpose(1, 0, 2, 3)


def im2col(xt: np.ndarray, kh: int, kw: int, stride: int, padding: int) -> np.ndarray:
    """Unfold channel-major images into the column matrix.

    xt : (C, N, H, W) -> cols : (C*kH*kW, N*Ho*Wo), rows ordered (c, u, v) like
    ``weight.reshape(O, -1)``, columns ordered (n, i, j).
    """
    C, N, H, W = xt.shape
    Ho = (H + 2 * padding - kh) // stride + 1
    Wo = (W + 2 * padding - kw) // stride + 1
    if padding:
        xp = np.zeros((C, N, H + 2 * padding, W + 2 * padding), dtype=xt.dtype)
        xp[:, :, padding:padding + H, padding:padding + W] = xt
    else:
        xp = xt
    cols = np.empty((C, kh, kw, N, Ho, Wo), dtype=xt.dtype)
    # One strided copy per filter offset (kH*kW copies of the whole batch), not per pixel.
    for u in range(kh):
        for v in range(kw):
            cols[:, u, v] = xp[:, :, u:u + stride * (Ho - 1) + 1:stride,
                               v:v + stride * (Wo - 1) + 1:stride]
    return cols.reshape(C * kh * kw, N * Ho * Wo)


def col2im(dcols: np.ndarray, shape, kh: int, kw: int, stride: int, padding: int) -> np.ndarray:
    """Fold column gradients back onto the images (the adjoint of :func:`im2col`).

    dcols : (C*kH*kW, N*Ho*Wo), shape = (C, N, H, W) -> dxt : (C, N, H, W), where
    overlapping windows add up.
    """
    C, N, H, W = shape
    Ho = (H + 2 * padding - kh) // stride + 1
    Wo = (W + 2 * padding - kw) // stride + 1
    d = dcols.reshape(C, kh, kw, N, Ho, Wo)
    dxp = np.zeros((C, N, H + 2 * padding, W + 2 * padding), dtype=dcols.dtype)
    for u in range(kh):
        for v in range(kw):
            dxp[:, :, u:u + stride * (Ho - 1) + 1:stride,
                v:v + stride * (Wo - 1) + 1:stride] += d[:, u, v]
    return dxp[:, :, padding:padding + H, padding:padding + W] if padding else dxp


class Conv2D(Layer):
    """2-D convolution (cross-correlation) over ``(N, C, H, W)`` images, like ``torch.nn.Conv2d``.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int or (kH, kW)
    stride, padding : int (zero padding on every side)
    impl : ``"gemm"`` (im2col + one matrix multiply, the default) or ``"naive"`` (the loops of
        :mod:`mtlearn.nn.conv_naive`, for reading and for checking)
    dtype, rng : parameter dtype and initialisation seed/Generator

    Shapes: input ``(N, in_channels, H, W)``; output ``(N, out_channels, Ho, Wo)`` with
    ``Ho = (H + 2*padding - kH) // stride + 1``; ``weight (out, in, kH, kW)``, ``bias (out,)``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride: int = 1,
                 padding: int = 0, *, impl: str = "gemm", dtype=DEFAULT_DTYPE, rng=None):
        super().__init__()
        self.in_channels = checks.integer("Conv2D: in_channels", in_channels, min=1)
        self.out_channels = checks.integer("Conv2D: out_channels", out_channels, min=1)
        self.kernel_size = checks.int_pair("Conv2D: kernel_size", kernel_size, min=1)
        self.stride = checks.integer("Conv2D: stride", stride, min=1)
        self.padding = checks.integer("Conv2D: padding", padding, min=0)
        self.impl = checks.choice("Conv2D: impl", impl, ("gemm", "naive"))
        self.reset_parameters(rng, dtype)

    def reset_parameters(self, rng=None, dtype=DEFAULT_DTYPE) -> None:
        """PyTorch's default: weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
        rng, dtype = as_generator(rng), check_dtype(dtype)
        kh, kw = self.kernel_size
        bound = 1 / math.sqrt(self.in_channels * kh * kw)
        self.params = {
            "weight": uniform(rng, bound, (self.out_channels, self.in_channels, kh, kw), dtype),
            "bias": uniform(rng, bound, (self.out_channels,), dtype),
        }

    def output_shape(self, h: int, w: int) -> tuple[int, int]:
        """Spatial output size for an ``h x w`` input."""
        (kh, kw), s, p = self.kernel_size, self.stride, self.padding
        return (h + 2 * p - kh) // s + 1, (w + 2 * p - kw) // s + 1

    def _check(self, x: np.ndarray) -> None:
        kh, kw = self.kernel_size
        if (x.ndim != 4 or x.shape[1] != self.in_channels
                or x.shape[2] + 2 * self.padding < kh or x.shape[3] + 2 * self.padding < kw):
            raise self._shape_error(
                x, f"(N, {self.in_channels}, H, W) with H, W >= {kh - 2 * self.padding}")

    def forward(self, x: np.ndarray):
        self._check_input(x)
        self._check(x)
        w, b = self.params["weight"], self.params["bias"]
        if self.impl == "naive":
            return conv2d_forward_naive(x, w, b, self.stride, self.padding), x
        kh, kw = self.kernel_size
        N, _, H, W = x.shape
        Ho, Wo = self.output_shape(H, W)
        cols = im2col(_channel_major(x), kh, kw, self.stride, self.padding)
        out = w.reshape(self.out_channels, -1) @ cols          # (O, N*Ho*Wo)
        out += b[:, None]
        out = out.reshape(self.out_channels, N, Ho, Wo).transpose(1, 0, 2, 3)
        return out, (cols, x.shape)

    def backward(self, dout: np.ndarray, cache, need_dx: bool = True):
        w = self.params["weight"]
        if self.impl == "naive":
            dx, dw, db = conv2d_backward_naive(dout, cache, w, self.stride, self.padding)
            return (dx if need_dx else None), {"weight": dw, "bias": db}
        cols, (N, C, H, W) = cache
        O = self.out_channels
        d2 = _channel_major(dout).reshape(O, -1)                 # (O, N*Ho*Wo), free view
        # (cols @ d2.T).T is the same product as d2 @ cols.T; OpenBLAS runs this shape
        # (long K = N*Ho*Wo, small output) ~1.4x faster with the long matrix on the left.
        dw = sum_product(cols, d2.T).T
        grads = {"weight": dw.reshape(w.shape), "bias": d2.sum(axis=1)}
        if not need_dx:      # the first layer's input needs no gradient: skip a GEMM + col2im
            return None, grads
        dcols = w.reshape(O, -1).T @ d2                          # (C*kH*kW, N*Ho*Wo)
        kh, kw = self.kernel_size
        dxt = col2im(dcols, (C, N, H, W), kh, kw, self.stride, self.padding)
        return dxt.transpose(1, 0, 2, 3), grads

    def __repr__(self) -> str:
        kh, kw = self.kernel_size
        k = kh if kh == kw else (kh, kw)
        extra = "".join(f", {n}={v}" for n, v, d in (("stride", self.stride, 1),
                        ("padding", self.padding, 0)) if v != d)
        return f"Conv2D({self.in_channels}, {self.out_channels}, {k}{extra})"
