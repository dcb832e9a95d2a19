"""The LSTM, gate for gate PyTorch's ``torch.nn.LSTM`` (gate order i, f, g, o)::

    i = sigmoid(W_ii x + b_ii + W_hi h + b_hi)      input gate
    f = sigmoid(W_if x + b_if + W_hf h + b_hf)      forget gate
    g = tanh(W_ig x + b_ig + W_hg h + b_hg)         candidate cell
    o = sigmoid(W_io x + b_io + W_ho h + b_ho)      output gate
    c' = f * c + i * g                              h' = o * tanh(c')

:func:`mtlearn.nn.recurrent_naive.lstm_forward_naive` is exactly that, one gate at a time;
read it first. This version computes the same numbers with as few numpy calls per time step
as possible, because at the sizes of the course (a few thousand numbers per step) each call
costs more in overhead than in arithmetic. Three ideas do it:

1. **One GEMM per step for all four gates**, input projection and biases included: the
   step's input is stacked as ``u_t = [h_{t-1}; x_t; 1]`` and the weights side by side as
   ``W = [W_hh | W_ih | b_ih + b_hh]``, so ``W @ u_t`` is every gate's pre-activation (see
   :mod:`mtlearn.nn.recurrent`). Each gate is one contiguous ``(H, N)`` block of the result.
2. **One tanh for all four gates.** ``sigmoid(z) = (1 + tanh(z / 2)) / 2``, so if the rows
   of the three sigmoid gates are halved in ``W`` beforehand, a single ``tanh`` over the
   whole ``(4H, N)`` block gives ``g`` directly and, after ``* 0.5 + 0.5``, the three sigmoid
   gates. For that they must be one contiguous block, so the rows are stored in the order
   **o, i, f, g** rather than PyTorch's i, f, g, o. That order also puts i, f and g — the
   three gates whose gradient is ``dc`` times something — next to each other, so backward
   treats them with one multiply.
3. **In backward, everything that does not depend on the incoming gradient is computed for
   all steps at once** before the loop, leaving five element-wise calls and one GEMM per
   step; the weight gradients of all steps, biases included, are one GEMM after the loop.
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

    def _o_i_f_g(self, w: np.ndarray) -> np.ndarray:
        """The gate blocks (rows) of ``w`` reordered from PyTorch's i, f, g, o to o, i, f, g."""
        H = self.hidden_size
        return np.concatenate([w[3 * H:], w[:3 * H]])

    def _forward(self, u, c0):
        """``u (T+1, H+I+1, N)`` with ``h_0`` and every ``x_t`` in place; fills in every
        ``h_t``. Returns ``([c_T], saved)`` with all arrays feature-major ``(H, N)`` per step."""
        T, N = u.shape[0] - 1, u.shape[2]
        H = self.hidden_size
        p = self.params
        # W = [W_hh | W_ih | b], rows in the order o, i, f, g; the sigmoid gates' rows halved.
        w = self._o_i_f_g(np.concatenate(
            [p["weight_hh"], p["weight_ih"], (p["bias_ih"] + p["bias_hh"])[:, None]], axis=1))
        w[:3 * H] *= 0.5
        gates = np.empty((T, 4 * H, N), dtype=u.dtype)   # every step's o, i, f, g
        c = np.empty((T + 1, H, N), dtype=u.dtype)       # c[t] is the cell state c_t
        tanh_c = np.empty((T, H, N), dtype=u.dtype)      # tanh_c[t] is tanh(c_{t+1})
        c[0] = c0
        i_g = np.empty((H, N), dtype=u.dtype)
        for t in range(T):
            z = gates[t]
            np.matmul(w, u[t], out=z)                    # all four gates, bias included
            np.tanh(z, out=z)                            # g, and tanh(z/2) for o, i, f
            sigmoids = z[:3 * H]
            sigmoids *= 0.5
            sigmoids += 0.5                              # o, i, f = (1 + tanh(z/2)) / 2
            o, i, f, g = z[:H], z[H:2 * H], z[2 * H:3 * H], z[3 * H:]
            c_new, tanh_c_new = c[t + 1], tanh_c[t]
            np.multiply(f, c[t], out=c_new)              # c' = f * c + i * g
            np.multiply(i, g, out=i_g)
            c_new += i_g
            np.tanh(c_new, out=tanh_c_new)
            np.multiply(o, tanh_c_new, out=u[t + 1, :H])  # h' = o * tanh(c'), into u_{t+1}
        return [c[T]], (gates, c, tanh_c)

    def _backward(self, dout_f, u, saved, dparts, need_dstate0):
        """Backpropagation through time. ``dout_f (T, H, N)`` is the gradient of every
        ``h_t``, ``dparts`` the gradients ``[dh, dc]`` of the final state. Returns ``dz``, the
        gradient of every step's pre-activations ``(T, 4H, N)`` (rows o, i, f, g, unhalved),
        and the gradients of the initial state."""
        gates, c, tanh_c = saved
        T, _, N = gates.shape
        H = self.hidden_size
        o, i, f, g = (gates[:, k * H:(k + 1) * H] for k in range(4))     # each (T, H, N)
        # The chain rule through one step, with dh and dc the gradients of h_t and c_t, and
        # s(1 - s) the derivative of a sigmoid gate s:
        #   dc (total) = dh * o (1 - tanh(c_t)^2) + dc from step t+1
        #   dz_o = dh * tanh(c_t) o (1 - o)
        #   dz_i = dc * g i (1 - i)      dz_f = dc * c_{t-1} f (1 - f)      dz_g = dc * i (1 - g^2)
        #   gradient to step t-1:  dc_{t-1} = dc * f,  dh_{t-1} = W_hh^T dz
        # Every factor after "dh *" or "dc *" is known once forward is done: compute them for
        # all steps at once, so that the loop only multiplies.
        factor = np.empty_like(gates)                    # dz = (dh or dc) * factor, rows o, i, f, g
        sig_factor = factor[:, :3 * H]
        np.subtract(1, gates[:, :3 * H], out=sig_factor)
        sig_factor *= gates[:, :3 * H]                   # s (1 - s) for o, i, f
        factor[:, :H] *= tanh_c                          # o: times tanh(c_t)
        factor[:, H:2 * H] *= g                          # i: times g
        factor[:, 2 * H:3 * H] *= c[:-1]                 # f: times c_{t-1}
        g_factor = factor[:, 3 * H:]
        np.multiply(g, g, out=g_factor)
        np.subtract(1, g_factor, out=g_factor)
        g_factor *= i                                    # g: i (1 - g^2)
        dc_from_dh = tanh_c * tanh_c
        np.subtract(1, dc_from_dh, out=dc_from_dh)
        dc_from_dh *= o                                  # o (1 - tanh(c_t)^2)
        dz = np.empty_like(gates)
        # i, f and g are adjacent rows, all driven by dc: one broadcast multiply per step.
        ifg_factor = factor[:, H:].reshape(T, 3, H, N)
        dz_ifg = dz[:, H:].reshape(T, 3, H, N)
        dh, dc_next = dparts                             # gradients arriving from step t+1
        dc = np.empty((H, N), dtype=gates.dtype)
        w_hh_t = np.ascontiguousarray(self._o_i_f_g(self.params["weight_hh"]).T)
        for t in range(T - 1, -1, -1):
            dh += dout_f[t]
            np.multiply(dh, dc_from_dh[t], out=dc)
            dc += dc_next
            np.multiply(dh, factor[t, :H], out=dz[t, :H])     # o
            np.multiply(dc, ifg_factor[t], out=dz_ifg[t])     # i, f, g at once
            np.multiply(dc, f[t], out=dc_next)                # dc_{t-1}
            if t or need_dstate0:
                np.matmul(w_hh_t, dz[t], out=dh)              # dh_{t-1}
        return dz, [dh, dc_next]

    def _split_grads(self, dw):
        H, I = self.hidden_size, self.input_size
        dw = np.concatenate([dw[H:], dw[:H]])           # rows back to PyTorch's i, f, g, o
        return {"weight_ih": dw[:, H:H + I].copy(), "weight_hh": dw[:, :H].copy(),
                "bias_ih": dw[:, -1].copy(), "bias_hh": dw[:, -1].copy()}

    def _input_weights(self):
        return self._o_i_f_g(self.params["weight_ih"])
