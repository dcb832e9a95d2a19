"""The free-threaded Jupyter kernel, "mtlearn — free-threaded 3.13t" (``mtlearn-ft``).

``python3 run.py course`` and ``python3 run.py test`` register it in .venv's Jupyter when a
free-threaded CPython is there. Started the way JupyterLab and nbval start it, it must run a
free-threaded build with the GIL off after loading everything the notebooks import
(.ci/check_freethreaded.py's check, run inside the kernel, after ipykernel has loaded what
it loads), and draw an inline figure. Skips where the kernel is not registered, except
in CI when a free-threaded CPython exists: there it fails.
"""

from __future__ import annotations

import json
import os
import queue
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
KERNEL = "mtlearn-ft"
IN_CI = os.environ.get("CI", "").lower() not in ("", "0", "false")
FT = Path(os.environ.get("MTLEARN_FT_PYTHON") or
          Path.home() / ".cache/mtlearn/venv313t/bin/python")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def kernel():
    """A started mtlearn-ft kernel and its blocking client; shut down on every path."""
    manager_mod = pytest.importorskip("jupyter_client.manager")
    from jupyter_client.kernelspec import KernelSpecManager

    if KERNEL not in KernelSpecManager().find_kernel_specs():
        why = (f"kernel {KERNEL!r} is not registered for {sys.prefix} "
               "(python3 run.py course registers it when a free-threaded CPython is there)")
        if IN_CI and FT.exists() and Path(sys.prefix).resolve() == (ROOT / ".venv").resolve():
            pytest.fail(f"CI: {why}")
        pytest.skip(why)
    env = {k: v for k, v in os.environ.items() if k != "PYTHON_GIL"}
    km, kc = manager_mod.start_new_kernel(kernel_name=KERNEL, startup_timeout=120, env=env,
                                          cwd=str(ROOT / "notebooks"))
    try:
        yield kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def execute(kc, code: str, timeout: float = 120) -> dict:
    """Run ``code``; returns {"stdout": text, "stderr": text, "png": count, "error": ...}."""
    msg_id = kc.execute(code)
    out = {"stdout": "", "stderr": "", "png": 0, "error": None}
    while True:
        try:
            msg = kc.get_iopub_msg(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no reply from the kernel in {timeout} s")
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream":
            out[content["name"]] += content["text"]
        elif kind in ("display_data", "execute_result"):
            out["png"] += "image/png" in content["data"]
        elif kind == "error":
            out["error"] = "\n".join(content["traceback"])
        elif kind == "status" and content["execution_state"] == "idle":
            return out


def test_it_is_free_threaded_with_the_gil_off_after_the_notebooks_imports(kernel):
    code = (f"import sys, json\nsys.path.insert(0, {str(ROOT / '.ci')!r})\n"
            "import check_freethreaded as check\n"
            "ok, state = check.check_gil_off(sorted((check.ROOT / 'notebooks').glob('*.ipynb')))\n"
            "print(json.dumps({'ok': ok, 'state': state, 'gil': sys._is_gil_enabled(), "
            "'executable': sys.executable}))")
    out = execute(kernel, code)
    assert out["error"] is None, out["error"]
    result = json.loads(out["stdout"].strip().splitlines()[-1])
    # The check's own lines name a module that turned the GIL back on, if one did.
    assert result["ok"] and result["state"] == "off", out["stdout"]
    assert result["gil"] is False
    assert Path(result["executable"]).resolve() != Path(sys.executable).resolve()


def test_it_draws_inline_figures(kernel):
    pytest.importorskip("matplotlib")
    out = execute(kernel, "%matplotlib inline\nimport matplotlib.pyplot as plt\n"
                          "plt.plot([1, 2], [1, 4])\nplt.show()")
    assert out["error"] is None, out["error"]
    assert out["png"] == 1
