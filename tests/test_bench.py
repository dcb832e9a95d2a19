"""mtlearn.bench: scaling runs, the Amdahl fit, BLAS control, argument checks.

No test asserts a speed: the machine may be shared. They check shapes, formulas, that
limits are restored and that every thread is joined.
"""

import ast
import json
import os
import random
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from threadpoolctl import threadpool_info

from mtlearn import bench
from mtlearn.bench.workloads import WORKLOADS, Workload

TINY = 0.02          # of the standard work: a few milliseconds per run


def blas_counts():
    return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]


@pytest.fixture
def no_thread_start(monkeypatch):
    """Makes starting any thread an error, to prove argument checks come first."""
    def refuse(self):
        raise AssertionError(f"a thread was started: {self.name}")
    monkeypatch.setattr(threading.Thread, "start", refuse)


# ---------------------------------------------------------------------------- results


def test_scaling_result_shapes_and_formulas(no_thread_leak):
    r = bench.scaling("io", threads=[2, 4], repeats=2, work=0.1)
    assert r.threads == [1, 2, 4]                     # the 1-thread baseline is always there
    assert r.speedup[0] == 1.0 and r.efficiency[0] == 1.0
    for i, n in enumerate(r.threads):
        assert r.seconds_min[i] <= r.seconds[i] <= r.seconds_max[i]
        assert len(r.walls[i]) == 2 and len(r.cpu_per_thread[i]) == n
        assert r.speedup[i] == pytest.approx(r.seconds[0] / r.seconds[i])
        assert r.efficiency[i] == pytest.approx(r.speedup[i] / n)
        assert r.cpu_seconds[i] == pytest.approx(sum(r.cpu_per_thread[i]))
        assert 0 <= r.cpu_wall[i]
    assert r.mode == "threads" and r.workload == "io" and r.repeats == 2
    assert r.units == 20 and r.cores >= 1 and isinstance(r.gil_enabled, bool)
    back = bench.ScalingResult.from_dict(json.loads(json.dumps(r.to_dict())))
    assert back == r
    assert "io" in r.table() and r.at(2)["threads"] == 2


@pytest.mark.parametrize("name", list(WORKLOADS))
def test_every_workload_runs_on_threads(name, no_thread_leak):
    r = bench.scaling(name, threads=[1, 2], repeats=1, work=TINY)
    assert r.threads == [1, 2] and r.speedup[0] == 1.0
    assert all(s > 0 for s in r.seconds)


def test_mixed_takes_a_serial_fraction():
    r = bench.scaling("mixed", threads=[2], repeats=1, work=0.1, serial_fraction=0.2,
                      step_seconds=0.005)
    assert r.params == {"serial_fraction": 0.2, "step_seconds": 0.005}


def test_processes_mode(no_thread_leak):
    r = bench.scaling("io", threads=[2], repeats=1, work=0.05, processes=True)
    assert r.mode == "processes" and r.threads == [1, 2] and r.speedup[0] == 1.0
    assert r.startup > 0 and len(r.cpu_per_thread[1]) == 2


def test_traced_run_spans(no_thread_leak):
    run = bench.traced_run("mixed", threads=2, work=0.2, step_seconds=0.005)
    assert run.threads == 2 and len(run.cpu) == 2 and run.wall > 0
    assert {s.thread for s in run.spans} == {"worker-0", "worker-1"}
    assert {s.kind for s in run.spans} == {"wait", "compute", "io"}
    assert min(s.start for s in run.spans) >= 0
    back = bench.Run.from_dict(json.loads(json.dumps(run.to_dict())))
    assert back == run


def test_one_thread_is_serial_on_the_calling_thread_and_more_are_workers(no_thread_leak):
    seen = []

    def make():
        def kernel(units):
            seen.append(threading.current_thread().name)
        return kernel

    w = Workload("where", "records its thread", "held", "nothing", 4, make)
    bench.scaling(w, threads=[2], repeats=1, warmup=False)
    main = threading.current_thread().name
    assert seen[:4] == [main] * 4                  # the 1-thread baseline: 4 units, serially
    assert sorted(seen[4:]) == ["worker-0"] * 2 + ["worker-1"] * 2


