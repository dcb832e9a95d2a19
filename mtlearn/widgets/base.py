"""The dashboard frame every lab shares: controls, Run and Stop, progress, its own output.

The experiment runs on a worker thread so the notebook stays responsive and the Stop button
works. Everything it shows goes into the dashboard's own ``Output`` widget explicitly
(``append_stdout`` and PNG display data): since ipykernel 7, output printed from another
thread is not routed to the cell by itself. Errors are shown in the output, never swallowed.

Drive a dashboard from code exactly as a learner would: set the controls' ``.value`` and
call ``run()`` (which waits and returns the result), or ``run(wait=False)`` as the Run
button does.
"""

from __future__ import annotations

import base64
import io
import threading
import traceback

import ipywidgets as W

from ..parallel.api import prepare
from ..parallel.base import Cancelled
from ..parallel.history import History


class Stopped(Exception):
    """Raised inside an experiment when the learner pressed Stop."""


class Dashboard:
    """Base class: subclasses define ``controls()``, ``experiment(report)`` and ``render()``.

    ``experiment(report)`` does the work; it calls ``report(fraction, text)`` now and then,
    which updates the progress bar and raises :class:`Stopped` once Stop was pressed.
    ``render(result)`` shows the result with :meth:`show_figure` / :meth:`show_text`.
    """

    title = "Dashboard"

    def __init__(self) -> None:
        self.run_button = W.Button(description="Run", button_style="primary", icon="play")
        self.stop_button = W.Button(description="Stop", icon="stop", disabled=True)
        self.progress = W.FloatProgress(value=0.0, min=0.0, max=1.0,
                                        layout=W.Layout(width="200px"))
        self.status = W.HTML()
        self.out = W.Output()
        self.result = None
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.run_button.on_click(lambda _: self.run(wait=False))
        self.stop_button.on_click(lambda _: self.stop())
        self.widget = W.VBox([
            W.HTML(f"<b>{self.title}</b>"),
            W.VBox(self.controls()),
            W.HBox([self.run_button, self.stop_button, self.progress, self.status]),
            self.out,
        ])
        self.widget.add_class("mtlearn-dashboard")   # a stable hook for browser tests and CSS

    # -- to override ---------------------------------------------------------------------
    def controls(self) -> list[W.Widget]:
        """The widgets a learner changes (sliders, dropdowns...)."""
        return []

    def experiment(self, report):
        """Run the experiment with the controls' current values; return its result."""
        raise NotImplementedError

    def render(self, result) -> None:
        """Show ``result`` in the output area."""
        self.show_text(repr(result))

    # -- running -------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def run(self, wait: bool = True):
        """Start the experiment on a worker thread. With ``wait`` (the default, for code and
        tests) block until it ends and return its result, re-raising its error."""
        if self.running:
            self.status.value = "already running"
            return None
        self._stop.clear()
        self.error = None
        self.out.outputs = ()          # (clear_output() would print escape codes outside a kernel)
        self._set_busy(True)
        self._thread = threading.Thread(target=self._work, name=f"{type(self).__name__}-run",
                                        daemon=True)
        self._thread.start()
        if wait:
            self._thread.join()
            if self.error is not None:
                raise self.error
            return self.result
        return None

    def stop(self) -> None:
        """Ask the running experiment to stop at its next ``report`` and wait for it."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def _report(self, fraction: float, text: str = "") -> None:
        self.progress.value = min(max(float(fraction), 0.0), 1.0)
        if text:
            self.status.value = text
        if self._stop.is_set():
            raise Stopped

    def _work(self) -> None:
        try:
            self.result = self.experiment(self._report)
            self.render(self.result)
            self.status.value = "done"
        except Stopped:
            self.status.value = "stopped"
        except Exception as exc:  # shown to the learner, and re-raised by run(wait=True)
            self.error = exc
            self.status.value = f"<span style='color:#C44E52'>error: {type(exc).__name__}</span>"
            self.show_text("".join(traceback.format_exception(exc)), stream="stderr")
        finally:
            self._set_busy(False)

    def _set_busy(self, busy: bool) -> None:
        self.run_button.disabled = busy
        self.stop_button.disabled = not busy
        if busy:
            self.progress.value = 0.0
            self.status.value = "running..."

    # -- showing -------------------------------------------------------------------------
    def show_text(self, text: str, stream: str = "stdout") -> None:
        """Append text to this dashboard's output (safe from any thread)."""
        (self.out.append_stderr if stream == "stderr" else self.out.append_stdout)(
            text if text.endswith("\n") else text + "\n")

    def show_figure(self, fig) -> None:
        """Append a matplotlib figure as a PNG to this dashboard's output and close it."""
        import matplotlib.pyplot as plt

        buf = io.BytesIO()
        fig.savefig(buf, format="png", bbox_inches="tight")
        plt.close(fig)
        png = base64.b64encode(buf.getvalue()).decode("ascii")
        self.out.outputs = (*self.out.outputs, {
            "output_type": "display_data", "metadata": {},
            "data": {"image/png": png, "text/plain": f"<Figure: {fig.get_label() or 'plot'}>"},
        })


class StoppableTraining:
    """Mixin for a :class:`Dashboard` whose experiment calls ``parallel.train``: use
    ``self.train(...)`` instead, and Stop cancels the run in progress at its next step
    (instead of waiting for it to finish)."""

    _current = None

    def train(self, model, loss, dataset, **kwargs) -> History:
        """``parallel.train(model, loss, dataset, **kwargs)`` that Stop can interrupt; raises
        :class:`Stopped` when it does."""
        strategy = prepare(model, loss, dataset, **kwargs)
        self._current = strategy
        try:
            if self._stop.is_set():          # Stop pressed before this run started
                raise Stopped
            history = strategy.run()
        except Cancelled:
            raise Stopped from None
        finally:
            self._current = None
        if history.cancelled:
            raise Stopped
        return history

    def stop(self) -> None:
        self._stop.set()                     # first: a run starting now sees it
        current = self._current
        if current is not None:
            current.cancel.set()
        super().stop()
