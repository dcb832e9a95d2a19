"""One training step of mtlearn's numpy models against the same step in PyTorch CPU.

    python benchmarks/bench_nn.py            # print the table
    python benchmarks/bench_nn.py --record   # also append it to benchmarks/RESULTS.md
    python benchmarks/bench_nn.py cnn --compare-malloc   # also with glibc's default malloc
    python benchmarks/bench_nn.py --worker        # the same CNN step on a worker thread
    python benchmarks/bench_nn.py --worker --malloc-variants --record   # and the options

Both sides run on one thread (BLAS pinned with threadpoolctl, ``torch.set_num_threads(1)``),
interleaved round by round in one process, so a noisy neighbour slows both alike; the ratio
is the median mtlearn step time over the median PyTorch step time. PyTorch is optional
(``pip install torch``): without it only mtlearn's times are printed.

``--worker`` measures something else: one training step of the course CNN (batch 256 and
1024) on the main thread against the same step on one worker thread (started once, running
steps on request), in alternating blocks, and sync data parallelism (x2, x4) against serial,
with the allocator tuning of :mod:`mtlearn.nn.allocator` on and off (``MTLEARN_MALLOC_TUNING=0``)
in alternating fresh processes, round by round. ``--malloc-variants`` adds the other
``mallopt`` settings that were considered (thresholds only: the tuning before the top pad;
one arena; one arena per core). Faults are each thread's minor page faults per step.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import json
import os
import platform
import queue
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from mtlearn import info, nn, parallel
from mtlearn.nn import allocator
from mtlearn.runtime import checks

try:
    import torch
except ImportError:  # optional
    torch = None

try:
    import resource
except ImportError:  # not on Windows
    resource = None

RESULTS = Path(__file__).with_name("RESULTS.md")


# ---------------------------------------------------------------- the models, both sides
def cnn_mtlearn(batch):
    model = nn.course_cnn(seed=0)
    loss, opt = nn.SoftmaxCrossEntropy(), None
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, batch)
    opt = nn.SGD(model.params, lr=0.01)
    grads = np.empty_like(model.params)

    def step():
        model.loss_and_grads(loss, x, y, grads=grads)
        opt.step(grads)
    return step


def cnn_torch(batch):
    tnn = torch.nn
    model = tnn.Sequential(
        tnn.Conv2d(1, 8, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2),
        tnn.Conv2d(8, 16, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2),
        tnn.Flatten(), tnn.Linear(784, 10))
    x = torch.randn(batch, 1, 28, 28)
    y = torch.randint(0, 10, (batch,))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)

    def step():
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return step


SEQ = dict(batch=32, steps=20, inputs=16, hidden=64, classes=10)   # the recurrent cases


def recurrent_mtlearn(cell, batch, steps, inputs, hidden, classes):
    """``cell(inputs, hidden) -> LastStep -> Dense(hidden, classes)``, one SGD step."""
    layer = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell](inputs, hidden)
    model = nn.Sequential(layer, nn.LastStep(), nn.Dense(hidden, classes), seed=0)
    loss = nn.SoftmaxCrossEntropy()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, steps, inputs), dtype=np.float32)
    y = rng.integers(0, classes, batch)
    opt = nn.SGD(model.params, lr=0.01)
    grads = np.empty_like(model.params)

    def step():
        model.loss_and_grads(loss, x, y, grads=grads)
        opt.step(grads)
    return step


def recurrent_torch(cell, batch, steps, inputs, hidden, classes):
    tnn = torch.nn
    layer = {"rnn": tnn.RNN, "lstm": tnn.LSTM, "gru": tnn.GRU}[cell](inputs, hidden,
                                                                     batch_first=True)
    head = tnn.Linear(hidden, classes)
    params = [*layer.parameters(), *head.parameters()]
    x = torch.randn(batch, steps, inputs)
    y = torch.randint(0, classes, (batch,))
    opt = torch.optim.SGD(params, lr=0.01)

    def step():
        opt.zero_grad(set_to_none=True)
        out, _ = layer(x)
        torch.nn.functional.cross_entropy(head(out[:, -1]), y).backward()
        opt.step()
    return step


def _recurrent_case(cell, name, target):
    label = (f"{name}({SEQ['inputs']}, {SEQ['hidden']}) -> LastStep -> Dense, "
             f"batch {SEQ['batch']}, T = {SEQ['steps']}, float32")
    return (label, lambda: recurrent_mtlearn(cell, **SEQ),
            lambda: recurrent_torch(cell, **SEQ), target)


def _transformer_case(target):
    """The 2-block Transformer of bench_transformer.py (which also sweeps the sequence
    length); PyTorch's side is its TransformerEncoderLayer twin with the same weights."""
    sys.path.insert(0, str(Path(__file__).parent))
    import bench_transformer as bt

    shared = {}

    def ours():
        step, shared["model"], shared["x"] = bt.transformer_mtlearn(**bt.TF)
        return step

    def theirs():
        return bt.transformer_torch(shared["model"], shared["x"], **bt.TF)[0]

    tf = bt.TF
    return (f"2-block Transformer (E {tf['embed_dim']}, {tf['num_heads']} heads, MLP "
            f"{tf['hidden']}), T = {tf['seq_len']}, batch {tf['batch']}, float32", ours, theirs,
            target)


