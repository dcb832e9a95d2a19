"""``python -m mtlearn info``: cores, Python build (GIL or free-threaded), numpy, BLAS."""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser("info", help="cores, Python build (GIL or free-threaded), numpy, BLAS")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..runtime import info

    print(info.describe())
    return 0
