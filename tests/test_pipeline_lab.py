"""PipelineLab driven from code, and the schedules it draws (ideal and measured)."""

import itertools
import threading
import time

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from mtlearn import data, nn, parallel
from mtlearn.nn import balanced_mlp
from mtlearn.parallel import ideal_schedule, measured_schedule, step_window
from mtlearn.parallel.pipeline import schedule
from mtlearn.widgets import PipelineLab, PipelineLabResult, pipeline_lab
from mtlearn.widgets.pipeline_lab import SWEEP, compact


def _texts(lab):
    return "\n".join(o["data"]["text/plain"] for o in lab.out.outputs
                     if "text/html" in o["data"])


def test_run_shows_summary_and_three_figures(no_thread_leak):
    lab = PipelineLab(micro_batches=4, batch_size=32, steps=2, sweep=False)
    result = lab.run()
    assert isinstance(result, PipelineLabResult)
    assert "text/html" in lab.out.outputs[0]["data"] and len(lab.out.outputs) == 4
    assert all("image/png" in o["data"] for o in lab.out.outputs[1:])
    text = _texts(lab)
    assert "bubble measured" in text and "(K-1)/(M+K-1) = 20.0%" in text
    assert "peak live activations per stage: [4, 4]" in text
    assert "stage 0: Flatten (Dense ReLU) x6" in text
    assert "stage 1: (Dense ReLU) x6 Dense" in text
    assert lab.status == "done" and lab.progress_bar.value == 1.0
    assert result.history.steps == 2 and result.history.info["stages"] == 2
    assert list(result.sweep) == [4] and len(result.sweep[4]) == 2
    assert 0 <= result.bubble < 1 and result.bubble_theory == pytest.approx(0.2)
    assert result.serial_ms > 0 and result.ms_per_step > 0


def test_sweep_measures_every_micro_batch_count(no_thread_leak):
    lab = PipelineLab(micro_batches=3, batch_size=32, steps=1, sweep=True)
    result = lab.run()
    assert list(result.sweep) == sorted({3, *SWEEP})
    assert all(len(v) == 1 and 0 <= v[0] < 1 for v in result.sweep.values())


def test_cnn_1f1b_keeps_at_most_k_alive(no_thread_leak):
    lab = PipelineLab(model="cnn", stages=3, micro_batches=8, schedule="1f1b", batch_size=32,
                      steps=2, sweep=False)
    result = lab.run()
    assert result.peak_live == [3, 2, 1]
    assert result.history.info["schedule"] == "1f1b" and len(result.history.info["cuts"]) == 3
    assert "course CNN" in _texts(lab)


def test_one_stage_has_no_bubble_in_theory(no_thread_leak):
    result = PipelineLab(stages=1, micro_batches=2, batch_size=32, steps=1, sweep=False).run()
    assert result.bubble_theory == 0 and result.peak_live == [2]


def test_balanced_mlp_layers_are_equal_blocks():
    model = balanced_mlp(width=16, blocks=4)
    names = [type(layer).__name__ for layer in model.layers]
    assert names == ["Flatten"] + ["Dense", "ReLU"] * 4 + ["Dense"]
    assert model(np.zeros((3, 1, 4, 4), dtype=np.float32)).shape == (3, 4)
    assert model.num_params == 4 * (16 * 16 + 16) + 16 * 4 + 4


@pytest.mark.parametrize("kind", ["gpipe", "1f1b"])
@pytest.mark.parametrize("K, M", [(1, 3), (2, 1), (2, 4), (3, 4), (4, 8), (4, 2)])
@pytest.mark.parametrize("backward", [1.0, 2.0])
def test_ideal_schedule_follows_the_rules_and_the_formula(kind, K, M, backward):
    ops = ideal_schedule(K, M, kind, backward=backward)
    end = {(op, k, i): e for k, op, i, _, e in ops}
    start = {(op, k, i): s for k, op, i, s, _ in ops}
    for k in range(K):
        mine = sorted((s, op, i) for kk, op, i, s, _ in ops if kk == k)
        assert [(op, i) for _, op, i in mine] == schedule(k, K, M, kind)
        for i in range(M):
            if k > 0:
                assert start[("F", k, i)] >= end[("F", k - 1, i)]
            if k < K - 1:
                assert start[("B", k, i)] >= end[("B", k + 1, i)]
    window = max(end.values()) - min(start.values())
    busy = sum(e - s for *_, s, e in ops)
    assert 1 - busy / (K * window) == pytest.approx((K - 1) / (M + K - 1))
    with pytest.raises(ValueError, match="kind"):
        ideal_schedule(2, 2, "zigzag")


