"""StrategyLab driven from code: every strategy runs, the output has the summary and the
figures, the sweep fits Amdahl, Stop stops, and no thread is left behind."""

import math

import matplotlib
import pytest
import traitlets

matplotlib.use("Agg")

from mtlearn import parallel
from mtlearn.experiments import (
    Scaling,
    max_relative_difference,
    measure_scaling,
    seconds_per_step,
)
from mtlearn.widgets import StrategyLab, StrategyLabResult

SMALL = dict(epochs=1, batch_size=64, samples=256)      # 4 steps of 64 images


def _texts(lab):
    return "\n".join(o["data"]["text/plain"] for o in lab.out.outputs
                     if "text/html" in o["data"])


def _pngs(lab):
    return [o for o in lab.out.outputs
            if o["output_type"] == "display_data" and "image/png" in o["data"]]


def test_default_run_shows_summary_timeline_and_bars(no_thread_leak):
    lab = StrategyLab(**SMALL)
    result = lab.run()
    assert isinstance(result, StrategyLabResult)
    assert (result.model, result.strategy, result.threads) == ("cnn", "sync", 2)
    assert "text/html" in lab.out.outputs[0]["data"] and len(lab.out.outputs) == 4
    assert len(_pngs(lab)) == 3
    text = _texts(lab)
    assert "serial:" in text and "sync on 2 threads" in text and "ms/step" in text
    assert text == result.summary()
    assert lab.progress_bar.value == 1.0 and lab.status == "done"
    assert result.serial.steps == result.history.steps == 4
    assert list(result.runs) == [2] and result.serial_fraction is None
    # sync is the serial computation: same batches, same start, same losses (float32 rounding)
    assert max_relative_difference(result.serial.losses, result.history.losses) < 1e-4
    assert result.speedup[2] > 0 and math.isfinite(result.speedup[2])
    assert {s.kind for s in result.history.trace} >= {"compute", "wait", "reduce", "update"}
    # the thread that called train is the timeline's row "main", first; then the workers
    rows = [t.get_text() for t in result.timeline_figure().axes[0].get_yticklabels()]
    assert rows == ["main", "sync-0", "sync-1"]


@pytest.mark.parametrize("strategy", list(parallel.STRATEGIES))
def test_every_strategy_runs(strategy, no_thread_leak):
    lab = StrategyLab(strategy=strategy, **SMALL)
    result = lab.run()
    h = result.history
    assert h.strategy == strategy and result.serial.steps == 4
    if strategy == "hogwild":     # asynchronous: may be timed over a longer run of updates
        assert h.steps >= 4
    else:
        assert h.steps == 4
    assert all(math.isfinite(v) for v in h.losses)
    assert len(_pngs(lab)) == 3 and f"{strategy} on " in _texts(lab)
    expected = 1 if strategy == "serial" else 2
    assert result.threads == expected and list(result.runs) == [expected]
    if strategy in ("sync", "asyncio", "process", "pipeline", "tensor"):
        assert max_relative_difference(result.serial.losses, h.losses) < 1e-4


def test_sweep_draws_the_speedup_curve_with_an_amdahl_fit(no_thread_leak):
    lab = StrategyLab(threads=3, sweep=True, **SMALL)
    result = lab.run()
    assert sorted(result.runs) == [1, 2, 3]
    assert set(result.speedup) == {1, 2, 3}
    if result.scaling.cores >= 2:                # the fit uses counts up to the core count
        assert 0.0 <= result.serial_fraction <= 1.0
        assert "Amdahl fit up to" in _texts(lab)
    assert "speedup over serial by threads" in _texts(lab)
    assert len(_pngs(lab)) == 3


def test_lstm_model_on_the_adding_problem(no_thread_leak):
    lab = StrategyLab(model="lstm", strategy="tensor", **SMALL)
    result = lab.run()
    assert result.model == "lstm" and result.num_params == 4 * 32 * (2 + 32 + 2) + 33
    assert "LSTM(2 -> 32)" in _texts(lab)
    assert result.history.info["worker0_layers"] == [0, 1]      # LSTM and LastStep unsplit
    assert result.serial.losses[-1] < result.serial.losses[0]


