"""What the recurrent layers (``RNN``, ``LSTM``, ``GRU``) share, and how state is carried.

A recurrent layer maps a batch of sequences ``x (N, T, I)`` to every hidden state
``out (N, T, H)``. Each step needs the previous step's hidden state, so the T steps run one
after another: a recurrence is sequential in *time*. What can run at once is everything
else: the N sequences of the batch and the gates of a step (one matrix product per step),
and the weight gradients of all T steps (one matrix product after the loop).
:mod:`mtlearn.nn.recurrent_naive` has the plain per-step formulas the fast layers are
tested against.

Memory layout: one GEMM per step
--------------------------------
At the sizes of the course (a few thousand numbers per step) each numpy call costs more in
overhead than in arithmetic, so the layers make as few calls per step as they can:

* The input of step t is stacked with the previous hidden state and a row of ones,
  ``u_t = [h_{t-1}; x_t; 1]`` of shape ``(H + I + 1, N)``, and the parameters side by side,
  ``W = [W_hh | W_ih | b]``: then all the gates' pre-activations of a step are *one* GEMM,
  ``W @ u_t``, input projection and biases included, written straight into place. The
  forward pass writes ``h_t`` into the top rows of ``u_{t+1}``, so nothing is copied.
* Arrays are *logically* ``(N, T, H)`` like PyTorch's ``batch_first=True``, but *physically*
  feature-major: the buffer is ``(T+1, H+I+1, N)`` and each gate of a step is one contiguous
  ``(H, N)`` block. Element-wise operations on strided ``(N, H)`` column slices of an
  ``(N, 4H)`` array are several times slower. ``out`` is a transposed view, like the
  convolution's channel-major output.
* In backward, the weight gradients of all steps are one GEMM,
  ``dW = sum_t dz_t u_t^T`` = :func:`step_major` ``(dz) @ step_major(u).T``, biases included.

State, without state on the layer
---------------------------------
``forward(x, state=None)`` starts from ``state`` (zeros when ``None``) and returns
``(out, cache)``; the state after the last step is ``cache.final_state``::

    out, cache = lstm.forward(x_chunk, state)     # state: (h, c) for the LSTM, h otherwise
    state = cache.final_state                     # feed it to the next chunk (truncated BPTT)

``backward(dout, cache)`` is the usual ``(dx, grads)``; ``backward_with_state(dout, cache,
dstate)`` also takes a gradient for the final state and returns the one for the initial
state. :func:`forward_with_state` does the same for a whole :class:`~mtlearn.nn.Sequential`,
whose ``forward(x)`` always starts from zeros.

States are ``(N, H)`` arrays; PyTorch's are ``(num_layers, N, H)``, so ``h[None]`` is the
state to give ``torch.nn.LSTM`` for the same numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..runtime import checks
from .layer import DEFAULT_DTYPE, Layer, as_generator, check_dtype, check_real, sum_product, uniform


def step_major(a: np.ndarray) -> np.ndarray:
    """``(T, F, N) -> (F, T*N)`` with columns in (t, n) order (a copy): the layout in which
    a sum over all steps of per-step products becomes one GEMM."""
    T, F, N = a.shape
    return np.ascontiguousarray(a.transpose(1, 0, 2)).reshape(F, T * N)


@dataclass(frozen=True, eq=False)
class RecurrentCache:
    """What a recurrent ``forward`` hands to ``backward``.

    ``final_state`` is the state after the last step: ``h (N, H)``, or ``(h, c)`` for the
    LSTM. ``u`` is the stacked input buffer ``(T+1, H+I+1, N)`` (see the module docstring),
    ``saved`` the other arrays backward needs (layer-specific), ``has_state`` whether an
    initial state was given.
    """

    final_state: np.ndarray | tuple[np.ndarray, np.ndarray]
    u: np.ndarray
    saved: tuple
    has_state: bool


class Recurrent(Layer):
    """Base class of ``RNN``, ``LSTM`` and ``GRU``: parameters, checks and the state API.

    Parameters (PyTorch's names and layout, ``k`` = number of gates, ``num_gates``)::

        weight_ih (k*H, I)   weight_hh (k*H, H)   bias_ih (k*H,)   bias_hh (k*H,)

    all initialised ``U(-1/sqrt(H), 1/sqrt(H))`` like ``torch.nn.RNN/LSTM/GRU``.
    Subclasses implement ``_forward`` and ``_backward`` on the feature-major buffers.
    """

    num_gates = 1
    state_parts = 1        # 2 for the LSTM: (h, c)

    def __init__(self, input_size: int, hidden_size: int, *, dtype=DEFAULT_DTYPE, rng=None):
        super().__init__()
        name = type(self).__name__
        self.input_size = checks.integer(f"{name}: input_size", input_size, min=1)
        self.hidden_size = checks.integer(f"{name}: hidden_size", hidden_size, min=1)
        self.reset_parameters(rng, dtype)

    def reset_parameters(self, rng=None, dtype=DEFAULT_DTYPE) -> None:
        """PyTorch's default: every weight and bias ~ U(-1/sqrt(H), 1/sqrt(H))."""
        rng, dtype = as_generator(rng), check_dtype(dtype)
        H = self.hidden_size
        kh, bound = self.num_gates * H, 1 / math.sqrt(H)
        self.params = {
            "weight_ih": uniform(rng, bound, (kh, self.input_size), dtype),
            "weight_hh": uniform(rng, bound, (kh, H), dtype),
            "bias_ih": uniform(rng, bound, (kh,), dtype),
            "bias_hh": uniform(rng, bound, (kh,), dtype),
        }

    # -- state ---------------------------------------------------------------------------
    def initial_state(self, batch: int, dtype=None):
        """The zero state for ``batch`` sequences: ``h (N, H)`` or ``(h, c)`` for the LSTM."""
        dtype = dtype or self.params["weight_hh"].dtype
        zeros = [np.zeros((batch, self.hidden_size), dtype=dtype) for _ in range(self.state_parts)]
        return tuple(zeros) if self.state_parts > 1 else zeros[0]

    @staticmethod
    def final_state(cache: RecurrentCache):
        """The state after the last step of the forward pass that made ``cache``."""
        return cache.final_state

    def _parts(self, state, n: int, dtype) -> tuple[list[np.ndarray], bool]:
        """``state`` as a list of ``state_parts`` arrays of shape (n, H), checked."""
        H = self.hidden_size
        if state is None:
            return [np.zeros((n, H), dtype=dtype) for _ in range(self.state_parts)], False
        parts = list(state) if self.state_parts > 1 else [state]
        want = "(h, c), each" if self.state_parts > 1 else "h of shape"
        if len(parts) != self.state_parts or any(np.shape(p) != (n, H) for p in parts):
            shapes = [np.shape(p) for p in parts] if self.state_parts > 1 else np.shape(state)
            raise ValueError(f"{self!r}: expected initial state {want} ({n}, {H}), got {shapes}")
        for p in parts:
            check_real(np.asarray(p), f"{self!r}: the state")
        return [np.asarray(p, dtype=dtype) for p in parts], True

    def _pack(self, parts):
        return tuple(parts) if self.state_parts > 1 else parts[0]

    # -- the protocol --------------------------------------------------------------------
    def forward(self, x: np.ndarray, state=None):
        """Run the recurrence over ``x``.

        Parameters
        ----------
        x : ndarray of shape (N, T, I) (cast to the parameters' dtype)
        state : None, ``h (N, H)``, or ``(h, c)`` for the LSTM: the state before step 0

        Returns ``(out, cache)``: ``out (N, T, H)`` holds every step's hidden state (a view of
        a feature-major buffer), ``cache.final_state`` the state after the last step.
        """
        self._check_input(x)
        if x.ndim != 3 or x.shape[2] != self.input_size or x.shape[1] < 1:
            raise self._shape_error(x, f"(N, T, {self.input_size}) with T >= 1")
        N, T, I = x.shape
        H = self.hidden_size
        dtype = self.params["weight_hh"].dtype
        parts, has_state = self._parts(state, N, dtype)
        # u[t] = [h_{t-1}; x_t; 1], (H+I+1, N); forward fills in the h rows of u[1:].
        u = np.empty((T + 1, H + I + 1, N), dtype=dtype)
        u[0, :H] = parts[0].T
        u[:T, H:H + I] = x.transpose(1, 2, 0)
        u[T, H:H + I] = 0
        u[:, H + I] = 1
        final, saved = self._forward(u, *(p.T for p in parts[1:]))
        final = [u[T, :H].T, *(f.T for f in final)]
        out = u[1:, :H].transpose(2, 0, 1)
        return out, RecurrentCache(self._pack(final), u, saved, has_state)

    def backward(self, dout: np.ndarray, cache: RecurrentCache, need_dx: bool = True):
        """Backpropagation through time: ``dout (N, T, H) -> (dx (N, T, I), grads)``.

        ``dx`` is ``None`` when ``need_dx`` is False. Gradients do not flow into the initial
        state here; use :meth:`backward_with_state` for that.
        """
        dx, grads, _ = self._run_backward(dout, cache, None, need_dx, cache.has_state)
        return dx, grads

    def backward_with_state(self, dout: np.ndarray, cache: RecurrentCache, dstate=None,
                            need_dx: bool = True):
        """Like :meth:`backward`, with the state gradients too.

        ``dstate`` is the gradient of the loss with respect to ``cache.final_state`` (same
        structure; ``None`` for zeros). Returns ``(dx, grads, dstate0)`` where ``dstate0`` is
        the gradient with respect to the initial state (same structure as the state).
        """
        return self._run_backward(dout, cache, dstate, need_dx, True)

    def _run_backward(self, dout, cache, dstate, need_dx, need_dstate0):
        u = cache.u
        T, N = u.shape[0] - 1, u.shape[2]
        H = self.hidden_size
        if np.shape(dout) != (N, T, H):
            raise ValueError(f"{self!r}.backward: expected dout of shape {(N, T, H)}, "
                             f"got {np.shape(dout)}")
        dtype = self.params["weight_hh"].dtype
        dparts, _ = self._parts(dstate, N, dtype)
        dout_f = np.ascontiguousarray(dout.transpose(1, 2, 0), dtype=dtype)   # (T, H, N)
        dz, d0 = self._backward(dout_f, u, cache.saved, [d.T.copy() for d in dparts],
                                need_dstate0)
        # All steps' weight gradients at once: dW = sum_t dz_t u_t^T, columns [h | x | 1].
        dz2 = step_major(dz)                              # (rows, T*N)
        dw = sum_product(dz2, step_major(u[:T]).T)
        grads = self._split_grads(dw)
        dx = None
        if need_dx:
            dx = (dz2.T @ self._input_weights()).reshape(T, N, -1).transpose(1, 0, 2)
        return dx, grads, (self._pack([d.T for d in d0]) if need_dstate0 else None)

    # -- to implement --------------------------------------------------------------------
    def _forward(self, u, *more_parts):  # pragma: no cover - interface
        """Fill in ``u[1:, :H]``; ``more_parts``: the LSTM's ``c0 (H, N)``. Returns
        ``(final state parts after h, as (H, N), saved arrays)``."""
        raise NotImplementedError

    def _backward(self, dout_f, u, saved, dparts, need_dstate0):  # pragma: no cover
        """``dout_f (T, H, N)``, ``dparts`` (H, N) -> ``(dz (T, rows, N), dstate0 parts)``:
        ``dz`` the gradient of the rows of ``W @ u_t`` for every step."""
        raise NotImplementedError

    def _split_grads(self, dw):  # pragma: no cover - interface
        """``dW (rows, H+I+1)`` -> the gradient dict in PyTorch's layout."""
        raise NotImplementedError

    def _input_weights(self):  # pragma: no cover - interface
        """The ``(rows, I)`` matrix mapping ``dz`` rows to ``dx``."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.input_size}, {self.hidden_size})"


def forward_with_state(model, x: np.ndarray, states=None):
    """Run a ``Sequential`` starting its recurrent layers from ``states``.

    ``Sequential.forward(x)`` starts every recurrent layer from zeros; this is the same pass,
    but each :class:`Recurrent` layer ``i`` starts from ``states[i]``. Returns
    ``(out, cache, states)``: ``cache`` goes to ``model.backward`` as usual and ``states`` is
    a list aligned with ``model.layers`` (``None`` for layers without state) to pass to the
    next call. ``states=None`` starts from zeros.
    """
    if states is not None and len(states) != len(model.layers):
        raise ValueError(f"forward_with_state: states must have one entry per layer "
                         f"({len(model.layers)}), got {len(states)}")
    caches, new_states = [], []
    for i, layer in enumerate(model.layers):
        if isinstance(layer, Recurrent):
            x, cache = layer.forward(x, None if states is None else states[i])
            new_states.append(cache.final_state)
        else:
            x, cache = layer.forward(x)
            new_states.append(None)
        caches.append(cache)
    return x, caches, new_states
