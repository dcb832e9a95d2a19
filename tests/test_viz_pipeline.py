"""The pipeline and staleness figures draw what they are given."""

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from mtlearn import viz  # noqa: E402


def test_bubble_theory():
    assert viz.bubble_theory(1, 8) == 0
    assert viz.bubble_theory(4, 1) == pytest.approx(0.75)
    np.testing.assert_allclose(viz.bubble_theory(2, [1, 4, 16]), [1 / 2, 1 / 5, 1 / 17])


def test_schedule_chart_rows_boxes_and_labels():
    ops = [(0, "F", 0, 0, 1), (1, "F", 0, 1, 2), (1, "B", 0, 2, 4), (0, "B", 0, 4, 6)]
    fig = viz.schedule_chart(ops, title="s", time_label="time (units)")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["stage 0", "stage 1"]
    assert sorted(t.get_text() for t in ax.texts) == ["B0", "B0", "F0", "F0"]
    assert ax.get_xlim() == (0, 6) and ax.get_xlabel() == "time (units)"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["forward", "backward", "idle (bubble)"]
    assert not viz.schedule_chart(ops, labels=False).axes[0].texts
    many = [(0, "F", i, i, i + 1) for i in range(50)]
    assert not viz.schedule_chart(many).axes[0].texts          # too many boxes to label
    with pytest.raises(ValueError, match="no operations"):
        viz.schedule_chart([])
    with pytest.raises(ValueError, match="op"):
        viz.schedule_chart([(0, "X", 0, 0, 1)])


def test_bubble_curve_theory_and_measured_points():
    fig = viz.bubble_curve(2, {1: 0.5, 4: [0.2, 0.25, 0.3]})
    ax = fig.axes[0]
    theory = [ln for ln in ax.get_lines() if ln.get_label().startswith("theory")]
    assert len(theory) == 1
    x, y = theory[0].get_data()
    assert x[0] == 1 and x[-1] == 16
    np.testing.assert_allclose(y, 100 / (x + 1))
    viz.bubble_curve(4, ax=ax, max_micro_batches=16)          # overlay another K
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "theory (K-1)/(M+K-1), K = 4" in labels and "measured, K = 2" in labels
    with pytest.raises(ValueError, match="stages"):
        viz.bubble_curve(0)


def test_peak_live_bars():
    fig = viz.peak_live_bars({"gpipe": [8, 8, 8], "1f1b": [3, 2, 1]}, micro_batches=8)
    ax = fig.axes[0]
    heights = [p.get_height() for p in ax.patches]
    assert heights == [8, 8, 8, 3, 2, 1]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["stage 0", "stage 1", "stage 2"]
    with pytest.raises(ValueError, match="one value per stage"):
        viz.peak_live_bars({"a": [1, 2], "b": [1]})
    with pytest.raises(ValueError, match="nothing"):
        viz.peak_live_bars({})


def test_staleness_histogram_shares_add_up():
    fig = viz.staleness_histogram({"lock-free": [0, 1, 1, 2], "locked": [0, 0, 1, 1]},
                                  colors=["#C44E52", None])
    ax = fig.axes[0]
    heights = [p.get_height() for p in ax.patches]
    assert heights == [25, 50, 25, 50, 50, 0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["lock-free, mean 1.00", "locked, mean 0.50"]
    with pytest.raises(ValueError, match="nothing"):
        viz.staleness_histogram({})
