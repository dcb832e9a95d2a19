"""``mtlearn.course`` sits at the top, beside ``widgets``: nothing else in mtlearn imports
it, and importing it does not start anything."""

import ast
import pathlib
import subprocess
import sys

import mtlearn

ROOT = pathlib.Path(mtlearn.__file__).parent


def imports_course(path: pathlib.Path) -> bool:
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            names = {a.name for a in node.names}
            if node.level == 0 and module.startswith("mtlearn.course"):
                return True
            if node.level == 0 and module == "mtlearn" and "course" in names:
                return True
            if node.level and (module.startswith("course") or (not module
                                                               and "course" in names)):
                return True
        elif isinstance(node, ast.Import):
            if any(a.name.startswith("mtlearn.course") for a in node.names):
                return True
    return False


def test_nothing_below_imports_the_course_package():
    users = [str(p.relative_to(ROOT)) for p in sorted(ROOT.rglob("*.py"))
             if "course" not in p.relative_to(ROOT).parts[:1] and imports_course(p)]
    assert users == []


def test_importing_it_starts_no_thread_and_measures_nothing():
    code = ("import threading, mtlearn.course as c; "
            "print(threading.active_count(), c.last() is None)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["1", "True"]
