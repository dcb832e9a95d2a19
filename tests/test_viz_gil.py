"""mtlearn.viz.gil: the GIL lab's figures draw the expected series, labels and marks.

Every test feeds synthetic results (as result objects or their ``to_dict()``), so nothing
is measured and nothing depends on the machine.
"""

import json
import subprocess
import sys

import matplotlib
import pytest

matplotlib.use("Agg")

from mtlearn import bench, viz
from mtlearn.runtime.trace import Span
from mtlearn.viz.style import COLORS

PNG = b"\x89PNG\r\n\x1a\n"


def scaling_result(workload="python", threads=(1, 2, 4), speedup=(1.0, 1.0, 1.0),
                   cpu_wall=None, cores=2, mode="threads", params=None) -> bench.ScalingResult:
    """A ScalingResult with made-up numbers (seconds follow from the speedups)."""
    threads, speedup = list(threads), list(speedup)
    seconds = [1.0 / S for S in speedup]
    cpu_wall = list(cpu_wall) if cpu_wall is not None else [1.0 / n for n in threads]
    return bench.ScalingResult(
        workload=workload, mode=mode, threads=threads, seconds=seconds, seconds_min=seconds,
        seconds_max=seconds, speedup=speedup,
        efficiency=[S / n for S, n in zip(speedup, threads, strict=True)],
        cpu_seconds=[c * n for c, n in zip(cpu_wall, threads, strict=True)],
        cpu_per_thread=[[c] * n for c, n in zip(cpu_wall, threads, strict=True)],
        cpu_wall=cpu_wall, walls=[[s] for s in seconds], repeats=1, work=1.0, units=1,
        params=dict(params or {}), cores=cores)


def amdahl_result(s, threads=(1, 2, 4, 8), cores=8, **kw):
    return scaling_result(threads=threads, speedup=bench.amdahl(list(threads), s),
                          cores=cores, **kw)


def labels(ax):
    return [line.get_label() for line in ax.get_lines()]


def legend_texts(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


# ---------------------------------------------------------------------------- scaling


def test_scaling_plot_one_result_ideal_measured_amdahl_and_cpu_panel():
    fig = viz.scaling_plot(amdahl_result(0.3, workload="mixed",
                                         params={"serial_fraction": 0.3}))
    speed, cpu = fig.axes
    assert labels(speed)[:2] == ["ideal", "mixed (s = 0.3)"]
    assert "Amdahl, s = 0.30" in labels(speed)               # the fit recovers s exactly
    assert speed.get_xlabel() == "threads" and speed.get_ylabel() == "speedup (x)"
    assert [t.get_text() for t in speed.get_xticklabels()] == ["1", "2", "4", "8"]
    assert "1/N: one thread at a time" in labels(cpu)
    assert "1: all running at once" in labels(cpu)
    assert "mixed (s = 0.3)" in labels(cpu)
    assert "CPU time / wall time" in cpu.get_ylabel()
    assert fig._repr_png_().startswith(PNG)


def test_scaling_plot_several_results_each_with_its_own_fit():
    results = [amdahl_result(1.0, workload="python"), amdahl_result(0.0, workload="io"),
               amdahl_result(0.5, workload="python", mode="processes")]
    fig = viz.scaling_plot(*results)
    speed = fig.axes[0]
    names = labels(speed)
    for want in ("python: s = 1.00", "io: s = 0.00", "python, processes: s = 0.50"):
        assert want in names                              # each fitted s, in its entry
    assert names.count("ideal") == 1
    fits = [ln for ln in speed.get_lines() if ln.get_label().startswith("_Amdahl fit of")]
    assert len(fits) == 3 and all(ln.get_linestyle() == ":" for ln in fits)
    measured = [ln for ln in speed.get_lines() if ": s = " in ln.get_label()]
    assert len({ln.get_color() for ln in measured}) == 3    # one colour per result
    assert {ln.get_color() for ln in fits} == {ln.get_color() for ln in measured}
    assert "dotted: Amdahl's law, fitted s" in legend_texts(speed)
    assert labels(fig.axes[1])[2:] == ["python", "io", "python, processes"]   # CPU panel
    assert viz.scaling_plot(results).axes[0].get_lines()    # a list works too


def test_scaling_plot_fits_up_to_the_cores_by_default():
    # numpy-like: 1.9x on 2 cores, no better on 4 threads. Up to the cores s is ~0.05;
    # fitted through the 4-thread point too it would be far larger.
    r = scaling_result("numpy", speedup=[1.0, 1.9, 1.9], cores=2)
    assert "Amdahl, s = 0.05" in labels(viz.scaling_plot(r).axes[0])
    every = labels(viz.scaling_plot(r, fit_upto=None).axes[0])
    assert "Amdahl, s = 0.05" not in every and any(x.startswith("Amdahl") for x in every)
    assert "2 cores" in labels(viz.scaling_plot(r).axes[0])     # where the cores run out


def test_scaling_plot_reads_dicts_like_objects():
    r = scaling_result("numpy", speedup=[1.0, 1.8, 2.6], cores=4, cpu_wall=[1, 0.95, 0.9])
    from_obj = labels(viz.scaling_plot(r).axes[0])
    from_dict = labels(viz.scaling_plot(r.to_dict()).axes[0])
    assert from_obj == from_dict
    assert any(x.startswith("Amdahl, s = ") for x in from_dict)


def test_scaling_plot_on_given_axes_and_bad_arguments():
    fig, ax = viz.style.axes()
    assert viz.scaling_plot(scaling_result(), ax=ax) is fig and len(fig.axes) == 1
    one = viz.scaling_plot(scaling_result(), cpu_panel=False)
    assert len(one.axes) == 1
    with pytest.raises(ValueError, match="at least one"):
        viz.scaling_plot()
    with pytest.raises(ValueError, match="labels"):
        viz.scaling_plot(scaling_result(), labels=["a", "b"])
    with pytest.raises(ValueError, match="'speedup'"):
        viz.scaling_plot({"threads": [1, 2]})


def test_scaling_plot_with_one_thread_count_draws_no_fit():
    fig = viz.scaling_plot(scaling_result(threads=[1], speedup=[1.0], cpu_wall=[1.0]))
    assert not any(x.startswith("Amdahl") for x in labels(fig.axes[0]))


# ---------------------------------------------------------------------------- BLAS


def oversubscription_dict(cores=2):
    py, bl = [1, 2], [1, 2, 4]
    seconds = [[0.20, 0.11, 1.5], [0.10, 0.12, 3.0]]
    flop = 2.0 * 512**3 * 16
    return {"py_threads": py, "blas_threads": bl, "seconds": seconds, "seconds_min": seconds,
            "seconds_max": seconds, "speedup": [[0.20 / s for s in row] for row in seconds],
            "gflops": [[flop / s / 1e9 for s in row] for row in seconds], "size": 512,
            "products": 16, "repeats": 1, "cores": cores}


def hatched(ax):
    return [p for p in ax.patches if p.get_hatch()]


def test_heatmap_cells_marks_and_labels():
    d = oversubscription_dict()
    fig = viz.oversubscription_heatmap(d)
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == 6 and "21\n1 thr" in texts and "1.4\n8 thr" in texts
    # 2 x 2, 1 x 4 and 2 x 4 use more threads than the 2 cores
    assert len(hatched(ax)) == 3
    outlined = [p for p in ax.patches if not p.get_hatch()]
    assert len(outlined) == 1 and outlined[0].get_xy() == pytest.approx((-0.47, 0.53))  # 2 x 1
    assert ax.get_xlabel() == "BLAS threads per Python thread"
    assert ax.get_ylabel() == "Python threads"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "4"]
    assert fig.axes[1].get_ylabel() == "GFLOP/s"                    # the colour bar
    assert "16 GEMMs of 512x512 on 2 cores" in ax.get_title()
    assert "more threads than cores (2)" in legend_texts(ax)
    assert fig._repr_png_().startswith(PNG)


