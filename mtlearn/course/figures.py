"""Recorded figures beside the learner's own: always labelled "recorded on ...".

A curve measured on this machine is drawn solid, in colour; a recorded one is dashed and
grey, its legend entry starts with "recorded:" and the axes carry a note naming the
machine and date it came from (:data:`mtlearn.course.recorded.LABEL`). Tables of recorded
rows carry the same caption. Nothing here measures anything.

    figures.speedup_beside(scaling, recorded.series(doc, strategy="sync", build="GIL",
                                                    model="cnn", batch=256))
    figures.gil_lab_beside({"python": py_result, "numpy": np_result})
    figures.recorded_table("bubble", where=lambda r: r["K"] >= 3)
    figures.verdict_table(verdicts)                 # notebook 10: here | recorded
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from ..runtime import info
from ..viz import style
from . import recorded as _recorded

#: greys and line styles of recorded curves, in order
RECORDED_COLORS = ("#666666", "#999999", "#444444", "#B0B0B0")
RECORDED_STYLES = ("--", "-.", ":", (0, (5, 1, 1, 1)))
RECORDED_MARKERS = ("s", "^", "D", "v")
#: size of a figure with recorded curves (their legend entries are long)
WIDE = (9.0, 3.8)
#: colours of the law fits drawn on a recorded curve
FIT_COLORS = {"amdahl": style.COLORS["amdahl"], "usl": "#8172B2"}


def recorded_note(label: str = _recorded.LABEL, drawn: str = "dashed grey") -> str:
    """The caption every recorded figure carries."""
    return f"{drawn}: {label} — not measured on this machine"


def _points(measured) -> tuple[list[int], list[float], int | None]:
    """``(threads, speedup, cores)`` from a result with ``threads``/``speedup`` attributes
    (``bench.ScalingResult``, ``experiments.Scaling``) or a dict with those keys."""
    if isinstance(measured, Mapping):
        get = measured.get
    else:
        def get(key, default=None):
            return getattr(measured, key, default)
    threads, speedup = get("threads"), get("speedup")
    if threads is None or speedup is None:
        raise TypeError("measured must have threads and speedup (a scaling result or a dict), "
                        f"got {type(measured).__name__}")
    threads, speedup = list(threads), [float(s) for s in speedup]
    if len(threads) != len(speedup) or not threads:
        raise ValueError(f"measured threads and speedup must be non-empty and of equal length, "
                         f"got {len(threads)} and {len(speedup)}")
    return threads, speedup, get("cores")


def _as_list(curves) -> list[dict]:
    if curves is None:
        return []
    if isinstance(curves, Mapping):
        return [dict(curves)]
    return [dict(c) for c in curves]


def speedup_beside(measured=None, recorded=None, *, ax=None, title: str | None = None,
                   fits: Sequence[str] = (), measured_label: str | None = None,
                   ideal: bool = True):
    """The learner's speedup curve (solid) beside recorded ones (dashed grey).

    Parameters
    ----------
    measured : a scaling result (``threads``, ``speedup``; ``cores`` if it has it) or a
        dict with those keys, or None to draw only the recordings.
    recorded : one series of :func:`mtlearn.course.recorded.load` (a dict with ``label``,
        ``threads``, ``speedup``) or a list of them. Points marked ``valid: False`` are
        drawn hollow and named artefacts.
    fits : ``"amdahl"`` and/or ``"usl"``: those laws fitted to the first recorded series,
        drawn thin (Amdahl's curve can only flatten; the USL's can peak and fall).
    Returns the figure.
    """
    from ..runtime import laws

    curves = _as_list(recorded)
    if measured is None and not curves:
        raise ValueError("nothing to draw: give measured, recorded or both")
    unknown = set(fits) - set(FIT_COLORS)
    if unknown:
        raise ValueError(f"fits must be among {sorted(FIT_COLORS)}, got {sorted(unknown)}")
    fig, ax = style.axes(ax, figsize=WIDE if curves else style.FIGSIZE)
    counts: set[int] = set()
    artefact_labelled = False
    if measured is not None:
        threads, speedup, cores = _points(measured)
        cores = cores or info.cpu_count()
        ax.plot(threads, speedup, "o-", color=style.COLORS["measured"], lw=2, zorder=3,
                label=measured_label or f"measured here ({cores} logical CPUs)")
        counts |= set(threads)
    for i, c in enumerate(curves):
        color = RECORDED_COLORS[i % len(RECORDED_COLORS)]
        ls = RECORDED_STYLES[i % len(RECORDED_STYLES)]
        mk = RECORDED_MARKERS[i % len(RECORDED_MARKERS)]
        valid = c.get("valid") or [True] * len(c["threads"])
        ax.plot(c["threads"], c["speedup"], linestyle=ls, color=color, lw=1.5, zorder=2,
                label=f"recorded: {c['label']}")
        good = [(n, s) for n, s, v in zip(c["threads"], c["speedup"], valid, strict=True) if v]
        bad = [(n, s) for n, s, v in zip(c["threads"], c["speedup"], valid, strict=True)
               if not v]
        if good:
            ax.plot(*zip(*good, strict=True), mk, color=color, ms=5, zorder=2)
        if bad:
            ax.plot(*zip(*bad, strict=True), mk, mfc="none", color=color, ms=7, zorder=2,
                    label=None if artefact_labelled else
                    "hollow: recorded artefact (see the recording's caveat)")
            artefact_labelled = True
        counts |= set(c["threads"])
    if curves and fits:
        first = curves[0]
        pts = [(n, s) for n, s, v in zip(first["threads"], first["speedup"],
                                        first.get("valid") or [True] * len(first["threads"]),
                                        strict=True) if v]
        ns, ss = [p[0] for p in pts], [p[1] for p in pts]
        grid = _grid(max(counts))
        for law in fits:
            fit = laws.fit_amdahl(ns, ss) if law == "amdahl" else laws.fit_usl(ns, ss)
            ax.plot(grid, fit.predict(grid), "-", lw=1, color=FIT_COLORS[law], zorder=1,
                    label=f"{fit.label} (fit to recorded)")
    top = max(counts)
    if ideal:
        ax.plot([1, top], [1, top], ":", color=style.COLORS["ideal"], lw=1, zorder=0,
                label="ideal (N threads, N times faster)")
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted(counts), [str(n) for n in sorted(counts)])
    ax.minorticks_off()
    ax.set_xlabel("threads (or workers)")
    ax.set_ylabel("speedup")
    ax.set_ylim(bottom=0)
    if title:
        ax.set_title(title)
    if curves:
        _note(ax)
    style.legend_outside(ax)
    return fig


def _grid(top: int) -> list[float]:
    """Points from 1 to ``top`` on a log scale, for a smooth law curve."""
    n, out = 1.0, []
    while n < top:
        out.append(n)
        n *= 2 ** 0.125
    return [*out, float(top)]


def _note(ax, drawn: str = "dashed grey") -> None:
    ax.text(0.0, -0.22, recorded_note(drawn=drawn), transform=ax.transAxes, fontsize=7,
            color="#666666", ha="left", va="top")


def bars_beside(categories: Sequence[str], measured: Mapping[str, float] | None,
                recorded: Mapping[str, Mapping[str, float]], *, measured_label: str = "",
                ax=None, title: str | None = None, ylabel: str = "speedup",
                reference: float | None = 1.0):
    """Grouped bars per category: the learner's value (solid) and each recorded set
    (grey, hatched, legend "recorded: ..."). ``recorded`` maps a label to
    ``{category: value}``; missing values are left out. Returns the figure."""
    categories = list(categories)
    if not categories:
        raise ValueError("categories must not be empty")
    groups = ([(measured_label or "measured here", measured, None)] if measured is not None
              else [])
    groups += [(f"recorded: {label}", vals, i) for i, (label, vals) in
               enumerate(recorded.items())]
    if not groups:
        raise ValueError("nothing to draw: give measured, recorded or both")
    fig, ax = style.axes(ax, figsize=(max(WIDE[0], 1.1 * len(categories) + 4), WIDE[1]))
    width = 0.8 / len(groups)
    for g, (label, vals, rec) in enumerate(groups):
        xs = [k + (g - (len(groups) - 1) / 2) * width for k, c in enumerate(categories)
              if c in vals]
        ys = [float(vals[c]) for c in categories if c in vals]
        if rec is None:
            ax.bar(xs, ys, width, color=style.COLORS["measured"], label=label)
        else:
            ax.bar(xs, ys, width, color=RECORDED_COLORS[rec % len(RECORDED_COLORS)],
                   alpha=0.6, hatch="//", edgecolor="white", label=label)
        for x, y in zip(xs, ys, strict=True):
            ax.text(x, y, f"{y:.3g}", ha="center", va="bottom", fontsize=7)
    if reference is not None:
        ax.axhline(reference, color=style.COLORS["baseline"], lw=0.8, ls=":")
    ax.set_xticks(range(len(categories)), categories)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if recorded:
        _note(ax, "hatched grey")
    style.legend_outside(ax)
    return fig


def gil_lab_beside(measured: Mapping | None = None, *, threads: int = 16, ax=None,
                   title: str | None = None):
    """The GIL lab's speedups at ``threads`` on the recording machine (GIL build and
    free-threaded, grey) beside the learner's: ``measured`` maps a workload to a
    ``bench.ScalingResult`` (its largest thread count is used) or to a speedup."""
    doc = _recorded.load("gil_lab")
    workloads = list(dict.fromkeys(s["workload"] for s in doc["series"]))
    rec = {}
    for build, name in (("GIL", "GIL build"), ("free-threaded", "free-threaded")):
        rec[f"{name}, {threads} threads"] = {
            s["workload"]: _recorded.at(s, threads) for s in doc["series"]
            if s["build"] == build}
    mine, most = None, None
    if measured:
        mine = {}
        for w, r in measured.items():
            if isinstance(r, int | float):
                mine[w] = float(r)
            else:
                ts, sp, _ = _points(r)
                mine[w] = sp[-1]
                most = max(most or 0, ts[-1])
        cats = [w for w in workloads if w in mine] + [w for w in mine if w not in workloads]
    else:
        cats = workloads
    label = f"measured here ({most} threads)" if most else "measured here"
    return bars_beside(cats, mine, rec, measured_label=label,
                       ax=ax, title=title or f"GIL lab at {threads} threads (recorded) and "
                       "here: speedup over 1 thread")


# ------------------------------------------------------------------------------- tables


class Table:
    """A small table shown as markdown in a notebook (``str()``: aligned text), with a
    caption above it."""

    def __init__(self, header: Sequence[str], rows: Sequence[Sequence], caption: str = ""):
        self.header = [str(h) for h in header]
        self.rows = [[str(c) for c in r] for r in rows]
        self.caption = caption

    def _repr_markdown_(self) -> str:
        def esc(c: str) -> str:
            return c.replace("|", "\\|")
        lines = [f"*{self.caption}*", ""] if self.caption else []
        lines.append("| " + " | ".join(map(esc, self.header)) + " |")
        lines.append("|" + "---|" * len(self.header))
        lines += ["| " + " | ".join(map(esc, r)) + " |" for r in self.rows]
        return "\n".join(lines)

    def __str__(self) -> str:
        widths = [max(len(r[i]) for r in [self.header, *self.rows])
                  for i in range(len(self.header))]
        lines = [self.caption] if self.caption else []
        for r in [self.header, *self.rows]:
            lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        return "\n".join(lines)

    __repr__ = __str__


#: default columns of :func:`recorded_table` per document: (key, header, format)
COLUMNS: dict[str, list[tuple[str, str, str]]] = {
    "bubble": [("model", "model", "{}"), ("K", "K", "{}"), ("M", "M", "{}"),
               ("theory", "formula (K-1)/(M+K-1)", "{:.1f}%"), ("measured", "measured", "{:.1f}%"),
               ("difference_pp", "difference", "{:+.1f} pp"),
               ("busiest_over_mean", "busiest stage / mean", "{:.2f}")],
    "mpi": [("label", "configuration", "{}"), ("workers", "workers", "{}"),
            ("ms", "ms/step", "{:.1f}"), ("vs_serial_approx", "vs serial (approx.)", "{:.2f}x"),
            ("vs_1thread", "vs one sync worker thread", "{:.2f}x"),
            ("reduce_share", "time in allreduce", "{:.0%}"), ("startup_s", "start-up s", "{:.2f}")],
    "penalty": [("batch", "batch", "{}"), ("env", "allocator", "{}"),
                ("main_ms", "main thread ms", "{:.1f}"),
                ("worker_ms", "worker thread ms", "{:.1f}"),
                ("ratio", "worker / main", "{:.2f}")],
    "bench_nn": [("step", "one training step", "{}"), ("mtlearn_ms", "mtlearn ms", "{:.2f}"),
                 ("pytorch_ms", "PyTorch ms", "{:.2f}"), ("ratio", "ratio", "{:.2f}x")],
    "sync_variants": [("py", "Python", "{}"), ("env", "variant", "{}"), ("batch", "batch", "{}"),
                      ("strategy", "strategy", "{}"), ("n", "threads", "{}"),
                      ("ms", "ms/step", "{:.1f}"), ("speedup", "speedup", "{:.2f}x")],
}


def recorded_table(name: str, *, where: Callable[[dict], bool] | None = None,
                   columns: Sequence[tuple[str, str, str]] | None = None) -> Table:
    """A recorded document's rows (``bubble``, ``mpi``, ``penalty``, ``bench_nn``,
    ``sync_variants``) as a table captioned with the machine, the date and how they were
    measured; ``where`` keeps some rows (e.g. ``lambda r: r["K"] >= 3``)."""
    doc = _recorded.load(name)
    if "rows" not in doc:
        raise ValueError(f"{name!r} holds curves, not rows: draw it with speedup_beside")
    cols = list(columns or COLUMNS.get(name) or [(k, k, "{}") for k in doc["rows"][0]])
    rows = [r for r in doc["rows"] if where is None or where(r)]
    caption = f"{doc['label']} — not measured here ({doc['how']})."
    return Table([h for _, h, _ in cols], [[f.format(r[k]) for k, _, f in cols] for r in rows],
                 caption)


def verdict_table(verdicts: Mapping[str, tuple[str, str]],
                  recorded: Mapping[str, str] | None = None) -> Table:
    """Notebook 10's summary: ``verdicts`` maps a claim (``"2b. synchronous ..."``) to
    ``(verdict measured here, notebooks)``; a second column gives what the 16-core machine
    recorded for the same claim (:func:`mtlearn.course.recorded.claims`, matched on the
    text before the first ``.``), "—" where no recording speaks to it."""
    rec = _recorded.claims() if recorded is None else dict(recorded)
    rows = [[claim, str(v), rec.get(claim.split(".")[0].strip(), "—"), where]
            for claim, (v, where) in verdicts.items()]
    return Table(["the post's claim", "verdict here", f"recorded on 16 cores ({_recorded.DATE})",
                  "notebook"], rows,
                 f"Third column: {_recorded.LABEL} — another machine, not measured here.")
