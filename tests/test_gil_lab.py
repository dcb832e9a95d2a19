"""ScalingLab and OversubscriptionLab driven from code, as a learner would drive them.

Tiny settings (a few milliseconds of work per run, one repeat): these tests check what the
labs show and that Stop, errors and threads behave — never how fast anything is.
"""

import base64
import time

import matplotlib
import pytest
from threadpoolctl import threadpool_info

matplotlib.use("Agg")

from mtlearn import bench
from mtlearn.widgets import (
    OversubscriptionLab,
    OversubscriptionLabResult,
    ScalingLab,
    ScalingLabResult,
    gil_lab,
)

TINY = 0.02
PNG = b"\x89PNG\r\n\x1a\n"


def texts(lab, stream="stdout"):
    """What the lab wrote: its text blocks (<pre> HTML with a text/plain copy), or with
    ``stream="stderr"`` its errors."""
    if stream == "stderr":
        return "".join(o.get("text", "") for o in lab.out.outputs
                       if o["output_type"] == "stream" and o.get("name") == "stderr")
    return "\n".join(o["data"]["text/plain"] for o in lab.out.outputs
                     if o["output_type"] == "display_data" and "text/html" in o["data"])


def kinds(lab):
    return ["text" if "text/html" in o.get("data", {}) else
            "figure" if "image/png" in o.get("data", {}) else o["output_type"]
            for o in lab.out.outputs]


def pngs(lab):
    return [base64.b64decode(o["data"]["image/png"]) for o in lab.out.outputs
            if "image/png" in o.get("data", {})]


def blas_counts():
    return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]


def wait_for(predicate, seconds=30.0):
    deadline = time.monotonic() + seconds
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.005)
    return predicate()


# ---------------------------------------------------------------------------- ScalingLab


def test_scaling_lab_shows_table_plot_and_timeline(no_thread_leak):
    lab = ScalingLab(workload="io", max_threads=2, repeats=1, work=0.05)
    result = lab.run()
    assert isinstance(result, ScalingLabResult)
    assert kinds(lab) == ["text", "figure", "figure"]
    out = texts(lab)
    assert "io (1 ms blocking waits) on threads" in out and "speedup" in out
    assert "Amdahl fit: serial fraction" in out and "traced run on 2 threads" in out
    assert all(p.startswith(PNG) for p in pngs(lab))
    assert lab.progress_bar.value == 1.0 and lab.status == "done"
    r = result.result
    assert r.workload == "io" and r.threads == [1, 2] and r.repeats == 1
    assert r.work == 0.05 and r.speedup[0] == 1.0 and r.mode == "threads"
    assert result.processes is None
    assert result.timeline.threads == 2
    assert {s.kind for s in result.timeline.spans} == {"io"}
    assert {s.thread for s in result.timeline.spans} == {"worker-0", "worker-1"}
    assert result.serial_fraction is not None and 0 <= result.serial_fraction <= 1


@pytest.mark.parametrize("name", list(bench.WORKLOADS))
def test_scaling_lab_runs_every_workload(name, no_thread_leak):
    assert name in [value for _, value in ScalingLab().workload_dropdown.options]
    lab = ScalingLab(workload=name, max_threads=2, repeats=1, work=TINY)
    result = lab.run()
    assert result.result.workload == name and result.result.threads == [1, 2]
    assert result.timeline.spans and len(pngs(lab)) == 2


def test_thread_counts_follow_the_slider():
    lab = ScalingLab(max_threads=3)
    assert lab.thread_counts == [1, 2, 3]
    lab.max_threads_slider.value = 6
    assert lab.thread_counts == [1, 2, 3, 4, 5, 6]
    lab.max_threads_slider.value = 1000                           # clamped by the slider
    assert lab.thread_counts[-1] == gil_lab.MAX_THREADS


def test_serial_fraction_shows_for_mixed_only_and_reaches_the_workload(no_thread_leak):
    lab = ScalingLab(workload="python", max_threads=2, repeats=1, work=TINY)
    assert lab.serial_fraction_slider.layout.display == "none"
    lab.workload_dropdown.value = "mixed"
    assert lab.serial_fraction_slider.layout.display is None
    lab.serial_fraction_slider.value = 0.2
    result = lab.run()
    assert result.result.params["serial_fraction"] == 0.2
    assert "mixed (s = 0.2)" in texts(lab) or "mixed (per step" in texts(lab)
    assert {s.kind for s in result.timeline.spans} == {"wait", "compute", "io"}
    lab.workload_dropdown.value = "numpy"
    assert lab.serial_fraction_slider.layout.display == "none"
    assert lab.run().result.params == {}                   # only mixed takes it


