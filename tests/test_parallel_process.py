"""The ``process`` strategy: start methods, worker errors and deaths, clean-up.

``test_parallel.py`` already runs "process" through the generic checks with the default
start method; here: spawn and forkserver (Python 3.14's default), errors raised or deaths in
a worker process, faults with a peer stuck in a long step, shared-memory views released
before close, and that no process or shared-memory segment outlives a call.
(``test_process_lifetime.py``: the workers die with a killed parent.)
"""

import multiprocessing as mp
import os
import signal
import threading
import time
from multiprocessing import shared_memory

import numpy as np
import pytest
from test_parallel import assert_close, cnn_case, run

from mtlearn import nn, parallel
from mtlearn.parallel import process, process_worker

pytestmark = [
    # A numpy view that outlives its shared-memory segment shows up as an exception
    # "ignored" in SharedMemory.__del__: here it fails the test instead of printing at exit.
    pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning"),
    # Python 3.12+ says so when fork is asked for while threads run; here it is on purpose.
    pytest.mark.filterwarnings("ignore:This process .* use of fork:DeprecationWarning"),
]

METHODS = [m for m in ("fork", "spawn", "forkserver") if m in mp.get_all_start_methods()]
#: the default: fork while no other thread runs, else forkserver (preloaded) — fast, and it
#: never forks a multi-threaded process (train() runs an interrupt watchdog thread)
FAST = None


@pytest.fixture
def segments(monkeypatch, no_thread_leak):
    """Names of the shared-memory segments the call creates; after the test, checks that
    each is gone and that no worker process is left."""
    names = []
    create = process_worker.SharedArrays.create

    def recording(self, key, shape, dtype):
        out = create(self, key, shape, dtype)
        names.append(self.segments[key].name)
        return out
    monkeypatch.setattr(process_worker.SharedArrays, "create", recording)
    yield names
    assert mp.active_children() == [], "worker processes left running"
    for name in names:
        with pytest.raises(FileNotFoundError):
            shared_memory.SharedMemory(name=name)


@pytest.fixture(scope="module")
def serial_reference():
    return {case: run(case, "serial", 1) for case in ("cnn", "lstm")}


@pytest.mark.parametrize("threads", [1, 2, 3, 4])
@pytest.mark.parametrize("method", METHODS)
def test_equals_serial_with_each_start_method(method, threads, serial_reference, segments):
    cases = ["cnn", "lstm"] if threads == 2 else ["cnn"]
    for case in cases:
        ref_h, ref_p = serial_reference[case]
        h, p = run(case, "process", threads, start_method=method)
        assert_close(h.losses, ref_h.losses, f"{case} losses")
        assert_close(p, ref_p, f"{case} final parameters")
        assert h.info["start_method"] == method
    assert len(segments) == 4 * len(cases)


def test_trace_and_cpu_per_worker_process(segments):
    h, _ = run("cnn", "process", 3, start_method=FAST)
    threads = {s.thread for s in h.trace}
    assert {"proc-0", "proc-1", "proc-2"} <= threads
    assert {s.kind for s in h.trace if s.thread == "proc-1"} == {"wait", "compute"}
    assert all(0 <= s.start <= s.end <= h.wall_time for s in h.trace)   # one clock for all
    assert set(h.thread_cpu) == {"main", "proc-0", "proc-1", "proc-2"}
    assert h.info["startup_s"] > 0


class FailsInChild(nn.ReLU):
    """A layer that misbehaves on its second call in a worker process: ``how`` is
    "raise" (an exception), "exit" (``os._exit(3)``) or "kill" (SIGKILL to itself)."""

    def __init__(self, how="raise"):
        super().__init__()
        self.how, self.calls = how, 0
        self.parent = os.getpid()       # pickled with the layer (a spawned child re-imports us)

    def forward(self, x):
        if os.getpid() != self.parent:
            self.calls += 1
            if self.calls == 2:
                if self.how == "raise":
                    raise RuntimeError("boom in a worker")
                if self.how == "exit":
                    os._exit(3)
                os.kill(os.getpid(), signal.SIGKILL)
        return super().forward(x)


