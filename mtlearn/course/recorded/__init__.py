"""What the course measures on 16 cores: recorded facts, shipped with the package.

A 2-core laptop cannot show where threads stop helping — the peak and the fall of
synchronous data parallelism on the GIL build, the free-threaded build scaling to 11x,
16 MPI ranks. These recordings can. They were measured on one machine (see
:data:`MACHINE`) on 2026-11-29, and every figure or table made from them says so: they
are shown *beside* the learner's own measurement, never instead of it.

    from mtlearn.course import recorded
    doc = recorded.load("sync_scaling")       # plain dicts and lists
    doc["machine"], doc["caveat"]
    recorded.series(doc, strategy="sync", build="GIL", batch=256)
    recorded.names()

Each document has ``name``, ``title``, ``machine`` (one line: where, which Pythons, when),
``date``, ``files`` (the recorded files it was read from), ``how`` (how they were measured),
``caveat`` (the recording's own warning about the hogwild rows, always included) and
``note``, and then ``series`` (curves: ``threads`` with ``speedup`` and times) or ``rows``
(tables). The files themselves, with their README, are in this package's folder
``16core-2026-11-29``; :func:`readme` returns the README.
"""

from __future__ import annotations

import json
import re
from importlib import resources

from ...runtime import checks

FOLDER = "16core-2026-11-29"
DATE = "2026-11-29"
#: the recording machine, as every label names it
MACHINE = "16-core x86-64 Linux (Intel Xeon, one hardware thread per core)"
#: one line for legends and captions
LABEL = f"16-core x86-64, CPython 3.12 / 3.13t, recorded {DATE}"

NAMES = ("sync_scaling", "gil_lab", "bubble", "mpi", "hogwild", "sync_variants", "torch",
         "penalty", "bench_nn")

_BUILD = {"py3.12": ("GIL", "GIL build (3.12)"), "py3.13t": ("free-threaded",
                                                             "free-threaded (3.13t)")}


def _text(file: str) -> str:
    return resources.files(__name__).joinpath(FOLDER, file).read_text(encoding="utf-8")


def files() -> list[str]:
    """The recorded files shipped (names within the folder)."""
    folder = resources.files(__name__).joinpath(FOLDER)
    return sorted(p.name for p in folder.iterdir() if p.is_file())


def readme() -> str:
    """The recording's README: the machine, the interpreters, each file and its command."""
    return _text("README.md")


def caveat() -> str:
    """The README's caveat (the hogwild rows at 8-16 threads of ``scale_*.jsonl`` are
    artefacts; ``hogwild64.jsonl`` is the valid measurement), as one paragraph."""
    text = readme()
    start = text.index("Caveat:")
    return " ".join(text[start:].split())


def _jsonl(file: str) -> list[dict]:
    return [json.loads(line) for line in _text(file).splitlines()
            if line.strip().startswith("{")]


def _md_tables(text: str) -> list[list[list[str]]]:
    """Every markdown table in ``text`` as rows of cells (header first, separator out)."""
    tables, current = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(re.fullmatch(r":?-+:?", c) for c in cells):
                current.append(cells)
        elif current:
            tables.append(current)
            current = []
    return tables


def _num(cell: str) -> float:
    """The first number in a table cell (``1.64x (0.80)`` -> 1.64, ``356 ms`` -> 356)."""
    m = re.search(r"[-+]?\d+(?:\.\d+)?", cell.replace("**", ""))
    if m is None:
        raise ValueError(f"no number in {cell!r}")
    return float(m.group())


def _doc(name: str, title: str, files: list[str], how: str, note: str = "", **data) -> dict:
    return {"name": name, "title": title, "machine": f"{MACHINE}; {_pythons()}",
            "label": LABEL, "date": DATE, "files": files, "how": how, "caveat": caveat(),
            "note": note, **data}


def _pythons() -> str:
    return ("CPython 3.12.3 (GIL build) with numpy 2.5.2 and OpenBLAS 0.3.34; CPython 3.13.5 "
            "free-threaded (GIL off) with numpy 2.4.6; BLAS pinned to one thread per worker")


# ------------------------------------------------------------------------ the documents


