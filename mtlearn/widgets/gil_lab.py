"""The GIL lab's two dashboards: how each kind of work scales on threads, and what Python
threads times BLAS threads cost when they outnumber the cores.

``ScalingLab`` runs :func:`mtlearn.bench.scaling` for one workload (every key of
``bench.WORKLOADS``) on 1, 2, ... N threads — and, if asked, on as many processes — and shows
the table, the speedup curve with Amdahl's law fitted to it next to each thread's CPU/wall,
and the timeline of one traced run, where a thread that waited (for the GIL, I/O or the
others) shows as a faint bar.

``OversubscriptionLab`` runs :func:`mtlearn.bench.oversubscription` on a grid of Python
threads x BLAS threads and shows the heat map with its fastest and slowest cells.

Both pass the dashboard's ``report`` to the library as ``progress``: Stop takes effect
between two timed runs. The defaults run in a few seconds on two cores.
"""

from __future__ import annotations

from dataclasses import dataclass

import ipywidgets as W

from .. import bench, info, viz
from .base import Dashboard

MAX_THREADS = 16
MAX_REPEATS = 9
#: The traced run drawn as a timeline uses at most this many threads and this much work.
TIMELINE_THREADS = 4
TIMELINE_WORK = 0.25
GEMM_SIZES = (128, 256, 512, 1024)
HEAT_VALUES = {"gflops": "GFLOP/s", "seconds": "seconds", "speedup": "speedup"}

_WIDE = {"description_width": "130px"}


def _part(report, lo: float, hi: float):
    """``progress(fraction, text)`` for one part of an experiment: ``fraction`` of the
    part becomes ``lo..hi`` of the whole on the dashboard's ``report``."""
    return lambda fraction, text="": report(lo + (hi - lo) * fraction, text)


# ---------------------------------------------------------------------------- scaling


@dataclass
class ScalingLabResult:
    """One Run of :class:`ScalingLab`: the scaling on threads (``result``), on processes
    when asked (``processes``, else None) and one traced run on ``timeline.threads``
    threads (a ``bench.Run`` whose ``spans`` make the timeline)."""

    result: bench.ScalingResult
    processes: bench.ScalingResult | None
    timeline: bench.Run

    @property
    def serial_fraction(self) -> float | None:
        """Amdahl's ``s`` fitted up to the core count (all counts on a 1-core machine)."""
        r = self.result
        if len(r.threads) < 2:
            return None
        upto = r.cores if any(1 < n <= r.cores for n in r.threads) else None
        return r.amdahl(upto=upto).serial_fraction

    @property
    def summary(self) -> str:
        """The scaling table(s), then one line on the traced run."""
        parts = [self.result.table()]
        if self.processes is not None:
            parts.append(self.processes.table()
                         + f"\n(starting the pool took {self.processes.startup:.2f} s, "
                           "not counted)")
        run = self.timeline
        ratios = ", ".join(f"{c:.2f}" for c in run.cpu_wall)
        parts.append(f"traced run on {run.threads} threads: {run.wall:.3f} s; CPU/wall per "
                     f"thread {ratios} (faint bars: the thread ran less than half that span)")
        return "\n\n".join(parts)

    def figure(self):
        """Speedup vs threads (ideal line, Amdahl fit) and CPU/wall per thread."""
        results = [self.result] + ([self.processes] if self.processes is not None else [])
        return viz.scaling_plot(*results)

    def timeline_figure(self):
        """The traced run, one row per thread, bars faded where CPU/wall < 0.5."""
        r = self.result
        return viz.timeline(self.timeline.spans, show_cpu=True,
                            title=f"{r.workload} on {self.timeline.threads} threads: "
                                  f"one traced run")


