"""Time ``Allreduce`` alone, over a range of message sizes (run inside every rank).

Each repeat starts at a barrier, so the ranks enter together and the time is the transfer
and the summing, not waiting for a slow rank (which the training timeline's ``reduce``
spans do include). The time of a repeat is the slowest rank's; the median over repeats is
reported, as everywhere in mtlearn.
"""

from __future__ import annotations

import time

import numpy as np

from .mpi import require_mpi

DEFAULT_SIZES = (1_000, 10_000, 100_000, 1_000_000)   # float64 elements: 8 KB .. 8 MB


def time_allreduce(sizes=DEFAULT_SIZES, repeats: int = 20, dtype=np.float64, comm=None,
                   warmup: int = 3) -> dict:
    """Median seconds of ``comm.Allreduce(MPI.IN_PLACE, buf)`` for each size (elements).

    Returns (the same on every rank) ``{"ranks", "sizes", "bytes", "seconds", "min", "max",
    "repeats"}``: lists aligned with ``sizes``, times in seconds.
    """
    MPI = require_mpi()
    comm = MPI.COMM_WORLD if comm is None else comm
    out = {"ranks": comm.Get_size(), "sizes": [], "bytes": [], "seconds": [], "min": [],
           "max": [], "repeats": repeats}
    for size in sizes:
        buf = np.empty(int(size), dtype=dtype)
        times = []
        for r in range(warmup + repeats):
            buf[...] = 1.0                    # the same sum every repeat
            comm.Barrier()
            t0 = time.perf_counter()
            comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
            dt = comm.allreduce(time.perf_counter() - t0, op=MPI.MAX)   # the slowest rank
            if r >= warmup:
                times.append(dt)
        out["sizes"].append(int(size))
        out["bytes"].append(int(buf.nbytes))
        out["seconds"].append(float(np.median(times)))
        out["min"].append(float(np.min(times)))
        out["max"].append(float(np.max(times)))
    return out
