"""The command line of ``python -m mtlearn.distributed``, checked before anything starts.

Every option's type comes from :mod:`mtlearn.runtime.checks` (``checks.for_argparse``), so
``--momentum 1.5`` or ``--lr 0`` is refused with the same words as the Python API, and the
output files (``--json FILE``, ``--save-params FILE``) are checked to be writable: a bad
argument costs an exit code 2 naming the option, never a trained model that cannot be saved.

:func:`parse` is what :func:`~mtlearn.distributed.launch` runs in the calling process before
``mpiexec`` starts: the same parser, raising ``ValueError`` instead of exiting.
"""

from __future__ import annotations

import argparse
import os

from ..runtime import checks
from .problems import DATASETS

_count = checks.for_argparse(checks.integer, min=1)
_workers = checks.for_argparse(checks.workers)


def int_list(text: str) -> list[int]:
    """``"1000,100000"`` -> ``[1000, 100000]`` (each an int >= 1)."""
    try:
        values = [_count(t.strip()) for t in text.split(",") if t.strip()]
    except argparse.ArgumentTypeError:
        values = []
    if not values:
        raise argparse.ArgumentTypeError(f"expected comma-separated ints >= 1, got {text!r}")
    return values


def two_ints(text: str) -> tuple[int, int]:
    """``"8,16"`` -> ``(8, 16)``."""
    values = int_list(text)
    if len(values) != 2:
        raise argparse.ArgumentTypeError(f"expected two ints such as 8,16, got {text!r}")
    return values[0], values[1]


def output_file(text: str) -> str:
    """A file this process can create or overwrite (``-`` is stdout)."""
    if text == "-":
        return text
    folder = os.path.dirname(os.path.abspath(text))
    if os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text!r} is a directory, expected a file name")
    if not os.path.isdir(folder):
        raise argparse.ArgumentTypeError(f"cannot write {text!r}: no directory {folder!r}")
    if not os.access(folder, os.W_OK) or (os.path.exists(text) and not os.access(text, os.W_OK)):
        raise argparse.ArgumentTypeError(f"cannot write {text!r}: permission denied")
    return text


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` that only rank 0 lets speak (under ``mpiexec`` every rank parses
    the same arguments: one message is enough), and that raises ``ValueError`` instead of
    exiting when built with ``raise_errors=True``."""

    def __init__(self, *args, raise_errors: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.raise_errors = raise_errors

    def error(self, message: str):
        if self.raise_errors:
            raise ValueError(f"{self.prog}: {message}")
        super().error(message)

    def _print_message(self, message: str, file=None) -> None:
        if os.environ.get("PMI_RANK", "0") == "0":
            super()._print_message(message, file)


def build_parser(raise_errors: bool = False) -> argparse.ArgumentParser:
    """The parser; ``raise_errors``: ``ValueError`` instead of printing and exiting."""
    p = Parser(prog="python -m mtlearn.distributed", raise_errors=raise_errors,
               allow_abbrev=False,                # --epoch is not --epochs
               description="Synchronous data-parallel training over MPI ranks (run under "
                           "mpiexec).")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model, every rank on its shard of each batch",
                       raise_errors=raise_errors, allow_abbrev=False)
    t.add_argument("model", choices=["cnn"], help="the course CNN")
    t.add_argument("--dataset", choices=DATASETS, default="shapes")
    t.add_argument("--n", type=_count, default=2000, help="images (default 2000)")
    t.add_argument("--image-size", type=_count, default=28,
                   help="shapes: pixels per side, a multiple of 4 (default 28)")
    t.add_argument("--channels", type=two_ints, default=(8, 16),
                   help="channels of the two convolutions (default 8,16)")
    t.add_argument("--epochs", type=_count, default=1)
    t.add_argument("--batch-size", type=_count, default=64,
                   help="samples per step over all ranks together (default 64)")
    t.add_argument("--lr", type=checks.for_argparse(checks.number, min=0, min_open=True),
                   default=0.05)
    t.add_argument("--momentum", type=checks.for_argparse(checks.fraction), default=0.0)
    t.add_argument("--seed", type=checks.for_argparse(checks.seed), default=0)
    t.add_argument("--threads", type=_workers, default=1, help="threads per rank")
    t.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    t.add_argument("--blas-threads", type=_workers, default=1, help="BLAS threads per rank")
    t.add_argument("--prefetch", type=checks.for_argparse(checks.integer, min=0), default=0,
                   help="load batches ahead on a thread")
    t.add_argument("--no-trace", action="store_true", help="record no timeline")
    t.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    t.add_argument("--json", nargs="?", const="-", default=None, metavar="FILE",
                   type=output_file,
                   help="write the results as JSON (to FILE, or stdout without one)")
    t.add_argument("--save-params", metavar="FILE.npy", default=None, type=output_file,
                   help="save the final parameters (rank 0)")

    a = sub.add_parser("allreduce", help="time Allreduce alone for several message sizes",
                       raise_errors=raise_errors, allow_abbrev=False)
    a.add_argument("--sizes", type=int_list, default=[1000, 10000, 100000, 1000000],
                   help="float64 elements per message, comma-separated")
    a.add_argument("--repeats", type=_count, default=20)
    a.add_argument("--json", nargs="?", const="-", default=None, metavar="FILE",
                   type=output_file)
    return p


def parse(argv: list[str]) -> argparse.Namespace:
    """``argv`` parsed as ``python -m mtlearn.distributed`` would; ``ValueError`` naming the
    option instead of an exit."""
    return build_parser(raise_errors=True).parse_args(argv)
