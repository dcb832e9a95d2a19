"""``hogwild``: it learns, one thread is serial training, the lock option, staleness.

Hogwild! is nondeterministic with two or more threads, so these tests check what must hold
whatever the interleaving, never exact losses.
"""

import threading
import time

import numpy as np
import pytest

from mtlearn import data, nn, parallel


def shapes_case():
    X, y = data.shapes(480, size=12, seed=3)
    def model():
        return nn.Sequential(nn.Flatten(), nn.Dense(144, 32), nn.ReLU(), nn.Dense(32, 4),
                             seed=1)
    return model, nn.SoftmaxCrossEntropy(), X, y


def train(threads, **kw):
    make, loss, X, y = shapes_case()
    model = make()
    kw = {"epochs": 8, "batch_size": 16, "lr": 0.1, "seed": 0, **kw}
    h = parallel.train(model, loss, (X, y), strategy="hogwild", threads=threads, **kw)
    return h, model


@pytest.mark.parametrize("lock", [False, True])
@pytest.mark.parametrize("threads", [2, 4])
def test_learns(threads, lock, no_thread_leak):
    h, model = train(threads, lock=lock)
    start, end = np.mean(h.losses[:5]), np.mean(h.losses[-10:])
    assert end < 0.5 * start, f"loss {start:.3f} -> {end:.3f}"
    assert np.all(np.isfinite(model.params))


def test_course_cnn_learns(no_thread_leak):
    X, y = data.shapes(256, size=12, seed=3)
    model = nn.Sequential(nn.Conv2D(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2D(2),
                          nn.Flatten(), nn.Dense(4 * 6 * 6, 4), seed=1)
    h = parallel.train(model, nn.SoftmaxCrossEntropy(), (X, y), strategy="hogwild",
                       threads=2, epochs=8, batch_size=16, lr=0.1, seed=0)
    assert np.mean(h.losses[-10:]) < 0.5 * np.mean(h.losses[:5])


@pytest.mark.parametrize("opt", [None, lambda p: nn.SGD(p, lr=0.05, momentum=0.9)])
def test_one_thread_is_serial_bit_for_bit(opt):
    make, loss, X, y = shapes_case()
    kw = {"epochs": 2, "batch_size": 16, "lr": 0.1, "seed": 0, "optimizer": opt}
    m1, m2 = make(), make()
    ref = parallel.train(m1, loss, (X, y), strategy="serial", **kw)
    h = parallel.train(m2, loss, (X, y), strategy="hogwild", threads=1, **kw)
    np.testing.assert_array_equal(h.losses, ref.losses)
    np.testing.assert_array_equal(m2.params, m1.params)
    assert h.info["staleness"] == [0] * h.steps
    assert h.info["staleness_mean"] == 0 and h.info["staleness_max"] == 0


class Pause(nn.ReLU):
    """A ReLU that sleeps 0.5 ms (releasing the GIL), so that the workers' computations
    surely overlap even on a free-threaded build where a tiny step takes microseconds."""

    def forward(self, x):
        time.sleep(0.0005)
        return super().forward(x)


@pytest.mark.parametrize("threads", [1, 2, 4])
def test_staleness_is_recorded_and_plausible(threads, no_thread_leak):
    _, loss, X, y = shapes_case()
    model = nn.Sequential(nn.Flatten(), nn.Dense(144, 32), Pause(), nn.Dense(32, 4), seed=1)
    h = parallel.train(model, loss, (X, y), strategy="hogwild", threads=threads, epochs=8,
                       batch_size=16, lr=0.1, seed=0)
    s = h.info["staleness"]
    steps = 8 * (480 // 16)
    assert h.steps == len(s) == steps == len(h.step_times)     # every update of the plan
    assert sum(h.info["updates_per_thread"]) == steps
    # the i-th update cannot have missed more than the i updates applied before it
    assert all(0 <= v <= i for i, v in enumerate(s))
    assert h.info["staleness_max"] == max(s)
    assert h.info["staleness_mean"] == pytest.approx(np.mean(s))
    assert h.step_times == sorted(h.step_times)                 # in the order they happened
    if threads == 1:
        assert max(s) == 0
    else:           # hundreds of updates from several threads: some overlap for sure
        assert max(s) > 0


def test_lock_option_traces_waits_only_when_locking(no_thread_leak):
    free, _ = train(2, epochs=1)
    locked, _ = train(2, epochs=1, lock=True)
    assert free.info["lock"] is False and locked.info["lock"] is True
    assert "wait" not in {s.kind for s in free.trace}
    kinds = {s.kind for s in locked.trace}
    assert {"load", "compute", "update", "wait"} <= kinds
    assert {s.thread for s in locked.trace if s.kind == "compute"} <= {"hogwild-0", "hogwild-1"}
    assert "lock: True" in locked.summary()


def test_lock_must_be_a_bool(no_thread_leak):
    count = threading.active_count()
    with pytest.raises(TypeError, match="lock"):
        train(2, lock="yes")
    assert threading.active_count() == count


def test_works_with_prefetch_and_augment(no_thread_leak):
    h, _ = train(3, prefetch=2, augment=parallel.random_shift(1))
    assert h.steps == 8 * (480 // 16) and np.mean(h.losses[-10:]) < np.mean(h.losses[:5])
    assert any(s.thread == "prefetch" and s.kind == "load" for s in h.trace)


def test_more_threads_than_steps(no_thread_leak):
    h, _ = train(4, epochs=1, batch_size=160)        # 3 steps for 4 workers
    assert h.steps == 3 and sum(h.info["updates_per_thread"]) == 3
