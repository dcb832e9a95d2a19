"""Classroom mode: the course's key measurements in a few minutes, one JSON file per machine.

A class runs the same report on many machines and puts the files side by side (notebook
12): speedup curves per machine, the GIL build against the free-threaded one, everyone's
guesses against what their machine measured.

    python -m mtlearn report             # a few minutes; writes mtlearn-reports/<name>.json + .png
    python -m mtlearn report --quick     # seconds: the same fields from tiny workloads (tests)

    from mtlearn.course import report
    doc = report.run(quick=True)         # a dict that validates against report.SCHEMA
    report.write(doc, "mtlearn-reports") # (json path, png path)
    found = report.load_folder("class/") # found.reports, found.skipped {file: why}
    report.speedups_figure(found.reports), report.gil_figure(...), report.predictions_figure(...)
    report.button()                      # notebook 00: the questions and a Run button

What one report holds (``SCHEMA``, JSON Schema 2020-12): the machine (cores, OS), the
Python build and whether the GIL was on, numpy and its BLAS, the calibration (how much of
the machine was free), and the results — the GIL lab (``python`` and ``numpy`` workloads
at 1, 2, 4... threads, on this interpreter and on a free-threaded one if there is one),
``sync`` threads and ``process`` workers training the course CNN against ``serial``, and
one training step against the PyTorch step recorded on the 16-core machine — plus the
learner's predictions (``course.predict`` guesses, if any) and ``schema_version``. A file
whose ``schema_version`` is not :data:`SCHEMA_VERSION`, or that is not valid, is skipped by
:func:`load_folder` with the reason, never loaded half-way.
"""

from __future__ import annotations

import datetime
import json
import re
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from .. import __version__
from ..runtime import checks, info
from . import calibration as _calibration
from . import prediction as _prediction
from . import recorded as _recorded
from .figures import Table

FORMAT = "mtlearn.report"
SCHEMA_VERSION = 1
#: where the command and the button write, relative to the current folder
DEFAULT_FOLDER = "mtlearn-reports"
#: the questions a report answers, asked by :func:`questions` before it runs
QUESTIONS = {
    "report.python2": "On this Python, how many times faster does a pure-Python loop run on "
                      "2 threads than on 1?",
    "report.numpy2": "And large numpy operations on 2 threads?",
    "report.sync2": "Training the course CNN with sync on 2 threads: how many times faster "
                    "than serial?",
    "report.process2": "The same with 2 processes instead of 2 threads?",
}
#: how much work each part does: (full run, --quick)
SETTINGS = {
    False: {"calibrate": 0.3, "gil_work": 0.5, "gil_repeats": 5, "batch": 256,
            "samples": 2048, "scaling_repeats": 5, "process_repeats": 3, "step_rounds": 7,
            "step_steps": 10, "max_threads": 16, "others": True},
    True: {"calibrate": 0.05, "gil_work": 0.02, "gil_repeats": 1, "batch": 32,
           "samples": 96, "scaling_repeats": 1, "process_repeats": 1, "step_rounds": 2,
           "step_steps": 2, "max_threads": 2, "others": False},
}
STEP_BATCH = 64            # the batch of benchmarks/bench_nn.py's recorded CNN step

# ----------------------------------------------------------------------------- the schema

_NUMBERS = {"type": "array", "items": {"type": "number"}, "minItems": 1}
_COUNTS = {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 1}
_TEXT = {"type": "string", "minLength": 1}

