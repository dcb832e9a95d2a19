"""The dashboard frame: built after the lab, shown by a cell ending in it, run from code,
errors shown and raised, Stop through one cancel event, text kept as it is, labels whole."""

import re
import threading

import ipywidgets as W
import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from IPython.core.formatters import DisplayFormatter

from mtlearn import nn, parallel
from mtlearn.widgets import (
    CNNLab,
    HogwildLab,
    OversubscriptionLab,
    PipelineLab,
    RNNLab,
    ScalingLab,
    StrategyLab,
)
from mtlearn.widgets.base import Dashboard, Stopped, align_labels

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
LABS = [CNNLab, RNNLab, StrategyLab, HogwildLab, PipelineLab, ScalingLab, OversubscriptionLab]


class Result:
    def __init__(self, n, stopped=False):
        self.n, self.stopped = n, stopped

    def summary(self):
        return f"result {self.n}\n  <b>x</b>   y"

    def figures(self):
        fig, ax = plt.subplots()
        ax.plot([1, 2])
        return [fig]


class Counter(Dashboard):
    title = "count"

    def __init__(self, start=3):
        super().__init__()
        self.n_slider = W.IntSlider(value=start, min=1, max=10, description="n")
        self.calls = 0

    def controls(self):
        self.calls += 1
        return [self.n_slider]

    def experiment(self, report):
        n = self.n_slider.value
        if n == 7:
            raise ValueError("n must not be 7")
        for i in range(n):
            report((i + 1) / n, f"step {i}")
        return Result(n * 2)


def test_run_from_code_returns_result_and_fills_output(no_thread_leak):
    d = Counter()
    d.n_slider.value = 4
    result = d.run()
    assert result.n == 8 and d.result is result
    kinds = [(o["output_type"], sorted(o["data"])) for o in d.out.outputs]
    assert kinds == [("display_data", ["text/html", "text/plain"]),
                     ("display_data", ["image/png", "text/plain"])]
    assert d.progress_bar.value == 1.0 and d.status == "done"
    assert not d.run_button.disabled and d.stop_button.disabled


def test_text_keeps_its_lines_and_is_escaped():
    d = Counter()
    d.show_text("a  table\n  <b>x</b>   y\n")
    html = d.out.outputs[-1]["data"]["text/html"]
    assert html.startswith("<pre") and "white-space: pre" in html
    assert "&lt;b&gt;x&lt;/b&gt;   y" in html and "<b>" not in html
    assert d.out.outputs[-1]["data"]["text/plain"] == "a  table\n  <b>x</b>   y"


def test_the_ui_is_built_after_the_lab_is_complete():
    d = Counter(start=5)                  # controls() reads what Counter.__init__ made
    assert d.calls == 0 and d._widget is None
    assert d.n_slider.value == 5           # controls exist (and can be set) before display
    box = d.widget
    assert d.widget is box and d.calls == 1
    title, controls, buttons, out = box.children
    assert "count" in title.value and controls.children == (d.n_slider,)
    assert buttons.children == (d.run_button, d.stop_button, d.progress_bar, d.status_html)
    assert out is d.out and "mtlearn-dashboard" in box._dom_classes


def test_a_cell_ending_in_the_lab_shows_it_with_a_hint_in_plain_text():
    d = Counter()
    bundle = d._repr_mimebundle_()
    assert bundle[WIDGET_VIEW]["model_id"] == d.widget.model_id
    assert "run this cell to show it" in bundle["text/plain"]
    assert "count" in bundle["text/plain"] and "\n" not in bundle["text/plain"]
    data, _ = DisplayFormatter().format(d)          # what IPython does with `lab` in a cell
    assert data[WIDGET_VIEW]["model_id"] == d.widget.model_id
    assert data["text/plain"] == bundle["text/plain"]
    assert "run this cell" in repr(d)


@pytest.mark.parametrize("cls", LABS)
def test_every_lab_displays_itself_and_names_its_controls_as_controls(cls):
    lab = cls()
    data, _ = DisplayFormatter().format(lab)
    assert WIDGET_VIEW in data and cls.title in data["text/plain"]
    controls = lab.widget.children[1].children
    assert controls
    kinds = {W.IntSlider: "_slider", W.FloatSlider: "_slider", W.FloatLogSlider: "_slider",
             W.SelectionSlider: "_slider", W.Dropdown: "_dropdown",
             W.ToggleButtons: "_buttons", W.Checkbox: "_checkbox"}
    names = {id(v): k for k, v in vars(lab).items()}
    for c in controls:
        assert names[id(c)].endswith(kinds[type(c)]), (names[id(c)], type(c).__name__)


def _ch(width: str) -> int:
    """The ch count of a width like '17ch' or 'calc(17ch + 30ch)'."""
    return sum(int(v) for v in re.findall(r"(\d+)ch", width))