def test_progress_is_reported_and_can_stop(no_thread_leak):
    seen = []

    class Stop(Exception):
        pass

    def progress(fraction, text):
        seen.append(fraction)
        if len(seen) == 3:
            raise Stop

    with pytest.raises(Stop):
        bench.scaling("io", threads=[1, 2], repeats=2, work=TINY, progress=progress)
    assert seen == sorted(seen) and 0 <= seen[0] < 1


def test_a_failing_worker_reaches_the_caller_and_no_thread_is_left(no_thread_leak):
    def make(n, shared, span):
        def task(units):
            if threading.current_thread().name == "worker-1":
                raise KeyError("boom")
            shared.wait()              # would wait forever unless the barrier is broken
        return task

    w = Workload("boom", "fails in one thread", "held", "nothing", 1, make, split=False,
                 make_shared=threading.Barrier)
    with pytest.raises(KeyError, match="boom") as caught:
        bench.scaling(w, threads=[3], repeats=1)
    assert any("worker-1" in note for note in caught.value.__notes__)


# ---------------------------------------------------------------------------- Amdahl


@pytest.mark.parametrize("s", [0.0, 0.05, 0.3, 0.5, 0.9, 1.0])
def test_amdahl_fit_recovers_a_known_serial_fraction(s):
    threads = [1, 2, 4, 8, 16]
    noise = [1.0, 1.02, 0.98, 1.01, 0.99]              # +-2% timing noise
    seconds = [2.0 * (s + (1 - s) / n) * e for n, e in zip(threads, noise, strict=True)]
    speedup = [seconds[0] / t for t in seconds]
    assert abs(bench.fit_serial_fraction(threads, speedup) - s) < 0.02
    fit = bench.fit_amdahl(threads, speedup)
    assert abs(fit.serial_fraction - s) < 0.02 and fit.rms_error < 0.5
    assert fit.threads == threads and len(fit.predicted) == len(fit.gustafson) == 5


def test_amdahl_fit_from_a_scaling_result():
    r = bench.scaling("io", threads=[2], repeats=1, work=TINY)
    s = 0.25
    r.threads, r.seconds = [1, 2, 4], [1.0, s + (1 - s) / 2, s + (1 - s) / 4]
    r.speedup = [1.0 / t for t in r.seconds]
    assert r.amdahl().serial_fraction == pytest.approx(s)
    assert r.amdahl(upto=2).threads == [1, 2]


def test_amdahl_and_gustafson_formulas():
    assert bench.amdahl(1, 0.3) == 1.0 and bench.amdahl(8, 0.0) == 8.0
    assert bench.amdahl(1000, 0.1) == pytest.approx(1 / (0.1 + 0.9 / 1000))
    assert bench.amdahl([1, 2], 1.0) == [1.0, 1.0]
    assert bench.gustafson(8, 0.0) == 8 and bench.gustafson(8, 1.0) == 1
    assert bench.gustafson([1, 4], 0.5) == [1.0, 2.5]
    fit = bench.fit_amdahl([1, 2], [1.0, 1.6])
    curve = fit.curve(range(1, 9))
    assert set(curve) == {"threads", "amdahl", "gustafson", "ideal"}
    assert curve["amdahl"][0] == pytest.approx(1.0) and curve["ideal"][-1] == 8.0
    assert fit.max_speedup == pytest.approx(1 / fit.serial_fraction)
    assert bench.AmdahlFit.from_dict(json.loads(json.dumps(fit.to_dict()))) == fit
    with pytest.raises(ValueError, match="more than 1 thread"):
        bench.fit_serial_fraction([1], [1.0])


# ---------------------------------------------------------------------------- USL

#: sync data parallel, course CNN, batch 256, GIL build, 16 cores (review/many-core.md)
RECORDED_THREADS = [1, 2, 4, 8, 16]
RECORDED_SPEEDUP = [1.0, 1.61, 2.34, 2.16, 0.92]


