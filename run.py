#!/usr/bin/env python3
"""The two entry points of mtlearn, each setting up what it needs first.

    python3 run.py course   # JupyterLab on notebooks/
    python3 run.py test     # the whole test suite: tests/ and the notebooks under nbval

Both create (or reuse) a virtual environment in .venv and install the package there with
the extras they need; a change to pyproject.toml triggers a re-install. Extra arguments are
passed on to JupyterLab or pytest. One optional helper:

    python3 run.py freethreaded   # build CPython 3.13t (GIL off) once, add it as a kernel

`course` run as root passes --allow-root to JupyterLab (and says so). Ctrl-C stops
JupyterLab cleanly, kernels and all, without asking for confirmation. The same server
serves the Notebook 7 interface at /tree (the `notebook` package, in the course extra).
Beside the normal kernel it registers "mtlearn — free-threaded 3.13t" when a free-threaded
CPython is there ($MTLEARN_FT_PYTHON, or the venv `bash .ci/freethreaded.sh` makes), after
checking that the GIL stays off with everything the notebooks import (if a module turns it
back on, the kernel's name and one printed line say which). Without one it says in one line
how to get it, and in a terminal its first run offers to build it.

`test` first runs `ruff check` on the repository (what it finds is printed, and fails the
run), then pytest. It then runs tests/ again on a free-threaded CPython (GIL off), if there
is one. Before that, .ci/check_freethreaded.py checks that the GIL stays off after importing
mtlearn, the kernel's modules and the notebooks' imports, and that pure-Python code speeds
up on 2 threads there. A full run (no arguments) then runs notebooks FT_NOTEBOOKS under
nbval on the free-threaded kernel too. Ctrl-C lets pytest print its summary, then stops the
run.
"""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")
EXTRAS = {"course": "course,mpi", "test": "test,course,mpi", "freethreaded": "course,mpi"}
FT_PYTHON = Path.home() / ".cache/mtlearn/venv313t/bin/python"  # made by .ci/freethreaded.sh
FT_KERNEL = "mtlearn-ft"                 # the free-threaded kernel's name in .venv's Jupyter
#: notebooks that `test` also runs on the free-threaded kernel
FT_NOTEBOOKS = ["01_threads_and_the_gil.ipynb", "05_sync_data_parallel.ipynb",
                "06_async_hogwild_and_asyncio.ipynb", "09_threads_processes_free_threading.ipynb"]


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
    if command == "freethreaded":
        return build_free_threaded(env) or free_threaded_kernel(env)[0]
    if command == "course":
        free_threaded_kernel(env, offer=True)
        return course(rest, env)
    # MPLBACKEND keeps figures off-screen; --nbval-lax checks the cells marked NBVAL_CHECK_OUTPUT.
    env.setdefault("MPLBACKEND", "Agg")
    if ft_python().exists():
        free_threaded_kernel(env)           # before pytest: tests/test_kernel_ft.py starts it
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
    print("the classic one-notebook-a-tab interface (Notebook 7) is served too: "
          "/tree instead of /lab in the address", flush=True)
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


def ft_python() -> Path:
    """The free-threaded interpreter: $MTLEARN_FT_PYTHON, else the venv of .ci/freethreaded.sh."""
    return Path(os.environ.get("MTLEARN_FT_PYTHON") or FT_PYTHON)


