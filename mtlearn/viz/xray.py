"""The X-ray of a scaling run: where a worker's time goes at each worker count.

A speedup curve says *how much* faster more threads were; the X-ray says *why*. For every
worker count it stacks, per training step, a worker's mean time in each part of
``History.breakdown()``:

* **compute, running** — CPU time in the forward and backward passes;
* **compute, not running** — the rest of that wall time: the thread was ready to compute
  but held no core or, on a GIL build, no GIL (hatched: it grows with the threads when the
  Python between the numpy calls takes turns on the GIL);
* **wait** — barriers and locks: waiting for the slowest worker or for the main thread;
* **reduce**, **update**, **load**, and **other** (starting and joining the threads,
  untraced Python between spans).

Beside it, the measured speedup over serial with the Amdahl and USL fits. Nothing is
measured or fitted here: the bars come from each run's ``breakdown()``, the curves from the
fits' ``predict`` (see :mod:`mtlearn.runtime.laws`). A learner reads the two panels together:
where the speedup curve bends, which part of the bar stopped shrinking?
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.patches import Patch

from .style import COLORS, CourseFigure

#: the parts of ``History.breakdown()``, bottom to top of a bar
PARTS = ("compute_cpu", "compute_wait", "wait", "reduce", "update", "load", "other")
LABELS = {"compute_cpu": "compute, running", "compute_wait": "compute, not running (GIL or core)",
          "wait": "wait (barriers, locks)", "reduce": "reduce", "update": "update",
          "load": "load", "other": "other (start-up, untraced)"}
_OTHER_COLOR = "#BBBBBB"


def worker_breakdown(history, skip: int = 1) -> dict[str, float]:
    """Seconds per update in each part of :data:`PARTS`, the mean over the run's worker
    threads (those that computed: ``compute_cpu + compute_wait > 0``).

    ``history`` is a ``History`` (or anything with ``breakdown(window)``, ``step_times`` and
    ``wall_time``). Like the time per step it is compared with, it leaves out the start:
    it covers the stretch from the end of update number ``skip`` (1 for a synchronous run,
    the worker count for an asynchronous one) to the end of the last, so the parts add up
    to that stretch over its updates. A run with no more updates than ``skip`` is taken
    whole. ValueError when the run has no trace.
    """
    t = list(history.step_times)
    if len(t) > skip >= 1:
        window, updates = (t[skip - 1], t[-1]), len(t) - skip
    else:
        window, updates = (0.0, history.wall_time), max(len(t), 1)
    parts = history.breakdown(window)
    workers = [p for p in parts.values() if p["compute_cpu"] + p["compute_wait"] > 0]
    if not workers:
        raise ValueError("xray: a run without a trace of its compute spans (train with "
                         "trace=True)")
    return {k: sum(p[k] for p in workers) / len(workers) / updates for k in PARTS}


def _read(result, speedup, fits, serial, cores, asynchronous):
    """``(counts, histories, speedup, fits, serial, cores, asynchronous)`` from a result
    with ``histories`` (e.g. ``experiments.Scaling``) or a ``{workers: History}`` mapping."""
    if hasattr(result, "histories"):
        histories = dict(result.histories)
        if speedup is None:
            speedup = list(result.speedup)
        if fits is None and callable(getattr(result, "fits", None)):
            fits = result.fits()
        serial = serial if serial is not None else getattr(result, "serial", None)
        cores = cores if cores is not None else getattr(result, "cores", None)
        if asynchronous is None:
            asynchronous = bool(getattr(result, "asynchronous", False))
        counts = list(result.threads)
    elif isinstance(result, Mapping):
        histories = dict(result)
        counts = sorted(histories)
    else:
        raise TypeError(f"xray: expected a scaling result with .histories or a mapping "
                        f"{{workers: History}}, got {type(result).__name__}")
    if not histories:
        raise ValueError("xray: no runs to draw")
    if speedup is not None and len(speedup) != len(counts):
        raise ValueError(f"xray: {len(speedup)} speedups for {len(counts)} worker counts")
    return counts, histories, speedup, list(fits or []), serial, cores, bool(asynchronous)


def xray(result, *, speedup: Sequence[float] | None = None, fits=None, serial=None,
         cores: int | None = None, asynchronous: bool | None = None,
         title: str | None = None):
    """Stacked bars of where a worker's time goes at each worker count, beside the speedup
    curve with its fits.

    Parameters
    ----------
    result : a scaling result with ``threads``, ``histories`` ({workers: History}),
        ``speedup`` and optionally ``serial``, ``fits()``, ``cores``, ``asynchronous`` (what
        ``experiments.measure_scaling`` returns), or a plain ``{workers: History}`` mapping
    speedup : speedups aligned with the worker counts (default: the result's); without
        any, only the bars are drawn
    fits : objects with ``label`` and ``predict(threads)`` (``bench.AmdahlFit``,
        ``bench.USLFit``; default: ``result.fits()``)
    serial : the ``serial`` run, drawn as the first bar (default: ``result.serial``)
    cores : marks the core count on the speedup panel (default: ``result.cores``)
    asynchronous : the runs are asynchronous (default: ``result.asynchronous``, else False):
        bars are per update, leaving out each worker's first update

    Returns the figure: bars in milliseconds per step (per update for an asynchronous
    strategy), one bar per count, each the mean over that run's workers from the end of
    its first step (of each worker's first update) to the end of the last — the stretch
    the speedup is timed over, so a bar's height is that run's time per step.
    """
    counts, histories, speedup, fits, serial, cores, asynchronous = _read(
        result, speedup, fits, serial, cores, asynchronous)
    names = (["serial"] if serial is not None else []) + [str(n) for n in counts]
    bars = ([worker_breakdown(serial)] if serial is not None else []) + [
        worker_breakdown(histories[n], n if asynchronous else 1) for n in counts]

    if speedup is not None:
        fig = CourseFigure(figsize=(11.0, 4.2), layout="constrained")
        ax, sax = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    else:
        fig = CourseFigure(figsize=(7.0, 4.2), layout="constrained")
        ax, sax = fig.add_subplot(), None

    x = np.arange(len(bars))
    bottom = np.zeros(len(bars))
    for part in PARTS:
        height = np.array([1e3 * b[part] for b in bars])
        color = _OTHER_COLOR if part == "other" else COLORS.get(part, COLORS["compute"])
        if part == "compute_wait":
            ax.bar(x, height, bottom=bottom, color=COLORS["compute"], alpha=0.35,
                   hatch="///", edgecolor="white", linewidth=0)
        else:
            ax.bar(x, height, bottom=bottom, color=color, linewidth=0)
        bottom += height
    for xi, total, b in zip(x, bottom, bars, strict=True):
        compute = b["compute_cpu"] + b["compute_wait"]
        share = b["compute_wait"] / compute if compute > 0 else 0.0
        ax.annotate(f"{total:.1f} ms\n{share:.0%} not running", (xi, total), ha="center",
                    va="bottom", fontsize=7, xytext=(0, 2), textcoords="offset points")
    ax.set_xticks(x, names)
    ax.set_xlabel("workers")
    unit = "update" if asynchronous else "step"
    ax.set_ylabel(f"ms per {unit}, mean over the workers")
    ax.set_ylim(0, bottom.max() * 1.18 if bottom.max() > 0 else 1.0)
    ax.grid(axis="x", visible=False)
    handles = [Patch(color=COLORS["compute"], label=LABELS["compute_cpu"]),
               Patch(facecolor=COLORS["compute"], alpha=0.35, hatch="///", edgecolor="white",
                     label=LABELS["compute_wait"])]
    handles += [Patch(color=_OTHER_COLOR if p == "other" else COLORS.get(p, COLORS["compute"]),
                      label=LABELS[p]) for p in PARTS[2:]]
    ax.legend(handles=handles, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16),
              ncols=4)
    ax.set_title(f"Where a worker's time goes, per {unit}")

    if sax is not None:
        top = max(counts)
        grid = np.linspace(1, max(top, 2), 80)
        sax.plot(grid, grid, "--", color=COLORS["ideal"], linewidth=1, label="ideal")
        sax.axhline(1.0, color=COLORS["ideal"], linewidth=0.8, linestyle=":")
        sax.plot(counts, speedup, "o-", color=COLORS["measured"], label="measured, over serial")
        styles = ((COLORS["amdahl"], ":"), ("#8172B2", "-."), ("#55A868", "--"))
        for k, fit in enumerate(fits):
            color, style = styles[k % len(styles)]
            sax.plot(grid, fit.predict(grid), style, color=color, linewidth=1.5,
                     label=fit.label)
        if cores and cores < top:
            sax.axvline(cores, color="#666666", linewidth=0.8, linestyle="-.",
                        label=f"{cores} cores")
        sax.set_xticks(sorted(set(counts)))
        sax.set_xlabel("workers")
        sax.set_ylabel("speedup over serial (x)")
        sax.set_ylim(0, max([top, *speedup]) * 1.1)
        sax.legend(fontsize=7, loc="upper left")
        sax.set_title("Speedup and the laws fitted to it")
    if title:
        fig.suptitle(title)
    return fig