SCHEMA: dict = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "mtlearn classroom report",
    "type": "object",
    "required": ["format", "schema_version", "mtlearn", "created", "label", "source", "quick",
                 "machine", "build", "numpy", "blas", "calibration", "results", "predictions",
                 "errors"],
    "additionalProperties": False,
    "properties": {
        "format": {"const": FORMAT},
        "schema_version": {"const": SCHEMA_VERSION},
        "mtlearn": _TEXT,
        "created": _TEXT,
        "label": _TEXT,
        "source": {"enum": ["measured", "recorded"]},
        "note": {"type": "string"},
        "quick": {"type": "boolean"},
        "machine": {
            "type": "object", "required": ["cores", "machine", "system"],
            "properties": {"cores": {"type": "integer", "minimum": 1},
                           "physical_cores": {"type": ["integer", "null"], "minimum": 1},
                           "cpu_quota": {"type": ["number", "null"]},
                           "machine": {"type": "string"}, "system": {"type": "string"}}},
        "build": {"$ref": "#/$defs/build"},
        "numpy": {"type": ["string", "null"]},
        "blas": {"type": "array", "items": {
            "type": "object", "required": ["library", "threads"],
            "properties": {"library": {"type": ["string", "null"]},
                           "threads": {"type": ["integer", "null"]}}}},
        "calibration": {"anyOf": [{"type": "null"}, {
            "type": "object", "required": ["free", "capacity", "busy"],
            "properties": {"free": {"type": "number", "minimum": 0},
                           "capacity": {"type": "number", "minimum": 0},
                           "busy": {"type": "boolean"}}}]},
        "results": {
            "type": "object", "required": ["gil_lab", "scaling", "step"],
            "additionalProperties": False,
            "properties": {
                "gil_lab": {"type": "array", "items": {"$ref": "#/$defs/gil_lab"}},
                "scaling": {"type": "array", "items": {"$ref": "#/$defs/scaling"}},
                "step": {"anyOf": [{"type": "null"}, {"$ref": "#/$defs/step"}]}}},
        "predictions": {"type": "array", "items": {"$ref": "#/$defs/prediction"}},
        "errors": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "$defs": {
        "build": {
            "type": "object", "required": ["python", "free_threaded_build", "gil_enabled"],
            "properties": {"python": _TEXT, "implementation": {"type": "string"},
                           "free_threaded_build": {"type": "boolean"},
                           "gil_enabled": {"type": "boolean"}}},
        "gil_lab": {
            "type": "object", "required": ["build", "threads", "workloads"],
            "additionalProperties": False,
            "properties": {
                "build": {"$ref": "#/$defs/build"}, "threads": _COUNTS,
                "repeats": {"type": "integer", "minimum": 1},
                "workloads": {"type": "object", "minProperties": 1, "additionalProperties": {
                    "type": "object", "required": ["seconds", "speedup"],
                    "additionalProperties": False,
                    "properties": {"seconds": _NUMBERS, "speedup": _NUMBERS,
                                   "cpu_wall": {"type": "array",
                                                "items": {"type": ["number", "null"]}}}}}}},
        "scaling": {
            "type": "object",
            "required": ["strategy", "model", "batch", "build", "threads", "speedup", "ms",
                         "serial_ms"],
            "additionalProperties": False,
            "properties": {"strategy": _TEXT, "model": _TEXT,
                           "batch": {"type": "integer", "minimum": 1},
                           "build": {"$ref": "#/$defs/build"}, "threads": _COUNTS,
                           "speedup": _NUMBERS, "ms": _NUMBERS,
                           "serial_ms": {"type": "number", "minimum": 0},
                           "repeats": {"type": "integer", "minimum": 1}}},
        "step": {
            "type": "object", "required": ["model", "batch", "ms"],
            "additionalProperties": False,
            "properties": {"model": _TEXT, "batch": {"type": "integer", "minimum": 1},
                           "dtype": {"type": "string"}, "ms": {"type": "number", "minimum": 0},
                           "pytorch": {"anyOf": [{"type": "null"}, {
                               "type": "object",
                               "required": ["label", "mtlearn_ms", "pytorch_ms", "ratio"],
                               "properties": {"label": _TEXT,
                                              "mtlearn_ms": {"type": "number"},
                                              "pytorch_ms": {"type": "number"},
                                              "ratio": {"type": "number"},
                                              "same_machine": {"type": "boolean"}}}]}}},
        "prediction": {
            "type": "object", "required": ["key", "guess", "measured"],
            "properties": {"key": _TEXT, "question": {"type": "string"},
                           "kind": {"enum": ["float", "choice"]}, "unit": {"type": "string"},
                           "guess": {"type": ["number", "string", "null"]},
                           "measured": {"type": ["number", "string", "null"]}}},
    },
}

_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}


