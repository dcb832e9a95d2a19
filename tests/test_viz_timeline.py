"""The timeline and speedup figures draw what they are given."""

import numpy as np
import pytest

from mtlearn import nn, parallel, viz
from mtlearn.runtime.trace import Span


def test_timeline_rows_and_kinds():
    spans = [Span("main", "load", 0.0, 0.1, 0.1), Span("w-0", "compute", 0.1, 0.5, 0.4),
             Span("w-1", "compute", 0.1, 0.5, 0.05), Span("w-1", "wait", 0.5, 0.6, 0.0)]
    fig = viz.timeline(spans, title="t")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["main", "w-0", "w-1"]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[:3] == ["load", "compute", "wait"]
    # the faint bar (w-1 computing at CPU/wall 0.125) is drawn at lower alpha
    alphas = sorted({c.get_alpha() for c in ax.collections})
    assert alphas == [0.35, 0.95]
    assert viz.timeline(spans, show_cpu=False, kinds=["compute"]).axes[0].collections


def test_timeline_of_a_real_history():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((64, 4)), rng.integers(0, 2, 64)
    model = nn.Sequential(nn.Dense(4, 2), dtype=np.float64)
    h = parallel.train(model, nn.SoftmaxCrossEntropy(), (X, y), strategy="sync", threads=2,
                       batch_size=16)
    fig = viz.timeline(h.trace)
    rows = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert {"sync-0", "sync-1"} <= set(rows)


def test_speedup_curve_with_amdahl():
    fig = viz.speedup_curve([1, 2, 4], [1.0, 1.8, 3.1], serial_fraction=0.1)
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert labels == ["ideal", "measured", "Amdahl, s = 0.10"]
    np.testing.assert_allclose(viz.amdahl_speedup([1, 2], 0.0), [1, 2])
    np.testing.assert_allclose(viz.amdahl_speedup(4, 1.0), 1.0)
    viz.speedup_curve([1, 2], [1, 1.1], ax=fig.axes[0], label="other")
    assert [ln.get_label() for ln in fig.axes[0].get_lines()].count("ideal") == 1
    with pytest.raises(ValueError, match="same length"):
        viz.speedup_curve([1, 2], [1.0])
