"""The dashboard frame: run from code, errors shown and raised, Stop, no thread left."""

import threading

import ipywidgets as W
import matplotlib
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from mtlearn.widgets.base import Dashboard  # noqa: E402


class Counter(Dashboard):
    title = "count"

    def controls(self):
        self.n = W.IntSlider(value=3, min=1, max=10, description="n")
        return [self.n]

    def experiment(self, report):
        if self.n.value == 7:
            raise ValueError("n must not be 7")
        for i in range(self.n.value):
            report((i + 1) / self.n.value, f"step {i}")
        return self.n.value * 2

    def render(self, result):
        self.show_text(f"result {result}")
        fig, ax = plt.subplots()
        ax.plot([1, 2])
        self.show_figure(fig)


def test_run_from_code_returns_result_and_fills_output(no_thread_leak):
    d = Counter()
    d.n.value = 4
    assert d.run() == 8
    kinds = [o["output_type"] for o in d.out.outputs]
    assert kinds == ["stream", "display_data"]
    assert "result 8" in d.out.outputs[0]["text"]
    assert "image/png" in d.out.outputs[1]["data"]
    assert d.progress.value == 1.0 and d.status.value == "done"
    assert not d.run_button.disabled and d.stop_button.disabled


def test_errors_are_shown_and_raised(no_thread_leak):
    d = Counter()
    d.n.value = 7
    with pytest.raises(ValueError, match="must not be 7"):
        d.run()
    assert "ValueError: n must not be 7" in d.out.outputs[-1]["text"]
    assert "error" in d.status.value


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
    d._stop.set()
    release.set()
    d.stop()
    assert not d.running and d.status.value == "stopped" and d.error is None