def _scale_series(rows: list[dict], strategy: str, file: str, valid_below: int | None = None
                  ) -> list[dict]:
    """Rows of one ``scale_*.jsonl`` grouped into one curve per (Python, model, batch)."""
    out = []
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["py"], r["model"], r["batch"]), []).append(r)
    for (py, model, batch), rs in groups.items():
        serial = next(r for r in rs if r["strategy"] == "serial")
        pts = sorted((r for r in rs if r["strategy"] == strategy), key=lambda r: r["n"])
        if not pts:
            continue
        build, build_label = _BUILD[py]
        what = "wide MLP" if model == "wide" else "course CNN"
        s = {"label": f"{strategy}, {build_label}, {what}, batch {batch}", "strategy": strategy,
             "build": build, "python": py.removeprefix("py"), "model": model, "batch": batch,
             "threads": [r["n"] for r in pts], "speedup": [r["speedup"] for r in pts],
             "ms": [r["ms"] for r in pts], "min_ms": [r["min_ms"] for r in pts],
             "max_ms": [r["max_ms"] for r in pts], "serial_ms": serial["ms"],
             "serial_min_ms": serial["min_ms"], "serial_max_ms": serial["max_ms"],
             "file": file}
        if valid_below is not None:
            s["valid"] = [r["n"] < valid_below for r in pts]
        out.append(s)
    return out


def _sync_scaling() -> dict:
    series = (_scale_series(_jsonl("scale_gil.jsonl"), "sync", "scale_gil.jsonl")
              + _scale_series(_jsonl("scale_ft.jsonl"), "sync", "scale_ft.jsonl")
              + _scale_series(_jsonl("scale_proc.jsonl"), "process", "scale_proc.jsonl")
              + _scale_series(_jsonl("scale_wide.jsonl"), "sync", "scale_wide.jsonl"))
    return _doc(
        "sync_scaling", "Synchronous data parallelism on 16 cores: threads (GIL and "
        "free-threaded) and processes",
        ["scale_gil.jsonl", "scale_ft.jsonl", "scale_proc.jsonl", "scale_wide.jsonl"],
        "speedup over serial on the main thread, in the same rounds; ms per step from the end "
        "of the first of 8 steps to the end of the last; medians of 2-3 interleaved rounds "
        "(min_ms/max_ms the spread)",
        "On the GIL build the course CNN peaks at 4-8 threads and falls at 16: Amdahl's law "
        "cannot produce a curve that goes down; the cost of handing the GIL around grows "
        "with the number of threads.", series=series)


def _gil_lab() -> dict:
    text = _text("gil.md")
    first, side = _md_tables(text)[:2]
    per_workload = {row[0]: row for row in first[1:]}
    threads = [int(_num(c)) for c in first[0][2:7]]                 # 1, 2, 4, 8, 16
    series = []
    for row in side[1:]:
        workload = row[0]
        one = per_workload.get(workload) or per_workload.get(f"{workload} (s=0.5)")
        for build, build_label, cells in (("GIL", "GIL build (3.12)", row[1:6]),
                                          ("free-threaded", "free-threaded (3.13t)",
                                           row[6:11])):
            s = {"label": f"{workload}, {build_label}", "workload": workload, "build": build,
                 "threads": threads, "speedup": [1.0, *(_num(c) for c in cells[1:])],
                 "one_thread_ms": _num(cells[0])}
            if build == "GIL" and one is not None:
                s["gil"] = one[1]
                s["cpu_wall"] = [None, *(_num(c.split("(")[1]) for c in one[3:3 + len(
                    threads) - 1])]
                s["amdahl_s"] = _num(one[-1])
            series.append(s)
    return _doc(
        "gil_lab", "The GIL lab at 1-16 threads: GIL build vs free-threaded", ["gil.md"],
        "benchmarks/bench_gil.py --only threads --threads 1,2,4,8,16 --repeats 2: the same "
        "total work at every count, speedup over 1 thread, median of 2 interleaved runs; "
        "cpu_wall is each thread's CPU time over the wall time (GIL build only)",
        "numpy's arrays here (2 x 256 KiB per thread) stay in cache; on multi-MB activations "
        "memory bandwidth limits numpy sooner.", series=series)