def _is(value, kind: str) -> bool:
    if kind in ("number", "integer"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        return kind == "number" or float(value).is_integer()
    return isinstance(value, _TYPES[kind])


def schema_errors(doc, schema: dict = SCHEMA, root: dict | None = None,
                  path: str = "$") -> list[str]:
    """Where ``doc`` breaks ``schema`` (the 2020-12 keywords SCHEMA uses: type, const, enum,
    properties, required, additionalProperties, minProperties, items, minItems, minimum,
    minLength, anyOf, $ref to ``#/$defs/...``), one sentence each; [] when it is valid."""
    root = schema if root is None else root
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/$defs/")
        return schema_errors(doc, root["$defs"][name], root, path)
    if "anyOf" in schema:
        if all(schema_errors(doc, s, root, path) for s in schema["anyOf"]):
            return [f"{path}: matches none of the allowed forms"]
        return []
    kinds = schema.get("type")
    if kinds is not None:
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if not any(_is(doc, k) for k in kinds):
            return [f"{path}: should be {' or '.join(kinds)}, not {type(doc).__name__}"]
    if "const" in schema and doc != schema["const"]:
        return [f"{path}: should be {schema['const']!r}, not {doc!r}"]
    if "enum" in schema and doc not in schema["enum"]:
        return [f"{path}: should be one of {schema['enum']}, not {doc!r}"]
    errors = []
    if isinstance(doc, dict):
        errors += [f"{path}: {k!r} is missing" for k in schema.get("required", [])
                   if k not in doc]
        if len(doc) < schema.get("minProperties", 0):
            errors.append(f"{path}: should not be empty")
        props, extra = schema.get("properties", {}), schema.get("additionalProperties", True)
        for k, v in doc.items():
            if k in props:
                errors += schema_errors(v, props[k], root, f"{path}.{k}")
            elif extra is False:
                errors.append(f"{path}: unexpected key {k!r}")
            elif isinstance(extra, dict):
                errors += schema_errors(v, extra, root, f"{path}.{k}")
    elif isinstance(doc, list):
        if len(doc) < schema.get("minItems", 0):
            errors.append(f"{path}: needs at least {schema['minItems']} item(s)")
        if "items" in schema:
            for i, v in enumerate(doc):
                errors += schema_errors(v, schema["items"], root, f"{path}[{i}]")
    elif isinstance(doc, str) and len(doc) < schema.get("minLength", 0):
        errors.append(f"{path}: should not be empty")
    elif _is(doc, "number") and "minimum" in schema and doc < schema["minimum"]:
        errors.append(f"{path}: should be at least {schema['minimum']}, not {doc}")
    return errors


def problems(doc) -> list[str]:
    """:func:`schema_errors`, then what a schema cannot say: every list of a curve is as long
    as its ``threads``, which start at 1."""
    errors = schema_errors(doc)
    if errors:
        return errors
    curves = [(f"$.results.gil_lab[{i}].workloads.{w}", r["threads"], v)
              for i, r in enumerate(doc["results"]["gil_lab"]) for w, v in r["workloads"].items()]
    curves += [(f"$.results.scaling[{i}]", s["threads"], s)
               for i, s in enumerate(doc["results"]["scaling"])]
    for where, threads, values in curves:
        if threads[0] != 1:
            errors.append(f"{where}: threads should start at 1, not {threads[0]}")
        for k in ("seconds", "speedup", "cpu_wall", "ms"):
            if k in values and len(values[k]) != len(threads):
                errors.append(f"{where}.{k}: {len(values[k])} values for {len(threads)} "
                              "thread counts")
    return errors


def validate(doc) -> dict:
    """``doc`` if it is a valid report, else ValueError listing (up to 5 of) its problems."""
    errors = problems(doc)
    if errors:
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        raise ValueError("not a valid mtlearn report: " + "; ".join(errors[:5]) + more)
    return doc


# ----------------------------------------------------------------------------- measuring


def _build(d: dict) -> dict:
    return {"python": str(d.get("python") or "?"),
            "implementation": str(d.get("implementation") or "CPython"),
            "free_threaded_build": bool(d.get("free_threaded_build")),
            "gil_enabled": bool(d.get("gil_enabled", True))}


def thread_counts(cores: int, most: int = 16) -> list[int]:
    """1, 2, 4... up to the cores (and ``most``); always 1 and 2, so that every machine of a
    class has the 2-thread point to compare."""
    cores = checks.integer("cores", cores, min=1)
    counts, n = [1, 2], 4
    while n <= min(cores, most):
        counts.append(n)
        n *= 2
    return counts


def _gil_lab(suite) -> dict:
    """One ``bench.Suite`` (``python`` and ``numpy``) as the report's ``gil_lab`` entry."""
    first = next(iter(suite.results.values()))
    return {"build": _build(suite.info), "threads": list(first.threads),
            "repeats": first.repeats,
            "workloads": {name: {"seconds": [round(s, 5) for s in r.seconds],
                                 "speedup": [round(s, 3) for s in r.speedup],
                                 "cpu_wall": [round(c, 3) for c in r.cpu_wall]}
                          for name, r in suite.results.items()}}


def _scaling(result, build: dict) -> dict:
    """An ``experiments.Scaling`` as one ``scaling`` entry (times in ms)."""
    return {"strategy": result.strategy, "model": result.model, "batch": result.batch_size,
            "build": build, "threads": list(result.threads),
            "speedup": [round(s, 3) for s in result.speedup],
            "ms": [round(1e3 * s, 3) for s in result.seconds],
            "serial_ms": round(1e3 * result.serial_seconds, 3), "repeats": result.repeats}


def recorded_pytorch() -> dict:
    """The course CNN step (batch 64, float32, one thread) recorded on the 16-core machine:
    mtlearn's and PyTorch's time in the same process, and their ratio."""
    row = next(r for r in _recorded.load("bench_nn")["rows"] if r["step"].startswith("course CNN"))
    return {"label": _recorded.LABEL, "mtlearn_ms": row["mtlearn_ms"],
            "pytorch_ms": row["pytorch_ms"], "ratio": row["ratio"], "same_machine": False}


def measure_step(rounds: int = 7, steps: int = 10, batch: int = STEP_BATCH) -> dict:
    """One training step of the course CNN (SGD, float32, BLAS at one thread) on this
    thread, on random images ``(batch, 1, 28, 28)`` with 10 classes: the median over
    ``rounds`` of the mean of ``steps`` steps, in ms, as ``benchmarks/bench_nn.py`` times
    it; with the recorded PyTorch step beside it."""
    import numpy as np

    from .. import bench, nn

    rounds = checks.integer("rounds", rounds, min=1)
    steps = checks.integer("steps", steps, min=1)
    batch = checks.integer("batch", batch, min=1)
    model = nn.course_cnn(seed=0)
    loss = nn.SoftmaxCrossEntropy()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, batch)
    opt = nn.SGD(model.params, lr=0.01)
    grads = np.empty_like(model.params)

    def step() -> None:
        model.loss_and_grads(loss, x, y, grads=grads)
        opt.step(grads)

    times = []
    with bench.blas_threads(1):
        for _ in range(3):                      # caches, allocator, BLAS
            step()
        for _ in range(rounds):
            t0 = time.perf_counter()
            for _ in range(steps):
                step()
            times.append((time.perf_counter() - t0) / steps)
    return {"model": "course CNN", "batch": batch, "dtype": "float32",
            "ms": round(1e3 * statistics.median(times), 3), "pytorch": recorded_pytorch()}


