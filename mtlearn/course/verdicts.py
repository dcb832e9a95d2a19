"""Sentences about this machine, printed from the measured values — never typed.

A notebook's markdown explains mechanisms and gives ranges with their conditions ("on 2
idle cores, 1.6-1.95x"). Whether *this* run met them is a :func:`verdict`, computed from
the measurement, the expected range and the calibration::

    >>> v = verdict("sync2", 1.87, expected=(1.6, 1.95), label="sync on 2 threads",
    ...             why="on 2 idle cores: numpy and BLAS release the GIL")
    >>> print(v)
    sync on 2 threads: 1.87x (expected 1.60–1.95x on 2 idle cores: ...) — as expected [verdict ...]

A result outside the range is *lower* or *higher than expected*, and the verdict says
whether the calibration explains it: a busy machine explains a result on the slow side
(``better="higher"``: a low speedup; ``better="lower"``: a long time, a large bubble),
never one on the fast side. When a result comes out slow and the last calibration said the
machine was quiet (or there was none), the machine is measured again on the spot
(:func:`~mtlearn.course.calibrate`, 0.3 s): it may have become busy in the meantime.

``measured`` may be the list of repeats: the verdict uses their **median** and shows the
spread beside it, never the best of N (the best run is the one least disturbed, which
says nothing about the typical run).

Every verdict ends in a marker, ``[verdict name=... measured=... lo=... hi=...
calibration=... busy=... outcome=...]``, that ``mtlearn.course.outputs`` finds in stored
notebooks to check that no stored verdict contradicts its own conditions.
"""

from __future__ import annotations

import numbers
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from ..runtime import checks
from . import calibration as _cal
from . import markers

#: outcome -> words of the sentence
OUTCOMES = {"ok": "as expected", "low": "lower than expected", "high": "higher than expected"}
#: units written straight after the number (1.87x, 24%); any other unit gets a space
ATTACHED = ("x", "%", "")
#: decimals shown per unit when ``digits`` is not given
DIGITS = {"x": 2, "%": 0, "pp": 1, "points": 1, "ms": 1, "s": 2}


def fmt(value: float, unit: str = "x", digits: int | None = None) -> str:
    """``value`` with its unit: ``1.87x``, ``24%``, ``12.3 ms``, ``+3.2 pp`` (a difference
    in points is signed)."""
    d = DIGITS.get(unit, 2) if digits is None else digits
    sign = "+" if unit in ("pp", "points") else ""
    number = f"{value:{sign}.{d}f}"
    return f"{number}{unit}" if unit in ATTACHED else f"{number} {unit}"


def spread(values: Sequence[float], unit: str = "x", digits: int | None = None) -> str:
    """``1.87x (median of 5, 1.80–1.92x)``: the median with the range of the repeats."""
    vals = [checks.number("values (each)", v) for v in values]
    if not vals:
        raise ValueError("values must not be empty")
    med = fmt(statistics.median(vals), unit, digits)
    if len(vals) == 1:
        return f"{med} (one run)"
    lo, hi = fmt(min(vals), unit, digits), fmt(max(vals), unit, digits)
    return f"{med} (median of {len(vals)}, {_range(lo, hi, unit)})"


def _range(lo: str, hi: str, unit: str) -> str:
    """``1.60–1.95x``: the unit once, after the second number (``-5.0 to +5.0 pp`` when a
    sign would make the dash ambiguous)."""
    if unit in ATTACHED and unit:
        lo = lo.removesuffix(unit)
    elif unit:
        lo = lo.removesuffix(" " + unit)
    dash = " to " if lo.startswith(("-", "+")) else "–"
    return f"{lo}{dash}{hi}"


def outcome(measured: float, lo: float, hi: float) -> str:
    """``"low"``, ``"ok"`` or ``"high"``: where ``measured`` falls against ``[lo, hi]``."""
    return "low" if measured < lo else "high" if measured > hi else "ok"


