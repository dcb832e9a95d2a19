"""Beyond one machine: the synchronous data-parallel training of ``parallel.sync``, across
MPI ranks (processes, on one machine or many) with ``mpi4py``.

From a shell, every rank runs the same program::

    mpiexec -n 4 python -m mtlearn.distributed train cnn --epochs 1 --batch-size 256
    mpiexec -n 2 python -m mtlearn.distributed train cnn --threads 2   # hybrid: ranks x threads

From a notebook (a subprocess; output streamed; results returned as a dict)::

    from mtlearn import distributed
    r = distributed.launch(2, "train", "cnn", epochs=1, batch_size=64, dtype="float64")

Inside your own MPI program, on every rank::

    history = distributed.train(model, loss, (X, y), threads=1, epochs=1, batch_size=64)

Modules: :mod:`.mpi` (the training loop, ``train``), :mod:`.threads` (threads inside a rank),
:mod:`.launcher` (``mpiexec`` from Python), :mod:`.guard` (the keeper that ends a launched
job with its caller and removes its shared memory), :mod:`.arguments` (the command line,
checked before anything starts), :mod:`.problems` (the job every rank builds from the
seed), :mod:`.timing` (``Allreduce`` alone), :mod:`.cost` (the ring allreduce model).

Importing this package never imports ``mpi4py`` (which would start MPI in the importing
process, e.g. a notebook kernel); without mpi4py it still imports, and anything that needs
MPI raises :class:`MPINotAvailable` saying how to install it
(``pip install "mtlearn[mpi]"``: mpi4py and the ``mpich`` wheel, which brings ``mpiexec``).
"""

from .cost import allreduce_time, bus_bandwidth, fit_allreduce, ring_allreduce_bytes
from .launcher import LaunchError, command, launch, mpiexec_path
from .mpi import (
    INSTALL_HINT,
    MPINotAvailable,
    MPISync,
    abort_on_error,
    mpi_available,
    prepare,
    require_mpi,
    train,
)
from .problems import cnn_problem

__all__ = ["INSTALL_HINT", "LaunchError", "MPINotAvailable", "MPISync", "abort_on_error",
           "allreduce_time", "bus_bandwidth", "cnn_problem", "command", "fit_allreduce",
           "launch", "mpi_available", "mpiexec_path", "prepare", "require_mpi",
           "ring_allreduce_bytes", "train"]