def failing_model(how):
    return nn.Sequential(nn.Flatten(), nn.Dense(144, 8), FailsInChild(how), nn.Dense(8, 4),
                         dtype=np.float64)


@pytest.mark.parametrize("method", [FAST, "spawn"])
def test_worker_error_reaches_caller_with_its_traceback(method, segments):
    _, loss, X, y = cnn_case()
    t0 = time.perf_counter()
    with pytest.raises(RuntimeError, match="boom in a worker") as info:
        parallel.train(failing_model("raise"), loss, (X, y), strategy="process", threads=2,
                       epochs=3, batch_size=24, start_method=method)
    assert time.perf_counter() - t0 < 10      # start-up included; the error itself is instant
    remote = info.value.__cause__
    assert isinstance(remote, process.RemoteTraceback)
    assert "in forward" in remote.text and "boom in a worker" in remote.text
    assert __file__ in remote.text or "test_parallel_process.py" in remote.text
    assert any("proc-" in note for note in info.value.__notes__)


@pytest.mark.parametrize("how, says", [("exit", "exit code 3"), ("kill", "SIGKILL")])
def test_worker_dying_abruptly_is_detected(how, says, segments):
    _, loss, X, y = cnn_case()
    t0 = time.perf_counter()
    with pytest.raises(process.WorkerDied, match=says):
        parallel.train(failing_model(how), loss, (X, y), strategy="process", threads=2,
                       epochs=3, batch_size=24, start_method=FAST)
    assert time.perf_counter() - t0 < 5


class NoPickle(Exception):
    def __init__(self, code, detail):             # unpickling calls NoPickle(*args): fails
        super().__init__(f"code {code}: {detail}")


class RaisesOddError(nn.ReLU):
    def __init__(self):
        super().__init__()
        self.parent = os.getpid()

    def forward(self, x):
        if os.getpid() != self.parent:
            raise NoPickle(7, "odd failure")
        return super().forward(x)


def test_an_exception_that_cannot_cross_processes_becomes_runtime_error(segments):
    _, loss, X, y = cnn_case()
    model = nn.Sequential(nn.Flatten(), RaisesOddError(), nn.Dense(144, 4), dtype=np.float64)
    with pytest.raises(RuntimeError, match="odd failure") as info:
        parallel.train(model, loss, (X, y), strategy="process", threads=2, batch_size=24,
                       start_method=FAST)
    assert "NoPickle" in info.value.__cause__.text


def _refuse_in_child(parent):
    if os.getpid() != parent:
        raise ImportError("cannot rebuild this layer here")
    return nn.ReLU()


class BrokenInChild(nn.ReLU):
    def __reduce__(self):                # unpickling in a worker fails
        return _refuse_in_child, (os.getpid(),)


def test_failure_to_set_up_a_worker_says_what_to_check(segments):
    _, loss, X, y = cnn_case()
    model = nn.Sequential(nn.Flatten(), BrokenInChild(), nn.Dense(144, 4), dtype=np.float64)
    with pytest.raises(ImportError, match="cannot rebuild") as info:
        parallel.train(model, loss, (X, y), strategy="process", threads=2, batch_size=24,
                       start_method=FAST)
    assert any("importable" in note for note in info.value.__notes__)


def test_unpicklable_model_is_a_type_error_before_anything_starts(segments):
    _, loss, X, y = cnn_case()
    layer = nn.ReLU()
    layer.lock = threading.Lock()
    model = nn.Sequential(nn.Flatten(), layer, nn.Dense(144, 4), dtype=np.float64)
    with pytest.raises(TypeError, match="pickle"):
        parallel.train(model, loss, (X, y), strategy="process", threads=2, batch_size=24)
    assert segments == [] and mp.active_children() == []


@pytest.mark.parametrize("method", ["thread", "Fork", 1])
def test_bad_start_method(method, segments):
    make, loss, X, y = cnn_case()
    with pytest.raises(ValueError, match="start_method"):
        parallel.train(make(), loss, (X, y), strategy="process", threads=2, batch_size=24,
                       start_method=method)
    assert segments == []


