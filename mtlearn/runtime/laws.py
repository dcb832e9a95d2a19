"""The laws a speedup curve is read against, and their fits to measured speedups.

Each formula is written here once; everything else in mtlearn (scaling results, the
experiments, figures through the fits' ``predict``) calls these.

Amdahl (fixed work):   S(N) = 1 / (s + (1 - s) / N)
    a share ``s`` of the work runs one thread at a time; at most ``1/s`` however many
    threads, and the curve never goes down.
Gustafson (scaled):    S(N) = N - s (N - 1)
    the work grows with N and the serial part stays the share ``s`` of each run.
Universal Scalability Law (Gunther):   S(N) = N / (1 + σ (N - 1) + κ N (N - 1))
    σ (contention) is Amdahl's ``s`` again — with κ = 0 the two laws are the same curve;
    κ (coherency) is a cost paid by every *pair* of workers (handing a lock or the GIL
    around, keeping caches in step). Any κ > 0 makes the curve peak at
    N* = sqrt((1 - σ) / κ) and fall beyond it, which Amdahl's law cannot do.

The fits are least squares on the measured speedups. Every function here is pure Python
(no numpy): the bottom layer, so that ``bench``, ``viz`` and ``course`` share them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from . import checks

# ---------------------------------------------------------------------------- the laws


def amdahl(n, s: float):
    """Amdahl's speedup on ``n`` threads (a number or a list) with serial fraction ``s``."""
    if isinstance(n, int | float):
        return 1.0 / (s + (1.0 - s) / n)
    return [amdahl(k, s) for k in n]


def gustafson(n, s: float):
    """Gustafson's scaled speedup ``n - s (n - 1)`` (a number or a list)."""
    if isinstance(n, int | float):
        return n - s * (n - 1)
    return [gustafson(k, s) for k in n]


def usl(n, sigma: float, kappa: float):
    """The Universal Scalability Law's speedup ``n / (1 + σ(n - 1) + κ n (n - 1))`` on ``n``
    workers (a number or a list)."""
    if isinstance(n, int | float):
        return n / (1.0 + sigma * (n - 1) + kappa * n * (n - 1))
    return [usl(k, sigma, kappa) for k in n]


# ---------------------------------------------------------------------------- measured points


def _points(threads, speedup, law: str) -> list[tuple[float, float]]:
    """``(n, S)`` pairs, checked: counts >= 1, speedups finite and > 0, one count above 1."""
    threads, speedup = list(threads), list(speedup)
    if len(threads) != len(speedup):
        raise ValueError(f"threads and speedup must have the same length, got {len(threads)} "
                         f"and {len(speedup)}")
    pts = [(float(checks.integer("threads (each)", n, min=1)),
            checks.number("speedup (each)", S, min=0, min_open=True))
           for n, S in zip(threads, speedup, strict=True)]
    if not any(n > 1 for n, _ in pts):
        raise ValueError(f"fitting {law} needs a speedup measured on more than 1 thread")
    return pts


def _rms(predicted: list[float], measured: list[float]) -> float:
    return (sum((p - m) ** 2 for p, m in zip(predicted, measured, strict=True))
            / len(measured)) ** 0.5


# ---------------------------------------------------------------------------- Amdahl


#: the smallest serial fraction a fit is read as (below it, no serial part was detected)
DETECTABLE = 0.02


def limit_text(s: float) -> str:
    """Amdahl's ceiling ``1/s`` in words, for a fitted serial fraction ``s``."""
    if s < DETECTABLE:
        return f"no serial part detected (s < {DETECTABLE:g})"
    return f"at most {1 / s:.1f}x"


def fit_serial_fraction(threads, speedup) -> float:
    """Least-squares ``s`` of Amdahl's law through measured ``(threads, speedup)`` pairs.

    Amdahl's law is linear in ``s`` once written as ``1/S - 1/N = s (1 - 1/N)``, so the fit
    is one division: ``s = sum(x y) / sum(x x)`` with ``x = 1 - 1/N`` and ``y = 1/S - 1/N``.
    The result is clipped to [0, 1]; 1-thread points carry no information (x = 0).
    """
    pts = _points(threads, speedup, "Amdahl's law")
    xs = [1.0 - 1.0 / n for n, _ in pts]
    ys = [1.0 / S - 1.0 / n for n, S in pts]
    s = sum(x * y for x, y in zip(xs, ys, strict=True)) / sum(x * x for x in xs)
    return min(max(s, 0.0), 1.0)


