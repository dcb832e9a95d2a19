"""RNNLab: both tasks run from code, the output shows summary, figure and samples, the
temperature slider resamples without training, Stop stops, and no thread is left behind."""

import math

import matplotlib
import pytest

matplotlib.use("Agg")

from mtlearn.widgets import RNNLab, RNNLabResult  # noqa: E402
from mtlearn.widgets.rnn_lab import DEFAULTS, describe_sample  # noqa: E402


def test_chars_run_shows_summary_figure_and_sample(no_thread_leak):
    lab = RNNLab(steps=30, hidden=16)
    result = lab.run()
    assert isinstance(result, RNNLabResult)
    assert result.task == "chars" and result.cell == "lstm" and len(result.losses) == 30
    assert len(result.step_times) == 30 and result.wall_time > 0
    assert math.isfinite(result.metric) and result.baseline == pytest.approx(2.52, abs=0.01)
    assert result.losses[-1] < result.losses[0]
    kinds = [o["output_type"] for o in lab.out.outputs]
    assert kinds == ["stream", "display_data", "stream"]
    assert "LSTM(16) on characters" in lab.out.outputs[0]["text"]
    assert "image/png" in lab.out.outputs[1]["data"]
    assert "sampled at temperature 0.8" in lab.out.outputs[2]["text"]
    assert list(result.samples) == [0.8] and len(result.samples[0.8]) == 160
    assert lab.progress.value == 1.0 and lab.status.value == "done"


def test_temperature_slider_resamples_the_trained_model(no_thread_leak):
    lab = RNNLab(steps=20, hidden=8, cell="gru")
    lab.temperature.value = 1.5                      # before any run: nothing to sample
    assert lab.out.outputs == ()
    result = lab.run()
    before = len(lab.out.outputs)
    lab.temperature.value = 0.0
    assert len(lab.out.outputs) == before + 1
    assert "sampled at temperature 0:" in lab.out.outputs[-1]["text"]
    assert set(result.samples) == {1.5, 0.0}
    # greedy sampling is deterministic
    assert result.sample(0.0) == result.samples[0.0]


def test_adding_run_and_task_defaults(no_thread_leak):
    lab = RNNLab()
    lab.task.value = "adding"
    assert (lab.seq_len.value, lab.hidden.value, lab.steps.value) == DEFAULTS["adding"]
    lab.steps.value, lab.seq_len.value, lab.cell.value = 20, 10, "rnn"
    result = lab.run()
    assert result.task == "adding" and len(result.losses) == 20
    assert "RNN(32) on the adding problem" in result.summary and "test MSE" in result.summary
    assert 0.1 < result.baseline < 0.25
    assert [o["output_type"] for o in lab.out.outputs] == ["stream", "display_data"]
    lab.temperature.value = 0.3                      # no character model: nothing happens
    assert len(lab.out.outputs) == 2
    with pytest.raises(ValueError, match="character model"):
        result.sample(1.0)


def test_stop_stops_a_long_run(no_thread_leak):
    lab = RNNLab(steps=3000)
    lab.run(wait=False)
    lab.stop()
    assert not lab.running and lab.status.value == "stopped" and lab.error is None


def test_bad_task_and_sample_description():
    with pytest.raises(ValueError, match="task"):
        RNNLab(task="images")
    text = describe_sample("1+1=2\n2+2=5\n", 0.5)
    assert text.startswith("sampled at temperature 0.5: 100% of 2 lines well formed, 50%")
