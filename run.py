#!/usr/bin/env python3
"""The two entry points of mtlearn, each setting up what it needs first.

    python3 run.py course   # JupyterLab on notebooks/
    python3 run.py test     # the whole test suite: tests/ and the notebooks under nbval

Both create (or reuse) a virtual environment in .venv and install the package there with
the extras they need; a change to pyproject.toml triggers a re-install. Extra arguments are
passed on to JupyterLab or pytest.

`course` run as root passes --allow-root to JupyterLab (and says so). Ctrl-C stops
JupyterLab cleanly, kernels and all, without asking for confirmation.

`test` first runs `ruff check` on the repository (what it finds is printed, and fails the
run), then pytest. It then runs tests/ again on a free-threaded CPython (GIL off), if there
is one: $MTLEARN_FT_PYTHON, or the one `bash .ci/freethreaded.sh` builds. Before that,
.ci/check_freethreaded.py checks that the GIL stays off after importing mtlearn and that
pure-Python code speeds up on 2 threads there. Ctrl-C lets pytest print its summary, then
stops the run.
"""

import hashlib
import os
import signal
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
    """Create .venv and install mtlearn[extras] unless the same install is already there
    (an install with more extras, e.g. `test`'s, serves `course` too)."""
    if sys.version_info < (3, 11):  # noqa: UP036  (run.py may be started by an older python)
        sys.exit(f"mtlearn needs Python >= 3.11; this is {sys.version.split()[0]}")
    if not PY.exists():
        print(f"creating {VENV.name} with {sys.executable}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    wanted = set(extras.split(","))
    for stamp in VENV.glob(".mtlearn-*"):
        if wanted <= set(stamp.name.removeprefix(".mtlearn-").split("-")) \
                and stamp.read_text() == digest:
            return
    print(f"installing mtlearn[{extras}] into {VENV.name} (once)", flush=True)
    try:
        subprocess.run([PY, "-m", "pip", "install", "-qq", "-e", f".[{extras}]"],
                       cwd=ROOT, check=True)
    except subprocess.CalledProcessError as exc:
        sys.exit(f"pip install failed with status {exc.returncode} (its messages are above)")
    (VENV / f".mtlearn-{extras.replace(',', '-')}").write_text(digest)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in EXTRAS:
        print(__doc__)
        return 2
    command, rest = argv[0], argv[1:]
    ensure_env(EXTRAS[command])
    env = dict(os.environ, PYTHONNOUSERSITE="1")
    if command == "course":
        return course(rest, env)
    # MPLBACKEND keeps figures off-screen; --nbval-lax checks the cells marked NBVAL_CHECK_OUTPUT.
    env.setdefault("MPLBACKEND", "Agg")
    print("=== ruff check", flush=True)
    lint = call([PY, "-m", "ruff", "check", "."], cwd=ROOT, env=env)
    args = [PY, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider", *rest]
    print(f"=== tests with the GIL: {PY}", flush=True)
    code = call(args, cwd=ROOT, env=env)
    if code == 5:
        print("pytest collected no tests: treating that as a failure", file=sys.stderr)
        code = 1
    code = test_free_threaded(rest, env) or code
    if lint:
        print("ruff check found problems (listed at the top): the run fails", file=sys.stderr)
    return code or lint


def course(rest: list[str], env: dict) -> int:
    """JupyterLab on notebooks/ until Ctrl-C (or SIGTERM, or the terminal closing), then a
    clean stop: JupyterLab shuts its kernels down and removes its jpserver-*.json."""
    args = [PY, "-m", "jupyter", "lab", f"--notebook-dir={ROOT / 'notebooks'}", *rest]
    if hasattr(os, "geteuid") and os.geteuid() == 0 and "--allow-root" not in rest:
        print("running as root: passing --allow-root to JupyterLab", flush=True)
        args.append("--allow-root")
    if os.name != "posix":                  # Ctrl-C reaches every process of the console
        return call(args, cwd=ROOT, env=env)
    # JupyterLab gets its own process group, so a Ctrl-C in the terminal reaches run.py
    # alone, and run.py asks JupyterLab to stop with SIGTERM. Passing SIGINT on would not
    # do: with a terminal on stdin JupyterLab answers it with a "Shut down (y/[n])?" prompt,
    # and without one it drops out of its loop leaving its jpserver-*.json behind.
    proc = subprocess.Popen(args, cwd=ROOT, env=env, process_group=0)
    previous = {s: signal.signal(s, _interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGTERM)
        _say("\nstopping JupyterLab and its kernels (Ctrl-C again to kill it)")
        try:
            return proc.wait(timeout=60)
        except (KeyboardInterrupt, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
            _say("JupyterLab killed")
            return 1
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _say(line: str) -> None:
    """Print, unless the terminal is gone (SIGHUP): stopping matters more than saying so."""
    try:
        print(line, flush=True)
    except OSError:
        pass


def _interrupt(signum, frame):
    """SIGTERM or SIGHUP to run.py: stop JupyterLab as Ctrl-C does."""
    raise KeyboardInterrupt


def call(args: list, **kwargs) -> int:
    """``subprocess.call``, except on Ctrl-C: the child is in the same process group and got
    the Ctrl-C too, so let it finish (pytest prints its summary); a second Ctrl-C kills it.
    Either way the KeyboardInterrupt goes on up, so that nothing runs after it."""
    proc = subprocess.Popen(args, **kwargs)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        try:
            proc.wait()
        except KeyboardInterrupt:
            proc.kill()
            proc.wait()
        raise


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
    check = call([ft, ROOT / ".ci/check_freethreaded.py", "--compare", PY], cwd=ROOT, env=env)
    # No nbval there: pytest skips the notebooks, so a selection of only notebooks finds nothing.
    code = call([ft, "-m", "pytest", "-p", "no:cacheprovider", *(rest or ["tests"])],
                cwd=ROOT, env=env)
    return check or (0 if code == 5 and rest else code)


def entry(argv: list[str]) -> int:
    """:func:`main`, with Ctrl-C ending in one line and status 130, not a traceback (the
    children have stopped by the time it gets here)."""
    try:
        return main(argv)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(entry(sys.argv[1:]))
