"""Figures for pipelined and asynchronous training: schedules, the bubble, live activations,
staleness.

``schedule_chart`` draws which stage runs which micro-batch's forward (F) or backward (B)
when — from an idealised schedule or from a measured trace, as long as each box is given as
``(stage, op, micro_batch, start, end)``; the empty space between boxes is the *bubble*.
``bubble_curve`` draws the GPipe formula ``(K-1)/(M+K-1)`` against the micro-batch count M
with measured bubbles on it; ``peak_live_bars`` compares how many micro-batches' activations
each stage keeps at once; ``staleness_histogram`` shows how stale the gradients of an
asynchronous (Hogwild!) run were.

Like every figure module, these functions only draw what they are given: plain numbers,
lists and dicts, no training and no measuring.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.patches import Patch

from .style import COLORS, axes, legend_outside

_SERIES = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B2", "#937860")


def bubble_theory(stages: int, micro_batches) -> np.ndarray:
    """GPipe's bubble fraction ``(K-1)/(M+K-1)`` for K stages and M micro-batches (Huang
    et al. 2019): the share of each stage's time spent idle when all stages take equally long.
    ``micro_batches`` may be a number or an array."""
    m = np.asarray(micro_batches, dtype=float)
    return (stages - 1) / (m + stages - 1)


def schedule_chart(ops, *, ax=None, title: str | None = None, time_label: str = "time (s)",
                   labels: bool | None = None):
    """Gantt chart of a pipeline schedule: one row per stage, one box per micro-batch pass.

    ops : iterable of ``(stage, op, micro_batch, start, end)`` with ``op`` ``"F"`` (forward)
        or ``"B"`` (backward), ``stage`` and ``micro_batch`` ints from 0
    time_label : the x axis' label (e.g. ``"time (ms)"`` or ``"time (forward passes)"``)
    labels : write ``F3``/``B3`` in each box; by default only when the boxes are few enough
        to be read (at most 40)

    The idle space between a stage's boxes is the bubble. Returns the figure.
    """
    ops = [(int(k), str(op), int(i), float(s), float(e)) for k, op, i, s, e in ops]
    if not ops:
        raise ValueError("schedule_chart: no operations to draw")
    if any(op not in ("F", "B") for _, op, *_ in ops):
        raise ValueError("schedule_chart: op must be 'F' or 'B'")
    stages = max(k for k, *_ in ops) + 1
    fig, ax = axes(ax, figsize=(7.5, max(1.6, 0.5 * stages + 1.0)))
    t0 = min(s for *_, s, _ in ops)
    t1 = max(e for *_, e in ops)
    # The bubble as a pale band behind every row: whatever the boxes leave uncovered.
    ax.broken_barh([(t0, t1 - t0)], (-0.5, stages), facecolors=COLORS["wait"], alpha=0.12,
                   linewidth=0)
    color = {"F": COLORS["forward"], "B": COLORS["backward"]}
    show = len(ops) <= 40 if labels is None else labels
    for op in ("F", "B"):
        for k in range(stages):
            bars = [(s, e - s) for kk, o, _, s, e in ops if kk == k and o == op]
            if bars:
                ax.broken_barh(bars, (k - 0.38, 0.76), facecolors=color[op],
                               edgecolors="white", linewidth=0.8)
    if show:
        for k, op, i, s, e in ops:
            ax.text((s + e) / 2, k, f"{op}{i}", ha="center", va="center", fontsize=7,
                    color="white")
    ax.set_yticks(range(stages), [f"stage {k}" for k in range(stages)])
    ax.set_ylim(stages - 0.5, -0.5)
    ax.set_xlim(t0, t1)
    ax.set_xlabel(time_label)
    ax.grid(axis="y", visible=False)
    handles = [Patch(color=color["F"], label="forward"), Patch(color=color["B"], label="backward"),
               Patch(facecolor=COLORS["wait"], alpha=0.25, label="idle (bubble)")]
    legend_outside(ax, handles)
    if title:
        ax.set_title(title)
    return fig


def bubble_curve(stages: int, measured: Mapping[int, float | Sequence[float]] | None = None, *,
                 max_micro_batches: int | None = None, label: str = "measured",
                 color: str | None = None, ax=None, title: str | None = None):
    """The bubble against the number of micro-batches M, for ``stages`` = K stages.

    measured : optional ``{M: bubble}`` or ``{M: [bubble of each step]}``; a list is drawn as
        its median with min-max whiskers
    max_micro_batches : the theory curve runs from M = 1 to this (default: the largest
        measured M, at least 16)

    The dashed curve is the formula ``(K-1)/(M+K-1)``, which assumes equal stages and free
    communication. Several calls with the same ``ax`` overlay several K. Returns the figure.
    """
    if not isinstance(stages, int | np.integer) or stages < 1:
        raise ValueError(f"bubble_curve: stages must be an int >= 1, got {stages!r}")
    measured = dict(measured or {})
    top = max_micro_batches or max([16, *measured])
    fig, ax = axes(ax)
    n = len([ln for ln in ax.get_lines() if ln.get_label().startswith("theory")])
    color = color or _SERIES[n % len(_SERIES)]
    m = np.arange(1, top + 1)
    ax.plot(m, 100 * bubble_theory(stages, m), "--", color=color, linewidth=1.2,
            label=f"theory (K-1)/(M+K-1), K = {stages}")
    if measured:
        ms = sorted(measured)
        runs = [np.atleast_1d(np.asarray(measured[k], dtype=float)) for k in ms]
        mid = np.array([np.median(r) for r in runs])
        lo = mid - np.array([r.min() for r in runs])
        hi = np.array([r.max() for r in runs]) - mid
        ax.errorbar(ms, 100 * mid, yerr=100 * np.vstack([lo, hi]), fmt="o", color=color,
                    capsize=3, label=f"{label}, K = {stages}")
    ax.set_xscale("log", base=2)
    ax.set_xticks([v for v in (1, 2, 4, 8, 16, 32, 64, 128) if v <= top])
    ax.set_xticklabels([str(v) for v in (1, 2, 4, 8, 16, 32, 64, 128) if v <= top])
    ax.set_xlim(0.85, top * 1.15)
    ax.set_ylim(0, 100)
    ax.set_xlabel("micro-batches per batch (M)")
    ax.set_ylabel("bubble: idle share of stage time (%)")
    legend_outside(ax)
    if title:
        ax.set_title(title)
    return fig


def peak_live_bars(peak_live: Mapping[str, Sequence[int]], *, micro_batches: int | None = None,
                   ax=None, title: str = "Activations kept alive per stage"):
    """Grouped bars: the most micro-batches whose activations each stage held at once.

    peak_live : ``{schedule name: [peak of stage 0, stage 1, ...]}`` (``history.info
        ["peak_live"]``), all of the same length K
    micro_batches : M, drawn as a dashed line (what GPipe keeps: every micro-batch)

    The stage count K is drawn as a dotted line: 1F1B's bound. Returns the figure.
    """
    if not peak_live:
        raise ValueError("peak_live_bars: nothing to draw")
    lengths = {len(v) for v in peak_live.values()}
    if len(lengths) != 1:
        raise ValueError("peak_live_bars: every schedule needs one value per stage")
    K = lengths.pop()
    fig, ax = axes(ax)
    width = 0.8 / len(peak_live)
    x = np.arange(K)
    for j, (name, values) in enumerate(peak_live.items()):
        ax.bar(x + (j - (len(peak_live) - 1) / 2) * width, values, width,
               color=_SERIES[j % len(_SERIES)], label=name)
    # The reference lines go over the bars (a bar as tall as M would hide its line), and
    # the axis leaves room above the tallest of them.
    if micro_batches is not None:
        ax.axhline(micro_batches, linestyle="--", color=COLORS["baseline"], zorder=3,
                   label=f"M = {micro_batches} micro-batches")
    ax.axhline(K, linestyle=":", color=COLORS["amdahl"], linewidth=1.5, zorder=3,
               label=f"K = {K} stages")
    top = max([K, micro_batches or 0] + [max(v, default=0) for v in peak_live.values()])
    ax.set_ylim(0, 1.15 * top)
    ax.set_xticks(x, [f"stage {k}" for k in range(K)])
    ax.set_ylabel("micro-batches alive at once")
    ax.grid(False, axis="x")
    legend_outside(ax)
    ax.set_title(title)
    return fig


def staleness_histogram(staleness: Mapping[str, Sequence[int]], *,
                        colors: Sequence[str | None] | None = None, ax=None,
                        title: str = "Staleness of each update"):
    """How many other updates landed between a worker reading the weights and writing its
    own update (``history.info["staleness"]`` of a Hogwild run), as a share of all updates.

    staleness : ``{run name: [staleness of each update]}``; runs are drawn side by side
    colors : optional colour of each run, in order (``None`` entries: the default cycle)
    Returns the figure.
    """
    if not staleness:
        raise ValueError("staleness_histogram: nothing to draw")
    runs = {name: np.asarray(v, dtype=int) for name, v in staleness.items()}
    top = max((int(v.max()) for v in runs.values() if v.size), default=0)
    fig, ax = axes(ax)
    x = np.arange(top + 1)
    width = 0.8 / len(runs)
    for j, (name, v) in enumerate(runs.items()):
        share = np.bincount(v, minlength=top + 1) / max(v.size, 1)
        mean = f", mean {v.mean():.2f}" if v.size else ""
        color = colors[j] if colors is not None and j < len(colors) else None
        ax.bar(x + (j - (len(runs) - 1) / 2) * width, 100 * share, width,
               color=color or _SERIES[j % len(_SERIES)], label=f"{name}{mean}")
    ax.set_xticks(x if top <= 20 else np.linspace(0, top, 11).round())
    ax.set_xlabel("staleness (updates applied while this gradient was computed)")
    ax.set_ylabel("share of updates (%)")
    ax.grid(False, axis="x")
    legend_outside(ax)
    ax.set_title(title)
    return fig
