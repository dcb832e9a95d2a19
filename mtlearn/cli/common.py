"""Pieces shared by the subcommands: progress on stderr and printing results."""

from __future__ import annotations

import sys
import time


class ProgressBar:
    """Training progress on stderr, called as ``bar(step, loss)`` after every step.

    In a terminal: one line redrawn in place (``\\r``), at most every ``interval`` seconds
    and at the last step. Anywhere else (a pipe, a file, a CI log) a redrawn line becomes
    hundreds of fragments, so it writes one plain line per epoch instead (or only one at the
    end when ``per_epoch`` is not given).

    total : steps in the whole run; per_epoch : steps in one epoch
    """

    def __init__(self, total: int, per_epoch: int | None = None, *, width: int = 30,
                 stream=None, interval: float = 0.1):
        self.total, self.per_epoch, self.width = total, per_epoch, width
        self.stream = sys.stderr if stream is None else stream
        isatty = getattr(self.stream, "isatty", None)
        self.live = bool(isatty and isatty())
        self.interval = interval
        self.start = time.perf_counter()
        self._drawn = 0.0            # when the line was last redrawn
        self._open = False           # a redrawn line is waiting for its newline

    def __call__(self, done: int, loss: float) -> None:
        now = time.perf_counter()
        rate = done / max(now - self.start, 1e-9)
        if self.live:
            if done < self.total and now - self._drawn < self.interval:
                return
            self._drawn = now
            filled = self.width * min(done, self.total) // max(self.total, 1)
            self.stream.write(f"\r[{'#' * filled}{'.' * (self.width - filled)}] "
                              f"{done}/{self.total} steps  loss {loss:.4f}  {rate:.0f} steps/s")
            self._open = done < self.total
            if not self._open:
                self.stream.write("\n")
        elif self.per_epoch and done % self.per_epoch == 0:
            self.stream.write(f"epoch {done // self.per_epoch}/{-(-self.total // self.per_epoch)}"
                              f"  step {done}/{self.total}  loss {loss:.4f}  "
                              f"{rate:.0f} steps/s\n")
        elif done == self.total and not self.per_epoch:
            self.stream.write(f"{done}/{self.total} steps  loss {loss:.4f}  "
                              f"{rate:.0f} steps/s\n")
        else:
            return
        self.stream.flush()

    def close(self) -> None:
        """End a line left open by a run that stopped early (an error, Ctrl-C)."""
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False


def emit(result, as_json: bool) -> None:
    """Print a result object: ``result.to_dict()`` as one line of JSON, or ``result.table()``."""
    import json

    if as_json:
        json.dump(result.to_dict(), sys.stdout)
        print()
    else:
        print(result.table())