def test_heatmap_by_seconds_or_speedup_and_from_a_result_object():
    d = oversubscription_dict(cores=8)
    r = bench.OversubscriptionResult.from_dict(d)
    fig = viz.oversubscription_heatmap(r, "seconds")
    assert fig.axes[1].get_ylabel() == "seconds (median)"
    assert "0.200\n1 thr" in [t.get_text() for t in fig.axes[0].texts]
    assert hatched(fig.axes[0]) == []                                 # 8 cores: none over
    fig = viz.oversubscription_heatmap(r, "speedup", title="mine")
    assert "2.00x\n2 thr" in [t.get_text() for t in fig.axes[0].texts]
    assert fig.axes[0].get_title() == "mine"
    with pytest.raises(ValueError, match="value must be one of"):
        viz.oversubscription_heatmap(r, "flops")
    with pytest.raises(ValueError, match=r"\[py\]\[blas\]"):
        viz.oversubscription_heatmap({**d, "gflops": [[1.0, 2.0]]})


# ---------------------------------------------------------------------------- convoy


def convoy_dict(gil=True):
    iv = [0.0005, 0.001, 0.005, 0.02]
    return {"switch_intervals": iv, "latency_median": [s * 1.1 for s in iv],
            "latency_p90": [s * 1.3 for s in iv], "latency_max": [s * 2 for s in iv],
            "latencies": [[s] for s in iv], "cpu_rate": [2.0e7, 2.4e7, 2.6e7, 2.6e7],
            "baseline_median": 5e-5, "baseline_p90": 8e-5, "wait": 0.001, "samples": 1,
            "cpu_threads": 1, "default_interval": 0.005, "cores": 2, "gil_enabled": gil}