CASES = {
    "cnn": ("course CNN, batch 64, float32", lambda: cnn_mtlearn(64),
            lambda: cnn_torch(64), 1.5),
    "lstm": _recurrent_case("lstm", "LSTM", 1.2),
    "rnn": _recurrent_case("rnn", "RNN", 1.2),
    "gru": _recurrent_case("gru", "GRU", 1.2),
    "transformer": _transformer_case(1.0),
}


# ---------------------------------------------------------------- timing
def time_steps(step, n):
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    return (time.perf_counter() - t0) / n


def measure(make_ours, make_theirs, rounds, steps):
    """Median per-step seconds of each side, measured alternately round by round."""
    ours = make_ours()
    theirs = make_theirs() if torch is not None and make_theirs else None
    for _ in range(3):                       # warm up caches, allocators, BLAS
        ours()
        if theirs:
            theirs()
    a, b = [], []
    for _ in range(rounds):
        a.append(time_steps(ours, steps))
        if theirs:
            b.append(time_steps(theirs, steps))
    return statistics.median(a), (statistics.median(b) if b else None)


def run_cases(cases, rounds, steps):
    """``[(label, mtlearn s, PyTorch s or None, target)]`` for the named cases."""
    if torch is not None:
        torch.set_num_threads(1)
    rows = []
    with threadpool_limits(limits=1, user_api="blas"):
        for name in cases:
            label, ours, theirs, target = CASES[name]
            t_ours, t_torch = measure(ours, theirs, rounds, steps)
            rows.append((label, t_ours, t_torch, target))
    return rows


def run_untuned(cases, rounds, steps):
    """The same cases in a fresh process with glibc's allocator left at its defaults."""
    cmd = [sys.executable, __file__, *cases, "--rounds", str(rounds), "--steps", str(steps),
           "--json"]
    env = dict(os.environ, MTLEARN_MALLOC_TUNING="0")
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out)


# ---------------------------------------------------------------- main thread vs a worker thread
WORKER_BATCHES = (256, 1024)
SYNC_THREADS = (2, 4)
#: mallopt parameter numbers (glibc's malloc.h) for the variants below.
MALLOPT = {"M_TRIM_THRESHOLD": -1, "M_TOP_PAD": -2, "M_MMAP_THRESHOLD": -3, "M_ARENA_MAX": -8}
THRESHOLDS = {"M_MMAP_THRESHOLD": 32 << 20, "M_TRIM_THRESHOLD": 256 << 20}


