"""Figures of the GIL lab: scaling curves, the oversubscription heat map, the convoy effect,
and one interpreter against another.

Every function draws results only: it takes the result objects of ``mtlearn.bench``
(``ScalingResult``, ``OversubscriptionResult``, ``ConvoyResult``, ``Comparison.rows()``) or
the plain dicts their ``to_dict()`` returns, reading them by field name, and never imports
``bench`` itself (figures do not measure). Each returns a ``matplotlib.figure.Figure``.

* :func:`scaling_plot` — speedup against threads for one or several workloads, with the
  ideal line and Amdahl's law fitted to the points; beside it each thread's CPU time over
  the wall time, against ``1/N`` (N threads taking turns on one lock) and 1 (all running).
* :func:`oversubscription_heatmap` — Python threads x BLAS threads, coloured by GFLOP/s,
  time or speedup; hatched cells use more threads than the machine has cores.
* :func:`convoy_plot` — extra latency of a short I/O task next to a CPU-bound thread,
  against the switch interval, with the latency when it runs alone.
* :func:`interpreters_plot` — the same workloads on a GIL build and a free-threaded one:
  speedup at N threads, and the one-thread time (what free-threading costs a single thread).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from ..runtime import laws
from .style import COLORS, CourseFigure, axes, legend_outside
from .timeline import amdahl_speedup, speedup_curve

#: Colours of several series on one figure, in order (the first is ``COLORS["measured"]``).
SERIES_COLORS = ("#4C72B0", "#C44E52", "#55A868", "#8172B2", "#DD8452", "#937860",
                 "#DA8BC3", "#64B5CD")

_MISSING = object()


def _get(result, name: str, default=_MISSING):
    """Field ``name`` of a result object or of its ``to_dict()``."""
    if isinstance(result, Mapping):
        value = result.get(name, default)
    else:
        value = getattr(result, name, default)
    if value is _MISSING:
        raise ValueError(f"expected a result with a {name!r} field, got {type(result).__name__}")
    return value


# ---------------------------------------------------------------------------- scaling


def _serial_fraction(threads: Sequence[int], speedup: Sequence[float]) -> float | None:
    """Amdahl's ``s`` through ``(threads, speedup)`` (``runtime.laws``), None without a
    point above one thread."""
    try:
        return laws.fit_serial_fraction(threads, speedup)
    except ValueError:
        return None


def _fit(result, threads, speedup, upto) -> float | None:
    """Amdahl's serial fraction from the counts up to ``upto`` (from all of them when no
    count above 1 is left), or None with a single count."""
    if upto is not None and not any(1 < n <= upto for n in threads):
        upto = None
    amdahl = getattr(result, "amdahl", None)
    if callable(amdahl):                         # a ScalingResult fits itself
        return amdahl(upto=upto).serial_fraction if len(threads) > 1 else None
    pts = [(n, S) for n, S in zip(threads, speedup, strict=True) if upto is None or n <= upto]
    return _serial_fraction([n for n, _ in pts], [S for _, S in pts])


def _scaling_label(result) -> str:
    label = str(_get(result, "workload", "measured"))
    params = _get(result, "params", {}) or {}
    if "serial_fraction" in params:
        label += f" (s = {params['serial_fraction']:g})"
    if _get(result, "mode", "threads") == "processes":
        label += ", processes"
    return label


def scaling_plot(*results, labels: Sequence[str] | None = None, fit_upto="cores",
                 cpu_panel: bool = True, colors: Sequence[str] | None = None,
                 title: str | None = None, ax=None):
    """Speedup against threads for one or several scaling results, with the ideal line and
    Amdahl's law fitted to each; with ``cpu_panel``, each thread's CPU/wall beside it.

    Parameters
    ----------
    *results : ``ScalingResult`` objects (or their ``to_dict()``), or one list of them;
        each needs ``threads``, ``speedup`` and ``cpu_wall`` (lists aligned with
        ``threads``), and may have ``workload``, ``params``, ``mode`` and ``cores``
    labels : legend entries (default: the workload, its serial fraction, "processes")
    fit_upto : thread counts used for the Amdahl fit: ``"cores"`` (default) uses counts up
        to the result's core count — CPU-bound work cannot go faster than the cores,
        whatever its serial fraction —, an int sets the bound, ``None`` uses every count
    cpu_panel : draw the CPU/wall panel (ignored when ``ax`` is given)
    colors : one colour per result (default: :data:`SERIES_COLORS`)
    ax : draw the speedup panel on these axes instead of a new figure

    With one result the fitted curve is drawn in the course's Amdahl colour (by
    ``viz.speedup_curve``); with several, each curve is dotted in its result's colour and
    the fitted ``s`` is written in the result's legend entry.
    """
    if len(results) == 1 and isinstance(results[0], list | tuple):
        results = tuple(results[0])
    if not results:
        raise ValueError("scaling_plot: give at least one scaling result")
    if labels is not None and len(labels) != len(results):
        raise ValueError(f"scaling_plot: {len(labels)} labels for {len(results)} results")
    colors = list(colors) if colors is not None else (
        [COLORS["measured"]] if len(results) == 1 else
        [SERIES_COLORS[i % len(SERIES_COLORS)] for i in range(len(results))])
    series = []
    for i, r in enumerate(results):
        threads = [int(n) for n in _get(r, "threads")]
        speedup = [float(x) for x in _get(r, "speedup")]
        cores = _get(r, "cores", None)
        upto = cores if fit_upto == "cores" else fit_upto
        series.append({"label": labels[i] if labels is not None else _scaling_label(r),
                       "threads": threads, "speedup": speedup,
                       "s": _fit(r, threads, speedup, upto),
                       "cpu_wall": [float(x) for x in _get(r, "cpu_wall")], "cores": cores,
                       "color": colors[i % len(colors)]})

    if ax is None and cpu_panel:
        fig = CourseFigure(figsize=(11.0, 4.0), layout="constrained")
        ax, cpu_ax = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    else:
        fig, ax = axes(ax)
        cpu_ax = None

    top = max(max(d["threads"]) for d in series)
    grid = np.linspace(1, max(top, 1), 60)
    ax.plot(grid, grid, "--", color=COLORS["ideal"], label="ideal", linewidth=1)
    single = len(series) == 1
    for d in series:
        # Several results: one legend entry each, its fitted s in it; the dotted curves
        # share one entry (labels starting with "_" stay out of legends).
        label = d["label"] if single or d["s"] is None else f"{d['label']}: s = {d['s']:.2f}"
        speedup_curve(d["threads"], d["speedup"], label=label, ax=ax, color=d["color"],
                      serial_fraction=d["s"] if single else None)
        if not single and d["s"] is not None:
            ax.plot(grid, amdahl_speedup(grid, d["s"]), ":", color=d["color"], linewidth=1.5,
                    label=f"_Amdahl fit of {d['label']}")
    cores = {d["cores"] for d in series if d["cores"]}
    if len(cores) == 1 and (c := cores.pop()) < top:
        ax.axvline(c, color="#666666", linewidth=0.8, linestyle="-.", label=f"{c} cores")
    ax.set_xticks(sorted({n for d in series for n in d["threads"]}))
    ymax = max([top] + [max(d["speedup"]) for d in series])
    ax.set_ylim(0, ymax * 1.1)
    handles, _ = ax.get_legend_handles_labels()
    if not single and any(d["s"] is not None for d in series):
        handles.append(Line2D([], [], linestyle=":", color="#666666",
                              label="dotted: Amdahl's law, fitted s"))
    legend_outside(ax, handles)
    ax.set_title(title or "Same total work on more threads")

    if cpu_ax is not None:
        n = np.arange(1, top + 1)
        cpu_ax.plot(n, 1.0 / n, "--", color=COLORS["ideal"], linewidth=1,
                    label="1/N: one thread at a time")
        cpu_ax.axhline(1.0, color=COLORS["ideal"], linewidth=1, linestyle=":",
                       label="1: all running at once")
        for d in series:
            cpu_ax.plot(d["threads"], d["cpu_wall"], "o-", color=d["color"], label=d["label"])
        cpu_ax.set_xticks(sorted({k for d in series for k in d["threads"]}))
        cpu_ax.set_ylim(0, max([1.15] + [max(d["cpu_wall"]) * 1.1 for d in series]))
        cpu_ax.set_xlabel("threads")
        cpu_ax.set_ylabel("CPU time / wall time, per thread")
        cpu_ax.set_title("How much of the time each thread ran")
        legend_outside(cpu_ax)
    return fig


# ---------------------------------------------------------------------------- BLAS

def _rate(v: float) -> str:
    return f"{v:.0f}" if v >= 10 else f"{v:.1f}"


_HEAT_VALUES = {
    "gflops": ("GFLOP/s", _rate, "viridis"),
    "speedup": ("speedup over 1 x 1", "{:.2f}x".format, "viridis"),
    "seconds": ("seconds (median)", "{:.3f}".format, "viridis_r"),   # bright = fast, always
}


def oversubscription_heatmap(result, value: str = "gflops", *, ax=None,
                             title: str | None = None):
    """The oversubscription grid: Python threads (rows) x BLAS threads per Python thread
    (columns), each cell coloured and labelled with ``value`` — ``"gflops"``,
    ``"seconds"`` or ``"speedup"`` (bright is fast for all three). Cells where Python x
    BLAS threads exceed the cores are hatched; the fastest cell is outlined.

    result : ``OversubscriptionResult`` or its ``to_dict()``: ``py_threads``,
        ``blas_threads``, ``cores`` and the 2-D lists ``seconds``/``speedup``/``gflops``
        indexed ``[py][blas]`` (``size``/``products`` are used in the title if present)
    """
    if value not in _HEAT_VALUES:
        raise ValueError(f"value must be one of {list(_HEAT_VALUES)}, got {value!r}")
    py = [int(p) for p in _get(result, "py_threads")]
    bl = [int(b) for b in _get(result, "blas_threads")]
    grid = np.asarray(_get(result, value), dtype=float)
    seconds = np.asarray(_get(result, "seconds"), dtype=float)
    if grid.shape != (len(py), len(bl)):
        raise ValueError(f"{value} must be {len(py)} x {len(bl)} ([py][blas]), "
                         f"got shape {grid.shape}")
    cores = int(_get(result, "cores"))
    name, fmt, cmap = _HEAT_VALUES[value]
    fig, ax = axes(ax, figsize=(2.6 + 1.25 * len(bl), 1.9 + 0.7 * len(py)))
    im = ax.imshow(grid, cmap=cmap, origin="lower", aspect="auto")
    fig.colorbar(im, ax=ax, label=name, shrink=0.9)
    best = np.unravel_index(np.argmin(seconds), seconds.shape)
    for i, p in enumerate(py):
        for j, b in enumerate(bl):
            bright = im.norm(grid[i, j]) > 0.55
            if cmap.endswith("_r"):
                bright = not bright
            ax.text(j, i, f"{fmt(grid[i, j])}\n{p * b} thr", ha="center", va="center",
                    fontsize=9, color="black" if bright else "white")
            if p * b > cores:
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="///",
                                       edgecolor="white", linewidth=0, alpha=0.5))
    ax.add_patch(Rectangle((best[1] - 0.47, best[0] - 0.47), 0.94, 0.94, fill=False,
                           edgecolor="#C44E52", linewidth=2.5))
    ax.set_xticks(range(len(bl)), bl)
    ax.set_yticks(range(len(py)), py)
    ax.set_xlabel("BLAS threads per Python thread")
    ax.set_ylabel("Python threads")
    ax.grid(False)
    handles = [Patch(facecolor="#888888", hatch="///", edgecolor="white",
                     label=f"more threads than cores ({cores})"),
               Patch(facecolor="none", edgecolor="#C44E52", linewidth=2, label="fastest")]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2,
              fontsize=8)
    if title is None:
        size, products = _get(result, "size", None), _get(result, "products", None)
        what = f"{products} GEMMs of {size}x{size}" if size and products else "GEMMs"
        title = f"{what} on {cores} cores: {name}"
    ax.set_title(title)
    return fig


# ---------------------------------------------------------------------------- convoy


def convoy_plot(result, *, rate_panel: bool = True, ax=None, title: str | None = None):
    """Extra latency of a short I/O task while a CPU-bound thread runs, against the switch
    interval (log-log): median and 90th percentile, the same task alone (no CPU-bound
    thread), and the line "latency = one switch interval" — the most a waiter should pay
    (CPython issue bpo-7946). With ``rate_panel`` (and no ``ax``), the CPU-bound thread's
    loop rate beside it: what a short interval costs the thread holding the GIL.

    result : ``ConvoyResult`` or its ``to_dict()``: ``switch_intervals``,
        ``latency_median``, ``latency_p90``, ``baseline_median`` (seconds) and, if present,
        ``cpu_rate``, ``default_interval``, ``wait``, ``gil_enabled``
    """
    iv = 1e3 * np.asarray(_get(result, "switch_intervals"), dtype=float)
    med = 1e3 * np.asarray(_get(result, "latency_median"), dtype=float)
    p90 = 1e3 * np.asarray(_get(result, "latency_p90"), dtype=float)
    base = 1e3 * float(_get(result, "baseline_median"))
    rate = _get(result, "cpu_rate", None)
    default = _get(result, "default_interval", None)
    wait = _get(result, "wait", None)
    gil = _get(result, "gil_enabled", True)
    if ax is None and rate_panel and rate is not None:
        fig = CourseFigure(figsize=(11.0, 3.8), layout="constrained")
        ax, rate_ax = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    else:
        fig, ax = axes(ax)
        rate_ax = None
    ax.plot(iv, iv, ":", color=COLORS["ideal"], label="one switch interval")
    ax.plot(iv, med, "o-", color=COLORS["measured"], label="median, next to a CPU-bound thread")
    ax.plot(iv, p90, "s--", color=COLORS["measured"], alpha=0.5, label="90th percentile")
    ax.axhline(base, color=COLORS["backward"], linestyle="--",
               label=f"alone: {base:.2f} ms (median)")
    if default:
        ax.axvline(1e3 * default, color="#666666", linewidth=0.8, linestyle="-.",
                   label=f"default interval ({1e3 * default:g} ms)")
    values = np.concatenate([iv, med, p90, [base]])
    if np.all(values > 0):
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.set_xticks(iv, [f"{v:g}" for v in iv])
    ax.minorticks_off()
    ax.set_xlabel("switch interval (ms, sys.setswitchinterval)")
    task = f"a {1e3 * wait:g} ms I/O task" if wait is not None else "an I/O task"
    ax.set_ylabel(f"extra latency of {task} (ms)")
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title(title or f"The convoy effect (GIL {'on' if gil else 'off'})")
    if rate_ax is not None:
        mrate = np.asarray(rate, dtype=float) / 1e6
        rate_ax.plot(iv, mrate, "o-", color=COLORS["compute"])
        rate_ax.set_xscale("log")
        rate_ax.set_xticks(iv, [f"{v:g}" for v in iv])
        rate_ax.minorticks_off()
        rate_ax.set_ylim(0, mrate.max() * 1.2 if mrate.size and mrate.max() > 0 else 1)
        rate_ax.set_xlabel("switch interval (ms)")
        rate_ax.set_ylabel("million loop iterations / s")
        rate_ax.set_title("The CPU-bound thread's progress")
    return fig


# ---------------------------------------------------------------------------- interpreters


def _rows(rows) -> list[dict]:
    if callable(getattr(rows, "rows", None)):           # a Comparison
        rows = rows.rows()
    rows = [dict(r) for r in rows]
    if not rows:
        raise ValueError("interpreters_plot: no rows to draw (did every interpreter fail?)")
    for key in ("label", "workload", "threads", "speedup", "seconds"):
        if key not in rows[0]:
            raise ValueError(f"interpreters_plot: each row needs {key!r} "
                             f"(as Comparison.rows() gives), got {sorted(rows[0])}")
    return rows


def interpreters_plot(rows, threads: int | None = None, *, single_panel: bool = True,
                      title: str | None = None, ax=None):
    """The same workloads on several interpreters, side by side: grouped bars of the
    speedup at ``threads`` threads per workload (one bar per interpreter), with lines at 1x
    (no gain) and ``threads`` x (ideal); with ``single_panel`` (and no ``ax``), the
    one-thread time of each beside it — what the build costs a single thread.

    rows : ``Comparison.rows()`` (or the Comparison itself): dicts with ``label``,
        ``workload``, ``threads``, ``speedup``, ``seconds``
    threads : the thread count compared (default: 2 if measured, else the largest)
    """
    rows = _rows(rows)
    interpreters = list(dict.fromkeys(r["label"] for r in rows))
    workloads = list(dict.fromkeys(r["workload"] for r in rows))
    counts = sorted({int(r["threads"]) for r in rows})
    if threads is None:
        threads = 2 if 2 in counts else counts[-1]
    if threads not in counts:
        raise ValueError(f"interpreters_plot: no results at {threads} threads; "
                         f"measured {counts}")

    def value(label: str, workload: str, n: int, key: str) -> float:
        for r in rows:
            if r["label"] == label and r["workload"] == workload and int(r["threads"]) == n:
                return float(r[key])
        return math.nan

    if ax is None and single_panel:
        fig = CourseFigure(figsize=(11.0, 4.0), layout="constrained")
        ax, one_ax = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    else:
        fig, ax = axes(ax, figsize=(8.0, 4.0))
        one_ax = None
    x = np.arange(len(workloads))
    width = 0.8 / len(interpreters)
    colors = [SERIES_COLORS[i % len(SERIES_COLORS)] for i in range(len(interpreters))]
    for k, label in enumerate(interpreters):
        s = [value(label, w, threads, "speedup") for w in workloads]
        xs = x - 0.4 + width * (k + 0.5)
        ax.bar(xs, s, width, color=colors[k], label=label)
        for xi, v in zip(xs, s, strict=True):
            if math.isfinite(v):
                ax.annotate(f"{v:.2f}x", (xi, v), xytext=(0, 2), textcoords="offset points",
                            ha="center", va="bottom", fontsize=8)
    ax.axhline(threads, color=COLORS["ideal"], linestyle="--", linewidth=1,
               label=f"ideal ({threads}x)")
    ax.axhline(1.0, color="#333333", linewidth=0.8, label="no gain (1x)")
    ax.set_xticks(x, workloads)
    finite = [float(r["speedup"]) for r in rows if int(r["threads"]) == threads
              and math.isfinite(float(r["speedup"]))]
    ax.set_ylim(0, max([threads] + finite) * 1.45)       # room for the legend
    ax.set_ylabel(f"speedup on {threads} threads (x)")
    ax.grid(False, axis="x")
    ax.legend(fontsize=8, loc="upper left", ncol=2)
    ax.set_title(title or f"Speedup on {threads} threads, per interpreter")
    if one_ax is not None:
        for k, label in enumerate(interpreters):
            t = [1e3 * value(label, w, 1, "seconds") for w in workloads]
            one_ax.bar(x - 0.4 + width * (k + 0.5), t, width, color=colors[k], label=label)
        one_ax.set_xticks(x, workloads, rotation=30, ha="right")
        one_ax.set_ylabel("time on 1 thread (ms)")
        one_ax.grid(False, axis="x")
        one_ax.set_title("The same work on one thread")
    return fig
