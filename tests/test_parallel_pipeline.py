"""``pipeline``: stage cuts, both schedules equal serial, live activations, the bubble."""

import itertools
import threading

import numpy as np
import pytest
from cases import assert_close, cnn_case, train_case

from mtlearn import data, nn, parallel
from mtlearn.parallel.pipeline import balanced_cuts, bubble_fraction, schedule
from mtlearn.runtime.trace import Span


def train(strategy="pipeline", threads=2, case=cnn_case, **kw):
    return train_case(case, strategy, threads, **kw)


@pytest.fixture(scope="module")
def serial():
    return train("serial", 1)


# -- stage cuts ----------------------------------------------------------------------------
def brute_force_best(costs, k):
    n = len(costs)
    return min(max(sum(costs[a:b]) for a, b in itertools.pairwise((0, *cut, n)))
               for cut in itertools.combinations(range(1, n), k - 1))


@pytest.mark.parametrize("costs", [[1, 1, 1, 1], [10, 1, 1, 1, 1, 10], [5, 1, 9, 2, 2, 7, 3],
                                   [0, 0, 8, 0]])
def test_cuts_are_contiguous_non_empty_and_balanced(costs):
    for k in range(1, len(costs) + 1):
        cuts = balanced_cuts(costs, k)
        assert len(cuts) == k and cuts[0][0] == 0 and cuts[-1][1] == len(costs)
        assert all(lo < hi for lo, hi in cuts)
        assert all(a[1] == b[0] for a, b in itertools.pairwise(cuts))
        assert max(sum(costs[lo:hi]) for lo, hi in cuts) == brute_force_best(costs, k)


def test_cnn_cuts_cover_the_layers_and_are_recorded():
    for k in (1, 2, 3, 4, 8):
        h, _ = train(threads=k)
        cuts = h.info["cuts"]
        assert h.info["stages"] == k == len(cuts)
        assert [c for lo, hi in cuts for c in range(lo, hi)] == list(range(8))
        assert len(h.info["stage_layers"]) == k


def test_stages_default_to_threads_clamped_to_the_layers():
    X, y = data.adding_problem(48, 6, seed=4)
    model = nn.Sequential(nn.LSTM(2, 8), nn.LastStep(), nn.Dense(8, 1), dtype=np.float64)
    h = parallel.train(model, nn.MSELoss(), (X, y.reshape(-1, 1)), strategy="pipeline",
                       threads=4, batch_size=12)
    assert h.info["stages"] == 3 and h.threads == 4
    h, _ = train(threads=1, stages=3)             # an explicit stages wins over threads
    assert h.info["stages"] == 3


# -- schedules -----------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["gpipe", "1f1b"])
@pytest.mark.parametrize("K, M", [(1, 1), (2, 1), (2, 5), (3, 4), (4, 2), (4, 8)])
def test_schedule_runs_every_micro_batch_once_forward_before_backward(kind, K, M):
    for k in range(K):
        ops = schedule(k, K, M, kind)
        assert sorted(ops) == sorted([("F", i) for i in range(M)] + [("B", i) for i in range(M)])
        assert [i for op, i in ops if op == "B"] == list(range(M))   # same order: same sums
        live = peak = 0
        for op, i in ops:
            assert op == "F" or ops.index(("F", i)) < ops.index(("B", i))
            live += 1 if op == "F" else -1
            peak = max(peak, live)
        assert peak == (M if kind == "gpipe" else min(K - k, M))


@pytest.mark.parametrize("threads", [2, 3, 4])
def test_gpipe_and_1f1b_equal_serial_and_each_other(threads, serial, no_thread_leak):
    ref_h, ref_p = serial
    runs = {kind: train(threads=threads, micro_batches=8, schedule=kind)
            for kind in ("gpipe", "1f1b")}
    for h, p in runs.values():
        assert_close(h.losses, ref_h.losses)
        assert_close(p, ref_p)
    (hg, pg), (h1, p1) = runs["gpipe"], runs["1f1b"]
    np.testing.assert_array_equal(hg.losses, h1.losses)      # same sums in the same order
    np.testing.assert_array_equal(pg, p1)


