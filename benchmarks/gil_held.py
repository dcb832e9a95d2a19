"""How long one training step holds the GIL, measured exactly (Linux, ``perf``, root).

    python benchmarks/gil_held.py                    # course CNN, batch 128 and 256
    python benchmarks/gil_held.py --task lstm --batch 32 --layers   # any model of mtlearn.tasks
    python benchmarks/gil_held.py --batch 128 --layers   # and every layer's forward/backward
    python benchmarks/gil_held.py --tree ../old-checkout # the same for another checkout
    python benchmarks/gil_held.py --record           # also append to benchmarks/RESULTS.md

A thread of the GIL build gives the GIL up only through ``PyEval_SaveThread`` (a numpy call
about to work without Python objects, a BLAS call, a blocking wait) and takes it back through
``PyEval_RestoreThread``. This script puts a ``perf`` uprobe on both functions of the running
libpython, runs the step in a child process on its main thread alone, and reads the probe
times back: between a Save and the next Restore the step ran without the GIL; the rest of
the wall time it held it. One thread alone never waits for the GIL, so the held time is the
step's own Python and numpy bookkeeping: the part a second training thread must wait for,
and the ceiling Amdahl's law puts on threads of the GIL build (a step that holds the GIL for
a share ``s`` of its time cannot run faster than ``1/s`` times on any number of threads).

It also counts the releases per step: each one is a point where another thread can take the
GIL, and where this one may then have to wait to get it back.

Each probe hit is a trap into the kernel (a few microseconds, mostly counted as held), so
the held figures are a slight overestimate, the same for every checkout. Needs: Linux,
``perf`` on the PATH, and the right to add uprobes (root, or ``perf_event_paranoid`` <= -1
with tracefs writable); a CPython with a shared libpython or symbols in its executable. On
anything else the script says what is missing and exits with status 2.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")
ROOT = Path(__file__).resolve().parent.parent
PROBES = ("PyEval_SaveThread", "PyEval_RestoreThread")
#: a Save -> Restore gap longer than this marks the child's sleep between two segments
MARK = 0.030


# ------------------------------------------------------------------ the child: the workload
def child(name: str, batches: list[int], steps: int, layers: bool) -> None:
    """Run each segment between two 50 ms sleeps and print its name and wall seconds."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    from mtlearn import tasks

    threadpool_limits(1, user_api="blas")
    task = tasks.get(name, n=max(batches), seed=0, dtype=np.float32, val_fraction=0)
    X, y = task.data
    model = task.model()
    grads = np.empty_like(model.params)
    segments = []
    for b in batches:
        xb, yb = X[:b].copy(), y[:b].copy()
        segments.append((f"step, batch {b}", lambda xb=xb, yb=yb: model.loss_and_grads(
            task.loss, xb, yb, grads=grads)))
    if layers:
        x = X[:batches[0]].copy()
        for i, layer in enumerate(model.layers):
            out, cache = layer.forward(x)
            dout = np.full_like(out, 0.01)
            segments.append((f"{i} {layer!r} forward", lambda layer=layer, x=x: layer.forward(x)))
            segments.append((f"{i} {layer!r} backward", lambda layer=layer, d=dout, c=cache,
                             need=i > 0: layer.backward(d, c, need)))
            x = out
    for name, fn in segments:
        for _ in range(3):
            fn()                               # warm: caches, allocator, BLAS buffers
        time.sleep(0.05)
        t0 = time.perf_counter()
        for _ in range(steps):
            fn()
        wall = time.perf_counter() - t0
        time.sleep(0.05)
        print(f"SEGMENT\t{name}\t{steps}\t{wall!r}", flush=True)


# ------------------------------------------------------------------ the parent: perf
def libpython() -> Path:
    """The file that holds ``PyEval_SaveThread``: libpython, or the executable itself."""
    if sysconfig.get_config_var("Py_ENABLE_SHARED"):
        lib = Path(sysconfig.get_config_var("LIBDIR")) / sysconfig.get_config_var("LDLIBRARY")
        if lib.exists():
            return lib.resolve()
    return Path(sys.executable).resolve()


def missing() -> str | None:
    """Why this machine cannot run the measurement, or None."""
    if platform.system() != "Linux":
        return "needs Linux (perf uprobes)"
    if shutil.which("perf") is None:
        return "needs `perf` on the PATH (e.g. apt install linux-perf)"
    if sysconfig.get_config_var("Py_GIL_DISABLED"):
        return "this is a free-threaded build: there is no GIL to measure"
    return None


def add_probes(lib: Path) -> tuple[list[str], list[str]]:
    """Add the two uprobes (if not there yet); returns (event names, the ones we added)."""
    listed = subprocess.run(["perf", "probe", "-l"], capture_output=True, text=True).stdout
    events, added = [], []
    for fn in PROBES:
        line = next((ln for ln in listed.splitlines() if f":{fn} " in ln and str(lib) in ln),
                    None)
        if line is None:
            r = subprocess.run(["perf", "probe", "-x", str(lib), fn], capture_output=True,
                               text=True)
            if r.returncode:
                raise SystemExit(f"gil_held: cannot add a uprobe on {fn} in {lib} (root, or "
                                 f"symbols, needed):\n{r.stderr.strip()}")
            line = next(ln for ln in r.stderr.splitlines() if f":{fn}" in ln)
            added.append(line.split()[0])
        events.append(line.split()[0])
    return events, added