def test_convoy_plot_series_baseline_and_rate_panel():
    fig = viz.convoy_plot(convoy_dict())
    lat, rate = fig.axes
    names = labels(lat)
    for want in ("one switch interval", "median, next to a CPU-bound thread",
                 "90th percentile", "alone: 0.05 ms (median)", "default interval (5 ms)"):
        assert want in names
    median = next(ln for ln in lat.get_lines() if ln.get_label().startswith("median"))
    assert list(median.get_xdata()) == pytest.approx([0.5, 1, 5, 20])     # in ms
    assert list(median.get_ydata()) == pytest.approx([0.55, 1.1, 5.5, 22])
    assert lat.get_xscale() == "log" and lat.get_yscale() == "log"
    assert "1 ms I/O task" in lat.get_ylabel()
    assert lat.get_title() == "The convoy effect (GIL on)"
    assert list(rate.get_lines()[0].get_ydata()) == pytest.approx([20, 24, 26, 26])
    assert fig._repr_png_().startswith(PNG)


def test_convoy_plot_from_a_result_object_one_panel():
    r = bench.ConvoyResult.from_dict(convoy_dict(gil=False))
    fig = viz.convoy_plot(r, rate_panel=False)
    assert len(fig.axes) == 1 and fig.axes[0].get_title().endswith("(GIL off)")


# ---------------------------------------------------------------------------- interpreters


def comparison_rows():
    rows = []
    for label, ft, speedups, one in (("3.11.7 GIL build (GIL on)", False, (1.0, 1.9, 2.0),
                                      (0.20, 0.19, 0.11)),
                                     ("3.13.5t free-threaded (GIL off)", True, (1.95, 1.9, 2.0),
                                      (0.28, 0.20, 0.11))):
        for w, s2, t1 in zip(("python", "numpy", "io"), speedups, one, strict=True):
            for n, s in ((1, 1.0), (2, s2)):
                rows.append({"python": "py", "label": label, "free_threaded": ft,
                             "gil_enabled": not ft, "workload": w, "threads": n,
                             "seconds": t1 / s, "speedup": s, "efficiency": s / n,
                             "cpu_wall": 1.0})
    return rows


def test_interpreters_plot_grouped_bars_side_by_side():
    fig = viz.interpreters_plot(comparison_rows())
    speed, single = fig.axes
    assert len(speed.patches) == 6 and len(single.patches) == 6        # 3 workloads x 2
    heights = sorted(round(p.get_height(), 2) for p in speed.patches)
    assert heights == [1.0, 1.9, 1.9, 1.95, 2.0, 2.0]
    assert {t.get_text() for t in speed.texts} >= {"1.00x", "1.95x"}
    assert [t.get_text() for t in speed.get_xticklabels()] == ["python", "numpy", "io"]
    names = legend_texts(speed)
    assert "3.11.7 GIL build (GIL on)" in names and "3.13.5t free-threaded (GIL off)" in names
    assert "ideal (2x)" in names and "no gain (1x)" in names
    assert speed.get_ylabel() == "speedup on 2 threads (x)"
    assert sorted(round(p.get_height()) for p in single.patches) == [110, 110, 190, 200, 200, 280]
    assert fig._repr_png_().startswith(PNG)


def test_interpreters_plot_takes_a_comparison_and_checks_its_input():
    class Comparison:                                   # anything with rows()
        def rows(self):
            return comparison_rows()

    fig = viz.interpreters_plot(Comparison(), threads=2, single_panel=False)
    assert len(fig.axes) == 1
    with pytest.raises(ValueError, match="no results at 4 threads"):
        viz.interpreters_plot(comparison_rows(), threads=4)
    with pytest.raises(ValueError, match="no rows"):
        viz.interpreters_plot([])
    with pytest.raises(ValueError, match="'speedup'"):
        viz.interpreters_plot([{"label": "x", "workload": "python", "threads": 1}])


# ---------------------------------------------------------------------------- shared


def test_io_spans_have_a_colour_of_their_own():
    assert "io" in COLORS and COLORS["io"] not in (COLORS["wait"], COLORS["compute"])
    spans = [Span("worker-0", "compute", 0.0, 0.01, 0.01), Span("worker-0", "io", 0.01, 0.02, 0.0)]
    fig = viz.timeline(spans)
    assert "io" in legend_texts(fig.axes[0])


def test_viz_does_not_import_the_lab():
    code = "import sys, mtlearn.viz; print('mtlearn.bench' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"


def test_the_recorded_comparison_loads_and_draws():
    from mtlearn.bench import recorded

    about = recorded.about()
    assert {"machine", "date", "pythons", "note"} <= set(about)
    comparison = recorded.comparison()
    builds = [s.info["free_threaded_build"] for s in comparison.suites.values()]
    assert builds == [False, True] and not comparison.errors
    text = json.dumps(recorded.load())
    assert "/" not in "".join(s.info["executable"] for s in comparison.suites.values())
    assert not any(root in text for root in ("/home/", "/root/", "/tmp/", "/work/"))
    fig = viz.interpreters_plot(comparison)
    assert len(legend_texts(fig.axes[0])) == 4          # two builds, ideal, no gain
    with pytest.raises(ValueError, match="no recorded result"):
        recorded.load("nothing-like-this")