def test_free_threaded(rest: list[str], env: dict) -> int:
    """tests/ on the free-threaded interpreter, after .ci/check_freethreaded.py, then (on a
    full run) FT_NOTEBOOKS on its kernel; 0 if there is no such interpreter."""
    ft = ft_python()
    if not ft.exists():
        if "MTLEARN_FT_PYTHON" in os.environ:
            print(f"MTLEARN_FT_PYTHON={ft} does not exist", file=sys.stderr)
            return 1
        print("no free-threaded python: tests ran with the GIL only "
              "(to add a run with the GIL off: python3 run.py freethreaded)")
        return 0
    print(f"=== tests with the GIL off: {ft} (free-threaded build)", flush=True)
    env = {k: v for k, v in env.items() if k != "PYTHON_GIL"}  # the GIL stays off by itself
    check = call([ft, ROOT / ".ci/check_freethreaded.py", "--compare", PY], cwd=ROOT, env=env)
    # No nbval there: pytest skips the notebooks, so a selection of only notebooks finds nothing.
    code = call([ft, "-m", "pytest", "-p", "no:cacheprovider", *(rest or ["tests"])],
                cwd=ROOT, env=env)
    code = check or (0 if code == 5 and rest else code)
    if rest:
        print("(the notebooks on the free-threaded kernel run in full runs only: "
              "python3 run.py test)")
        return code
    status, _ = free_threaded_kernel(env)
    if status:
        return code or status
    print(f"=== notebooks on the free-threaded kernel {FT_KERNEL!r}", flush=True)
    notebooks = [f"notebooks/{n}" for n in FT_NOTEBOOKS]
    nb = call([PY, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider",
               "--nbval-kernel-name", FT_KERNEL, *notebooks], cwd=ROOT, env=env)
    return code or nb


# -- the free-threaded kernel ---------------------------------------------------------------

def kernel_dir() -> Path:
    """Where .venv's Jupyter (JupyterLab, nbval) finds the free-threaded kernel's spec."""
    return VENV / "share" / "jupyter" / "kernels" / FT_KERNEL


def build_free_threaded(env: dict) -> int:
    """`bash .ci/freethreaded.sh`: builds CPython 3.13t once (minutes), then its venv."""
    if os.name != "posix" or not Path("/etc/debian_version").exists():
        print("python3 run.py freethreaded builds from Debian's sources (Debian/Ubuntu only); "
              "elsewhere install a free-threaded Python 3.13t/3.14t with ipykernel, "
              "ipywidgets, numpy, matplotlib, threadpoolctl and set MTLEARN_FT_PYTHON to it",
              file=sys.stderr)
        return 1
    print("=== building the free-threaded CPython (bash .ci/freethreaded.sh)", flush=True)
    return call(["bash", ROOT / ".ci/freethreaded.sh"], cwd=ROOT, env=env)


def _offer_build(env: dict) -> bool:
    """Ask once, in a terminal, whether to build the free-threaded CPython now; True if it
    was built."""
    asked = VENV / ".mtlearn-ft-offered"
    if asked.exists() or not sys.stdin.isatty() or not Path("/etc/debian_version").exists():
        return False
    asked.write_text("asked\n")
    try:
        answer = input("No free-threaded Python yet. Build CPython 3.13t with the GIL disabled "
                       "now, to run notebooks on it (a few minutes, once; this question is "
                       "not asked again)? [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes") and build_free_threaded(env) == 0


def _ft_facts(ft: Path, env: dict) -> dict | None:
    """Version, site-packages and whether ipykernel is there, from `ft` itself."""
    code = ("import importlib.util as u, json, sys, sysconfig; print(json.dumps({"
            "'version': '%d.%d' % sys.version_info[:2], 'purelib': sysconfig.get_path('purelib'),"
            "'ipykernel': u.find_spec('ipykernel') is not None, "
            "'free_threaded': bool(sysconfig.get_config_var('Py_GIL_DISABLED'))}))")
    try:
        out = subprocess.run([ft, "-c", code], env=env, capture_output=True, text=True,
                             timeout=60, check=True).stdout
        return json.loads(out)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def _say_none(why: str) -> None:
    print(f"free-threaded kernel: {why} — `python3 run.py freethreaded` builds CPython 3.13t "
          "with the GIL disabled (a few minutes, once) and adds it beside the normal kernel",
          flush=True)