def test_measured_schedule_labels_the_spans_of_a_step():
    X, y = data.shapes(64, size=12, seed=0)
    model = balanced_mlp(width=144, blocks=2)
    K, M = 2, 4
    h = parallel.train(model, nn.SoftmaxCrossEntropy(), (X, y), strategy="pipeline", threads=K,
                       micro_batches=M, schedule="1f1b", batch_size=32)
    for step in (0, -1):
        ops = measured_schedule(h, step)
        assert min(s for *_, s, _ in ops) == 0
        for k in range(K):
            mine = sorted((s, e, op, i) for kk, op, i, s, e in ops if kk == k)
            assert [(op, i) for *_, op, i in mine] == schedule(k, K, M, "1f1b")
            assert all(a[1] <= b[0] for a, b in itertools.pairwise(mine))   # one at a time
    t0, t1 = step_window(h, -1)
    assert 0 <= t0 < t1 <= h.wall_time
    assert step_window(h, 0)[1] <= t0
    serial = parallel.train(balanced_mlp(width=144, blocks=2), nn.SoftmaxCrossEntropy(), (X, y))
    with pytest.raises(ValueError, match="pipeline"):
        measured_schedule(serial)
    untraced = parallel.train(balanced_mlp(width=144, blocks=2), nn.SoftmaxCrossEntropy(),
                              (X, y), strategy="pipeline", threads=2, batch_size=32, trace=False)
    with pytest.raises(ValueError, match="trace"):
        measured_schedule(untraced)


def test_stop_cancels_the_run_in_progress(no_thread_leak):
    lab = PipelineLab(model="cnn", stages=2, micro_batches=32, batch_size=256, steps=20,
                      sweep=True)
    lab.run(wait=False)
    deadline = time.monotonic() + 30
    while not lab.status.startswith("pipeline") and time.monotonic() < deadline:
        time.sleep(0.01)
    t0 = time.monotonic()
    lab.stop_button.click()
    assert time.monotonic() - t0 < 5
    assert not lab.running and lab.status == "stopped" and lab.result is None
    assert lab.error is None and lab.out.outputs == ()       # no partial result to draw
    assert not [t for t in threading.enumerate() if t.name.startswith("pipeline")]


@pytest.mark.parametrize("when", ["serial", "pipeline", "sweep"])
def test_a_run_cancelled_at_any_point_is_a_clean_stop(when, monkeypatch, no_thread_leak):
    # parallel.train returns a cancelled History (no bubble in its info): the lab must
    # stop there, not read it (a KeyError once).
    calls = []
    real = pipeline_lab.parallel.train

    def train(*args, **kwargs):
        calls.append(kwargs["strategy"])
        step = {"serial": 1, "pipeline": 2, "sweep": 3}[when]
        if len(calls) == step:
            kwargs["cancel"].set()
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline_lab.parallel, "train", train)
    lab = PipelineLab(micro_batches=2, batch_size=32, steps=2, sweep=True)
    assert lab.run() is None
    assert lab.status == "stopped" and lab.error is None and lab.out.outputs == ()
    assert len(calls) == {"serial": 1, "pipeline": 2, "sweep": 3}[when]


def test_compact_layer_names():
    assert compact(["Flatten", "Dense", "ReLU", "Dense", "ReLU", "Dense"]) == \
        "Flatten (Dense ReLU) x2 Dense"
    assert compact(["Conv2D", "ReLU", "MaxPool2D", "Flatten", "Dense"]) == \
        "Conv2D ReLU MaxPool2D Flatten Dense"
    assert compact(["Dense", "Dense", "Dense"]) == "Dense x3" and compact([]) == ""