class ScalingLab(Dashboard):
    """Time one workload on 1, 2, ... N threads; plot the speedup, the Amdahl fit, CPU/wall
    per thread and a timeline.

    Keyword arguments set the controls' starting values
    (``ScalingLab(workload="numpy", max_threads=2, repeats=1, work=0.05)``). From code: set
    ``lab.<control>.value`` and call ``lab.run()``, which returns a
    :class:`ScalingLabResult`. Controls: ``workload``, ``max_threads``, ``repeats``,
    ``work`` (1.0 is about 0.2 s on one core), ``processes`` (also run on a process pool),
    ``serial_fraction`` (shown for ``mixed`` only).
    """

    title = "Scaling lab: the same work on more threads"

    def __init__(self, *, workload: str = "python", max_threads: int = 4, repeats: int = 3,
                 work: float = 0.5, processes: bool = False, serial_fraction: float = 0.5):
        self._start = dict(workload=workload, max_threads=max_threads, repeats=repeats,
                           work=work, processes=processes, serial_fraction=serial_fraction)
        super().__init__()

    def controls(self) -> list[W.Widget]:
        s = self._start
        self.workload = W.Dropdown(
            options=[(f"{name}: {w.summary}", name) for name, w in bench.WORKLOADS.items()],
            value=s["workload"], description="workload", style=_WIDE,
            layout=W.Layout(width="480px"))
        self.max_threads = W.IntSlider(value=s["max_threads"], min=2, max=MAX_THREADS,
                                       continuous_update=False, description="threads 1 to",
                                       style=_WIDE)
        self.repeats = W.IntSlider(value=s["repeats"], min=1, max=MAX_REPEATS,
                                   continuous_update=False, description="repeats (median)",
                                   style=_WIDE)
        self.work = W.FloatLogSlider(value=s["work"], base=10, min=-2, max=1, step=0.1,
                                     readout_format=".2g", continuous_update=False,
                                     description="work (1 = 0.2 s)", style=_WIDE)
        self.processes = W.Checkbox(value=s["processes"], description="also on processes",
                                    indent=False)
        self.serial_fraction = W.FloatSlider(value=s["serial_fraction"], min=0.0, max=1.0,
                                             step=0.05, continuous_update=False,
                                             description="serial fraction s", style=_WIDE)
        self.workload.observe(lambda _: self._show_serial_fraction(), names="value")
        self._show_serial_fraction()
        return [self.workload, self.max_threads, self.repeats, self.work, self.processes,
                self.serial_fraction]

    def _show_serial_fraction(self) -> None:
        mixed = self.workload.value == "mixed"
        self.serial_fraction.layout.display = None if mixed else "none"

    @property
    def thread_counts(self) -> list[int]:
        """The counts a Run measures: 1, 2, ... ``max_threads``."""
        return list(range(1, int(self.max_threads.value) + 1))

    def experiment(self, report) -> ScalingLabResult:
        # Read every control once: moving a slider during a run changes the next run only.
        name, counts = self.workload.value, self.thread_counts
        repeats, work = int(self.repeats.value), float(self.work.value)
        procs = bool(self.processes.value)
        params = {"serial_fraction": float(self.serial_fraction.value)} if name == "mixed" else {}
        threads_end = 0.45 if procs else 0.9
        result = bench.scaling(name, counts, repeats, work=work, **params,
                               progress=_part(report, 0.0, threads_end))
        processes = None
        if procs:
            processes = bench.scaling(name, counts, repeats, work=work, processes=True,
                                      **params, progress=_part(report, threads_end, 0.9))
        n = min(max(counts), TIMELINE_THREADS)
        report(0.9, f"{name}: one traced run on {n} threads")
        run = bench.traced_run(name, n, work=min(work, TIMELINE_WORK), **params)
        report(1.0, f"{name}: done")
        return ScalingLabResult(result, processes, run)

    def render(self, result: ScalingLabResult) -> None:
        self.show_text(result.summary)
        self.show_figure(result.figure())
        self.show_figure(result.timeline_figure())


# ---------------------------------------------------------------------------- BLAS


