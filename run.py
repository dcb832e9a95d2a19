#!/usr/bin/env python3
"""The two entry points of mtlearn, each setting up what it needs first.

    python3 run.py course   # JupyterLab on notebooks/
    python3 run.py test     # the whole test suite: tests/ and the notebooks under nbval

Both create (or reuse) a virtual environment in .venv and install the package there with
the extras they need; a change to pyproject.toml triggers a re-install. Extra arguments are
passed on to JupyterLab or pytest.

`test` then runs tests/ again on a free-threaded CPython (GIL off), if there is one:
$MTLEARN_FT_PYTHON, or the one `bash .ci/freethreaded.sh` builds. Before that,
.ci/check_freethreaded.py checks that the GIL stays off after importing mtlearn and that
pure-Python code speeds up on 2 threads there.
"""

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")
EXTRAS = {"course": "course,mpi", "test": "test,course,mpi"}
FT_PYTHON = Path.home() / ".cache/mtlearn/venv313t/bin/python"  # made by .ci/freethreaded.sh


def ensure_env(extras: str) -> None:
    """Create .venv and install mtlearn[extras] unless the same install is already there."""
    if sys.version_info < (3, 11):  # noqa: UP036  (run.py may be started by an older python)
        sys.exit(f"mtlearn needs Python >= 3.11; this is {sys.version.split()[0]}")
    if not PY.exists():
        print(f"creating {VENV.name} with {sys.executable}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    stamp = VENV / f".mtlearn-{extras.replace(',', '-')}"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return
    print(f"installing mtlearn[{extras}] into {VENV.name} (once)", flush=True)
    subprocess.run([PY, "-m", "pip", "install", "-qq", "-e", f".[{extras}]"],
                   cwd=ROOT, check=True)
    stamp.write_text(digest)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in EXTRAS:
        print(__doc__)
        return 2
    command, rest = argv[0], argv[1:]
    ensure_env(EXTRAS[command])
    env = dict(os.environ, PYTHONNOUSERSITE="1")
    if command == "course":
        args = [PY, "-m", "jupyter", "lab", f"--notebook-dir={ROOT / 'notebooks'}", *rest]
        return subprocess.call(args, cwd=ROOT, env=env)
    # MPLBACKEND keeps figures off-screen; --nbval-lax checks the cells marked NBVAL_CHECK_OUTPUT.
    env.setdefault("MPLBACKEND", "Agg")
    args = [PY, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider", *rest]
    print(f"=== tests with the GIL: {PY}", flush=True)
    code = subprocess.call(args, cwd=ROOT, env=env)
    if code == 5:
        print("pytest collected no tests: treating that as a failure", file=sys.stderr)
        code = 1
    return test_free_threaded(rest, env) or code


def test_free_threaded(rest: list[str], env: dict) -> int:
    """tests/ on the free-threaded interpreter, after .ci/check_freethreaded.py; 0 if none."""
    ft = Path(os.environ.get("MTLEARN_FT_PYTHON") or FT_PYTHON)
    if not ft.exists():
        if "MTLEARN_FT_PYTHON" in os.environ:
            print(f"MTLEARN_FT_PYTHON={ft} does not exist", file=sys.stderr)
            return 1
        print("no free-threaded python: tests ran with the GIL only "
              "(to add a run with the GIL off: bash .ci/freethreaded.sh)")
        return 0
    print(f"=== tests with the GIL off: {ft} (free-threaded build)", flush=True)
    env = {k: v for k, v in env.items() if k != "PYTHON_GIL"}  # the GIL stays off by itself
    check = subprocess.call([ft, ROOT / ".ci/check_freethreaded.py", "--compare", PY],
                            cwd=ROOT, env=env)
    # No nbval there: pytest skips the notebooks, so a selection of only notebooks finds nothing.
    code = subprocess.call([ft, "-m", "pytest", "-p", "no:cacheprovider", *(rest or ["tests"])],
                           cwd=ROOT, env=env)
    return check or (0 if code == 5 and rest else code)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
