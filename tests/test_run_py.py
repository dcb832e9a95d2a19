"""``run.py``: the README's two commands. ``course`` passes --allow-root as root, stops
JupyterLab cleanly on Ctrl-C and registers the free-threaded kernel (or says in one line how
to get one); ``test`` runs ruff before pytest and fails on its findings, and a full run
also runs the free-threaded notebooks on that kernel; an install with more extras serves a
command that needs fewer."""

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from scripts import load_script

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def run_py():
    """run.py as a module (it is a script at the top of the repository, not in the package)."""
    return load_script("run.py", "mtlearn_run_py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(os.name != "posix", reason="signals and process groups are POSIX's")
def test_course_stops_jupyterlab_cleanly_on_ctrl_c(tmp_path):
    """SIGINT to run.py (what Ctrl-C in its terminal sends): JupyterLab stops, removes its
    jpserver-*.json, and run.py exits 0 without a traceback."""
    pytest.importorskip("jupyterlab")
    jupyter = tmp_path / "jupyter"
    runtime = jupyter / "runtime"
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(jupyter / "config"),
               JUPYTER_DATA_DIR=str(jupyter / "data"), JUPYTER_RUNTIME_DIR=str(runtime),
               IPYTHONDIR=str(jupyter / "ipython"),
               JUPYTERLAB_WORKSPACES_DIR=str(jupyter / "workspaces"))
    argv = ["course", "--no-browser", "--ip=127.0.0.1", f"--port={free_port()}",
            "--port-retries=0"]
    # run.py itself, with its environment step skipped: this interpreter has JupyterLab.
    code = textwrap.dedent(f"""
        import signal, sys
        signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started ignored
        sys.path.insert(0, {str(ROOT)!r})
        import run
        run.ensure_env = lambda extras: None
        run.free_threaded_kernel = lambda env, offer=False: (1, "")
        run.PY = sys.executable
        sys.exit(run.entry({argv!r}))
    """)
    log = tmp_path / "run.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not list(runtime.glob("jpserver-*.json")):
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "JupyterLab did not start in 60 s"
            time.sleep(0.2)
        info = json.loads(next(runtime.glob("jpserver-*.json")).read_text())
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log.read_text()
    assert code == 0, text
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text
    assert "Shut down this Jupyter server" not in text       # never asked to confirm
    assert "stopping JupyterLab" in text
    assert not list(runtime.glob("jpserver-*")), list(runtime.iterdir())
    with pytest.raises(ProcessLookupError):
        os.kill(info["pid"], 0)
    if os.geteuid() == 0:
        assert "running as root: passing --allow-root to JupyterLab" in text


class FakeJupyter:
    """Stands in for subprocess.Popen in course(): records the command, exits 0."""

    def __init__(self, calls):
        self.calls = calls

    def __call__(self, args, **kwargs):
        self.calls.append([str(a) for a in args])
        return self

    def wait(self, timeout=None):
        return 0


@pytest.mark.parametrize("uid, rest, expected", [
    (0, [], 1), (0, ["--allow-root"], 1), (1000, [], 0)])
def test_course_passes_allow_root_once_as_root(run_py, monkeypatch, capsys, uid, rest,
                                               expected):
    calls = []
    monkeypatch.setattr(run_py.os, "geteuid", lambda: uid, raising=False)
    monkeypatch.setattr(run_py.subprocess, "Popen", FakeJupyter(calls))
    monkeypatch.setattr(run_py, "call", lambda args, **kw: FakeJupyter(calls)(args).wait())
    assert run_py.course(rest, {}) == 0
    assert calls[0][1:4] == ["-m", "jupyter", "lab"]
    assert calls[0].count("--allow-root") == expected
    said = "running as root: passing --allow-root to JupyterLab" in capsys.readouterr().out
    assert said == (uid == 0 and not rest)


@pytest.mark.parametrize("ruff_code", [0, 1])
def test_test_runs_ruff_first_and_fails_on_what_it_finds(run_py, monkeypatch, capsys,
                                                         ruff_code):
    calls = []

    def fake_call(args, **kwargs):
        calls.append([str(a) for a in args])
        return ruff_code if "ruff" in calls[-1] else 0

    monkeypatch.setattr(run_py, "ensure_env", lambda extras: None)
    monkeypatch.setattr(run_py, "call", fake_call)
    monkeypatch.setattr(run_py, "test_free_threaded", lambda rest, env: 0)
    code = run_py.main(["test", "-k", "conv"])
    assert calls[0][1:] == ["-m", "ruff", "check", "."]
    assert calls[1][1:3] == ["-m", "pytest"] and calls[1][-2:] == ["-k", "conv"]
    assert code == ruff_code
    err = capsys.readouterr().err
    assert ("ruff check found problems" in err) == bool(ruff_code)


