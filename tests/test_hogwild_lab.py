"""HogwildLab driven from code: three runs, a table, a figure, Stop, no thread left."""

import threading
import time

import matplotlib
import numpy as np
import pytest
import traitlets

matplotlib.use("Agg")

from mtlearn import tasks
from mtlearn.widgets import HogwildLab, HogwildLabResult
from mtlearn.widgets.hogwild_lab import MODELS, RUNS


def _texts(lab):
    return "\n".join(o["data"]["text/plain"] for o in lab.out.outputs
                     if "text/html" in o["data"])


def test_run_shows_table_and_figure(no_thread_leak):
    lab = HogwildLab(epochs=1, batch_size=64)
    result = lab.run()
    assert isinstance(result, HogwildLabResult)
    assert ["text/html" in o["data"] for o in lab.out.outputs] == [True, False]
    assert "image/png" in lab.out.outputs[1]["data"]
    text = _texts(lab)
    assert "ms/step" in text and "staleness" in text and result.table() in text
    assert all(name in text for name in RUNS)
    assert lab.progress_bar.value == 1.0 and lab.status == "done"
    assert list(result.histories) == list(RUNS) == ["lock-free", "locked", "sync"]
    steps = 1600 // 64                                   # 1,600 training images
    for name, h in result.histories.items():
        assert h.steps == steps == len(h.step_times)
        assert 0 <= result.val_accuracy[name] <= 1 and np.isfinite(result.val_loss[name])
        assert result.ms_per_step(name) > 0
    for name in ("lock-free", "locked"):
        info = result.histories[name].info
        assert len(info["staleness"]) == steps and min(info["staleness"]) >= 0
        assert sum(info["updates_per_thread"]) == steps and info["lock"] == (name == "locked")
    assert "staleness" not in result.histories["sync"].info


def test_controls_reach_the_runs(no_thread_leak):
    lab = HogwildLab()
    lab.model_dropdown.value = "cnn"
    lab.threads_slider.value = 1
    lab.momentum_slider.value = 0.0
    lab.epochs_slider.value = 1
    lab.batch_size_dropdown.value = 128
    result = lab.run()
    assert (result.model, result.threads, result.momentum, result.batch_size) == ("cnn", 1, 0, 128)
    assert result.steps == 1600 // 128
    assert "course CNN" in _texts(lab) and "momentum 0" in _texts(lab)
    # One worker: Hogwild is serial training, bit for bit, and nothing is ever stale.
    lock_free, locked = result.histories["lock-free"], result.histories["locked"]
    assert lock_free.losses == locked.losses
    assert set(lock_free.info["staleness"]) == {0}
    np.testing.assert_allclose(lock_free.losses, result.histories["sync"].losses, rtol=1e-5)


def test_models_are_the_tasks_of_the_same_name():
    for name in MODELS:
        assert name in tasks.TASKS
        assert name in [value for _, value in HogwildLab().model_dropdown.options]
    lab = HogwildLab(model="mlp", threads=1, epochs=1, batch_size=128)
    result = lab.run()
    h = result.histories["sync"]
    assert h.config["batch_size"] == 128 and h.steps == 1600 // 128


def test_bad_values_are_clamped_or_refused():
    lab = HogwildLab()
    lab.threads_slider.value = 0
    assert lab.threads_slider.value == 1
    lab.momentum_slider.value = 2.0
    assert lab.momentum_slider.value < 1
    lab.lr_slider.value = 0
    assert lab.lr_slider.value > 0
    for control, bad in ((lab.model_dropdown, "no-such-model"), (lab.batch_size_dropdown, 7)):
        with pytest.raises(traitlets.TraitError):
            control.value = bad


def test_stop_cancels_the_run_in_progress(no_thread_leak):
    lab = HogwildLab(model="cnn", epochs=20, batch_size=16)   # about 20 s if not stopped
    lab.run(wait=False)
    deadline = time.monotonic() + 30
    while not lab.status.startswith("training") and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)                               # well inside the first run
    t0 = time.monotonic()
    lab.stop_button.click()
    assert time.monotonic() - t0 < 5              # cancelled at the next step, not finished
    assert not lab.running and lab.status == "stopped"
    assert lab.result is None and lab.error is None and lab.out.outputs == ()
    assert not [t for t in threading.enumerate() if t.name.startswith("hogwild")]
