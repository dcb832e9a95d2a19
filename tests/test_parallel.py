"""Every strategy through ``parallel.train``: equal to serial, deterministic, clean failure.

Strategies register themselves in ``parallel.STRATEGIES``; the tests below run over every
registered one, so a new strategy is checked the moment it is added.
"""

import contextlib
import threading
import time

import numpy as np
import pytest
from cases import CASES, EXACT, Exploding, GoesNaN, assert_close, cnn_case, train_case

from mtlearn import nn, parallel

run = train_case        # (History, params) of one run; test_parallel_process.py uses it too


def test_every_exact_strategy_is_registered():
    missing = sorted(set(EXACT) - set(parallel.STRATEGIES))
    assert not missing, f"strategies that must equal serial are not registered: {missing}"


@pytest.fixture(scope="module")
def serial_reference():
    return {case: run(case, "serial", 1) for case in CASES}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("threads", [1, 2, 3, 4])
@pytest.mark.parametrize("strategy", EXACT)
def test_equals_serial_and_is_deterministic(strategy, threads, case, serial_reference,
                                            no_thread_leak):
    ref_h, ref_p = serial_reference[case]
    h1, p1 = run(case, strategy, threads)
    h2, p2 = run(case, strategy, threads)
    assert len(h1.losses) == len(ref_h.losses) == 4
    assert_close(h1.losses, ref_h.losses, "losses")
    assert_close(p1, ref_p, "final parameters")
    np.testing.assert_array_equal(h1.losses, h2.losses)     # run to run: bit for bit
    np.testing.assert_array_equal(p1, p2)


@pytest.mark.parametrize("strategy", EXACT)
def test_momentum_optimizer_and_prefetch_still_equal_serial(strategy, serial_reference):
    def opt(p):
        return nn.SGD(p, lr=0.05, momentum=0.9, weight_decay=1e-3)
    ref_h, ref_p = run("cnn", "serial", 1, optimizer=opt, epochs=2)
    h, p = run("cnn", strategy, 2, optimizer=opt, epochs=2, prefetch=2)
    assert_close(h.losses, ref_h.losses, "losses")
    assert_close(p, ref_p, "final parameters")


@pytest.mark.parametrize("strategy", sorted(parallel.STRATEGIES))
def test_history_is_complete(strategy, no_thread_leak):
    h, _ = run("cnn", strategy, 2)
    assert h.strategy == strategy and h.threads == 2
    assert len(h.losses) >= 1 and all(np.isfinite(h.losses))
    assert h.wall_time > 0 and len(h.step_times) == len(h.losses)
    assert h.trace and {s.kind for s in h.trace} and h.thread_cpu
    assert all(s.end >= s.start for s in h.trace)
    assert strategy in h.summary()
    assert parallel.STRATEGIES[strategy].description


@pytest.mark.parametrize("kw, error, match", [
    ({"threads": 0}, ValueError, "threads"),
    ({"threads": -1}, ValueError, "threads"),
    ({"threads": 2.0}, TypeError, "threads"),
    ({"threads": "2"}, TypeError, "threads"),
    ({"epochs": 0}, ValueError, "epochs"),
    ({"batch_size": 0}, ValueError, "batch_size"),
    ({"batch_size": 1000}, ValueError, "batch_size"),
    ({"strategy": "magic"}, ValueError, "strategy"),
    ({"lr": 0}, ValueError, "lr"),
    ({"no_such_option": 1}, TypeError, "no_such_option"),
    ({"prefetch": -1}, ValueError, "prefetch"),
    ({"optimizer": "adam"}, TypeError, "optimizer"),
])
def test_bad_arguments_raise_before_any_thread(kw, error, match, no_thread_leak):
    make, loss, X, y = cnn_case()
    kw = {"strategy": "sync", "threads": 2, "batch_size": 24, **kw}
    before = threading.active_count()
    with pytest.raises(error, match=match):
        parallel.train(make(), loss, (X, y), **kw)
    assert threading.active_count() == before


@pytest.mark.parametrize("strategy", sorted(parallel.STRATEGIES))
def test_argument_checks_for_every_strategy(strategy):
    make, loss, X, y = cnn_case()
    with pytest.raises(ValueError, match="same length"):
        parallel.train(make(), loss, (X, y[:-1]), strategy=strategy, threads=2, batch_size=24)
    if parallel.STRATEGIES[strategy].splits_batch:
        with pytest.raises(ValueError, match="batch_size"):
            parallel.train(make(), loss, (X, y), strategy=strategy, threads=4, batch_size=3)


@pytest.mark.parametrize("strategy", sorted(set(parallel.STRATEGIES) - {"process"}))
def test_worker_error_reaches_caller_quickly(strategy, no_thread_leak):
    _, loss, X, y = cnn_case()
    model = nn.Sequential(nn.Flatten(), nn.Dense(144, 8), Exploding(), nn.Dense(8, 4),
                          dtype=np.float64)
    t0 = time.perf_counter()
    with pytest.raises(RuntimeError, match="boom in a worker") as info:
        parallel.train(model, loss, (X, y), strategy=strategy, threads=3, epochs=3,
                       batch_size=24)
    assert time.perf_counter() - t0 < 5
    assert any(f.name == "forward" for f in info.traceback), "original traceback kept"