@dataclass
class Verdict:
    """A measured value read against its expected range and the machine's calibration.

    ``outcome`` is ``"ok"``, ``"low"`` or ``"high"``; ``explained`` is True when it is
    outside the range on the slow side while the machine was busy. ``str()`` is the
    sentence and its marker; :meth:`to_dict` a plain dict.
    """

    name: str
    label: str
    measured: float
    lo: float
    hi: float
    unit: str
    why: str
    better: str
    calibration: _cal.Calibration | None
    recalibrated: bool = False
    repeats: tuple[float, ...] = ()
    digits: int | None = None

    @property
    def outcome(self) -> str:
        return outcome(self.measured, self.lo, self.hi)

    @property
    def slow_side(self) -> str:
        """The outcome a busy machine pushes a result to (``"either"``: both sides, for
        ratios of timings taken at different moments, or threads that gain from slack)."""
        return {"higher": "low", "lower": "high"}.get(self.better, "either")

    def _busy_side(self) -> bool:
        return self.outcome != "ok" and self.slow_side in (self.outcome, "either")

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"

    @property
    def explained(self) -> bool:
        """Outside the range on the slow side, on a machine the calibration found busy."""
        return (self._busy_side() and self.calibration is not None
                and self.calibration.busy)

    # -- text -----------------------------------------------------------------------------
    def _value(self) -> str:
        if len(self.repeats) > 1:
            return spread(self.repeats, self.unit, self.digits)
        return fmt(self.measured, self.unit, self.digits)

    def _cal_text(self) -> str:
        cal = self.calibration
        if cal is None:
            return "no calibration"
        return f"calibration{' now' if self.recalibrated else ''}: {cal.short()}"

    def reason(self) -> str:
        """What follows the dash: the outcome, and what the calibration says about it."""
        words = OUTCOMES[self.outcome]
        cal = self.calibration
        if self.outcome == "ok":
            return words
        if self._busy_side():
            if cal is None:
                return (f"{words} (no calibration: run course.calibrate() to see whether the "
                        "machine is busy)")
            if cal.busy:
                return f"{words}: the machine was busy ({self._cal_text()})"
            return (f"{words} on a quiet machine ({self._cal_text()}): rerun this cell; if it "
                    "stays outside the range, the conditions above do not hold here")
        return (f"{words} ({self._cal_text()}): this machine does better than the conditions "
                "above assume")

    def sentence(self) -> str:
        """The sentence without its marker."""
        rng = _range(fmt(self.lo, self.unit, self.digits), fmt(self.hi, self.unit, self.digits),
                     self.unit)
        why = f" {self.why}" if self.why else ""
        return f"{self.label}: {self._value()} (expected {rng}{why}) — {self.reason()}"

    def marker(self) -> str:
        cal = self.calibration
        return markers.write(
            "verdict", name=self.name, measured=float(self.measured), lo=float(self.lo),
            hi=float(self.hi), unit=self.unit or "none", better=self.better,
            outcome=self.outcome, calibration=None if cal is None else round(cal.free, 3),
            capacity=None if cal is None else cal.capacity,
            busy=None if cal is None else cal.busy)

    def __str__(self) -> str:
        return f"{self.sentence()} {self.marker()}"

    __repr__ = __str__

    def _repr_html_(self) -> str:
        color = ("#55A868" if self.ok else "#C44E52" if self.outcome == self.slow_side
                 and not self.explained else "#DD8452")
        text = _cal._escape(self.sentence())
        return (f"<div><span style='color:{color}'>&#9632;</span> {text} "
                f"<span style='color:#999;font-size:smaller'>{self.marker()}</span></div>")

    def to_dict(self) -> dict:
        return {"name": self.name, "label": self.label, "measured": self.measured,
                "lo": self.lo, "hi": self.hi, "unit": self.unit, "why": self.why,
                "better": self.better, "outcome": self.outcome, "explained": self.explained,
                "repeats": list(self.repeats), "recalibrated": self.recalibrated,
                "calibration": None if self.calibration is None else self.calibration.to_dict(),
                "text": self.sentence()}


def verdict(name: str, measured, expected, why: str = "", unit: str = "x", *,
            label: str | None = None, better: str = "higher",
            calibration: _cal.Calibration | dict | None = None, recheck: bool = True,
            digits: int | None = None) -> Verdict:
    """Read ``measured`` against ``expected = (lo, hi)`` and the machine's calibration.

    Parameters
    ----------
    name : a short id for the stored-output checks (letters, digits, ``_ . : + -``).
    measured : a number, or the list of repeats (their median is used, the spread shown).
    expected : ``(lo, hi)``, the range the notebook's text states, ``lo <= hi``.
    why : the conditions of the range, e.g. ``"on 2 idle cores: BLAS releases the GIL"``.
    unit : ``"x"`` (default), ``"%"``, ``"pp"``, ``"ms"``... as shown after the numbers.
    label : the start of the sentence (default: ``name``).
    better : ``"higher"`` (a speedup) or ``"lower"`` (a time, a bubble): the side a busy
        machine cannot explain; ``"either"`` when load can move the result both ways (a
        ratio of two timings taken at different moments; threads that hold the GIL, which
        can gain from a loaded machine's slack)
    calibration : the calibration to read it against (default: the latest in this
        process, :func:`mtlearn.course.calibration.last`).
    recheck : measure the machine again when the result is on the slow side and the
        calibration does not say busy (default True; 0.3 s).
    """
    name = markers.token("name", name)
    if not isinstance(measured, numbers.Real | str) and hasattr(measured, "__iter__"):
        repeats = tuple(checks.number("measured (each)", v) for v in measured)
        if not repeats:
            raise ValueError("measured must be a number or a non-empty list of repeats")
        value = statistics.median(repeats)
    else:
        value = checks.number("measured", measured)
        repeats = ()
    if isinstance(expected, str) or not isinstance(expected, Sequence) or len(expected) != 2:
        raise TypeError(f"expected must be a pair (lo, hi), got {expected!r}")
    lo = checks.number("expected[0]", expected[0])
    hi = checks.number("expected[1]", expected[1])
    if lo > hi:
        raise ValueError(f"expected must be (lo, hi) with lo <= hi, got ({lo}, {hi})")
    if not isinstance(why, str):
        raise TypeError(f"why must be a str, got {why!r}")
    unit = "" if unit in (None, "none") else markers.token("unit", unit) if unit else ""
    better = checks.choice("better", better, ("higher", "lower", "either"))
    label = name if label is None else str(label)
    if digits is not None:
        digits = checks.integer("digits", digits, min=0, max=6)
    if isinstance(calibration, dict):
        calibration = _cal.Calibration.from_dict(calibration)
    elif calibration is not None and not isinstance(calibration, _cal.Calibration):
        raise TypeError(f"calibration must be a Calibration, its dict or None, got "
                        f"{calibration!r}")
    given = calibration is not None
    cal = calibration if given else _cal.last()
    v = Verdict(name=name, label=label, measured=value, lo=lo, hi=hi, unit=unit, why=why,
                better=better, calibration=cal, repeats=repeats, digits=digits)
    if (recheck and not given and v._busy_side()
            and (cal is None or not cal.busy)):
        v.calibration = _cal.calibrate()
        v.recalibrated = True
    return v
