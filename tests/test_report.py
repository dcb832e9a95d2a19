"""Classroom mode (``mtlearn.course.report``, ``python -m mtlearn report``): a report validates
against its schema and survives a write and a load unchanged; broken files and files of
another schema version are named and skipped; the shipped reports say what the recordings
say; the class figures draw."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

from mtlearn.course import prediction, recorded, report

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A private predictions file, so the learner's own guesses are neither read nor touched."""
    monkeypatch.setenv(prediction.CACHE_ENV, str(tmp_path / "cache"))
    prediction._store.clear()
    yield tmp_path / "cache"
    prediction._store.clear()


@pytest.fixture(scope="module")
def quick_doc(tmp_path_factory):
    """One quick report, measured once for the module (with a private predictions file)."""
    mp = pytest.MonkeyPatch()
    mp.setenv(prediction.CACHE_ENV, str(tmp_path_factory.mktemp("cache")))
    prediction._store.clear()
    try:
        t0 = time.perf_counter()
        doc = report.run(quick=True)
        doc["_seconds"] = time.perf_counter() - t0
    finally:
        prediction._store.clear()
        mp.undo()
    return doc


def shipped() -> dict[str, dict]:
    return {r["file"]: r for r in report.load_folder().reports}


# -- the schema -----------------------------------------------------------------------------

def test_a_quick_report_is_valid_and_quick(quick_doc):
    doc = {k: v for k, v in quick_doc.items() if k != "_seconds"}
    assert report.problems(doc) == []
    assert doc["schema_version"] == report.SCHEMA_VERSION and doc["quick"] is True
    assert quick_doc["_seconds"] < 60                       # seconds, not minutes
    r = doc["results"]
    assert [lab["threads"] for lab in r["gil_lab"]] == [[1, 2]]
    assert set(r["gil_lab"][0]["workloads"]) == {"python", "numpy"}
    assert [s["strategy"] for s in r["scaling"]] == ["sync", "process"]
    assert all(s["speedup"][0] > 0 and len(s["ms"]) == 2 for s in r["scaling"])
    assert r["step"]["ms"] > 0 and r["step"]["pytorch"]["pytorch_ms"] == 7.85
    assert doc["calibration"]["capacity"] >= 1 and doc["machine"]["cores"] >= 1
    assert doc["build"]["free_threaded_build"] == bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


def test_the_schema_is_json_schema_2020_12_and_agrees_with_jsonschema(quick_doc):
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator
    validator.check_schema(report.SCHEMA)
    docs = [{k: v for k, v in quick_doc.items() if k != "_seconds"}]
    docs += [{k: v for k, v in r.items() if k != "file"} for r in shipped().values()]
    for doc in docs:
        validator(report.SCHEMA).validate(doc)
        for broken in breakages(doc):
            ours = report.schema_errors(broken)
            theirs = list(validator(report.SCHEMA).iter_errors(broken))
            assert bool(ours) == bool(theirs), (ours, theirs)
            assert ours


def breakages(doc: dict):
    """Copies of ``doc`` with one thing wrong each."""
    def changed(fn):
        d = copy.deepcopy(doc)
        fn(d)
        return d

    yield changed(lambda d: d.pop("results"))
    yield changed(lambda d: d.update(schema_version=2))
    yield changed(lambda d: d.update(format="something else"))
    yield changed(lambda d: d.update(surprise=1))
    yield changed(lambda d: d.update(label=""))
    yield changed(lambda d: d.update(source="guessed"))
    yield changed(lambda d: d["machine"].update(cores=0))
    yield changed(lambda d: d["machine"].update(cores=2.5))
    yield changed(lambda d: d["build"].update(gil_enabled="yes"))
    yield changed(lambda d: d.update(calibration={"free": 1.0}))
    yield changed(lambda d: d["results"]["gil_lab"][0]["workloads"]["python"].update(
        speedup=["fast"]))
    yield changed(lambda d: d["results"]["gil_lab"][0].update(workloads={}))
    yield changed(lambda d: d["results"]["scaling"][0].update(threads=[]))
    yield changed(lambda d: d["results"]["scaling"][0].pop("serial_ms"))
    yield changed(lambda d: d["results"].update(step={"model": "cnn", "batch": 64}))
    yield changed(lambda d: d["predictions"].append({"key": "k", "guess": [1], "measured": 1}))
    yield changed(lambda d: d["errors"].update(part=3))
    yield changed(lambda d: d["machine"].update(cores=True))


