"""``train_many``: several independent models at once — same results as alone, in job order,
every job checked first, the first failure stops the rest, one combined timeline."""

import _thread
import itertools
import threading
import time

import numpy as np
import pytest
from cases import Exploding

from mtlearn import data, nn, parallel


def images():
    X, y = data.shapes(96, size=12, seed=3)
    return X.astype(np.float64), y


def sequences():
    X, y = data.adding_problem(96, 12, seed=4)
    return X.astype(np.float64), y.reshape(-1, 1).astype(np.float64)


def recurrent(cell, seed=2):
    return nn.Sequential(cell(2, 8), nn.LastStep(), nn.Dense(8, 1), seed=seed, dtype=np.float64)


def dense(seed=1):
    return nn.Sequential(nn.Flatten(), nn.Dense(144, 16), nn.ReLU(), nn.Dense(16, 4), seed=seed,
                         dtype=np.float64)


def jobs():
    """Fresh models each call: an RNN, an LSTM and a GRU, a learning-rate sweep, one sync."""
    seq, img = sequences(), images()
    out = [dict(name=cell.__name__.lower(), model=recurrent(cell), loss=nn.MSELoss(),
                data=seq, epochs=2, batch_size=16) for cell in (nn.RNN, nn.LSTM, nn.GRU)]
    out += [dict(name=f"lr={lr}", model=dense(), loss=nn.SoftmaxCrossEntropy(), data=img,
                 lr=lr, epochs=2, batch_size=16) for lr in (0.03, 0.3)]
    out.append(dict(name="sync", model=dense(), loss=nn.SoftmaxCrossEntropy(), data=img,
                    strategy="sync", threads=2, epochs=2, batch_size=16))
    return out


@pytest.mark.parametrize("threads", [1, 2, 4])
def test_results_in_job_order_equal_each_job_alone(threads, no_thread_leak):
    alone = []
    for job in jobs():
        job = dict(job)
        job.pop("name")
        alone.append((parallel.train(**job), job["model"].params.copy()))
    todo = jobs()
    many = parallel.train_many(todo, threads=threads)
    assert isinstance(many, list) and len(many) == len(todo) and many.threads == threads
    for job, h, (ref, ref_params) in zip(todo, many, alone, strict=True):
        assert h.info["job"] == job["name"] and h.strategy == ref.strategy
        np.testing.assert_array_equal(h.losses, ref.losses)          # bit for bit
        np.testing.assert_array_equal(job["model"].params, ref_params)


def test_combined_timeline_has_one_row_per_job(no_thread_leak):
    many = parallel.train_many(jobs(), threads=2)
    rows = {s.thread for s in many.trace}
    assert set(many.names) <= rows
    assert {"sync/sync-0", "sync/sync-1"} <= rows              # the sync job's own workers
    assert all(s.thread.split("/")[0] in many.names for s in many.trace)
    assert all(s.end >= s.start >= 0 for s in many.trace)
    assert many.trace == sorted(many.trace, key=lambda s: (s.start, s.thread))
    assert all(h.info["thread"].startswith("train_many") for h in many)
    assert many.wall_time > 0 and "6 jobs on 2 thread(s)" in many.summary()


def test_one_thread_runs_the_jobs_one_after_another(no_thread_leak):
    many = parallel.train_many(jobs()[:3], threads=1)
    for before, after in itertools.pairwise(many):
        assert after.info["started"] >= before.info["started"] + before.wall_time
    waits = {s.thread: s.end for s in many.trace if s.kind == "wait" and s.start == 0}
    assert waits["gru"] == pytest.approx(many[2].info["started"])


def test_default_pool_is_one_thread_per_core_at_most_one_per_job(no_thread_leak):
    many = parallel.train_many(jobs()[:1])
    assert many.threads == 1


def bad(i, **change):
    todo = jobs()
    todo[i].update(change)
    return todo


@pytest.mark.parametrize("make_jobs, error, match", [
    (lambda: bad(5, threads=0), ValueError, r"jobs\[5\] \('sync'\): threads must be an int >= 1"),
    (lambda: bad(4, strategy="magic"), ValueError, r"jobs\[4\].*strategy"),
    (lambda: bad(3, no_such_option=1), TypeError, r"jobs\[3\].*no_such_option"),
    (lambda: bad(2, blas_threads=2), TypeError, r"jobs\[2\].*blas_threads"),
    (lambda: bad(3, strategy="hogwild", lock="yes"), TypeError, r"jobs\[3\].*lock"),
    (lambda: bad(5, name="rnn"), ValueError, r"jobs\[5\].*named 'rnn'"),
    (lambda: [{k: v for k, v in j.items() if k != "loss"} for j in jobs()], TypeError,
     r"jobs\[0\].*missing loss"),
    (lambda: jobs() + ["lstm"], TypeError, r"jobs\[6\] must be a dict"),
    (lambda: [], ValueError, "empty"),
    (lambda: jobs()[0], TypeError, "list"),
])
def test_every_job_is_checked_before_any_starts(make_jobs, error, match, no_thread_leak):
    todo = make_jobs()
    before = [j["model"].params.copy() for j in todo if isinstance(j, dict) and "model" in j]
    count = threading.active_count()
    with pytest.raises(error, match=match):
        parallel.train_many(todo, threads=2)
    assert threading.active_count() == count
    after = [j["model"].params for j in todo if isinstance(j, dict) and "model" in j]
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True)), "nothing ran"


def test_two_jobs_sharing_a_model_are_refused():
    todo = jobs()
    todo[4]["model"] = todo[3]["model"]
    with pytest.raises(ValueError, match=r"jobs\[4\].*same model as jobs\[3\]"):
        parallel.train_many(todo)


@pytest.mark.parametrize("kw, error", [({"threads": 0}, ValueError),
                                       ({"threads": 1.5}, TypeError),
                                       ({"blas_threads": 0}, ValueError)])
def test_bad_pool_arguments(kw, error):
    with pytest.raises(error, match=next(iter(kw))):
        parallel.train_many(jobs(), **kw)


def long_jobs():
    seq = sequences()
    return [dict(name=f"long-{k}", model=recurrent(nn.LSTM, seed=k), loss=nn.MSELoss(),
                 data=seq, epochs=2000, batch_size=16) for k in range(3)]


@pytest.mark.parametrize("strategy", ["serial", "sync", "hogwild", "asyncio"])
def test_first_error_stops_the_other_jobs(strategy, no_thread_leak):
    img = images()
    model = nn.Sequential(nn.Flatten(), nn.Dense(144, 8), Exploding("boom in one job"),
                          nn.Dense(8, 4), dtype=np.float64)
    failing = dict(name="bad", model=model,
                   loss=nn.SoftmaxCrossEntropy(), data=img, strategy=strategy, threads=2,
                   batch_size=24)
    todo = long_jobs()
    todo.insert(1, failing)
    t0 = time.perf_counter()
    with pytest.raises(RuntimeError, match="boom in one job") as info:
        parallel.train_many(todo, threads=2)
    assert time.perf_counter() - t0 < 5, "the long jobs were stopped"
    assert any(f.name == "forward" for f in info.traceback), "original traceback kept"
    assert "job 1 ('bad')" in "".join(getattr(info.value, "__notes__", []))


def test_keyboard_interrupt_stops_every_job(no_thread_leak):
    timer = threading.Timer(0.3, _thread.interrupt_main)
    t0 = time.perf_counter()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            parallel.train_many(long_jobs(), threads=2)
    finally:
        timer.cancel()
        timer.join()
    assert time.perf_counter() - t0 < 5
