"""The layer protocol every mtlearn layer follows, and a base class that implements it.

A layer keeps no per-call state: ``forward`` returns ``(out, cache)`` and ``backward`` takes
the cache back. Two threads can therefore run the same layer on different data at once —
the property every training strategy in :mod:`mtlearn.parallel` relies on.

The protocol::

    layer.params                                   # dict: name -> array
    layer.forward(x)                     -> (out, cache)
    layer.backward(dout, cache, need_dx=True) -> (dx, grads)   # grads: same keys as params

``need_dx=False`` says that nobody needs the gradient with respect to the layer's input —
the first layer of a model, whose input is the data — so the layer may skip computing it
(for a convolution that saves a GEMM and a col2im) and returns ``dx = None``. Every
:class:`Layer` accepts ``need_dx``. A layer of your own does not have to subclass
:class:`Layer`: any object with ``params``, ``forward(x)`` and ``backward(dout, cache)``
works in a :class:`~mtlearn.nn.Sequential`; :func:`backward_of` is how mtlearn calls either
kind, so a ``backward`` without ``need_dx`` is simply never given it.
"""

from __future__ import annotations

import numpy as np

from ..runtime import checks

DEFAULT_DTYPE = np.float32


def as_generator(rng=None) -> np.random.Generator:
    """Return ``rng`` as a ``numpy.random.Generator`` (``None`` or an int seed >= 0 make a
    new one)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, bool) or not isinstance(rng, (int, np.integer)):
        raise TypeError(f"rng must be None, an int seed >= 0 or a numpy.random.Generator, "
                        f"got {rng!r} ({type(rng).__name__})")
    return np.random.default_rng(checks.seed("rng", rng))


def check_dtype(dtype) -> np.dtype:
    """Return ``dtype`` as a floating numpy dtype: TypeError if it is not a dtype at all,
    ValueError if it is not a floating one."""
    want = "a floating numpy dtype such as np.float32 or np.float64"
    if dtype is None:        # np.dtype(None) would silently mean float64
        raise TypeError(f"dtype must be {want}, got None")
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be {want}, got {dtype!r}") from None
    if dt.kind != "f":
        raise ValueError(f"dtype must be {want}, got {dt}")
    return dt


def check_real(x, what: str) -> np.ndarray:
    """``x`` if it is a numpy array of real numbers (ints or floats), else TypeError.

    Complex arrays are refused rather than cast, because a cast into the float parameters'
    dtype would silently drop the imaginary part. ``what`` names the argument in the message.
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{what} must be a numpy array, got {type(x).__name__} "
                        f"(np.asarray(x) makes one)")
    if x.dtype.kind not in "iuf":
        hint = (": complex values are not supported (pass x.real if the imaginary part is "
                "meant to be dropped)" if x.dtype.kind == "c" else "")
        raise TypeError(f"{what} must hold real numbers (ints or floats), got dtype "
                        f"{x.dtype}{hint}")
    return x


def uniform(rng: np.random.Generator, bound: float, shape, dtype) -> np.ndarray:
    """Draw ``U(-bound, bound)`` of ``shape`` in ``dtype`` (PyTorch's default initialiser)."""
    return rng.uniform(-bound, bound, size=shape).astype(dtype, copy=False)


def sum_product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for a product that sums over a long inner dimension into a small result:
    ``a (m, k)`` or ``(k,)``, ``b (k, n)`` -> ``(m, n)`` or ``(n,)``, with the GIL released.

    Weight and bias gradients are such products (a sum over every sample and position).
    ``@`` is a numpy gufunc, which releases the GIL only when its *output* has more than 500
    elements, however long ``k`` is: the course CNN's first weight gradient, ``(9, 8)``
    from ``k`` = 100,352 at batch 128, held the GIL for its whole 0.4 ms, and a second
    training thread stood waiting. ``np.dot`` calls the same BLAS routine with the GIL
    released (checked for the operands mtlearn passes: 2-D by 2-D in any memory order, and
    1-D by a C-ordered 2-D ``b``; ``tests/test_nn_gil.py``, ``benchmarks/gil_held.py``).
    """
    return np.dot(a, b)


class Layer:
    """Base class: ``params`` dict, ``forward -> (out, cache)``,
    ``backward(dout, cache, need_dx=True) -> (dx, grads)``.

    Subclasses with parameters implement ``reset_parameters(rng, dtype)``, which (re)creates
    every array in ``self.params``. Every subclass's ``backward`` accepts ``need_dx`` (see
    the module docstring) and returns ``dx = None`` when it is False. Calling the layer
    returns only the output.
    """

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray):  # pragma: no cover - interface
        raise NotImplementedError

    def backward(self, dout: np.ndarray, cache, need_dx: bool = True):  # pragma: no cover
        raise NotImplementedError

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)[0]

    @property
    def num_params(self) -> int:
        """Number of scalar parameters."""
        return sum(int(p.size) for p in self.params.values())

    def named_params(self) -> dict[str, np.ndarray]:
        """Every parameter array by name (like ``torch.nn.Module.named_parameters``); the
        arrays are the layer's own, so writing into them changes the layer."""
        return dict(self.params)

    def named_grads(self, grads) -> dict[str, np.ndarray]:
        """``backward``'s ``grads`` under the names and shapes of :meth:`named_params`."""
        return dict(grads)

    def _check_input(self, x) -> None:
        # The test is two attribute reads; the message (with the layer's repr) is built only
        # for a bad input: this runs on every forward, while the GIL is held.
        if not isinstance(x, np.ndarray) or x.dtype.kind not in "iuf":
            check_real(x, f"{self!r}: the input")

    def _shape_error(self, x: np.ndarray, expected: str) -> ValueError:
        return ValueError(f"{self!r}: expected input of shape {expected}, got {tuple(x.shape)}")


def backward_of(layer, dout: np.ndarray, cache, need_dx: bool = True):
    """``layer.backward(dout, cache)`` for any layer: an :class:`Layer` or a duck-typed one.

    With ``need_dx=False`` a :class:`Layer` is told so and skips its input gradient; a
    duck-typed layer (``backward(dout, cache)`` only) computes it and it is dropped. Either
    way ``dx`` is ``None`` when ``need_dx`` is False. Returns ``(dx, grads)``.
    """
    if need_dx:
        return layer.backward(dout, cache)
    if isinstance(layer, Layer):
        return None, layer.backward(dout, cache, need_dx=False)[1]
    return None, layer.backward(dout, cache)[1]