def test_what_a_schema_cannot_say_is_checked_too(quick_doc):
    doc = {k: v for k, v in quick_doc.items() if k != "_seconds"}
    bad = copy.deepcopy(doc)
    bad["results"]["scaling"][0]["speedup"].append(3.0)
    assert report.schema_errors(bad) == []
    assert any("3 values for 2 thread counts" in e for e in report.problems(bad))
    bad = copy.deepcopy(doc)
    bad["results"]["gil_lab"][0]["threads"] = [2, 4]
    assert any("threads should start at 1" in e for e in report.problems(bad))
    with pytest.raises(ValueError, match="not a valid mtlearn report"):
        report.validate(bad)


def test_booleans_are_not_numbers_and_whole_floats_are_integers():
    schema = {"type": "object", "properties": {"n": {"type": "integer"},
                                               "x": {"type": "number"}}}
    assert report.schema_errors({"n": True}, schema) and report.schema_errors({"x": False},
                                                                              schema)
    assert report.schema_errors({"n": 2.0, "x": 1}, schema) == []
    assert report.schema_errors({"n": 2.5}, schema)


# -- files ----------------------------------------------------------------------------------

def test_write_then_load_gives_the_same_report(quick_doc, tmp_path):
    doc = {k: v for k, v in quick_doc.items() if k != "_seconds"}
    path, png = report.write(doc, tmp_path / "out")
    assert path.suffix == ".json" and png.suffix == ".png"
    assert path.name.startswith(report.file_name(doc))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert report.load(path) == doc
    assert json.loads(path.read_text()) == doc
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == []


def test_write_refuses_an_invalid_report(quick_doc, tmp_path):
    doc = {k: v for k, v in quick_doc.items() if k not in ("_seconds", "results")}
    with pytest.raises(ValueError, match="'results' is missing"):
        report.write(doc, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_broken_files_and_other_versions_are_named_and_skipped(tmp_path):
    good = shipped()
    for name, doc in good.items():
        (tmp_path / name).write_text(json.dumps({k: v for k, v in doc.items() if k != "file"}))
    future = {k: v for k, v in next(iter(good.values())).items() if k != "file"}
    future["schema_version"] = 99
    (tmp_path / "future.json").write_text(json.dumps(future))
    (tmp_path / "half.json").write_text(json.dumps(future)[:100])
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "binary.json").write_bytes(b"\xff\xfe\x00garbage")
    invalid = dict(future, schema_version=report.SCHEMA_VERSION, machine={"cores": "two"})
    (tmp_path / "invalid.json").write_text(json.dumps(invalid))
    (tmp_path / "summary.png").write_bytes(b"\x89PNG")          # not a .json: not looked at
    found = report.load_folder(tmp_path, tmp_path / "absent")
    assert sorted(r["file"] for r in found.reports) == sorted(good)
    assert set(found.skipped) == {"future.json", "half.json", "list.json", "binary.json",
                                  "invalid.json", str(tmp_path / "absent")}
    assert "schema version 99" in found.skipped["future.json"]
    assert "reads schema version 1" in found.skipped["future.json"]
    assert found.skipped["half.json"].startswith("not valid JSON")
    assert "not an mtlearn report" in found.skipped["list.json"]
    assert found.skipped["binary.json"] == "not a text file"
    assert "$.machine.cores" in found.skipped["invalid.json"]
    assert found.skipped[str(tmp_path / "absent")] == "no such folder"
    text = str(found)
    assert all(name in text for name in found.skipped)
    assert text.splitlines()[0] == f"2 report(s) loaded from {tmp_path.name}, absent, 6 skipped"


