"""The GIL lab's full table on this machine: every workload on threads and on processes,
Python threads x BLAS threads, the convoy effect, and what tracing costs.

    python benchmarks/bench_gil.py                       # print the tables (about a minute)
    python benchmarks/bench_gil.py --compare             # also other Pythons (MTLEARN_PYTHONS,
                                                         #   python3.13t on PATH, the CI build)
    python benchmarks/bench_gil.py --python python3.13t  # also this interpreter
    python benchmarks/bench_gil.py --record              # append to benchmarks/RESULTS.md

Every speedup is a ratio measured in one run of one process (N threads against 1 thread,
interleaved round by round). Run it on a quiet machine: other programs using the cores
change every number. Expected on 2 cores: pure Python ~1.0x with the GIL and close to 2x on
a free-threaded build; large-array numpy and matmul close to 2x; io ~N.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))          # this working tree's mtlearn

from mtlearn import bench  # noqa: E402
from mtlearn.bench.machine import describe_build  # noqa: E402

RESULTS = Path(__file__).with_name("RESULTS.md")
SECTIONS = ["threads", "processes", "blas", "convoy", "tracer"]


# ---------------------------------------------------------------------------- tables


def md_table(head: list[str], rows: list[list[str]]) -> str:
    align = ["---"] + ["---:"] * (len(head) - 1)
    return "\n".join(["| " + " | ".join(head) + " |", "| " + " | ".join(align) + " |"]
                     + ["| " + " | ".join(r) + " |" for r in rows])


def scaling_table(results: dict, counts: list[int], unit: str = "thread") -> str:
    head = ["workload", "the GIL", f"1 {unit}"] + [f"{n} {unit}s" for n in counts[1:]]
    head += ["Amdahl s", "USL σ, κ"]
    rows = []
    for name, r in results.items():
        w = bench.WORKLOADS[name]
        cells = []
        for n in counts[1:]:
            i = r.threads.index(n)
            cells.append(f"{r.speedup[i]:.2f}x ({r.cpu_wall[i]:.2f})")
        upto = r.cores if w.cpu_bound else None
        usable = [n for n in r.threads if upto is None or n <= upto]
        s = f"{r.amdahl(upto=upto).serial_fraction:.2f}" if len(usable) > 1 else "—"
        u = r.usl() if len(r.threads) > 1 else None
        usl = f"{u.sigma:.2f}, {u.kappa:.3f}" if u is not None else "—"
        label = name + (f" (s={r.params['serial_fraction']:g})"
                        if "serial_fraction" in r.params else "")
        rows.append([label, w.gil, f"{r.seconds[0] * 1e3:.0f} ms"] + cells + [s, usl])
    return md_table(head, rows)


def comparison_table(c: bench.Comparison, counts: list[int]) -> str:
    suites = list(c.suites.values())
    head = ["workload"] + [f"[{k + 1}] {n} thr" for k in range(len(suites)) for n in counts]
    names = list(dict.fromkeys(n for s in suites for n in s.results))
    rows = []
    for name in names:
        row = [name]
        for s in suites:
            r = s.results.get(name)
            for n in counts:
                if r is None or n not in r.threads:
                    row.append("—")
                elif n == 1:
                    row.append(f"{r.seconds[0] * 1e3:.0f} ms")
                else:
                    row.append(f"{r.speedup[r.threads.index(n)]:.2f}x")
        rows.append(row)
    legend = "\n".join(f"[{k + 1}] {describe_build(s.info)}" for k, s in enumerate(suites))
    return legend + "\n\n" + md_table(head, rows)


def oversubscription_table(r: bench.OversubscriptionResult) -> str:
    head = ["Python \\ BLAS threads"] + [str(b) for b in r.blas_threads]
    rows = [[str(p)] + [f"{r.speedup[i][j]:.2f}x{' *' if r.oversubscribed[i][j] else ''}"
                        for j in range(len(r.blas_threads))]
            for i, p in enumerate(r.py_threads)]
    return (f"{r.products} GEMMs of {r.size}x{r.size} float64 split across the Python threads;"
            f" speedup over 1 x 1 ({r.seconds[0][0] * 1e3:.0f} ms); * = more threads than "
            f"the {r.cores} cores\n\n" + md_table(head, rows))


def convoy_table(r: bench.ConvoyResult) -> str:
    head = ["switch interval", "median extra latency", "p90", "CPU-bound loop rate"]
    rows = [[f"{s * 1e3:g} ms", f"{r.latency_median[i] * 1e3:.2f} ms",
             f"{r.latency_p90[i] * 1e3:.2f} ms", f"{r.cpu_rate[i] / 1e6:.1f} M it/s"]
            for i, s in enumerate(r.switch_intervals)]
    return (f"A {r.wait * 1e3:g} ms blocking wait plus a little Python, {r.samples} times, while "
            f"{r.cpu_threads} pure-Python thread runs; with none running: "
            f"{r.baseline_median * 1e3:.2f} ms extra\n\n" + md_table(head, rows))


# ---------------------------------------------------------------------------- tracer cost


def tracer_overhead(steps: int = 300, spans_per_step: int = 12) -> dict:
    """What recording spans costs: per span, and on a ~8 ms numpy "training step" made of
    ``spans_per_step`` phases (GEMMs, BLAS at 1 thread), traced against untraced. The two
    alternate step by step (which goes first alternates too), so drift hits both alike."""
    import numpy as np

    tracer = bench.Tracer()
    n = 200_000
    t0 = time.perf_counter()
    for _ in range(n):
        with tracer.span("compute"):
            pass
    per_span = (time.perf_counter() - t0) / n
    t0 = time.perf_counter()
    for _ in range(n):
        tracer.end(tracer.begin("compute"))
    per_begin_end = (time.perf_counter() - t0) / n
    tracer.clear()

    rng = np.random.default_rng(0)
    a, b = rng.random((200, 200)), rng.random((200, 200))
    out = np.empty((200, 200))

    def gemm_seconds() -> float:
        best = float("inf")
        for _ in range(20):
            t = time.perf_counter()
            np.matmul(a, b, out=out)
            best = min(best, time.perf_counter() - t)
        return best

    with bench.blas_threads(1):
        reps = max(1, round(0.008 / spans_per_step / gemm_seconds()))

        def phase():
            for _ in range(reps):
                np.matmul(a, b, out=out)

        def plain():
            for _ in range(spans_per_step):
                phase()

        def traced():
            for _ in range(spans_per_step):
                with tracer.span("compute"):
                    phase()

        def timed(step) -> float:
            t = time.perf_counter()
            step()
            return time.perf_counter() - t

        p, t = [], []
        for i in range(steps + 10):                 # the first 10 warm up
            pair = (timed(plain), timed(traced)) if i % 2 else (timed(traced), timed(plain))[::-1]
            if i >= 10:
                p.append(pair[0])
                t.append(pair[1])
        tracer.clear()
    step = statistics.median(p)
    return {"per_span_us": per_span * 1e6, "per_begin_end_us": per_begin_end * 1e6,
            "step_ms": step * 1e3, "spans_per_step": spans_per_step,
            "estimated_pct": 100 * spans_per_step * per_span / step,
            "measured_pct": 100 * (statistics.median(t) / step - 1)}


def tracer_text(o: dict) -> str:
    return (f"{o['per_span_us']:.2f} µs per `with tracer.span(...)`, "
            f"{o['per_begin_end_us']:.2f} µs per begin/end; on a {o['step_ms']:.1f} ms step "
            f"with {o['spans_per_step']} spans: {o['estimated_pct']:.2f}% "
            f"(spans x cost / step), measured {o['measured_pct']:+.2f}% "
            f"(median traced / untraced step; noise is about ±1%). Target: under 3%.")


# ---------------------------------------------------------------------------- main


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", default="1,2,4,8", help="comma-separated (default 1,2,4,8)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--work", type=float, default=1.0, help="1.0 is ~0.2 s per run on 1 core")
    ap.add_argument("--python", action="append", default=[], metavar="PATH",
                    help="also run the threads table in this interpreter (repeatable)")
    ap.add_argument("--compare", action="store_true",
                    help="also every interpreter bench.find_interpreters() finds")
    ap.add_argument("--skip", default="", help=f"comma-separated of {','.join(SECTIONS)}")
    ap.add_argument("--only", default="", help="comma-separated sections to run (default all)")
    ap.add_argument("--record", action="store_true", help="append to benchmarks/RESULTS.md")
    args = ap.parse_args(argv)
    counts = sorted({1, *(int(t) for t in args.threads.split(","))})
    skip = set(filter(None, args.skip.split(",")))
    if args.only:
        skip |= set(SECTIONS) - set(args.only.split(","))
    unknown = skip - set(SECTIONS)
    if unknown:
        ap.error(f"unknown section(s) {sorted(unknown)}; choose from {SECTIONS}")

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def progress(fraction: float, text: str) -> None:
        sys.stderr.write(f"\r  {fraction:4.0%} {text:<60}")
        sys.stderr.flush()

    info = bench.build_info()
    sections = []
    threads = None
    if not {"threads", "processes"} <= skip:
        say("threads...")
        threads = bench.suite(None, counts, args.repeats, work=args.work,
                              processes="processes" not in skip, progress=progress)
        if "threads" not in skip:
            sections.append(("Threads: speedup over 1 thread (CPU/wall per thread)",
                             scaling_table(threads.results, counts)))
        if threads.processes:
            sections.append(("The same on a process pool: speedup over 1 process",
                             scaling_table(threads.processes, counts, "process")))
    if "blas" not in skip:
        say("\nPython threads x BLAS threads...")
        grid = sorted({1, 2, info["cores"]})
        o = bench.oversubscription(grid, grid, repeats=args.repeats, progress=progress)
        sections.append(("Python threads x BLAS threads", oversubscription_table(o)))
    if "convoy" not in skip:
        say("\nconvoy effect...")
        c = bench.convoy(progress=progress)
        sections.append(("The convoy effect", convoy_table(c)))
    if "tracer" not in skip:
        say("\ntracer overhead...")
        sections.append(("What tracing costs", tracer_text(tracer_overhead())))
    pythons = list(args.python)
    if args.compare:
        pythons += [p for p in bench.find_interpreters() if p not in pythons]
    if pythons:
        say(f"\nother interpreters: {pythons}...")
        comp = bench.compare_interpreters(pythons, threads=counts, repeats=args.repeats,
                                          work=args.work, include_self=threads is None)
        if threads is not None:
            comp.suites = {sys.executable: threads, **comp.suites}
        text = comparison_table(comp, counts)
        if comp.errors:
            text += "\n\n" + "\n".join(f"not compared: {e}" for e in comp.errors.values())
        sections.append(("Side by side: 1-thread time and speedup per interpreter", text))
    say("")

    lines = [f"### bench_gil — {time.strftime('%Y-%m-%d')}", "",
             describe_build(info) + ". Same total work at every count, median of "
             f"{args.repeats} interleaved runs; work={args.work:g} (~{0.2 * args.work:.2g} s "
             "per run on one core).", ""]
    for title, body in sections:
        lines += [f"#### {title}", "", body, ""]
    text = "\n".join(lines)
    print(text)
    if args.record:
        with RESULTS.open("a") as f:
            f.write("\n" + text)
        print(f"appended to {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
