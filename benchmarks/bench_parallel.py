"""Every training strategy against serial: speedup, tracing cost, pipeline bubble.

    python benchmarks/bench_parallel.py                        # 1..cores workers, print tables
    python benchmarks/bench_parallel.py --threads 1 2 4 8 16   # a bigger machine
    python benchmarks/bench_parallel.py --quick                # a smoke test (seconds)
    python benchmarks/bench_parallel.py --record               # also append to RESULTS.md

Three measurements (and two more on request), all in this one process (the fifth adds
worker processes):

1. **Scaling.** The course CNN on shapes (``mtlearn.tasks``), batch 256, float32, SGD +
   momentum, BLAS at one thread per worker, through ``experiments.measure_scaling``: each
   round runs ``serial`` on the main thread and then the strategy at every count, so a
   noisy neighbour slows both alike, and the median of ``--repeats`` rounds is kept. Every
   speedup is over that serial. Synchronous strategies are timed per step (from the end of
   the first step to the end of the last: starting threads or processes is left out);
   asynchronous ones (``hogwild``) in **updates per second** over runs of at least 16
   updates per worker, each worker's first update left out. Each strategy gets Amdahl's
   and the USL's fits, and the X-ray's "not running" share: of the workers' compute time
   (forward + backward), the part they were ready but not running — waiting for the GIL
   or for a core (``History.breakdown``).
2. **Tracing overhead.** ``sync`` with ``trace=True`` against ``trace=False``, interleaved.
3. **Pipeline bubble.** ``pipeline`` for K = 2..4 stages and M in {1, 4, 8, 16}
   micro-batches: the measured idle fraction (``history.info["bubble"]``) against GPipe's
   (K-1)/(M+K-1), on the course CNN (its layers cannot be cut into equal stages) and on a
   model whose stages are equal (the ``balanced-mlp`` task: 12 identical ``Dense(576)
   ReLU`` blocks).
4. **X-ray of sync** (``--parts xray``, not run by default): ``serial`` and ``sync`` at each
   count in interleaved rounds, with the share of the workers' compute time they were not
   running; ``serial``'s share is the cost of the machine's other load, ``sync``'s excess
   over it the GIL.
5. **The machine's ceiling** (``--parts ceiling``, not run by default): N processes each
   running forward + backward on their shard of the batch at the same time, sharing nothing
   (no GIL, no reduce, no update, no loading, no barrier), against the whole batch on the
   main thread, in interleaved rounds. No data-parallel strategy can beat it: what is left
   is what the machine charges (cores shared with other programs, memory and caches shared
   by the workers). Judge a strategy's speedup against it as well as against the target.

The header records the machine (cores, Python build, BLAS) and its load average before and
after: other programs using the cores make every number here worse, and unevenly. Targets
(sync on 2 threads >= 1.9x serial on 2 cores at batch 256, >= 1.95x at batch 1024;
efficiency >= 70% at 8 threads; tracing under 3% of a step; bubble within 5 points of the
formula) are only judged on a quiet machine.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path

from threadpoolctl import threadpool_limits

from mtlearn import parallel, tasks
from mtlearn.bench.machine import describe_build
from mtlearn.experiments import measure_scaling, seconds_per_step
from mtlearn.parallel.base import split_bounds
from mtlearn.runtime import checks, info
from mtlearn.viz.xray import worker_breakdown

RESULTS = Path(__file__).with_name("RESULTS.md")
STRATEGIES = [s for s in parallel.STRATEGIES if s != "serial"]
#: a 1-minute load average above this share of the cores marks the machine as busy
BUSY = 0.25
#: forward + backward passes timed per round in the ceiling measurement
CEILING_STEPS = 12
#: sync on 2 threads over serial, on 2 idle cores, by batch size
TARGET_X2 = {256: 1.9, 1024: 1.95}


# ---------------------------------------------------------------- 1. scaling
def not_running(history, skip: int) -> float:
    """Of the workers' compute time, the share they were not running (GIL or core)."""
    b = worker_breakdown(history, skip)
    compute = b["compute_cpu"] + b["compute_wait"]
    return b["compute_wait"] / compute if compute > 0 else 0.0


