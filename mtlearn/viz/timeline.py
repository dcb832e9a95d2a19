"""Per-thread timelines and speedup curves: the two figures every threading experiment needs.

``timeline`` draws a trace (spans ``(thread, kind, start, end, cpu)``, e.g.
``History.trace`` or ``Tracer.spans()``): one row per thread, in a fixed order (the main
thread first, then the workers by number), one bar per span coloured by kind. With
``show_cpu`` a bar of work (compute, load, update...) is faded where the thread got little
CPU during the span (CPU/wall well below 1): that is where it waited for a core or, often,
for the GIL. Spans that are waits by nature (``wait``, ``io``) are always drawn solid, in
colours of their own, so that each bar has the colour of its legend entry.

``speedup_curve`` draws measured speedups against the ideal line and, given a serial
fraction ``s``, Amdahl's prediction ``1 / (s + (1 - s) / n)``, with serial (1x) as a dashed
baseline.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.patches import Patch

from ..runtime import laws
from .style import COLORS, axes, legend_outside

# Colours for kinds the course does not name: none of them is a course colour.
_FALLBACK = ("#1B9E77", "#8C8C8C", "#222222", "#808000", "#1F2A5C")
#: Span kinds that are waits by nature: never faded (their CPU/wall is low by definition).
WAITING_KINDS = ("wait", "io")
_MAIN_THREADS = ("main", "MainThread")


def kind_colors(kinds: Sequence[str]) -> dict[str, str]:
    """A colour for every span kind: the course colours, then a fixed fallback cycle."""
    out, spare = {}, iter(_FALLBACK * 4)
    for k in kinds:
        out[k] = COLORS.get(k) or next(spare)
    return out


def thread_order(names) -> list[str]:
    """Thread names in display order: the main thread first, then the others by name with
    numbers compared as numbers (``worker-2`` before ``worker-10``)."""
    def key(name: str):
        parts = [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]
        return (name not in _MAIN_THREADS, parts)
    return sorted(dict.fromkeys(names), key=key)


def timeline(spans, *, ax=None, title: str | None = None, show_cpu: bool = True,
             threads: Sequence[str] | None = None, kinds: Sequence[str] | None = None,
             window: tuple[float, float] | None = None):
    """Gantt chart of a trace.

    spans : iterable of ``(thread, kind, start, end, cpu)`` (``trace.Span`` or lists),
        times in seconds
    threads : row order (default: :func:`thread_order` of the threads in the trace);
        kinds : which kinds to draw
    window : ``(t0, t1)`` seconds to show (default: the whole trace)
    show_cpu : fade each bar of work whose CPU/wall is below 0.5 (solid = running, faint =
        waiting for a core or the GIL); waits (:data:`WAITING_KINDS`) stay solid

    Returns the figure (rows: threads, x: seconds).
    """
    spans = [tuple(s) for s in spans]
    if kinds is not None:
        spans = [s for s in spans if s[1] in kinds]
    rows = list(threads) if threads is not None else thread_order(s[0] for s in spans)
    used = list(dict.fromkeys(s[1] for s in spans))
    colors = kind_colors(used)
    height = max(1.6, 0.45 * len(rows) + 1.0)
    fig, ax = axes(ax, figsize=(7.5, height))
    index = {name: i for i, name in enumerate(rows)}
    faded: list[str] = []                  # kinds with at least one faint bar
    for kind in used:
        fade = show_cpu and kind not in WAITING_KINDS
        for alpha_band in ((0.0, 0.5), (0.5, 2.0)) if fade else ((0.0, 2.0),):
            bars: dict[int, list] = {}
            for thread, k, start, end, cpu in spans:
                if k != kind or thread not in index:
                    continue
                wall = end - start
                ratio = cpu / wall if wall > 0 else 1.0
                if alpha_band[0] <= ratio < alpha_band[1]:
                    bars.setdefault(index[thread], []).append((start, max(wall, 1e-9)))
            faint = fade and alpha_band[1] <= 0.5
            if faint and bars:
                faded.append(kind)
            for row, xr in bars.items():
                ax.broken_barh(xr, (row - 0.38, 0.76), facecolors=colors[kind],
                               alpha=0.35 if faint else 0.95, linewidth=0)
    ax.set_yticks(range(len(rows)), rows)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlabel("time (s)")
    if window is not None:
        ax.set_xlim(*window)
    ax.grid(axis="y", visible=False)
    handles = [Patch(color=colors[k], alpha=0.95, label=k) for k in used]
    if faded:              # drawn in the faded kind's own colour when there is only one
        handles.append(Patch(facecolor=colors[faded[0]] if len(faded) == 1 else "#999999",
                             alpha=0.35, label="faint: CPU/wall < 0.5\n"
                                               "(waiting for a core or the GIL)"))
    legend_outside(ax, handles)
    if title:
        ax.set_title(title)
    return fig


def baseline_line(ax, value: float = 1.0, label: str = "serial (1x)") -> None:
    """A dashed horizontal line at ``value`` (the serial time, or a speedup of 1x) across
    ``ax``, drawn once per axes and label: the reference every bar or point is read against.
    It is a line collection, so it is in the legend but not among ``ax.get_lines()`` (the
    curves), and it does not change the axes' limits."""
    if any(c.get_label() == label for c in ax.collections):
        return
    line = LineCollection([[(0.0, value), (1.0, value)]], transform=ax.get_yaxis_transform(),
                          colors=COLORS["baseline"], linestyles="--", linewidths=1.0,
                          label=label, zorder=1.5)
    ax.add_collection(line, autolim=False)


def amdahl_speedup(n, s: float) -> np.ndarray:
    """Amdahl's law (``runtime.laws.amdahl``) on a number or array ``n`` of threads."""
    return np.asarray(laws.amdahl(np.asarray(n, dtype=float).tolist(), s))


def speedup_curve(threads: Sequence[int], speedup: Sequence[float], *,
                  serial_fraction: float | None = None, label: str = "measured", ax=None,
                  title: str | None = None, color: str | None = None):
    """Measured speedup against threads, with the ideal line, serial (1x) as a dashed
    baseline and, if ``serial_fraction`` is given, Amdahl's curve for it. ``threads`` and
    ``speedup`` are equal-length sequences. Several calls with the same ``ax`` overlay
    several series. The legend sits to the right of the axes."""
    if len(threads) != len(speedup):
        raise ValueError(f"threads and speedup must have the same length, got {len(threads)} "
                         f"and {len(speedup)}")
    fig, ax = axes(ax)
    t = np.asarray(threads, dtype=float)
    top = max(t.max(), 1.0)
    grid = np.linspace(1, top, 50)
    if not any(line.get_label() == "ideal" for line in ax.get_lines()):
        ax.plot(grid, grid, "--", color=COLORS["ideal"], label="ideal", linewidth=1)
    baseline_line(ax)
    ax.plot(t, speedup, "o-", color=color or COLORS["measured"], label=label)
    if serial_fraction is not None:
        ax.plot(grid, amdahl_speedup(grid, serial_fraction), ":", color=COLORS["amdahl"],
                label=f"Amdahl, s = {serial_fraction:.2f}")
    ax.set_xlabel("threads")
    ax.set_ylabel("speedup (x)")
    ax.set_xticks(sorted(set(int(v) for v in t)))
    ax.set_ylim(0, max(top, max(speedup)) * 1.1)
    legend_outside(ax)
    if title:
        ax.set_title(title)
    return fig
