"""Every workload's scaling on this interpreter, as one result and one screen of text.

This is what ``python -m mtlearn gil`` prints, what ``--json`` sends to another interpreter
comparing itself with this one (:func:`mtlearn.bench.compare_interpreters`), and what
``benchmarks/bench_gil.py`` records.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..runtime import checks
from .machine import build_info, describe_build, interpreter_label
from .runner import check_counts, check_work
from .scaling import ScalingResult, check_workload, scaling
from .workloads import WORKLOADS

FORMAT = "mtlearn.gil/1"      # the JSON's "format", checked when reading it back


@dataclass
class Suite:
    """Scaling results of several workloads on one interpreter.

    ``info`` is :func:`mtlearn.bench.build_info` of the interpreter that ran them;
    ``results[name]`` a :class:`ScalingResult` per workload (thread runs);
    ``processes[name]`` the same with a process pool, when asked for; ``skipped[name]``
    why a workload did not run (e.g. no numpy in that interpreter).
    """

    info: dict
    results: dict[str, ScalingResult]
    processes: dict[str, ScalingResult] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """Short name of the interpreter, e.g. ``3.13.5t free-threaded (GIL off)``."""
        return interpreter_label(self.info)

    def table(self) -> str:
        """One screen: speedup and CPU/wall per thread at each count, for every workload."""
        counts = sorted({n for r in self.results.values() for n in r.threads})
        lines = [describe_build(self.info), ""]
        any_r = next(iter(self.results.values()), None)
        if any_r is not None:
            lines.append(f"Same total work on {', '.join(map(str, counts))} threads: speedup over "
                         f"1 thread (CPU/wall per thread), median of {any_r.repeats}")
        # "numpy_small [proc]" is 18 characters: the first column fits the longest label
        labels = [name + (f" s={r.params['serial_fraction']:g}" if "serial_fraction" in r.params
                          else "") + tag
                  for rows, tag in ((self.results, ""), (self.processes, " [proc]"))
                  for name, r in rows.items()]
        wide = max([14] + [len(label) + 1 for label in labels])
        head = f"{'workload':<{wide}}{'the GIL':<10}{'1 thread':>9}"
        head += "".join(f"{f'{n} threads':>15}" for n in counts[1:]) + f"{'Amdahl s':>10}"
        lines += ["", head]
        for rows, tag in ((self.results, ""), (self.processes, " [proc]")):
            for name, r in rows.items():
                w = WORKLOADS.get(name)
                label = name + (f" s={r.params['serial_fraction']:g}"
                                if "serial_fraction" in r.params else "") + tag
                cells = ""
                for n in counts[1:]:
                    if n in r.threads:
                        i = r.threads.index(n)
                        cells += f"{r.speedup[i]:>8.2f}x ({r.cpu_wall[i]:.2f})"
                    else:
                        cells += f"{'-':>15}"
                s = ""
                if len(r.threads) > 1:
                    upto = r.cores if (w is not None and w.cpu_bound) else None
                    if len([n for n in r.threads if upto is None or n <= upto]) > 1:
                        s = f"{r.amdahl(upto=upto).serial_fraction:.2f}"
                gil = w.gil if w is not None else ""
                lines.append(f"{label:<{wide}}{gil:<10}{r.seconds[0]:>7.3f} s{cells}{s:>10}")
        for name, why in self.skipped.items():
            lines.append(f"{name:<{wide}}skipped: {why}")
        lines += ["",
                  "CPU/wall: each thread's CPU time over the wall time; 1/N: N threads took turns.",
                  "Amdahl s: serial fraction fitted to the speedups (CPU-bound: up to the cores)."]
        if self.processes:
            lines.append("[proc]: the same work on a pool of processes instead of threads.")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"format": FORMAT, "info": self.info,
                "results": {k: r.to_dict() for k, r in self.results.items()},
                "processes": {k: r.to_dict() for k, r in self.processes.items()},
                "skipped": dict(self.skipped)}

    @classmethod
    def from_dict(cls, d: dict) -> Suite:
        if d.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} document (format {d.get('format')!r})")
        return cls(info=d["info"],
                   results={k: ScalingResult.from_dict(r) for k, r in d["results"].items()},
                   processes={k: ScalingResult.from_dict(r)
                              for k, r in d.get("processes", {}).items()},
                   skipped=dict(d.get("skipped", {})))


def check_workloads(workloads) -> list[str]:
    """Names from a list (or a comma-separated string); ValueError for unknown ones."""
    if workloads is None:
        return list(WORKLOADS)
    if isinstance(workloads, str):
        workloads = [w.strip() for w in workloads.split(",") if w.strip()]
    names = list(workloads)
    if not names:
        raise ValueError("workloads must not be empty; choose from " + ", ".join(WORKLOADS))
    return [checks.choice("workloads (each)", w, WORKLOADS) for w in names]


def suite(workloads=None, threads=(1, 2, 4), repeats: int = 3, *, work: float = 1.0,
          processes: bool = False, progress=None) -> Suite:
    """:func:`mtlearn.bench.scaling` for each workload (default: all) on this interpreter.

    A workload this interpreter cannot run (no numpy) is listed in ``skipped``. With
    ``processes``, the CPU-bound workloads are also run on a process pool.
    ``progress(fraction, text)`` as in :func:`scaling`.
    """
    names = check_workloads(workloads)
    counts = check_counts(threads, "threads")
    repeats = checks.integer("repeats", repeats, min=1)
    work = check_work(work)
    processes = checks.boolean("processes", processes)
    results, procs, skipped = {}, {}, {}
    plan = [(n, False) for n in names]
    if processes:
        plan += [(n, True) for n in names if WORKLOADS[n].cpu_bound]
    for k, (name, in_processes) in enumerate(plan):
        try:
            check_workload(name, {})
        except RuntimeError as exc:
            if not in_processes:
                skipped[name] = str(exc)
            continue

        def sub(fraction: float, text: str, k=k) -> None:
            if progress is not None:
                progress((k + fraction) / len(plan), text)

        r = scaling(name, counts, repeats, work=work, processes=in_processes, progress=sub)
        (procs if in_processes else results)[name] = r
    return Suite(info=build_info(), results=results, processes=procs, skipped=skipped)
