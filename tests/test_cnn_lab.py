"""CNNLab driven from code, as a learner would drive it: controls, Run, Stop, output."""

import threading
import time

import matplotlib
import pytest
import traitlets

matplotlib.use("Agg")

from mtlearn.widgets import CNNLab, CNNLabResult
from mtlearn.widgets.cnn_lab import DEFAULT_LR


def _texts(lab):
    """Everything the lab wrote as text (summaries are <pre> HTML with a text/plain copy)."""
    return "\n".join(o["data"]["text/plain"] for o in lab.out.outputs
                     if o["output_type"] == "display_data" and "text/html" in o["data"])


def _kinds(lab):
    return ["text" if "text/html" in o.get("data", {}) else
            "figure" if "image/png" in o.get("data", {}) else o["output_type"]
            for o in lab.out.outputs]


def test_run_shows_summary_and_figure(no_thread_leak):
    lab = CNNLab(epochs=1)
    result = lab.run()
    assert isinstance(result, CNNLabResult)
    assert _kinds(lab) == ["text", "figure"]
    assert "shapes: validation accuracy" in _texts(lab) and "ms/step" in _texts(lab)
    assert lab.progress_bar.value == 1.0 and lab.status == "done"
    assert len(result.losses) == len(result.step_times) == 50     # 1,600 images / 32
    assert result.total_steps == 50 and not result.stopped
    assert result.step_times == sorted(result.step_times)
    assert len(result.val_accuracy) == 1 and 0 <= result.final_accuracy <= 1
    assert result.num_classes == 4 and not result.diverged


def test_controls_reach_the_model(no_thread_leak):
    lab = CNNLab()
    lab.dataset_dropdown.value = "digits"
    lab.optimizer_dropdown.value = "adam"
    lab.filters_buttons.value = 4
    lab.epochs_slider.value = 2
    lab.batch_size_dropdown.value = 64
    lab.blas_threads_slider.value = 2
    result = lab.run()
    assert (result.dataset, result.optimizer, result.filters) == ("digits", "adam", 4)
    assert result.lr == pytest.approx(DEFAULT_LR["adam"])
    assert result.num_classes == 10 and len(result.val_accuracy) == 2
    # course_cnn(image_size=8, channels=(4, 8)): conv 4*9+4, conv 8*4*9+8, dense 8*2*2*10+10
    assert result.num_params == 40 + 296 + 330
    assert len(result.losses) == 2 * 22          # 1,438 images / 64, the partial batch dropped
    assert "digits: validation accuracy" in _texts(lab) and "BLAS 2 threads" in _texts(lab)


def test_choosing_an_optimizer_selects_its_learning_rate():
    lab = CNNLab()
    assert lab.lr_slider.value == pytest.approx(DEFAULT_LR["sgd"])
    lab.optimizer_dropdown.value = "adam"
    assert lab.lr_slider.value == pytest.approx(DEFAULT_LR["adam"])
    lab.lr_slider.value = 0.01                      # the learner may still change it afterwards
    assert lab.lr_slider.value == pytest.approx(0.01)
    assert CNNLab(optimizer="adam", lr=0.02).lr_slider.value == pytest.approx(0.02)


def test_bad_values_are_clamped_or_refused():
    lab = CNNLab()
    lab.epochs_slider.value = 0
    assert lab.epochs_slider.value == 1
    lab.epochs_slider.value = 10_000
    assert lab.epochs_slider.value == lab.epochs_slider.max
    lab.lr_slider.value = 0
    assert lab.lr_slider.value > 0
    lab.lr_slider.value = 50
    assert lab.lr_slider.value <= 1
    lab.blas_threads_slider.value = 0
    assert lab.blas_threads_slider.value == 1
    for control, bad in ((lab.dataset_dropdown, "mnist"), (lab.optimizer_dropdown, "rmsprop"),
                         (lab.filters_buttons, 5), (lab.batch_size_dropdown, 0)):
        with pytest.raises(traitlets.TraitError):
            control.value = bad
    with pytest.raises(traitlets.TraitError):
        CNNLab(dataset="mnist")


def test_too_large_learning_rate_is_a_result_not_a_crash(no_thread_leak):
    lab = CNNLab(epochs=1, lr=1.0)
    result = lab.run()
    assert lab.status == "done"
    assert "learning rate" in result.summary().splitlines()[-1]


def test_stop_ends_the_run_and_shows_what_it_trained(no_thread_leak):
    lab = CNNLab(epochs=20, batch_size=16)          # 2,000 steps if not stopped
    lab.run_button.click()                          # as the button does: in the background
    deadline = time.monotonic() + 30
    while not lab.status.startswith("epoch") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert lab.running and lab.stop_button.disabled is False
    lab.stop_button.click()
    assert not lab.running and lab.status == "stopped" and lab.error is None
    result = lab.result                             # a step was reported: a partial result
    assert result.stopped and 0 < len(result.losses) < result.total_steps == 2000
    assert len(result.step_times) == len(result.losses) and lab.progress_bar.value < 1
    assert _kinds(lab) == ["text", "figure"]        # the partial result draws
    assert f"stopped after {len(result.losses)} of 2000 steps" in _texts(lab)
    assert not lab.run_button.disabled and lab.stop_button.disabled


def test_a_partial_run_without_a_finished_epoch_renders():
    result = CNNLabResult("shapes", "sgd", 0.05, 8, 3, 32, 1, 4, 100, total_steps=150,
                          losses=[1.4, 1.3], step_times=[0.01, 0.02], wall_time=0.02,
                          stopped=True)
    text = result.summary()
    assert "no epoch finished" in text and "stopped after 2 of 150 steps" in text
    assert len(result.figure().axes) == 1           # loss only: no accuracy yet


def test_run_while_running_does_not_start_a_second_thread(no_thread_leak):
    lab = CNNLab(epochs=20, batch_size=16)
    lab.run(wait=False)
    try:
        workers = [t for t in threading.enumerate() if t.name == "CNNLab-run"]
        assert lab.run() is None
        assert [t for t in threading.enumerate() if t.name == "CNNLab-run"] == workers
    finally:
        lab.stop()
