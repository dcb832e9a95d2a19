"""``python -m mtlearn.distributed``: the program every MPI rank runs.

    mpiexec -n 4 python -m mtlearn.distributed train cnn --epochs 2 --batch-size 256
    mpiexec -n 2 python -m mtlearn.distributed train cnn --threads 2 --json result.json
    mpiexec -n 2 python -m mtlearn.distributed allreduce --sizes 1000,100000,1000000

Rank 0 prints (one line per epoch, then a summary; ``--json`` adds the results as JSON, on
stdout or into a file); the other ranks stay quiet. Without ``mpiexec`` it runs as one rank.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from . import mpi
from .problems import DATASETS


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def int_list(text: str) -> list[int]:
    try:
        values = [int(float(t)) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text}")
    return values


def two_ints(text: str) -> tuple[int, int]:
    values = int_list(text)
    if len(values) != 2:
        raise argparse.ArgumentTypeError(f"expected two integers such as 8,16, got {text}")
    return values[0], values[1]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mtlearn.distributed",
                                description="Synchronous data-parallel training over MPI "
                                            "ranks (run under mpiexec).")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model, every rank on its shard of each batch")
    t.add_argument("model", choices=["cnn"], help="the course CNN")
    t.add_argument("--dataset", choices=DATASETS, default="shapes")
    t.add_argument("--n", type=positive_int, default=2000, help="images (default 2000)")
    t.add_argument("--image-size", type=positive_int, default=28,
                   help="shapes: pixels per side, a multiple of 4 (default 28)")
    t.add_argument("--channels", type=two_ints, default=(8, 16),
                   help="channels of the two convolutions (default 8,16)")
    t.add_argument("--epochs", type=positive_int, default=1)
    t.add_argument("--batch-size", type=positive_int, default=64,
                   help="samples per step over all ranks together (default 64)")
    t.add_argument("--lr", type=float, default=0.05)
    t.add_argument("--momentum", type=float, default=0.0)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=positive_int, default=1, help="threads per rank")
    t.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    t.add_argument("--blas-threads", type=positive_int, default=1, help="BLAS threads per rank")
    t.add_argument("--prefetch", type=int, default=0, help="load batches ahead on a thread")
    t.add_argument("--no-trace", action="store_true", help="record no timeline")
    t.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    t.add_argument("--json", nargs="?", const="-", default=None, metavar="FILE",
                   help="write the results as JSON (to FILE, or stdout without one)")
    t.add_argument("--save-params", metavar="FILE.npy", default=None,
                   help="save the final parameters (rank 0)")
    t.set_defaults(func=run_train)

    a = sub.add_parser("allreduce", help="time Allreduce alone for several message sizes")
    a.add_argument("--sizes", type=int_list, default=[1000, 10000, 100000, 1000000],
                   help="float64 elements per message, comma-separated")
    a.add_argument("--repeats", type=positive_int, default=20)
    a.add_argument("--json", nargs="?", const="-", default=None, metavar="FILE")
    a.set_defaults(func=run_allreduce)
    return p


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
    with mpi.abort_on_error(comm):   # an error anywhere stops every rank (MPI_Abort)
        code = args.func(args, comm)
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
