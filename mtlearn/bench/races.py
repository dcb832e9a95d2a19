"""Lost updates: threads that read, modify and write the same data, with and without the GIL.

    from mtlearn import bench
    r = bench.lost_updates("counter", "shared", threads=2)   # one run
    r.expected, r.counted, r.lost, r.seconds
    report = bench.races()               # every kind of data x every way of sharing it
    print(report.table())
    bench.races_in("python3.13t")        # the same in another interpreter (a subprocess)

Every thread adds 1, many times, to data that all of them see:

===========  =================================================================================
kind         one update
===========  =================================================================================
``counter``  ``counts[0] += 1`` on a Python list shared by the threads: read the int, add 1,
             store the result — three steps of bytecode
``array``    ``shared += 1`` on one numpy int64 array shared by the threads: one ufunc call
             whose loop reads, adds and writes each element (without the GIL when the array
             has more than 500 elements)
===========  =================================================================================

and there are three ways to share it:

* ``shared``: nothing coordinates the threads. An update can be lost (two threads read the
  same old value and both write old + 1), never invented: ``counted <= expected``.
* ``lock``: a ``threading.Lock`` around each read-modify-write. Exact, at a price per update.
* ``own``: each thread updates data of its own (a local int, its own array), and the results
  are added up after every thread has been joined. Exact, and no thread waits for another:
  this is how mtlearn's strategies avoid sharing (each worker writes its own gradient row,
  each parameter slice is updated by one worker).

With the GIL only one thread runs bytecode at a time, and it is switched out only at certain
points (a call, a jump back to the top of a loop), so on CPython 3.11-3.13 ``counts[0] += 1``
is rarely or never split; a free-threaded build runs both threads' three steps at the same
time on two cores. numpy does not lock arrays on any build (numpy's thread-safety docs).

Runs in any interpreter with or without numpy (the ``array`` kind is then skipped), so that
:func:`races_in` can run it in a free-threaded Python: ``python -m mtlearn races --json``.
"""

from __future__ import annotations

import os
import statistics
import threading
from dataclasses import asdict, dataclass, field
from time import perf_counter

from ..runtime import checks
from ..runtime.threads import WorkerGroup
from .interpreters import run_json_in
from .machine import build_info, interpreter_label
from .workloads import numpy_available

KINDS = ("counter", "array")
WAYS = ("shared", "lock", "own")
#: Default updates per thread: increments of the counter, passes over the array.
UPDATES = {"counter": 500_000, "array": 20}
ARRAY_SIZE = 1_000_000
FORMAT = "mtlearn.races/1"


@dataclass
class RaceResult:
    """One run: ``threads`` threads each making ``updates`` updates of ``kind`` data, shared
    ``how``. ``expected`` is what the data must add up to (elements x passes for an array),
    ``counted`` what it did; ``seconds`` the wall time from the common start to the last
    thread's end."""

    kind: str
    how: str
    threads: int
    updates: int
    size: int
    expected: int
    counted: int
    seconds: float

    @property
    def lost(self) -> int:
        """Updates that vanished (0 when exact)."""
        return self.expected - self.counted


def _check(kind: str, how: str) -> None:
    checks.choice("kind", kind, KINDS)
    checks.choice("how", how, WAYS)


def _counter_task(how: str, counts: list, own: list, lock, n: int):
    if how == "shared":
        def task(i: int) -> None:
            for _ in range(n):
                counts[0] += 1              # read, add, write: three steps
    elif how == "lock":
        def task(i: int) -> None:
            for _ in range(n):
                with lock:
                    counts[0] += 1
    else:
        def task(i: int) -> None:
            mine = 0                        # this thread's own counter
            for _ in range(n):
                mine += 1
            own[i] = mine                   # one write, to this thread's own slot
    return task


def _array_task(how: str, shared, own: list, lock, n: int):
    # ``shared`` is bound as a default argument: ``shared += 1`` then updates the one
    # array in place (and rebinds only the thread's local name to the same array).
    if how == "shared":
        def task(i: int, shared=shared) -> None:
            for _ in range(n):
                shared += 1                 # the same array in every thread
    elif how == "lock":
        def task(i: int, shared=shared) -> None:
            for _ in range(n):
                with lock:
                    shared += 1
    else:
        def task(i: int) -> None:
            mine = own[i]                   # this thread's own array
            for _ in range(n):
                mine += 1
    return task


def lost_updates(kind: str = "counter", how: str = "shared", threads: int = 2, *,
                 updates: int | None = None, size: int = ARRAY_SIZE) -> RaceResult:
    """Run ``threads`` threads that each make ``updates`` updates of ``kind`` data shared
    ``how`` (see the module's docstring), and count what is left.

    ``updates`` defaults to :data:`UPDATES` (increments of the counter; passes over an
    ``array`` of ``size`` int64 elements). Arguments are checked before any thread starts;
    every thread is joined before returning, and an error in one reaches the caller.
    """
    _check(kind, how)
    threads = checks.workers("threads", threads)
    n = checks.integer("updates", UPDATES[kind] if updates is None else updates, min=1)
    size = checks.integer("size", size, min=1) if kind == "array" else 1
    lock = threading.Lock()
    if kind == "counter":
        counts, own = [0], [0] * threads
        task = _counter_task(how, counts, own, lock, n)
    else:
        import numpy as np

        shared = np.zeros(size, dtype=np.int64)
        own = [np.zeros(size, dtype=np.int64) for _ in range(threads)] if how == "own" else []
        task = _array_task(how, shared, own, lock, n)
    start = threading.Barrier(threads + 1)       # the workers and this thread
    ends: list = [0.0] * threads

    def worker(i: int) -> None:
        start.wait()
        task(i)
        ends[i] = perf_counter()

    with WorkerGroup(threads, worker, "race", on_abort=[start.abort]):
        start.wait()
        t0 = perf_counter()
    if kind == "counter":
        counted = sum(own) if how == "own" else counts[0]
    else:
        counted = sum(int(a.sum()) for a in own) if how == "own" else int(shared.sum())
    return RaceResult(kind, how, threads, n, size, threads * n * size, counted,
                      max(ends) - t0)