def malloc_variants(every: bool) -> dict[str, tuple[dict, dict]]:
    """``name -> (environment, mallopt settings applied after import)``: the tuning as
    shipped and glibc's defaults; with ``every``, also the options that were weighed."""
    out = {"tuned (as shipped)": ({}, {}),
           "off (MTLEARN_MALLOC_TUNING=0)": ({"MTLEARN_MALLOC_TUNING": "0"}, {})}
    if every:
        off = {"MTLEARN_MALLOC_TUNING": "0"}
        out["thresholds only (before)"] = (off, THRESHOLDS)
        out["thresholds + M_ARENA_MAX=1"] = (off, {**THRESHOLDS, "M_ARENA_MAX": 1})
        for n in dict.fromkeys((2, info.cpu_count())):
            out[f"thresholds + M_ARENA_MAX={n}" + (" (cores)" if n == info.cpu_count()
                                                   else "")] = (off, {**THRESHOLDS,
                                                                      "M_ARENA_MAX": n})
    return out


def apply_mallopt(settings: dict) -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
    libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    for name, value in settings.items():
        if libc.mallopt(MALLOPT[name], value) != 1:
            raise OSError(f"glibc refused mallopt({name}, {value})")


def thread_faults() -> int:
    """Minor page faults of the calling thread so far (0 where the OS cannot tell)."""
    if resource is None or not hasattr(resource, "RUSAGE_THREAD"):
        return 0
    return resource.getrusage(resource.RUSAGE_THREAD).ru_minflt


def timed_steps(step, n) -> list[tuple[float, int]]:
    """``n`` calls of ``step``: ``[(seconds, page faults)]``, on the calling thread."""
    out = []
    for _ in range(n):
        f0, t0 = thread_faults(), time.perf_counter()
        step()
        out.append((time.perf_counter() - t0, thread_faults() - f0))
    return out


class StepThread:
    """One worker thread, started once, that runs ``timed_steps`` when asked."""

    def __init__(self):
        self._jobs, self._done = queue.Queue(), queue.Queue()
        self._thread = threading.Thread(target=self._serve, name="step-worker", daemon=True)
        self._thread.start()

    def _serve(self):
        # BLAS limits are per thread on OpenMP builds: pin this one too.
        with threadpool_limits(limits=1, user_api="blas"):
            while (job := self._jobs.get()) is not None:
                try:
                    self._done.put(timed_steps(*job))
                except BaseException as exc:  # reaches the caller in run()
                    self._done.put(exc)

    def run(self, step, n):
        self._jobs.put((step, n))
        out = self._done.get()
        if isinstance(out, BaseException):
            raise out
        return out

    def close(self):
        self._jobs.put(None)
        self._thread.join()