def _bubble() -> dict:
    table = _md_tables(_text("bubble.md"))[0]
    rows = [{"model": r[0], "K": int(r[1]), "M": int(r[2]), "theory": _num(r[3]),
             "measured": _num(r[4]), "difference_pp": _num(r[5]),
             "busiest_over_mean": _num(r[6]), "within_5_points": r[7] == "yes"}
            for r in table[1:]]
    return _doc(
        "bubble", "Pipeline bubble with K = 2-4 stages on 16 cores", ["bubble.md"],
        "benchmarks/bench_parallel.py --parts bubble: the stage threads' idle fraction (in %) "
        "against GPipe's (K-1)/(M+K-1); course CNN, batch 256, float32, 8 steps per run, "
        "median of 5 interleaved rounds; GIL build", "The formula assumes equal stages: the "
        "balanced MLP (12 x Dense(512) Tanh) stays within ~3-9 points of it, the course CNN "
        "(unequal stages, see busiest_over_mean) 11-27 points above it.", rows=rows)


def _mpi() -> dict:
    serial = next(r for r in _jsonl("scale_gil.jsonl") if r["strategy"] == "serial"
                  and r["batch"] == 1024)
    rows = []
    for r in _jsonl("mpi.jsonl"):
        if r["ranks"]:
            label = f"{r['ranks']} ranks x {r['threads']} thread{'s' if r['threads'] > 1 else ''}"
            workers = r["ranks"] * r["threads"]
        else:
            label = f"{r['threads']} thread{'s' if r['threads'] > 1 else ''} in one process"
            workers = r["threads"]
        rows.append({"label": label, "ranks": r["ranks"], "threads": r["threads"],
                     "workers": workers, "batch": r["batch"], "ms": r["ms"],
                     "vs_1thread": r["vs_1thread"], "reduce_share": r["reduce"],
                     "startup_s": r["startup_s"],
                     "vs_serial_approx": round(serial["ms"] / r["ms"], 2)})
    return _doc(
        "mpi", "MPI ranks vs threads on 16 cores, course CNN, batch 1024", ["mpi.jsonl",
                                                                          "scale_gil.jsonl"],
        "mpi4py 4.1.2 + MPICH 5.0.2; ms per step, median of 2 rounds; vs_1thread is over ONE "
        "SYNC WORKER THREAD (slower than serial on the main thread), reduce_share the share "
        "of wall time in the allreduce, startup_s the job's start-up",
        f"vs_serial_approx divides serial's {serial['ms']} ms per step (main thread, batch "
        "1024, scale_gil.jsonl: another run on the same machine) by each row's ms.",
        rows=rows, serial_ms=serial["ms"])


def _hogwild() -> dict:
    rows = _jsonl("hogwild64.jsonl")
    serial = next(r for r in rows if r["strategy"] == "serial")
    pts = [r for r in rows if r["strategy"] == "hogwild"]
    valid = {"label": "hogwild, GIL build (3.12), course CNN, batch 256, 64 updates per run",
             "strategy": "hogwild", "build": "GIL", "python": "3.12", "model": "cnn",
             "batch": 256, "threads": [r["n"] for r in pts],
             "speedup": [r["speedup"] for r in pts], "ms": [r["ms"] for r in pts],
             "serial_ms": serial["ms"], "file": "hogwild64.jsonl", "valid": [True] * len(pts)}
    eight = (_scale_series(_jsonl("scale_gil.jsonl"), "hogwild", "scale_gil.jsonl", 8)
             + _scale_series(_jsonl("scale_ft.jsonl"), "hogwild", "scale_ft.jsonl", 8))
    return _doc(
        "hogwild", "Hogwild on 16 cores", ["hogwild64.jsonl", "scale_gil.jsonl",
                                           "scale_ft.jsonl"],
        "ms per update over 64 updates per run (hogwild64.jsonl, one round) — the valid "
        "measurement; the scale_*.jsonl series time 8 updates per run and their points at "
        "8-16 threads are artefacts (valid: False)",
        "Use series[0]; the others are kept to show the artefact the caveat describes.",
        series=[valid, *eight])


