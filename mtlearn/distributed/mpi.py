"""Synchronous data parallelism across MPI ranks: ``sync`` with processes that may sit on
different machines, talking only through ``Allreduce``.

Every rank runs this same program (SPMD, "single program, multiple data"):

1. it builds the same model and data from the seed, and the same batch plan
   (``parallel.base.make_plan``), then broadcasts rank 0's parameters so every replica
   starts equal, as PyTorch DDP does;
2. each step it takes its shard of the batch (``split_bounds(batch_size, ranks)[rank]``) and
   computes that shard's gradient, scaled by the shard's share of the batch — on one thread,
   or on ``threads`` threads (:mod:`.threads`);
3. ``comm.Allreduce(MPI.IN_PLACE, buf)`` sums the flat gradient vector (and the loss, which
   rides along as one more element) over all ranks, in place, without pickling: every rank
   now holds the gradient of the whole batch;
4. every rank applies the same optimizer step to its own copy of the parameters.

So the replicas stay identical without ever sending parameters, and the result equals one
big-batch step (``serial``) up to the order of the floating-point sum. On the timeline the
``reduce`` span of the main thread is the ``Allreduce``: the transfer, plus waiting for the
slowest rank.

Failures: a rank that raises while the others wait in ``Allreduce`` would leave them waiting
forever (and ``MPI_Finalize`` at its own exit can wait too). So with more than one rank,
``run`` catches any exception, prints the rank and its traceback to stderr and calls
``comm.Abort(1)``: ``mpiexec`` then stops every rank and exits non-zero
(:func:`abort_on_error`; ``os._exit(1)`` follows, as MPICH's ``MPI_Abort`` may return).
Argument errors are raised by :func:`prepare` before anything starts, the same on every
rank.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import time
import traceback

import numpy as np

from ..parallel import api
from ..parallel.base import Strategy, split_bounds
from ..parallel.history import History
from ..runtime import checks
from ..runtime.trace import Span
from .threads import ShardThreads

INSTALL_HINT = ('mtlearn.distributed needs mpi4py and an MPI library: pip install "mtlearn[mpi]" '
                "(in a checkout: .venv/bin/pip install mpi4py mpich)")


class MPINotAvailable(ImportError):
    """mpi4py (or the MPI library under it, or ``mpiexec``) is missing; the message says how
    to install it."""


def mpi_available() -> bool:
    """True when mpi4py can be imported (without starting MPI)."""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return True


def require_mpi():
    """``mpi4py.MPI`` (importing it starts MPI in this process), or :class:`MPINotAvailable`
    saying how to install it."""
    try:
        from mpi4py import MPI
    except (ImportError, RuntimeError) as exc:  # RuntimeError: mpi4py found no MPI library
        raise MPINotAvailable(f"{INSTALL_HINT} [{type(exc).__name__}: {exc}]") from exc
    return MPI


@contextlib.contextmanager
def abort_on_error(comm):
    """Turn an exception in this rank into ``comm.Abort(1)`` after printing it, so the
    whole job stops with an error instead of the other ranks waiting forever.

    With one rank there is no one to wait, and the exception propagates as usual.
    """
    try:
        yield
    except BaseException as exc:
        if comm.Get_size() == 1:
            raise
        sys.stdout.flush()
        # The one-line summary first: mpiexec may drop output once the abort reaches it.
        print(f"mtlearn.distributed: rank {comm.Get_rank()} of {comm.Get_size()} failed with "
              f"{type(exc).__name__}: {exc}; aborting the job (MPI_Abort). Its traceback:",
              file=sys.stderr, flush=True)
        traceback.print_exc()
        sys.stderr.flush()
        comm.Abort(1)
        # MPICH's MPI_Abort can return once the process manager has the message (it then
        # stops every rank): never go on after it. Exiting without MPI_Finalize also makes
        # mpiexec stop the job, in case the abort did not get through.
        os._exit(1)


class MPISync(Strategy):
    """The strategy object :func:`prepare` builds; ``run()`` trains (see the module doc)."""

    name = "mpi"
    description = ("synchronous data parallel across MPI ranks: Allreduce of the flat gradient, "
                   "threads inside each rank")

    def __init__(self, model, loss, X, y, *, comm, log=None, **kwargs):
        super().__init__(model, loss, X, y, **kwargs)
        self.comm, self.log = comm, log
        self.rank, self.ranks = comm.Get_rank(), comm.Get_size()
        lo, hi = split_bounds(self.batch_size, self.ranks)[self.rank]
        self.shard_size = hi - lo
        self.steps_per_epoch = len(self.plan) // self.epochs
        # The same plan on every rank; each keeps its shard of every batch (and loads only that).
        self.plan = [idx[lo:hi] for idx in self.plan]
        self.history.info.update(ranks=self.ranks, threads_per_rank=self.threads,
                                 shard=[lo, hi])

    def run(self) -> History:
        """Train (every rank); returns the :class:`History`. Rank 0's has every rank's trace
        (thread names ``rank{r}/...``) and CPU times; losses are the same on every rank."""
        self.comm.Barrier()                    # start every rank's clock together
        with abort_on_error(self.comm):
            history = super().run()
            self._gather(history)
        return history

    def train(self) -> None:
        MPI = require_mpi()
        model, tracer, comm = self.model, self.tracer, self.comm
        P = model.params.size
        comm.Bcast(model.params, root=0)      # every replica starts from rank 0's parameters
        buf = np.zeros(P + 1, dtype=model.params.dtype)   # the gradient, then the loss
        grads = buf[:P]
        opt = self.make_optimizer(model.params)
        allreduce_s = 0.0
        local = ShardThreads(model, self.loss, self.threads, self.shard_size, self.batch_size,
                             tracer)
        with local, self.batches() as batches:
            for step, (xb, yb) in enumerate(batches):
                local.gradient(xb, yb, out=buf)
                with tracer.span("reduce"):
                    t0 = time.perf_counter()
                    comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
                    allreduce_s += time.perf_counter() - t0
                with tracer.span("update"):
                    opt.step(grads)
                self.record_step(float(buf[P]))
                if self.log is not None and self.rank == 0 and \
                        (step + 1) % self.steps_per_epoch == 0:
                    self._log_epoch((step + 1) // self.steps_per_epoch)
        self.history.thread_cpu.update(local.cpu)
        library = " ".join(MPI.Get_library_version().splitlines()[0].split())
        self.history.info.update(allreduce_s=allreduce_s, allreduce_bytes=buf.nbytes,
                                 mpi_library=library)

    def _log_epoch(self, epoch: int) -> None:
        losses = self.history.losses[-self.steps_per_epoch:]
        self.log(f"epoch {epoch}/{self.epochs}  mean loss {np.mean(losses):.4f}  "
                 f"{time.perf_counter() - self._t0:.2f} s")

    def _gather(self, history: History) -> None:
        """Bring every rank's spans, CPU times and allreduce time to rank 0; check that every
        replica ended with the same parameters, bit for bit."""
        digest = hashlib.sha256(self.model.params.tobytes()).hexdigest()
        history.info["replicas_identical"] = len(set(self.comm.allgather(digest))) == 1
        mine = (history.trace, history.thread_cpu, history.info.get("allreduce_s", 0.0))
        everyone = self.comm.gather(mine, root=0)
        if self.rank != 0:
            return
        trace, cpu, allreduce = [], {}, []
        for r, (spans, thread_cpu, seconds) in enumerate(everyone):
            trace += [Span(_name(r, s.thread), *s[1:]) for s in spans]
            cpu.update({_name(r, k): v for k, v in thread_cpu.items()})
            allreduce.append(seconds)
        trace.sort(key=lambda s: (s.start, s.thread))
        history.trace, history.thread_cpu = trace, cpu
        history.info["allreduce_s_per_rank"] = allreduce


def _name(rank: int, thread: str) -> str:
    return f"rank{rank}/{'main' if thread == 'MainThread' else thread}"


def prepare(model, loss, data, threads: int = 1, epochs: int = 1, batch_size: int = 64,
            lr: float = 0.05, seed: int = 0, optimizer=None, *, comm=None, prefetch: int = 0,
            augment=None, check_finite: bool = True, trace: bool = True,
            blas_threads: int | None = 1, log=None) -> MPISync:
    """Check every argument (those of ``parallel.train``, by its own checks, and that each of
    the ``ranks x threads`` workers gets a sample) and build the strategy, starting nothing.
    ``comm`` defaults to ``MPI.COMM_WORLD``. See :func:`train`."""
    MPI = require_mpi()
    comm = MPI.COMM_WORLD if comm is None else comm
    api.prepare(model, loss, data, "sync", threads, epochs, batch_size, lr, seed, optimizer,
                prefetch=prefetch, augment=augment, check_finite=check_finite, trace=trace,
                blas_threads=blas_threads)
    ranks = comm.Get_size()
    if batch_size < ranks * checks.workers("threads", threads):
        raise ValueError(f"batch_size ({batch_size}) must be >= ranks x threads ({ranks} x "
                         f"{threads}): each worker needs at least one sample")
    X, y = data
    return MPISync(model, loss, X, y, comm=comm, log=log, threads=threads, epochs=epochs,
                   batch_size=batch_size, lr=lr, seed=seed, optimizer=optimizer,
                   prefetch=prefetch, augment=augment, check_finite=check_finite, trace=trace,
                   blas_threads=blas_threads)


def train(model, loss, data, threads: int = 1, epochs: int = 1, batch_size: int = 64,
          lr: float = 0.05, seed: int = 0, optimizer=None, *, comm=None, prefetch: int = 0,
          augment=None, check_finite: bool = True, trace: bool = True,
          blas_threads: int | None = 1, log=None) -> History:
    """Train ``model`` in place on ``data = (X, y)`` over the ranks of ``comm``; call it on
    every rank (``mpiexec -n 4 python my_script.py``) with the same arguments.

    The arguments are those of ``parallel.train`` with ``strategy="sync"``; ``threads`` are
    per rank, and ``batch_size`` counts all ranks together (each computes its shard).
    ``comm`` is an ``mpi4py`` communicator (default ``MPI.COMM_WORLD``); ``log`` a callable
    such as ``print`` that rank 0 calls with one line per epoch. ``augment`` works, but each
    rank draws its own random numbers, so with it the result no longer equals serial.

    Returns a :class:`~mtlearn.parallel.History` (``strategy="mpi"``, ``threads`` per rank,
    ``info["ranks"]``) on every rank; rank 0's holds every rank's trace. With the same seed
    it equals ``parallel.train(strategy="sync")`` and ``"serial"`` within floating-point
    tolerance for any number of ranks and threads.
    """
    return prepare(model, loss, data, threads, epochs, batch_size, lr, seed, optimizer,
                   comm=comm, prefetch=prefetch, augment=augment, check_finite=check_finite,
                   trace=trace, blas_threads=blas_threads, log=log).run()