# -- the shipped reports --------------------------------------------------------------------

def test_the_16_core_report_says_what_the_recording_says():
    doc = shipped()["16core-2026-11-29.json"]
    assert doc["source"] == "recorded" and doc["machine"]["cores"] == 16
    labs = {lab["build"]["free_threaded_build"]: lab for lab in doc["results"]["gil_lab"]}
    gil = recorded.load("gil_lab")
    for ft, build in ((False, "GIL"), (True, "free-threaded")):
        for w in ("python", "numpy"):
            rec = recorded.series(gil, workload=w, build=build)
            assert labs[ft]["threads"] == rec["threads"]
            assert labs[ft]["workloads"][w]["speedup"] == rec["speedup"]
    sync = recorded.load("sync_scaling")
    for s in doc["results"]["scaling"]:
        build = "free-threaded" if s["build"]["free_threaded_build"] else "GIL"
        rec = recorded.series(sync, strategy=s["strategy"], build=build, model="cnn",
                              batch=s["batch"])
        assert (s["threads"], s["speedup"], s["ms"]) == (rec["threads"], rec["speedup"],
                                                         rec["ms"])
    row = next(r for r in recorded.load("bench_nn")["rows"] if r["step"].startswith("course"))
    assert doc["results"]["step"]["ms"] == row["mtlearn_ms"]
    assert doc["results"]["step"]["pytorch"]["pytorch_ms"] == row["pytorch_ms"]


def test_the_2_core_report_says_what_the_recording_says():
    from mtlearn.bench import recorded as bench_recorded

    doc = shipped()["2core-2026-11-26.json"]
    assert doc["source"] == "recorded" and doc["machine"]["cores"] == 2
    rows = bench_recorded.comparison().rows()
    for lab in doc["results"]["gil_lab"]:
        for w, values in lab["workloads"].items():
            rec = [r for r in rows if r["workload"] == w
                   and r["free_threaded"] == lab["build"]["free_threaded_build"]]
            assert [r["threads"] for r in rec] == lab["threads"]
            assert values["speedup"] == pytest.approx([r["speedup"] for r in rec], abs=1e-3)
    results = (ROOT / "benchmarks" / "RESULTS.md").read_text()
    for s in doc["results"]["scaling"]:               # the table's bold speedups, 2 workers
        assert f"| {s['strategy']} | 2 | {s['ms'][1]} " in results
        assert f"**{s['speedup'][1]:.2f}x**" in results


# -- predictions ----------------------------------------------------------------------------

def test_a_saved_guess_goes_into_the_report_with_its_measurement(cache):
    report.questions()[2].save("1.5x")                     # report.sync2
    prediction.predict("Anything else?", key="05.other", unit="x").save(3)
    doc = report.run(quick=True)
    rows = {p["key"]: p for p in doc["predictions"]}
    assert set(rows) == {"report.sync2", "05.other"}
    sync = doc["results"]["scaling"][0]
    assert rows["report.sync2"]["guess"] == 1.5
    assert rows["report.sync2"]["measured"] == sync["speedup"][1]
    assert rows["05.other"]["measured"] is None
    assert report.guesses([doc]) == [{"report": doc["label"], "key": "report.sync2",
                                      "question": report.QUESTIONS["report.sync2"],
                                      "guess": 1.5, "measured": sync["speedup"][1]}]


def test_without_guesses_the_report_has_none(quick_doc):
    assert quick_doc["predictions"] == []


# -- figures and the table ------------------------------------------------------------------

