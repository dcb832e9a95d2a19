"""Stored notebook outputs must not contradict the conditions their text states.

The checker reads the markers that ``course.verdict`` and ``course.calibrate`` print; the
notebooks of the course are checked as they are stored, and synthetic notebooks (built
here from real verdicts) show each rule failing where it should. The recording tool
(``tools/record_notebooks.py``) is driven with a fake calibration and a fake kernel, and
once with a real kernel on a one-cell notebook.
"""

import json
import os
import pathlib

import pytest
from scripts import load_script

from mtlearn.course import outputs
from mtlearn.course.calibration import Calibration
from mtlearn.course.verdicts import verdict

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

QUIET = Calibration.from_numbers(1.93, 2, load=0.3)
BUSY = Calibration.from_numbers(1.1, 2, load=3.3)
SYNC_WHY = "on 2 free cores: the step is numpy and BLAS, which release the GIL"


def sync2(measured, cal):
    """Notebook 05's condition: sync on 2 threads, on 2 free cores, is at least 1.5x."""
    return verdict("sync2", measured, (1.5, 1.95), SYNC_WHY, label="sync on 2 threads",
                   calibration=cal)


def notebook(*texts, as_result=(), metadata=None) -> dict:
    """An nbformat-4 notebook with one code cell per text, stored as printed output (or
    as a cell's result for the indices in ``as_result``)."""
    cells = [{"cell_type": "markdown", "id": "title", "metadata": {}, "source": "# synthetic"}]
    for i, text in enumerate(texts):
        out = ({"output_type": "execute_result", "execution_count": i + 1, "metadata": {},
                "data": {"text/plain": str(text), "text/html": "<p>...</p>"}}
               if i in as_result else
               {"output_type": "stream", "name": "stdout", "text": [str(text) + "\n"]})
        cells.append({"cell_type": "code", "id": f"c{i}", "execution_count": i + 1, "metadata": {},
                      "source": "...", "outputs": [out]})
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": metadata or {}, "cells": cells}


# ------------------------------------------------------------------ the course's notebooks


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_stored_notebooks_do_not_contradict_their_conditions(path):
    report = outputs.check_notebook(path)
    assert report.ok, str(report)


# ------------------------------------------------------------------ the rules


def test_a_low_verdict_recorded_on_a_quiet_machine_fails():
    report = outputs.check_notebook(notebook(QUIET, sync2(1.08, QUIET)), "05.ipynb")
    assert len(report.verdicts) == 1 and len(report.calibrations) == 1
    [problem] = report.problems
    assert problem.startswith("05.ipynb cell 2: verdict sync2: 1.08 is outside 1.5-1.95")
    assert "1.93 of 2 cores were free" in problem


def test_the_same_verdict_on_a_busy_machine_is_explained_but_noted():
    report = outputs.check_notebook(notebook(BUSY, sync2(1.08, BUSY)), "05.ipynb")
    assert report.ok
    assert report.notes == ["05.ipynb cell 1: recorded on a busy machine (1.1 of 2 cores free): "
                            "record it again on a quiet machine"]


def test_as_expected_passes_and_results_are_read_from_displayed_values_too():
    nb = notebook(QUIET, sync2(1.87, QUIET), sync2(1.6, QUIET), as_result=(2,))
    report = outputs.check_notebook(nb)
    assert report.ok and len(report.verdicts) == 2 and report.notes == []


def test_a_busy_machine_does_not_explain_a_faster_result():
    report = outputs.check_notebook(notebook(sync2(2.4, BUSY)))
    [problem] = report.problems
    assert "a busy machine cannot explain a better result" in problem


def test_slow_side_of_a_time_is_high():
    ms = verdict("step", 40.0, (20, 30), unit="ms", better="lower", calibration=BUSY)
    assert outputs.check_notebook(notebook(ms)).ok
    ms_quiet = verdict("step", 40.0, (20, 30), unit="ms", better="lower", calibration=QUIET)
    assert not outputs.check_notebook(notebook(ms_quiet)).ok


def test_a_result_outside_its_range_without_calibration_fails():
    v = verdict("sync2", 1.0, (1.5, 1.95), recheck=False)
    [problem] = outputs.check_notebook(notebook(v)).problems
    assert "no calibration was recorded" in problem


def test_an_edited_marker_fails():
    edited = str(sync2(1.87, QUIET)).replace("measured=1.87", "measured=1.2")
    problems = outputs.check_notebook(notebook(edited)).problems
    assert any("says outcome=ok but 1.2 against 1.5-1.95 is low" in p for p in problems)
    busy_flag = str(sync2(1.87, QUIET)).replace("busy=0", "busy=1")
    problems = outputs.check_notebook(notebook(busy_flag)).problems
    assert any("says busy=1 but 1.93 of 2 cores free is quiet" in p for p in problems)


def test_a_recording_that_started_busy_is_noted_from_the_metadata():
    meta = {"mtlearn": {"recording": {"calibration": BUSY.to_dict()}}}
    report = outputs.check_notebook(notebook(sync2(1.87, QUIET), metadata=meta), "x.ipynb")
    assert report.ok and "started on a busy machine" in report.notes[0]


def test_a_notebook_file_is_read_from_disk(tmp_path):
    path = tmp_path / "05_sync.ipynb"
    path.write_text(json.dumps(notebook(QUIET, sync2(1.08, QUIET))))
    report = outputs.check_notebook(path)
    assert report.notebook == "05_sync.ipynb" and not report.ok
    assert "CONTRADICTION" in str(report)