def _label(machine: dict, build: dict) -> str:
    t = "t" if build["free_threaded_build"] else ""
    return (f"{machine['cores']}-core {machine['machine']} {machine['system']}, "
            f"{build['implementation']} {build['python']}{t}")


def _guesses(measured: dict[str, float]) -> list[dict]:
    """The learner's saved guesses: each of :data:`QUESTIONS` asked here gets its
    measurement (``course.reveal``); every question of the course with a guess is kept."""
    asked = {r["key"] for r in _prediction.predictions("report.").rows}
    for key, value in measured.items():
        if key in asked:
            _prediction.reveal(key, value)
    rows = []
    for r in _prediction.predictions().rows:
        if r.get("guess") is None:
            continue
        rows.append({"key": r["key"], "question": r.get("question") or "",
                     "kind": r.get("kind") or "float", "unit": r.get("unit") or "",
                     "guess": r["guess"], "measured": r.get("measured")})
    return rows


def run(quick: bool = False, *, label: str | None = None, others: bool | None = None,
        progress: Callable[[str], None] | None = None) -> dict:
    """Measure this machine for the class; returns the report (a dict, see :data:`SCHEMA`).

    quick : seconds instead of minutes: tiny workloads, 1 and 2 threads, one round (for
        tests; its numbers are not worth comparing).
    label : how the machine is named in the class's figures (default: cores, CPU
        architecture, OS and Python, e.g. ``2-core x86_64 Linux, CPython 3.11.7``).
    others : also run the GIL lab on a free-threaded interpreter found by
        ``bench.find_interpreters()`` (default: yes, except in a quick run).
    progress : called with a line of text before each part.
    """
    from .. import bench, experiments

    quick = checks.boolean("quick", quick)
    s = SETTINGS[quick]
    others = s["others"] if others is None else checks.boolean("others", others)
    progress = checks.function("progress", progress, optional=True) or (lambda text: None)
    if label is not None and (not isinstance(label, str) or not label.strip()):
        raise TypeError(f"label must be a non-empty str, got {label!r}")
    progress("calibrating: how much of the machine is free")
    cal = _calibration.calibrate(s["calibrate"])
    facts = info.machine_info()
    machine = {k: facts.get(k) for k in ("cores", "physical_cores", "cpu_quota", "machine",
                                         "system")}
    build = _build(facts)
    counts = thread_counts(facts["cores"], s["max_threads"])
    errors: dict[str, str] = {}

    progress(f"GIL lab: python and numpy on {counts} threads")
    lab = bench.compare_interpreters([], workloads=["python", "numpy"], threads=counts,
                                     repeats=s["gil_repeats"], work=s["gil_work"])
    gil_lab = [_gil_lab(suite) for suite in lab.suites.values()]
    if others:
        found = bench.find_interpreters()
        if found:
            progress(f"GIL lab on {found[0]}")
            there = bench.compare_interpreters(
                found[:1], workloads=["python", "numpy"], threads=counts,
                repeats=s["gil_repeats"], work=s["gil_work"], include_self=False, timeout=600)
            gil_lab += [_gil_lab(suite) for suite in there.suites.values()]
            errors.update({f"gil_lab {py}": why for py, why in there.errors.items()})

    scaling = []
    for strategy, repeats in (("sync", s["scaling_repeats"]), ("process", s["process_repeats"])):
        progress(f"course CNN: {strategy} on {counts} workers against serial")
        result = experiments.measure_scaling(
            "cnn", strategy, counts, batch_size=s["batch"], samples=s["samples"],
            repeats=repeats, trace=False)
        scaling.append(_scaling(result, build))
    progress("one training step of the course CNN")
    step = measure_step(s["step_rounds"], s["step_steps"])

    mine = gil_lab[0]["workloads"]
    measured = {"report.python2": mine["python"]["speedup"][1],
                "report.numpy2": mine["numpy"]["speedup"][1],
                "report.sync2": scaling[0]["speedup"][1],
                "report.process2": scaling[1]["speedup"][1]}
    doc = {"format": FORMAT, "schema_version": SCHEMA_VERSION, "mtlearn": __version__,
           "created": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
           "label": label.strip() if label else _label(machine, build),
           "source": "measured", "quick": quick, "machine": machine, "build": build,
           "numpy": facts.get("numpy"),
           "blas": [{"library": b.get("library"), "version": b.get("version"),
                     "threads": b.get("threads"), "kernel": b.get("kernel")}
                    for b in facts.get("blas") or []],
           "calibration": cal.to_dict(), "results": {"gil_lab": gil_lab, "scaling": scaling,
                                                     "step": step},
           "predictions": _guesses(measured), "errors": errors}
    return validate(doc)


