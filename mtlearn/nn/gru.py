"""The GRU, as PyTorch's ``torch.nn.GRU`` defines it (gate order r, z, n)::

    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)      z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn))   h' = (1 - z) * n + z * h

Note ``r`` multiplies ``W_hn h + b_hn`` (PyTorch's and cuDNN's variant), so ``b_hn`` cannot
be merged with ``b_in``: the stacked weights (see :mod:`mtlearn.nn.recurrent`) have four
row blocks, ``r``, ``z``, ``W_hn h + b_hn`` and ``W_in x + b_in``, so one GEMM per step still
gives everything. The other tricks are the LSTM's (see :mod:`mtlearn.nn.lstm`): the two
sigmoid gates as one ``tanh`` on pre-halved rows, and backward factors computed for all
steps before the loop. :func:`mtlearn.nn.recurrent_naive.gru_forward_naive` is the plain
version.
"""

from __future__ import annotations

import numpy as np

from .recurrent import Recurrent


class GRU(Recurrent):
    """Single-layer GRU over ``(N, T, I)`` batches, like ``torch.nn.GRU(batch_first=True)``.

    Parameters
    ----------
    input_size, hidden_size : int
    dtype, rng : parameter dtype (float32; float64 for gradient checks) and init seed/Generator

    Shapes: input ``(N, T, I)``, output ``(N, T, H)``; state ``h (N, H)``;
    ``weight_ih (3H, I)``, ``weight_hh (3H, H)``, ``bias_ih (3H,)``, ``bias_hh (3H,)``, gate
    blocks in the order r, z, n. See :class:`~mtlearn.nn.recurrent.Recurrent` for
    ``forward(x, state)`` and ``backward_with_state``.
    """

    num_gates = 3

    def _stacked_weights(self) -> np.ndarray:
        """``W (4H, H+I+1)`` whose rows give, from ``[h; x; 1]``: the r and z pre-activations
        (halved), ``W_hn h + b_hn`` and ``W_in x + b_in``."""
        p, H, I = self.params, self.hidden_size, self.input_size
        w = np.zeros((4 * H, H + I + 1), dtype=p["weight_hh"].dtype)
        w[:2 * H, :H] = p["weight_hh"][:2 * H]
        w[:2 * H, H:H + I] = p["weight_ih"][:2 * H]
        w[:2 * H, -1] = p["bias_ih"][:2 * H] + p["bias_hh"][:2 * H]
        w[:2 * H] *= 0.5                                # sigmoid(z) = (1 + tanh(z/2)) / 2
        w[2 * H:3 * H, :H] = p["weight_hh"][2 * H:]
        w[2 * H:3 * H, -1] = p["bias_hh"][2 * H:]
        w[3 * H:, H:H + I] = p["weight_ih"][2 * H:]
        w[3 * H:, -1] = p["bias_ih"][2 * H:]
        return w

    def _forward(self, u):
        T, N = u.shape[0] - 1, u.shape[2]
        H = self.hidden_size
        w = self._stacked_weights()
        a = np.empty((T, 4 * H, N), dtype=u.dtype)      # each step's r, z, W_hn h + b_hn, n
        rn = np.empty((H, N), dtype=u.dtype)
        for t in range(T):
            at = a[t]
            np.matmul(w, u[t], out=at)
            rz = at[:2 * H]
            np.tanh(rz, out=rz)
            rz *= 0.5
            rz += 0.5
            n = at[3 * H:]
            np.multiply(at[:H], at[2 * H:3 * H], out=rn)    # r * (W_hn h + b_hn)
            n += rn
            np.tanh(n, out=n)
            h = u[t + 1, :H]
            np.subtract(u[t, :H], n, out=h)             # h' = n + z * (h - n)
            h *= at[H:2 * H]
            h += n
        return [], (a,)

    def _backward(self, dout_f, u, saved, dparts, need_dstate0):
        (a,) = saved
        T, _, N = a.shape
        H = self.hidden_size
        r, z, hn, n = (a[:, k * H:(k + 1) * H] for k in range(4))
        # Factors that do not depend on the incoming gradient, for all steps at once:
        dn_f = (1 - n * n) * (1 - z)                   # dL/dn_pre = dh * dn_f
        dz_f = (u[:T, :H] - n) * z * (1 - z)           # dL/dz_pre = dh * dz_f
        dr_f = hn * r * (1 - r)                        # dL/dr_pre = dL/dn_pre * dr_f
        # dg[t]: the gradient of step t's rows r, z, W_hn h + b_hn, W_in x + b_in.
        dg = np.empty_like(a)
        dh = dparts[0]
        zdh = np.empty((H, N), dtype=a.dtype)
        w_hh_t = np.ascontiguousarray(self.params["weight_hh"].T)
        for t in range(T - 1, -1, -1):
            dh += dout_f[t]
            dnp = dg[t, 3 * H:]
            np.multiply(dh, dn_f[t], out=dnp)
            np.multiply(dnp, dr_f[t], out=dg[t, :H])
            np.multiply(dh, dz_f[t], out=dg[t, H:2 * H])
            np.multiply(dnp, r[t], out=dg[t, 2 * H:3 * H])  # n's hidden side is gated by r
            np.multiply(dh, z[t], out=zdh)
            if t or need_dstate0:
                np.matmul(w_hh_t, dg[t, :3 * H], out=dh)
                dh += zdh
        return dg, [dh]

    def _split_grads(self, dw):
        H, I = self.hidden_size, self.input_size
        rz, nh, nx = dw[:2 * H], dw[2 * H:3 * H], dw[3 * H:]
        return {"weight_ih": np.concatenate([rz[:, H:H + I], nx[:, H:H + I]]),
                "weight_hh": dw[:3 * H, :H].copy(),
                "bias_ih": np.concatenate([rz[:, -1], nx[:, -1]]),
                "bias_hh": np.concatenate([rz[:, -1], nh[:, -1]])}

    def _input_weights(self):
        p, H = self.params, self.hidden_size
        w = p["weight_ih"]
        return np.concatenate([w[:2 * H], np.zeros_like(w[2 * H:]), w[2 * H:]])
