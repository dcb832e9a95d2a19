"""The Elman RNN, ``h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)``, like ``torch.nn.RNN``.

With the stacked input ``u_t = [h_{t-1}; x_t; 1]`` and ``W = [W_hh | W_ih | b_ih + b_hh]``
(see :mod:`mtlearn.nn.recurrent`) a step is two numpy calls: one GEMM written straight into
``h_t``'s place and one in-place ``tanh``. Backward computes ``1 - h**2`` for all steps at
once, then does two element-wise operations and one GEMM per step.
"""

from __future__ import annotations

import numpy as np

from .recurrent import Recurrent


class RNN(Recurrent):
    """Single-layer tanh RNN over ``(N, T, I)`` batches, like ``torch.nn.RNN(batch_first=True)``.

    Parameters
    ----------
    input_size, hidden_size : int
    dtype, rng : parameter dtype (float32; float64 for gradient checks) and init seed/Generator

    Shapes: input ``(N, T, I)``, output ``(N, T, H)``; state ``h (N, H)``;
    ``weight_ih (H, I)``, ``weight_hh (H, H)``, ``bias_ih (H,)``, ``bias_hh (H,)``.
    See :class:`~mtlearn.nn.recurrent.Recurrent` for ``forward(x, state)`` and
    ``backward_with_state``.
    """

    num_gates = 1

    def _forward(self, u):
        p, H = self.params, self.hidden_size
        w = np.concatenate([p["weight_hh"], p["weight_ih"], (p["bias_ih"] + p["bias_hh"])[:, None]],
                           axis=1)
        for t in range(u.shape[0] - 1):
            h = u[t + 1, :H]
            np.matmul(w, u[t], out=h)
            np.tanh(h, out=h)
        return [], ()

    def _backward(self, dout_f, u, saved, dparts, need_dstate0):
        H = self.hidden_size
        T = dout_f.shape[0]
        w_hh_t = np.ascontiguousarray(self.params["weight_hh"].T)
        hs = u[1:, :H]
        dz = 1 - hs * hs                              # tanh' of every step; becomes dL/dz
        dh = dparts[0]                                # gradient arriving from step t+1
        for t in range(T - 1, -1, -1):
            dh += dout_f[t]
            z = dz[t]
            z *= dh
            if t or need_dstate0:
                np.matmul(w_hh_t, z, out=dh)
        return dz, [dh]

    def _split_grads(self, dw):
        H, I = self.hidden_size, self.input_size
        return {"weight_ih": dw[:, H:H + I].copy(), "weight_hh": dw[:, :H].copy(),
                "bias_ih": dw[:, -1].copy(), "bias_hh": dw[:, -1].copy()}

    def _input_weights(self):
        return self.params["weight_ih"]
