"""Helpers the lifetime tests share: which processes are alive below a pid (Linux /proc),
polling for a condition, cleaning up after a test, and whether MPI is installed."""

import contextlib
import os
import signal
import time
from pathlib import Path

import pytest

from mtlearn import distributed
from mtlearn.distributed import MPINotAvailable


def stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None


def alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper has ended)."""
    fields = stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (children, their children, ...) now."""
    parent_of = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = stat(int(entry))
            if fields is not None:
                parent_of[int(entry)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, pp in parent_of.items() if pp in frontier} - found
        found |= frontier
    return found


def wait_for(condition, timeout: float, what: str) -> float:
    """Poll ``condition()`` until true; seconds it took, or fail naming ``what``."""
    t0 = time.monotonic()
    while not condition():
        if time.monotonic() - t0 > timeout:
            pytest.fail(f"{what} not within {timeout} s")
        time.sleep(0.02)
    return time.monotonic() - t0


def clean_up(proc, family, shm_names) -> None:
    """After a lifetime test, whatever it found: kill ``proc`` (a ``Popen``) and reap it,
    SIGKILL every pid of ``family`` still running, remove the ``/dev/shm`` files named in
    ``shm_names``, so a failed test leaves nothing behind for the next one."""
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    for pid in family:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
    for name in shm_names:
        with contextlib.suppress(FileNotFoundError):
            (Path("/dev/shm") / name).unlink()


def _have_mpi() -> bool:
    try:
        distributed.mpiexec_path()
    except MPINotAvailable:
        return False
    return distributed.mpi_available()


needs_mpi = pytest.mark.skipif(not _have_mpi(), reason="needs mpi4py and mpiexec (mtlearn[mpi])")
