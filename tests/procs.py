"""Helpers the lifetime tests share: which processes are alive below a pid (Linux /proc),
polling for a condition, and whether MPI is installed."""

import os
import time

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


def _have_mpi() -> bool:
    try:
        distributed.mpiexec_path()
    except MPINotAvailable:
        return False
    return distributed.mpi_available()


needs_mpi = pytest.mark.skipif(not _have_mpi(), reason="needs mpi4py and mpiexec (mtlearn[mpi])")