# ----------------------------------------------------------------------------- files


def file_name(doc: dict) -> str:
    """``<label as a file name>-<date and time>`` (no extension)."""
    stem = re.sub(r"[^A-Za-z0-9.]+", "-", doc["label"]).strip("-").lower()[:60] or "report"
    when = re.sub(r"[^0-9]", "", doc["created"])[:14]
    return f"{stem}-{when}"


def write(doc: dict, folder: str | Path = DEFAULT_FOLDER) -> tuple[Path, Path]:
    """Write ``doc`` as JSON and its summary figure as PNG into ``folder`` (made if needed);
    returns both paths. The JSON is validated first and written whole or not at all."""
    validate(doc)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stem = file_name(doc)
    path, png = folder / f"{stem}.json", folder / f"{stem}.png"
    tmp = folder / f".{stem}.json.tmp"
    tmp.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    summary_figure(doc).savefig(png, dpi=100, bbox_inches="tight")
    return path, png


def load(path: str | Path) -> dict:
    """The report in ``path``; ValueError saying why when it is not one this version of
    mtlearn reads (not JSON, another format, another schema version, invalid)."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ValueError("not a text file") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg}: line {exc.lineno}, column "
                         f"{exc.colno})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"not an mtlearn report (no \"format\": \"{FORMAT}\")")
    if doc.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(f"schema version {doc.get('schema_version')!r} (written by mtlearn "
                         f"{doc.get('mtlearn', '?')}); this version of mtlearn reads schema "
                         f"version {SCHEMA_VERSION}")
    return validate(doc)


@dataclass
class Loaded:
    """What :func:`load_folder` found: ``reports`` (dicts, with ``file`` added) in file-name
    order, and ``skipped``: file name -> why it was not loaded."""

    folder: str
    reports: list[dict] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        lines = [f"{len(self.reports)} report(s) loaded from {self.folder}, "
                 f"{len(self.skipped)} skipped"]
        lines += [f"  loaded   {r['file']}: {r['label']} ({r['source']})" for r in self.reports]
        lines += [f"  skipped  {name}: {why}" for name, why in self.skipped.items()]
        return "\n".join(lines)

    __repr__ = __str__


def load_folder(*folders: str | Path) -> Loaded:
    """Every ``*.json`` file in ``folders`` (default: the two shipped reports), each loaded
    with :func:`load`; those that fail are listed in ``skipped`` with the reason, never
    raised. A folder that does not exist is skipped the same way."""
    folders = folders or (shipped_folder(),)
    found = Loaded(", ".join(Path(f).name or str(f) for f in folders))
    for folder in map(Path, folders):
        if not folder.is_dir():
            found.skipped[str(folder)] = "no such folder"
            continue
        for path in sorted(folder.glob("*.json")):
            try:
                doc = load(path)
            except (OSError, ValueError) as exc:
                found.skipped[path.name] = str(exc)
                continue
            found.reports.append({**doc, "file": path.name})
    return found


def shipped_folder() -> Path:
    """The folder of the reports shipped with mtlearn: the 2-core and 16-core recordings."""
    return Path(str(resources.files(__package__).joinpath("reports")))


# ----------------------------------------------------------------------------- figures

_PALETTE = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B2", "#937860", "#DA8BC3",
            "#8C8C8C", "#CCB974", "#64B5CD")


def _names(reports: Sequence[dict]) -> list[str]:
    """Each report's label, with its file name where two labels are the same; recorded
    ones say so."""
    labels = [r["label"] for r in reports]
    out = []
    for r in reports:
        name = r["label"] + (f" [{r.get('file', '?')}]" if labels.count(r["label"]) > 1 else "")
        out.append(name + (" (recorded)" if r["source"] == "recorded" else ""))
    return out


def _build_name(build: dict) -> str:
    gil = "" if build["free_threaded_build"] and not build["gil_enabled"] else \
        " (GIL on)" if build["free_threaded_build"] else ""
    kind = "free-threaded" if build["free_threaded_build"] else "GIL build"
    return f"{build['python']}{'t' if build['free_threaded_build'] else ''} {kind}{gil}"


def _draw_speedups(ax, reports: Sequence[dict], strategy: str) -> None:
    top = 2
    for k, (r, name) in enumerate(zip(reports, _names(reports), strict=True)):
        for s in r["results"]["scaling"]:
            if s["strategy"] != strategy:
                continue
            ft = s["build"]["free_threaded_build"]
            ax.plot(s["threads"], s["speedup"], "o" + ("--" if ft else "-"), ms=4,
                    color=_PALETTE[k % len(_PALETTE)],
                    label=f"{name} · {_build_name(s['build'])}, batch {s['batch']}")
            top = max(top, *s["threads"])
    ax.plot([1, top], [1, top], ":", color="#999999", lw=1, label="ideal")
    ax.axhline(1, color="#333333", lw=0.8, ls="--")
    ax.set_xscale("log", base=2)
    ticks = [n for n in (1, 2, 4, 8, 16, 32, 64) if n <= top]
    ax.set_xticks(ticks, [str(n) for n in ticks])
    ax.minorticks_off()
    ax.set_xlabel("workers")
    ax.set_ylabel("speedup over serial")
    ax.set_ylim(bottom=0)
    ax.set_title(f"{strategy}: course CNN")


def speedups_figure(reports: Sequence[dict], strategies: Sequence[str] = ("sync", "process")):
    """One panel per strategy: every report's speedup over serial against the workers (a
    colour per machine; dashed: free-threaded), the ideal line dotted. Returns the figure."""
    from ..viz import style

    fig = style.CourseFigure(figsize=(5.2 * len(strategies) + 3.5, 3.8), layout="constrained")
    axes = fig.subplots(1, len(strategies), squeeze=False)[0]
    for ax, strategy in zip(axes, strategies, strict=True):
        _draw_speedups(ax, reports, strategy)
    handles = {}
    for ax in axes:                           # one legend for the panels, each entry once
        for h, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, h)
    handles["ideal"] = handles.pop("ideal")   # last
    style.legend_outside(axes[-1], handles=list(handles.values()))
    return fig


def _gil_points(r: dict, workload: str) -> list[tuple[str, int, float]]:
    """(build name, threads, speedup) at the largest thread count, one per interpreter."""
    out = []
    for lab in r["results"]["gil_lab"]:
        w = lab["workloads"].get(workload)
        if w is not None:
            out.append((_build_name(lab["build"]), lab["threads"][-1], w["speedup"][-1]))
    return out


def _draw_gil(ax, reports: Sequence[dict], workload: str) -> None:
    names = _names(reports)
    rows = [(k, *p) for k, r in enumerate(reports) for p in _gil_points(r, workload)]
    for i, (k, build, n, speedup) in enumerate(rows):
        ft = "free-threaded" in build
        ax.barh(i, speedup, color=_PALETTE[k % len(_PALETTE)], hatch="//" if ft else None,
                edgecolor="white")
        ax.text(speedup, i, f" {speedup:.2f}x on {n}", va="center", fontsize=7)
    ax.set_yticks(range(len(rows)), [f"{names[k]}\n{build}" for k, build, _, _ in rows],
                  fontsize=7)
    if not ax.yaxis_inverted():               # the panels share their y axis: invert it once
        ax.invert_yaxis()
    ax.axvline(1, color="#333333", lw=0.8, ls="--")
    ax.set_xlabel(f"speedup over 1 thread at the most threads ({workload})")
    ax.set_title(f"GIL lab, {workload!r} workload (hatched: free-threaded)")


def gil_figure(reports: Sequence[dict], workloads: Sequence[str] = ("python", "numpy")):
    """The GIL lab on every machine and interpreter: the speedup at the largest thread
    count for each workload, GIL build solid, free-threaded hatched. Returns the figure."""
    from ..viz import style

    rows = sum(len(_gil_points(r, workloads[0])) for r in reports)
    fig = style.CourseFigure(figsize=(5.0 * len(workloads) + 1.5, 1.0 + 0.45 * max(rows, 2)),
                             layout="constrained")
    axes = fig.subplots(1, len(workloads), squeeze=False, sharey=True)[0]
    for ax, workload in zip(axes, workloads, strict=True):
        _draw_gil(ax, reports, workload)
    return fig


def guesses(reports: Sequence[dict]) -> list[dict]:
    """Every numeric guess with its measurement across ``reports``: ``{"report", "key",
    "question", "guess", "measured"}``."""
    out = []
    for r, name in zip(reports, _names(reports), strict=True):
        for p in r["predictions"]:
            if _is(p["guess"], "number") and _is(p["measured"], "number"):
                out.append({"report": name, "key": p["key"], "question": p.get("question", ""),
                            "guess": float(p["guess"]), "measured": float(p["measured"])})
    return out


def predictions_figure(reports: Sequence[dict]):
    """Guess against measurement for every numeric prediction in ``reports`` (a colour per
    question; on the diagonal the guess was right). Returns the figure; with no guesses it
    says so on the axes."""
    from ..viz import style

    fig, ax = style.axes(figsize=(8.5, 4.0))
    rows = guesses(reports)
    keys = list(dict.fromkeys(p["key"] for p in rows))
    for k, key in enumerate(keys):
        pts = [p for p in rows if p["key"] == key]
        ax.scatter([p["guess"] for p in pts], [p["measured"] for p in pts], s=25,
                   color=_PALETTE[k % len(_PALETTE)], label=f"{key} ({len(pts)})")
    top = max([1.0] + [max(p["guess"], p["measured"]) for p in rows]) * 1.1
    ax.plot([0, top], [0, top], ":", color="#999999", lw=1, label="guess = measured")
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_xlabel("guess")
    ax.set_ylabel("measured")
    ax.set_title(f"{len(rows)} guess(es) from {len(reports)} report(s)")
    if not rows:
        ax.text(0.5, 0.5, "no guesses in these reports yet:\nrun the questions of notebook 00 "
                "before its report", transform=ax.transAxes, ha="center", va="center",
                color="#666666")
    style.legend_outside(ax)
    return fig


def _at(curve: dict, n: int, key: str = "speedup"):
    return curve[key][curve["threads"].index(n)] if n in curve["threads"] else None


def table(reports: Sequence[dict]) -> Table:
    """One row per report: cores, Python, the pure-Python loop and sync at 2 threads, the
    best sync and process speedups (and where), one step's time, the calibration."""
    def x(v) -> str:
        return "—" if v is None else f"{v:.2f}x"

    def best(r, strategy) -> str:
        cs = [s for s in r["results"]["scaling"] if s["strategy"] == strategy
              and s["build"]["free_threaded_build"] == r["build"]["free_threaded_build"]]
        if not cs:
            return "—"
        s = cs[0]
        i = max(range(len(s["speedup"])), key=s["speedup"].__getitem__)
        return f"{s['speedup'][i]:.2f}x at {s['threads'][i]}"

    rows = []
    for r, name in zip(reports, _names(reports), strict=True):
        own = r["results"]["gil_lab"][0] if r["results"]["gil_lab"] else None
        py = own and own["workloads"].get("python")
        sync = next((s for s in r["results"]["scaling"] if s["strategy"] == "sync"), None)
        cal = r["calibration"]
        step = r["results"]["step"]
        rows.append([name, r["machine"]["cores"], _build_name(r["build"]),
                     x(py and _at({"threads": own["threads"], **py}, 2)),
                     x(sync and _at(sync, 2)), best(r, "sync"), best(r, "process"),
                     "—" if step is None else f"{step['ms']:.1f} ms",
                     "—" if cal is None else f"{cal['free']:.1f} of {cal['capacity']:g}"
                     + (" (busy)" if cal["busy"] else "")])
    return Table(["machine", "cores", "Python", "python loop, 2 threads", "sync, 2 threads",
                  "best sync", "best process", f"one step (batch {STEP_BATCH})",
                  "cores free"], rows, "Speedups over 1 thread (GIL lab) and over serial "
                  "(training); recorded reports come from their own machines.")


