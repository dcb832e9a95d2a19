"""Figures for recurrent networks: the unrolled recurrence, gradients through time, the adding
problem, and loss curves against a baseline.

Like every figure of the course, each function takes plain data (lists, arrays, dicts) and
returns a ``matplotlib.figure.Figure`` built without ``pyplot`` (safe from any thread); the
curve functions draw on ``ax=`` instead when given one.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from .style import COLORS, FIGSIZE, CourseFigure, axes, legend_outside
from .training import moving_average

# One colour per kind of cell, used by every figure of notebook 03.
CELL_COLORS = {"RNN": "#C44E52", "LSTM": "#4C72B0", "GRU": "#55A868"}


def unrolled_recurrence(steps: int = 4, *, title: str | None = None) -> Figure:
    """The recurrence unrolled in time: one box per step, ``x_t`` in, ``h_t`` out, and the
    state passed from each step to the next (the arrows that force steps to run in order).
    """
    fig = CourseFigure(figsize=(1.7 * steps + 1.4, 3.0), layout="constrained")
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.set_xlim(-1.2, 1.7 * steps)
    ax.set_ylim(-1.25, 1.9)

    def arrow(a, b, color, style="-|>"):
        ax.add_patch(FancyArrowPatch(a, b, arrowstyle=style, mutation_scale=12, color=color,
                                     linewidth=1.4, shrinkA=2, shrinkB=2))

    state = COLORS["wait"]
    for t in range(steps):
        cx = 1.7 * t + 0.6
        ax.add_patch(FancyBboxPatch((cx - 0.45, -0.3), 0.9, 0.6, boxstyle="round,pad=0.05",
                                    facecolor="#DCE6F2", edgecolor=COLORS["compute"]))
        ax.text(cx, 0, "cell", ha="center", va="center")
        ax.text(cx, -1.1, f"$x_{{{t}}}$", ha="center", va="center")
        ax.text(cx, 1.35, f"$h_{{{t}}}$", ha="center", va="center")
        arrow((cx, -0.95), (cx, -0.38), COLORS["compute"])
        arrow((cx, 0.38), (cx, 1.18), COLORS["compute"])
        arrow((cx - 1.25 if t else -1.0, 0), (cx - 0.5, 0), state)
    ax.text(-1.05, 0.13, "$h_{-1}$", ha="left", va="bottom", color=state)
    ax.text(1.7 * steps / 2 - 0.6, 1.75, "the same weights at every step; "
            "each step waits for the state (red) of the one before", ha="center",
            color=state, fontsize=9)
    ax.set_title(title or "A recurrent layer unrolled over time")
    return fig


def gradient_flow(norms: Mapping[str, np.ndarray], *, ax=None, title: str | None = None,
                  colors: Mapping[str, str] | None = None) -> Figure:
    """How much of the gradient of a loss at the last step reaches each earlier input.

    norms : ``{label: array of T norms}``, ``||dL/dx_t||`` for t = 0..T-1; each curve is
        divided by its value at the last step, so 1 means "as strong as at the end".
    A label starting with the name of a cell (``"LSTM, trained"``) takes that cell's colour.
    """
    fig, ax = axes(ax)
    colors = dict(colors or {})
    floor = np.inf
    for label, v in norms.items():
        v = np.asarray(v, dtype=float)
        rel = v / v[-1]
        color = colors.get(label) or next((c for k, c in CELL_COLORS.items()
                                           if label.startswith(k)), None)
        dashed = "init" in label
        shown = np.where(rel > 0, rel, np.nan)       # exact zeros have no place on a log axis
        ax.semilogy(np.arange(v.size), shown, label=label, color=color,
                    linestyle="--" if dashed else "-")
        if np.isfinite(shown).any():
            floor = min(floor, np.nanmin(shown))
    ax.set_ylim(max(floor / 3, 1e-30), 10)
    ax.set_xlabel("input step t")
    ax.set_ylabel("$||dL/dx_t||$ / value at the last step")
    ax.set_title(title or "Gradient of the last step's loss, back through time")
    ax.legend()
    return fig


def adding_examples(X, y, *, n: int = 3, predictions=None, title: str | None = None) -> Figure:
    """A few sequences of the adding problem: the values as a line, the two marked ones as
    dots, the target (and a model's answer, if given) in each title.

    X : (N, T, 2) values and markers; y : (N, 1) targets; predictions : optional (M, 1), the
    model's answers for the first M sequences
    """
    X, y = np.asarray(X), np.asarray(y).reshape(len(X), -1)
    n = min(n, len(X))
    if predictions is not None:
        predictions = np.asarray(predictions).reshape(-1)
        n = min(n, predictions.size)
    fig = CourseFigure(figsize=(FIGSIZE[0], 1.3 * n + 0.6), layout="constrained")
    axes = fig.subplots(n, 1, sharex=True, squeeze=False)[:, 0]
    t = np.arange(X.shape[1])
    for k, ax in enumerate(axes):
        values, marked = X[k, :, 0], X[k, :, 1] > 0.5
        ax.plot(t, values, color=COLORS["ideal"], linewidth=1)
        ax.plot(t[marked], values[marked], "o", color=COLORS["wait"])
        head = f"target {y[k, 0]:.3f} = " + " + ".join(f"{v:.3f}" for v in values[marked])
        if predictions is not None:
            head += f"; model: {predictions[k]:.3f}"
        ax.set_title(head, fontsize=9, loc="left")
        ax.set_ylim(-0.05, 1.05)
        ax.set_ylabel("value")
    axes[-1].set_xlabel("step t")
    fig.suptitle(title or "The adding problem: add the two marked values")
    return fig


def loss_vs_baseline(runs: Mapping[str, list[float]], *, baseline: float | None = None,
                     baseline_label: str = "baseline", smooth: int | None = None,
                     ylabel: str = "loss", logy: bool = False, ax=None,
                     title: str = "Training loss") -> Figure:
    """Loss per optimizer step of one or several runs, with the loss to beat as a dashed line.

    runs : ``{label: losses}``; a label starting with a cell name takes its colour
    baseline : e.g. the unigram entropy, or the MSE of always answering the mean
    smooth : moving-average window (faint raw curve behind); ``None``: about N/25 steps
    """
    fig, ax = axes(ax)
    for label, losses in runs.items():
        y = np.asarray(losses, dtype=float)
        x = np.arange(1, y.size + 1)
        color = next((c for k, c in CELL_COLORS.items() if label.startswith(k)), None)
        window = max(1, y.size // 25) if smooth is None else int(smooth)
        if window > 1:
            (line,) = ax.plot(x, y, alpha=0.25, linewidth=0.8, color=color)
            ax.plot(x, moving_average(y, window), color=line.get_color(), label=label)
        else:
            ax.plot(x, y, color=color, label=label)
    if baseline is not None:
        ax.axhline(baseline, linestyle="--", color=COLORS["baseline"], linewidth=1.0,
                   label=f"{baseline_label} ({baseline:.3g})")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    legend_outside(ax)
    return fig
