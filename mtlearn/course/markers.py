"""The machine-readable tail of a printed line: ``[verdict name=sync2 measured=1.87 ...]``.

Calibrations and verdicts print one sentence for the learner followed by a marker that a
program can find again in a notebook's stored outputs (``mtlearn.course.outputs``). A
marker is a kind and ``key=value`` pairs inside square brackets; values never contain a
space or a bracket. Numbers are written with four significant digits, so what a test reads
back is what the sentence showed.
"""

from __future__ import annotations

import math
import re

_TOKEN = re.compile(r"^[A-Za-z0-9_.:+%-]+$")
_MARKER = re.compile(r"\[(verdict|calibration)((?: [A-Za-z_]+=[^\s\[\]]+)+)\]")


def token(name: str, value: str) -> str:
    """``value`` if it can be a marker value (letters, digits and ``_ . : + - %``), else
    ValueError naming ``name``."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {value!r} ({type(value).__name__})")
    if not _TOKEN.match(value):
        raise ValueError(f"{name} must be letters, digits and _ . : + - % only (no spaces), "
                         f"got {value!r}")
    return value


def _value(v) -> str:
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        return f"{v:.4g}"
    return token("marker value", str(v))


def write(kind: str, **fields) -> str:
    """``[kind key=value ...]`` in the order given; None is written ``none``, bools 1/0."""
    return "[" + " ".join([kind, *(f"{k}={_value(v)}" for k, v in fields.items())]) + "]"


def _parse_value(text: str):
    if text == "none":
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def find(text: str) -> list[tuple[str, dict]]:
    """Every marker in ``text``, as ``(kind, {key: value})`` with numbers parsed (ints stay
    ints; ``none`` is None; anything else a str), in the order they appear."""
    found = []
    for m in _MARKER.finditer(text):
        fields = dict(pair.split("=", 1) for pair in m.group(2).split())
        found.append((m.group(1), {k: _parse_value(v) for k, v in fields.items()}))
    return found
