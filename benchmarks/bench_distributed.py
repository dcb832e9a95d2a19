"""MPI ranks against threads against both (hybrid), training the course CNN.

    python benchmarks/bench_distributed.py            # print the table
    python benchmarks/bench_distributed.py --record   # also append it to benchmarks/RESULTS.md
    python benchmarks/bench_distributed.py --rounds 5 --epochs 3

The course CNN, float32, batch 256, BLAS at one thread per worker. Threads run in this
process (``parallel.train(strategy="sync")``); ranks are launched with
``mtlearn.distributed.launch`` (``mpiexec`` beside this Python; needs ``mtlearn[mpi]``).
Every configuration trains the same steps; its time is the median step (the first, a
warm-up, left out), and the median of that over ``--rounds`` rounds, the configurations
interleaved round by round so a noisy neighbour slows them alike. Ratios are against one
thread in this process. "start-up" is what launching the job adds (processes, imports,
MPI_Init), paid once per job.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import statistics
import time
from pathlib import Path

import numpy as np

from mtlearn import distributed, info, parallel

RESULTS = Path(__file__).with_name("RESULTS.md")
#: (label, ranks or None for in-process threads, threads per rank)
#: ``serial`` (ranks 0) is the baseline every speedup is measured against: the serial loop on
#: this process's main thread, in the same rounds
CONFIGS = [("serial", 0, 1), ("1 thread", None, 1), ("2 threads", None, 2), ("1 rank", 1, 1),
           ("2 ranks", 2, 1), ("1 rank x 2 threads", 1, 2), ("2 ranks x 2 threads", 2, 2)]


def median_step(step_times) -> float:
    return float(np.median(np.diff(step_times)))


def run_threads(threads: int, job: dict, steps: dict, strategy: str = "sync") -> dict:
    model, loss, data = distributed.cnn_problem(**job)
    h = parallel.train(model, loss, data, strategy=strategy, threads=threads, seed=job["seed"],
                       **steps)
    reduce_s = h.time_by_kind().get("reduce", 0.0) / threads
    return {"step": median_step(h.step_times), "reduce": reduce_s / h.wall_time,
            "startup": 0.0}


def run_ranks(ranks: int, threads: int, job: dict, steps: dict) -> dict:
    r = distributed.launch(ranks, "train", "cnn", **job, **steps, threads=threads, echo=None,
                           no_trace=True, quiet=True)
    return {"step": median_step(r["step_times"]),
            "reduce": r["info"]["allreduce_s"] / r["wall_time"],
            "startup": r["elapsed_s"] - r["wall_time"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=2, help="epochs of 8 steps each")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--record", action="store_true", help="append to benchmarks/RESULTS.md")
    args = ap.parse_args(argv)
    job = {"n": 8 * args.batch_size, "seed": 0}
    steps = {"epochs": args.epochs, "batch_size": args.batch_size, "lr": 0.05}

    runs: dict[str, list[dict]] = {label: [] for label, _, _ in CONFIGS}
    run_threads(1, job, steps)                                  # warm up this process
    for r in range(args.rounds):
        for label, ranks, threads in CONFIGS:
            out = (run_threads(1, job, steps, "serial") if ranks == 0
                   else run_threads(threads, job, steps) if ranks is None
                   else run_ranks(ranks, threads, job, steps))
            runs[label].append(out)
        print(f"round {r + 1}/{args.rounds} done", flush=True)

    def med(label, key):
        return statistics.median(x[key] for x in runs[label])

    base = med("serial", "step")
    mach = info.machine_info()
    blas = ", ".join(f"{b['library']} {b['version']} ({b['kernel']})" for b in mach["blas"]
                     if b["api"] == "blas")
    versions = (f"mpi4py {importlib.metadata.version('mpi4py')}, "
                f"MPICH {importlib.metadata.version('mpich')}")
    lines = [
        f"### bench_distributed — {time.strftime('%Y-%m-%d')}",
        "",
        f"{mach['cores']} cores, CPython {mach['python']} "
        f"({'free-threaded' if mach['free_threaded_build'] else 'GIL'}), numpy {mach['numpy']}, "
        f"BLAS {blas} at 1 thread per worker; {versions}. Course CNN float32, batch "
        f"{args.batch_size}, {args.epochs * 8} steps per run; median step of the median of "
        f"{args.rounds} interleaved rounds.  `python benchmarks/bench_distributed.py`",
        "",
        "| configuration | workers | ms/step | steps/s | vs serial | reduce share | start-up s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, ranks, threads in CONFIGS:
        step = med(label, "step")
        workers = max(ranks or 1, 1) * threads
        startup = f"{med(label, 'startup'):.2f}" if ranks else "—"
        lines.append(f"| {label} | {workers} | {step * 1e3:.1f} | {1 / step:.1f} | "
                     f"{base / step:.2f}x | {med(label, 'reduce'):.0%} | {startup} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.record:
        with RESULTS.open("a") as f:
            f.write("\n" + text)
        print(f"appended to {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