def test_keyboard_interrupt_during_spawn_start_up(segments):
    import _thread

    make, loss, X, y = cnn_case(480)
    timer = threading.Timer(0.2, _thread.interrupt_main)
    t0 = time.perf_counter()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            parallel.train(make(), loss, (X, y), strategy="process", threads=2, epochs=200,
                           batch_size=24, start_method="spawn")
    finally:
        timer.cancel()
        timer.join()
    assert time.perf_counter() - t0 < 6         # start-up, then the grace period at most


def test_stress_many_short_trainings_no_deadlock_no_leak(segments):
    rng = np.random.default_rng(0)
    make, loss, X, y = cnn_case(48)
    for _ in range(12):
        threads = int(rng.integers(1, 5))
        kw = {"batch_size": int(rng.integers(threads, 25)), "epochs": 1,
              "prefetch": int(rng.integers(0, 3)), "trace": bool(rng.integers(0, 2))}
        h = parallel.train(make(), loss, (X, y), strategy="process", threads=threads,
                           start_method=FAST, **kw)
        ref = parallel.train(make(), loss, (X, y), strategy="serial", **kw)
        assert_close(h.losses, ref.losses, f"losses with {threads} workers, {kw}")
    assert len(segments) == 4 * 12


def test_use_buffer_moves_the_parameters():
    model = cnn_case()[0]()
    before = model.params.copy()
    buf = np.zeros_like(model.params)
    model.use_buffer(buf)
    assert model.params is buf
    np.testing.assert_array_equal(buf, before)
    assert all(np.shares_memory(a, buf) for layer in model.layers for a in layer.params.values())
    buf[:] = 0.5                                 # layers see writes into the buffer
    assert model.layers[0].params["weight"].flat[0] == 0.5
    kept = np.full_like(buf, 2.0)
    model.use_buffer(kept, copy=False)
    np.testing.assert_array_equal(model.params, 2.0)
    with pytest.raises(ValueError, match="use_buffer"):
        model.use_buffer(np.zeros(3))


# -- faults with a peer stuck in a long step ----------------------------------------------

class Misbehaves(nn.ReLU):
    """In worker process ``who`` (by shard: the worker whose batch rows start at ``lo``),
    on the second step: ``how`` is "raise" (RuntimeError carrying the time it was raised),
    "interrupt" (KeyboardInterrupt) or "stall" (sleep 30 s: a peer stuck in a long step)."""

    def __init__(self, plan, flag=None):
        super().__init__()
        self.plan, self.calls = plan, 0           # {rows in the shard: how}
        self.flag = flag                          # touched when the stall begins
        self.parent = os.getpid()

    def forward(self, x):
        if os.getpid() != self.parent:
            self.calls += 1
            how = self.plan.get(len(x)) if self.calls == 2 else None
            if how == "raise":
                raise RuntimeError(f"boom at {time.time()!r}")
            if how == "interrupt":
                raise KeyboardInterrupt
            if how == "stall":
                if self.flag:
                    open(self.flag, "w").close()
                time.sleep(30)
        return super().forward(x)


def misbehaving_model(plan, flag=None):
    # threads=2, batch_size=25: proc-0 gets 12 rows, proc-1 13, so each knows who it is.
    return nn.Sequential(nn.Flatten(), nn.Dense(144, 8), Misbehaves(plan, flag),
                         nn.Dense(8, 4), dtype=np.float64)


@pytest.mark.parametrize("method", [m for m in ("fork", "forkserver") if m in METHODS])
def test_error_is_not_held_up_by_a_peer_stuck_in_a_long_step(method, segments):
    _, loss, X, y = cnn_case()
    model = misbehaving_model({12: "raise", 13: "stall"})
    with pytest.raises(RuntimeError, match="boom at") as info:
        parallel.train(model, loss, (X, y), strategy="process", threads=2, epochs=3,
                       batch_size=25, start_method=method)
    raised_at = float(str(info.value).split("boom at ")[1])
    delay = time.time() - raised_at
    print(f"{method}: worker error reached the caller {delay:.3f} s after it was raised, "
          "its peer stuck in a 30 s step")
    assert delay < 1.5
    notes = "\n".join(info.value.__notes__)
    assert "proc-0" in notes and "during step 1" in notes
    assert "layer 2 (Misbehaves)" in notes
    assert "proc-1" in notes and "terminated" in notes and "still busy with step 1" in notes


