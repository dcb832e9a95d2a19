"""Training figures: they draw plain data, label their axes and refuse what they cannot draw."""

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from matplotlib.figure import Figure  # noqa: E402

from mtlearn import viz  # noqa: E402


def test_moving_average():
    np.testing.assert_allclose(viz.moving_average([1, 2, 3, 4], 2), [1, 1.5, 2.5, 3.5])
    np.testing.assert_allclose(viz.moving_average([1, 2, 3], 1), [1, 2, 3])


def test_loss_curve_steps_or_wall_clock_and_overlays():
    losses = np.linspace(2, 0.1, 100)
    fig = viz.loss_curve(losses)
    ax = fig.axes[0]
    assert isinstance(fig, Figure) and ax.get_xlabel() == "optimizer step"
    assert ax.get_yscale() == "log" and "loss" in ax.get_ylabel()
    viz.loss_curve(losses * 2, times=np.arange(100) * 0.01, label="other", ax=ax)
    assert ax.get_xlabel() == "wall-clock time (s)" and len(ax.get_legend().texts) == 2
    with pytest.raises(ValueError, match="one entry per loss"):
        viz.loss_curve(losses, times=[1, 2])


def test_diverged_losses_leave_a_gap():
    fig = viz.loss_curve([1.0, 0.5, np.inf, np.nan], smooth=1)
    assert fig.axes[0].get_yscale() == "log"


def test_training_curves_and_accuracy():
    fig = viz.training_curves([1.0, 0.5, 0.2], [0.5, 0.9], chance=0.25, title="run")
    loss_ax, acc_ax = fig.axes
    assert acc_ax.get_ylabel() == "accuracy (%)" and acc_ax.get_xlabel() == "epoch"
    assert len(viz.training_curves([1.0, 0.5]).axes) == 1


def test_timing_bars_median_and_ratio():
    fig = viz.timing_bars({"slow": [1.0, 1.2, 1.1], "fast": 0.01})
    ax = fig.axes[0]
    notes = [t.get_text() for t in ax.texts]
    assert notes[0] == "1.1 s" and "110x faster" in notes[1]
    assert ax.get_yscale() == "log" and ax.get_ylabel() == "time per call (s, log scale)"
    with pytest.raises(ValueError, match="baseline"):
        viz.timing_bars({"a": 1.0}, baseline="b")
    with pytest.raises(ValueError, match="> 0"):
        viz.timing_bars({"a": 0.0})


def test_image_and_filter_grids(rng):
    images = rng.random((10, 1, 8, 8))
    labels = np.arange(10) % 3
    fig = viz.image_grid(images, labels, predictions=labels[::-1], class_names="abc",
                         ncols=5, title="samples")
    titles = [ax.get_title() for ax in fig.axes if ax.images]
    assert len(titles) == 10 and titles[:2] == ["a", "c\n(true: b)"]
    assert len(viz.filter_grid(rng.standard_normal((8, 1, 3, 3))).axes) == 8 + 1  # + colorbar
    assert len(viz.filter_grid(rng.standard_normal((4, 2, 3, 3))).axes) == 8 + 1
    assert len(viz.feature_maps(rng.random((3, 5, 5))).axes) == 3
    with pytest.raises(ValueError, match="shape"):
        viz.image_grid(rng.random((2, 2, 8, 8)))
    with pytest.raises(ValueError, match="shape"):
        viz.filter_grid(rng.random((3, 3)))
