"""Figures for training: loss and accuracy curves, timing bars, grids of images and filters.

Every function takes plain data (lists, arrays, dicts) and returns a
``matplotlib.figure.Figure``; the curve and bar functions draw on ``ax=`` instead when given
one.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib import ticker
from matplotlib.figure import Figure

from .style import COLORS, FIGSIZE, CourseFigure, axes, legend_outside
from .timeline import baseline_line

# Bars of a timing chart, in order: the first is usually the slow reference.
_BAR_COLORS = ("#C44E52", "#4C72B0", "#55A868", "#8172B2", "#CCB974", "#64B5CD")


def _finite(values) -> np.ndarray:
    """As a float array, with inf and nan both nan (a diverged run leaves a gap, not an error)."""
    a = np.asarray(values, dtype=float).copy()
    a[~np.isfinite(a)] = np.nan
    return a


def readable_log_ticks(ax) -> None:
    """On a log-scale y axis spanning less than a factor of 20, ticks at round numbers
    (0.9, 1, 1.1, ...) instead of one or two powers of ten: a narrow log axis otherwise
    shows almost no labels."""
    if ax.get_yscale() != "log":
        return
    lo, hi = ax.get_ylim()
    if lo > 0 and hi / lo < 20:
        ax.yaxis.set_major_locator(ticker.MaxNLocator(nbins=5))
        ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:.3g}"))
        ax.yaxis.set_minor_formatter(ticker.NullFormatter())
    elif isinstance(ax.yaxis.get_major_locator(), ticker.MaxNLocator):
        ax.set_yscale("log")       # an overlay widened the range: back to powers of ten


def moving_average(values, window: int) -> np.ndarray:
    """Mean of the last ``window`` values at each position (fewer at the start).

    values : sequence of N floats -> ndarray of shape (N,), float64
    """
    a = np.asarray(values, dtype=float)
    if window <= 1 or a.size == 0:
        return a.copy()
    c = np.cumsum(np.insert(a, 0, 0.0))
    n = np.arange(1, a.size + 1)
    lo = np.maximum(n - window, 0)
    return (c[n] - c[lo]) / (n - lo)


def loss_curve(losses, *, times=None, smooth: int | None = None, label: str = "train",
               color: str | None = None, logy: bool = True, ax=None,
               title: str = "Training loss") -> Figure:
    """Loss of every optimizer step, against the step number or the wall-clock time.

    Parameters
    ----------
    losses : sequence of N floats, one per step (``FitResult.losses``)
    times : optional sequence of N seconds, when each step ended (from the start of
        training); the x axis is then wall-clock time, which is what a speedup changes
    smooth : moving-average window drawn over the faint raw curve; ``None`` picks about
        N/25 steps, ``1`` draws the raw curve only
    label, color : legend entry and line colour (``COLORS["train"]`` by default)
    logy : log-scale loss axis (cross-entropy falls by orders of magnitude)
    ax : draw on these axes (to overlay several runs) instead of a new figure
    """
    y = _finite(losses)
    if times is None:
        x, xlabel = np.arange(1, y.size + 1), "optimizer step"
    else:
        x, xlabel = np.asarray(times, dtype=float), "wall-clock time (s)"
        if x.shape != y.shape:
            raise ValueError(f"loss_curve: times must have one entry per loss, got {x.shape} "
                             f"for {y.shape} losses")
    window = max(1, y.size // 25) if smooth is None else int(smooth)
    color = color or COLORS["train"]
    fig, ax = axes(ax)
    if window > 1:
        ax.plot(x, y, color=color, alpha=0.25, linewidth=0.8)
        ax.plot(x, moving_average(y, window), color=color, label=f"{label} (mean of {window})")
    else:
        ax.plot(x, y, color=color, label=label)
    if logy and np.nanmin(y, initial=np.inf) > 0:
        ax.set_yscale("log")
        readable_log_ticks(ax)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("loss (cross-entropy, nats)")
    ax.set_title(title)
    legend_outside(ax)
    return fig


def accuracy_curve(val_accuracy, *, label: str = "validation", color: str | None = None,
                   chance: float | None = None, ax=None,
                   title: str = "Validation accuracy") -> Figure:
    """Validation accuracy after each epoch, in percent.

    val_accuracy : sequence of E fractions in [0, 1] (``FitResult.val_accuracy``)
    chance : optional fraction a random guess gets (1 / classes), drawn as a dashed line
    """
    acc = 100 * _finite(val_accuracy)
    fig, ax = axes(ax)
    epochs = np.arange(1, acc.size + 1)
    ax.plot(epochs, acc, marker="o", color=color or COLORS["validation"], label=label)
    if chance is not None:
        ax.axhline(100 * chance, linestyle="--", color=COLORS["ideal"],
                   label=f"chance ({100 * chance:.0f}%)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy (%)")
    # From 0 when the chance line is drawn; otherwise zoom on the data (97% vs 99% matters).
    finite = acc[np.isfinite(acc)]
    low = 0 if chance is not None or not finite.size else max(0, 10 * (finite.min() // 10) - 10)
    ax.set_ylim(low, 101)
    if acc.size:
        ax.set_xticks(epochs if acc.size <= 20 else np.linspace(1, acc.size, 11).round())
    ax.set_title(title)
    legend_outside(ax)
    return fig


def training_curves(losses, val_accuracy=(), *, times=None, chance: float | None = None,
                    title: str | None = None) -> Figure:
    """Loss per step (left) and validation accuracy per epoch (right), side by side.

    Arguments as in :func:`loss_curve` and :func:`accuracy_curve`; without validation
    accuracies only the loss is drawn.
    """
    two = len(val_accuracy) > 0
    fig = CourseFigure(figsize=(FIGSIZE[0] * (1.6 if two else 1), FIGSIZE[1]),
                       layout="constrained")
    axes = fig.subplots(1, 2 if two else 1, squeeze=False)[0]
    loss_curve(losses, times=times, ax=axes[0])
    if two:
        accuracy_curve(val_accuracy, chance=chance, ax=axes[1])
    if title:
        fig.suptitle(title)
    return fig


def _format_seconds(s: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if s >= scale:
            return f"{s / scale:.3g} {unit}"
    return f"{s / 1e-9:.3g} ns"


def _format_ratio(r: float) -> str:
    return f"{r:,.0f}x" if r >= 100 else f"{r:.3g}x"


def timing_bars(timings: Mapping[str, float | Sequence[float]], *, log: bool = True,
                baseline: str | None = None, ratios: bool = True, ax=None,
                ylabel: str = "time per call", title: str = "Time per call") -> Figure:
    """One bar per variant: its median time, min-max whiskers, and how many times faster
    than ``baseline`` it is; the baseline's time is a dashed line across the chart.

    Parameters
    ----------
    timings : ``{name: seconds}`` or ``{name: [seconds of each repeat]}``, in display order
    log : log-scale time axis (the default: variants often differ by orders of magnitude)
    baseline : the name every other bar is compared to; the slowest one by default
    ratios : write "N x faster/slower" under each time; False for parts of one whole
        (say, the copy and the arithmetic inside one call), where a ratio means nothing
    ylabel : the time axis' label; its unit (s, ms or µs, from the largest time) is added
    """
    if not timings:
        raise ValueError("timing_bars: timings is empty")
    names = list(timings)
    runs = [np.atleast_1d(np.asarray(timings[k], dtype=float)) for k in names]
    if any(r.size == 0 or not np.all(r > 0) for r in runs):
        raise ValueError("timing_bars: every variant needs at least one time, all > 0")
    med = np.array([np.median(r) for r in runs])
    lo = med - np.array([r.min() for r in runs])
    hi = np.array([r.max() for r in runs]) - med
    if baseline is None:
        ref = float(med.max())
        ref_name = names[int(np.argmax(med))]
    elif baseline in timings:
        ref = float(med[names.index(baseline)])
        ref_name = baseline
    else:
        raise ValueError(f"timing_bars: baseline {baseline!r} is not one of {names}")
    unit, scale = next((u, f) for u, f in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 0.0))
                       if med.max() >= f)
    scale = scale or 1e-9
    fig, ax = axes(ax)
    colors = [_BAR_COLORS[i % len(_BAR_COLORS)] for i in range(len(names))]
    x = np.arange(len(names))
    top = float((med + hi).max())
    ax.bar(x, med / scale, color=colors, yerr=np.vstack([lo, hi]) / scale, capsize=4,
           ecolor="#333333")
    if log:
        ax.set_yscale("log")
        ax.set_ylim(med.min() / scale / 3, top / scale * 8)
    else:
        ax.set_ylim(0, top / scale * 1.3)
    for xi, m, h in zip(x, med, hi, strict=True):
        speed = ref / m
        if not ratios or math.isclose(speed, 1.0, rel_tol=1e-9):
            note = ""
        elif speed > 1:
            note = f"\n{_format_ratio(speed)} faster"
        else:
            note = f"\n{_format_ratio(1 / speed)} slower"
        ax.annotate(_format_seconds(m) + note, (xi, (m + h) / scale), xytext=(0, 3),
                    textcoords="offset points", ha="center", va="bottom", fontsize=9)
    ax.set_xticks(x, [textwrap.fill(str(n), 18) for n in names])
    ax.set_ylabel(f"{ylabel} ({unit}{', log scale' if log else ''})")
    ax.set_title(title)
    ax.grid(False, axis="x")
    if ratios:
        baseline_line(ax, ref / scale, label=f"{ref_name} (1x)")
        legend_outside(ax)
    return fig


def _as_tiles(images) -> np.ndarray:
    """(N, H, W), (N, 1, H, W) or (N, 3, H, W) -> (N, H, W) or (N, H, W, 3) for imshow."""
    a = np.asarray(images)
    if a.ndim == 4 and a.shape[1] == 1:
        return a[:, 0]
    if a.ndim == 4 and a.shape[1] == 3:
        return a.transpose(0, 2, 3, 1)
    if a.ndim == 3:
        return a
    raise ValueError(f"expected images of shape (N, H, W), (N, 1, H, W) or (N, 3, H, W), "
                     f"got {a.shape}")


def _grid(n: int, ncols: int, tile: float = 1.0, extra_height: float = 0.5):
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    fig = CourseFigure(figsize=(tile * ncols + 0.4, tile * nrows + extra_height),
                       layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes:
        ax.set_axis_off()
    return fig, axes


def image_grid(images, labels=None, *, predictions=None, class_names=None, ncols: int = 8,
               max_images: int = 32, cmap: str = "gray", title: str | None = None) -> Figure:
    """A grid of images, each titled with its label (and the model's guess, if given).

    Parameters
    ----------
    images : (N, C, H, W) with C = 1 or 3, or (N, H, W)
    labels : optional (N,) integer classes; class_names maps them to words
    predictions : optional (N,) predicted classes; a wrong guess is titled in red as
        ``guess (true: label)``
    ncols, max_images : layout; only the first ``max_images`` are drawn
    """
    tiles = _as_tiles(images)[:max_images]
    n = len(tiles)
    if n == 0:
        raise ValueError("image_grid: no images")

    def name(k) -> str:
        return str(class_names[int(k)]) if class_names is not None else str(int(k))

    fig, axes = _grid(n, ncols, extra_height=0.6 if title else 0.3)
    for i, (ax, img) in enumerate(zip(axes, tiles, strict=False)):
        ax.imshow(img, cmap=cmap, interpolation="nearest")
        if predictions is not None:
            wrong = labels is not None and predictions[i] != labels[i]
            text = name(predictions[i]) + (f"\n(true: {name(labels[i])})" if wrong else "")
            ax.set_title(text, fontsize=8, color="#C44E52" if wrong else "#333333")
        elif labels is not None:
            ax.set_title(name(labels[i]), fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def filter_grid(weight, *, max_filters: int = 32, ncols: int = 8,
                title: str = "Convolution filters") -> Figure:
    """The filters of a convolution, blue for negative weights and red for positive.

    weight : (O, C, kH, kW), a ``Conv2D``'s ``params["weight"]``. With one input channel
    there is one tile per filter; with several, one row per filter and one tile per input
    channel (the first ``ncols`` of them). One colour scale, symmetric about 0, for all.
    """
    w = np.asarray(weight, dtype=float)
    if w.ndim != 4:
        raise ValueError(f"filter_grid: expected weight of shape (O, C, kH, kW), got {w.shape}")
    w = w[:max_filters]
    O, C = w.shape[:2]
    if C == 1:
        tiles, cols, labels = w[:, 0], ncols, [f"filter {o}" for o in range(O)]
    else:
        C = min(C, ncols)
        tiles, cols = w[:, :C].reshape(-1, *w.shape[2:]), C
        labels = [f"{o}, in {c}" for o in range(O) for c in range(C)]
    vmax = float(np.abs(tiles).max()) or 1.0
    fig, axes = _grid(len(tiles), cols, tile=0.9, extra_height=0.6)
    for ax, t, label in zip(axes, tiles, labels, strict=False):
        im = ax.imshow(t, cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
        ax.set_title(label, fontsize=7)
    fig.colorbar(im, ax=list(axes), shrink=0.8, label="weight")
    fig.suptitle(title)
    return fig


def feature_maps(maps, *, max_maps: int = 32, ncols: int = 8,
                 title: str = "Feature maps") -> Figure:
    """What each channel of a layer's output lights up for one image.

    maps : (C, H, W), e.g. ``out[0]`` of a convolution or ReLU output (N, C, H, W)
    """
    m = np.asarray(maps, dtype=float)
    if m.ndim != 3:
        raise ValueError(f"feature_maps: expected maps of shape (C, H, W), got {m.shape}")
    m = m[:max_maps]
    fig, axes = _grid(len(m), ncols, extra_height=0.6)
    for c, (ax, t) in enumerate(zip(axes, m, strict=False)):
        ax.imshow(t, cmap="viridis", interpolation="nearest")
        ax.set_title(f"channel {c}", fontsize=7)
    fig.suptitle(title)
    return fig