# ------------------------------------------------------------------ the recording tool


@pytest.fixture(scope="module")
def tool():
    return load_script("tools/record_notebooks.py")


def write(tmp_path, name, nb):
    path = tmp_path / name
    path.write_text(json.dumps(nb))
    return path


def test_check_mode_exits_1_on_a_contradiction(tool, tmp_path):
    bad = write(tmp_path, "bad.ipynb", notebook(QUIET, sync2(1.08, QUIET)))
    good = write(tmp_path, "good.ipynb", notebook(QUIET, sync2(1.87, QUIET)))
    said = []
    assert tool.main(["--check", str(good)], say=said.append) == 0
    assert tool.main(["--check", str(good), str(bad)], say=said.append) == 1
    assert any("CONTRADICTION" in s for s in said)


def calibrations(*frees):
    it = iter(frees)
    return lambda: Calibration.from_numbers(next(it), 2)


def test_recording_waits_for_a_quiet_machine_one_notebook_at_a_time(tool, tmp_path):
    paths = [write(tmp_path, f"{i}.ipynb", notebook(QUIET, sync2(1.87, QUIET)))
             for i in range(2)]
    ran, slept, said = [], [], []

    def run(path, **kw):
        ran.append((path.name, kw["before"]["free"]))
    status = tool.record(paths, wait=5, tries=3, calibrate=calibrations(1.1, 1.3, 1.9, 1.8),
                         run=run, sleep=slept.append, say=said.append)
    assert status == 0
    assert ran == [("0.ipynb", 1.9), ("1.ipynb", 1.8)]     # 1.8 >= 0.85 x 2
    assert slept == [5, 5]
    assert sum(s.startswith("  busy: 1.1 of 2 cores free (need 1.7)") for s in said) == 1


def test_recording_refuses_when_the_machine_stays_busy(tool, tmp_path):
    paths = [write(tmp_path, f"{i}.ipynb", notebook()) for i in range(3)]
    ran, said = [], []
    status = tool.record(paths, wait=1, tries=2, calibrate=calibrations(1.9, 1.2, 1.2),
                         run=lambda p, **kw: ran.append(p.name), sleep=lambda s: None,
                         say=said.append)
    assert status == 2 and ran == ["0.ipynb"]
    assert said[-1] == "refused: the machine stayed busy; not recorded: 1.ipynb, 2.ipynb"


def test_a_failing_notebook_is_reported_and_the_rest_recorded(tool, tmp_path):
    paths = [write(tmp_path, f"{i}.ipynb", notebook()) for i in range(2)]
    ran, said = [], []

    def run(path, **kw):
        if path.name == "0.ipynb":
            raise RuntimeError("a cell failed")
        ran.append(path.name)
    status = tool.record(paths, calibrate=calibrations(1.9, 1.9), run=run,
                         sleep=lambda s: None, say=said.append)
    assert status == 1 and ran == ["1.ipynb"]
    assert any("FAILED, left as it was: RuntimeError: a cell failed" in s for s in said)


def test_a_contradiction_found_after_recording_sets_the_status(tool, tmp_path):
    path = write(tmp_path, "05.ipynb", notebook())

    def run(p, **kw):                      # "executes" by storing a contradicting output
        p.write_text(json.dumps(notebook(QUIET, sync2(1.08, QUIET))))
    assert tool.record([path], calibrate=calibrations(1.9), run=run, sleep=lambda s: None,
                       say=lambda s: None) == 1


def test_the_command_line_checks_its_options(tool, tmp_path, capsys):
    with pytest.raises(SystemExit):
        tool.main(["--min-free", "2", str(write(tmp_path, "a.ipynb", notebook()))])
    with pytest.raises(SystemExit):
        tool.main(["--check", str(tmp_path / "missing.ipynb")])
    assert "no such notebook" in capsys.readouterr().err


@pytest.mark.slow
def test_a_real_kernel_records_outputs_without_the_learners_guesses(tool, tmp_path,
                                                                     monkeypatch):
    pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    from mtlearn.course import prediction

    monkeypatch.setenv(prediction.CACHE_ENV, str(tmp_path / "learner"))
    prediction._store.clear()
    prediction.predict("q", key="t.q").save(3.0)            # a learner's guess on this machine
    prediction._store.clear()
    nb = notebook()
    nb["cells"].append({"cell_type": "code", "id": "ask", "execution_count": None, "metadata": {},
                        "outputs": [], "source": "from mtlearn import course\n"
                        "print(course.predict('q', key='t.q'))"})
    nb["metadata"]["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                    "language": "python"}
    path = write(tmp_path, "tiny.ipynb", nb)
    tool.execute(path, timeout=120, before=QUIET.to_dict(), calibrate=lambda: QUIET)
    stored = json.loads(path.read_text())
    text = "".join(stored["cells"][-1]["outputs"][0]["text"])
    assert text.strip() == "Predict: q [your guess: no guess recorded]"
    rec = stored["metadata"]["mtlearn"]["recording"]
    assert rec["calibration"]["free"] == 1.93 and rec["calibration_after"]["busy"] is False
    assert os.environ[prediction.CACHE_ENV] == str(tmp_path / "learner")   # put back
