"""Predict, then reveal: the learner's guess is stored before the measurement runs.

    p = predict("With 2 threads, how many times faster than serial will sync be?",
                key="05.sync2", unit="x")
    p                                   # a text box and Save (a dropdown for choices)
    ...                                 # the measurement
    reveal("05.sync2", 1.87)            # "You guessed 1.50x; measured 1.87x: ..."
    predictions("05.")                  # every guess of notebook 05 against its measurement

A guess is kept in this kernel and in a JSON file in the user's cache directory
(``~/.cache/mtlearn/predictions.json`` on Linux; ``MTLEARN_CACHE_DIR`` overrides it), so
the summary at the end of a notebook still has it after a kernel restart. Nothing waits
for the learner: run without anyone pressing Save (nbval, a recording), every guess is
None and shows as "no guess recorded".
"""

from __future__ import annotations

import datetime
import json
import os
import re
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from ..runtime import checks
from . import markers
from .verdicts import fmt

#: environment variable naming the directory for the guesses file
CACHE_ENV = "MTLEARN_CACHE_DIR"
FILE_NAME = "predictions.json"

_store: dict[str, dict] = {}       # key -> record, this kernel's guesses and measurements
_lock = threading.RLock()


def cache_dir() -> Path:
    """Where mtlearn keeps a learner's files: ``$MTLEARN_CACHE_DIR``, else the platform's
    cache directory (``$XDG_CACHE_HOME`` or ``~/.cache`` on Linux, ``~/Library/Caches`` on
    macOS, ``%LOCALAPPDATA%`` on Windows) + ``mtlearn``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "mtlearn"


def store_path() -> Path:
    """The JSON file holding every guess (see :func:`cache_dir`)."""
    return cache_dir() / FILE_NAME


def _now() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def _read_file() -> dict[str, dict]:
    try:
        doc = json.loads(store_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    found = doc.get("predictions") if isinstance(doc, dict) else None
    return {k: v for k, v in (found or {}).items() if isinstance(v, dict)}


def _write_file(key: str, record: dict) -> str | None:
    """Merge ``record`` into the file; returns None, or why it could not be written."""
    path = store_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        found = _read_file()
        found[key] = record
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"version": 1, "predictions": found}, indent=1),
                       encoding="utf-8")
        os.replace(tmp, path)               # readers never see half a file
    except OSError as exc:
        return f"kept in this kernel only (cannot write {path}: {exc.strerror or exc})"
    return None


def _record(key: str) -> dict | None:
    """This kernel's record of ``key``, read from the file if the kernel has none."""
    with _lock:
        if key not in _store:
            found = _read_file().get(key)
            if found is not None:
                _store[key] = found
        return _store.get(key)


def _parse_float(text: str, unit: str) -> float:
    """A learner's number: ``1.5``, ``1,5``, ``1.5x``, `` 20 % ``."""
    t = text.strip().replace(",", ".")
    for suffix in (unit, "x", "%"):
        if suffix and t.endswith(suffix):
            t = t[: -len(suffix)].strip()
    value = float(t)                        # ValueError for anything else
    return checks.number("guess", value)


def _show(value, kind: str, unit: str, digits: int | None = None) -> str:
    if value is None:
        return "no guess recorded"
    if kind == "float":
        return fmt(float(value), unit, digits)
    return str(value)