@pytest.mark.parametrize("strategy", sorted(parallel.STRATEGIES))
def test_nan_loss_stops_with_the_step(strategy, no_thread_leak):
    _, loss, X, y = cnn_case()

    def make():
        return nn.Sequential(nn.Flatten(), nn.Dense(144, 8), GoesNaN(), nn.Dense(8, 4),
                             seed=0, dtype=np.float64)
    with pytest.raises(FloatingPointError, match="step 0"):
        parallel.train(make(), loss, (X, y), strategy=strategy, threads=2, batch_size=24)
    h = parallel.train(make(), loss, (X, y), strategy=strategy, threads=2, batch_size=24,
                       check_finite=False)
    assert np.isnan(h.losses[0])


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_in_the_data_is_named_before_anything_starts(bad, no_thread_leak):
    make, loss, X, y = cnn_case()
    X = X.copy()
    X[5, 0, 2, 2] = bad
    with pytest.raises(ValueError, match="X holds 1 NaN or infinite"):
        parallel.train(make(), loss, (X, y), strategy="sync", threads=2, batch_size=24)


def test_prefetcher_stops_early_and_propagates_errors(no_thread_leak):
    X = np.arange(40.0).reshape(20, 2)
    y = np.arange(20)
    plan = [np.arange(i, i + 2) for i in range(0, 20, 2)]
    with parallel.Prefetcher(X, y, plan, depth=2) as batches:
        first = next(iter(batches))
    np.testing.assert_array_equal(first[1], [0, 1])

    def bad(xb, rng):
        raise ValueError("augment failed")
    with pytest.raises(ValueError, match="augment failed"), \
            parallel.Prefetcher(X, y, plan, 2, augment=bad) as batches:
        list(batches)


def test_random_shift_keeps_shape_and_content():
    rng = np.random.default_rng(0)
    xb = np.zeros((5, 1, 6, 6))
    xb[:, :, 2:4, 2:4] = 1
    out = parallel.random_shift(1)(xb, rng)
    assert out.shape == xb.shape and np.all(out.sum(axis=(1, 2, 3)) == 4)


def test_stress_random_strategies_no_deadlock_no_leak(no_thread_leak):
    rng = np.random.default_rng(0)
    make, loss, X, y = cnn_case(48)
    names = sorted(set(parallel.STRATEGIES) - {"process"})
    for _ in range(25):
        strategy = str(rng.choice(names))
        threads = int(rng.integers(1, 5))
        h = parallel.train(make(), loss, (X, y), strategy=strategy, threads=threads,
                           batch_size=int(rng.integers(threads, 24) if threads < 24 else 24),
                           epochs=1, prefetch=int(rng.integers(0, 3)))
        assert h.losses


@pytest.mark.parametrize("strategy", sorted(parallel.STRATEGIES))
def test_keyboard_interrupt_stops_promptly_and_cleanly(strategy, no_thread_leak):
    import _thread

    make, loss, X, y = cnn_case(480)
    timer = threading.Timer(0.3, _thread.interrupt_main)
    t0 = time.perf_counter()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            parallel.train(make(), loss, (X, y), strategy=strategy, threads=2, epochs=200,
                           batch_size=24)
    finally:
        timer.cancel()
        timer.join()
    assert time.perf_counter() - t0 < 5


@pytest.mark.parametrize("strategy", ["sync", "asyncio", "hogwild", "tensor", "pipeline"])
def test_every_worker_sets_the_blas_limit_where_it_is_per_thread(strategy, monkeypatch):
    """With OpenMP BLAS or MKL a threadpoolctl limit holds for the calling thread only, so
    each worker must set its own (simulated here: the scope reported as "thread")."""
    from mtlearn.parallel import base

    limited = []

    class Controller:
        def limit(self, limits, user_api):
            limited.append((threading.current_thread().name, limits, user_api))
            return contextlib.nullcontext()

    real = base.info.machine_info
    monkeypatch.setattr(base.info, "machine_info",
                        lambda: {**real(), "blas_limit_scope": "thread"})
    monkeypatch.setattr(base, "blas_controller", lambda: Controller())
    make, loss, X, y = cnn_case()
    parallel.train(make(), loss, (X, y), strategy=strategy, threads=2, batch_size=24)
    names = {name for name, limits, api in limited if limits == 1 and api == "blas"}
    assert len(names) == 2, f"{strategy}: BLAS limit set in {sorted(names)}"
    assert threading.current_thread().name not in names


def test_no_per_worker_limit_where_it_is_process_wide(monkeypatch):
    from mtlearn.parallel import base

    real = base.info.machine_info
    monkeypatch.setattr(base.info, "machine_info",
                        lambda: {**real(), "blas_limit_scope": "process"})
    monkeypatch.setattr(base, "blas_controller", lambda: pytest.fail("limit set per worker"))
    make, loss, X, y = cnn_case()
    parallel.train(make(), loss, (X, y), strategy="sync", threads=2, batch_size=24)


