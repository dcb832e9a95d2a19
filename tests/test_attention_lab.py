"""The attention lab's measurements (time against length, matching sizes, equal-time
training) and its dashboard, driven from code."""

import time

import numpy as np
import pytest

from mtlearn import nn, parallel, tasks
from mtlearn.widgets.attention_lab import (
    AttentionLab,
    LengthTimings,
    article_jobs,
    matching_hidden,
    time_vs_length,
    train_for,
)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("target", [20_000, 103_821, 250_000])
def test_matching_hidden_is_the_closest_size(cell, target):
    H = matching_hidden(cell, target, 13)
    best = abs(nn.char_model(13, cell, H).num_params - target)
    for other in (H - 1, H + 1):
        assert best <= abs(nn.char_model(13, cell, other).num_params - target)


def synthetic(rec, tf, lengths=(4, 8, 16, 32)):
    """A LengthTimings with the given per-length milliseconds (one thread only)."""
    seconds = {"RNN(8)": {1: {T: [v / 1e3] for T, v in zip(lengths, rec, strict=True)}},
               "Transformer(4 heads)": {1: {T: [v / 1e3] for T, v in zip(lengths, tf,
                                                                         strict=True)}}}
    return LengthTimings(list(lengths), [1], 2, list(seconds), {m: 1 for m in seconds}, seconds)


@pytest.mark.parametrize("rec, tf, cross, text", [
    ([1, 2, 4, 8], [3, 3, 3, 3], 16, "at T = 16 to 32"),        # crosses once
    ([1, 2, 4, 8], [0.5, 1, 2, 4], 4, "at every length"),
    ([1, 2, 4, 8], [2, 3, 5, 9], None, "at no length up to T = 32"),
    ([1, 2, 4, 8], [3, 1, 5, 3], 8, "at T = 8 and 32"),         # faster, slower, faster
    ([1, 2, 4, 8], [3, 1, 3, 9], 8, "at T = 8 to 16"),          # then T^2 wins
])
def test_crossover_and_where_the_transformer_is_faster(rec, tf, cross, text):
    timings = synthetic(rec, tf)
    assert timings.crossover(1) == cross
    assert f"the Transformer's step was the faster one {text}" in timings.summary()


def test_time_vs_length_measures_both_models_at_equal_size(no_thread_leak):
    calls = []
    r = time_vs_length((4, 8), threads=(1, 2), batch_size=2, steps=2, rounds=1,
                       report=lambda f, text: calls.append(f))
    assert r.lengths == [4, 8] and r.threads == [1, 2] and r.batch_size == 2
    assert r.models[0].startswith("RNN(") and r.models[1] == "Transformer(4 heads)"
    a, b = r.params.values()
    assert abs(a - b) / b < 0.01
    for m in r.models:
        for k in r.threads:
            for T in r.lengths:
                assert len(r.seconds[m][k][T]) == 1 and 0 < r.median(m, k, T) < 5
    assert calls[-1] == 1.0 and len(calls) == 8
    assert "T |" in r.table() and r.figure() is not None
    assert r.speedup(r.models[0], 8) > 0


def test_time_vs_length_refuses_bad_arguments():
    with pytest.raises(ValueError, match="batch_size"):
        time_vs_length((4,), threads=(1, 4), batch_size=2)
    with pytest.raises(ValueError, match="cell"):
        time_vs_length((4,), cell="transformer")
    with pytest.raises(ValueError, match="lengths"):
        time_vs_length(())


def test_train_for_stops_when_the_time_is_up():
    t = tasks.get("transformer", n=512, seq_len=8, embed_dim=16, num_heads=2, hidden=32,
                  num_blocks=1)
    start = time.perf_counter()
    h = train_for(t.model(), t.loss, t.data, 0.3, batch_size=16, max_epochs=1000)
    took = time.perf_counter() - start
    assert h.cancelled and 1 <= h.steps < 1000 * 25 and 0.3 <= took < 5
    done = train_for(t.model(), t.loss, t.data, 60, batch_size=16, max_epochs=1)
    assert not done.cancelled and done.steps == 512 * 8 // 10 // 16   # 1 epoch, 80% of n


def test_dashboard_runs_from_code(no_thread_leak):
    lab = AttentionLab(longest=16, batch_size=2, rounds=1)
    lab.heads_dropdown.value = 2
    assert lab.controls()[1] is lab.heads_dropdown and lab.widget is not None
    result = lab.run()
    assert isinstance(result, LengthTimings)
    assert result.lengths == [4, 8, 16] and result.threads == [1, 2]
    assert result.models[1] == "Transformer(2 heads)"
    texts = "".join(o.get("data", {}).get("text/plain", "") for o in lab.out.outputs)
    assert "Transformer's step was the faster one" in texts and "2 threads vs 1" in texts
    assert any("image/png" in o.get("data", {}) for o in lab.out.outputs)
    lab.threads_slider.value = 1
    assert lab.run().threads == [1]
    assert np.isfinite(lab.result.median(lab.result.models[0], 1, 4))


def test_stop_ends_the_run_between_measurements(no_thread_leak):
    lab = AttentionLab(longest=512, batch_size=2, rounds=3)
    lab.run(wait=False)
    time.sleep(0.2)
    lab.stop()
    assert not lab.running and lab.status == "stopped" and lab.result is None


def test_article_jobs_train_the_four_models_side_by_side(no_thread_leak):
    jobs = article_jobs(n=256, batch_size=32)
    assert [j["name"] for j in jobs] == ["RNN", "LSTM", "GLM/Transformer", "GRU"]
    sizes = [j["model"].num_params for j in jobs]
    assert max(sizes) - min(sizes) < 0.01 * sizes[2]
    assert isinstance(jobs[2]["model"].layers[2], nn.TransformerBlock)
    histories = parallel.train_many(jobs, threads=2)
    assert histories.names == ["RNN", "LSTM", "GLM/Transformer", "GRU"]
    for h in histories:
        assert h.steps == 6 and np.isfinite(h.losses).all()