def free_threaded_kernel(env: dict, *, offer: bool = False) -> tuple[int, str]:
    """Register the free-threaded interpreter as the kernel FT_KERNEL of .venv's Jupyter,
    or say in one line why there is none. Returns ``(status, display name)``: status 0 when
    it is registered (also when the GIL comes back on there: its name says so), 1 when
    there is no kernel; ``offer``: ask to build it (once, in a terminal)."""
    ft, spec_dir = ft_python(), kernel_dir()
    env = {k: v for k, v in env.items() if k != "PYTHON_GIL"}
    if not ft.exists():
        if "MTLEARN_FT_PYTHON" in os.environ:
            _say_none(f"MTLEARN_FT_PYTHON={ft} does not exist")
        elif not (offer and _offer_build(env)):
            _say_none("none yet")
        if not ft.exists():
            shutil.rmtree(spec_dir, ignore_errors=True)   # a spec naming a missing python
            return 1, ""
    facts = _ft_facts(ft, env)
    if facts and not facts["ipykernel"] and "MTLEARN_FT_PYTHON" not in os.environ:
        build_free_threaded(env)            # a venv from before the kernel: bring it up to date
        facts = _ft_facts(ft, env)
    if not facts or not facts["free_threaded"] or not facts["ipykernel"]:
        why = ("does not run" if not facts else "is not a free-threaded build"
               if not facts["free_threaded"] else "has no ipykernel (pip install ipykernel)")
        _say_none(f"{ft} {why}")
        shutil.rmtree(spec_dir, ignore_errors=True)
        return 1, ""
    # What the check and the spec depend on: the interpreter, its installed packages,
    # pyproject.toml, this file and the check.
    stamp = f"{ft}|{os.stat(facts['purelib']).st_mtime_ns}|{_digest()}"
    spec_file = spec_dir / "kernel.json"
    try:
        spec = json.loads(spec_file.read_text())
        known = spec["metadata"]["mtlearn"]
    except (OSError, ValueError, KeyError, TypeError):
        spec, known = None, {}
    if spec is not None and known.get("stamp") == stamp:
        return 0, spec["display_name"]
    probe = subprocess.run([ft, ROOT / ".ci/check_freethreaded.py", "--imports-only"],
                           cwd=ROOT, env=env, capture_output=True, text=True)
    lines = probe.stdout.strip().splitlines()
    state = lines[-1].removeprefix("gil: ") if lines and lines[-1].startswith("gil: ") \
        else f"check failed ({(probe.stderr.strip().splitlines() or ['no output'])[-1]})"
    name = f"mtlearn — free-threaded {facts['version']}t"
    if state != "off":
        name += f" (GIL {state})" if state.startswith("on") else f" ({state})"
    installed = subprocess.run(
        [ft, "-m", "ipykernel", "install", "--prefix", VENV, "--name", FT_KERNEL,
         "--display-name", name, "--env", "PYTHONNOUSERSITE", "1",
         # this working tree's mtlearn, also in an interpreter that has it not installed
         "--env", "PYTHONPATH", str(ROOT)],
        env=env, capture_output=True, text=True)
    if installed.returncode:
        _say_none(f"`ipykernel install` failed: {installed.stderr.strip()[-300:]}")
        return 1, ""
    spec = json.loads(spec_file.read_text())
    spec.setdefault("metadata", {})["mtlearn"] = {"stamp": stamp, "gil": state}
    spec_file.write_text(json.dumps(spec, indent=1, ensure_ascii=False))
    if state == "off":
        print(f"free-threaded kernel: {name!r} registered ({ft}); the GIL stays off with "
              "everything the notebooks import", flush=True)
    else:
        print(f"free-threaded kernel: {name!r} registered, but the GIL is {state}: timings on "
              "it are those of a GIL build (.ci/check_freethreaded.py --imports-only says more)",
              flush=True)
    return 0, name


def _digest() -> str:
    files = (ROOT / "pyproject.toml", Path(__file__), ROOT / ".ci/check_freethreaded.py")
    return hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()[:16]


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
