"""``python -m mtlearn races``: threads that update shared data, and the updates they lose.

    python -m mtlearn races            # a table: lost updates with no lock, a lock, own data
    python -m mtlearn races --json     # the same as JSON (what bench.races_in reads back)
"""

from __future__ import annotations

import sys

from .common import emit


def add_parser(sub) -> None:
    from ..bench.races import ARRAY_SIZE, UPDATES

    p = sub.add_parser("races", help="lost updates: threads sharing a counter or an array",
                       description="Threads increment a shared Python counter and a shared "
                                   "numpy array with no lock, with a lock, and each its own "
                                   "copy; print how many updates were lost.")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3, help="runs of each kind and way")
    p.add_argument("--counter-updates", type=int, default=UPDATES["counter"],
                   help="increments of the counter per thread")
    p.add_argument("--array-updates", type=int, default=UPDATES["array"],
                   help="passes over the array per thread")
    p.add_argument("--size", type=int, default=ARRAY_SIZE, help="elements of the array")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..bench import races

    try:
        result = races(args.threads, args.repeats, counter_updates=args.counter_updates,
                       array_updates=args.array_updates, size=args.size)
    except ValueError as exc:
        print(f"mtlearn races: {exc}", file=sys.stderr)
        return 2
    emit(result, args.json)
    return 0
