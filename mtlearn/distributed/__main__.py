"""``python -m mtlearn.distributed``: the program every MPI rank runs.

    mpiexec -n 4 python -m mtlearn.distributed train cnn --epochs 2 --batch-size 256
    mpiexec -n 2 python -m mtlearn.distributed train cnn --threads 2 --json result.json
    mpiexec -n 2 python -m mtlearn.distributed allreduce --sizes 1000,100000,1000000

Rank 0 prints (one line per epoch, then a summary; ``--json`` adds the results as JSON, on
stdout or into a file); the other ranks stay quiet. Without ``mpiexec`` it runs as one rank.
Every option is checked before MPI starts (:mod:`.arguments`): a bad one exits with code 2
and a message naming it.
"""

from __future__ import annotations

import json
import sys

import numpy as np

from . import mpi
from .arguments import build_parser


def write_json(result: dict, where: str) -> None:
    text = json.dumps(result)
    if where == "-":
        print(text, flush=True)
    else:
        with open(where, "w") as f:
            f.write(text)


def run_train(args, comm) -> int:
    from .problems import cnn_problem

    rank, ranks = comm.Get_rank(), comm.Get_size()
    say = print if rank == 0 else (lambda *a, **k: None)
    dtype = np.dtype(args.dtype)
    optimizer = None
    if args.momentum:
        from .. import nn

        def optimizer(p):
            return nn.SGD(p, lr=args.lr, momentum=args.momentum)
    try:
        model, loss, (X, y) = cnn_problem(args.n, dataset=args.dataset,
                                          image_size=args.image_size,
                                          channels=args.channels, seed=args.seed,
                                          dtype=dtype)
        job = mpi.prepare(model, loss, (X, y), args.threads, args.epochs, args.batch_size,
                          args.lr, args.seed, optimizer, comm=comm, prefetch=args.prefetch,
                          trace=not args.no_trace, blas_threads=args.blas_threads,
                          log=None if args.quiet else (lambda line: print(line, flush=True)))
    except (TypeError, ValueError) as exc:    # the same on every rank: say it once
        say(f"python -m mtlearn.distributed: {exc}", file=sys.stderr)
        return 2
    B, P = args.batch_size, model.num_params
    say(f"{ranks} rank(s) x {args.threads} thread(s); {args.dataset}: {len(X)} images "
        f"{X.shape[1:]}; course CNN, {P:,} parameters, {dtype}; batch {B} "
        f"({job.shard_size} on rank 0), {job.steps_per_epoch} steps/epoch", flush=True)
    history = job.run()
    if rank != 0:
        return 0
    steps, wall = history.steps, history.wall_time
    reduce_s = history.info["allreduce_s"]
    print(f"{steps} steps in {wall:.2f} s ({steps / wall:.1f} steps/s); loss "
          f"{history.losses[0]:.4f} -> {history.losses[-1]:.4f}; Allreduce of "
          f"{history.info['allreduce_bytes'] / 1e3:.0f} kB per step took {reduce_s:.2f} s on "
          f"rank 0 ({reduce_s / wall:.0%})", flush=True)
    if args.save_params:
        np.save(args.save_params, model.params)
    if args.json:
        result = history.to_dict()
        result.update(ranks=ranks, steps_per_s=steps / wall, num_params=P, dtype=str(dtype),
                      batch_size=B)
        write_json(result, args.json)
    return 0


def run_allreduce(args, comm) -> int:
    from .cost import bus_bandwidth
    from .timing import time_allreduce

    result = time_allreduce(args.sizes, args.repeats, comm=comm)
    if comm.Get_rank() != 0:
        return 0
    ranks = result["ranks"]
    print(f"Allreduce over {ranks} rank(s), median of {args.repeats}:")
    for nbytes, t in zip(result["bytes"], result["seconds"], strict=True):
        bw = bus_bandwidth(nbytes, t, ranks) / 1e9 if ranks > 1 else 0.0
        print(f"{nbytes:>12,} bytes  {t * 1e6:10.1f} us  bus bandwidth {bw:6.2f} GB/s")
    if args.json:
        write_json(result, args.json)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        MPI = mpi.require_mpi()
    except mpi.MPINotAvailable as exc:
        print(f"python -m mtlearn.distributed: {exc}", file=sys.stderr)
        return 2
    comm = MPI.COMM_WORLD
    run = {"train": run_train, "allreduce": run_allreduce}[args.command]
    with mpi.abort_on_error(comm):   # an error anywhere stops every rank (MPI_Abort)
        code = run(args, comm)
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