class Prediction:
    """One question, its input and Save button (``.widget``), and the stored guess.

    Displaying it shows the widget (text for the plain-text view); :meth:`save` is what
    Save does, callable from code and tests.
    """

    def __init__(self, key: str, question: str, kind: str, choices: tuple[str, ...],
                 unit: str):
        import ipywidgets as W

        self.key, self.question, self.kind, self.choices, self.unit = (
            key, question, kind, choices, unit)
        rec = _record(key)
        prior = None if rec is None else rec.get("guess")
        with _lock:
            new = {"key": key, "question": question, "kind": kind, "choices": list(choices),
                   "unit": unit, "guess": prior,
                   "guessed_at": None if rec is None else rec.get("guessed_at"),
                   "measured": None if rec is None else rec.get("measured"),
                   "measured_at": None if rec is None else rec.get("measured_at")}
            _store[key] = new
        if kind == "float":
            self.input = W.Text(value="" if prior is None else f"{prior:g}",
                                placeholder=f"your guess{', in ' + unit if unit else ''}",
                                layout=W.Layout(width="180px"))
        else:
            self.input = W.Dropdown(options=list(choices),
                                    value=prior if prior in choices else None,
                                    layout=W.Layout(width="240px"))
        self.button = W.Button(description="Save my guess", icon="check",
                               layout=W.Layout(width="auto"))
        self.status = W.HTML(self._status_text())
        self.button.on_click(lambda _: self._on_save())
        self.widget = W.VBox([W.HTML(f"<b>Predict.</b> {_escape(question)}"),
                              W.HBox([self.input, self.button, self.status])])
        self.widget.add_class("mtlearn-predict")

    @property
    def guess(self):
        """The stored guess (a float, one of the choices) or None."""
        rec = _record(self.key)
        return None if rec is None else rec.get("guess")

    def _status_text(self) -> str:
        g = self.guess
        return ("<i>no guess recorded yet</i>" if g is None
                else f"saved: {_escape(_show(g, self.kind, self.unit))}")

    def _on_save(self) -> None:
        value = self.input.value
        try:
            self.save(value)
        except (TypeError, ValueError) as exc:
            self.status.value = f"<span style='color:#C44E52'>{_escape(str(exc))}</span>"

    def save(self, value) -> None:
        """Store ``value`` as the guess (a number or text like ``"1.5x"`` for a numeric
        question; one of the choices otherwise) in this kernel and in the file."""
        if self.kind == "float":
            if isinstance(value, str):
                try:
                    value = _parse_float(value, self.unit)
                except ValueError:
                    raise ValueError(f"not a number: {value!r}") from None
            else:
                value = checks.number("guess", value)
        else:
            value = checks.choice("guess", value, self.choices)
        with _lock:
            rec = _store.setdefault(self.key, {"key": self.key, "question": self.question,
                                               "kind": self.kind, "unit": self.unit,
                                               "choices": list(self.choices)})
            rec["guess"] = value
            rec["guessed_at"] = _now()
            problem = _write_file(self.key, dict(rec))
        self.status.value = self._status_text() + (f" <i>({_escape(problem)})</i>"
                                                   if problem else "")

    def text(self) -> str:
        return (f"Predict: {self.question} [your guess: "
                f"{_show(self.guess, self.kind, self.unit)}]")

    def __repr__(self) -> str:
        return self.text()

    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = self.widget._repr_mimebundle_(include=include, exclude=exclude) or {}
        if isinstance(bundle, tuple):              # (data, metadata)
            bundle = bundle[0]
        return {**bundle, "text/plain": self.text()}


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _default_key(question: str) -> str:
    words = re.findall(r"[A-Za-z0-9]+", question.lower())[:6]
    return "-".join(words) or "question"


def predict(question: str, answer_kind=float, key: str | None = None, *, unit: str = "",
            ) -> Prediction:
    """Ask ``question`` before a measurement and keep the learner's answer.

    ``answer_kind`` is ``float`` (a number: a text box taking ``1.5``, ``1.5x``...) or a
    list of choices (a dropdown). ``key`` names the question for :func:`reveal` and
    :func:`predictions` (default: from the question's first words; notebooks use
    ``"05.sync2"`` style keys so that ``predictions("05.")`` lists theirs). ``unit`` is
    shown after numbers (``"x"``, ``"%"``, ``"ms"``). A guess saved in an earlier session
    under the same key is shown and kept.
    """
    if not isinstance(question, str) or not question.strip():
        raise TypeError(f"question must be a non-empty str, got {question!r}")
    key = markers.token("key", _default_key(question) if key is None else key)
    unit = "" if not unit else markers.token("unit", unit)
    if answer_kind in (float, "float"):
        kind, choices = "float", ()
    elif isinstance(answer_kind, Sequence) and not isinstance(answer_kind, str):
        choices = tuple(str(c) for c in answer_kind)
        if len(choices) < 2 or len(set(choices)) != len(choices):
            raise ValueError(f"answer_kind must be float or at least two different choices, "
                             f"got {answer_kind!r}")
        kind = "choice"
    else:
        raise TypeError(f"answer_kind must be float or a list of choices, got {answer_kind!r}")
    return Prediction(key, question.strip(), kind, choices, unit)