def parse(script: str, names: list[tuple[str, int, float]]) -> list[dict]:
    """Per segment: wall, released and held seconds, releases, from ``perf script`` text."""
    events = []                                # (time, is_save) of the child's main thread
    tid = None
    for line in script.splitlines():
        parts = line.split()
        stamp = next((w for w in parts if w.endswith(":") and w[:-1].replace(".", "", 1)
                      .isdigit()), None)
        if stamp is None or "PyEval_" not in line:
            continue
        if tid is None:
            tid = parts[1]                     # the first thread to hit a probe: main
        if parts[1] != tid:
            continue
        events.append((float(stamp[:-1]), "SaveThread" in line))
    marks = [i for i in range(len(events) - 1) if events[i][1] and not events[i + 1][1]
             and events[i + 1][0] - events[i][0] > MARK][-2 * len(names):]
    # segments lie between consecutive sleeps: after the warm-up's sleep, before the next
    rows = []
    for k, (name, steps, wall) in enumerate(names):
        a, b = marks[2 * k] + 1, marks[2 * k + 1]
        win = events[a:b + 1]
        span = win[-1][0] - win[0][0]
        released = sum(win[i + 1][0] - win[i][0] for i in range(len(win) - 1) if win[i][1])
        rows.append({"name": name, "steps": steps, "wall": wall, "span": span,
                     "held": span - released,
                     "releases": sum(1 for e in win[:-1] if e[1])})   # not the sleep's
    return rows


def measure(args, tree: Path) -> list[dict]:
    lib = libpython()
    events, added = add_probes(lib)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(tmp) / "perf.data"
            env = {**os.environ, "PYTHONPATH": str(tree)}
            cmd = ["perf", "record", "-q", "-o", str(data)]
            for e in events:
                cmd += ["-e", e]
            cmd += [sys.executable, __file__, "--child", "--task", args.task,
                    "--steps", str(args.steps),
                    "--batch", *map(str, args.batch)] + (["--layers"] if args.layers else [])
            out = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if out.returncode:
                raise SystemExit(f"gil_held: the measured run failed:\n{out.stderr[-2000:]}")
            names = [(ln.split("\t")[1], int(ln.split("\t")[2]), float(ln.split("\t")[3]))
                     for ln in out.stdout.splitlines() if ln.startswith("SEGMENT")]
            script = subprocess.run(["perf", "script", "-i", str(data)], capture_output=True,
                                    text=True).stdout
    finally:
        for e in added:
            subprocess.run(["perf", "probe", "-d", e], capture_output=True)
    return parse(script, names)


def table(rows: list[dict]) -> list[str]:
    lines = ["| part | ms per call | GIL held, ms per call | held share | GIL releases per call |",
             "|---|---:|---:|---:|---:|"]
    for r in rows:
        n = r["steps"]
        lines.append(f"| {r['name']} | {1e3 * r['span'] / n:.3f} | {1e3 * r['held'] / n:.3f} | "
                     f"{r['held'] / r['span']:.1%} | {r['releases'] / n:.0f} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", default="cnn", help="a model of mtlearn.tasks (default: cnn)")
    ap.add_argument("--batch", type=int, nargs="+", default=[128, 256])
    ap.add_argument("--steps", type=int, default=40, help="calls timed per part")
    ap.add_argument("--layers", action="store_true",
                    help="also each layer's forward and backward (at the first batch size)")
    ap.add_argument("--tree", type=Path, default=ROOT,
                    help="the checkout whose mtlearn is measured (default: this one)")
    ap.add_argument("--record", action="store_true", help="append to benchmarks/RESULTS.md")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.task, args.batch, args.steps, args.layers)
        return
    why = missing()
    if why:
        print(f"gil_held: {why}", file=sys.stderr)
        raise SystemExit(2)
    rev = subprocess.run(["git", "-C", str(args.tree), "log", "-1", "--format=%h %s"],
                         capture_output=True, text=True).stdout.strip()[:90]
    rows = measure(args, args.tree.resolve())
    import numpy as np
    from threadpoolctl import threadpool_info
    blas = next((f"{i['internal_api']} {i['version']}" for i in threadpool_info()
                 if i["user_api"] == "blas"), "no BLAS found")
    head = (f"### gil_held — {time.strftime('%Y-%m-%d %H:%M')}\n\n"
            f"CPython {platform.python_version()} (GIL build), {os.cpu_count()} cores, numpy "
            f"{np.__version__}, {blas} at 1 thread. Task `{args.task}`, float32, one thread, "
            f"{args.steps} calls per part; the checkout measured: `{rev}`.  "
            f"`python benchmarks/gil_held.py {' '.join(sys.argv[1:])}`\n")
    text = "\n".join([head, *table(rows), ""])
    print(text)
    if args.record:
        with RESULTS.open("a") as f:
            f.write("\n" + text)
        print(f"appended to {RESULTS}")


if __name__ == "__main__":
    main()
