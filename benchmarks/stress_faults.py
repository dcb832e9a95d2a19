"""Fault stress: thousands of short training runs with faults injected at random moments.

Each iteration trains a small model with a random strategy and injects one fault (or none):

* ``error``      a layer raises in a worker;
* ``ctrl-c``     ``KeyboardInterrupt`` at a random moment (``_thread.interrupt_main``);
* ``stuck+error`` one worker is stuck in a long step while another raises;
* ``stuck+ctrl-c`` one worker is stuck while Ctrl-C arrives;
* ``start-fail`` the OS refuses a thread part-way through starting the workers;
* ``cancel``     the caller's ``cancel`` event is set mid-run (a normal return is expected);
* ``parent-killed`` (``--parent-kills N``) a child process training with ``process`` is killed
  with SIGKILL/SIGTERM; its workers and shared memory must be gone within 5 s.

It checks after every iteration that the right thing reached the caller, how long the fault
took to get there, and that nothing was left behind: threads (after the stuck ones are
released), child processes, ``/dev/shm`` segments. A hang is caught by faulthandler (every
thread's stack, then exit 1).

    .venv/bin/python benchmarks/stress_faults.py --iterations 2000 --parent-kills 20 --record
"""

from __future__ import annotations

import _thread
import argparse
import faulthandler
import os
import random
import signal
import statistics
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from cases import Trap  # noqa: E402  (the layer the fault tests use: sticks or raises on cue)

from mtlearn import info, nn, parallel, tasks  # noqa: E402

STRATEGIES = ["sync", "asyncio", "hogwild", "pipeline", "tensor", "process", "serial"]
FAULTS = ["none", "error", "ctrl-c", "stuck+error", "stuck+ctrl-c", "start-fail", "cancel"]
#: how often each fault is drawn (stuck ones cost the 0.5 s grace period each)
WEIGHTS = [20, 25, 20, 4, 4, 10, 17]
SHM = Path("/dev/shm")


def problem(seed: int):
    t = tasks.get("mlp", n=120, seed=seed % 7, image_size=12, val_fraction=0)
    return t.loss, t.data


def model_with(trap: Trap, seed: int):
    return nn.Sequential(nn.Flatten(), nn.Dense(144, 16), trap, nn.Dense(16, 4), seed=seed)


def shm_segments() -> set[str]:
    return {p.name for p in SHM.iterdir()} if SHM.is_dir() else set()


def children() -> set[int]:
    """Live child processes of this process (Linux: /proc/<pid>/task/*/children), less the
    helpers multiprocessing keeps for the whole session (forkserver, resource tracker)."""
    from multiprocessing import forkserver, resource_tracker

    keep = {getattr(forkserver._forkserver, "_forkserver_pid", None),
            getattr(resource_tracker._resource_tracker, "_pid", None)}
    out = set()
    for task in Path(f"/proc/{os.getpid()}/task").glob("*/children"):
        try:
            out |= {int(p) for p in task.read_text().split()}
        except OSError:
            pass
    return out - keep