def test_keyboard_interrupt_in_a_worker_stays_keyboard_interrupt(segments):
    _, loss, X, y = cnn_case()
    model = misbehaving_model({12: "interrupt"})
    with pytest.raises(KeyboardInterrupt) as info:
        parallel.train(model, loss, (X, y), strategy="process", threads=2, epochs=3,
                       batch_size=25, start_method=FAST)
    assert any("proc-0" in note for note in info.value.__notes__)


def test_ctrl_c_is_not_held_up_by_a_worker_stuck_in_a_long_step(segments, tmp_path):
    import _thread

    _, loss, X, y = cnn_case()
    flag = tmp_path / "stalled"
    model = misbehaving_model({13: "stall"}, str(flag))
    pressed = []

    def press():                                 # Ctrl-C once proc-1 is in its long step
        t0 = time.monotonic()
        while not flag.exists() and time.monotonic() - t0 < 60:
            time.sleep(0.01)
        pressed.append(time.perf_counter())
        _thread.interrupt_main()
    presser = threading.Thread(target=press)
    presser.start()
    try:
        with pytest.raises(KeyboardInterrupt) as info:
            parallel.train(model, loss, (X, y), strategy="process", threads=2, epochs=3,
                           batch_size=25, start_method=FAST)
        delay = time.perf_counter() - pressed[0]
    finally:
        presser.join()
    print(f"Ctrl-C reached the caller {delay:.3f} s after it was pressed, a worker stuck in "
          "a 30 s step")
    assert delay < 1.5
    assert any("proc-1" in note and "terminated" in note
               for note in getattr(info.value, "__notes__", []))


# -- shared memory is released, or the run fails -------------------------------------------

def test_a_view_kept_past_close_is_an_error_naming_the_array():
    shared = process_worker.SharedArrays()
    shared.create("x", (3, 4), np.float64)
    kept = shared.arrays["x"][1:]              # a slice still pointing into the segment
    names = shared.names()
    with pytest.raises(BufferError, match=r"\['x'\]"):
        shared.close(unlink=True)
    assert not any(os.path.exists(f"/dev/shm/{n}") for n in names)   # the name went first
    del kept
    shared._stuck["x"].close()                  # now it can be unmapped


class KeepsItsInput(nn.ReLU):
    """Keeps a reference to its last input — in a worker, a view of the shared batch."""

    kept = None

    def forward(self, x):
        KeepsItsInput.kept = x
        return super().forward(x)


def test_a_worker_keeping_a_view_of_shared_memory_fails_the_run(segments):
    _, loss, X, y = cnn_case()
    model = nn.Sequential(KeepsItsInput(), nn.Flatten(), nn.Dense(144, 4), dtype=np.float64)
    with pytest.raises(process.WorkerDied, match="did not end cleanly"):
        parallel.train(model, loss, (X, y), strategy="process", threads=2, batch_size=24,
                       start_method=FAST)
    KeepsItsInput.kept = None


# -- start method ---------------------------------------------------------------------------

@pytest.mark.skipif(mp.get_all_start_methods()[0] != "fork", reason="fork is not the default")
def test_default_is_not_fork_while_other_threads_run(segments, monkeypatch):
    with monkeypatch.context() as m:            # as if this process ran no other thread
        m.setattr(threading, "active_count", lambda: 1)
        assert process.default_start_method() == "fork"
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        assert process.default_start_method() == "forkserver"
        h, _ = run("cnn", "process", 2)
    finally:
        release.set()
        other.join()
    assert h.info["start_method"] == "forkserver"
