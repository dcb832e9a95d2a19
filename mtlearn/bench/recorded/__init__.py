"""Measurements recorded on a known machine, shipped with the package.

Some results need what a learner's machine may not have — above all a free-threaded CPython
to compare with. The notebooks then show these instead, labelled with the machine, the
builds and the date they came from (``about``). Load them with::

    from mtlearn.bench import recorded
    comparison = recorded.comparison()       # a bench.Comparison, as if just measured
    recorded.about()                          # where, when, on what, and how
    recorded.races()                          # lost updates on each build: {label: bench.Races}
    recorded.about(recorded.RACES)

``record()`` is how a comparison was made: it runs :func:`mtlearn.bench.compare_interpreters`
and writes the result without machine paths (interpreters are named by their build, e.g.
``3.13.5t free-threaded (GIL off)``); ``record_races()`` does the same for
:func:`mtlearn.bench.races`.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
from importlib import resources
from pathlib import Path

from ..interpreters import Comparison, compare_interpreters
from ..races import Races, races_in

#: The recorded comparison of a GIL build with a free-threaded build.
GIL_VS_FREE_THREADED = "gil_vs_freethreaded"
#: Lost updates (``bench.races``) recorded on a GIL build and a free-threaded build.
RACES = "races"


def load(name: str = GIL_VS_FREE_THREADED) -> dict:
    """The recorded JSON document ``name`` (``{"about": {...}, "suites": {...}}``)."""
    path = resources.files(__name__).joinpath(f"{name}.json")
    if not path.is_file():
        names = sorted(p.name[:-5] for p in resources.files(__name__).iterdir()
                       if p.name.endswith(".json"))
        raise ValueError(f"no recorded result {name!r}; there are {names}")
    return json.loads(path.read_text(encoding="utf-8"))


def about(name: str = GIL_VS_FREE_THREADED) -> dict:
    """Where and how ``name`` was recorded: ``machine``, ``date``, ``pythons``, ``note``,
    ``settings``."""
    return dict(load(name)["about"])


def comparison(name: str = GIL_VS_FREE_THREADED) -> Comparison:
    """The recorded :class:`~mtlearn.bench.Comparison` (``rows()``, ``table()``...)."""
    return Comparison.from_dict(load(name))


def record(pythons, path, *, machine: str, note: str = "", **settings) -> dict:
    """Run :func:`~mtlearn.bench.compare_interpreters` on ``pythons`` (with this
    interpreter first) and write it to ``path`` as JSON, interpreters keyed by their build
    label and executables reduced to their file names. ``settings`` go to
    ``compare_interpreters`` (``workloads``, ``threads``, ``repeats``, ``work``). Refuses to
    write when an interpreter failed. Returns the document."""
    result = compare_interpreters(pythons, **settings)
    if result.errors:
        raise RuntimeError("not recorded: " + "; ".join(result.errors.values()))
    suites = {}
    for suite in result.suites.values():
        d = suite.to_dict()
        d["info"] = {**d["info"], "executable": os.path.basename(d["info"]["executable"])}
        suites[suite.label] = d
    doc = {"about": {"machine": machine, "date": datetime.date.today().isoformat(),
                     "system": f"{platform.system()} {platform.machine()}",
                     "pythons": list(suites), "note": note, "settings": settings},
           "suites": suites, "errors": {}}
    Path(path).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return doc


def races(name: str = RACES) -> dict[str, Races]:
    """The recorded :class:`~mtlearn.bench.Races` of each interpreter, by its build label
    (e.g. ``3.13.5t free-threaded (GIL off)``), in the order they were run."""
    return {label: Races.from_dict(r) for label, r in load(name)["races"].items()}


def record_races(pythons, path, *, machine: str, note: str = "", **settings) -> dict:
    """Run :func:`~mtlearn.bench.races` in each of ``pythons`` (subprocesses, one after the
    other) and write them to ``path`` as JSON, keyed by their build label; ``settings`` go
    to :func:`~mtlearn.bench.races_in` (``threads``, ``repeats``, ``counter_updates``...).
    Executables are already reduced to their file names. Returns the document."""
    found = {}
    for python in pythons:
        r = races_in(python, **settings)
        found[r.label] = r.to_dict()
    doc = {"about": {"machine": machine, "date": datetime.date.today().isoformat(),
                     "system": f"{platform.system()} {platform.machine()}",
                     "pythons": list(found), "note": note, "settings": settings},
           "races": found}
    Path(path).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return doc