def test_usl_formula():
    assert bench.usl(1, 0.3, 0.02) == 1.0
    assert bench.usl(8, 0.0, 0.0) == 8.0
    assert bench.usl(16, 0.05, 0.01) == pytest.approx(16 / (1 + 0.05 * 15 + 0.01 * 16 * 15))
    # without coherency cost the USL is Amdahl's law, sigma its serial fraction
    assert bench.usl([2, 4, 64], 0.3, 0.0) == pytest.approx(bench.amdahl([2, 4, 64], 0.3))


def test_usl_fit_recovers_sigma_and_kappa_without_noise():
    threads = [1, 2, 4, 8, 16, 32]
    fit = bench.fit_usl(threads, bench.usl(threads, 0.05, 0.01))
    assert abs(fit.sigma - 0.05) < 1e-3 and abs(fit.kappa - 0.01) < 1e-3
    assert fit.rms_error < 1e-6
    assert fit.peak_threads == pytest.approx(((1 - 0.05) / 0.01) ** 0.5, rel=1e-3)
    amdahl_like = bench.fit_usl(threads, bench.amdahl(threads, 0.3))
    assert abs(amdahl_like.sigma - 0.3) < 1e-3 and amdahl_like.kappa < 1e-4
    assert amdahl_like.peak_threads > 1000                  # no peak in sight


@pytest.mark.parametrize("seed", range(50))
def test_usl_fit_recovers_sigma_and_kappa_with_2_percent_noise(seed):
    # every speedup off by up to +-2%, uniformly: sigma within 0.02, kappa within 0.002
    # (the worst of 500 such draws was 0.015 and 0.0013)
    rng = random.Random(seed)
    threads = [1, 2, 4, 8, 16]
    speedup = [S * (1 + rng.uniform(-0.02, 0.02)) for S in bench.usl(threads, 0.05, 0.01)]
    fit = bench.fit_usl(threads, speedup)
    assert abs(fit.sigma - 0.05) < 0.02 and abs(fit.kappa - 0.01) < 0.002
    assert fit.sigma >= 0 and fit.kappa >= 0


def test_usl_draws_the_recorded_16_core_peak_that_amdahl_cannot():
    u = bench.fit_usl(RECORDED_THREADS, RECORDED_SPEEDUP)
    a = bench.fit_amdahl(RECORDED_THREADS, RECORDED_SPEEDUP)
    assert u.kappa > 0 and 2 < u.peak_threads < 16
    grid = list(range(1, 17))
    curve = u.predict(grid)
    top = curve.index(max(curve))
    assert 0 < top < len(grid) - 1                         # it rises, peaks, and falls
    assert curve[-1] < 0.6 * max(curve)
    assert u.rms_error < a.rms_error / 2                     # it follows the points
    amdahl_curve = a.predict(range(1, 65))
    assert all(x <= y for x, y in zip(amdahl_curve, amdahl_curve[1:], strict=False))


def test_usl_fit_results_and_bad_input():
    fit = bench.fit_usl([1, 2], [1.0, 1.6])                  # one count: sigma alone
    assert fit.kappa == 0.0 and fit.sigma == pytest.approx(0.25)
    assert fit.label.startswith("USL, σ = 0.25")
    slower = bench.fit_usl([1, 2], [1.0, 0.62])             # slower on 2: sigma is capped at 1
    assert slower.sigma == 1.0 and slower.kappa > 0 and slower.rms_error < 1e-9
    assert slower.peak_threads == 1.0 and slower.peak_speedup == 1.0
    assert set(fit.curve([1, 2, 3])) == {"threads", "usl", "ideal"}
    assert bench.USLFit.from_dict(json.loads(json.dumps(fit.to_dict()))) == fit
    with pytest.raises(ValueError, match="more than 1 thread"):
        bench.fit_usl([1], [1.0])
    with pytest.raises(ValueError, match="same length"):
        bench.fit_usl([1, 2], [1.0])
    with pytest.raises(ValueError, match="speedup"):
        bench.fit_usl([1, 2], [1.0, 0.0])


