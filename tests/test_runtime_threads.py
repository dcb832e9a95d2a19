"""mtlearn.runtime.threads: WorkerGroup, the polling Barrier, and Ctrl-C done safely."""

import _thread
import threading
import time

import pytest

from mtlearn.runtime import threads
from mtlearn.runtime.threads import Aborted, Barrier, WorkerGroup, interrupts


def test_every_worker_runs_and_is_joined(no_thread_leak):
    seen = []
    lock = threading.Lock()

    def work(k):
        with lock:
            seen.append((k, threading.current_thread().name))

    group = WorkerGroup(3, work, "w")
    group.run()
    assert sorted(seen) == [(0, "w-0"), (1, "w-1"), (2, "w-2")]
    assert set(group.cpu) == {"w-0", "w-1", "w-2"}
    assert not any(t.is_alive() for t in group.threads)


def test_first_error_reaches_the_caller_with_the_worker_named(no_thread_leak):
    barrier = Barrier(3)

    def work(k):
        if k == 1:
            raise ValueError("boom in worker 1")
        barrier.wait()                         # the others wait for a peer that never comes

    group = WorkerGroup(3, work, "w", on_abort=[barrier.abort])
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match="boom in worker 1") as info:
        group.run()
    assert time.perf_counter() - t0 < 1.0
    assert "raised in worker thread w-1" in info.value.__notes__


def test_a_stuck_peer_is_abandoned_after_the_grace_period(no_thread_leak):
    release = threading.Event()

    def work(k):
        if k == 0:
            raise RuntimeError("worker 0 failed")
        release.wait(10)                        # stuck in a "long step" that ignores aborts

    group = WorkerGroup(2, work, "w", grace=0.2)
    t0 = time.perf_counter()
    with pytest.raises(RuntimeError, match="worker 0 failed") as info:
        group.run()
    elapsed = time.perf_counter() - t0
    assert elapsed < 1.0, f"the caller waited {elapsed:.2f} s for a stuck peer"
    assert group.abandoned == ["w-1"]
    assert any("w-1 still running" in n and "abandoned" in n for n in info.value.__notes__)
    release.set()                               # let the abandoned thread finish
    group.threads[1].join(5)
    assert not group.threads[1].is_alive()


def test_a_failed_start_stops_and_joins_the_threads_already_started(monkeypatch,
                                                                  no_thread_leak):
    barrier = Barrier(5)
    started = []
    real_start = threading.Thread.start

    def start(self):
        if len(started) == 3:
            raise RuntimeError("can't start new thread")
        started.append(self)
        real_start(self)

    monkeypatch.setattr(threading.Thread, "start", start)
    group = WorkerGroup(5, lambda k: barrier.wait(), "w", on_abort=[barrier.abort])
    with pytest.raises(RuntimeError, match="can't start new thread") as info:
        group.start()
    monkeypatch.undo()
    assert any("only 3 of 5 threads could be started" in n for n in info.value.__notes__)
    assert not any(t.is_alive() for t in started)


def test_broken_barrier_without_an_abort_is_a_failure(no_thread_leak):
    barrier = Barrier(2)

    def work(k):
        if k == 0:
            barrier.abort()                     # nobody asked the group to stop
        else:
            barrier.wait()

    with pytest.raises(RuntimeError, match="barrier broke unexpectedly"):
        WorkerGroup(2, work, "w").run()


def test_aborted_workers_are_not_failures(no_thread_leak):
    group = WorkerGroup(2, lambda k: (_ for _ in ()).throw(Aborted()), "w")
    group.abort()
    group.run()                                  # no error: they followed the abort


@pytest.mark.parametrize("parties", [1, 2, 4])
def test_barrier_opens_round_after_round(parties, no_thread_leak):
    barrier = Barrier(parties)
    rounds = 50
    passed = [0] * parties

    def work(k):
        for _ in range(rounds):
            barrier.wait()
            passed[k] += 1

    WorkerGroup(parties, work, "b").run()
    assert passed == [rounds] * parties


def test_barrier_abort_wakes_waiters_and_refuses_new_ones():
    barrier = Barrier(3)
    errors = []

    def waiter():
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            errors.append("broken")

    ts = [threading.Thread(target=waiter) for _ in range(2)]
    for t in ts:
        t.start()
    time.sleep(0.1)
    barrier.abort()
    for t in ts:
        t.join(2)
    assert errors == ["broken", "broken"]
    assert barrier.broken
    with pytest.raises(threading.BrokenBarrierError):
        barrier.wait()


def test_interrupts_calls_back_from_a_watchdog_and_raises_at_the_end(no_thread_leak):
    calls = []
    barrier = Barrier(2)                        # the main thread waits here: a peer never comes

    def on_interrupt():
        calls.append(threading.current_thread().name)
        barrier.abort()

    timer = threading.Timer(0.2, _thread.interrupt_main)
    timer.start()
    t0 = time.perf_counter()
    with pytest.raises(KeyboardInterrupt), interrupts(on_interrupt) as state:
        barrier.wait()                          # woken by the abort, not by an exception
    timer.join()
    assert time.perf_counter() - t0 < 2
    assert calls == ["interrupt-watchdog"]
    assert state.interrupted


def test_interrupts_is_inert_without_ctrl_c_and_off_the_main_thread(no_thread_leak):
    with interrupts(lambda: pytest.fail("called without Ctrl-C")) as state:
        pass
    assert not state.interrupted
    out = []

    def elsewhere():
        with interrupts(lambda: None) as s:
            out.append(s.interrupted)

    t = threading.Thread(target=elsewhere)
    t.start()
    t.join()
    assert out == [False]


def test_get_wakes_up_to_run_signal_handlers(no_thread_leak):
    import queue

    q = queue.Queue()
    timer = threading.Timer(0.2, q.put, args=("item",))
    timer.start()
    assert threads.get(q) == "item"
    timer.join()
