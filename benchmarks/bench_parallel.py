"""Every training strategy against serial: steps/s and speedup, tracing cost, pipeline bubble.

    python benchmarks/bench_parallel.py                        # 1..cores workers, print tables
    python benchmarks/bench_parallel.py --threads 1 2 4 8 16   # a bigger machine
    python benchmarks/bench_parallel.py --quick                # a smoke test (seconds)
    python benchmarks/bench_parallel.py --record               # also append to RESULTS.md

Three measurements, all in this one process:

1. **Scaling.** The course CNN on shapes, batch 256, float32, SGD + momentum, BLAS at one
   thread per worker: for every strategy and worker count, seconds per step (from the end
   of the first step to the end of the last: starting threads or processes is left out),
   as the median of ``--repeats`` rounds; each round runs ``serial`` and then the strategy
   at every count, so a noisy neighbour slows both alike. Speedup is over that serial.
2. **Tracing overhead.** ``sync`` with ``trace=True`` against ``trace=False``, interleaved.
3. **Pipeline bubble.** ``pipeline`` for K = 2..4 stages and M in {1, 4, 8, 16}
   micro-batches: the measured idle fraction (``history.info["bubble"]``) against GPipe's
   (K-1)/(M+K-1), on the course CNN (its layers cannot be cut into equal stages) and on a
   model whose stages are equal (12 identical ``Dense(512, 512) Tanh`` blocks).

Targets (issue 5): sync on 2 threads >= 1.7x serial on 2 cores; efficiency >= 70% at 8
threads; tracing under 3% of a step; bubble within 5 points of the formula. Record only on
a quiet machine: other programs running make every number here worse, and unevenly.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from mtlearn import info, nn, parallel
from mtlearn.experiments import make_task, measure_scaling, seconds_per_step

RESULTS = Path(__file__).with_name("RESULTS.md")
STRATEGIES = [s for s in parallel.STRATEGIES if s != "serial"]


# ---------------------------------------------------------------- 1. scaling
def scaling_rows(args) -> tuple[list[str], list[str]]:
    """Markdown table of every strategy at every count, and the target lines."""
    lines = ["| strategy | workers | ms/step (min-max) | steps/s | speedup | efficiency |",
             "|---|---:|---:|---:|---:|---:|"]
    targets = []
    for name in args.strategies:
        sc = measure_scaling("cnn", name, args.threads, batch_size=args.batch,
                             epochs=args.epochs, repeats=args.repeats, samples=args.samples)
        lines.append(f"| serial (its reference) | 1 | {1e3 * sc.serial_seconds:.1f} "
                     f"({1e3 * sc.serial_min:.1f}-{1e3 * sc.serial_max:.1f}) | "
                     f"{1 / sc.serial_seconds:.1f} | 1.00x | — |")
        for i, n in enumerate(sc.threads):
            over = " (> cores)" if n > sc.cores else ""
            lines.append(f"| {name} | {n}{over} | {1e3 * sc.seconds[i]:.1f} "
                         f"({1e3 * sc.seconds_min[i]:.1f}-{1e3 * sc.seconds_max[i]:.1f}) | "
                         f"{sc.steps_per_second[i]:.1f} | **{sc.speedup[i]:.2f}x** | "
                         f"{sc.efficiency[i]:.0%} |")
        s = sc.serial_fraction()
        if s is not None:
            lines.append(f"| {name}: Amdahl fit up to {sc.cores} cores | | | | s = {s:.2f} | |")
        print(f"  {name}: done", file=sys.stderr, flush=True)
        if name == "sync":
            speed = dict(zip(sc.threads, sc.speedup, strict=True))
            if 2 in speed:
                targets.append(f"sync, 2 threads: {speed[2]:.2f}x serial (target >= 1.7x on a "
                               "quiet 2-core machine)")
            if 8 in speed and sc.cores >= 8:
                targets.append(f"sync, 8 threads: efficiency {speed[8] / 8:.0%} (target >= 70%)")
    return lines, targets


# ---------------------------------------------------------------- 2. tracing overhead
def tracing_rows(args) -> list[str]:
    n = min(2, info.cpu_count()) if args.quick else min(max(args.threads), info.cpu_count())
    factory, loss, data = make_task("cnn", samples=args.samples)

    def run(trace: bool) -> float:
        h = parallel.train(factory(), loss, data, strategy="sync", threads=n,
                           epochs=2 * args.epochs, batch_size=args.batch, trace=trace)
        return seconds_per_step(h)

    run(False)                                            # warm up
    on, off = [], []
    for _ in range(max(args.repeats, 3)):
        on.append(run(True))
        off.append(run(False))
    t_on, t_off = statistics.median(on), statistics.median(off)
    overhead = (t_on - t_off) / t_off
    return ["| run | ms/step, trace on | ms/step, trace off | overhead | target |",
            "|---|---:|---:|---:|---:|",
            f"| sync, {n} threads, batch {args.batch} | {1e3 * t_on:.2f} | {1e3 * t_off:.2f} | "
            f"**{overhead:+.1%}** | < 3% |"]


# ---------------------------------------------------------------- 3. pipeline bubble
def balanced_task(samples: int, width: int = 512, blocks: int = 12):
    """``blocks`` identical ``Dense(width, width) Tanh`` pairs: any K dividing ``blocks``
    gets equal stages (12: K = 2, 3, 4). MSE against random targets."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((samples, width), dtype=np.float32)
    y = rng.standard_normal((samples, width), dtype=np.float32)

    def factory():
        return nn.Sequential(*[layer for _ in range(blocks)
                               for layer in (nn.Dense(width, width), nn.Tanh())], seed=0)
    return factory, nn.MSELoss(), (X, y)


