"""RNN, LSTM and GRU written one time step and one gate at a time: the references.

Read this first. Each ``*_forward_naive`` is PyTorch's documented formula, computed for
step t = 0, 1, ..., T-1 with separate matrices for each gate; each ``*_backward_naive``
walks the same steps backwards (backpropagation through time), one gate at a time. The
layers in :mod:`mtlearn.nn.rnn`, :mod:`~mtlearn.nn.lstm` and :mod:`~mtlearn.nn.gru` compute
the same numbers with far fewer numpy calls, and are tested against these functions.

Shared conventions: ``x (N, T, I)``; ``p`` a dict with ``weight_ih (kH, I)``,
``weight_hh (kH, H)``, ``bias_ih (kH,)``, ``bias_hh (kH,)``; states ``(N, H)``. Forward
returns ``(out (N, T, H), final_state, tape)``; backward takes ``dout (N, T, H)``, the tape
and the gradient of the final state (or None) and returns ``(dx, grads, dstate0)``.
"""

from __future__ import annotations

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function ``1 / (1 + exp(-x))``."""
    return 1 / (1 + np.exp(-x))


def _gates(p: dict, k: int) -> list[tuple[np.ndarray, ...]]:
    """Split the stacked parameters into ``k`` gates: ``[(W_i*, W_h*, b_i*, b_h*), ...]``."""
    parts = [np.split(p[name], k) for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    return list(zip(*parts, strict=True))


def _affine(x, h, gate):
    w_i, w_h, b_i, b_h = gate
    return x @ w_i.T + b_i + h @ w_h.T + b_h


def _grads_of(gate_grads: list[list[np.ndarray]]) -> dict[str, np.ndarray]:
    """Stack per-gate ``[dW_i, dW_h, db_i, db_h]`` back into PyTorch's layout."""
    names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    return {name: np.concatenate([g[j] for g in gate_grads]) for j, name in enumerate(names)}


def _gate_grad(dpre, x, h, dpre_h=None):
    """Gradients of one gate's ``x W_i^T + b_i + h W_h^T + b_h`` given its pre-activation
    gradient (``dpre_h``: a different one for the hidden side, the GRU's n gate)."""
    dpre_h = dpre if dpre_h is None else dpre_h
    return [dpre.T @ x, dpre_h.T @ h, dpre.sum(0), dpre_h.sum(0)]


def _zeros_like_state(p, x):
    return np.zeros((x.shape[0], p["weight_hh"].shape[1]), dtype=x.dtype)


# ---------------------------------------------------------------------------- RNN
def rnn_forward_naive(x, p, h0=None):
    """``h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)``; final state ``h_T``."""
    h = _zeros_like_state(p, x) if h0 is None else h0
    gate = _gates(p, 1)[0]
    outs, tape = [], []
    for t in range(x.shape[1]):
        h_prev = h
        h = np.tanh(_affine(x[:, t], h_prev, gate))
        tape.append((x[:, t], h_prev, h))
        outs.append(h)
    return np.stack(outs, axis=1), h, tape


def rnn_backward_naive(dout, tape, p, dh_final=None):
    """BPTT through :func:`rnn_forward_naive`. Returns ``(dx, grads, dh0)``."""
    w_i, w_h, _, _ = _gates(p, 1)[0]
    dh = np.zeros_like(tape[0][1]) if dh_final is None else dh_final
    dxs, total = [], None
    for t in reversed(range(len(tape))):
        x, h_prev, h = tape[t]
        dh = dh + dout[:, t]
        dpre = dh * (1 - h ** 2)                      # tanh'(z) = 1 - tanh(z)^2
        g = _gate_grad(dpre, x, h_prev)
        total = g if total is None else [a + b for a, b in zip(total, g, strict=True)]
        dxs.append(dpre @ w_i)
        dh = dpre @ w_h
    return np.stack(dxs[::-1], axis=1), _grads_of([total]), dh


# ---------------------------------------------------------------------------- LSTM
def lstm_forward_naive(x, p, state=None):
    """PyTorch's LSTM (gates i, f, g, o); ``state = (h0, c0)``; final state ``(h_T, c_T)``."""
    h, c = (_zeros_like_state(p, x), _zeros_like_state(p, x)) if state is None else state
    gi, gf, gg, go = _gates(p, 4)
    outs, tape = [], []
    for t in range(x.shape[1]):
        xt, h_prev, c_prev = x[:, t], h, c
        i = sigmoid(_affine(xt, h_prev, gi))       # input gate: how much new to write
        f = sigmoid(_affine(xt, h_prev, gf))       # forget gate: how much old to keep
        g = np.tanh(_affine(xt, h_prev, gg))       # candidate values
        o = sigmoid(_affine(xt, h_prev, go))       # output gate: how much to show
        c = f * c_prev + i * g
        h = o * np.tanh(c)
        tape.append((xt, h_prev, c_prev, i, f, g, o, c))
        outs.append(h)
    return np.stack(outs, axis=1), (h, c), tape