def test_scaling_result_fits_usl_beside_amdahl():
    r = bench.scaling("io", threads=[2], repeats=1, work=TINY)
    seconds = [1.0 / S for S in RECORDED_SPEEDUP]
    k = len(seconds)
    r = replace(r, threads=list(RECORDED_THREADS), speedup=list(RECORDED_SPEEDUP),
                seconds=seconds, seconds_min=seconds, seconds_max=seconds,
                efficiency=[S / n for S, n in zip(RECORDED_SPEEDUP, RECORDED_THREADS,
                                                  strict=True)],
                cpu_wall=[1.0] * k, cpu_seconds=[1.0] * k, walls=[[t] for t in seconds])
    assert r.usl().kappa == pytest.approx(
        bench.fit_usl(RECORDED_THREADS, RECORDED_SPEEDUP).kappa)
    assert r.usl(upto=4).threads == [1, 2, 4]
    assert "USL fit" in r.table() and "Amdahl fit" in r.table()


# ---------------------------------------------------------------------------- bad arguments


@pytest.mark.parametrize("threads, error", [
    ([], ValueError), ([0], ValueError), ([-1], ValueError), ([10**6], ValueError),
    ([1.5], TypeError), (["2"], TypeError), ([True], TypeError), ([2, None], TypeError),
    (3, TypeError), ("1,2", TypeError), (None, TypeError),
])
def test_bad_threads_raise_before_any_thread_starts(threads, error, no_thread_start):
    # the wrong kind of value is a TypeError, the right kind out of range a ValueError
    with pytest.raises(error, match="threads"):
        bench.scaling("python", threads=threads)


@pytest.mark.parametrize("kwargs, name, error", [
    ({"workload": "nope"}, "workload", ValueError), ({"workload": 3}, "workload", ValueError),
    ({"repeats": 0}, "repeats", ValueError), ({"repeats": 1.5}, "repeats", TypeError),
    ({"work": 0}, "work", ValueError), ({"work": "big"}, "work", TypeError),
    ({"progress": 3}, "progress", TypeError), ({"processes": "yes"}, "processes", TypeError),
    ({"workload": "mixed", "serial_fraction": 1.5}, "serial_fraction", ValueError),
    ({"workload": "mixed", "step_seconds": -1}, "step_seconds", ValueError),
    ({"workload": "mixed", "step_seconds": "1"}, "step_seconds", TypeError),
    ({"workload": "python", "serial_fraction": 0.5}, "serial_fraction", ValueError),
])
def test_bad_arguments_name_themselves(kwargs, name, error, no_thread_start):
    kwargs = {"workload": "python", "threads": [1, 2], **kwargs}
    with pytest.raises(error, match=name):
        bench.scaling(**kwargs)


def test_bad_arguments_elsewhere(no_thread_start):
    with pytest.raises(ValueError, match="py_threads"):
        bench.oversubscription(py_threads=[], blas_threads=[1])
    with pytest.raises(ValueError, match="blas_threads"):
        bench.oversubscription(py_threads=[1], blas_threads=[0])
    with pytest.raises(ValueError, match="switch_intervals"):
        bench.convoy(switch_intervals=[0])
    with pytest.raises(ValueError, match="samples"):
        bench.convoy(samples=0)
    with pytest.raises(ValueError, match="threads"):
        bench.traced_run("python", threads=0)
    with pytest.raises(TypeError, match="switch_intervals"):
        bench.convoy(switch_intervals=0.001)
    with pytest.raises(TypeError, match="wait"):
        bench.convoy(wait="1")
    with pytest.raises(ValueError, match="workloads"):
        bench.suite(["python", "nope"])
    with pytest.raises(ValueError, match="n "):
        with bench.blas_threads(0):
            pass


# ---------------------------------------------------------------------------- BLAS


