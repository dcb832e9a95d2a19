"""The GIL lab's two dashboards: how each kind of work scales on threads, and what Python
threads times BLAS threads cost when they outnumber the cores.

``ScalingLab`` runs :func:`mtlearn.bench.scaling` for one workload (every key of
``bench.WORKLOADS``) on 1, 2, ... N threads — and, if asked, on as many processes — and shows
the table, the speedup curve with Amdahl's law fitted to it next to each thread's CPU/wall,
and the timeline of one traced run: work during which its thread got less than half a CPU
(waiting for a core or the GIL) is a faint bar; waits for the others and blocking I/O have
colours of their own.

``OversubscriptionLab`` runs :func:`mtlearn.bench.oversubscription` on a grid of Python
threads x BLAS threads and shows the heat map with its fastest and slowest cells.

Both pass the dashboard's ``report`` to the library as ``progress``: Stop takes effect
between two timed runs (these measure workloads, not training: there is no step for a
``cancel`` event to end). The defaults run in a few seconds on two cores.
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
                     f"thread {ratios}\n(faint bars of work: the thread ran less than half of "
                     "that span)")
        return "\n\n".join(parts)

    def figure(self):
        """Speedup vs threads (ideal line, Amdahl fit) and CPU/wall per thread."""
        results = [self.result] + ([self.processes] if self.processes is not None else [])
        return viz.scaling_plot(*results)

    def timeline_figure(self):
        """The traced run, one row per thread, bars of work faded where CPU/wall < 0.5."""
        r = self.result
        return viz.timeline(self.timeline.spans, show_cpu=True,
                            title=f"{r.workload} on {self.timeline.threads} threads: "
                                  f"one traced run")

    def figures(self) -> list:
        return [self.figure(), self.timeline_figure()]


class ScalingLab(Dashboard):
    """Time one workload on 1, 2, ... N threads; plot the speedup, the Amdahl fit, CPU/wall
    per thread and a timeline.

    Keyword arguments set the controls' starting values
    (``ScalingLab(workload="numpy", max_threads=2, repeats=1, work=0.05)``). From code: set
    ``lab.<name>_<kind>.value`` and call ``lab.run()``, which returns a
    :class:`ScalingLabResult`. Controls: ``workload_dropdown``, ``max_threads_slider``,
    ``repeats_slider``, ``work_slider`` (1.0 is about 0.2 s on one core),
    ``processes_checkbox`` (also run on a process pool), ``serial_fraction_slider`` (shown
    for ``mixed`` only).
    """

    title = "Scaling lab: the same work on more threads"

    def __init__(self, *, workload: str = "python", max_threads: int = 4, repeats: int = 3,
                 work: float = 0.5, processes: bool = False, serial_fraction: float = 0.5):
        super().__init__()
        slow = {"continuous_update": False}
        self.workload_dropdown = W.Dropdown(
            options=[(f"{name}: {w.summary}", name) for name, w in bench.WORKLOADS.items()],
            value=workload, description="workload")
        self.max_threads_slider = W.IntSlider(value=max_threads, min=2, max=MAX_THREADS,
                                              description="threads 1 to", **slow)
        self.repeats_slider = W.IntSlider(value=repeats, min=1, max=MAX_REPEATS,
                                          description="repeats (median)", **slow)
        self.work_slider = W.FloatLogSlider(value=work, base=10, min=-2, max=1, step=0.1,
                                            readout_format=".2g",
                                            description="work (1 = 0.2 s)", **slow)
        self.processes_checkbox = W.Checkbox(value=processes, description="also on processes")
        self.serial_fraction_slider = W.FloatSlider(value=serial_fraction, min=0.0, max=1.0,
                                                    step=0.05, description="serial fraction s",
                                                    **slow)
        self.workload_dropdown.observe(lambda _: self._show_serial_fraction(), names="value")
        self._show_serial_fraction()

    def controls(self) -> list[W.Widget]:
        return [self.workload_dropdown, self.max_threads_slider, self.repeats_slider,
                self.work_slider, self.processes_checkbox, self.serial_fraction_slider]

    def _show_serial_fraction(self) -> None:
        mixed = self.workload_dropdown.value == "mixed"
        self.serial_fraction_slider.layout.display = None if mixed else "none"

    @property
    def thread_counts(self) -> list[int]:
        """The counts a Run measures: 1, 2, ... ``max_threads``."""
        return list(range(1, int(self.max_threads_slider.value) + 1))

    def experiment(self, report) -> ScalingLabResult:
        # Read every control once: moving a slider during a run changes the next run only.
        name, counts = self.workload_dropdown.value, self.thread_counts
        repeats, work = int(self.repeats_slider.value), float(self.work_slider.value)
        procs = bool(self.processes_checkbox.value)
        params = ({"serial_fraction": float(self.serial_fraction_slider.value)}
                  if name == "mixed" else {})
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

    def summary(self) -> str:
        """The speedup table, then the fastest and the slowest cell."""
        r = self.result
        return (f"{r.table()}\n\nfastest: {self._cell(*self.best)}\n"
                f"slowest: {self._cell(*self.worst)}")

    def figure(self):
        return viz.oversubscription_heatmap(self.result, self.value)

    def figures(self) -> list:
        return [self.figure()]


class OversubscriptionLab(Dashboard):
    """GEMMs on every combination of 1..N Python threads and 1..M BLAS threads; heat map.

    Keyword arguments set the controls' starting values
    (``OversubscriptionLab(max_py=2, max_blas=2, size=128, work=0.05, repeats=1)``). From
    code: set ``lab.<name>_<kind>.value`` and call ``lab.run()``, which returns an
    :class:`OversubscriptionLabResult`. Controls: ``max_py_slider``, ``max_blas_slider``,
    ``size_dropdown`` (matrix side), ``repeats_slider``, ``work_slider`` (1.0 is 64
    products), ``show_buttons`` (what the heat map is coloured by: GFLOP/s, seconds or
    speedup).
    """

    title = "Oversubscription lab: Python threads x BLAS threads"

    def __init__(self, *, max_py: int = 2, max_blas: int = 4, size: int = 512,
                 repeats: int = 2, work: float = 0.25, show: str = "gflops"):
        super().__init__()
        slow = {"continuous_update": False}
        top = max(8, 2 * info.cpu_count())
        self.max_py_slider = W.IntSlider(value=max_py, min=1, max=top,
                                         description="Python threads 1 to", **slow)
        self.max_blas_slider = W.IntSlider(value=max_blas, min=1, max=top,
                                           description="BLAS threads 1 to", **slow)
        self.size_dropdown = W.Dropdown(options=list(GEMM_SIZES), value=size,
                                        description="matrix size")
        self.repeats_slider = W.IntSlider(value=repeats, min=1, max=MAX_REPEATS,
                                          description="repeats (median)", **slow)
        self.work_slider = W.FloatLogSlider(value=work, base=10, min=-2, max=1, step=0.1,
                                            readout_format=".2g",
                                            description="work (1 = 64 GEMMs)", **slow)
        self.show_buttons = W.ToggleButtons(options=[(v, k) for k, v in HEAT_VALUES.items()],
                                            value=show, description="colour by")

    def controls(self) -> list[W.Widget]:
        return [self.max_py_slider, self.max_blas_slider, self.size_dropdown,
                self.repeats_slider, self.work_slider, self.show_buttons]

    def experiment(self, report) -> OversubscriptionLabResult:
        py = list(range(1, int(self.max_py_slider.value) + 1))
        blas = list(range(1, int(self.max_blas_slider.value) + 1))
        result = bench.oversubscription(py, blas, int(self.repeats_slider.value),
                                        size=int(self.size_dropdown.value),
                                        work=float(self.work_slider.value), progress=report)
        return OversubscriptionLabResult(result, self.show_buttons.value)