@dataclass
class AmdahlFit:
    """Amdahl's law fitted to measured speedups.

    ``serial_fraction`` is ``s``; ``predicted`` and ``gustafson`` are the two laws at the
    measured ``threads``; :meth:`predict` and :meth:`curve` evaluate them at any counts.
    """

    serial_fraction: float
    threads: list[int]
    measured: list[float]
    predicted: list[float]
    gustafson: list[float]
    rms_error: float                   # of predicted vs measured speedup

    @property
    def max_speedup(self) -> float:
        """1/s: the most any number of threads can give (inf when s = 0)."""
        s = self.serial_fraction
        return 1.0 / s if s > 0 else float("inf")

    @property
    def limit(self) -> str:
        """Amdahl's ceiling in words: ``"at most 5.3x"``, or, when the fitted s is below
        :data:`DETECTABLE` (a fit over few thread counts cannot tell 0.5 % from 0), that no
        serial part was detected — never "at most 269.8x" from two points."""
        return limit_text(self.serial_fraction)

    @property
    def label(self) -> str:
        """A legend entry, e.g. ``Amdahl, s = 0.12``."""
        return f"Amdahl, s = {self.serial_fraction:.2f}"

    def predict(self, threads) -> list[float]:
        """Amdahl's speedup with the fitted ``s`` at each of ``threads``."""
        return amdahl([float(n) for n in threads], self.serial_fraction)

    def curve(self, threads) -> dict[str, list[float]]:
        """``{"threads", "amdahl", "gustafson", "ideal"}`` at ``threads`` (for a smooth line)."""
        threads = list(threads)
        s = self.serial_fraction
        return {"threads": threads, "amdahl": amdahl(threads, s),
                "gustafson": gustafson(threads, s), "ideal": [float(n) for n in threads]}

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> AmdahlFit:
        return cls(**d)


def fit_amdahl(threads, speedup) -> AmdahlFit:
    """:class:`AmdahlFit` of measured speedups (see :func:`fit_serial_fraction`)."""
    threads, speedup = list(threads), [float(x) for x in speedup]
    s = fit_serial_fraction(threads, speedup)
    pred = amdahl(threads, s)
    return AmdahlFit(serial_fraction=s, threads=threads, measured=speedup, predicted=pred,
                     gustafson=gustafson(threads, s), rms_error=_rms(pred, speedup))


# ---------------------------------------------------------------------------- USL


@dataclass
class USLFit:
    """The Universal Scalability Law fitted to measured speedups.

    ``sigma`` (contention, σ, a share: 0 to 1) and ``kappa`` (coherency, κ >= 0); ``predicted`` is
    the law at the measured ``threads`` and ``rms_error`` its distance from ``measured``.
    """

    sigma: float
    kappa: float
    threads: list[int]
    measured: list[float]
    predicted: list[float]
    rms_error: float

    @property
    def peak_threads(self) -> float:
        """N* = sqrt((1 - σ) / κ), at least 1: the count with the highest speedup (inf when
        κ = 0)."""
        if self.kappa <= 0:
            return float("inf")
        return max(1.0, math.sqrt(max(1.0 - self.sigma, 0.0) / self.kappa))

    @property
    def peak_speedup(self) -> float:
        """The speedup at :attr:`peak_threads` (``1/σ``, approached but never reached, when
        κ = 0; inf when both are 0)."""
        if self.kappa <= 0:
            return 1.0 / self.sigma if self.sigma > 0 else float("inf")
        return usl(self.peak_threads, self.sigma, self.kappa)

    @property
    def label(self) -> str:
        """A legend entry, e.g. ``USL, σ = 0.05, κ = 0.010``."""
        return f"USL, σ = {self.sigma:.2f}, κ = {self.kappa:.3f}"

    def predict(self, threads) -> list[float]:
        """The fitted law's speedup at each of ``threads``."""
        return usl([float(n) for n in threads], self.sigma, self.kappa)

    def curve(self, threads) -> dict[str, list[float]]:
        """``{"threads", "usl", "ideal"}`` at ``threads`` (for a smooth line)."""
        threads = list(threads)
        return {"threads": threads, "usl": self.predict(threads),
                "ideal": [float(n) for n in threads]}

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> USLFit:
        return cls(**d)


