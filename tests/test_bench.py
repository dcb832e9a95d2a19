"""mtlearn.bench: scaling runs, the Amdahl fit, BLAS control, argument checks.

No test asserts a speed: the machine may be shared. They check shapes, formulas, that
limits are restored and that every thread is joined.
"""

import ast
import json
import os
import subprocess
import sys
import threading
from dataclasses import replace

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


def test_timeline_spans(no_thread_leak):
    run = bench.timeline("mixed", threads=2, work=0.2, step_seconds=0.005)
    assert run.threads == 2 and len(run.cpu) == 2 and run.wall > 0
    assert {s.thread for s in run.spans} == {"worker-0", "worker-1"}
    assert {s.kind for s in run.spans} == {"wait", "compute", "io"}
    assert min(s.start for s in run.spans) >= 0
    back = bench.Run.from_dict(json.loads(json.dumps(run.to_dict())))
    assert back == run


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
    with pytest.raises(KeyError, match="boom"):
        bench.scaling(w, threads=[3], repeats=1)


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


# ---------------------------------------------------------------------------- bad arguments


@pytest.mark.parametrize("threads", [[], [0], [-1], [1.5], ["2"], [True], [2, None], 3, "1,2",
                                     None, [10**6]])
def test_bad_threads_raise_before_any_thread_starts(threads, no_thread_start):
    with pytest.raises(ValueError, match="threads"):
        bench.scaling("python", threads=threads)


@pytest.mark.parametrize("kwargs, name", [
    ({"workload": "nope"}, "workload"), ({"workload": 3}, "workload"),
    ({"repeats": 0}, "repeats"), ({"repeats": 1.5}, "repeats"),
    ({"work": 0}, "work"), ({"work": "big"}, "work"),
    ({"workload": "mixed", "serial_fraction": 1.5}, "serial_fraction"),
    ({"workload": "mixed", "step_seconds": -1}, "step_seconds"),
    ({"workload": "python", "serial_fraction": 0.5}, "serial_fraction"),
])
def test_bad_arguments_name_themselves(kwargs, name, no_thread_start):
    kwargs = {"workload": "python", "threads": [1, 2], **kwargs}
    with pytest.raises(ValueError, match=name):
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
        bench.timeline("python", threads=0)
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