def _sync_variants() -> dict:
    rows = [{k: r[k] for k in ("py", "env", "model", "batch", "strategy", "n", "ms",
                               "speedup", "min_ms", "max_ms")}
            for r in _jsonl("sync_variants.jsonl")]
    return _doc(
        "sync_variants", "sync at 1/4/16 threads under allocator and switch-interval "
        "variants", ["sync_variants.jsonl"],
        "env: default; arena1 = MALLOC_ARENA_MAX=1; switch = sys.setswitchinterval(0.0005); "
        "arena1+switch both; speedup over serial in the same rounds",
        "Neither setting lifts the GIL build's 16-thread result much: the limit is the "
        "GIL-held part of every step.", rows=rows)


def _torch() -> dict:
    rows = _jsonl("torch16.jsonl")
    series = []
    for batch in sorted({r["batch"] for r in rows}):
        rs = sorted((r for r in rows if r["batch"] == batch), key=lambda r: r["threads"])
        series.append({"label": f"PyTorch {rs[0]['torch'].split('+')[0]} CPU, batch {batch}",
                       "batch": batch, "threads": [r["threads"] for r in rs],
                       "ms": [r["ms"] for r in rs],
                       "speedup": [round(rs[0]["ms"] / r["ms"], 2) for r in rs]})
    return _doc(
        "torch", "PyTorch CPU on the course CNN step at 1-16 intra-op threads",
        ["torch16.jsonl"], "median of 20 steps (SGD + momentum); speedup over PyTorch on 1 "
        "thread", "The anchor a user would pick instead of numpy threads.", series=series)


def _penalty() -> dict:
    rows = []
    envs = ("default", "arena1")          # the README's order: default, then MALLOC_ARENA_MAX=1
    seen: dict[int, int] = {}
    for line in _text("penalty.txt").splitlines():
        m = re.match(r"batch (\d+): main ([\d.]+) ms, worker thread ([\d.]+) ms, ratio "
                     r"([\d.]+)", line)
        if not m:
            continue
        batch = int(m.group(1))
        k = seen.get(batch, 0)
        seen[batch] = k + 1
        rows.append({"batch": batch, "env": envs[min(k, 1)], "main_ms": float(m.group(2)),
                     "worker_ms": float(m.group(3)), "ratio": float(m.group(4))})
    return _doc(
        "penalty", "One training step on the main thread vs on a worker thread",
        ["penalty.txt"], "median of 24 steps each, BLAS at 1 thread; per batch the default "
        "first, then MALLOC_ARENA_MAX=1 (arena1), in the README's order (the file does not "
        "name them)", "A ratio above 1: the worker thread is slower (glibc's "
        "per-thread malloc arenas return and re-fault large buffers every step).", rows=rows)


def _bench_nn() -> dict:
    table = _md_tables(_text("bench_nn.txt"))[0]
    rows = [{"step": r[0], "mtlearn_ms": _num(r[1]), "pytorch_ms": _num(r[2]),
             "ratio": _num(r[3]), "target": r[4]} for r in table[1:]]
    return _doc(
        "bench_nn", "One training step, mtlearn vs PyTorch 2.11 CPU, 1 thread",
        ["bench_nn.txt"], "benchmarks/bench_nn.py cnn lstm --rounds 7: median of 7 "
        "interleaved rounds x 10 steps", rows=rows)


_LOADERS = {"sync_scaling": _sync_scaling, "gil_lab": _gil_lab, "bubble": _bubble,
            "mpi": _mpi, "hogwild": _hogwild, "sync_variants": _sync_variants,
            "torch": _torch, "penalty": _penalty, "bench_nn": _bench_nn}


def names() -> tuple[str, ...]:
    """The documents :func:`load` knows."""
    return NAMES


def load(name: str) -> dict:
    """The recorded document ``name`` (one of :func:`names`) as plain Python: dicts, lists,
    numbers and strings, read afresh from the shipped files (a caller may change it)."""
    checks.choice("name", name, NAMES)
    return _LOADERS[name]()


