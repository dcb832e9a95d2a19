"""What a GIL-lab result ran on: :mod:`mtlearn.runtime.info`'s facts, in one place.

``build_info()`` is ``info.machine_info()`` plus the two facts the lab adds (the
interpreter's path and its switch interval). It must also work in an interpreter without
numpy — a free-threaded Python the suite runs in (:func:`.compare_interpreters`) often has
none —, where ``machine_info`` cannot look for a BLAS; there the same keys come back with
``numpy`` None and ``blas`` empty. ``describe_build`` and ``interpreter_label`` write those
facts as one line and as a short name.
"""

from __future__ import annotations

import platform
import sys

from ..runtime import info
from ..runtime.info import gil_enabled

__all__ = ["build_info", "describe_build", "gil_enabled", "interpreter_label"]


def build_info() -> dict:
    """This interpreter and machine: ``info.machine_info()`` (``cores``, ``machine``,
    ``system``, ``python``, ``implementation``, ``free_threaded_build``, ``gil_enabled``
    now, ``numpy``, ``blas``) plus ``executable`` and ``switch_interval``."""
    try:
        d = info.machine_info()
    except ImportError:                     # no numpy (or no threadpoolctl) in this Python
        d = {"cores": info.cpu_count(), "machine": platform.machine(),
             "system": platform.system(), "python": platform.python_version(),
             "implementation": platform.python_implementation(),
             "free_threaded_build": info.free_threaded_build(), "numpy": None, "blas": []}
    d["gil_enabled"] = gil_enabled()        # after the imports: one may have turned it on
    d["executable"] = sys.executable
    d["switch_interval"] = sys.getswitchinterval()
    return d


def interpreter_label(i: dict) -> str:
    """Short name of an interpreter from its :func:`build_info`, e.g.
    ``3.13.5t free-threaded (GIL off)``."""
    t = "t" if i.get("free_threaded_build") else ""
    build = "free-threaded" if i.get("free_threaded_build") else "GIL build"
    gil = "on" if i.get("gil_enabled") else "off"
    return f"{i.get('python', '?')}{t} {build} (GIL {gil})"


def describe_build(i: dict) -> str:
    """One line from :func:`build_info`: Python version and build, GIL state, cores, numpy
    and BLAS."""
    build = "free-threaded build" if i.get("free_threaded_build") else "GIL build"
    blas = ", ".join(f"{b.get('library')} {b.get('version') or ''}".strip()
                     for b in i.get("blas") or [] if b.get("api") == "blas") or "no BLAS found"
    numpy = f"numpy {i['numpy']}" if i.get("numpy") else "no numpy"
    return (f"{i.get('implementation', 'Python')} {i.get('python', '?')}, {build}, GIL "
            f"{'on' if i.get('gil_enabled') else 'off'} now · {i.get('cores', '?')} cores · "
            f"{numpy} · {blas}")