def process_faults() -> int:
    """Minor page faults of the whole process so far (0 where the OS cannot tell)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt if resource else 0


def sync_seconds(batch: int, strategy: str, threads: int, steps: int = 8):
    """``(seconds, page faults)`` per step of ``parallel.train`` on the course CNN (SGD +
    momentum, BLAS at one thread per worker); seconds from the end of the first step to the
    end of the last, faults of the whole process over the whole run (threads' start too)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch * steps, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, batch * steps)
    f0 = process_faults()
    h = parallel.train(nn.course_cnn(seed=0), nn.SoftmaxCrossEntropy(), (x, y),
                       strategy=strategy, threads=threads, batch_size=batch, lr=0.01,
                       optimizer=lambda p: nn.SGD(p, lr=0.01, momentum=0.9),
                       check_finite=False, trace=False)
    t = h.step_times
    return (t[-1] - t[0]) / (len(t) - 1), (process_faults() - f0) / len(t)


def worker_child(blocks: int, steps: int, sync_repeats: int = 3,
                 parts: str = "penalty,sync") -> dict:
    """One round in this process: main vs worker per batch, then serial vs sync
    (``sync_repeats`` times serial, x2, x4 in turn); ``parts`` says which."""
    out = {"penalty": {}, "sync": {}, "rss_mb": None}
    if "penalty" in parts:
        out["penalty"], out["rss_mb"] = penalty_round(blocks, steps)
    for batch in WORKER_BATCHES if "sync" in parts else ():
        row = {"serial": [], **{n: [] for n in SYNC_THREADS}}
        for _ in range(sync_repeats):
            row["serial"].append(sync_seconds(batch, "serial", 1))
            for n in SYNC_THREADS:
                row[n].append(sync_seconds(batch, "sync", n))
        out["sync"][batch] = row
    return out


def penalty_round(blocks: int, steps: int) -> tuple[dict, float | None]:
    """``({batch: {"main": [(s, faults)], "worker": [...]}}, resident MB after)``: steps on
    the main thread alternating with steps on one worker thread, in blocks of ``steps``."""
    out = {}
    worker = StepThread()
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            for batch in WORKER_BATCHES:
                step = cnn_mtlearn(batch)
                timed_steps(step, 4)                 # a heap takes a few steps to settle
                worker.run(step, 4)
                main, work = [], []
                for _ in range(blocks):
                    main += timed_steps(step, steps)
                    work += worker.run(step, steps)
                out[batch] = {"main": main, "worker": work}
    finally:
        worker.close()
    return out, resident_mb()                    # main + one worker arena, both batches


def resident_mb() -> float | None:
    """This process's resident memory in MB (Linux), None where unknown."""
    try:
        with open("/proc/self/status") as f:
            vm = dict(line.split(":", 1) for line in f if line.startswith("VmRSS"))
        return int(vm["VmRSS"].split()[0]) / 1024
    except (OSError, KeyError, ValueError):
        return None


def loadavg() -> str:
    try:
        with open("/proc/loadavg") as f:
            return f.read().split()[0]
    except OSError:
        return "?"


def run_worker(rounds: int, blocks: int, steps: int, every: bool,
               parts: str) -> tuple[dict, list[str]]:
    """``rounds`` rounds; in each, one fresh process per malloc variant (order rotated)."""
    variants = malloc_variants(every)
    names = list(variants)
    results: dict[str, list[dict]] = {n: [] for n in names}
    loads = []
    for r in range(rounds):
        loads.append(loadavg())
        for name in names[r % len(names):] + names[:r % len(names)]:
            env, settings = variants[name]
            cmd = [sys.executable, __file__, "--worker-child", json.dumps(settings),
                   "--blocks", str(blocks), "--steps", str(steps), "--parts", parts]
            out = subprocess.run(cmd, env={**os.environ, **env}, capture_output=True,
                                 text=True, check=True).stdout
            results[name].append(json.loads(out))
        print(f"round {r + 1}/{rounds} done (load {loads[-1]})", file=sys.stderr)
    loads.append(loadavg())
    return results, loads


def worker_tables(results: dict, parts: str) -> list[str]:
    """Markdown: worker/main per variant and batch; sync vs serial per variant and batch."""
    med = statistics.median
    lines = []
    if "penalty" in parts:
        lines += ["| course CNN, one step | malloc | main ms | worker ms | **worker/main** "
                  "(rounds min-max) | faults/step main | worker | RSS, MB |",
                  "|---|---|---:|---:|---:|---:|---:|---:|"]
    for batch in WORKER_BATCHES if "penalty" in parts else ():
        for name, rs in results.items():
            main = [t for r in rs for t, _ in r["penalty"][str(batch)]["main"]]
            work = [t for r in rs for t, _ in r["penalty"][str(batch)]["worker"]]
            fm = [f for r in rs for _, f in r["penalty"][str(batch)]["main"]]
            fw = [f for r in rs for _, f in r["penalty"][str(batch)]["worker"]]
            per = [med(t for t, _ in r["penalty"][str(batch)]["worker"])
                   / med(t for t, _ in r["penalty"][str(batch)]["main"]) for r in rs]
            lines.append(f"| batch {batch} | {name} | {1e3 * med(main):.1f} | "
                         f"{1e3 * med(work):.1f} | **{med(work) / med(main):.2f}** "
                         f"({min(per):.2f}-{max(per):.2f}) | {med(fm):.0f} | {med(fw):.0f} | "
                         f"{_rss([r['rss_mb'] for r in rs])} |")
    if "sync" not in parts:
        return lines
    head = " | ".join(f"sync x{n} ms | x{n} speedup (min-max) | faults" for n in SYNC_THREADS)
    lines += ["", f"| course CNN, sync data parallel | malloc | serial ms | faults | {head} |",
              "|---|---|---:|---:|" + "---:|---:|---:|" * len(SYNC_THREADS)]

    def per_round(rows, key, i):             # one median per round (process)
        return [med(v[i] for v in row[key]) for row in rows]

    for batch in WORKER_BATCHES:
        for name, rs in results.items():
            rows = [r["sync"][str(batch)] for r in rs]
            serial = per_round(rows, "serial", 0)
            cells = []
            for n in SYNC_THREADS:
                t = per_round(rows, str(n), 0)
                sp = [a / b for a, b in zip(serial, t, strict=True)]
                cells.append(f"{1e3 * med(t):.1f} | **{med(sp):.2f}x** ({min(sp):.2f}-"
                             f"{max(sp):.2f}) | {med(per_round(rows, str(n), 1)):.0f}")
            lines.append(f"| batch {batch} | {name} | {1e3 * med(serial):.1f} | "
                         f"{med(per_round(rows, 'serial', 1)):.0f} | {' | '.join(cells)} |")
    return lines


def _rss(values) -> str:
    known = [v for v in values if v is not None]
    return f"{statistics.median(known):.0f}" if known else "—"


def worker_report(args) -> str:
    results, loads = run_worker(args.rounds, args.blocks, args.steps, args.malloc_variants,
                                args.parts)
    if args.json:
        return json.dumps({"results": results, "loads": loads})
    mach = info.machine_info()
    blas = ", ".join(f"{b['library']} {b['version']} ({b['kernel']})" for b in mach["blas"]
                     if b["api"] == "blas")
    libc = " ".join(platform.libc_ver()) or "libc unknown"
    lines = [
        f"### bench_nn, main thread vs worker thread — {time.strftime('%Y-%m-%d')}",
        "",
        f"{mach['cores']} cores, CPython {mach['python']} "
        f"({'free-threaded' if mach['free_threaded_build'] else 'GIL'}), numpy {mach['numpy']}, "
        f"BLAS {blas} pinned to 1 thread, {libc}. As shipped: {allocator.describe()}. "
        f"{args.rounds} rounds; in each, one fresh process per malloc setting (order rotated) "
        + (f"runs {args.blocks} x {args.steps} steps on the main thread alternating with "
           f"{args.blocks} x {args.steps} on one worker thread (RSS: the process after both "
           f"batches ran on both threads). " if "penalty" in args.parts else "")
        + ("It runs serial, sync x2 and x4 in turn 3 times, 8 steps each (speedup: median "
           "over rounds of each round's median serial / median sync; faults: the process's "
           "minor page faults per step, thread start included). " if "sync" in args.parts
           else "")
        + f"Medians over all rounds. Load average (1 min) at each round: {', '.join(loads)}."
        f"  `python benchmarks/bench_nn.py --worker"
        f"{' --malloc-variants' if args.malloc_variants else ''}"
        f"{'' if args.parts == 'penalty,sync' else ' --parts ' + args.parts}"
        f" --rounds {args.rounds}`",
        "",
        *worker_tables(results, args.parts),
    ]
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cases", nargs="*", default=list(CASES), help=f"of {list(CASES)}")
    count = checks.for_argparse(checks.integer, min=1)
    ap.add_argument("--rounds", type=count, help="timed rounds (default 15; --worker: 5)")
    ap.add_argument("--steps", type=count,
                    help="steps per timed round (default 10; --worker: 3 per block)")
    ap.add_argument("--record", action="store_true", help="append to benchmarks/RESULTS.md")
    ap.add_argument("--compare-malloc", action="store_true",
                    help="also run every case with MTLEARN_MALLOC_TUNING=0 (glibc defaults)")
    ap.add_argument("--worker", action="store_true",
                    help="main thread vs worker thread and sync vs serial, malloc tuning on/off")
    ap.add_argument("--malloc-variants", action="store_true",
                    help="with --worker: also the mallopt settings that were weighed")
    ap.add_argument("--blocks", type=count, default=3,
                    help="with --worker: alternating main/worker blocks per round")
    ap.add_argument("--parts", default="penalty,sync", choices=("penalty,sync", "penalty", "sync"),
                    help="with --worker: penalty (main vs worker), sync (x2, x4 vs serial)")
    ap.add_argument("--worker-child", help=argparse.SUPPRESS)
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    worker = args.worker or args.worker_child is not None
    args.rounds = args.rounds or (5 if worker else 15)
    args.steps = args.steps or (3 if worker else 10)
    if args.worker_child is not None:
        apply_mallopt(json.loads(args.worker_child))
        print(json.dumps(worker_child(args.blocks, args.steps, parts=args.parts)))
        return 0
    if args.worker:
        text = worker_report(args)
        print(text)
        if args.record and not args.json:
            with RESULTS.open("a") as f:
                f.write("\n" + text)
            print(f"appended to {RESULTS}")
        return 0
    unknown = [c for c in args.cases if c not in CASES]
    if unknown:
        ap.error(f"unknown case(s) {unknown}; choose from {list(CASES)}")
    rows = run_cases(args.cases, args.rounds, args.steps)
    if args.json:
        print(json.dumps(rows))
        return 0
    untuned = run_untuned(args.cases, args.rounds, args.steps) if args.compare_malloc else None
    mach = info.machine_info()
    blas = ", ".join(f"{b['library']} {b['version']} ({b['kernel']})" for b in mach["blas"]
                     if b["api"] == "blas")
    tv = torch.__version__ if torch is not None else "not installed"
    head = "| one training step | mtlearn ms | PyTorch ms | ratio | target |"
    rule = "|---|---:|---:|---:|---:|"
    if untuned:
        head = ("| one training step | mtlearn ms | PyTorch ms | ratio | target "
                "| glibc defaults: mtlearn ms | PyTorch ms | ratio |")
        rule += "---:|---:|---:|"
    lines = [
        f"### bench_nn — {time.strftime('%Y-%m-%d')}",
        "",
        f"{mach['cores']} cores, CPython {mach['python']} "
        f"({'free-threaded' if mach['free_threaded_build'] else 'GIL'}), numpy {mach['numpy']}, "
        f"BLAS {blas} pinned to 1 thread; PyTorch {tv} at 1 thread. "
        f"Median of {args.rounds} interleaved rounds x {args.steps} steps; "
        f"allocator tuning {'on' if allocator.applied else 'off'} (both sides share the process)."
        f"  `python benchmarks/bench_nn.py{' --compare-malloc' if untuned else ''}`",
        "",
        head,
        rule,
    ]
    for i, (label, a, b, target) in enumerate(rows):
        line = f"| {label} | {a * 1e3:.2f} | {_ms(b)} | {_ratio(a, b)} | <= {target}x |"
        if untuned:
            _, ua, ub, _ = untuned[i]
            line += f" {ua * 1e3:.2f} | {_ms(ub)} | {_ratio(ua, ub)} |"
        lines.append(line)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.record:
        with RESULTS.open("a") as f:
            f.write("\n" + text)
        print(f"appended to {RESULTS}")
    return 0


def _ms(t):
    return f"{t * 1e3:.2f}" if t else "—"


def _ratio(a, b):
    return f"**{a / b:.2f}x**" if b else "—"


if __name__ == "__main__":
    sys.exit(main())