@pytest.mark.parametrize("cls", LABS)
def test_no_label_or_option_is_cut_short(cls):
    controls = cls().widget.children[1].children
    described = [c for c in controls if not isinstance(c, W.Checkbox)]
    widths = {c.style.description_width for c in described}
    assert len(widths) == 1                          # one label column: the controls line up
    label = _ch(widths.pop())
    for c in controls:
        if isinstance(c, W.Checkbox):
            assert c.indent and _ch(c.layout.width) >= label + len(c.description) + 2
        else:
            assert label >= len(c.description) + 2, c.description
        if isinstance(c, W.Dropdown):       # prose options average 0.75 ch a character
            longest = max(len(text) for text in c._options_labels)
            assert _ch(c.layout.width) >= label + 0.85 * longest + 4, c.description
        if isinstance(c, W.ToggleButtons):
            assert _ch(c.style.button_width) >= max(len(str(o)) for o in c._options_labels) + 2


def test_align_labels_without_descriptions():
    box = W.Checkbox(description="a rather long text for one checkbox")
    align_labels([box])
    assert _ch(box.layout.width) >= len(box.description)


def test_errors_are_shown_and_raised(no_thread_leak):
    d = Counter()
    d.n_slider.value = 7
    with pytest.raises(ValueError, match="must not be 7"):
        d.run()
    assert "ValueError: n must not be 7" in d.out.outputs[-1]["text"]
    assert d.out.outputs[-1]["name"] == "stderr"
    assert d.status == "error: ValueError" and "error" in d.status_html.value
    assert d.result is None


def test_button_runs_in_background_and_stop_stops(no_thread_leak):
    started, release = threading.Event(), threading.Event()

    class Slow(Counter):
        def experiment(self, report):
            started.set()
            release.wait(5)
            report(0.5)
            raise AssertionError("should have been stopped")

    d = Slow()
    d.run_button.click()
    assert started.wait(5) and d.running and d.run_button.disabled
    d.cancel.set()
    release.set()
    d.stop()
    assert not d.running and d.status == "stopped" and d.error is None
    assert d.result is None and d.out.outputs == ()


def test_progress_never_raises_and_report_does_once_stopped():
    d = Counter()
    d.cancel.set()
    d.progress(0.4, "halfway")                        # safe inside parallel.train's on_step
    assert d.progress_bar.value == 0.4 and d.status == "halfway"
    with pytest.raises(Stopped):
        d._report(0.5, "next piece")
    d.progress(7)                                      # clamped
    assert d.progress_bar.value == 1.0


def test_a_partial_result_is_shown_and_marked_stopped(no_thread_leak):
    class Partial(Counter):
        def experiment(self, report):
            return Result(1, stopped=True)

    d = Partial()
    assert d.run().stopped
    assert d.status == "stopped" and len(d.out.outputs) == 2


class Training(Dashboard):
    """A lab whose Stop goes through parallel.train's cancel event."""

    title = "training"

    def __init__(self):
        super().__init__()
        self.steps = threading.Event()

    def experiment(self, report):
        rng = np.random.default_rng(0)
        X, y = rng.standard_normal((64, 4)), rng.integers(0, 2, 64)
        h = parallel.train(nn.Sequential(nn.Dense(4, 2)), nn.SoftmaxCrossEntropy(), (X, y),
                           epochs=100_000, batch_size=8, on_step=lambda *_: self.steps.set(),
                           cancel=self.cancel)
        return Result(h.steps, stopped=h.cancelled)


def test_stop_cancels_parallel_train_at_its_next_step(no_thread_leak):
    d = Training()
    d.run(wait=False)
    assert d.steps.wait(30)
    d.stop()                                            # 800,000 steps: it must be cancelled
    assert not d.running and d.error is None
    assert d.result.stopped and 0 < d.result.n < 800_000
    assert d.status == "stopped"
    d.steps.clear()
    d.run(wait=False)                                   # Run clears the cancel event
    assert d.steps.wait(30)
    d.stop()
    assert d.result.stopped and d.result.n > 0


# -- the figures the dashboards show ------------------------------------------------------