def one_iteration(rng: random.Random, it: int) -> dict:
    strategy = rng.choice(STRATEGIES)
    fault = rng.choices(FAULTS, WEIGHTS)[0]
    if strategy == "serial" and fault.startswith("stuck"):
        fault = "error"                     # serial's only thread is the caller itself
    if strategy == "process" and fault in ("stuck+error", "stuck+ctrl-c", "start-fail"):
        fault = "error"                     # the process strategy's own paths: tested in tests/
    threads = rng.choice([2, 3]) if strategy != "serial" else 1
    loss, data = problem(it)
    # Forward calls made on the caller's thread before any worker starts: the dry run, and
    # the probe pipeline and tensor make for their plans. Faults go after those.
    first = 2 + (strategy in ("pipeline", "tensor"))
    calls = {"error": {rng.randint(first, first + 6)}}.get(fault, set())
    stick = set()
    if fault.startswith("stuck"):
        stick = {first}
        calls = {first + 1} if fault == "stuck+error" else set()
    trap = Trap(stick=stick, fail=calls)
    model = model_with(trap, it)
    cancel = threading.Event()
    epochs = 30 if fault in ("ctrl-c", "cancel", "stuck+ctrl-c") else 2
    before_threads = set(threading.enumerate())
    before_shm, before_children = shm_segments(), children()
    fired = {}
    timer = None
    real_start = threading.Thread.start

    if fault == "ctrl-c":
        delay = rng.uniform(0.0, 0.05)

        def interrupt():
            fired["t"] = time.perf_counter()
            _thread.interrupt_main()
        timer = threading.Timer(delay, interrupt)
        timer.start()
    elif fault == "stuck+ctrl-c":
        def interrupt_when_stuck():
            trap.stuck.wait(5)
            fired["t"] = time.perf_counter()
            _thread.interrupt_main()
        timer = threading.Thread(target=interrupt_when_stuck)
        timer.start()
    elif fault == "start-fail":
        allowed = rng.randint(0, threads - 1)
        started = [0]

        def start(self):
            if self.name.startswith(strategy) and started[0] >= allowed:
                raise RuntimeError("can't start new thread (injected)")
            started[0] += self.name.startswith(strategy)
            real_start(self)
        threading.Thread.start = start

    def on_step(step, value):
        if fault == "cancel" and step == 3:
            cancel.set()

    outcome, t_end = "returned", None
    try:
        parallel.train(model, loss, data, strategy=strategy, threads=threads, epochs=epochs,
                       batch_size=24, lr=0.05, seed=it, on_step=on_step, cancel=cancel)
    except KeyboardInterrupt:
        outcome = "KeyboardInterrupt"
    except RuntimeError as exc:
        outcome = "RuntimeError" if ("injected" in str(exc) or "can't start" in str(exc)) \
            else f"other: {exc!r}"
    except Exception as exc:  # noqa: BLE001 - counted as a wrong outcome
        outcome = f"other: {exc!r}"
    finally:
        t_end = time.perf_counter()
        threading.Thread.start = real_start
        if timer is not None:
            if isinstance(timer, threading.Timer):
                timer.cancel()
            timer.join()
    # Ctrl-C may land after train returned (a short run): then nothing was interrupted.
    if fault == "ctrl-c" and outcome == "returned" and "t" in fired:
        outcome = "KeyboardInterrupt"
    start_fault = fired.get("t") or trap.failed_at
    latency = (t_end - start_fault) if start_fault and outcome != "returned" else None
    expected = {"none": "returned", "cancel": "returned", "error": "RuntimeError",
                "stuck+error": "RuntimeError", "start-fail": "RuntimeError",
                "ctrl-c": ("KeyboardInterrupt", "returned"),
                "stuck+ctrl-c": "KeyboardInterrupt"}[fault]
    ok = outcome in expected if isinstance(expected, tuple) else outcome == expected
    if fault == "start-fail" and strategy in ("serial", "process", "asyncio"):
        ok = outcome in ("returned", "RuntimeError")   # no worker group to refuse
    # Leaks: release the stuck step, then everything the run started must be gone.
    trap.release.set()
    deadline = time.perf_counter() + 5
    for t in threading.enumerate():
        if t not in before_threads:
            t.join(max(0.0, deadline - time.perf_counter()))
    leaked_threads = [t.name for t in threading.enumerate()
                      if t not in before_threads and t.is_alive()]
    while children() - before_children and time.perf_counter() < deadline:
        time.sleep(0.01)
    leaked_children = sorted(children() - before_children)
    leaked_shm = sorted(s for s in shm_segments() - before_shm if s.startswith("psm_"))
    return {"strategy": strategy, "threads": threads, "fault": fault, "outcome": outcome, "ok": ok,
            "latency": latency, "leaked": leaked_threads + leaked_children + leaked_shm}


PARENT = textwrap.dedent("""
    import sys
    from mtlearn import parallel, tasks
    t = tasks.get("cnn", n=512, image_size=12, channels=(4, 6), val_fraction=0)
    print("training", flush=True)
    parallel.train(t.model(), t.loss, t.data, strategy="process", threads=2, epochs=10**6,
                   batch_size=64, start_method=sys.argv[1])
""")


