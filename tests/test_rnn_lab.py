"""RNNLab: both tasks run from code, the output shows summary, figure and samples, the
temperature slider resamples without training, Stop stops, and no thread is left behind."""

import math
import time

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from mtlearn.widgets import RNNLab, RNNLabResult
from mtlearn.widgets.base import Stopped
from mtlearn.widgets.rnn_lab import DEFAULTS, describe_sample


def _kinds(lab):
    return ["text" if "text/html" in o["data"] else "figure" for o in lab.out.outputs]


def _text(output):
    return output["data"]["text/plain"]


def test_chars_run_shows_summary_figure_and_sample(no_thread_leak):
    lab = RNNLab(steps=30, hidden=16)
    result = lab.run()
    assert isinstance(result, RNNLabResult)
    assert result.task == "chars" and result.cell == "lstm" and len(result.losses) == 30
    assert len(result.step_times) == 30 and result.wall_time > 0
    assert math.isfinite(result.metric) and result.baseline == pytest.approx(2.52, abs=0.01)
    assert result.losses[-1] < result.losses[0]
    assert _kinds(lab) == ["text", "figure", "text"]
    assert "LSTM(16) on characters" in _text(lab.out.outputs[0])
    assert "sampled at temperature 0.8" in _text(lab.out.outputs[2])
    assert list(result.samples) == [0.8] and len(result.samples[0.8]) == 160
    assert lab.progress_bar.value == 1.0 and lab.status == "done" and not result.stopped


def test_temperature_slider_resamples_the_trained_model(no_thread_leak):
    lab = RNNLab(steps=20, hidden=8, cell="gru")
    lab.temperature_slider.value = 1.5               # before any run: nothing to sample
    assert lab.out.outputs == ()
    result = lab.run()
    before = len(lab.out.outputs)
    lab.temperature_slider.value = 0.0
    assert len(lab.out.outputs) == before + 1
    assert "sampled at temperature 0:" in _text(lab.out.outputs[-1])
    assert set(result.samples) == {1.5, 0.0}
    # greedy sampling is deterministic
    assert result.sample(0.0) == result.samples[0.0]


def test_adding_run_and_task_defaults(no_thread_leak):
    lab = RNNLab()
    lab.task_dropdown.value = "adding"
    assert (lab.seq_len_slider.value, lab.hidden_slider.value,
            lab.steps_slider.value) == DEFAULTS["adding"]
    lab.steps_slider.value, lab.seq_len_slider.value, lab.cell_buttons.value = 20, 10, "rnn"
    result = lab.run()
    assert result.task == "adding" and len(result.losses) == len(result.step_times) == 20
    summary = result.summary()
    assert "RNN(32) on the adding problem" in summary and "test MSE" in summary
    assert 0.1 < result.baseline < 0.25 and np.isfinite(result.metric)
    assert result.num_params == 32 * (2 + 32 + 2) + 33 and not result.stopped
    assert _kinds(lab) == ["text", "figure"]
    lab.temperature_slider.value = 0.3               # no character model: nothing happens
    assert len(lab.out.outputs) == 2
    with pytest.raises(ValueError, match="character model"):
        result.sample(1.0)


def _stop_after_a_step(lab):
    lab.run(wait=False)
    deadline = time.monotonic() + 30
    while not lab.status.startswith("step") and time.monotonic() < deadline:
        time.sleep(0.01)
    lab.stop()
    assert not lab.running and lab.status == "stopped" and lab.error is None
    return lab.result


@pytest.mark.parametrize("task", ["chars", "adding"])
def test_stop_ends_a_long_run_and_shows_what_it_trained(task, no_thread_leak):
    lab = RNNLab(task=task, steps=3000)
    result = _stop_after_a_step(lab)
    assert result.stopped and 0 < len(result.losses) < 3000
    assert f"stopped after {len(result.losses)} of 3000 steps" in result.summary()
    assert _kinds(lab)[:2] == ["text", "figure"]


@pytest.mark.parametrize("task", ["chars", "adding"])
def test_stop_before_the_first_step_is_no_result(task, no_thread_leak):
    lab = RNNLab(task=task, steps=3000)
    lab.cancel.set()                 # Stop pressed before training began: nothing to show
    with pytest.raises(Stopped):
        lab.experiment(lambda *_: None)


def test_bad_task_and_sample_description():
    with pytest.raises(ValueError, match="task"):
        RNNLab(task="images")
    text = describe_sample("1+1=2\n2+2=5\n", 0.5)
    assert text.startswith("sampled at temperature 0.5: 100% of 2 lines well formed, 50%")
