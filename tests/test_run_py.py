"""``run.py``: the README's two commands. ``course`` passes --allow-root as root and stops
JupyterLab cleanly on Ctrl-C; ``test`` runs ruff before pytest and fails on its findings;
an install with more extras serves a command that needs fewer."""

import hashlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def run_py():
    """run.py as a module (it is a script at the top of the repository, not in the package)."""
    spec = importlib.util.spec_from_file_location("mtlearn_run_py", ROOT / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
