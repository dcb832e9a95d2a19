"""The dashboard frame every lab shares: controls, Run and Stop, progress, its own output.

A lab is built in two steps. Its ``__init__`` makes its controls (sliders, dropdowns...)
after ``super().__init__()``, so ``lab.threads_slider.value = 4`` works at once; the layout
that shows them is put together the first time the dashboard is displayed (or ``.widget``
is read), when the lab is complete. The frame never calls a lab's methods from
``__init__``.

A cell ending in the lab shows it (``_repr_mimebundle_``). Its plain-text form, which a
page reloaded without its kernel shows in place of the widgets, says to run the cell again.

The experiment runs on a worker thread so the notebook stays responsive and the Stop button
works. Stop sets one ``threading.Event``, :attr:`Dashboard.cancel`: a lab passes it to
``parallel.train(cancel=...)``, which stops the run at its next step and returns what it
has (``history.cancelled``); between two pieces of work, ``report`` raises :class:`Stopped`
once it is set. Everything the dashboard shows goes into its own ``Output`` widget
explicitly (text as ``<pre>`` HTML, figures as PNG): since ipykernel 7, output printed from
another thread is not routed to the cell by itself. Errors are shown, never swallowed.

Drive a dashboard from code exactly as a learner would: set the controls' ``.value`` and
call ``run()`` (which waits and returns the result), or ``run(wait=False)`` as the Run
button does.
"""

from __future__ import annotations

import base64
import html
import io
import math
import threading
import traceback

import ipywidgets as W

#: Status colour of an error.
ERROR_COLOR = "#C44E52"
#: Width of a slider's track and readout, after its label.
SLIDER_WIDTH = "24em"


class Stopped(Exception):
    """Raised by ``report`` inside an experiment once the learner pressed Stop."""


class Dashboard:
    """Base class: a lab makes its controls in ``__init__`` (after ``super().__init__()``)
    and defines ``controls()``, ``experiment(report)`` and, if the default does not fit,
    ``render(result)``.

    ``controls()`` returns the controls to show, in order (called once, when the dashboard
    is first displayed). ``experiment(report)`` does the work with the controls' current
    values and returns a result; it calls ``report(fraction, text)`` between pieces of
    work, which updates the progress bar and raises :class:`Stopped` once Stop was pressed,
    and passes :attr:`cancel` to ``parallel.train``. A result that stopped part way has
    ``stopped = True`` and is shown as such. ``render(result)`` shows ``result.summary()``
    and every figure of ``result.figures()``.
    """

    title = "Dashboard"

    def __init__(self) -> None:
        self.run_button = W.Button(description="Run", button_style="primary", icon="play",
                                   tooltip="run the experiment with these settings")
        self.stop_button = W.Button(description="Stop", icon="stop", disabled=True,
                                    tooltip="stop the run at its next step")
        self.progress_bar = W.FloatProgress(value=0.0, min=0.0, max=1.0,
                                            layout=W.Layout(width="200px"))
        self.status_html = W.HTML()
        self.out = W.Output()
        #: Set by Stop (and cleared by Run): pass it to ``parallel.train(cancel=...)``.
        self.cancel = threading.Event()
        self.result = None
        self.error: BaseException | None = None
        self._status = ""
        self._thread: threading.Thread | None = None
        self._widget: W.VBox | None = None
        self.run_button.on_click(lambda _: self.run(wait=False))
        self.stop_button.on_click(lambda _: self.stop())

    # -- to override ---------------------------------------------------------------------
    def controls(self) -> list[W.Widget]:
        """The widgets a learner changes (sliders, dropdowns...), made in ``__init__``."""
        return []

    def experiment(self, report):
        """Run the experiment with the controls' current values; return its result."""
        raise NotImplementedError

    def render(self, result) -> None:
        """Show ``result``: its ``summary()`` and each of its ``figures()``."""
        self.show_text(result.summary())
        for fig in result.figures():
            self.show_figure(fig)

    # -- showing the dashboard -----------------------------------------------------------
    @property
    def widget(self) -> W.VBox:
        """The dashboard as one widget: title, controls, Run/Stop/progress/status, output.
        Built the first time it is needed."""
        if self._widget is None:
            controls = list(self.controls())
            align_labels(controls)
            self._widget = W.VBox([
                W.HTML(f"<b>{html.escape(self.title)}</b>"),
                W.VBox(controls),
                W.HBox([self.run_button, self.stop_button, self.progress_bar,
                        self.status_html]),
                self.out,
            ])
            self._widget.add_class("mtlearn-dashboard")   # a stable hook for tests and CSS
        return self._widget

    def _repr_mimebundle_(self, include=None, exclude=None, **kwargs):
        """What a notebook shows for a cell ending in the lab: the widget, and in plain text
        (what a page reloaded without its kernel shows) how to get it back."""
        bundle = dict(self.widget._repr_mimebundle_(include=include, exclude=exclude,
                                                    **kwargs) or {})
        bundle["text/plain"] = self.hint()
        return bundle

    def hint(self) -> str:
        """One line: what this is and how to show it."""
        return (f"{self.title} (a dashboard): run this cell to show it; its controls need a "
                "running kernel")

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.hint()}>"

    # -- running -------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def status(self) -> str:
        """The status line as plain text: "running...", "done", "stopped", "error: ..." or
        the last progress message."""
        return self._status

    def run(self, wait: bool = True):
        """Start the experiment on a worker thread. With ``wait`` (the default, for code and
        tests) block until it ends and return its result, re-raising its error."""
        if self.running:
            self._set_status("already running")
            return None
        self.cancel.clear()
        self.error = None
        self.result = None
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
        """Ask the running experiment to stop (at its next training step, or its next
        ``report``) and wait for it."""
        self.cancel.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def progress(self, fraction: float, text: str = "") -> None:
        """Move the progress bar to ``fraction`` (0 to 1) and show ``text``; never raises,
        so it is safe inside ``parallel.train``'s ``on_step``."""
        self.progress_bar.value = min(max(float(fraction), 0.0), 1.0)
        if text:
            self._set_status(text)

    def _report(self, fraction: float, text: str = "") -> None:
        self.progress(fraction, text)
        if self.cancel.is_set():
            raise Stopped

    def _work(self) -> None:
        try:
            result = self.experiment(self._report)
            self.result = result
            self.render(result)
            self._set_status("stopped" if getattr(result, "stopped", False) else "done")
        except Stopped:
            self._set_status("stopped")
        except Exception as exc:  # shown to the learner, and re-raised by run(wait=True)
            self.error = exc
            self._set_status(f"error: {type(exc).__name__}", color=ERROR_COLOR)
            self.show_error("".join(traceback.format_exception(exc)))
        finally:
            self._set_busy(False)

    def _set_status(self, text: str, color: str | None = None) -> None:
        self._status = text
        shown = html.escape(text)
        self.status_html.value = (f"<span style='color:{color}'>{shown}</span>" if color
                                  else shown)

    def _set_busy(self, busy: bool) -> None:
        self.run_button.disabled = busy
        self.stop_button.disabled = not busy
        if busy:
            self.progress_bar.value = 0.0
            self._set_status("running...")

    # -- showing results -----------------------------------------------------------------
    def show_text(self, text: str) -> None:
        """Append text (a summary, a table) to this dashboard's output, in a monospace block
        that keeps its lines as they are: columns stay aligned and no word is cut at the
        edge (a wide block scrolls). Safe from any thread."""
        block = ("<pre style='white-space: pre; overflow-x: auto; margin: 0.3em 0; "
                 "font-family: var(--jp-code-font-family, monospace); font-size: 12px; "
                 f"line-height: 1.35'>{html.escape(text.rstrip())}</pre>")
        self._append({"output_type": "display_data", "metadata": {},
                      "data": {"text/html": block, "text/plain": text.rstrip()}})

    def show_error(self, text: str) -> None:
        """Append text to this dashboard's output as an error (stderr)."""
        self._append({"output_type": "stream", "name": "stderr",
                      "text": text if text.endswith("\n") else text + "\n"})

    def show_figure(self, fig) -> None:
        """Append a matplotlib figure as a PNG to this dashboard's output and close it."""
        import matplotlib.pyplot as plt

        buf = io.BytesIO()
        fig.savefig(buf, format="png", bbox_inches="tight")
        plt.close(fig)
        png = base64.b64encode(buf.getvalue()).decode("ascii")
        self._append({"output_type": "display_data", "metadata": {},
                      "data": {"image/png": png,
                               "text/plain": f"<Figure: {fig.get_label() or 'plot'}>"}})

    def _append(self, output: dict) -> None:
        self.out.outputs = (*self.out.outputs, output)