def series(doc: dict, **match) -> dict:
    """The one curve of ``doc["series"]`` whose fields equal ``match`` (e.g.
    ``strategy="sync", build="GIL", batch=256``); ValueError naming the choices if none or
    several match."""
    found = [s for s in doc["series"] if all(s.get(k) == v for k, v in match.items())]
    if len(found) != 1:
        labels = "; ".join(s["label"] for s in doc["series"])
        raise ValueError(f"{len(found)} series of {doc['name']!r} match {match}; there are: "
                         f"{labels}")
    return found[0]


def at(curve: dict, threads: int, field: str = "speedup"):
    """``curve[field]`` at ``threads`` (e.g. the speedup at 16 threads)."""
    if threads not in curve["threads"]:
        raise ValueError(f"{curve['label']} has no point at {threads} threads; it has "
                         f"{curve['threads']}")
    return curve[field][curve["threads"].index(threads)]


def claims() -> dict[str, str]:
    """One sentence per claim of notebook 10 (keys ``"1"``, ``"2a"``... as in its verdict
    table) with what the 16-core machine measured, computed from the recorded files;
    claims no recording speaks to are absent."""
    sync = load("sync_scaling")
    gil = load("gil_lab")
    g256 = series(sync, strategy="sync", build="GIL", model="cnn", batch=256)
    g1024 = series(sync, strategy="sync", build="GIL", model="cnn", batch=1024)
    f1024 = series(sync, strategy="sync", build="free-threaded", model="cnn", batch=1024)
    proc = series(sync, strategy="process", batch=1024)
    py_g = at(series(gil, workload="python", build="GIL"), 16)
    py_f = at(series(gil, workload="python", build="free-threaded"), 16)
    np_g = at(series(gil, workload="numpy", build="GIL"), 16)
    np_f = at(series(gil, workload="numpy", build="free-threaded"), 16)
    hog = load("hogwild")["series"][0]
    mpi_doc = load("mpi")
    mpi = {r["label"]: r for r in mpi_doc["rows"]}
    r16 = mpi["16 ranks x 1 thread"]
    t16 = mpi["16 threads in one process"]
    bubble = {(r["model"], r["K"], r["M"]): r for r in load("bubble")["rows"]}
    b_cnn = bubble[("course CNN", 4, 16)]
    b_mlp = bubble[("12 x Dense(512) Tanh", 4, 16)]
    peak = max(g256["speedup"])
    peak_n = g256["threads"][g256["speedup"].index(peak)]
    return {
        "1": f"16 threads: numpy {np_g:.2f}x, pure Python {py_g:.2f}x (GIL build)",
        "2a": (f"hogwild, 64 updates per run: {at(hog, 4):.2f}x at 4 threads, "
               f"{at(hog, 16):.2f}x at 16"),
        "2b": (f"batch 256: {at(g256, 2):.2f}x at 2 threads, peak {peak:.2f}x at {peak_n}, "
               f"{at(g256, 16):.2f}x at 16 (GIL build)"),
        "3": (f"16 MPI ranks {r16['ms']:.1f} ms/step vs serial's {mpi_doc['serial_ms']:.0f} "
              f"ms (~{r16['vs_serial_approx']:.0f}x); "
              f"processes {at(proc, 16):.2f}x at 16"),
        "7a": (f"batch 1024, 16 workers: threads {at(g1024, 16):.2f}x (GIL), "
               f"{at(f1024, 16):.2f}x (free-threaded), processes {at(proc, 16):.2f}x; "
               f"16 threads in one process {t16['ms']:.1f} ms/step"),
        "7b": (f"K = 4, M = 16: bubble {b_cnn['measured']:.0f}% for the course CNN, "
               f"{b_mlp['measured']:.0f}% for a balanced MLP (formula {b_cnn['theory']:.0f}%)"),
        "7c": f"16 threads: numpy {np_g:.2f}x vs pure Python {py_g:.2f}x (GIL build)",
        "8": (f"16 threads, pure Python: {py_f:.2f}x free-threaded vs {py_g:.2f}x with the "
              f"GIL; numpy {np_f:.2f}x vs {np_g:.2f}x"),
    }
