"""The repository's scripts (``run.py``, ``benchmarks/*.py``, ``tools/*.py``) loaded as modules,
for the tests that call their functions: they are files at known places, not in the package."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_script(relative: str, name: str | None = None):
    """The module executed from ``ROOT / relative`` (e.g. ``"benchmarks/gil_held.py"``),
    registered under ``name`` (default: the file's stem)."""
    path = ROOT / relative
    spec = importlib.util.spec_from_file_location(name or path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
