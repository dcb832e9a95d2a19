"""``asyncio``: the sync algorithm on an event loop — equal to ``sync`` bit for bit, usable
from inside a running event loop (Jupyter), clean on errors and Ctrl-C."""

import _thread
import asyncio
import threading
import time

import numpy as np
import pytest
from cases import Exploding, cnn_case, lstm_case, train_case

from mtlearn import nn, parallel


def run(case, strategy, threads, **kw):
    return train_case(case, strategy, threads, **{"epochs": 2, **kw})


@pytest.mark.parametrize("case", [cnn_case, lstm_case])
@pytest.mark.parametrize("threads", [1, 2, 3, 4])
def test_equals_sync_bit_for_bit(threads, case, no_thread_leak):
    ref_h, ref_p = run(case, "sync", threads)
    h, p = run(case, "asyncio", threads)
    np.testing.assert_array_equal(h.losses, ref_h.losses)
    np.testing.assert_array_equal(p, ref_p)


def test_equals_sync_with_momentum_and_prefetch(no_thread_leak):
    def opt(p):
        return nn.SGD(p, lr=0.05, momentum=0.9)
    ref_h, ref_p = run(cnn_case, "sync", 3, optimizer=opt, prefetch=2)
    h, p = run(cnn_case, "asyncio", 3, optimizer=opt)
    np.testing.assert_array_equal(h.losses, ref_h.losses)
    np.testing.assert_array_equal(p, ref_p)


def test_trace_rows_are_the_pool_and_the_loop(no_thread_leak):
    h, _ = run(cnn_case, "asyncio", 3)
    pool = {"asyncio_0", "asyncio_1", "asyncio_2"}             # exactly `threads` workers
    assert {s.thread for s in h.trace if s.kind in ("compute", "reduce", "update")} <= pool
    assert {s.thread for s in h.trace if s.kind == "wait"} == {threading.current_thread().name}
    assert set(h.thread_cpu) <= pool | {"main"}
    assert {"compute", "reduce", "update", "wait", "load"} <= {s.kind for s in h.trace}


def test_works_inside_a_running_event_loop(no_thread_leak):
    ref_h, ref_p = run(cnn_case, "sync", 2)

    async def notebook_cell():                 # what Jupyter does: a loop is running
        return run(cnn_case, "asyncio", 2)

    h, p = asyncio.run(notebook_cell())
    np.testing.assert_array_equal(h.losses, ref_h.losses)
    np.testing.assert_array_equal(p, ref_p)
    assert "asyncio-loop-0" in {s.thread for s in h.trace if s.kind == "wait"}
    assert "asyncio-loop-0" in h.thread_cpu


def test_works_from_a_worker_thread_without_a_loop(no_thread_leak):
    ref_h, ref_p = run(cnn_case, "sync", 2)
    out = []
    worker = threading.Thread(target=lambda: out.append(run(cnn_case, "asyncio", 2)))
    worker.start()                             # as a dashboard runs its experiments
    worker.join()
    h, p = out[0]
    np.testing.assert_array_equal(h.losses, ref_h.losses)
    np.testing.assert_array_equal(p, ref_p)


def exploding_train():
    _, loss, X, y = cnn_case()
    model = nn.Sequential(nn.Flatten(), nn.Dense(144, 8), Exploding("boom in a pool thread"),
                          nn.Dense(8, 4), dtype=np.float64)
    return parallel.train(model, loss, (X, y), strategy="asyncio", threads=2, epochs=3,
                          batch_size=24)


def test_error_inside_a_running_loop_keeps_its_traceback(no_thread_leak):
    async def notebook_cell():
        return exploding_train()

    with pytest.raises(RuntimeError, match="boom in a pool thread") as info:
        asyncio.run(notebook_cell())
    assert any(f.name == "forward" for f in info.traceback)


def test_every_shard_failing_raises_one_error(no_thread_leak):
    _, loss, X, y = cnn_case()
    model = nn.Sequential(nn.Flatten(), nn.Dense(100, 4), dtype=np.float64)   # 144 inputs
    with pytest.raises(ValueError):
        parallel.train(model, loss, (X, y), strategy="asyncio", threads=3, batch_size=24)


def test_ctrl_c_inside_a_running_loop_stops_promptly(no_thread_leak):
    make, loss, X, y = cnn_case()

    async def notebook_cell():
        return parallel.train(make(), loss, (X, y), strategy="asyncio", threads=2,
                              epochs=2000, batch_size=24)

    loop = asyncio.new_event_loop()            # no SIGINT handler, as under a kernel
    timer = threading.Timer(0.3, _thread.interrupt_main)
    t0 = time.perf_counter()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            loop.run_until_complete(notebook_cell())
    finally:
        timer.cancel()
        timer.join()
        loop.close()
    assert time.perf_counter() - t0 < 5
