"""Start an MPI job from Python (a notebook, a test, a benchmark) and get its results back.

    r = launch(2, "train", "cnn", epochs=1, batch_size=64)    # mpiexec -n 2 python -m
    r["losses"], r["wall_time"], r["info"]["ranks"]            #   mtlearn.distributed ...

:func:`launch` runs ``mpiexec -n N python -m mtlearn.distributed ARGS --json FILE`` as a
subprocess, prints its output line by line as it comes (or hands each line to ``echo``),
and returns the JSON rank 0 wrote. It uses the MPI installed beside this Python (the
``mpich`` wheel puts it in the virtual environment's ``bin/``), never another MPI's; the
ranks all run on this machine.

Before anything starts, every argument is checked here: ``ranks``, ``timeout``, ``echo``,
``env``, and the job's own options with the very parser the ranks use
(:mod:`.arguments`), so ``momentum=1.5`` is a ``ValueError`` naming ``--momentum``, not a
job that fails on every rank.

Nothing listens on the network: the launcher uses MPICH's ``gforker`` process manager
(``mpiexec.gforker``: the ranks are its children, talking to it over inherited socket
pairs), where ``hydra`` — the default ``mpiexec`` — opens an unauthenticated control port on
every interface (its ``-iface``, ``-localhost`` and ``HYDRA_IFACE`` choose an address to
*announce*, not one to bind). The ranks use shared memory among themselves, and
``UCX_TLS=self,sm`` keeps MPICH's network module (UCX) from opening TCP listeners of its
own. If there is no ``mpiexec.gforker`` beside Python, ``hydra`` is used.

Environment it sets for a job on this machine (each can be overridden through ``env=``):

* ``UCX_TLS=self,sm``: see above;
* ``HYDRA_LAUNCHER=fork``: with ``hydra``, start the ranks as local child processes (it
  would otherwise pick ``ssh`` whenever it cannot tell that the host is this one);
* ``PYTHONUNBUFFERED=1``: lines reach the notebook as they are printed.

Nothing else is needed here, as root or not, without a network, or with more ranks than
cores (``-n 4`` on 2 cores works; each rank then gets part of a core, and a rank waiting in
``Allreduce`` polls, so it is slow).

The job ends with its caller. ``mpiexec`` runs under a small keeper process
(:mod:`.guard`) that holds a pipe from the caller: on a timeout or Ctrl-C the caller closes
it; if the caller is killed (even with SIGKILL) the kernel does. Either way the keeper
stops the whole job (SIGTERM, then SIGKILL after :data:`GRACE` seconds) and then removes
the job's own ``/dev/shm/mpich_shm_*`` files, which MPICH removes only in ``MPI_Finalize``
(about 1 MB per rank) — and only those it saw the job's processes map, never a concurrent
job's.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ..runtime import checks
from . import arguments
from .guard import GRACE
from .mpi import INSTALL_HINT, MPINotAvailable

#: environment for jobs on this machine (see the module docstring)
LOCAL_ENV = {"UCX_TLS": "self,sm", "HYDRA_LAUNCHER": "fork", "PYTHONUNBUFFERED": "1"}
#: the keeper run between the caller and mpiexec (see the module docstring)
GUARD = Path(__file__).with_name("guard.py")
#: ``mpiexec`` commands, the first found beside Python is used: no network listener first
MPIEXECS = ("mpiexec.gforker", "mpiexec")
__all__ = ["GRACE", "LOCAL_ENV", "LaunchError", "command", "launch", "mpiexec_path", "options"]


class LaunchError(RuntimeError):
    """The job exited non-zero: ``returncode`` and its combined ``output`` (stdout+stderr)."""

    def __init__(self, returncode: int, output: str):
        tail = "\n".join(output.rstrip().splitlines()[-30:])
        super().__init__(f"the MPI job exited with code {returncode}; last lines:\n{tail}")
        self.returncode, self.output = returncode, output


def mpiexec_path() -> str:
    """The ``mpiexec`` to use: ``$MTLEARN_MPIEXEC``, else the one beside this Python
    (``.venv/bin/mpiexec.gforker`` from the ``mpich`` wheel, or its ``mpiexec``);
    :class:`MPINotAvailable` if none."""
    chosen = os.environ.get("MTLEARN_MPIEXEC")
    if chosen:
        return chosen
    for name in MPIEXECS:
        for folder in (Path(sys.executable).parent, Path(sys.prefix) / "bin"):
            candidate = folder / name
            if candidate.exists():
                return str(candidate)
    raise MPINotAvailable(f"{INSTALL_HINT} [no mpiexec beside {sys.executable}]")


def options(**kwargs) -> list[str]:
    """Keyword arguments as command-line options: ``batch_size=64`` -> ``--batch-size 64``,
    ``quiet=True`` -> ``--quiet``, ``channels=(4, 8)`` -> ``--channels 4,8``; ``False`` and
    ``None`` are left out. A value of another kind is a ``TypeError`` naming its keyword."""
    out: list[str] = []
    for key, value in kwargs.items():
        flag = "--" + key.replace("_", "-")
        if value is None or value is False:
            continue
        if value is True:
            out.append(flag)
        elif isinstance(value, list | tuple) and all(map(_plain, value)):
            out += [flag, ",".join(str(v) for v in value)]
        elif _plain(value):
            out += [flag, str(value)]
        else:
            raise TypeError(f"{key} must be a number, a string, a path, True/False/None or a "
                            f"list of numbers, got {type(value).__name__} {value!r}")
    return out


def _plain(value) -> bool:
    return isinstance(value, int | float | str | os.PathLike) and not isinstance(value, bool)


def command(ranks: int, /, *args: str, program: list[str] | None = None, python: str | None = None,
            **kwargs) -> list[str]:
    """The command line :func:`launch` runs: ``mpiexec -n RANKS python PROGRAM ARGS OPTIONS``.
    ``program`` defaults to ``["-m", "mtlearn.distributed"]``; a script path works too."""
    ranks = checks.workers("ranks", ranks)
    for i, arg in enumerate(args):
        if not _plain(arg):
            raise TypeError(f"args[{i}] must be a string or a number, got "
                            f"{type(arg).__name__} {arg!r}")
    if program is not None and (isinstance(program, str | bytes) or not all(
            isinstance(a, str | os.PathLike) for a in program)):
        raise TypeError(f"program must be a list of strings such as ['script.py', 'arg'], got "
                        f"{program!r}")
    if python is not None and not isinstance(python, str | os.PathLike):
        raise TypeError(f"python must be a path to a Python interpreter, got {python!r}")
    program = ["-m", "mtlearn.distributed"] if program is None else [str(a) for a in program]
    return [mpiexec_path(), "-n", str(ranks), str(python or sys.executable), *program,
            *map(str, args), *options(**kwargs)]


def launch(ranks: int, /, *args: str, timeout: float | None = 300.0,
           echo: Callable[[str], None] | None = print, program: list[str] | None = None,
           env: dict | None = None, python: str | None = None, **kwargs) -> dict:
    """Run an MPI job of ``ranks`` processes, stream its output, return its results.

    ranks : how many processes ``mpiexec -n`` starts (an int from 1 to 1024)
    args, kwargs : the job's arguments, e.g. ``"train", "cnn", epochs=1, threads=2``
        (see ``python -m mtlearn.distributed --help``); with the default ``program``,
        ``--json FILE`` is added and the JSON rank 0 writes there is returned
    timeout : seconds before the job is stopped and ``TimeoutError`` raised (None: no limit)
    echo : called with every output line (stdout and stderr, without the newline), in the
        calling thread, as it arrives; None to stay quiet
    program : what ``python`` runs instead of ``-m mtlearn.distributed`` (e.g. a script)
    env : extra environment variables for the job (names and values: strings)

    Every argument is checked before anything starts (``TypeError``/``ValueError`` naming
    it; the job's options as ``python -m mtlearn.distributed`` would check them). Returns
    the JSON result (for ``train``: ``History.to_dict()`` plus a few keys) with
    ``"output"`` (every line, joined) and ``"elapsed_s"`` (the whole job, start-up
    included); ``{"output", "elapsed_s"}`` alone for another ``program``. Raises
    :class:`LaunchError` when the job exits non-zero. On a timeout, Ctrl-C, an error in
    ``echo`` — or this process being killed — the whole job is stopped (module docstring).
    """
    if timeout is not None:
        timeout = checks.number("timeout", timeout, min=0, min_open=True)
    checks.function("echo", echo, "a function echo(line)", optional=True)
    if env is not None and not (isinstance(env, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in env.items())):
        raise TypeError(f"env must be a dict of strings (name -> value), got {env!r}")
    if program is None:       # the job's options first: checking them needs no MPI
        checks.workers("ranks", ranks)
        arguments.parse([*map(str, args), *options(**kwargs)])   # ValueError naming the option
    cmd = command(ranks, *args, program=program, python=python, **kwargs)   # checks the rest
    with tempfile.TemporaryDirectory(prefix="mtlearn-mpi-") as tmp:
        result_file = Path(tmp) / "result.json"
        if program is None:
            cmd += ["--json", str(result_file)]
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
    """Run ``cmd`` under the keeper (:mod:`.guard`); echo each line; stop the job on a
    timeout, an interrupt or an error in ``echo``. Returns ``(returncode, output)``."""
    if shutil.which(cmd[0]) is None:
        raise MPINotAvailable(f"{INSTALL_HINT} [cannot run {cmd[0]}]")
    # stdin is the keeper's lifeline: never written to, closed to stop the job (or by the
    # kernel when this process ends). Its own session: a terminal's Ctrl-C reaches only us.
    proc = subprocess.Popen([sys.executable, "-I", "-S", str(GUARD), *cmd],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, bufsize=1, env=env,
                            start_new_session=True)
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
                raise TimeoutError(f"the MPI job did not finish within {timeout:g} s and was "
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
            raise TimeoutError(f"the MPI job did not exit within {timeout:g} s and was "
                               "stopped") from None
    finally:
        with contextlib.suppress(OSError):
            proc.stdin.close()                 # stop: the keeper ends the job, cleans up
        try:
            proc.wait(GRACE + 3.0)
        except subprocess.TimeoutExpired:      # never seen; mpiexec would still get SIGTERM
            proc.kill()                        # from the kernel once the keeper is gone
            proc.wait()
        reader.join()
        proc.stdout.close()
    return proc.returncode, "\n".join(output)
