#!/usr/bin/env python3
"""The two entry points of mtlearn, each setting up what it needs first.

    python3 run.py course   # JupyterLab on notebooks/
    python3 run.py test     # the whole test suite: tests/ and the notebooks under nbval

Both create (or reuse) a virtual environment in .venv and install the package there with
the extras they need; a change to pyproject.toml triggers a re-install. Extra arguments are
passed on to JupyterLab or pytest.
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
EXTRAS = {"course": "course", "test": "test,course"}


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
    code = subprocess.call(args, cwd=ROOT, env=env)
    if code == 5:
        print("pytest collected no tests: treating that as a failure", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
