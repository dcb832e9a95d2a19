"""One training step of mtlearn's numpy models against the same step in PyTorch CPU.

    python benchmarks/bench_nn.py            # print the table
    python benchmarks/bench_nn.py --record   # also append it to benchmarks/RESULTS.md
    python benchmarks/bench_nn.py cnn --compare-malloc   # also with glibc's default malloc

Both sides run on one thread (BLAS pinned with threadpoolctl, ``torch.set_num_threads(1)``),
interleaved round by round in one process, so a noisy neighbour slows both alike; the ratio
is the median mtlearn step time over the median PyTorch step time. PyTorch is optional
(``pip install torch``): without it only mtlearn's times are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from mtlearn import info, nn
from mtlearn.nn import allocator

try:
    import torch
except ImportError:  # optional
    torch = None

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


CASES = {
    "cnn": ("course CNN, batch 64, float32", lambda: cnn_mtlearn(64),
            lambda: cnn_torch(64), 1.5),
    "lstm": _recurrent_case("lstm", "LSTM", 1.2),
    "rnn": _recurrent_case("rnn", "RNN", 1.2),
    "gru": _recurrent_case("gru", "GRU", 1.2),
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


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cases", nargs="*", default=list(CASES), help=f"of {list(CASES)}")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--steps", type=int, default=10, help="steps per timed round")
    ap.add_argument("--record", action="store_true", help="append to benchmarks/RESULTS.md")
    ap.add_argument("--compare-malloc", action="store_true",
                    help="also run every case with MTLEARN_MALLOC_TUNING=0 (glibc defaults)")
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
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