def test_wide_mlp_splits_its_dense_layers(no_thread_leak):
    lab = StrategyLab(model="wide", strategy="tensor", **SMALL)
    result = lab.run()
    assert result.num_params == 784 * 1024 + 1024 + 1024 * 1024 + 1024 + 1024 * 4 + 4
    assert [d["layer"] for d in result.history.info["split_layers"]] == [1, 3, 5]
    assert max_relative_difference(result.serial.losses, result.history.losses) < 1e-4


def test_measure_scaling_takes_medians_and_fits_amdahl(no_thread_leak):
    reports = []
    sc = measure_scaling("cnn", "sync", [1, 2], batch_size=64, repeats=2, samples=256,
                         report=lambda f, text: reports.append((f, text)))
    assert isinstance(sc, Scaling) and sc.threads == [1, 2] and sc.repeats == 2
    assert all(lo <= m <= hi for lo, m, hi in zip(sc.seconds_min, sc.seconds, sc.seconds_max,
                                                    strict=True))
    assert sc.serial_min <= sc.serial_seconds <= sc.serial_max
    assert len(sc.speedup) == len(sc.efficiency) == 2
    assert sc.efficiency[1] == pytest.approx(sc.speedup[1] / 2)
    s = sc.serial_fraction(max_threads=2)
    assert 0.0 <= s <= 1.0
    assert sc.serial_fraction(max_threads=1) is None
    assert "ms/step" in sc.table() and "sync threads" in sc.table()
    assert len(reports) == 1 + 2 * 3 and [f for f, _ in reports] == sorted(f for f, _ in reports)
    assert len(sc.figure().axes) == 1
    with pytest.raises(ValueError, match="threads"):
        measure_scaling("cnn", "sync", [])
    with pytest.raises(ValueError, match="model"):
        measure_scaling("no-such-model", "sync", [1])
    with pytest.raises(ValueError, match="strategy"):
        measure_scaling("cnn", "magic", [1])


def test_controls_reach_the_run(no_thread_leak):
    lab = StrategyLab(**SMALL)
    lab.strategy_dropdown.value = "pipeline"
    lab.threads_slider.value = 3
    lab.batch_size_dropdown.value = 32
    lab.epochs_slider.value = 2
    result = lab.run()
    assert (result.strategy, result.threads, result.batch_size) == ("pipeline", 3, 32)
    assert result.history.steps == 2 * 256 // 32
    assert result.history.info["stages"] == 3
    assert "process on" not in _texts(lab)


def test_seconds_per_step_leaves_out_the_first_step():
    h = parallel.History("serial", 1, losses=[1.0, 1.0, 1.0], step_times=[0.5, 0.6, 0.7],
                         wall_time=0.7)
    assert seconds_per_step(h) == pytest.approx(0.1)
    one = parallel.History("serial", 1, losses=[1.0], step_times=[0.3], wall_time=0.3)
    assert seconds_per_step(one) == pytest.approx(0.3)


def test_stop_stops_between_runs(no_thread_leak):
    lab = StrategyLab(threads=4, sweep=True, **SMALL)
    lab.run(wait=False)
    lab.stop()                                   # waits for the worker thread
    assert not lab.running and lab.status in ("stopped", "done")
    assert lab.error is None


def test_bad_values_are_clamped_or_refused():
    lab = StrategyLab()
    lab.threads_slider.value = 0
    assert lab.threads_slider.value == 1
    lab.threads_slider.value = 10_000
    assert lab.threads_slider.value == lab.threads_slider.max >= 4
    lab.epochs_slider.value = 0
    assert lab.epochs_slider.value == 1
    for control, bad in ((lab.model_dropdown, "no-such-model"), (lab.strategy_dropdown, "magic"),
                         (lab.batch_size_dropdown, 100)):
        with pytest.raises(traitlets.TraitError):
            control.value = bad
    with pytest.raises(traitlets.TraitError):
        StrategyLab(strategy="magic")