def bubble_rows(args) -> list[str]:
    lines = ["| model | K | M | theory | measured | difference | busiest stage / mean | "
             "within 5 points |", "|---|---:|---:|---:|---:|---:|---:|---|"]
    ks = [2] if args.quick else [2, 3, 4]
    ms = [1, 4] if args.quick else [1, 4, 8, 16]
    cnn = make_task("cnn", samples=args.samples)
    tasks = [("course CNN", *cnn), ("12 x Dense(512) Tanh", *balanced_task(args.samples))]
    for label, factory, loss, data in tasks:
        parallel.train(factory(), loss, data, strategy="pipeline", threads=2,
                       batch_size=args.batch, lr=1e-3)
        for k in ks:
            for m in ms:
                bubbles, busy = [], []
                for _ in range(args.repeats):
                    h = parallel.train(factory(), loss, data, strategy="pipeline", threads=k,
                                       epochs=args.epochs, batch_size=args.batch, lr=1e-3,
                                       micro_batches=m)
                    bubbles.append(h.info["bubble"])
                    busy.append(max(h.info["stage_busy"]) / statistics.mean(h.info["stage_busy"]))
                theory, measured = h.info["bubble_theory"], statistics.median(bubbles)
                diff = measured - theory
                over = " (> cores)" if k > info.cpu_count() else ""
                lines.append(f"| {label} | {k}{over} | {m} | {theory:.1%} | {measured:.1%} | "
                             f"{100 * diff:+.1f} pp | {statistics.median(busy):.2f} | "
                             f"{'yes' if abs(diff) <= 0.05 else 'no'} |")
        print(f"  bubble, {label}: done", file=sys.stderr, flush=True)
    return lines


# ---------------------------------------------------------------- main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cores = info.cpu_count()
    ap.add_argument("--threads", type=int, nargs="+", default=None,
                    help=f"worker counts (default 1..cores = 1..{cores})")
    ap.add_argument("--strategies", nargs="+", default=STRATEGIES, choices=STRATEGIES)
    ap.add_argument("--repeats", type=int, default=5, help="rounds; the median is kept")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--samples", type=int, default=2048, help="training images per run")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--parts", nargs="+", default=["scaling", "tracing", "bubble"],
                    choices=["scaling", "tracing", "bubble"])
    ap.add_argument("--quick", action="store_true",
                    help="a smoke test: 256 samples of batch 32, 1 round, 1-2 workers")
    ap.add_argument("--record", action="store_true", help="append to benchmarks/RESULTS.md")
    args = ap.parse_args(argv)
    if args.quick:
        args.samples, args.batch, args.repeats = 256, 32, 1
        args.threads = args.threads or [1, 2]
    args.threads = sorted(set(args.threads or range(1, cores + 1)))
    if min(args.threads) < 1 or args.repeats < 1 or args.batch < max(args.threads):
        ap.error("threads and repeats must be >= 1, and batch >= the largest thread count")
    if args.samples < 2 * args.batch:
        ap.error("samples must be at least twice the batch (two steps to time)")

    mach = info.machine_info()
    blas = ", ".join(f"{b['library']} {b['version']} ({b['kernel']})" for b in mach["blas"])
    build = "free-threaded" if mach["free_threaded_build"] else "GIL"
    gil = "on" if mach["gil_enabled"] else "off"
    out = [f"### bench_parallel — {time.strftime('%Y-%m-%d')}{' (quick)' * args.quick}", "",
           f"{mach['cores']} cores ({mach['system']} {mach['machine']}), CPython "
           f"{mach['python']} ({build}, GIL {gil}), numpy {mach['numpy']}, BLAS {blas} pinned "
           f"to 1 thread per worker. Course CNN on shapes, batch {args.batch}, float32, "
           f"{args.samples // args.batch * args.epochs} steps per run, median of "
           f"{args.repeats} interleaved rounds; ms/step from the end of the first step to the "
           "end of the last.", ""]
    if "scaling" in args.parts:
        table, targets = scaling_rows(args)
        out += ["Steps per second and speedup over serial:", "", *table, ""]
        out += [f"- {t}" for t in targets] + ([""] if targets else [])
    if "tracing" in args.parts:
        out += ["Tracing overhead (`trace=True` against `trace=False`):", "",
                *tracing_rows(args), ""]
    if "bubble" in args.parts:
        out += ["Pipeline bubble (idle fraction of the stage threads) against GPipe's "
                "(K-1)/(M+K-1); the formula assumes equal stages:", "", *bubble_rows(args), ""]
    text = "\n".join(out)
    print(text)
    if args.record:
        with RESULTS.open("a") as f:
            f.write("\n" + text)
        print(f"appended to {RESULTS.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
