"""History.breakdown() and viz.xray: where each thread's time went, and the figure of it.

The real runs check what must hold on any machine, loaded or not: every part >= 0, the
parts add up to the run's wall time, the compute parts are the compute spans. No test
asserts how the time divides (that depends on the cores and the load).
"""

import io

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from mtlearn import nn, parallel, tasks, viz
from mtlearn.experiments import measure_scaling, seconds_per_step, seconds_per_update
from mtlearn.parallel import History
from mtlearn.runtime.trace import Span
from mtlearn.viz.xray import PARTS, worker_breakdown

PNG = b"\x89PNG\r\n\x1a\n"
COMPUTE = ("compute", "forward", "backward")


def run(strategy, threads, trace=True, batch=64, n=256):
    t = tasks.get("cnn", n=n, val_fraction=0)
    return parallel.train(t.model(), t.loss, t.data, strategy=strategy, threads=threads,
                          batch_size=batch, lr=0.05, trace=trace)


@pytest.fixture(scope="module")
def sync_runs():
    """sync on 1 and 2 threads, course CNN, 4 steps of 64 images."""
    return {n: run("sync", n) for n in (1, 2)}


# ---------------------------------------------------------------------------- breakdown


@pytest.mark.parametrize("n", [1, 2])
def test_parts_add_up_to_the_wall_time_of_real_sync_runs(sync_runs, n):
    h = sync_runs[n]
    parts = h.breakdown()
    assert set(parts) == {s.thread for s in h.trace}
    assert {f"sync-{k}" for k in range(n)} <= set(parts)
    for thread, p in parts.items():
        assert list(p) == list(PARTS)
        assert all(v >= 0 for v in p.values()), (thread, p)
        assert sum(p.values()) == pytest.approx(h.wall_time, rel=0.05), thread
        spans = [s for s in h.trace if s.thread == thread]
        compute = sum(s.end - s.start for s in spans if s.kind in COMPUTE)
        assert p["compute_cpu"] + p["compute_wait"] == pytest.approx(compute, rel=1e-9,
                                                                      abs=1e-12)
        assert p["compute_cpu"] <= sum(s.cpu for s in spans if s.kind in COMPUTE) + 1e-9
        for kind in ("wait", "reduce", "update", "load"):
            assert p[kind] == pytest.approx(sum(s.end - s.start for s in spans
                                                if s.kind == kind), abs=1e-9)
    for k in range(n):
        worker = parts[f"sync-{k}"]
        assert worker["compute_cpu"] > 0 and worker["reduce"] > 0 and worker["update"] > 0
        assert worker["wait"] > 0                       # the barriers, every step
    assert parts["MainThread"]["load"] > 0              # the main thread hands out batches


def test_a_window_leaves_out_the_start(sync_runs):
    h = sync_runs[2]
    t0, t1 = h.step_times[0], h.step_times[-1]
    for p in h.breakdown((t0, t1)).values():
        assert all(v >= 0 for v in p.values())
        assert sum(p.values()) == pytest.approx(t1 - t0, rel=1e-9)
    # the per-worker mean over that window, per step, is the measured time per step
    assert sum(worker_breakdown(h).values()) == pytest.approx(seconds_per_step(h), rel=1e-9)


