"""The convolution written as loops: the reference the fast version is tested against.

Read this first. It is the definition (cross-correlation, as in every deep-learning
framework) and is about a thousand times slower than :mod:`mtlearn.nn.conv`.
"""

from __future__ import annotations

import numpy as np


def _pad(x: np.ndarray, p: int) -> np.ndarray:
    return np.pad(x, ((0, 0), (0, 0), (p, p), (p, p))) if p else x


def conv2d_forward_naive(x, weight, bias, stride=1, padding=0):
    """``out[n, o, i, j] = bias[o] + sum_{c,u,v} weight[o,c,u,v] * xpad[n, c, i*s+u, j*s+v]``.

    x : (N, C, H, W); weight : (O, C, kH, kW); bias : (O,) -> out : (N, O, Ho, Wo)
    with ``Ho = (H + 2*padding - kH) // stride + 1`` (likewise Wo).
    """
    N, C, H, W = x.shape
    O, _, kh, kw = weight.shape
    xp = _pad(x, padding)
    Ho = (H + 2 * padding - kh) // stride + 1
    Wo = (W + 2 * padding - kw) // stride + 1
    out = np.empty((N, O, Ho, Wo), dtype=np.result_type(x, weight))
    for n in range(N):
        for o in range(O):
            for i in range(Ho):
                for j in range(Wo):
                    window = xp[n, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
                    out[n, o, i, j] = np.sum(window * weight[o]) + bias[o]
    return out


def conv2d_backward_naive(dout, x, weight, stride=1, padding=0):
    """Gradients of the naive convolution: each output element sends its gradient back
    to the window and the filter that produced it.

    dout : (N, O, Ho, Wo) -> (dx (N, C, H, W), dweight (O, C, kH, kW), dbias (O,))
    """
    N, C, H, W = x.shape
    O, _, kh, kw = weight.shape
    xp = _pad(x, padding)
    dxp = np.zeros_like(xp, dtype=np.result_type(dout, weight))
    dw = np.zeros_like(weight, dtype=np.result_type(dout, x))
    Ho, Wo = dout.shape[2:]
    for n in range(N):
        for o in range(O):
            for i in range(Ho):
                for j in range(Wo):
                    g = dout[n, o, i, j]
                    rows = slice(i * stride, i * stride + kh)
                    cols = slice(j * stride, j * stride + kw)
                    dw[o] += g * xp[n, :, rows, cols]
                    dxp[n, :, rows, cols] += g * weight[o]
    dx = dxp[:, :, padding:padding + H, padding:padding + W] if padding else dxp
    return dx, dw, dout.sum(axis=(0, 2, 3))