def test_an_install_with_more_extras_serves_fewer(run_py, monkeypatch, tmp_path):
    venv = tmp_path / ".venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").touch()
    monkeypatch.setattr(run_py, "VENV", venv)
    monkeypatch.setattr(run_py, "PY", venv / "bin" / "python")
    installs = []
    monkeypatch.setattr(run_py.subprocess, "run", lambda args, **kw: installs.append(args))
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    (venv / ".mtlearn-test-course-mpi").write_text(digest)
    run_py.ensure_env("course,mpi")
    run_py.ensure_env("test,course,mpi")
    assert installs == []
    (venv / ".mtlearn-test-course-mpi").write_text("an older pyproject.toml")
    run_py.ensure_env("course,mpi")
    assert len(installs) == 1 and installs[0][-1] == ".[course,mpi]"
    assert (venv / ".mtlearn-course-mpi").read_text() == digest


# -- the free-threaded kernel ---------------------------------------------------------------

FT = Path(os.environ.get("MTLEARN_FT_PYTHON") or
          Path.home() / ".cache/mtlearn/venv313t/bin/python")
needs_ft = pytest.mark.skipif(
    not FT.exists() or subprocess.run([str(FT), "-c", "import ipykernel"],
                                      capture_output=True).returncode != 0,
    reason="no free-threaded python with ipykernel here (python3 run.py freethreaded)")


@pytest.fixture
def tmp_venv(run_py, monkeypatch, tmp_path):
    """run.py pointed at an empty .venv in tmp_path (kernel specs land there)."""
    venv = tmp_path / ".venv"
    venv.mkdir()
    monkeypatch.setattr(run_py, "VENV", venv)
    return venv


def test_without_a_free_threaded_python_one_line_says_how(run_py, tmp_venv, monkeypatch,
                                                          capsys, tmp_path):
    monkeypatch.delenv("MTLEARN_FT_PYTHON", raising=False)
    monkeypatch.setattr(run_py, "FT_PYTHON", tmp_path / "missing" / "python")
    stale = run_py.kernel_dir()
    stale.mkdir(parents=True)
    (stale / "kernel.json").write_text("{}")
    assert run_py.free_threaded_kernel({}, offer=True) == (1, "")   # stdin is not a terminal
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "python3 run.py freethreaded" in out[0], out
    assert not stale.exists()                     # no kernel naming a python that is gone


def test_a_missing_ft_python_named_by_the_environment_is_said(run_py, tmp_venv, monkeypatch,
                                                              capsys, tmp_path):
    monkeypatch.setenv("MTLEARN_FT_PYTHON", str(tmp_path / "nope"))
    assert run_py.free_threaded_kernel({})[0] == 1
    assert f"MTLEARN_FT_PYTHON={tmp_path / 'nope'} does not exist" in capsys.readouterr().out


@needs_ft
def test_the_kernel_is_registered_beside_the_normal_one(run_py, tmp_venv, monkeypatch, capsys):
    monkeypatch.setenv("MTLEARN_FT_PYTHON", str(FT))
    status, name = run_py.free_threaded_kernel(dict(os.environ))
    assert status == 0
    assert re.fullmatch(r"mtlearn — free-threaded 3\.\d+t", name), name
    spec = json.loads((tmp_venv / "share/jupyter/kernels/mtlearn-ft/kernel.json").read_text())
    assert spec["argv"][0] == str(FT) and "ipykernel_launcher" in spec["argv"]
    assert spec["display_name"] == name and spec["metadata"]["mtlearn"]["gil"] == "off"
    assert "PYTHON_GIL" not in spec["env"] and spec["env"]["PYTHONPATH"] == str(ROOT)
    out = capsys.readouterr().out
    assert "registered" in out and "the GIL stays off" in out
    # Registered once: the next start finds the same stamp, and checks and installs nothing.
    real, ran = subprocess.run, []
    monkeypatch.setattr(run_py.subprocess, "run",
                        lambda args, **kw: ran.append([str(a) for a in args]) or real(args, **kw))
    assert run_py.free_threaded_kernel(dict(os.environ)) == (0, name)
    assert len(ran) == 1 and ran[0][1] == "-c", ran          # only the interpreter's facts