def parent_killed(rng: random.Random) -> dict:
    """A child process trains with ``process``; kill it; its workers and segments must go."""
    method = rng.choice(["fork", "forkserver", "spawn"])
    sig = rng.choice([signal.SIGKILL, signal.SIGTERM])
    before = shm_segments()
    proc = subprocess.Popen([sys.executable, "-c", PARENT, method], stdout=subprocess.PIPE,
                            text=True, start_new_session=True)
    proc.stdout.readline()
    time.sleep(rng.uniform(0.5, 1.5))
    kids = set()
    for task in Path(f"/proc/{proc.pid}/task").glob("*/children"):
        kids |= {int(p) for p in task.read_text().split()}
    os.kill(proc.pid, sig)
    proc.wait()
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 5:
        alive = [k for k in kids if Path(f"/proc/{k}").exists()
                 and "zombie" not in Path(f"/proc/{k}/status").read_text().lower()]
        left = sorted(s for s in shm_segments() - before if s.startswith("psm_"))
        if not alive and not left:
            break
        time.sleep(0.05)
    gone_after = time.perf_counter() - t0
    return {"method": method, "signal": signal.Signals(sig).name, "seconds": gone_after,
            "ok": not alive and not left, "leaked": [*map(str, alive), *left]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--iterations", type=int, default=2000)
    p.add_argument("--parent-kills", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--record", action="store_true", help="append to benchmarks/RESULTS.md")
    args = p.parse_args(argv)
    faulthandler.dump_traceback_later(60, exit=True, repeat=True)   # re-armed every iteration
    signal.signal(signal.SIGINT, signal.default_int_handler)
    rng = random.Random(args.seed)
    rows, t0 = [], time.perf_counter()
    for it in range(args.iterations):
        faulthandler.dump_traceback_later(60, exit=True)
        rows.append(one_iteration(rng, it))
        if (it + 1) % 250 == 0:
            bad = sum(not r["ok"] for r in rows)
            print(f"{it + 1} iterations, {bad} wrong outcomes, "
                  f"{sum(bool(r['leaked']) for r in rows)} leaks", flush=True)
    kills = []
    for _ in range(args.parent_kills):
        faulthandler.dump_traceback_later(60, exit=True)
        kills.append(parent_killed(rng))
    faulthandler.cancel_dump_traceback_later()
    report = summarize(rows, kills, time.perf_counter() - t0)
    print(report)
    if args.record:
        with open(Path(__file__).with_name("RESULTS.md"), "a") as f:
            f.write("\n" + report + "\n")
    wrong = [r for r in rows if not r["ok"] or r["leaked"]] + [k for k in kills if not k["ok"]]
    for r in wrong[:20]:
        print("WRONG:", r)
    return 1 if wrong else 0


def summarize(rows: list[dict], kills: list[dict], seconds: float) -> str:
    lines = [f"## Fault stress ({time.strftime('%Y-%m-%d')}): "
             "`.venv/bin/python benchmarks/stress_faults.py --iterations "
             f"{len(rows)} --parent-kills {len(kills)}`", "",
             "Machine: " + info.describe().replace("\n", "; "),
             f"Load average at the end: {os.getloadavg()[0]:.2f}. {len(rows)} runs in "
             f"{seconds:.0f} s; 0 hangs (faulthandler would have stopped the run).", "",
             "| fault | runs | right outcome | fault to caller, median / max (ms) | leaks |",
             "|---|---:|---:|---:|---:|"]
    for fault in FAULTS:
        sel = [r for r in rows if r["fault"] == fault]
        if not sel:
            continue
        lat = [1e3 * r["latency"] for r in sel if r["latency"] is not None]
        timing = f"{statistics.median(lat):.1f} / {max(lat):.1f}" if lat else "-"
        lines.append(f"| {fault} | {len(sel)} | {sum(r['ok'] for r in sel)} | {timing} | "
                     f"{sum(bool(r['leaked']) for r in sel)} |")
    if kills:
        secs = [k["seconds"] for k in kills]
        lines.append(f"| parent killed (process strategy; fork/forkserver/spawn, SIGKILL/SIGTERM)"
                     f" | {len(kills)} | {sum(k['ok'] for k in kills)} | everything gone after "
                     f"{1e3 * statistics.median(secs):.0f} / {1e3 * max(secs):.0f} | "
                     f"{sum(bool(k['leaked']) for k in kills)} |")
    by_strategy = {s: sum(r["strategy"] == s for r in rows) for s in STRATEGIES}
    lines += ["", "Runs per strategy: " + ", ".join(f"{s} {n}" for s, n in by_strategy.items())
              + ". Stuck workers are abandoned after the 0.5 s grace period (their time to the "
              "caller includes it)."]
    return "\n".join(lines)


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