@dataclass
class Races:
    """Every kind x way, ``repeats`` runs each, on one interpreter.

    ``info`` describes the interpreter (:func:`mtlearn.bench.build_info`, its
    ``executable`` reduced to the file name); ``results`` holds every run, in order;
    ``skipped`` maps a kind that could not run to why (no numpy).
    """

    info: dict
    results: list[RaceResult]
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """Short name of the interpreter, e.g. ``3.13.5t free-threaded (GIL off)``."""
        return interpreter_label(self.info)

    def runs(self, kind: str, how: str) -> list[RaceResult]:
        """The runs of one kind and way."""
        return [r for r in self.results if r.kind == kind and r.how == how]

    def lost(self, kind: str, how: str) -> list[int]:
        """Updates lost in each run of one kind and way."""
        return [r.lost for r in self.runs(kind, how)]

    def table(self) -> str:
        """One line per kind and way: the median time of a run, and the updates lost in each
        run out of how many."""
        lines = [f"{self.label}, {self.info.get('cores', '?')} cores"]
        for kind in KINDS:
            if kind in self.skipped:
                lines.append(f"{kind:8} skipped: {self.skipped[kind]}")
                continue
            for how in WAYS:
                runs = self.runs(kind, how)
                if not runs:
                    continue
                r = runs[0]
                what = (f"{r.threads} threads x {r.updates:,} increments" if kind == "counter"
                        else f"{r.threads} threads x {r.updates} passes over {r.size:,}")
                lost = ", ".join(f"{x:,}" for x in self.lost(kind, how))
                ms = 1e3 * statistics.median(x.seconds for x in runs)
                lines.append(f"{kind:8} {how:7} {ms:7.1f} ms   lost {lost} of {r.expected:,} "
                             f"({what})")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"format": FORMAT, "info": dict(self.info),
                "results": [asdict(r) for r in self.results], "skipped": dict(self.skipped)}

    @classmethod
    def from_dict(cls, d: dict) -> Races:
        if d.get("format") != FORMAT:
            raise ValueError(f"not an mtlearn races document (format {d.get('format')!r})")
        return cls(info=dict(d["info"]), results=[RaceResult(**r) for r in d["results"]],
                   skipped=dict(d.get("skipped", {})))


def races(threads: int = 2, repeats: int = 3, *, counter_updates: int = UPDATES["counter"],
          array_updates: int = UPDATES["array"], size: int = ARRAY_SIZE) -> Races:
    """:func:`lost_updates` for every kind and way, ``repeats`` times each, on this
    interpreter. ``counter_updates`` are increments per thread; ``array_updates`` passes
    over an array of ``size`` elements per thread."""
    threads = checks.workers("threads", threads)
    repeats = checks.integer("repeats", repeats, min=1)
    updates = {"counter": checks.integer("counter_updates", counter_updates, min=1),
               "array": checks.integer("array_updates", array_updates, min=1)}
    size = checks.integer("size", size, min=1)
    skipped = {} if numpy_available() else {"array": "this Python cannot import numpy"}
    results = []
    for kind in KINDS:
        if kind in skipped:
            continue
        for how in WAYS:
            for _ in range(repeats):
                results.append(lost_updates(kind, how, threads, updates=updates[kind],
                                            size=size))
    info = build_info()
    info["executable"] = os.path.basename(info.get("executable") or "")
    return Races(info=info, results=results, skipped=skipped)


def races_command(python: str, threads: int, repeats: int, counter_updates: int,
                  array_updates: int, size: int) -> list[str]:
    """The command line that runs :func:`races` in ``python`` and prints it as JSON."""
    return [python, "-m", "mtlearn", "races", "--json", "--threads", str(threads),
            "--repeats", str(repeats), "--counter-updates", str(counter_updates),
            "--array-updates", str(array_updates), "--size", str(size)]


def races_in(python: str, threads: int = 2, repeats: int = 3, *,
             counter_updates: int = UPDATES["counter"], array_updates: int = UPDATES["array"],
             size: int = ARRAY_SIZE, timeout: float = 120.0) -> Races:
    """:func:`races` in another interpreter (a subprocess with this working tree on its
    ``PYTHONPATH``, as :func:`mtlearn.bench.compare_interpreters` does), read back as JSON.

    Raises :class:`mtlearn.bench.interpreters.InterpreterError` when ``python`` is missing,
    fails, prints no valid JSON or takes longer than ``timeout`` seconds (then it is
    killed).
    """
    return run_json_in(python, lambda exe: races_command(exe, threads, repeats, counter_updates,
                                                         array_updates, size),
                       Races.from_dict, "the races", timeout)