@pytest.mark.parametrize("micro_batches", [1, 5, 24])
def test_any_micro_batch_count_equals_serial(micro_batches, serial):
    h, p = train(threads=3, micro_batches=micro_batches)
    assert_close(h.losses, serial[0].losses)
    assert_close(p, serial[1])


def test_1f1b_keeps_at_most_K_micro_batches_alive_gpipe_keeps_M():
    K, M = 3, 8
    hg, _ = train(threads=K, micro_batches=M, schedule="gpipe")
    h1, _ = train(threads=K, micro_batches=M, schedule="1f1b")
    assert hg.info["peak_live"] == [M] * K
    assert h1.info["peak_live"] == [K - k for k in range(K)]
    assert max(h1.info["peak_live"]) <= K < M


# -- the bubble ----------------------------------------------------------------------------
def simulated_trace(K, M, kind):
    """Unit-time spans of an ideal pipeline running ``schedule`` (2 steps)."""
    spans, clock = [], 0
    for _ in range(2):
        done, free, pos = {}, [clock] * K, [0] * K
        ops = [schedule(k, K, M, kind) for k in range(K)]
        while any(pos[k] < len(ops[k]) for k in range(K)):
            for k in range(K):
                if pos[k] == len(ops[k]):
                    continue
                op, i = ops[k][pos[k]]
                if op == "F" and k > 0:
                    dep = ("F", k - 1, i)          # the activation from the stage before
                elif op == "B" and k < K - 1:
                    dep = ("B", k + 1, i)          # the gradient from the stage after
                else:
                    dep = None
                if dep is not None and dep not in done:
                    continue
                t = max(free[k], done.get(dep, 0))
                done[(op, k, i)] = free[k] = t + 1
                pos[k] += 1
                what = "forward" if op == "F" else "backward"
                spans.append(Span(f"pipeline-{k}", what, t, t + 1, 1.0))
        clock = max(free) + 3                  # a gap between steps is not bubble
    return spans


@pytest.mark.parametrize("kind", ["gpipe", "1f1b"])
@pytest.mark.parametrize("K, M", [(2, 1), (2, 4), (3, 4), (4, 8), (4, 16)])
def test_bubble_of_an_ideal_pipeline_is_the_gpipe_formula(kind, K, M):
    overall, steps = bubble_fraction(simulated_trace(K, M, kind), K, M)
    theory = (K - 1) / (M + K - 1)
    assert overall == pytest.approx(theory) and steps == pytest.approx([theory, theory])


def test_bubble_fields_are_recorded():
    for K, M in ((2, 4), (3, 1), (4, 8)):
        h, _ = train(threads=K, micro_batches=M)
        info = h.info
        assert info["bubble_theory"] == pytest.approx((K - 1) / (M + K - 1))
        assert 0 <= info["bubble"] < 1 and len(info["bubble_per_step"]) == h.steps
        assert len(info["stage_busy"]) == K and all(t > 0 for t in info["stage_busy"])
        assert info["micro_batches"] == M and info["schedule"] == "gpipe"
        kinds = {s.kind for s in h.trace if s.thread.startswith("pipeline-")}
        assert {"forward", "backward", "wait", "update"} <= kinds
    h, _ = train(threads=2, trace=False)
    assert h.info["bubble"] is None and h.trace == []


# -- bad options and failures --------------------------------------------------------------
@pytest.mark.parametrize("kw, match", [
    ({"stages": 0}, "stages"),
    ({"stages": 9}, "stages"),
    ({"micro_batches": 0}, "micro_batches"),
    ({"micro_batches": 25}, "micro_batches"),
    ({"schedule": "x"}, "schedule"),
])
def test_bad_options_raise_before_any_thread(kw, match, no_thread_leak):
    before = threading.active_count()
    with pytest.raises(ValueError, match=match):
        train(threads=2, **kw)
    assert threading.active_count() == before


def test_micro_batches_default_fits_a_small_batch():
    h, _ = train(threads=2, batch_size=3)
    assert h.info["micro_batches"] == 3


def test_an_error_in_the_last_stage_unblocks_every_stage(no_thread_leak):
    make, loss, X, y = cnn_case()
    model = make()
    with pytest.raises(ValueError, match="labels must be integers"):
        parallel.train(model, loss, (X, y.astype(float)), strategy="pipeline", threads=4,
                       batch_size=24)
