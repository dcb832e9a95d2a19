"""The course as a learner meets it: a notebook's dashboard in a real browser.

JupyterLab, the Notebook 7 interface (the classic one-notebook-per-tab front end, installed
with the course) and Voila each serve a temporary copy of the notebook (outputs stripped, so
every figure on the page comes from this run) on 127.0.0.1, and Debian's Chromium, driven by
Playwright, does what a learner does: Run All Cells, move a slider of the dashboard, press
Run, and wait for the new figure in the dashboard's output. Screenshots go to the test's
temporary folder, and to $MTLEARN_ARTIFACTS when it is set.

Without Chromium (/usr/bin/chromium, or $MTLEARN_CHROMIUM), Playwright, JupyterLab, Notebook
or Voila the test skips, except in CI (`CI` set): there a missing browser fails it
(`.ci/run` installs Chromium), and so do missing packages in the project's .venv. Other
interpreters without them (the free-threaded run of tests/) skip.
Playwright drives the system's Chromium through `executable_path`; `playwright install`
(which downloads a browser of its own) is never needed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("MTLEARN_CHROMIUM", "/usr/bin/chromium")
# Headless, and nothing but loopback: without the networking flags Chromium keeps trying
# (and failing) to reach Google's hosts on a closed network.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
IN_CI = os.environ.get("CI", "").lower() not in ("", "0", "false")
# The project's own environment (what `python3 run.py test` uses) has playwright, jupyterlab
# and voila (the `test` and `course` extras); another interpreter, such as the free-threaded
# one, does not and skips.
IN_PROJECT_VENV = Path(sys.prefix).resolve() == (ROOT / ".venv").resolve()
ROOT_OK = ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []


@dataclass(frozen=True)
class Case:
    notebook: str      # under notebooks/
    title: str         # text in the dashboard's title (the first widget of its VBox)
    slider: str        # description of the slider the test moves
    keys: tuple        # keys pressed on the slider's handle
    expect: str        # regular expression the dashboard's output matches after Run;
    #                    {value} is the slider's readout after the keys
    figures: int = 1   # PNG figures a Run shows


# The notebook's own code leaves the thread slider at 2: the test runs 1 to 3 threads.
SCALING_LAB = Case("01_threads_and_the_gil.ipynb", "Scaling lab", "threads 1 to",
                   ("ArrowRight",), r"traced run on {value} threads", figures=2)
CNN_LAB = Case("02_cnn_from_scratch.ipynb", "CNN lab", "epochs", ("ArrowRight",),
               r"after {value} epochs")
CASE = SCALING_LAB   # any notebook with a dashboard works the same way

pytestmark = pytest.mark.slow


def _require(module: str):
    """Import `module`, or skip (fail in CI on the project's environment)."""
    try:
        return __import__(module, fromlist=["_"])
    except ImportError as exc:
        if IN_CI and IN_PROJECT_VENV:
            pytest.fail(f"CI: {module} is not installed in {sys.prefix} ({exc})")
        pytest.skip(f"{module} is not installed here ({exc}); the browser test needs "
                    "the project's environment (python3 run.py test)")


@pytest.fixture(scope="module")
def sync_playwright():
    pw = _require("playwright.sync_api")
    _require("jupyterlab")
    _require("notebook")
    _require("voila")
    if not os.access(CHROMIUM, os.X_OK):
        reason = (f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium; "
                  "or set MTLEARN_CHROMIUM)")
        if IN_CI:
            pytest.fail(f"CI: {reason}; .ci/run installs it")
        pytest.skip(reason)
    return pw.sync_playwright


# -- servers ------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _descendants(pid: int) -> set[int]:
    """Every process below `pid` (from /proc), kernels included: Jupyter starts each
    kernel in a session of its own, so killing the server's process group misses them."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")   # a zombie has ended; only its parent can reap it


class Server:
    """A Jupyter server (JupyterLab or Voila) in its own process group, logging to a file."""

    def __init__(self, name: str, args: list[str], cwd: Path, env: dict, port: int,
                 token: str, log: Path):
        self.name, self.port, self.token, self.log = name, port, token, log
        self.url = f"http://127.0.0.1:{port}"
        with open(log, "wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", *args], cwd=cwd, env=env,
                                         stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        self.seen: set[int] = set()

    def log_tail(self, n: int = 40) -> str:
        lines = self.log.read_text(errors="replace").splitlines()[-n:]
        return f"--- last lines of {self.name}'s log ({self.log}):\n" + "\n".join(lines)

    def wait_ready(self, path: str, timeout: float = 45.0) -> None:
        """Until GET `path` answers 200 (no proxy: loopback only)."""
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"{self.name} exited with {self.proc.returncode}\n"
                            + self.log_tail())
            with contextlib.suppress(OSError):
                with opener.open(self.url + path, timeout=2) as reply:
                    if reply.status == 200:
                        return
            time.sleep(0.25)
        pytest.fail(f"{self.name} did not answer {path} in {timeout:.0f} s\n" + self.log_tail())

    def post(self, path: str) -> None:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        request = urllib.request.Request(self.url + path, method="POST", data=b"",
                                         headers={"Authorization": f"token {self.token}"})
        with contextlib.suppress(OSError):
            opener.open(request, timeout=5).close()

    def shutdown(self, api: str | None) -> list[int]:
        """Stop the server and everything it started; return the pids still alive."""
        self.seen |= _descendants(self.proc.pid)
        if api and self.proc.poll() is None:
            self.post(api)   # a clean stop: the server shuts its kernels down first
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
        for sig, grace in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
            if self.proc.poll() is None:
                self.seen |= _descendants(self.proc.pid)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, sig)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(timeout=grace)
        for pid in self.seen:      # kernels (own sessions) and whatever they started
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        deadline = time.monotonic() + 5
        while any(_alive(p) for p in self.seen) and time.monotonic() < deadline:
            time.sleep(0.1)
        return sorted(p for p in self.seen | {self.proc.pid} if _alive(p))


@pytest.fixture
def workdir(tmp_path):
    """A notebook folder with the notebook's copy (outputs stripped), private Jupyter
    config, data and runtime folders, and the environment the servers run in."""
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    nb = json.loads((ROOT / "notebooks" / CASE.notebook).read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    nb["metadata"].pop("widgets", None)          # saved widget state would render old views
    (nbdir / CASE.notebook).write_text(json.dumps(nb, indent=1))
    # Helper modules next to the notebook (if any) travel with it.
    for helper in (ROOT / "notebooks").glob("*.py"):
        shutil.copy(helper, nbdir)

    jupyter = tmp_path / "jupyter"
    settings = jupyter / "config" / "lab" / "user-settings" / "@jupyterlab"
    for plugin, values in {
        # Every cell in the DOM (no virtual scrolling), so the test sees every prompt.
        "notebook-extension/tracker": {"windowingMode": "none"},
        # No news or update checks: they would reach out to the internet.
        "apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    }.items():
        path = settings / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    # No MPLBACKEND: figures inline, as a learner sees them.
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    env.update(JUPYTER_CONFIG_DIR=str(jupyter / "config"), JUPYTER_DATA_DIR=str(jupyter / "data"),
               JUPYTER_RUNTIME_DIR=str(jupyter / "runtime"), IPYTHONDIR=str(jupyter / "ipython"),
               JUPYTERLAB_SETTINGS_DIR=str(jupyter / "config" / "lab" / "user-settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(jupyter / "config" / "lab" / "workspaces"),
               PYTHONNOUSERSITE="1")
    return nbdir, env


@pytest.fixture
def jupyterlab(workdir, tmp_path):
    nbdir, env = workdir
    port, token = _free_port(), secrets.token_hex(16)
    server = Server("jupyterlab", [
        "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
        "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={nbdir}", "--LabApp.news_url=",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly", *ROOT_OK,
    ], cwd=nbdir, env=env, port=port, token=token, log=tmp_path / "jupyterlab.log")
    try:
        server.wait_ready(f"/api/status?token={token}")
        yield server
    finally:
        left = server.shutdown("/api/shutdown")
    assert not left, f"processes left running after JupyterLab: {left}"


@pytest.fixture
def notebook7(workdir, tmp_path):
    """The Notebook 7 interface (`jupyter notebook`): the same server, one notebook a tab."""
    nbdir, env = workdir
    port, token = _free_port(), secrets.token_hex(16)
    server = Server("notebook", [
        "jupyter", "notebook", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
        "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={nbdir}", *ROOT_OK,
    ], cwd=nbdir, env=env, port=port, token=token, log=tmp_path / "notebook.log")
    try:
        server.wait_ready(f"/api/status?token={token}")
        yield server
    finally:
        left = server.shutdown("/api/shutdown")
    assert not left, f"processes left running after Notebook 7: {left}"


@pytest.fixture
def voila(workdir, tmp_path):
    nbdir, env = workdir
    port, token = _free_port(), secrets.token_hex(16)
    server = Server("voila", [
        "voila", CASE.notebook, "--no-browser", "--Voila.ip=127.0.0.1", f"--port={port}",
        "--Voila.port_retries=0", f"--token={token}", "--show_tracebacks=True",
    ], cwd=nbdir, env=env, port=port, token=token, log=tmp_path / "voila.log")
    try:
        # A GET of the page would run the notebook: ask for a static file instead.
        server.wait_ready("/voila/static/voila.js")
        yield server
    finally:
        left = server.shutdown(None)
    assert not left, f"processes left running after Voila: {left}"


@pytest.fixture
def page(sync_playwright, tmp_path):
    """A page of a fresh headless Chromium profile; the browser is closed on every path."""
    home = tmp_path / "chromium"
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(home / "profile"), executable_path=CHROMIUM, headless=True,
            args=CHROMIUM_FLAGS, viewport={"width": 1280, "height": 1400},
            env={**os.environ, "XDG_CONFIG_HOME": str(home / "config"),
                 "XDG_CACHE_HOME": str(home / "cache")})
        try:
            context.set_default_timeout(30_000)
            page = context.pages[0] if context.pages else context.new_page()
            page.errors, page.failure_shot = [], tmp_path / "failure.png"
            page.on("pageerror", lambda exc: page.errors.append(str(exc)))
            yield page
        finally:
            context.close()


def _fail(page, message: str):
    """Fail with `message`, after a screenshot of the page as it is."""
    with contextlib.suppress(Exception):
        page.screenshot(path=page.failure_shot)
        message += f"\n(screenshot: {page.failure_shot})"
    pytest.fail(message)


def _save(page, locator, tmp_path: Path, name: str) -> list[Path]:
    """Screenshots of the page and of the dashboard, here and under $MTLEARN_ARTIFACTS."""
    shots = [tmp_path / f"{name}.png", tmp_path / f"{name}-dashboard.png"]
    locator.scroll_into_view_if_needed()
    page.screenshot(path=shots[0])
    locator.screenshot(path=shots[1])
    if os.environ.get("MTLEARN_ARTIFACTS"):
        artifacts = Path(os.environ["MTLEARN_ARTIFACTS"])
        artifacts.mkdir(parents=True, exist_ok=True)
        for shot in shots:
            shutil.copy(shot, artifacts / shot.name)
    print("screenshots:", *shots)
    return shots


# -- the dashboard, wherever it is shown --------------------------------------------------

def _dashboard(page):
    """The dashboard's outer VBox: the one whose first child is the title."""
    return page.locator(
        "xpath=//div[contains(concat(' ', @class, ' '), ' widget-vbox ')]"
        "[./*[1][contains(concat(' ', @class, ' '), ' widget-html ')]"
        f"[contains(., {json.dumps(CASE.title)})]]").first


def _drag(page, slider, handle, units: int) -> None:
    """Drag the slider's handle right by ``units`` of its value, as a mouse would."""
    handle.scroll_into_view_if_needed()
    lo, hi = (float(handle.get_attribute(a)) for a in ("aria-valuemin", "aria-valuemax"))
    track = slider.locator(".noUi-target").bounding_box()
    box = handle.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + units * track["width"] / (hi - lo), y, steps=8)
    page.mouse.up()