def test_blas_threads_apply_and_restore():
    before = blas_counts()
    assert before, "numpy should have loaded a BLAS"
    with bench.blas_threads(1):
        assert blas_counts() == [1] * len(before)
        assert bench.current_blas_threads() == 1
    assert blas_counts() == before
    with pytest.raises(RuntimeError):
        with bench.blas_threads(1):
            raise RuntimeError
    assert blas_counts() == before


def test_matmul_pins_blas_to_one_thread_while_it_runs(no_thread_leak):
    seen = []

    def make():
        kernel = WORKLOADS["matmul"].make(size=16)

        def task(units):
            seen.append(bench.current_blas_threads())
            kernel(units)
        return task

    before = blas_counts()
    w = replace(WORKLOADS["matmul"], make=make)
    bench.scaling(w, threads=[2], repeats=1, work=TINY)
    assert seen and set(seen) == {1}
    assert blas_counts() == before


def test_oversubscription_grid(no_thread_leak):
    before = blas_counts()
    r = bench.oversubscription(py_threads=[2], blas_threads=[2], repeats=1, size=32, work=0.1)
    assert r.py_threads == [1, 2] and r.blas_threads == [1, 2]
    assert len(r.seconds) == 2 and all(len(row) == 2 for row in r.seconds)
    assert r.speedup[0][0] == 1.0 and r.total_threads == [[1, 2], [2, 4]]
    assert r.oversubscribed[1][1] == (4 > r.cores)
    assert r.best() in [(p, b) for p in (1, 2) for b in (1, 2)]
    assert bench.OversubscriptionResult.from_dict(json.loads(json.dumps(r.to_dict()))) == r
    assert "BLAS" in r.table()
    assert blas_counts() == before


# ---------------------------------------------------------------------------- GIL status


def test_gil_status_and_build_info():
    assert isinstance(bench.gil_enabled(), bool)
    i = bench.build_info()
    for key in ("python", "free_threaded_build", "gil_enabled", "cores", "numpy", "blas",
                "executable", "switch_interval"):
        assert key in i
    assert i["gil_enabled"] == bench.gil_enabled()


def test_bench_imports_no_training_code_and_no_numpy():
    code = ("import sys, mtlearn.bench; "
            "print(sorted(m for m in sys.modules if m.startswith(('mtlearn.', 'numpy'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    mods = ast.literal_eval(out)
    assert not [m for m in mods if m.split(".")[1] in ("nn", "data", "parallel", "viz",
                                                       "widgets")]
    assert not [m for m in mods if m.startswith("numpy")]


@pytest.mark.skipif(not bench.build_info()["free_threaded_build"],
                    reason="needs a free-threaded CPython build")
def test_gil_stays_off_after_importing_mtlearn_bench():
    code = ("import sys, warnings; warnings.simplefilter('error'); "
            "import mtlearn, mtlearn.bench, mtlearn.runtime.trace, mtlearn.runtime.info; "
            "import numpy, threadpoolctl; "
            "from mtlearn import bench; bench.build_info(); "
            "bench.scaling('numpy', threads=[2], repeats=1, work=0.01); "
            "print(sys._is_gil_enabled())")
    env = {k: v for k, v in os.environ.items() if k != "PYTHON_GIL"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True).stdout
    assert out.strip() == "False"


def test_bench_modules_import_without_a_cycle_and_start_no_thread_themselves():
    """Every import between bench modules (top-level or inside a function) goes one way,
    and threads are started only through runtime.threads.WorkerGroup."""
    root = Path(bench.__file__).parent
    graph = {}
    for path in root.glob("*.py"):
        tree = ast.parse(path.read_text())
        deps = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
                deps.add(node.module.split(".")[0])
        graph[path.stem] = deps & {p.stem for p in root.glob("*.py")}
        assert "threading.Thread(" not in path.read_text(), path.name
    seen, done = set(), set()

    def visit(module, path):
        assert module not in seen or module in done, f"import cycle: {' -> '.join(path)}"
        if module in done:
            return
        seen.add(module)
        for dep in graph.get(module, ()):
            visit(dep, [*path, dep])
        done.add(module)

    for module in graph:
        visit(module, [module])