@needs_ft
def test_a_module_that_turns_the_gil_back_on_is_named_in_the_kernel(run_py, tmp_venv,
                                                                     monkeypatch, capsys):
    """The check's verdict (here: faked) reaches the kernel's name and one printed line."""
    monkeypatch.setenv("MTLEARN_FT_PYTHON", str(FT))
    real = subprocess.run

    def fake(args, **kwargs):
        if "--imports-only" in [str(a) for a in args]:
            return subprocess.CompletedProcess(args, 1, "...\ngil: on (importing 'gilhold' "
                                               "turned it back on)\n", "")
        return real(args, **kwargs)

    monkeypatch.setattr(run_py.subprocess, "run", fake)
    status, name = run_py.free_threaded_kernel(dict(os.environ))
    assert status == 0 and name.endswith("(GIL on (importing 'gilhold' turned it back on))")
    out = [line for line in capsys.readouterr().out.splitlines() if "free-threaded kernel" in line]
    assert len(out) == 1 and "'gilhold'" in out[0] and "the GIL is on" in out[0]


def test_a_full_test_run_runs_the_ft_notebooks_on_the_ft_kernel(run_py, monkeypatch, tmp_path):
    calls = []
    ft = tmp_path / "python3.13t"
    ft.touch()
    monkeypatch.setenv("MTLEARN_FT_PYTHON", str(ft))
    monkeypatch.setattr(run_py, "ensure_env", lambda extras: None)
    monkeypatch.setattr(run_py, "free_threaded_kernel", lambda env, offer=False: (0, "ft"))
    monkeypatch.setattr(run_py, "call", lambda args, **kw: calls.append(
        [str(a) for a in args]) or 0)
    assert run_py.main(["test"]) == 0
    nbval = [c for c in calls if "--nbval-kernel-name" in c]
    assert len(nbval) == 1 and nbval[0][nbval[0].index("--nbval-kernel-name") + 1] == "mtlearn-ft"
    assert nbval[0][1:3] == ["-m", "pytest"] and "--nbval-lax" in nbval[0]
    assert [Path(a).name for a in nbval[0] if a.endswith(".ipynb")] == run_py.FT_NOTEBOOKS
    assert all((ROOT / "notebooks" / n).exists() for n in run_py.FT_NOTEBOOKS)
    calls.clear()
    assert run_py.main(["test", "-k", "conv"]) == 0           # a selection: no notebooks
    assert not [c for c in calls if "--nbval-kernel-name" in c]


def test_the_ft_notebooks_fail_the_run_without_a_kernel(run_py, monkeypatch, tmp_path):
    ft = tmp_path / "python3.13t"
    ft.touch()
    monkeypatch.setenv("MTLEARN_FT_PYTHON", str(ft))
    monkeypatch.setattr(run_py, "free_threaded_kernel", lambda env, offer=False: (1, ""))
    monkeypatch.setattr(run_py, "call", lambda args, **kw: 0)
    assert run_py.test_free_threaded([], {}) == 1


def test_freethreaded_builds_then_registers(run_py, monkeypatch):
    steps = []
    monkeypatch.setattr(run_py, "ensure_env", lambda extras: steps.append(("env", extras)))
    monkeypatch.setattr(run_py, "build_free_threaded", lambda env: steps.append("build") or 0)
    monkeypatch.setattr(run_py, "free_threaded_kernel",
                        lambda env, offer=False: steps.append("kernel") or (0, "ft"))
    assert run_py.main(["freethreaded"]) == 0
    assert steps == [("env", "course,mpi"), "build", "kernel"]
    steps.clear()
    monkeypatch.setattr(run_py, "build_free_threaded", lambda env: steps.append("build") or 2)
    assert run_py.main(["freethreaded"]) == 2 and "kernel" not in steps


def test_course_registers_the_kernel_before_jupyterlab(run_py, monkeypatch):
    steps = []
    monkeypatch.setattr(run_py, "ensure_env", lambda extras: None)
    monkeypatch.setattr(run_py, "free_threaded_kernel",
                        lambda env, offer=False: steps.append(("kernel", offer)) or (1, ""))
    monkeypatch.setattr(run_py, "course", lambda rest, env: steps.append("lab") or 0)
    assert run_py.main(["course"]) == 0
    assert steps == [("kernel", True), "lab"]