def summary_figure(doc: dict):
    """One report at a glance (the PNG beside its JSON): the GIL lab, sync and process
    against serial, one step against the recorded PyTorch step."""
    from ..viz import style

    fig = style.CourseFigure(figsize=(15, 4.2), layout="constrained")
    ax_gil, ax_sync, ax_step = fig.subplots(1, 3, width_ratios=[1.2, 1.1, 0.8])
    rows = [(w, p) for w in ("python", "numpy") for p in _gil_points(doc, w)]
    for i, (w, (build, _, speedup)) in enumerate(rows):
        ax_gil.barh(i, speedup, color=_PALETTE[0 if w == "python" else 1],
                    hatch="//" if "free-threaded" in build else None, edgecolor="white")
        ax_gil.text(speedup, i, f" {speedup:.2f}x", va="center", fontsize=7)
    ax_gil.set_yticks(range(len(rows)), [f"{w}, {b}, {n} threads" for w, (b, n, _) in rows],
                      fontsize=7)
    ax_gil.invert_yaxis()
    ax_gil.axvline(1, color="#333333", lw=0.8, ls="--")
    ax_gil.set_xlabel("speedup over 1 thread")
    ax_gil.set_title("GIL lab (hatched: free-threaded)")
    for strategy, ls in (("sync", "-"), ("process", "--")):
        for s in doc["results"]["scaling"]:
            if s["strategy"] == strategy:
                ft = ", free-threaded" if s["build"]["free_threaded_build"] else ""
                ax_sync.plot(s["threads"], s["speedup"], "o" + ls, ms=4,
                             label=f"{strategy}{ft}, batch {s['batch']}")
    top = max([2] + [n for s in doc["results"]["scaling"] for n in s["threads"]])
    ax_sync.plot([1, top], [1, top], ":", color="#999999", lw=1, label="ideal")
    ax_sync.set_xscale("log", base=2)
    ticks = [n for n in (1, 2, 4, 8, 16, 32, 64) if n <= top]
    ax_sync.set_xticks(ticks, [str(n) for n in ticks])
    ax_sync.minorticks_off()
    ax_sync.set_ylim(bottom=0)
    ax_sync.set_xlabel("workers")
    ax_sync.set_ylabel("speedup over serial")
    ax_sync.set_title("course CNN: threads and processes")
    ax_sync.legend(fontsize=7, loc="upper left")
    step = doc["results"]["step"]
    if step is not None:
        bars = [("here: mtlearn", step["ms"], style.COLORS["measured"])]
        ref = step.get("pytorch")
        if ref:
            where = "" if ref.get("same_machine") else " (recorded)"
            bars += [(f"mtlearn{where}", ref["mtlearn_ms"], "#999999"),
                     (f"PyTorch{where}", ref["pytorch_ms"], "#666666")]
        for i, (_, ms, color) in enumerate(bars):
            ax_step.bar(i, ms, color=color)
            ax_step.text(i, ms, f"{ms:.1f}", ha="center", va="bottom", fontsize=7)
        ax_step.set_xticks(range(len(bars)), [b[0] for b in bars], fontsize=7)
        ax_step.set_ylabel("ms per step")
        ax_step.set_title(f"one step, course CNN, batch {step['batch']}")
        if ref and not ref.get("same_machine"):
            ax_step.text(0.0, -0.2, f"recorded: {ref['label']}", transform=ax_step.transAxes,
                         fontsize=6, color="#666666", va="top")
    cal = doc["calibration"]
    free = "" if cal is None else (f" · {cal['free']:.1f} of {cal['capacity']:g} cores free"
                                   + (" (BUSY)" if cal["busy"] else ""))
    fig.suptitle(f"{doc['label']}{free} · {doc['created'][:10]}"
                 + (" · quick run" if doc["quick"] else ""), fontsize=10)
    return fig