def test_scaling_lab_also_on_processes(no_thread_leak):
    lab = ScalingLab(workload="io", max_threads=2, repeats=1, work=0.05, processes=True)
    result = lab.run()
    assert result.processes is not None and result.processes.mode == "processes"
    assert result.processes.threads == [1, 2]
    out = texts(lab)
    assert "on processes" in out and "starting the pool took" in out
    assert len(result.figure().axes[0].get_lines()) > len(
        ScalingLabResult(result.result, None, result.timeline).figure().axes[0].get_lines())


def test_scaling_lab_stop_ends_the_run_and_its_thread(no_thread_leak):
    lab = ScalingLab(workload="python", max_threads=8, repeats=9, work=0.5)
    lab.run_button.click()                          # as the button does: in the background
    assert wait_for(lambda: lab.status.startswith("python:"))
    assert lab.running and lab.stop_button.disabled is False
    lab.stop_button.click()
    assert not lab.running and lab.status == "stopped"
    assert lab.result is None and lab.error is None and lab.progress_bar.value < 1
    assert lab.out.outputs == ()
    assert not lab.run_button.disabled and lab.stop_button.disabled


def test_scaling_lab_shows_errors_and_run_reraises(monkeypatch, no_thread_leak):
    def broken(*args, **kwargs):
        raise RuntimeError("the lab broke")

    monkeypatch.setattr(gil_lab.bench, "scaling", broken)
    lab = ScalingLab(work=TINY, repeats=1, max_threads=2)
    with pytest.raises(RuntimeError, match="the lab broke"):
        lab.run()
    assert "RuntimeError: the lab broke" in texts(lab, "stderr")
    assert "error" in lab.status and not lab.running


# ---------------------------------------------------------------------------- BLAS lab


def test_oversubscription_lab_shows_table_heatmap_best_and_worst(no_thread_leak):
    before = blas_counts()
    lab = OversubscriptionLab(max_py=2, max_blas=2, size=128, repeats=1, work=0.05)
    result = lab.run()
    assert isinstance(result, OversubscriptionLabResult)
    assert kinds(lab) == ["text", "figure"]
    out = texts(lab)
    assert "GEMMs of 128x128" in out and "fastest: " in out and "slowest: " in out
    assert pngs(lab)[0].startswith(PNG)
    r = result.result
    assert r.py_threads == [1, 2] and r.blas_threads == [1, 2] and r.size == 128
    assert r.repeats == 1 and result.value == "gflops"
    cells = {(p, b) for p in r.py_threads for b in r.blas_threads}
    assert result.best in cells and result.worst in cells
    assert blas_counts() == before                          # the BLAS limit came back


def test_oversubscription_lab_colour_choice(no_thread_leak):
    lab = OversubscriptionLab(max_py=1, max_blas=2, size=128, repeats=1, work=0.05,
                              show="seconds")
    result = lab.run()
    assert result.value == "seconds"
    assert result.figure().axes[1].get_ylabel() == "seconds (median)"
    lab.show_buttons.value = "speedup"
    assert lab.run().value == "speedup"


def test_oversubscription_lab_stop(no_thread_leak):
    before = blas_counts()
    lab = OversubscriptionLab(max_py=4, max_blas=4, size=256, repeats=9, work=1.0)
    lab.run_button.click()
    assert wait_for(lambda: "Python x" in lab.status)
    lab.stop_button.click()
    assert not lab.running and lab.status == "stopped" and lab.result is None
    assert lab.out.outputs == ()
    assert blas_counts() == before


def test_labs_refuse_values_they_do_not_offer():
    import traitlets

    with pytest.raises(traitlets.TraitError):
        ScalingLab(workload="fortran")
    lab = OversubscriptionLab()
    with pytest.raises(traitlets.TraitError):
        lab.size_dropdown.value = 100
    with pytest.raises(traitlets.TraitError):
        lab.show_buttons.value = "flops"
    lab.max_py_slider.value = 0
    assert lab.max_py_slider.value == 1
