"""The package's layer order (DESIGN.md, "Layout"), read from every module's imports.

A module may import only from the layers below it, and no two modules import each other
(directly or round a longer loop). Each part of mtlearn below names what it may use (the
package itself, ``mtlearn.__version__`` and the runtime it re-exports, is open to all).
"""

import ast
import pathlib

import mtlearn

ROOT = pathlib.Path(mtlearn.__file__).parent

BOTTOM = {"runtime"}
#: part of mtlearn -> the parts it may import (its own modules always)
ALLOWED = {
    "runtime": set(),
    "nn": BOTTOM,
    "data": BOTTOM,
    "viz": BOTTOM,                                   # figures from results and traces only
    "tasks": BOTTOM | {"nn", "data"},
    "parallel": BOTTOM | {"nn", "data", "tasks"},
    "bench": BOTTOM | {"nn", "data", "tasks"},
    "training": BOTTOM | {"nn", "data", "tasks", "parallel"},
    "experiments": BOTTOM | {"nn", "data", "tasks", "parallel", "bench", "viz"},
    "distributed": BOTTOM | {"nn", "data", "tasks", "parallel", "bench", "experiments", "viz"},
    "cli": BOTTOM | {"nn", "data", "tasks", "parallel", "bench", "experiments", "viz",
                     "training", "distributed", "course"},
    "widgets": BOTTOM | {"nn", "data", "tasks", "parallel", "bench", "experiments", "viz",
                         "training"},
    "course": BOTTOM | {"nn", "data", "tasks", "parallel", "bench", "experiments", "viz",
                        "training", "distributed", "widgets"},
    "__main__": {"cli"},
    "__init__": BOTTOM,
}


#: names the package re-exports from its bottom layer (``from mtlearn import info``)
REEXPORTED = {"mtlearn.info": "mtlearn.runtime.info", "mtlearn.trace": "mtlearn.runtime.trace"}


def module_name(path: pathlib.Path) -> str:
    parts = ("mtlearn", *path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: pathlib.Path) -> set[str]:
    """The mtlearn modules ``path`` imports (``from .. import nn`` counts as mtlearn.nn)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("mtlearn"):
                continue
            for alias in node.names:
                sub = REEXPORTED.get(f"{target}.{alias.name}", f"{target}.{alias.name}")
                where = ROOT.parent / sub.replace(".", "/")
                found.add(sub if where.with_suffix(".py").exists() or where.is_dir()
                          else target)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("mtlearn")}
    return found - {name}


def part(module: str) -> str:
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else "__init__"


GRAPH = {module_name(p): imports(p) for p in sorted(ROOT.rglob("*.py"))}


def test_every_part_is_placed():
    assert {part(m) for m in GRAPH} <= set(ALLOWED), "a new part of mtlearn needs a layer"


def test_imports_only_go_down():
    wrong = sorted(f"{m} imports {t}" for m, targets in GRAPH.items() for t in targets
                   if part(t) not in (part(m), "__init__") and part(t) not in ALLOWED[part(m)])
    assert not wrong, "imports against the layer order:\n" + "\n".join(wrong)


def test_no_import_cycles():
    """Depth-first search over module imports (the package itself excluded: importing
    ``mtlearn`` runs its ``__init__``, which every module does)."""
    graph = {m: {t for t in ts if t in GRAPH and t != "mtlearn"} for m, ts in GRAPH.items()}
    state: dict[str, int] = {}
    cycles = []

    def visit(m, path):
        state[m] = 1
        for t in graph[m]:
            if state.get(t) == 1:
                cycles.append(" -> ".join([*path[path.index(t):], t]))
            elif t not in state:
                visit(t, [*path, t])
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m, [m])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_runtime_layer_needs_only_the_standard_library():
    import subprocess
    import sys

    code = ("import sys, mtlearn.runtime.checks, mtlearn.runtime.threads, mtlearn.runtime.trace, "
            "mtlearn.runtime.info; print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('numpy', 'threadpoolctl', 'matplotlib', 'ipywidgets')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
