"""Read a notebook's stored outputs and find where they contradict their own conditions.

Every :func:`~mtlearn.course.verdict` prints a marker with its measured value, its expected
range and the machine's calibration; every :func:`~mtlearn.course.calibrate` prints one
with how much of the machine was free. :func:`check_notebook` finds them all in the
stored outputs (the ``.ipynb`` JSON, no kernel needed) and reports:

* **contradictions** — a stored verdict outside its range that the calibration does not
  explain: on a quiet machine (or with no calibration) any result outside the range; on a
  busy machine a result on the *fast* side (a busy machine only makes results slower).
  Also a marker that disagrees with itself (its outcome or busy flag does not follow from
  its numbers): the stored text was edited by hand.
* **notes** — calibrations that found the machine busy: such outputs should be recorded
  again on a quiet machine (``tools/record_notebooks.py``).

Example: notebook 05 states "on 2 idle cores sync on 2 threads is 1.6-1.95x"; its verdict
prints ``[verdict name=sync2 measured=1.08 lo=1.6 ... calibration=1.93 capacity=2
busy=0 outcome=low]``; that is a contradiction (1.93 of 2 cores were free, yet 1.08x).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from . import markers
from .calibration import is_busy
from .verdicts import outcome as _outcome


@dataclass
class Finding:
    """One marker found in a stored output: its kind, fields and where it was."""

    kind: str
    fields: dict
    cell: int
    notebook: str = ""

    @property
    def where(self) -> str:
        return f"{self.notebook} cell {self.cell}" if self.notebook else f"cell {self.cell}"


@dataclass
class Report:
    """What :func:`check_notebook` found: ``verdicts``, ``calibrations``, and the
    ``problems`` (contradictions) and ``notes`` as sentences."""

    notebook: str
    verdicts: list[Finding] = field(default_factory=list)
    calibrations: list[Finding] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        head = (f"{self.notebook}: {len(self.verdicts)} verdicts, {len(self.calibrations)} "
                f"calibrations, {len(self.problems)} contradictions")
        return "\n".join([head, *(f"  CONTRADICTION {p}" for p in self.problems),
                          *(f"  note: {n}" for n in self.notes)])


def output_text(output: dict) -> str:
    """The text a stored output shows: a stream's text, or the ``text/plain`` of a result
    or display (HTML is left out: the same marker is in the plain text)."""
    if output.get("output_type") == "stream":
        text = output.get("text", "")
    else:
        text = (output.get("data") or {}).get("text/plain", "")
    return "".join(text) if isinstance(text, list) else str(text)


def find_markers(nb: dict, name: str = "") -> list[Finding]:
    """Every marker in the code cells' stored outputs, in order."""
    found = []
    for i, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        text = "\n".join(output_text(o) for o in cell.get("outputs", []))
        found += [Finding(kind, fields, i, name) for kind, fields in markers.find(text)]
    return found


def _check_verdict(f: Finding) -> list[str]:
    v = f.fields
    name = v.get("name", "?")
    try:
        measured, lo, hi = float(v["measured"]), float(v["lo"]), float(v["hi"])
    except (KeyError, TypeError, ValueError):
        return [f"{f.where}: verdict {name} lacks measured/lo/hi: {v}"]
    problems = []
    got = _outcome(measured, lo, hi)
    if v.get("outcome") != got:
        problems.append(f"{f.where}: verdict {name} says outcome={v.get('outcome')} but "
                        f"{measured:g} against {lo:g}-{hi:g} is {got}")
    free, cap, busy = v.get("calibration"), v.get("capacity"), v.get("busy")
    if free is not None and cap:
        if bool(busy) != is_busy(float(free), float(cap)):
            problems.append(f"{f.where}: verdict {name} says busy={busy} but {free:g} of "
                            f"{cap:g} cores free is {'busy' if not busy else 'quiet'}")
    if got == "ok":
        return problems
    slow = {"higher": "low", "lower": "high"}.get(v.get("better", "higher"), got)
    if free is None:
        problems.append(f"{f.where}: verdict {name}: {measured:g} is outside {lo:g}-{hi:g} "
                        "and no calibration was recorded to explain it")
    elif got != slow:
        problems.append(f"{f.where}: verdict {name}: {measured:g} is on the good side of "
                        f"what the text allows ({lo:g}-{hi:g}) — a busy machine cannot explain "
                        "a better result: widen the stated range or fix its conditions")
    elif not busy:
        problems.append(f"{f.where}: verdict {name}: {measured:g} is outside {lo:g}-{hi:g} "
                        f"although {free:g} of {cap:g} cores were free: the stored output "
                        "contradicts the text's conditions")
    return problems


def check_notebook(nb, name: str | None = None) -> Report:
    """Check one notebook (a path to an ``.ipynb`` or its JSON as a dict); see the module
    docstring for what counts as a contradiction."""
    if isinstance(nb, str | Path):
        path = Path(nb)
        name = name or path.name
        nb = json.loads(path.read_text(encoding="utf-8"))
    name = name or ""
    report = Report(name)
    for f in find_markers(nb, name):
        if f.kind == "verdict":
            report.verdicts.append(f)
            report.problems += _check_verdict(f)
        else:
            report.calibrations.append(f)
            c = f.fields
            if c.get("busy"):
                report.notes.append(f"{f.where}: recorded on a busy machine ({c.get('free')} "
                                    f"of {c.get('capacity')} cores free): record it again "
                                    "on a quiet machine")
    meta = ((nb.get("metadata") or {}).get("mtlearn") or {}).get("recording") or {}
    cal = meta.get("calibration") or {}
    if cal and cal.get("busy"):
        report.notes.append(f"{name}: the recording started on a busy machine "
                            f"({cal.get('free')} of {cal.get('capacity')} cores free)")
    return report


def check_notebooks(paths) -> list[Report]:
    """:func:`check_notebook` for each path, in order."""
    return [check_notebook(p) for p in paths]
