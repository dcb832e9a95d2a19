"""The one argument checker: every public function checks its arguments through these.

Each check returns the value in its canonical type or raises ``TypeError`` (wrong kind of
value) / ``ValueError`` (right kind, out of range) with a message that names the argument,
says what it accepts and shows what it got::

    >>> integer("threads", 2.5, min=1)
    Traceback (most recent call last):
    TypeError: threads must be an int >= 1, got 2.5 (float)

Checks run before any thread, process or MPI job starts, so a bad argument costs nothing.
numpy scalars are accepted where a Python number is (``np.int64(4)`` is an int here), but
``True``/``False`` never count as numbers, floats never as ints, strings never as either.
This module imports only the standard library (see DESIGN.md's layer order).
"""

from __future__ import annotations

import math
import numbers
import operator
import os
from collections.abc import Callable, Iterable

#: the most threads (or processes, or ranks) any function here will start; far above what a
#: course machine can use, low enough that a typo (10**5) is refused before it costs anything
MAX_WORKERS = 1024


def _got(value) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def _range_text(lo, hi, lo_open=False) -> str:
    if lo is not None and hi is not None:
        return f"from {lo} to {hi}" if not lo_open else f"> {lo} and <= {hi}"
    if lo is not None:
        return f"> {lo}" if lo_open else f">= {lo}"
    if hi is not None:
        return f"<= {hi}"
    return ""


def integer(name: str, value, *, min: int | None = None, max: int | None = None) -> int:
    """``value`` as a Python int within ``[min, max]`` (either bound may be None).

    Rejects bools, floats (``2.5``, and also ``2.0``: a count is never a float) and strings.
    """
    want = f"an int {_range_text(min, max)}".rstrip()
    if isinstance(value, bool):
        raise TypeError(f"{name} must be {want}, got {_got(value)}")
    try:
        out = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be {want}, got {_got(value)}") from None
    if (min is not None and out < min) or (max is not None and out > max):
        raise ValueError(f"{name} must be {want}, got {out}")
    return out


def workers(name: str, value) -> int:
    """A thread/process/rank count: an int from 1 to :data:`MAX_WORKERS`."""
    n = integer(name, value, min=1)
    if n > MAX_WORKERS:
        raise ValueError(f"{name} must be an int from 1 to {MAX_WORKERS} (this machine has "
                         f"{os.cpu_count()} logical CPUs), got {n}")
    return n


def number(name: str, value, *, min: float | None = None, max: float | None = None,
           min_open: bool = False) -> float:
    """``value`` as a finite Python float within the bounds (``min_open``: ``> min``).

    Rejects bools, strings, complex numbers, NaN and infinities.
    """
    want = f"a finite number {_range_text(min, max, min_open)}".rstrip()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be {want}, got {_got(value)}")
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"{name} must be {want}, got {out}")
    if min is not None and (out <= min if min_open else out < min):
        raise ValueError(f"{name} must be {want}, got {out}")
    if max is not None and out > max:
        raise ValueError(f"{name} must be {want}, got {out}")
    return out


def boolean(name: str, value) -> bool:
    """``value`` if it is ``True`` or ``False`` (numpy bools too), else TypeError."""
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return bool(value)
    raise TypeError(f"{name} must be True or False, got {_got(value)}")


def choice(name: str, value, options: Iterable):
    """``value`` if it is one of ``options``, else ValueError listing them."""
    options = list(options)
    try:
        ok = value in options
    except TypeError:          # unhashable value against a dict / set
        ok = False
    if not ok:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, options))}, "
                         f"got {_got(value)}")
    return value


def function(name: str, value, what: str = "a callable", *, optional: bool = False):
    """``value`` if it is callable (or None when ``optional``), else TypeError saying ``what``."""
    if value is None and optional:
        return None
    if not callable(value):
        raise TypeError(f"{name} must be {what}{' or None' if optional else ''}, "
                        f"got {_got(value)}")
    return value


def int_pair(name: str, value, *, min: int = 1) -> tuple[int, int]:
    """An int or a pair of ints (height, width), each ``>= min``, as a tuple of two."""
    if isinstance(value, tuple | list):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair of ints (height, width), "
                             f"got {_got(value)}")
        return (integer(f"{name}[0]", value[0], min=min), integer(f"{name}[1]", value[1], min=min))
    v = integer(name, value, min=min)
    return (v, v)


def counts(name: str, values, *, min: int = 1, max: int = MAX_WORKERS) -> list[int]:
    """A non-empty list of ints within ``[min, max]`` (e.g. thread counts ``[1, 2, 4]``),
    sorted and without repeats."""
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise TypeError(f"{name} must be a list of ints such as [1, 2, 4], got {_got(values)}")
    out = sorted({integer(f"{name} (each)", v, min=min, max=max) for v in values})
    if not out:
        raise ValueError(f"{name} must not be empty; try [1, 2, 4]")
    return out


def seed(name: str, value) -> int:
    """A seed for ``numpy.random.default_rng``: an int >= 0."""
    return integer(name, value, min=0)


def for_argparse(check: Callable, **bounds) -> Callable[[str], object]:
    """An argparse ``type=`` that parses the text as a number and runs ``check`` on it, so the
    command line says exactly what the Python API says (argparse adds the option's name)."""
    import argparse

    def parse(text: str):
        try:
            value = int(text) if check in (integer, workers, seed) else float(text)
        except ValueError:
            kind = "an int" if check in (integer, workers, seed) else "a number"
            raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None
        try:
            return check("value", value, **bounds)
        except (TypeError, ValueError) as exc:
            raise argparse.ArgumentTypeError(str(exc).removeprefix("value ")) from None

    parse.__name__ = check.__name__
    return parse


def fraction(name: str, value) -> float:
    """A finite number in ``[0, 1)``, as a float: a momentum, an Adam beta, a decay rate."""
    want = "a finite number >= 0 and < 1"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be {want}, got {_got(value)}")
    out = float(value)
    if not 0 <= out < 1:                 # NaN fails this too
        raise ValueError(f"{name} must be {want}, got {out}")
    return out