def _figures():
    """One of each figure a dashboard draws, from small made-up data."""
    from mtlearn import viz
    from mtlearn.runtime.trace import Span

    rng = np.random.default_rng(0)
    losses = list(np.linspace(1.4, 0.3, 60) + 0.05 * rng.random(60))
    spans = [Span("w-1", "compute", 0.0, 1.0, 0.9), Span("w-0", "wait", 0.0, 1.0, 0.0),
             Span("main", "load", 0.0, 0.2, 0.2)]
    scaling = {"threads": [1, 2, 4], "speedup": [1.0, 1.7, 2.2], "cpu_wall": [1, 0.9, 0.7],
               "workload": "numpy", "cores": 4}
    return {
        "training_curves": viz.training_curves(losses, [0.5, 0.9], chance=0.25),
        "loss_curve": viz.loss_curve(losses, times=np.arange(60) * 0.01),
        "loss_vs_baseline": viz.loss_vs_baseline({"LSTM(8)": losses}, baseline=1.0),
        "timeline": viz.timeline(spans),
        "timing_bars": viz.timing_bars({"serial": [0.01, 0.012], "sync x2": 0.006},
                                       log=False, baseline="serial"),
        "speedup_curve": viz.speedup_curve([1, 2, 4], [1.0, 1.8, 3.1], serial_fraction=0.1),
        "scaling_plot": viz.scaling_plot(scaling),
        "bubble_curve": viz.bubble_curve(2, {1: 0.5, 4: [0.2, 0.3]}),
        "peak_live_bars": viz.peak_live_bars({"gpipe": [4, 4]}, micro_batches=4),
        "staleness_histogram": viz.staleness_histogram({"lock-free": [0, 1, 1, 3]}),
        "schedule_chart": viz.schedule_chart([(0, "F", 0, 0, 1), (1, "F", 0, 1, 2),
                                              (1, "B", 0, 2, 4), (0, "B", 0, 4, 6)]),
    }


def test_legends_never_cover_the_data():
    for name, fig in _figures().items():
        fig.canvas.draw()
        for ax in fig.axes:
            legend = ax.get_legend()
            if legend is None:
                continue
            box, area = legend.get_window_extent(), ax.get_window_extent()
            assert not box.overlaps(area), f"{name}: the legend covers the data"


def test_bar_charts_and_speedup_curves_mark_the_baseline():
    figs = _figures()
    for name, value, label in (("timing_bars", 11.0, "serial (1x)"),
                               ("speedup_curve", 1.0, "serial (1x)"),
                               ("scaling_plot", 1.0, "serial (1x)")):
        ax = figs[name].axes[0]
        lines = [c for c in ax.collections if c.get_label() == label]
        assert len(lines) == 1, name
        (segment,) = lines[0].get_segments()
        assert segment[:, 1] == pytest.approx([value, value]) and \
            lines[0].get_linestyle()[0][1] is not None                # dashed
        assert label in [t.get_text() for t in ax.get_legend().get_texts()]
    ax = figs["peak_live_bars"].axes[0]
    assert ax.get_ylim()[1] > 4                 # the M line is not hidden at the frame


def test_timeline_rows_in_a_fixed_order_and_colours_as_in_the_legend():
    from mtlearn import viz
    from mtlearn.runtime.trace import Span

    spans = [Span(t, k, 0.0, 1.0, cpu) for t, k, cpu in (
        ("worker-10", "compute", 0.1), ("worker-2", "wait", 0.0), ("main", "load", 1.0),
        ("worker-1", "io", 0.0), ("worker-2", "compute", 1.0))]
    ax = viz.timeline(spans).axes[0]
    rows = [t.get_text() for t in ax.get_yticklabels()]
    assert rows == ["main", "worker-1", "worker-2", "worker-10"]
    legend = {t.get_text(): p.get_facecolor() for t, p in
              zip(ax.get_legend().get_texts(), ax.get_legend().get_patches(), strict=True)}
    drawn = {}
    for bars in ax.collections:                 # one collection per kind and alpha band
        drawn.setdefault(tuple(bars.get_facecolor()[0][:3]), set()).add(bars.get_alpha())
    for kind in ("wait", "io", "load", "compute"):
        rgb = tuple(legend[kind][:3])
        assert rgb in drawn, kind               # every bar has its legend entry's colour
    # waits and I/O are never faded, and they differ from each other
    assert drawn[tuple(legend["wait"][:3])] == {0.95}
    assert drawn[tuple(legend["io"][:3])] == {0.95}
    assert legend["wait"][:3] != legend["io"][:3]
    # the faint compute bar (CPU/wall 0.1) has a legend entry of its own colour, faded
    faint = [k for k in legend if k.startswith("faint")]
    assert len(faint) == 1 and legend[faint[0]][:3] == legend["compute"][:3]
    assert drawn[tuple(legend["compute"][:3])] == {0.35, 0.95}


def test_a_narrow_log_axis_has_readable_ticks():
    from mtlearn import viz

    ax = viz.loss_curve([1.4, 1.3, 1.1, 0.95, 0.9], smooth=1).axes[0]
    ax.figure.canvas.draw()
    labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert ax.get_yscale() == "log" and len(labels) >= 3
    assert all("10^" not in s and "\\times" not in s for s in labels)