@dataclass
class OversubscriptionLabResult:
    """One Run of :class:`OversubscriptionLab`: the grid and the value the heat map shows."""

    result: bench.OversubscriptionResult
    value: str = "gflops"

    def _cell(self, p: int, b: int) -> str:
        r = self.result
        i, j = r.py_threads.index(p), r.blas_threads.index(b)
        over = " (more than the cores)" if p * b > r.cores else ""
        return (f"{p} Python x {b} BLAS = {p * b} thread{'s' * (p * b != 1)}{over}: "
                f"{1e3 * r.seconds[i][j]:.1f} ms, {r.gflops[i][j]:.1f} GFLOP/s, "
                f"{r.speedup[i][j]:.2f}x")

    @property
    def best(self) -> tuple[int, int]:
        """``(python threads, BLAS threads)`` of the fastest cell."""
        return self.result.best()

    @property
    def worst(self) -> tuple[int, int]:
        """``(python threads, BLAS threads)`` of the slowest cell."""
        r = self.result
        return max(((p, b) for p in r.py_threads for b in r.blas_threads),
                   key=lambda pb: r.seconds[r.py_threads.index(pb[0])]
                   [r.blas_threads.index(pb[1])])

    @property
    def summary(self) -> str:
        """The speedup table, then the fastest and the slowest cell."""
        r = self.result
        return (f"{r.table()}\n\nfastest: {self._cell(*self.best)}\n"
                f"slowest: {self._cell(*self.worst)}")

    def figure(self):
        return viz.oversubscription_heatmap(self.result, self.value)


class OversubscriptionLab(Dashboard):
    """GEMMs on every combination of 1..N Python threads and 1..M BLAS threads; heat map.

    Keyword arguments set the controls' starting values
    (``OversubscriptionLab(max_py=2, max_blas=2, size=128, work=0.05, repeats=1)``). From
    code: set ``lab.<control>.value`` and call ``lab.run()``, which returns an
    :class:`OversubscriptionLabResult`. Controls: ``max_py``, ``max_blas``, ``size``
    (matrix side), ``repeats``, ``work`` (1.0 is 64 products), ``show`` (what the heat map
    is coloured by: GFLOP/s, seconds or speedup).
    """

    title = "Oversubscription lab: Python threads x BLAS threads"

    def __init__(self, *, max_py: int = 2, max_blas: int = 4, size: int = 512,
                 repeats: int = 2, work: float = 0.25, show: str = "gflops"):
        self._start = dict(max_py=max_py, max_blas=max_blas, size=size, repeats=repeats,
                           work=work, show=show)
        super().__init__()

    def controls(self) -> list[W.Widget]:
        s = self._start
        top = max(8, 2 * info.cpu_count())
        self.max_py = W.IntSlider(value=s["max_py"], min=1, max=top, continuous_update=False,
                                  description="Python threads 1 to", style=_WIDE)
        self.max_blas = W.IntSlider(value=s["max_blas"], min=1, max=top,
                                    continuous_update=False, description="BLAS threads 1 to",
                                    style=_WIDE)
        self.size = W.Dropdown(options=list(GEMM_SIZES), value=s["size"],
                               description="matrix size", style=_WIDE)
        self.repeats = W.IntSlider(value=s["repeats"], min=1, max=MAX_REPEATS,
                                   continuous_update=False, description="repeats (median)",
                                   style=_WIDE)
        self.work = W.FloatLogSlider(value=s["work"], base=10, min=-2, max=1, step=0.1,
                                     readout_format=".2g", continuous_update=False,
                                     description="work (1 = 64 GEMMs)", style=_WIDE)
        self.show = W.ToggleButtons(options=[(v, k) for k, v in HEAT_VALUES.items()],
                                    value=s["show"], description="colour by", style=_WIDE)
        return [self.max_py, self.max_blas, self.size, self.repeats, self.work, self.show]

    def experiment(self, report) -> OversubscriptionLabResult:
        py = list(range(1, int(self.max_py.value) + 1))
        blas = list(range(1, int(self.max_blas.value) + 1))
        result = bench.oversubscription(py, blas, int(self.repeats.value),
                                        size=int(self.size.value), work=float(self.work.value),
                                        progress=report)
        return OversubscriptionLabResult(result, self.show.value)

    def render(self, result: OversubscriptionLabResult) -> None:
        self.show_text(result.summary)
        self.show_figure(result.figure())
