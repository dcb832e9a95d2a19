"""Measurements recorded on a known machine, shipped with the package.

Some results need what a learner's machine may not have — above all a free-threaded CPython
to compare with. The notebooks then show these instead, labelled with the machine, the
builds and the date they came from (``about``). Load them with::

    from mtlearn.bench import recorded
    comparison = recorded.comparison()       # a bench.Comparison, as if just measured
    recorded.about()                          # where, when, on what, and how

``record()`` is how a file was made: it runs :func:`mtlearn.bench.compare_interpreters` and
writes the result without machine paths (interpreters are named by their build, e.g.
``3.13.5t free-threaded (GIL off)``).
"""

from __future__ import annotations

import datetime
import json
import os
import platform
from importlib import resources
from pathlib import Path

from ..interpreters import Comparison, compare_interpreters

#: The recorded comparison of a GIL build with a free-threaded build.
GIL_VS_FREE_THREADED = "gil_vs_freethreaded"


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
