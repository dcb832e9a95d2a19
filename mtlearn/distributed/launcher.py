"""Start an MPI job from Python (a notebook, a test, a benchmark) and get its results back.

    r = launch(2, "train", "cnn", epochs=1, batch_size=64)    # mpiexec -n 2 python -m
    r["losses"], r["wall_time"], r["info"]["ranks"]            #   mtlearn.distributed ...

:func:`launch` runs ``mpiexec -n N python -m mtlearn.distributed ARGS --json FILE`` as a
subprocess, prints its output line by line as it comes (or hands each line to ``echo``),
and returns the JSON rank 0 wrote. It uses the ``mpiexec`` installed beside this Python
(the ``mpich`` wheel puts it in the virtual environment's ``bin/``), never another MPI's.

Environment it sets for a job on this machine (each can be overridden through ``env=``):

* ``HYDRA_LAUNCHER=fork``: start the ranks as local child processes; MPICH's process
  manager would otherwise pick ``ssh`` whenever it cannot tell that the host is this one
  (containers with odd host names);
* ``PYTHONUNBUFFERED=1``: lines reach the notebook as they are printed.

Nothing else is needed here, as root or not, without a network (ranks on one machine talk
through shared memory), or with more ranks than cores (``-n 4`` on 2 cores works; each rank
then gets part of a core, and a rank waiting in ``Allreduce`` polls, so it is slow).

On a timeout or Ctrl-C the whole process group (``mpiexec`` and every rank) gets SIGTERM,
then SIGKILL after :data:`GRACE` seconds: no rank is left running. MPICH removes its
shared-memory files (``/dev/shm/mpich_shm_*``, about 1 MB per rank) in ``MPI_Finalize``,
which an aborted or killed job never reaches; after such a job, ``launch`` removes the ones
that appeared while it ran and that no process maps any more.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from .mpi import INSTALL_HINT, MPINotAvailable

#: environment for jobs on this machine (see the module docstring)
LOCAL_ENV = {"HYDRA_LAUNCHER": "fork", "PYTHONUNBUFFERED": "1"}
#: seconds between SIGTERM and SIGKILL when a job is stopped
GRACE = 2.0
#: where MPICH keeps the shared memory of the ranks on one machine (Linux)
SHM = Path("/dev/shm")


class LaunchError(RuntimeError):
    """The job exited non-zero: ``returncode`` and its combined ``output`` (stdout+stderr)."""

    def __init__(self, returncode: int, output: str):
        tail = "\n".join(output.rstrip().splitlines()[-30:])
        super().__init__(f"the MPI job exited with code {returncode}; last lines:\n{tail}")
        self.returncode, self.output = returncode, output


def mpiexec_path() -> str:
    """The ``mpiexec`` to use: ``$MTLEARN_MPIEXEC``, else the one beside this Python
    (``.venv/bin/mpiexec`` from the ``mpich`` wheel); :class:`MPINotAvailable` if none."""
    chosen = os.environ.get("MTLEARN_MPIEXEC")
    if chosen:
        return chosen
    for folder in (Path(sys.executable).parent, Path(sys.prefix) / "bin"):
        candidate = folder / "mpiexec"
        if candidate.exists():
            return str(candidate)
    raise MPINotAvailable(f"{INSTALL_HINT} [no mpiexec beside {sys.executable}]")


def options(**kwargs) -> list[str]:
    """Keyword arguments as command-line options: ``batch_size=64`` -> ``--batch-size 64``,
    ``quiet=True`` -> ``--quiet``, ``channels=(4, 8)`` -> ``--channels 4,8``; ``False`` and
    ``None`` are left out."""
    out: list[str] = []
    for key, value in kwargs.items():
        flag = "--" + key.replace("_", "-")
        if value is None or value is False:
            continue
        if value is True:
            out.append(flag)
        elif isinstance(value, (list, tuple)):
            out += [flag, ",".join(str(v) for v in value)]
        else:
            out += [flag, str(value)]
    return out


def command(ranks: int, /, *args: str, program: list[str] | None = None, python: str | None = None,
            **kwargs) -> list[str]:
    """The command line :func:`launch` runs: ``mpiexec -n RANKS python PROGRAM ARGS OPTIONS``.
    ``program`` defaults to ``["-m", "mtlearn.distributed"]``; a script path works too."""
    if isinstance(ranks, bool) or not isinstance(ranks, int) or ranks < 1:
        raise ValueError(f"ranks must be an int >= 1, got {ranks!r}")
    program = ["-m", "mtlearn.distributed"] if program is None else list(program)
    return [mpiexec_path(), "-n", str(ranks), python or sys.executable, *program,
            *map(str, args), *options(**kwargs)]


def launch(ranks: int, /, *args: str, timeout: float | None = 300.0,
           echo: Callable[[str], None] | None = print, program: list[str] | None = None,
           env: dict | None = None, python: str | None = None, **kwargs) -> dict:
    """Run an MPI job of ``ranks`` processes, stream its output, return its results.

    ranks : how many processes ``mpiexec -n`` starts
    args, kwargs : the job's arguments, e.g. ``"train", "cnn", epochs=1, threads=2``
        (see ``python -m mtlearn.distributed --help``); with the default ``program``,
        ``--json FILE`` is added and the JSON rank 0 writes there is returned
    timeout : seconds before the job is stopped and ``TimeoutError`` raised (None: no limit)
    echo : called with every output line (stdout and stderr, without the newline), in the
        calling thread, as it arrives; None to stay quiet
    program : what ``python`` runs instead of ``-m mtlearn.distributed`` (e.g. a script)
    env : extra environment variables for the job

    Returns the JSON result (for ``train``: ``History.to_dict()`` plus a few keys) with
    ``"output"`` (every line, joined) and ``"elapsed_s"`` (the whole job, start-up
    included); ``{"output", "elapsed_s"}`` alone for another ``program``. Raises
    :class:`LaunchError` when the job exits non-zero.
    """
    if timeout is not None and not timeout > 0:
        raise ValueError(f"timeout must be > 0 seconds or None, got {timeout!r}")
    with tempfile.TemporaryDirectory(prefix="mtlearn-mpi-") as tmp:
        result_file = Path(tmp) / "result.json"
        extra = ["--json", str(result_file)] if program is None else []
        cmd = command(ranks, *args, *extra, program=program, python=python, **kwargs)
        full_env = {**os.environ, **LOCAL_ENV, **(env or {})}
        start = time.perf_counter()
        returncode, output = _run(cmd, full_env, timeout, echo)
        elapsed = time.perf_counter() - start
        if returncode != 0:
            raise LaunchError(returncode, output)
        result = json.loads(result_file.read_text()) if result_file.exists() else {}
    result.update(output=output, elapsed_s=elapsed)
    return result


def _run(cmd: list[str], env: dict, timeout: float | None,
         echo: Callable[[str], None] | None) -> tuple[int, str]:
    """Run ``cmd`` in its own process group; echo each line; stop the group on timeout or
    interrupt. Returns ``(returncode, output)``."""
    if shutil.which(cmd[0]) is None:
        raise MPINotAvailable(f"{INSTALL_HINT} [cannot run {cmd[0]}]")
    segments_before = _shm_segments()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, bufsize=1, env=env,
                            start_new_session=True)   # its own group: one signal stops all
    lines: queue.Queue = queue.Queue()

    def read() -> None:
        try:
            for line in proc.stdout:
                lines.put(line.rstrip("\n"))
        finally:
            lines.put(None)                    # end of output

    reader = threading.Thread(target=read, name="mpi-output", daemon=True)
    reader.start()
    deadline = None if timeout is None else time.monotonic() + timeout
    output: list[str] = []
    try:
        while True:
            wait = 0.1 if deadline is None else min(0.1, deadline - time.monotonic())
            if wait <= 0:
                raise TimeoutError(f"the MPI job did not finish within {timeout} s and was "
                                   f"stopped; its last lines:\n" + "\n".join(output[-20:]))
            try:
                line = lines.get(timeout=wait)
            except queue.Empty:
                continue
            if line is None:
                break
            output.append(line)
            if echo is not None:
                echo(line)
        remaining = None if deadline is None else max(deadline - time.monotonic(), 0.1)
        try:
            proc.wait(remaining)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"the MPI job did not exit within {timeout} s and was "
                               "stopped") from None
    finally:
        if proc.poll() is None:               # timeout, Ctrl-C, or an error in echo
            _stop_group(proc)
        reader.join()
        proc.stdout.close()
        if proc.returncode != 0:
            # An aborted job's ranks may still be exiting (and mapping their segments)
            # after mpiexec returned: stop what is left of the group, then clean up as the
            # ranks go, for up to a second.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            for _ in range(20):
                if not _remove_orphan_segments(_shm_segments() - segments_before):
                    break
                time.sleep(0.05)
    return proc.returncode, "\n".join(output)


def _stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM to the job's process group, SIGKILL after :data:`GRACE` s, then reap it."""
    for sig, wait in ((signal.SIGTERM, GRACE), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(wait)
            break
        except subprocess.TimeoutExpired:
            continue
    # ranks that outlive mpiexec in the group: SIGKILL whatever is left
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def _shm_segments() -> set[str]:
    """Names of MPICH's shared-memory files now."""
    try:
        return {p.name for p in SHM.glob("mpich_shm_*")}
    except OSError:
        return set()


def _remove_orphan_segments(names: set[str]) -> set[str]:
    """Unlink those of ``names`` that no running process maps (read from ``/proc/*/maps``);
    return the ones still mapped."""
    if not names:
        return set()
    mapped: set[str] = set()
    for maps in Path("/proc").glob("[0-9]*/maps"):
        try:
            text = maps.read_text()
        except OSError:                        # gone, or not ours to read
            continue
        mapped.update(name for name in names if name in text)
    for name in names - mapped:
        with contextlib.suppress(OSError):
            (SHM / name).unlink()
    return mapped
