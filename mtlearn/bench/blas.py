"""BLAS has threads of its own: control them, and measure what happens when Python threads
and BLAS threads together outnumber the cores (oversubscription).

``blas_threads(n)`` wraps threadpoolctl. For OpenBLAS built with pthreads (numpy's wheels)
the limit is process-wide, and threadpoolctl is meant to be called from the main thread:
set the limit *before* starting worker threads, as everything here does.
"""

from __future__ import annotations

import statistics
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace

from ..runtime import checks, info
from .runner import check_counts, check_work, run_threads
from .workloads import Workload, gemm, get_workload

GEMM_SIZE = 512          # big enough that BLAS's own threads pay off (~3 ms per product)
GEMM_UNITS = 64          # products in one run at work=1.0 (~0.2 s on one core)


def current_blas_threads() -> int | None:
    """Threads the loaded BLAS uses now (the largest, if several BLAS libraries are loaded),
    or None if numpy loaded none that threadpoolctl knows."""
    counts = [b["threads"] for b in info.blas_info() if b["api"] == "blas"]
    return max(counts) if counts else None


@contextmanager
def blas_threads(n: int):
    """``with blas_threads(n):`` numpy's BLAS uses at most ``n`` threads, then the previous
    setting comes back (on error too). Yields threadpoolctl's limiter.

    Call it from the main thread before starting worker threads.
    """
    n = checks.workers("n", n)
    import numpy  # noqa: F401  (loads the BLAS, so the limit reaches it)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=n, user_api="blas") as limiter:
        yield limiter


@dataclass
class OversubscriptionResult:
    """GEMM times on a grid of Python threads x BLAS threads, for one fixed amount of work.

    ``seconds[i][j]`` (median over repeats; ``seconds_min``/``seconds_max`` alike) is the
    time with ``py_threads[i]`` Python threads each calling BLAS with ``blas_threads[j]``
    threads; ``speedup[i][j]`` is relative to 1 Python thread x 1 BLAS thread;
    ``gflops[i][j]`` the arithmetic rate; ``total_threads[i][j] = py x blas``, which is
    oversubscribed when above ``cores``.
    """

    py_threads: list[int]
    blas_threads: list[int]
    seconds: list[list[float]]
    seconds_min: list[list[float]]
    seconds_max: list[list[float]]
    speedup: list[list[float]]
    gflops: list[list[float]]
    size: int
    products: int
    repeats: int
    cores: int

    @property
    def total_threads(self) -> list[list[int]]:
        return [[p * b for b in self.blas_threads] for p in self.py_threads]

    @property
    def oversubscribed(self) -> list[list[bool]]:
        return [[t > self.cores for t in row] for row in self.total_threads]

    def best(self) -> tuple[int, int]:
        """``(py_threads, blas_threads)`` of the fastest cell."""
        return min(((p, b) for p in self.py_threads for b in self.blas_threads),
                   key=lambda pb: self.seconds[self.py_threads.index(pb[0])]
                   [self.blas_threads.index(pb[1])])

    def table(self) -> str:
        head = "py \\ BLAS " + "".join(f"{b:>12}" for b in self.blas_threads)
        lines = [f"{self.products} GEMMs of {self.size}x{self.size} float64 on {self.cores} cores:"
                 f" speedup over 1 x 1 (* = more threads than cores)", head]
        over = self.oversubscribed
        for i, p in enumerate(self.py_threads):
            cells = "".join(f"{self.speedup[i][j]:>10.2f}x{'*' if over[i][j] else ' '}"
                            for j in range(len(self.blas_threads)))
            lines.append(f"{p:>9} " + cells)
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> OversubscriptionResult:
        return cls(**d)


def oversubscription(py_threads=(1, 2), blas_threads=(1, 2), repeats: int = 3, *,
                     size: int = GEMM_SIZE, work: float = 1.0,
                     progress=None) -> OversubscriptionResult:
    """Time the same GEMMs with every combination of Python threads and BLAS threads.

    The total work (``64 x work`` products of ``size x size`` float64) is split across the
    Python threads; each product may use ``blas`` threads. 1 is always added to both lists.
    Runs are interleaved (every cell once per round), after one warm-up run per BLAS
    setting. ``progress(fraction, text)`` is called between runs (it may raise to stop).
    """
    py = check_counts(py_threads, "py_threads")
    bl = check_counts(blas_threads, "blas_threads")
    repeats = checks.integer("repeats", repeats, min=1)
    size = checks.integer("size", size, min=1)
    progress = checks.function("progress", progress, optional=True)
    work = check_work(work)
    units = max(1, round(GEMM_UNITS * work))
    gemms = _gemm_workload(size, units)
    runs = {(p, b): [] for p in py for b in bl}
    total = len(bl) * (1 + repeats * len(py))
    done = 0
    for b in bl:                        # one BLAS setting at a time: the limit is process-wide
        with _limit_blas(b):
            for r in range(repeats + 1):
                for p in (py if r else [max(py)]):      # round 0 is the warm-up
                    if progress is not None:
                        progress(done / total, f"{p} Python x {b} BLAS threads")
                    run = run_threads(gemms, p)
                    done += 1
                    if r:
                        runs[(p, b)].append(run.wall)
    if progress is not None:
        progress(1.0, "done")
    med = [[statistics.median(runs[(p, b)]) for b in bl] for p in py]
    flop = 2.0 * size**3 * units
    return OversubscriptionResult(
        py_threads=py, blas_threads=bl, seconds=med,
        seconds_min=[[min(runs[(p, b)]) for b in bl] for p in py],
        seconds_max=[[max(runs[(p, b)]) for b in bl] for p in py],
        speedup=[[med[0][0] / s for s in row] for row in med],
        gflops=[[flop / s / 1e9 for s in row] for row in med],
        size=size, products=units, repeats=repeats, cores=info.cpu_count())


_limit_blas = blas_threads   # oversubscription's argument of the same name hides it there


def _gemm_workload(size: int, units: int) -> Workload:
    """The ``matmul`` workload with another matrix size and number of products, and no BLAS
    pinning of its own."""
    return replace(get_workload("matmul"), units=units, blas_threads=None, chunk=1,
                   make=lambda: gemm(size))
