"""CNNLab driven from code, as a learner would drive it: controls, Run, Stop, output."""

import threading
import time

import matplotlib
import pytest
import traitlets

matplotlib.use("Agg")

from mtlearn.widgets import CNNLab, CNNLabResult  # noqa: E402
from mtlearn.widgets.cnn_lab import DEFAULT_LR  # noqa: E402


def _texts(lab):
    return "".join(o.get("text", "") for o in lab.out.outputs if o["output_type"] == "stream")


def test_run_shows_summary_and_figure(no_thread_leak):
    lab = CNNLab(epochs=1)
    result = lab.run()
    assert isinstance(result, CNNLabResult)
    assert [o["output_type"] for o in lab.out.outputs] == ["stream", "display_data"]
    assert "shapes: validation accuracy" in _texts(lab) and "ms/step" in _texts(lab)
    assert "image/png" in lab.out.outputs[1]["data"]
    assert lab.progress.value == 1.0 and lab.status.value == "done"
    assert len(result.losses) == len(result.step_times) == 50     # 1,600 images / 32
    assert result.step_times == sorted(result.step_times)
    assert len(result.val_accuracy) == 1 and 0 <= result.final_accuracy <= 1
    assert result.num_classes == 4 and not result.diverged


def test_controls_reach_the_model(no_thread_leak):
    lab = CNNLab()
    lab.dataset.value = "digits"
    lab.optimizer.value = "adam"
    lab.filters.value = 4
    lab.epochs.value = 2
    lab.batch_size.value = 64
    result = lab.run()
    assert (result.dataset, result.optimizer, result.filters) == ("digits", "adam", 4)
    assert result.lr == pytest.approx(DEFAULT_LR["adam"])
    assert result.num_classes == 10 and len(result.val_accuracy) == 2
    # course_cnn(image_size=8, channels=(4, 8)): conv 4*9+4, conv 8*4*9+8, dense 8*2*2*10+10
    assert result.num_params == 40 + 296 + 330
    assert len(result.losses) == 2 * 23                               # 1,438 images / 64
    assert "digits: validation accuracy" in _texts(lab)


def test_choosing_an_optimizer_selects_its_learning_rate():
    lab = CNNLab()
    assert lab.lr.value == pytest.approx(DEFAULT_LR["sgd"])
    lab.optimizer.value = "adam"
    assert lab.lr.value == pytest.approx(DEFAULT_LR["adam"])
    lab.lr.value = 0.01                      # the learner may still change it afterwards
    assert lab.lr.value == pytest.approx(0.01)
    assert CNNLab(optimizer="adam", lr=0.02).lr.value == pytest.approx(0.02)


def test_bad_values_are_clamped_or_refused():
    lab = CNNLab()
    lab.epochs.value = 0
    assert lab.epochs.value == 1
    lab.epochs.value = 10_000
    assert lab.epochs.value == lab.epochs.max
    lab.lr.value = 0
    assert lab.lr.value > 0
    lab.lr.value = 50
    assert lab.lr.value <= 1
    lab.blas_threads.value = 0
    assert lab.blas_threads.value == 1
    for control, bad in ((lab.dataset, "mnist"), (lab.optimizer, "rmsprop"),
                         (lab.filters, 5), (lab.batch_size, 0)):
        with pytest.raises(traitlets.TraitError):
            control.value = bad
    with pytest.raises(traitlets.TraitError):
        CNNLab(dataset="mnist")


def test_too_large_learning_rate_is_a_result_not_a_crash(no_thread_leak):
    lab = CNNLab(epochs=1, lr=1.0)
    result = lab.run()
    assert lab.status.value == "done"
    assert "learning rate" in result.summary.split("|")[-1]


def test_stop_ends_the_run_and_its_thread(no_thread_leak):
    lab = CNNLab(epochs=20, batch_size=16)
    lab.run_button.click()                          # as the button does: in the background
    deadline = time.monotonic() + 30
    while not lab.status.value.startswith("epoch") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert lab.running and lab.stop_button.disabled is False
    lab.stop_button.click()
    assert not lab.running and lab.status.value == "stopped"
    assert lab.result is None and lab.error is None and lab.progress.value < 1
    assert lab.out.outputs == ()
    assert not lab.run_button.disabled and lab.stop_button.disabled


def test_run_while_running_does_not_start_a_second_thread(no_thread_leak):
    lab = CNNLab(epochs=20, batch_size=16)
    lab.run(wait=False)
    try:
        workers = [t for t in threading.enumerate() if t.name == "CNNLab-run"]
        assert lab.run() is None
        assert [t for t in threading.enumerate() if t.name == "CNNLab-run"] == workers
    finally:
        lab.stop()