def _option_texts(control) -> list[str]:
    """The texts a Dropdown or ToggleButtons shows for its options."""
    return [str(o[0]) if isinstance(o, tuple) else str(o) for o in control.options]


def align_labels(controls: list[W.Widget]) -> None:
    """Give every control's description one width, that of the longest (plus a margin), so
    no label is cut short and the controls line up; widen dropdowns and toggle buttons to
    their longest option and checkboxes to their text.

    Widths are in ``ch`` (the width of "0" in the widget's font). Most letters are narrower
    (a line of lowercase prose averages about 0.75 ch a character), so a label of n
    characters fits in n + 2 ch whatever its letters, and an option, usually prose, in
    0.85 n + 6 ch (the select's arrow included).
    """
    described = [c for c in controls
                 if getattr(c, "description", "") and not isinstance(c, W.Checkbox | W.Button)]
    label = f"{max(len(c.description) for c in described) + 2}ch" if described else "0px"
    for c in controls:
        if isinstance(c, W.Checkbox):
            c.indent = True                     # its box lines up with the controls above
            c.style.description_width = label
            c.layout.width = f"calc({label} + {len(c.description) + 6}ch)"
        elif isinstance(c, W.ToggleButtons):
            c.style.description_width = label
            c.style.button_width = f"{max(map(len, _option_texts(c)), default=1) + 4}ch"
            # A row, label then buttons, styled as every other labelled control: without
            # this class its box is a block and the label sits on a line of its own.
            c.add_class("widget-inline-hbox")
        elif isinstance(c, W.Dropdown):
            c.style.description_width = label
            longest = max(map(len, _option_texts(c)), default=1)
            c.layout.width = f"calc({label} + {math.ceil(0.85 * longest) + 6}ch)"
        elif getattr(c, "description", "") and hasattr(c, "style"):
            c.style.description_width = label
            if c.layout.width is None:
                c.layout.width = f"calc({label} + {SLIDER_WIDTH})"