def scaling_rows(args) -> tuple[list[str], list[str]]:
    """Markdown table of every strategy at every count, and the target lines."""
    lines = ["| strategy | workers | ms per step or update (min-max) | rate | speedup over "
             "serial | efficiency | compute not running |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    targets = []
    for name in args.strategies:
        sc = measure_scaling("cnn", name, args.threads, batch_size=args.batch,
                             epochs=args.epochs, repeats=args.repeats, samples=args.samples)
        unit, rate = ("update", "updates/s") if sc.asynchronous else ("step", "steps/s")
        lines.append(f"| serial (its reference) | 1 | {1e3 * sc.serial_seconds:.1f} ms/step "
                     f"({1e3 * sc.serial_min:.1f}-{1e3 * sc.serial_max:.1f}) | "
                     f"{1 / sc.serial_seconds:.1f} steps/s | 1.00x | — | "
                     f"{not_running(sc.serial, 1):.0%} |")
        for i, n in enumerate(sc.threads):
            over = " (> cores)" if n > sc.cores else ""
            skip = n if sc.asynchronous else 1
            lines.append(f"| {name} | {n}{over} | {1e3 * sc.seconds[i]:.1f} ms/{unit} "
                         f"({1e3 * sc.seconds_min[i]:.1f}-{1e3 * sc.seconds_max[i]:.1f}) | "
                         f"{sc.steps_per_second[i]:.1f} {rate} | **{sc.speedup[i]:.2f}x** | "
                         f"{sc.efficiency[i]:.0%} | "
                         f"{not_running(sc.histories[n], skip):.0%} |")
        fits = []
        if (a := sc.amdahl()) is not None:
            fits.append(f"Amdahl s = {a.serial_fraction:.2f} (counts up to {sc.cores} cores)")
        if (u := sc.usl()) is not None and len(sc.threads) > 1:
            peak = (f", peak {u.peak_speedup:.2f}x at {u.peak_threads:.1f}" if u.kappa > 0
                    else "")
            fits.append(f"USL σ = {u.sigma:.3f}, κ = {u.kappa:.4f}{peak}")
        if fits:
            lines.append(f"| {name}: fits | | | | {'; '.join(fits)} | | |")
        if sc.asynchronous:
            lines.append(f"| {name}: updates per run | | "
                         f"{', '.join(f'{n}: {sc.updates[n]}' for n in sc.threads)} | | | | |")
        print(f"  {name}: done", file=sys.stderr, flush=True)
        if name == "sync":
            speed = dict(zip(sc.threads, sc.speedup, strict=True))
            if 2 in speed and args.batch in TARGET_X2:
                targets.append(f"sync, 2 threads: {speed[2]:.2f}x serial (target >= "
                               f"{TARGET_X2[args.batch]}x at batch {args.batch} on 2 idle "
                               "cores)")
            if 8 in speed and sc.cores >= 8:
                targets.append(f"sync, 8 threads: efficiency {speed[8] / 8:.0%} (target >= 70%)")
    return lines, targets


# ---------------------------------------------------------------- 2. tracing overhead
def tracing_rows(args) -> list[str]:
    n = min(2, info.cpu_count()) if args.quick else min(max(args.threads), info.cpu_count())
    task = tasks.get("cnn", n=args.samples, val_fraction=0)

    def run(trace: bool) -> float:
        h = parallel.train(task.model(), task.loss, task.data, strategy="sync", threads=n,
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
def bubble_rows(args) -> list[str]:
    lines = ["| model | K | M | theory | measured | difference | busiest stage / mean | "
             "within 5 points |", "|---|---:|---:|---:|---:|---:|---:|---|"]
    ks = [2] if args.quick else [2, 3, 4]
    ms = [1, 4] if args.quick else [1, 4, 8, 16]
    models = [("course CNN", "cnn"), ("balanced MLP, 12 x Dense(576) ReLU", "balanced-mlp")]
    for label, name in models:
        task = tasks.get(name, n=args.samples, val_fraction=0)
        factory, loss, data = task.model, task.loss, task.data
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


# ---------------------------------------------------------------- 4. X-ray of sync
def xray_rows(args) -> list[str]:
    """``serial`` and ``sync`` at each count, in interleaved rounds: of the workers' compute
    time, the share they were not running (``History.breakdown``). ``serial`` has no GIL to
    share, so its share is what the machine's other load costs; the excess of ``sync`` over
    it is the GIL (the Python around the numpy calls, which two threads take turns at)."""
    task = tasks.get("cnn", n=args.samples, val_fraction=0)

    def run(strategy: str, n: int):
        return parallel.train(task.model(), task.loss, task.data, strategy=strategy,
                              threads=n, epochs=args.epochs, batch_size=args.batch,
                              lr=task.lr, seed=0)

    run("serial", 1)                                      # warm up
    keys = [("serial", 1)] + [("sync", n) for n in args.threads]
    found: dict = {k: [] for k in keys}
    for _ in range(args.repeats):
        for key in keys:
            h = run(*key)
            b = worker_breakdown(h)
            found[key].append((seconds_per_step(h), not_running(h, 1), b["wait"] / sum(b.values())))
    lines = ["| run | ms/step, median (min-max) | compute not running, median (min-max) | "
             "fastest run: ms/step, not running | wait share of a step (median) |",
             "|---|---:|---:|---:|---:|"]
    for (strategy, n), rows in found.items():
        ms = [1e3 * t for t, _, _ in rows]
        share = [x for _, x, _ in rows]
        best = min(rows)
        lines.append(f"| {strategy} x{n} | {statistics.median(ms):.1f} ({min(ms):.1f}-"
                     f"{max(ms):.1f}) | {statistics.median(share):.0%} ({min(share):.0%}-"
                     f"{max(share):.0%}) | {1e3 * best[0]:.1f}, {best[1]:.0%} | "
                     f"{statistics.median(w for _, _, w in rows):.0%} |")
    print("  xray: done", file=sys.stderr, flush=True)
    return lines


# ---------------------------------------------------------------- main
def load_average() -> str:
    """The 1, 5 and 15 minute load averages, or "n/a" where the OS has none."""
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


# ---------------------------------------------------------------- 5. the machine's ceiling
def _shard_process(conn, start, k: int, n: int, args) -> None:
    """One of ``n`` processes: on each request, time ``steps`` forward + backward passes of
    its shard (``batch / n`` samples) alone, started with the others at ``start``."""
    threadpool_limits(1, user_api="blas")
    task = tasks.get("cnn", n=args.samples, val_fraction=0)
    X, y = task.data
    lo, hi = split_bounds(args.batch, n)[k]
    model, grads = task.model(), None
    xb, yb = X[lo:hi].copy(), y[lo:hi].copy()
    for _ in range(3):
        _, grads, _ = model.loss_and_grads(task.loss, xb, yb, grads=grads)
    while conn.recv():
        start.wait()
        times = []
        for _ in range(CEILING_STEPS):
            t0 = time.perf_counter()
            model.loss_and_grads(task.loss, xb, yb, grads=grads)
            times.append(time.perf_counter() - t0)
        conn.send(statistics.median(times))


def ceiling_rows(args) -> list[str]:
    """What data parallelism could reach on this machine at best: ``n`` processes (no GIL, no
    shared memory) each running forward + backward on its shard of the batch at the same
    time, with no reduce, no update, no loading and no barrier, against the whole batch's
    forward + backward on the main thread, in interleaved rounds. It leaves only what the
    machine itself charges: cores shared with other programs, and memory and caches shared
    between the workers. A strategy's speedup over serial divided by this is the share of
    the reachable speedup it got."""
    ctx = multiprocessing.get_context()
    task = tasks.get("cnn", n=args.samples, val_fraction=0)
    X, y = task.data
    model = task.model()
    xb, yb = X[:args.batch].copy(), y[:args.batch].copy()
    counts = [n for n in args.threads if 1 < n <= info.cpu_count()]
    lines = ["| workers | serial: forward + backward of the batch, ms | each process's shard, "
             "ms (slowest) | ceiling (min-max) |", "|---:|---:|---:|---:|"]
    with threadpool_limits(1, user_api="blas"):
        grads = model.loss_and_grads(task.loss, xb, yb)[1]
        for n in counts:
            start = ctx.Barrier(n)
            pipes = [ctx.Pipe() for _ in range(n)]
            procs = [ctx.Process(target=_shard_process, args=(child, start, k, n, args))
                     for k, (_, child) in enumerate(pipes)]
            for p in procs:
                p.start()
            serial, shard = [], []
            try:
                for _ in range(args.repeats):
                    times = []
                    for _ in range(CEILING_STEPS):
                        t0 = time.perf_counter()
                        model.loss_and_grads(task.loss, xb, yb, grads=grads)
                        times.append(time.perf_counter() - t0)
                    serial.append(statistics.median(times))
                    for parent, _ in pipes:
                        parent.send(True)
                    shard.append(max(parent.recv() for parent, _ in pipes))
            finally:
                for parent, _ in pipes:
                    parent.send(False)
                for p in procs:
                    p.join()
            ratios = [a / b for a, b in zip(serial, shard, strict=True)]
            lines.append(f"| {n} | {1e3 * statistics.median(serial):.1f} | "
                         f"{1e3 * statistics.median(shard):.1f} | "
                         f"**{statistics.median(ratios):.2f}x** ({min(ratios):.2f}-"
                         f"{max(ratios):.2f}) |")
    print("  ceiling: done", file=sys.stderr, flush=True)
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cores = info.cpu_count()
    count = checks.for_argparse(checks.workers)
    ap.add_argument("--threads", type=count, nargs="+", default=None,
                    help=f"worker counts (default 1..cores = 1..{cores})")
    ap.add_argument("--strategies", nargs="+", default=STRATEGIES, choices=STRATEGIES)
    ap.add_argument("--repeats", type=checks.for_argparse(checks.integer, min=1), default=5,
                    help="rounds; the median is kept")
    ap.add_argument("--batch", type=checks.for_argparse(checks.integer, min=1), default=256)
    ap.add_argument("--samples", type=checks.for_argparse(checks.integer, min=4), default=2048,
                    help="training images per run")
    ap.add_argument("--epochs", type=checks.for_argparse(checks.integer, min=1), default=1)
    ap.add_argument("--parts", nargs="+", default=["scaling", "tracing", "bubble"],
                    choices=["scaling", "tracing", "bubble", "xray", "ceiling"])
    ap.add_argument("--quick", action="store_true",
                    help="a smoke test: 256 samples of batch 32, 1 round, 1-2 workers")
    ap.add_argument("--record", action="store_true", help="append to benchmarks/RESULTS.md")
    args = ap.parse_args(argv)
    if args.quick:
        args.samples, args.batch, args.repeats = 256, 32, 1
        args.threads = args.threads or [1, 2]
    args.threads = sorted(set(args.threads or range(1, cores + 1)))
    if args.batch < max(args.threads):
        ap.error("batch must be at least the largest thread count")
    if args.samples < 2 * args.batch:
        ap.error("samples must be at least twice the batch (two steps to time)")

    load_before = load_average()
    busy = os.getloadavg()[0] > BUSY * cores if hasattr(os, "getloadavg") else False
    mach = info.machine_info()
    out = [f"### bench_parallel — {time.strftime('%Y-%m-%d %H:%M')}{' (quick)' * args.quick}",
           "", f"`python benchmarks/bench_parallel.py {' '.join(argv or sys.argv[1:])}`", "",
           f"{describe_build(mach)} ({mach['system']} {mach['machine']}); BLAS pinned to 1 "
           f"thread per worker. Load average (1, 5, 15 min) before: {load_before}"
           f"{' — a busy machine: not a test of the targets' if busy else ''}. Course CNN on "
           f"shapes, batch {args.batch}, float32, {args.samples // args.batch * args.epochs} "
           f"steps per run (asynchronous: at least 16 updates per worker), median of "
           f"{args.repeats} interleaved rounds.", ""]
    if "scaling" in args.parts:
        table, targets = scaling_rows(args)
        out += ["Speedup over serial (its own serial rounds, main thread); asynchronous "
                "strategies in updates per second:", "", *table, ""]
        note = " — not judged: the machine was busy" if busy else ""
        out += [f"- {t}{note}" for t in targets] + ([""] if targets else [])
    if "tracing" in args.parts:
        out += ["Tracing overhead (`trace=True` against `trace=False`):", "",
                *tracing_rows(args), ""]
    if "bubble" in args.parts:
        out += ["Pipeline bubble (idle fraction of the stage threads) against GPipe's "
                "(K-1)/(M+K-1); the formula assumes equal stages:", "", *bubble_rows(args), ""]
    if "xray" in args.parts:
        out += ["X-ray of `sync` (`History.breakdown`): of the workers' compute time, the "
                "share they were ready but not running — waiting for the GIL or for a core. "
                "`serial` has no GIL to share: its share is the machine's other load.", "",
                *xray_rows(args), ""]
    if "ceiling" in args.parts:
        out += ["The machine's ceiling for data parallelism: processes each running forward + "
                "backward on their shard at once, nothing shared, against the whole batch on "
                "one thread:", "", *ceiling_rows(args), ""]
    out += [f"Load average after: {load_average()}.", ""]
    text = "\n".join(out)
    print(text)
    if args.record:
        with RESULTS.open("a") as f:
            f.write("\n" + text)
        print(f"appended to {RESULTS.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