class Reveal:
    """The guess for one question against its measurement; ``str()`` is the sentence."""

    def __init__(self, key: str, record: dict, digits: int | None):
        self.key, self.record, self.digits = key, record, digits

    @property
    def guess(self):
        return self.record.get("guess")

    @property
    def measured(self):
        return self.record.get("measured")

    @property
    def error(self) -> float | None:
        """guess - measured for a numeric question (None without a guess or for choices)."""
        if self.record.get("kind") != "float" or self.guess is None:
            return None
        return float(self.guess) - float(self.measured)

    def text(self) -> str:
        r, d = self.record, self.digits
        kind, unit = r.get("kind", "float"), r.get("unit", "")
        m = _show(self.measured, kind, unit, d)
        if self.guess is None:
            ran = "" if r.get("question") else " (its Predict cell was not run)"
            return f"No guess recorded{ran}; measured: {m}."
        g = _show(self.guess, kind, unit, d)
        late = (" (saved after the measurement)" if r.get("guessed_at") and r.get("measured_at")
                and r["guessed_at"] > r["measured_at"] else "")
        if kind != "float":
            return (f"You guessed {g}{late}; measured: {m} — "
                    f"{'right' if self.guess == self.measured else 'not this time'}.")
        err = self.error
        rel = abs(err) / abs(float(self.measured)) if float(self.measured) else float("inf")
        if rel <= 0.05:
            how = "within 5% of the measurement"
        else:
            side = "below" if err < 0 else "above"
            pct = f"{rel:.0%}" if rel != float("inf") else "far"
            how = f"{fmt(abs(err), unit, d)} {side} the measurement ({pct})"
        return f"You guessed {g}{late}; measured: {m} — {how}."

    def __str__(self) -> str:
        return self.text()

    __repr__ = __str__


def reveal(key: str, measured, *, digits: int | None = None) -> Reveal:
    """Store ``measured`` for the question ``key`` and show the guess against it."""
    key = markers.token("key", key)
    with _lock:
        rec = _record(key)
        if rec is None:
            rec = _store.setdefault(key, {"key": key, "question": "", "kind": "float",
                                          "unit": "", "choices": [], "guess": None})
        kind = rec.get("kind", "float")
        rec["measured"] = (checks.number("measured", measured) if kind == "float"
                           else str(measured))
        rec["measured_at"] = _now()
        if rec.get("question"):
            _write_file(key, dict(rec))
    return Reveal(key, dict(rec), digits)


class Predictions:
    """The guesses of a notebook against the measurements (``rows``: plain dicts)."""

    def __init__(self, rows: list[dict]):
        self.rows = rows

    def _cells(self) -> list[tuple[str, str, str, str]]:
        out = []
        for r in self.rows:
            kind, unit = r.get("kind", "float"), r.get("unit", "")
            g = r.get("guess")
            m = r.get("measured")
            guess = "—" if g is None else _show(g, kind, unit)
            meas = "not measured yet" if m is None else _show(m, kind, unit)
            if g is None or m is None:
                err = ""
            elif kind == "float":
                err = fmt(float(g) - float(m), unit)
                if not err.startswith("-"):
                    err = "+" + err
            else:
                err = "right" if g == m else "wrong"
            out.append((r.get("question") or r["key"], guess, meas, err))
        return out

    def __str__(self) -> str:
        if not self.rows:
            return "No predictions yet."
        lines = ["your guesses against the measurements:"]
        for q, g, m, e in self._cells():
            lines.append(f"  {q}\n    guess {g} · measured {m}" + (f" · error {e}" if e else ""))
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        if not self.rows:
            return "<p>No predictions yet.</p>"
        head = ("<tr><th style='text-align:left'>question</th><th>your guess</th>"
                "<th>measured</th><th>error</th></tr>")
        body = "".join(f"<tr><td style='text-align:left'>{_escape(q)}</td><td>{_escape(g)}</td>"
                       f"<td>{_escape(m)}</td><td>{_escape(e)}</td></tr>"
                       for q, g, m, e in self._cells())
        return f"<table>{head}{body}</table>"


def predictions(prefix: str = "") -> Predictions:
    """Every question whose key starts with ``prefix`` asked in this kernel or stored in
    the file (after a restart), in the order they were asked."""
    with _lock:
        rows = {k: dict(v) for k, v in _read_file().items() if k.startswith(prefix)}
        rows.update({k: dict(v) for k, v in _store.items() if k.startswith(prefix)})
    return Predictions(list(rows.values()))


def forget(prefix: str = "") -> None:
    """Drop the guesses whose key starts with ``prefix`` from this kernel and the file
    (``forget()`` drops them all)."""
    with _lock:
        for k in [k for k in _store if k.startswith(prefix)]:
            del _store[k]
        found = _read_file()
        kept = {k: v for k, v in found.items() if not k.startswith(prefix)}
        if kept != found:
            path = store_path()
            try:
                path.write_text(json.dumps({"version": 1, "predictions": kept}, indent=1),
                                encoding="utf-8")
            except OSError:
                pass