def lstm_backward_naive(dout, tape, p, dstate_final=None):
    """BPTT through :func:`lstm_forward_naive`. Returns ``(dx, grads, (dh0, dc0))``."""
    gates = _gates(p, 4)
    zero = np.zeros_like(tape[0][1])
    dh, dc = (zero, zero) if dstate_final is None else dstate_final
    dxs, total = [], None
    for t in reversed(range(len(tape))):
        xt, h_prev, c_prev, i, f, g, o, c = tape[t]
        dh = dh + dout[:, t]
        tc = np.tanh(c)
        do = dh * tc
        dc = dc + dh * o * (1 - tc ** 2)
        di, df, dg = dc * g, dc * c_prev, dc * i
        # through the non-linearities: sigmoid' = s (1 - s), tanh' = 1 - tanh^2
        dpres = [di * i * (1 - i), df * f * (1 - f), dg * (1 - g ** 2), do * o * (1 - o)]
        g_all = [_gate_grad(d, xt, h_prev) for d in dpres]
        total = g_all if total is None else [[a + b for a, b in zip(ta, tb, strict=True)]
                                            for ta, tb in zip(total, g_all, strict=True)]
        dxs.append(sum(d @ gate[0] for d, gate in zip(dpres, gates, strict=True)))
        dh = sum(d @ gate[1] for d, gate in zip(dpres, gates, strict=True))
        dc = dc * f
    return np.stack(dxs[::-1], axis=1), _grads_of(total), (dh, dc)


# ---------------------------------------------------------------------------- GRU
def gru_forward_naive(x, p, h0=None):
    """PyTorch's GRU (gates r, z, n; ``r`` multiplies ``W_hn h + b_hn``); final state h_T."""
    h = _zeros_like_state(p, x) if h0 is None else h0
    gr, gz, (w_in, w_hn, b_in, b_hn) = _gates(p, 3)
    outs, tape = [], []
    for t in range(x.shape[1]):
        xt, h_prev = x[:, t], h
        r = sigmoid(_affine(xt, h_prev, gr))       # reset gate
        z = sigmoid(_affine(xt, h_prev, gz))       # update gate
        hn = h_prev @ w_hn.T + b_hn
        n = np.tanh(xt @ w_in.T + b_in + r * hn)   # candidate
        h = (1 - z) * n + z * h_prev
        tape.append((xt, h_prev, r, z, n, hn))
        outs.append(h)
    return np.stack(outs, axis=1), h, tape


def gru_backward_naive(dout, tape, p, dh_final=None):
    """BPTT through :func:`gru_forward_naive`. Returns ``(dx, grads, dh0)``."""
    gates = _gates(p, 3)
    dh = np.zeros_like(tape[0][1]) if dh_final is None else dh_final
    dxs, total = [], None
    for t in reversed(range(len(tape))):
        xt, h_prev, r, z, n, hn = tape[t]
        dh = dh + dout[:, t]
        dn = dh * (1 - z)
        dz = dh * (h_prev - n)
        dn_pre = dn * (1 - n ** 2)
        dr = dn_pre * hn
        dr_pre, dz_pre = dr * r * (1 - r), dz * z * (1 - z)
        dhn = dn_pre * r                           # the hidden side of n is gated by r
        g_all = [_gate_grad(dr_pre, xt, h_prev), _gate_grad(dz_pre, xt, h_prev),
                 _gate_grad(dn_pre, xt, h_prev, dpre_h=dhn)]
        total = g_all if total is None else [[a + b for a, b in zip(ta, tb, strict=True)]
                                            for ta, tb in zip(total, g_all, strict=True)]
        dxs.append(dr_pre @ gates[0][0] + dz_pre @ gates[1][0] + dn_pre @ gates[2][0])
        dh = dh * z + dr_pre @ gates[0][1] + dz_pre @ gates[1][1] + dhn @ gates[2][1]
    return np.stack(dxs[::-1], axis=1), _grads_of(total), dh
