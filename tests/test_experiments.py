"""mtlearn.experiments: one baseline (serial, same rounds), asynchronous runs timed by
updates per second over at least 16 updates per worker, the fits, argument checks.

No test asserts a speed: the machine may be shared. They check how things are counted.
"""

import threading

import numpy as np
import pytest

from mtlearn import parallel, tasks
from mtlearn.experiments import (
    ASYNCHRONOUS,
    MIN_UPDATES_PER_WORKER,
    MODELS,
    Scaling,
    measure_scaling,
    run_epochs,
    seconds_per_step,
    seconds_per_update,
)
from mtlearn.parallel import History

SMALL = dict(batch_size=32, samples=128, repeats=1)          # 4 steps of 32 images


@pytest.fixture
def no_thread_start(monkeypatch):
    """Makes starting any thread an error, to prove argument checks come first."""
    def refuse(self):
        raise AssertionError(f"a thread was started: {self.name}")
    monkeypatch.setattr(threading.Thread, "start", refuse)


def test_which_strategies_are_asynchronous():
    assert "hogwild" in ASYNCHRONOUS
    assert "asyncio" not in ASYNCHRONOUS and "sync" not in ASYNCHRONOUS
    assert set(ASYNCHRONOUS) <= set(parallel.STRATEGIES)


def test_asynchronous_runs_make_at_least_16_updates_per_worker(no_thread_leak):
    counts = [1, 2, 3]
    sc = measure_scaling("cnn", "hogwild", counts, **SMALL)
    assert sc.asynchronous and MIN_UPDATES_PER_WORKER == 16
    for n in counts:
        h = sc.histories[n]
        assert h.steps == sc.updates[n] >= 16 * n
        assert sum(h.info["updates_per_thread"]) == h.steps
        assert len(h.info["updates_per_thread"]) == n
        # timed in updates per second, each worker's first update (start-up) left out
        assert sc.times[n][-1] == pytest.approx(seconds_per_update(h, n))
    assert sc.serial.steps == 128 // 32                       # serial keeps its length
    assert "updates/s" in sc.table() and "ms/update" in sc.table()


def test_synchronous_runs_keep_their_length(no_thread_leak):
    sc = measure_scaling("cnn", "sync", [1, 2], epochs=2, **SMALL)
    assert not sc.asynchronous
    assert sc.updates == {1: 8, 2: 8} and sc.serial.steps == 8
    assert sc.times[2][-1] == pytest.approx(seconds_per_step(sc.histories[2]))


def test_every_speedup_is_over_serial_on_the_main_thread_in_the_same_rounds(no_thread_leak):
    rounds = []
    sc = measure_scaling("cnn", "sync", [2, 1], batch_size=32, samples=128, repeats=2,
                         report=lambda f, text: rounds.append(text))
    assert sc.threads == [1, 2]
    assert len(sc.serial_times) == 2 and all(len(sc.times[n]) == 2 for n in sc.threads)
    # each round runs serial first, then the strategy at every count
    assert rounds == ["warming up", "round 1/2: serial", "round 1/2: sync x1",
                      "round 1/2: sync x2", "round 2/2: serial", "round 2/2: sync x1",
                      "round 2/2: sync x2"]
    for i in range(len(sc.threads)):
        assert sc.speedup[i] == pytest.approx(sc.serial_seconds / sc.seconds[i])
    assert {s.thread for s in sc.serial.trace} == {threading.main_thread().name}
    assert sc.serial.strategy == "serial" and sc.serial.threads == 1


def test_run_length_is_picked_from_the_worker_count():
    assert run_epochs("hogwild", 16, 1, 8) == 32                 # 256 updates of 8 a epoch
    assert run_epochs("hogwild", 1, 1, 8) == 2
    assert run_epochs("hogwild", 2, 5, 8) == 5                   # already long enough
    assert run_epochs("sync", 16, 1, 8) == 1


def test_seconds_per_update_leaves_out_each_workers_first_update():
    h = History("hogwild", 2, losses=[1.0] * 5, step_times=[0.50, 0.52, 0.60, 0.70, 0.80],
                wall_time=0.85)
    assert seconds_per_update(h, 2) == pytest.approx((0.80 - 0.52) / 3)
    assert seconds_per_update(h, 1) == seconds_per_step(h) == pytest.approx(0.30 / 4)
    assert seconds_per_update(h, 5) == pytest.approx(0.85 / 5)    # too short: taken whole


def _made_up(threads, speedup, cores=16):
    serial = History("serial", 1)
    seconds = [1.0 / S for S in speedup]
    return Scaling("cnn", "sync", 256, list(threads), seconds, seconds, seconds, 1.0, 1.0,
                   1.0, 1, cores, serial)


def test_scaling_fits_amdahl_up_to_the_cores_and_the_usl_on_every_count():
    sc = _made_up([1, 2, 4, 8, 16], [1.0, 1.61, 2.34, 2.16, 0.92])   # many-core.md
    usl = sc.usl()
    assert usl.kappa > 0 and 2 < usl.peak_threads < 16
    assert sc.amdahl().threads == [1, 2, 4, 8, 16]
    assert [type(f).__name__ for f in sc.fits()] == ["AmdahlFit", "USLFit"]
    assert "USL fit" in sc.table() and "Amdahl fit" in sc.table()
    small = _made_up([1, 2, 4], [1.0, 1.9, 3.0], cores=2)
    assert small.amdahl().threads == [1, 2] and small.usl().threads == [1, 2, 4]
    assert small.serial_fraction() == pytest.approx(small.amdahl().serial_fraction)
    one = _made_up([1], [1.0])
    assert one.amdahl() is None and one.usl() is None and one.fits() == []


def test_models_are_task_names_and_any_task_can_be_measured(no_thread_leak):
    assert set(MODELS) <= set(tasks.TASKS)
    sc = measure_scaling("mlp", "sync", [2], **SMALL)          # not one of MODELS
    t = tasks.get("mlp", n=128, val_fraction=0)
    assert sc.serial.config["batch_size"] == 32 and sc.serial.steps == len(t.data[0]) // 32
    assert np.isclose(sc.serial.losses[0], sc.histories[2].losses[0], rtol=1e-4)
    assert "MLP 784 -> 128 -> 4" in sc.table()


@pytest.mark.parametrize("kwargs, error, name", [
    ({"threads": []}, ValueError, "threads"),
    ({"threads": [0]}, ValueError, "threads"),
    ({"threads": "2"}, TypeError, "threads"),
    ({"threads": [1.5]}, TypeError, "threads"),
    ({"model": "no-such-model"}, ValueError, "model"),
    ({"strategy": "magic"}, ValueError, "strategy"),
    ({"repeats": 0}, ValueError, "repeats"),
    ({"batch_size": 64, "samples": 32}, ValueError, "samples"),
    ({"report": "yes"}, TypeError, "report"),
    ({"trace": 1}, TypeError, "trace"),
])
def test_bad_arguments_are_refused_before_any_run(kwargs, error, name, no_thread_start):
    with pytest.raises(error, match=name):
        measure_scaling(**{"threads": [1, 2], **kwargs})