# ----------------------------------------------------------------------------- notebook 00


def questions() -> list:
    """The :data:`QUESTIONS` as ``course.predict`` boxes, to answer before the report runs."""
    return [_prediction.predict(q, key=k, unit="x") for k, q in QUESTIONS.items()]


def button(folder: str | Path = DEFAULT_FOLDER, quick: bool = False):
    """A "Run the class report" button with its output: runs :func:`run` and :func:`write`
    (a few minutes; the kernel is busy meanwhile) and shows the files and the summary."""
    import ipywidgets as W

    quick = checks.boolean("quick", quick)
    run_button = W.Button(description="Run the class report", icon="play",
                          layout=W.Layout(width="auto"))
    out = W.Output()

    def clicked(_) -> None:
        run_button.disabled = True
        out.clear_output()
        try:
            with out:
                doc = run(quick, progress=lambda text: print(text, flush=True))
                path, png = write(doc, folder)
                print(f"wrote {path}\n  and {png}: send the JSON file to your class")
                print(table([doc]))
        finally:
            run_button.disabled = False

    run_button.on_click(clicked)
    how_long = "seconds" if quick else "a few minutes"
    return W.VBox([W.HTML(f"<b>Class report.</b> Measures this machine ({how_long}) and "
                          f"writes one JSON file and a PNG into <code>{folder}</code>."),
                   run_button, out])


def explorer(*folders: str | Path):
    """Notebook 12's "Try it": folders to load (comma-separated; default the shipped
    reports), which view to show, and Run; the files loaded and skipped are listed first."""
    import ipywidgets as W
    from IPython.display import display

    views = {"speedup curves": speedups_figure, "GIL vs free-threaded": gil_figure,
             "guesses vs measurements": predictions_figure, "table": table}
    folder_box = W.Text(value=", ".join(map(str, folders or (shipped_folder(),))),
                        description="folders", layout=W.Layout(width="95%"))
    view = W.Dropdown(options=list(views), value="speedup curves", description="show",
                      layout=W.Layout(width="auto"))
    run_button = W.Button(description="Run", icon="play", layout=W.Layout(width="auto"))
    out = W.Output()

    def clicked(_) -> None:
        out.clear_output(wait=True)
        with out:
            found = load_folder(*(p.strip() for p in folder_box.value.split(",") if p.strip()))
            print(found)
            if found.reports:
                display(views[view.value](found.reports))

    run_button.on_click(clicked)
    return W.VBox([W.HTML("<b>Class explorer</b>: load a folder of reports and compare them"),
                   folder_box, W.HBox([view, run_button]), out])