def test_breakdown_of_made_up_spans_clips_overlaps_and_other_kinds():
    h = History("made-up", 1, losses=[1.0, 1.0], step_times=[0.5, 1.0], wall_time=1.0,
                trace=[Span("w", "compute", 0.1, 0.5, 0.3),     # 0.3 s ran, 0.1 s waited
                       Span("w", "wait", 0.4, 0.6, 0.0),        # overlaps: 0.1 s counted
                       Span("w", "io", 0.6, 0.7, 0.0),          # another kind: other
                       Span("w", "update", 0.7, 0.8, 0.1),
                       Span("w", "backward", 0.9, 1.3, 0.4),    # past the end: 0.1 s of 0.4
                       Span("m", "load", -0.1, 0.1, 0.0),       # before the start: 0.1 s
                       Span("c", "forward", 0.0, 0.2, 0.25)])   # CPU > wall (clock steps)
    p = h.breakdown()
    assert list(p) == ["w", "m", "c"]                     # in the order of the trace
    assert p["w"] == pytest.approx({"compute_cpu": 0.3 + 0.1, "compute_wait": 0.1,
                                    "wait": 0.1, "reduce": 0.0, "update": 0.1, "load": 0.0,
                                    "other": 0.3})       # io 0.1 + gaps 0-0.1 and 0.8-0.9
    assert p["m"] == pytest.approx({**dict.fromkeys(PARTS, 0.0), "load": 0.1, "other": 0.9})
    assert p["c"] == pytest.approx({**dict.fromkeys(PARTS, 0.0), "compute_cpu": 0.2,
                                    "other": 0.8})
    w = h.breakdown(window=(0.5, 1.0))["w"]
    assert w == pytest.approx({"compute_cpu": 0.1, "compute_wait": 0.0, "wait": 0.1,
                               "reduce": 0.0, "update": 0.1, "load": 0.0, "other": 0.2})
    assert History("empty", 1, wall_time=1.0).breakdown() == {}


# ---------------------------------------------------------------------------- the figure


@pytest.fixture(scope="module")
def scaling():
    return measure_scaling("cnn", "sync", [1, 2, 3], batch_size=64, repeats=1, samples=256)


def test_xray_draws_bars_per_count_and_the_fits(scaling, no_thread_leak):
    fig = viz.xray(scaling, title="sync")
    bars, speed = fig.axes
    assert [t.get_text() for t in bars.get_xticklabels()] == ["serial", "1", "2", "3"]
    assert len(bars.containers) == len(PARTS)              # one stacked series per part
    assert all(len(c) == 4 for c in bars.containers)
    heights = np.sum([[r.get_height() for r in c] for c in bars.containers], axis=0)
    per_step = [seconds_per_step(scaling.serial)] + [
        seconds_per_step(scaling.histories[n]) for n in scaling.threads]
    assert heights == pytest.approx(1e3 * np.array(per_step), rel=1e-6)   # ms per step
    labels = [line.get_label() for line in speed.get_lines()]
    assert "measured, over serial" in labels and "ideal" in labels
    assert any(label.startswith("Amdahl, s = ") for label in labels)
    assert any(label.startswith("USL, σ = ") for label in labels)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    assert buf.getvalue().startswith(PNG) and fig._repr_png_().startswith(PNG)


def test_xray_of_asynchronous_runs_is_per_update(no_thread_leak):
    hog = measure_scaling("cnn", "hogwild", [2], batch_size=32, repeats=1, samples=128)
    fig = viz.xray(hog)
    assert "per update" in fig.axes[0].get_title()
    h = hog.histories[2]
    assert sum(worker_breakdown(h, 2).values()) == pytest.approx(seconds_per_update(h, 2),
                                                                 rel=1e-9)


def test_xray_of_a_mapping_without_speedups_has_one_panel(sync_runs):
    fig = viz.xray(sync_runs)
    assert len(fig.axes) == 1
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["1", "2"]


def test_xray_refuses_what_it_cannot_draw(sync_runs):
    with pytest.raises(TypeError, match="xray"):
        viz.xray([sync_runs[1]])
    with pytest.raises(ValueError, match="no runs"):
        viz.xray({})
    with pytest.raises(ValueError, match="speedups"):
        viz.xray(sync_runs, speedup=[1.0])
    untraced = run("sync", 2, trace=False)
    with pytest.raises(ValueError, match="trace=True"):
        viz.xray({2: untraced})


def test_a_model_of_my_own_works_too():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(64, 1, 4, 4)), rng.integers(0, 2, 64)
    model = nn.Sequential(nn.Flatten(), nn.Dense(16, 2), seed=0, dtype=np.float64)
    h = parallel.train(model, nn.SoftmaxCrossEntropy(), (X, y), strategy="sync", threads=2,
                       batch_size=16)
    for p in h.breakdown().values():
        assert sum(p.values()) == pytest.approx(h.wall_time, rel=0.05)