def test_the_class_figures_draw_every_machine():
    reports = report.load_folder().reports
    fig = report.speedups_figure(reports)
    lines = [ln.get_label() for ax in fig.axes for ln in ax.get_lines()]
    assert sum("16-core" in label for label in lines) == 3   # sync GIL, sync ft, process
    assert sum("2-core" in label for label in lines) == 2
    fig = report.gil_figure(reports)
    assert [len(ax.patches) for ax in fig.axes] == [4, 4]    # 2 machines x 2 builds, 2 panels
    fig = report.predictions_figure(reports)
    assert "0 guess(es) from 2 report(s)" in fig.axes[0].get_title()
    table = report.table(reports)
    assert [r[1] for r in table.rows] == ["16", "2"]
    assert table.rows[1][3:5] == ["0.98x", "2.03x"]


def test_the_predictions_figure_plots_each_guess(quick_doc):
    doc = copy.deepcopy({k: v for k, v in quick_doc.items() if k != "_seconds"})
    doc["predictions"] = [{"key": "report.sync2", "guess": 1.5, "measured": 1.8},
                          {"key": "report.sync2", "guess": "x", "measured": 1.8},
                          {"key": "04.choice", "guess": "a", "measured": "b"}]
    fig = report.predictions_figure([doc, doc])
    assert "2 guess(es) from 2 report(s)" in fig.axes[0].get_title()
    offsets = fig.axes[0].collections[0].get_offsets().tolist()
    assert offsets == [[1.5, 1.8], [1.5, 1.8]]


def test_duplicate_labels_are_told_apart_by_file():
    a, b = (dict(r) for r in report.load_folder().reports)
    b["label"] = a["label"]
    assert report._names([a, b]) == [f"{a['label']} [{a['file']}] (recorded)",
                                     f"{a['label']} [{b['file']}] (recorded)"]


@pytest.mark.parametrize("cores, counts", [(1, [1, 2]), (2, [1, 2]), (6, [1, 2, 4]),
                                           (64, [1, 2, 4, 8, 16])])
def test_thread_counts(cores, counts):
    assert report.thread_counts(cores) == counts


# -- the command line and the button --------------------------------------------------------

def test_the_command_writes_both_files(tmp_path):
    out = subprocess.run([sys.executable, "-m", "mtlearn", "report", "--quick", "--out",
                          str(tmp_path / "class"), "--label", "test machine"],
                         capture_output=True, text=True, timeout=300,
                         env={**os.environ, "MPLBACKEND": "Agg",
                              prediction.CACHE_ENV: str(tmp_path / "cache")})
    assert out.returncode == 0, out.stderr
    files = sorted(p.suffix for p in (tmp_path / "class").iterdir())
    assert files == [".json", ".png"]
    doc = report.load(next((tmp_path / "class").glob("*.json")))
    assert doc["label"] == "test machine"
    assert "wrote" in out.stdout and "[report] calibrating" in out.stderr
    assert "Calibration: " in out.stdout                    # how busy the machine was


def test_the_command_refuses_an_empty_label(tmp_path):
    out = subprocess.run([sys.executable, "-m", "mtlearn", "report", "--quick", "--label", " ",
                          "--out", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "--label" in out.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_button_runs_and_writes(cache, tmp_path):
    pytest.importorskip("ipywidgets")
    box = report.button(tmp_path / "reports", quick=True)
    run_button = box.children[1]
    run_button.click()
    assert not run_button.disabled
    assert sorted(p.suffix for p in (tmp_path / "reports").iterdir()) == [".json", ".png"]


def test_the_explorer_shows_each_view(tmp_path, capsys):
    pytest.importorskip("ipywidgets")
    box = report.explorer(report.shipped_folder(), tmp_path / "none")
    view, run_button = box.children[2].children
    for option in view.options:
        view.value = option
        run_button.click()
    out = capsys.readouterr().out
    assert out.count("2 report(s) loaded") == len(view.options)
    assert "skipped" in out and "no such folder" in out
