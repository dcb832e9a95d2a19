"""``python -m mtlearn gil``: how each kind of work scales on threads, on this interpreter.

    python -m mtlearn gil                       # the table, in a few seconds
    python -m mtlearn gil --json                # the same as JSON (what other Pythons send back)
    python -m mtlearn gil --python python3.13t  # side by side with another interpreter
"""

from __future__ import annotations

import sys

from .common import emit

DEFAULT_THREADS = "1,2,4"
DEFAULT_WORK = 0.5      # half the standard run: ~0.1 s per run on one core


def add_parser(sub) -> None:
    p = sub.add_parser("gil", help="how each kind of work scales on threads (the GIL lab)",
                       description="Time every workload of the GIL lab on 1, 2, 4 threads "
                                   "and print the speedups.")
    p.add_argument("--workloads", default=None,
                   help="comma-separated, of python,numpy,numpy_small,matmul,io,mixed "
                        "(default: all)")
    p.add_argument("--threads", default=DEFAULT_THREADS,
                   help=f"comma-separated thread counts (default {DEFAULT_THREADS})")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per count (median)")
    p.add_argument("--work", type=float, default=DEFAULT_WORK,
                   help=f"amount of work per run; 1.0 is ~0.2 s on one core "
                        f"(default {DEFAULT_WORK})")
    p.add_argument("--processes", action="store_true",
                   help="also run the CPU-bound workloads on a process pool")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.add_argument("--python", action="append", metavar="PATH", default=None,
                   help="also run in this interpreter and compare (repeatable)")
    p.add_argument("--timeout", type=float, default=300.0,
                   help="seconds before giving up on a --python interpreter (default 300)")
    p.set_defaults(func=run)


def _ints(text: str) -> list[int]:
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise ValueError(f"threads must be comma-separated integers, got {text!r}") from None


def run(args) -> int:
    from .. import bench

    try:
        threads = _ints(args.threads)
        if args.python:
            result = bench.compare_interpreters(
                args.python, workloads=args.workloads, threads=threads,
                repeats=args.repeats, work=args.work, timeout=args.timeout)
        else:
            result = bench.suite(args.workloads, threads, args.repeats, work=args.work,
                                 processes=args.processes)
    except ValueError as exc:
        print(f"mtlearn gil: {exc}", file=sys.stderr)
        return 2
    emit(result, args.json)
    if args.python and result.errors:
        return 1
    return 0