def _run_dashboard(page, dashboard, drag: bool = False) -> str:
    """Move the slider (its keys, or with ``drag`` the mouse: one unit per ArrowRight),
    press Run, wait for the run's PNG figures in the dashboard's output; return the
    output's text."""
    assert page.get_by_text("Loading widget...").count() == 0, "the widgets did not render"
    assert page.get_by_text("Error displaying widget").count() == 0
    output = dashboard.locator(".widget-output").last
    slider = dashboard.locator(".widget-slider").filter(
        has=page.locator(".widget-label", has_text=re.compile(f"^{re.escape(CASE.slider)}$")))
    readout = slider.locator(".widget-readout")
    before = readout.inner_text().strip()
    handle = slider.locator(".noUi-handle")
    if drag:
        _drag(page, slider, handle, sum(1 if k == "ArrowRight" else -1 for k in CASE.keys))
    else:
        handle.focus()
        for key in CASE.keys:
            handle.press(key)
    page.wait_for_function("([el, old]) => el.innerText.trim() !== old",
                           arg=[readout.element_handle(), before], timeout=5_000)
    expect = CASE.expect.format(value=re.escape(readout.inner_text().strip()))
    # Figures already there (from the notebook's own run) must not count.
    output.evaluate("el => el.querySelectorAll('img').forEach(i => i.dataset.old = '1')")
    run = dashboard.locator("button.widget-button", has_text=re.compile(r"^\s*Run\s*$"))
    status = run.locator("xpath=..").locator(".widget-html-content")
    assert run.is_enabled(), "the Run button is disabled before the run"
    run.click()
    new_png = output.locator('img[src^="data:image/png"]:not([data-old])')
    new_png.first.wait_for(state="visible", timeout=45_000)
    page.wait_for_function("el => !el.disabled", arg=run.element_handle(), timeout=30_000)
    text = output.inner_text()
    ended = status.inner_text().strip()
    assert ended == "done", f"the run ended with {ended!r}:\n{text}"
    assert re.search(expect, text), f"{expect!r} not in the output:\n{text}"
    assert new_png.count() == CASE.figures, f"{new_png.count()} figures, not {CASE.figures}"
    for img in new_png.all():
        img.scroll_into_view_if_needed()
        assert img.evaluate("i => i.complete && i.naturalWidth > 100"), "an empty figure"
    return text


