"""How do the same workloads scale on another interpreter?

``compare_interpreters()`` runs the
scaling suite in other Pythons — typically a free-threaded ``python3.13t`` next to the
normal build — each in a subprocess (``python -m mtlearn gil --json``, with this working
tree on its ``PYTHONPATH``), and returns the results side by side. A missing, broken or
hanging interpreter is reported in ``errors`` (it is killed after ``timeout`` seconds);
it never stops the comparison.

Interpreters come from the ``pythons`` argument; without one, from the environment
variable ``MTLEARN_PYTHONS`` (names or paths separated by spaces, commas or the path
separator), plus the known free-threaded names found on ``PATH`` (``python3.13t``,
``python3.14t``...) and the one ``.ci/freethreaded.sh`` built (recorded in
``~/.cache/mtlearn/ft-python``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..runtime import checks
from .machine import describe_build
from .runner import check_counts, check_work
from .suite import Suite, check_workloads, suite

ENV_VAR = "MTLEARN_PYTHONS"
KNOWN_NAMES = ("python3.13t", "python3.14t", "python3.15t")
CACHE_RECORD = Path.home() / ".cache" / "mtlearn" / "ft-python"
PROJECT_ROOT = Path(__file__).resolve().parents[2]     # the folder holding mtlearn/


# ---------------------------------------------------------------------------- finding them


def _split(text: str) -> list[str]:
    return [p for p in re.split(rf"[\s,{re.escape(os.pathsep)}]+", text) if p]


def find_interpreters(pythons=None) -> list[str]:
    """The interpreters to compare with, as given (names or paths; a single string is
    split like ``MTLEARN_PYTHONS``). Without ``pythons``: those in ``MTLEARN_PYTHONS``,
    the known free-threaded names on ``PATH`` and the cached CI build — each once, not
    this interpreter, and only those that exist."""
    if pythons is not None:
        given = _split(pythons) if isinstance(pythons, str) else [str(p) for p in pythons]
        return list(dict.fromkeys(given))
    found = _split(os.environ.get(ENV_VAR, ""))
    found += [p for name in KNOWN_NAMES if (p := shutil.which(name))]
    if CACHE_RECORD.is_file():
        found += [line.strip() for line in CACHE_RECORD.read_text().splitlines()[:1]
                  if line.strip()]
    out, seen = [], {os.path.realpath(sys.executable)}
    for p in found:
        path = shutil.which(p) or p
        real = os.path.realpath(path)
        if os.path.isfile(real) and real not in seen:
            seen.add(real)
            out.append(path)
    return out


# ---------------------------------------------------------------------------- running them


class InterpreterError(RuntimeError):
    """An interpreter could not run the suite: missing, failing, hanging or garbled."""


def gil_command(python: str, workloads, threads, repeats: int, work: float) -> list[str]:
    """The command line that runs the suite in ``python`` and prints it as JSON."""
    return [python, "-m", "mtlearn", "gil", "--json", "--workloads", ",".join(workloads),
            "--threads", ",".join(map(str, threads)), "--repeats", str(repeats),
            "--work", repr(work)]


def run_suite_in(python: str, workloads=None, threads=(1, 2, 4), repeats: int = 3,
                 work: float = 1.0, timeout: float = 300.0) -> Suite:
    """Run the suite in another interpreter and read its JSON back (errors: see
    :func:`run_json_in`)."""
    names = check_workloads(workloads)
    return run_json_in(python, lambda exe: gil_command(exe, names, list(threads), repeats, work),
                       Suite.from_dict, "the suite", timeout)


def run_json_in(python: str, make_command, parse, what: str, timeout: float):
    """Run ``make_command(exe)`` with this working tree on ``PYTHONPATH`` and return
    ``parse(json printed on stdout)``.

    Raises :class:`InterpreterError` with a clear message when ``python`` does not exist,
    exits with an error, prints no valid JSON for ``what``, or takes longer than
    ``timeout`` seconds (then it is killed, with anything it started).
    """
    exe = shutil.which(python) or python
    if not os.path.isfile(exe):
        raise InterpreterError(f"{python}: no such interpreter (not a file, not on PATH)")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(PROJECT_ROOT)]
                                        + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    posix = os.name == "posix"
    try:
        proc = subprocess.Popen(make_command(exe), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env,
                                cwd=str(PROJECT_ROOT), start_new_session=posix)
    except OSError as exc:
        raise InterpreterError(f"{python}: cannot run it ({exc})") from exc
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(proc, posix)
        raise InterpreterError(f"{python}: no answer after {timeout:g} s; stopped it") from None
    except BaseException:
        _kill(proc, posix)
        raise
    if proc.returncode != 0:
        tail = "\n".join(err.strip().splitlines()[-5:]) or "(no error output)"
        raise InterpreterError(f"{python}: exited with status {proc.returncode}:\n{tail}")
    try:
        return parse(json.loads(out))
    except (ValueError, KeyError, TypeError) as exc:
        head = out.strip()[:200] or "(nothing)"
        raise InterpreterError(f"{python}: did not print {what} as JSON ({exc}); "
                               f"it printed: {head}") from None


def _kill(proc: subprocess.Popen, posix: bool) -> None:
    """Stop ``proc`` and, on POSIX, everything in its session; then reap it."""
    try:
        if posix:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        pass


@dataclass
class Comparison:
    """The same suite on several interpreters.

    ``suites`` maps each interpreter (its path; ``sys.executable`` for this one) to its
    :class:`Suite`, this interpreter first; ``errors`` maps those that failed to why.
    """

    suites: dict[str, Suite]
    errors: dict[str, str] = field(default_factory=dict)

    def rows(self) -> list[dict]:
        """One flat dict per (interpreter, workload, thread count), for plotting or a
        DataFrame: ``python, label, free_threaded, gil_enabled, workload, threads,
        seconds, speedup, efficiency, cpu_wall``."""
        out = []
        for exe, s in self.suites.items():
            for name, r in s.results.items():
                for i, n in enumerate(r.threads):
                    out.append({"python": exe, "label": s.label,
                                "free_threaded": bool(s.info.get("free_threaded_build")),
                                "gil_enabled": bool(s.info.get("gil_enabled")),
                                "workload": name, "threads": n, "seconds": r.seconds[i],
                                "speedup": r.speedup[i], "efficiency": r.efficiency[i],
                                "cpu_wall": r.cpu_wall[i]})
        return out

    def table(self) -> str:
        """1-thread time and speedup at each thread count, interpreters side by side."""
        suites = list(self.suites.values())
        lines = [f"[{k + 1}] {describe_build(s.info)}" for k, s in enumerate(suites)]
        if suites:
            counts = sorted({n for s in suites for r in s.results.values() for n in r.threads})
            names = list(dict.fromkeys(n for s in suites for n in s.results))
            head = f"{'':<14}" + "".join(
                f"{f'[{k + 1}] 1 thread':>14}" + "".join(f"{f'{n} thr':>7}" for n in counts[1:])
                for k in range(len(suites)))
            lines += ["", "speedup over 1 thread, same total work", head]
            for name in names:
                row = f"{name:<14}"
                for s in suites:
                    r = s.results.get(name)
                    row += f"{r.seconds[0]:>12.3f} s" if r is not None else f"{'-':>14}"
                    for n in counts[1:]:
                        ok = r is not None and n in r.threads
                        row += f"{r.speedup[r.threads.index(n)]:>6.2f}x" if ok else f"{'-':>7}"
                lines.append(row)
        for why in self.errors.values():
            lines.append(f"not compared: {why}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"suites": {k: s.to_dict() for k, s in self.suites.items()},
                "errors": dict(self.errors)}

    @classmethod
    def from_dict(cls, d: dict) -> Comparison:
        return cls(suites={k: Suite.from_dict(s) for k, s in d["suites"].items()},
                   errors=dict(d.get("errors", {})))


def compare_interpreters(pythons=None, *, workloads=None, threads=(1, 2, 4), repeats: int = 3,
                         work: float = 1.0, include_self: bool = True, timeout: float = 300.0,
                         progress=None) -> Comparison:
    """The scaling suite on this interpreter (``include_self``) and on each of ``pythons``
    (see :func:`find_interpreters`), one after the other so they never compete for the
    cores. Each other interpreter runs in a subprocess, stopped after ``timeout`` seconds;
    failures are collected in ``Comparison.errors``."""
    names = check_workloads(workloads)
    counts = check_counts(threads, "threads")
    repeats = checks.integer("repeats", repeats, min=1)
    work = check_work(work)
    timeout = checks.number("timeout", timeout, min=0, min_open=True)
    include_self = checks.boolean("include_self", include_self)
    progress = checks.function("progress", progress, optional=True)
    others = find_interpreters(pythons)
    total = len(others) + bool(include_self)
    suites, errors = {}, {}
    if include_self:
        def sub(fraction: float, text: str) -> None:
            if progress is not None:
                progress(fraction / total, f"this Python: {text}")
        suites[sys.executable] = suite(names, counts, repeats, work=work, progress=sub)
    for k, py in enumerate(others, start=bool(include_self)):
        if progress is not None:
            progress(k / total, f"running {py}")
        try:
            suites[py] = run_suite_in(py, names, counts, repeats, work, timeout)
        except InterpreterError as exc:
            errors[py] = str(exc)
    if progress is not None:
        progress(1.0, "done")
    return Comparison(suites=suites, errors=errors)