def test_history_explains_itself_and_round_trips_through_json():
    import json

    make, loss, X, y = cnn_case()
    h = parallel.train(make(), loss, (X, y), strategy="sync", threads=2, batch_size=24,
                       epochs=2, lr=0.1, seed=3,
                       optimizer=lambda p: nn.SGD(p, lr=0.1, momentum=0.9))
    c = h.config
    assert (c["strategy"], c["threads"], c["batch_size"], c["epochs"], c["lr"], c["seed"]) == \
        ("sync", 2, 24, 2, 0.1, 3)
    assert "lambda" in c["optimizer"]
    assert h.machine["cores"] >= 1 and "numpy" in h.machine and "python" in h.machine
    back = parallel.History.from_dict(json.loads(json.dumps(h.to_dict())))
    assert back.to_dict() == json.loads(json.dumps(h.to_dict()))
    assert back.losses == h.losses and back.trace == h.trace and back.config == h.config


@pytest.mark.parametrize("strategy", sorted(parallel.STRATEGIES))
def test_step_and_epoch_callbacks(strategy):
    make, loss, X, y = cnn_case()               # 96 samples: 4 steps of 24 per epoch
    steps, epochs = [], []
    parallel.train(make(), loss, (X, y), strategy=strategy, threads=2, batch_size=24,
                   epochs=2, on_step=lambda s, v: steps.append((s, v)),
                   on_epoch=lambda e, hist: epochs.append((e, hist.steps)))
    assert [s for s, _ in steps] == list(range(1, 9))
    assert epochs == [(1, 4), (2, 8)]


@pytest.mark.parametrize("strategy", sorted(parallel.STRATEGIES))
def test_cancel_returns_the_history_so_far(strategy, no_thread_leak):
    make, loss, X, y = cnn_case()
    cancel = threading.Event()

    def on_step(step, value):
        if step == 3:
            cancel.set()
    h = parallel.train(make(), loss, (X, y), strategy=strategy, threads=2, batch_size=24,
                       epochs=50, on_step=on_step, cancel=cancel)
    assert h.cancelled
    assert 3 <= h.steps < 50 * 4


@pytest.mark.parametrize("kw, error, match", [
    (dict(threads=10**5), ValueError, "threads must be an int from 1 to 1024"),
    (dict(threads=2.0), TypeError, "threads must be an int"),
    (dict(lr="0.1"), TypeError, "lr must be a finite number"),
    (dict(lr=float("inf")), ValueError, "lr must be a finite number"),
    (dict(seed=-1), ValueError, "seed"),
    (dict(seed="abc"), TypeError, "seed"),
    (dict(optimizer=lambda p: None), TypeError, "optimizer must be a factory"),
    (dict(augment=5), TypeError, "augment must be a function"),
    (dict(on_step="print"), TypeError, "on_step"),
    (dict(cancel=True), TypeError, "cancel must be None or a threading.Event"),
    (dict(batch_size=10**6), ValueError, "batch_size"),
])
@pytest.mark.parametrize("strategy", ["sync", "pipeline", "process"])
def test_bad_arguments_are_refused_before_anything_starts(kw, error, match, strategy,
                                                          no_thread_leak):
    make, loss, X, y = cnn_case()
    kw = {"threads": 2, "batch_size": 24, **kw}
    with pytest.raises(error, match=match):
        parallel.train(make(), loss, (X, y), strategy=strategy, **kw)


@pytest.mark.parametrize("data, error, match", [
    ((list(range(4)), np.arange(4)), TypeError, "X must be a numpy array"),
    ((np.zeros((4, 1, 12, 12), complex), np.arange(4)), TypeError, "real numbers"),
    ((np.zeros((4, 1, 12, 12)), np.arange(5)), ValueError, "same length"),
    ((np.zeros((0, 1, 12, 12)), np.arange(0)), ValueError, "at least one sample"),
    (42, TypeError, "pair"),
])
def test_bad_data_is_named(data, error, match):
    make, loss, _, _ = cnn_case()
    with pytest.raises(error, match=match):
        parallel.train(make(), loss, data, batch_size=2)


def test_a_loss_that_is_not_a_loss_is_named():
    make, _, X, y = cnn_case()
    with pytest.raises(TypeError, match="loss must have forward"):
        parallel.train(make(), None, (X, y), batch_size=8)


def test_a_shape_mismatch_is_found_by_the_dry_run_before_any_thread(no_thread_leak):
    make, loss, X, y = cnn_case()
    before = threading.active_count()
    with pytest.raises(ValueError, match="expected input of shape") as info:
        parallel.train(make(), loss, (X[:, :, :10, :10], y), strategy="sync", threads=2,
                       batch_size=24)
    assert threading.active_count() == before
    assert any("dry run" in n for n in info.value.__notes__)