# -- JupyterLab ---------------------------------------------------------------------------

_PROMPTS = """() => Array.from(document.querySelectorAll(
    '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputArea-prompt'),
    p => p.textContent.trim())"""


def _run_all_cells(page, server: Server, timeout: float = 90.0) -> None:
    """Run > Run All Cells, then wait until every code cell has run and the kernel is idle."""
    def run_all():
        dialog = page.locator(".jp-Dialog")
        if dialog.count():
            _fail(page, f"a dialog is open: {dialog.first.inner_text()!r}")
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile("^Run$")).click()
        page.get_by_role("menuitem", name=re.compile("^Run All Cells")).click()

    run_all()
    start = time.monotonic()
    deadline, idle_since, retried = start + timeout, None, False
    while time.monotonic() < deadline:
        prompts = page.evaluate(_PROMPTS)
        status = page.locator(".jp-Notebook-ExecutionIndicator").first.get_attribute(
            "data-status")
        if prompts and all(re.fullmatch(r"\[\d+\]:", p) for p in prompts) and status == "idle":
            return
        untouched = all(p == "[ ]:" for p in prompts)
        if untouched and not retried and time.monotonic() - start > 5:
            # A click that came while the kernel was still connecting is lost: once more.
            retried = True
            print("Run All Cells: nothing ran after 5 s; clicking it again")
            run_all()
        elif status == "idle" and not untouched and not any("*" in p for p in prompts):
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since > 3:   # stopped short: a cell raised
                errors = page.locator(".jp-OutputArea-output[data-mime-type="
                                      "'application/vnd.jupyter.stderr']").all_inner_texts()
                _fail(page, f"Run All stopped before the end; prompts {prompts}\n"
                      + "\n".join(errors)[-3000:])
        else:
            idle_since = None
        time.sleep(0.25)
    _fail(page, f"the notebook did not finish in {timeout:.0f} s; prompts {prompts}\n"
          + server.log_tail())