def fit_usl(threads, speedup) -> USLFit:
    """σ (0 to 1) and κ (>= 0) of the USL that minimise the squared error in speedup.

    The law is linear in σ and κ once written as ``N/S - 1 = σ (N - 1) + κ N (N - 1)``;
    that least-squares solution (with the bounds) is the starting point, and a few
    Levenberg-Marquardt steps on the speedups themselves finish the fit, so that the
    error is measured where the reader looks: on the speedup curve. With a single count
    above 1 the two costs cannot be told apart; κ is then 0 and σ is Amdahl's ``s`` —
    unless the threads made it slower (S < 1 needs σ > 1 without κ): σ is then 1 and κ
    takes the rest.
    """
    pts = _points(threads, speedup, "the USL")
    sigma, kappa = _refine(pts, *_linear_start(pts))
    threads = [int(n) for n, _ in pts]
    measured = [S for _, S in pts]
    pred = usl([float(n) for n in threads], sigma, kappa)
    return USLFit(sigma=sigma, kappa=kappa, threads=threads, measured=measured,
                  predicted=pred, rms_error=_rms(pred, measured))


def _linear_start(pts: list[tuple[float, float]]) -> tuple[float, float]:
    """Bounded least squares of ``N/S - 1 = σ (N - 1) + κ N (N - 1)`` (two unknowns,
    0 <= σ <= 1, κ >= 0): the free solution if it is within the bounds, else the best of
    the fits with one unknown held at a bound."""
    rows = [(n - 1.0, n * (n - 1.0), n / S - 1.0) for n, S in pts]

    def residual(sigma: float, kappa: float) -> float:
        return sum((a * sigma + b * kappa - y) ** 2 for a, b, y in rows)

    aa = sum(a * a for a, _, _ in rows)
    bb = sum(b * b for _, b, _ in rows)
    ab = sum(a * b for a, b, _ in rows)
    ay = sum(a * y for a, _, y in rows)
    by = sum(b * y for _, b, y in rows)
    # On a tie (one count above 1 fits exactly in several ways) the first one wins.
    candidates = [(min(max(ay / aa, 0.0), 1.0), 0.0),          # σ alone: Amdahl
                  (1.0, max((by - ab) / bb, 0.0)),              # all contention, then κ
                  (0.0, max(by / bb, 0.0))]                     # κ alone
    det = aa * bb - ab * ab
    if det > 1e-12 * aa * bb:                  # two distinct counts above 1
        sigma, kappa = (ay * bb - by * ab) / det, (by * aa - ay * ab) / det
        if 0 <= sigma <= 1 and kappa >= 0:
            candidates.insert(0, (sigma, kappa))
    return min(candidates, key=lambda p: residual(*p))


def _refine(pts: list[tuple[float, float]], sigma: float, kappa: float,
            iterations: int = 200) -> tuple[float, float]:
    """Levenberg-Marquardt on ``sum (usl(N) - S)^2``, each step projected onto the bounds
    0 <= σ <= 1, κ >= 0."""

    def cost(s: float, k: float) -> float:
        return sum((usl(n, s, k) - S) ** 2 for n, S in pts)

    best = cost(sigma, kappa)
    damping = 1e-3
    for _ in range(iterations):
        # Jacobian of the speedups: dS/dσ = -N (N-1) / D², dS/dκ = -N² (N-1) / D²
        jss = jsk = jkk = gs = gk = 0.0
        for n, S in pts:
            d = 1.0 + sigma * (n - 1) + kappa * n * (n - 1)
            r = n / d - S
            js, jk = -n * (n - 1) / d**2, -n * n * (n - 1) / d**2
            jss, jsk, jkk = jss + js * js, jsk + js * jk, jkk + jk * jk
            gs, gk = gs + js * r, gk + jk * r
        while damping < 1e12:
            a, c = jss * (1 + damping) + 1e-300, jkk * (1 + damping) + 1e-300
            det = a * c - jsk * jsk
            step_s = (-gs * c + gk * jsk) / det
            step_k = (-gk * a + gs * jsk) / det
            s_new, k_new = min(max(sigma + step_s, 0.0), 1.0), max(kappa + step_k, 0.0)
            new = cost(s_new, k_new)
            if new < best:
                break
            damping *= 4.0
        else:
            return sigma, kappa                 # no step lowers the error: a minimum
        moved = abs(s_new - sigma) + abs(k_new - kappa)
        sigma, kappa, best = s_new, k_new, new
        damping = max(damping / 3.0, 1e-12)
        if moved < 1e-13:
            break
    return sigma, kappa
