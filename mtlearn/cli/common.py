"""Pieces shared by the subcommands: a progress bar and argument types."""

from __future__ import annotations

import argparse
import sys
import time


class ProgressBar:
    """A one-line text progress bar on stderr (no dependency): ``bar(done, loss)``."""

    def __init__(self, total: int, width: int = 30, stream=sys.stderr):
        self.total, self.width, self.stream = total, width, stream
        self.start = time.perf_counter()

    def __call__(self, done: int, loss: float) -> None:
        filled = self.width * done // self.total
        rate = done / max(time.perf_counter() - self.start, 1e-9)
        self.stream.write(f"\r[{'#' * filled}{'.' * (self.width - filled)}] "
                          f"{done}/{self.total} steps  loss {loss:.4f}  {rate:.0f} steps/s")
        if done >= self.total:
            self.stream.write("\n")
        self.stream.flush()


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def emit(result, as_json: bool) -> None:
    """Print a result object: ``result.to_dict()`` as one line of JSON, or ``result.table()``."""
    import json

    if as_json:
        json.dump(result.to_dict(), sys.stdout)
        print()
    else:
        print(result.table())