def test_dashboard_in_jupyterlab(jupyterlab, page, tmp_path):
    url = f"{jupyterlab.url}/lab/tree/{CASE.notebook}?token={jupyterlab.token}&reset"
    page.goto(url, wait_until="domcontentloaded")
    # The notebook is open and its kernel connected: the status bar says "| Idle" (the
    # toolbar's indicator says idle earlier, while the kernel is still connecting).
    page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for(timeout=45_000)
    page.wait_for_function(r"""() => /\|\s*Idle\b/.test(
        document.querySelector('.jp-StatusBar-Widget')?.innerText || '')""", timeout=45_000)
    _run_all_cells(page, jupyterlab)
    dashboard = _dashboard(page)
    dashboard.wait_for(state="visible", timeout=15_000)
    _run_dashboard(page, dashboard)
    _save(page, dashboard, tmp_path, f"jupyterlab-{Path(CASE.notebook).stem}")
    assert not page.errors, f"errors in the page: {page.errors}"


# -- Notebook 7 ---------------------------------------------------------------------------

NOTEBOOK7_OWN_ERRORS = ("Cannot read properties of undefined (reading 'schema')",)


def test_dashboard_in_notebook7(notebook7, page, tmp_path):
    url = f"{notebook7.url}/notebooks/{CASE.notebook}?token={notebook7.token}"
    page.goto(url, wait_until="domcontentloaded")
    # Notebook 7 has no status bar: its toolbar's kernel indicator says "Idle" once the
    # kernel has connected.
    page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for(timeout=45_000)
    page.wait_for_function("""() => {
        const s = document.querySelector('.jp-NotebookPanel .jp-Notebook-ExecutionIndicator');
        return s && s.getAttribute('data-status') === 'idle'
            && !/connecting|starting/i.test(document.body.innerText.slice(0, 2000)); }""",
                           timeout=45_000)
    _run_all_cells(page, notebook7)
    dashboard = _dashboard(page)
    dashboard.wait_for(state="visible", timeout=15_000)
    # Notebook 7's keyboard shortcuts take the arrow keys (in the capture phase, before the
    # slider sees them, unlike JupyterLab's): there a learner drags the handle.
    _run_dashboard(page, dashboard, drag=True)
    _save(page, dashboard, tmp_path, f"notebook7-{Path(CASE.notebook).stem}")
    # Notebook 7.6 raises this one itself on opening any notebook, an empty one too (its
    # keyboard-shortcuts settings handler reads a plugin's schema it has not loaded).
    ours = [e for e in page.errors if e not in NOTEBOOK7_OWN_ERRORS]
    assert not ours, f"errors in the page: {ours}"


# -- Voila --------------------------------------------------------------------------------

def test_dashboard_in_voila(voila, page, tmp_path):
    # Voila runs the whole notebook before it sends the page.
    page.goto(f"{voila.url}/?token={voila.token}", wait_until="commit", timeout=90_000)
    dashboard = _dashboard(page)
    try:
        dashboard.wait_for(state="visible", timeout=90_000)
    except Exception:
        _fail(page, "no dashboard in Voila's page\n" + voila.log_tail())
    _run_dashboard(page, dashboard)
    _save(page, dashboard, tmp_path, f"voila-{Path(CASE.notebook).stem}")
    assert not page.errors, f"errors in the page: {page.errors}"
