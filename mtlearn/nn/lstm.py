"""The LSTM, gate for gate PyTorch's ``torch.nn.LSTM`` (gate order i, f, g, o)::

    i = sigmoid(W_ii x + b_ii + W_hi h + b_hi)      f = sigmoid(...f...)
    g = tanh(W_ig x + b_ig + W_hg h + b_hg)         o = sigmoid(...o...)
    c' = f * c + i * g                              h' = o * tanh(c')

:func:`mtlearn.nn.recurrent_naive.lstm_forward_naive` is exactly that, one gate at a time.
This version computes the same numbers with as few numpy calls per time step as possible,
because at the sizes of the course (a few thousand numbers per step) each call costs more
in overhead than in arithmetic:

* **one GEMM per step for all four gates**, input projection and biases included, on the
  stacked input ``[h; x; 1]``, into feature-major buffers where each gate is one contiguous
  ``(H, N)`` block (see :mod:`mtlearn.nn.recurrent`);
* **one ``tanh`` for all four gates**: ``sigmoid(z) = (1 + tanh(z/2)) / 2``, so the rows of
  the sigmoid gates are pre-scaled by 1/2 and the gates reordered to ``o, i, f, g``: the
  three sigmoid gates are then one contiguous block, finished by ``*= .5; += .5``;
* in backward, **every factor that does not depend on the incoming gradient is computed for
  all steps at once** before the loop, leaving six element-wise calls and one GEMM per step;
  the weight gradients of all steps, biases included, are one GEMM after the loop.
"""

from __future__ import annotations

import numpy as np

from .recurrent import Recurrent


class LSTM(Recurrent):
    """Single-layer LSTM over ``(N, T, I)`` batches, like ``torch.nn.LSTM(batch_first=True)``.

    Parameters
    ----------
    input_size, hidden_size : int
    dtype, rng : parameter dtype (float32; float64 for gradient checks) and init seed/Generator

    Shapes: input ``(N, T, I)``, output ``(N, T, H)`` (every step's ``h``); state
    ``(h, c)``, each ``(N, H)``; ``weight_ih (4H, I)``, ``weight_hh (4H, H)``,
    ``bias_ih (4H,)``, ``bias_hh (4H,)``, gate blocks in the order i, f, g, o.
    See :class:`~mtlearn.nn.recurrent.Recurrent` for ``forward(x, state)`` and
    ``backward_with_state``.
    """

    num_gates = 4
    state_parts = 2

    def _reordered(self, w: np.ndarray) -> np.ndarray:
        """Gate blocks (rows) reordered from PyTorch's (i, f, g, o) to (o, i, f, g)."""
        H = self.hidden_size
        return np.concatenate([w[3 * H:], w[:3 * H]])

    def _forward(self, u, c0):
        T, N = u.shape[0] - 1, u.shape[2]
        H = self.hidden_size
        p = self.params
        # W = [W_hh | W_ih | b] reordered to (o, i, f, g), the sigmoid gates' rows halved.
        w = self._reordered(np.concatenate(
            [p["weight_hh"], p["weight_ih"], (p["bias_ih"] + p["bias_hh"])[:, None]], axis=1))
        w[:3 * H] *= 0.5
        a = np.empty((T, 4 * H, N), dtype=u.dtype)      # each step's gates (o, i, f, g)
        cs = np.empty((T + 1, H, N), dtype=u.dtype)
        tcs = np.empty((T, H, N), dtype=u.dtype)        # tanh(c_t)
        cs[0] = c0
        ig = np.empty((H, N), dtype=u.dtype)
        mul, tanh, matmul = np.multiply, np.tanh, np.matmul
        for t in range(T):
            at = a[t]
            matmul(w, u[t], out=at)                     # all four gates, input and bias included
            tanh(at, out=at)
            sig = at[:3 * H]                            # sigmoid(z) = (1 + tanh(z/2)) / 2
            sig *= 0.5
            sig += 0.5
            c = cs[t + 1]
            mul(at[H:2 * H], at[3 * H:], out=ig)        # i * g
            mul(at[2 * H:3 * H], cs[t], out=c)          # f * c_prev
            c += ig
            tanh(c, out=tcs[t])
            mul(at[:H], tcs[t], out=u[t + 1, :H])       # h = o * tanh(c)
        return [cs[T]], (a, cs, tcs)

    def _backward(self, dout_f, u, saved, dparts, need_dstate0):
        a, cs, tcs = saved
        T, _, N = a.shape
        H = self.hidden_size
        o, i, f, g = (a[:, k * H:(k + 1) * H] for k in range(4))
        # Everything that does not depend on the incoming gradient, for all steps at once.
        # With dz the gradient of the (unscaled) pre-activations and s' = s (1 - s):
        #   dz_o = dh * tanh(c) s'_o    dz_i = dc * g s'_i    dz_f = dc * c_prev s'_f
        #   dz_g = dc * i (1 - g^2)     dc  = dh * o (1 - tanh(c)^2) + dc_next
        q = np.empty_like(a)
        qs = q[:, :3 * H]
        np.subtract(1, a[:, :3 * H], out=qs)
        qs *= a[:, :3 * H]
        q[:, :H] *= tcs
        q[:, H:2 * H] *= g
        q[:, 2 * H:3 * H] *= cs[:-1]
        qg = q[:, 3 * H:]
        np.multiply(g, g, out=qg)
        np.subtract(1, qg, out=qg)
        qg *= i
        od = tcs * tcs
        np.subtract(1, od, out=od)
        od *= o
        dz = np.empty_like(a)
        q3 = q[:, H:].reshape(T, 3, H, N)
        dz3 = dz[:, H:].reshape(T, 3, H, N)
        dh, dc = dparts                                 # gradients arriving from step t+1
        dct = np.empty((H, N), dtype=a.dtype)
        w_hh_t = np.ascontiguousarray(self._reordered(self.params["weight_hh"]).T)
        mul, matmul = np.multiply, np.matmul
        for t in range(T - 1, -1, -1):
            dh += dout_f[t]
            mul(dh, od[t], out=dct)
            dct += dc
            mul(dh, q[t, :H], out=dz[t, :H])
            mul(dct, q3[t], out=dz3[t])                 # i, f, g at once: dct broadcast
            mul(dct, f[t], out=dc)
            if t or need_dstate0:
                matmul(w_hh_t, dz[t], out=dh)
        return dz, [dh, dc]

    def _split_grads(self, dw):
        H, I = self.hidden_size, self.input_size
        dw = np.concatenate([dw[H:], dw[:H]])           # back to PyTorch's order i, f, g, o
        return {"weight_ih": dw[:, H:H + I].copy(), "weight_hh": dw[:, :H].copy(),
                "bias_ih": dw[:, -1].copy(), "bias_hh": dw[:, -1].copy()}

    def _input_weights(self):
        return self._reordered(self.params["weight_ih"])
