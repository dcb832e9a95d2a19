"""The 16-core recordings: read from the shipped files as plain Python, each with its
machine and the recording's caveat; figures and tables label them as recorded."""

import json

import matplotlib
import pytest

matplotlib.use("Agg")

from mtlearn.course import figures, recorded
from mtlearn.course.recorded import at, load, series


@pytest.mark.parametrize("name", recorded.names())
def test_every_document_names_its_machine_and_keeps_the_caveat(name):
    doc = load(name)
    assert doc["name"] == name and doc["title"]
    assert "16-core x86-64" in doc["machine"] and "3.12" in doc["machine"]
    assert doc["label"] == "16-core x86-64, CPython 3.12 / 3.13t, recorded 2026-11-29"
    assert doc["date"] == "2026-11-29"
    assert "hogwild rows at 8–16 threads" in doc["caveat"] and "artefacts" in doc["caveat"]
    assert "hogwild64.jsonl is the valid measurement" in doc["caveat"]
    assert set(doc["files"]) <= set(recorded.files())
    assert doc.get("series") or doc.get("rows")
    assert json.loads(json.dumps(doc)) == doc          # plain Python all the way down


def test_the_readme_is_shipped_with_its_caveat():
    assert "Caveat:" in recorded.readme()
    assert {"README.md", "scale_gil.jsonl", "gil.md", "bubble.md", "mpi.jsonl"} <= set(
        recorded.files())


def test_sync_scaling_has_the_peak_and_the_fall():
    doc = load("sync_scaling")
    gil = series(doc, strategy="sync", build="GIL", model="cnn", batch=256)
    assert gil["threads"] == [1, 2, 4, 8, 16]
    assert gil["speedup"] == [1.06, 1.61, 2.34, 2.16, 0.92]
    assert gil["serial_ms"] == 36.24 and gil["min_ms"][-1] == 38.42
    ft = series(doc, strategy="sync", build="free-threaded", model="cnn", batch=1024)
    assert at(ft, 16) == 11.27 and ft["python"] == "3.13t"
    assert at(series(doc, strategy="process"), 16) == 9.79
    assert at(series(doc, model="wide"), 16, "ms") == 24.16


def test_gil_lab_has_both_builds_with_cpu_over_wall_for_the_gil_build():
    doc = load("gil_lab")
    py = series(doc, workload="python", build="GIL")
    assert py["speedup"] == [1.0, 0.93, 0.79, 0.82, 0.86] and py["one_thread_ms"] == 356
    assert py["cpu_wall"] == [None, 0.5, 0.25, 0.13, 0.06] and py["gil"] == "held"
    assert py["amdahl_s"] == 1.0
    assert at(series(doc, workload="python", build="free-threaded"), 16) == 12.82
    assert at(series(doc, workload="mixed", build="GIL"), 16) == 1.42
    assert len(doc["series"]) == 12


def test_bubble_mpi_hogwild_and_the_small_tables():
    bubble = {(r["model"], r["K"], r["M"]): r for r in load("bubble")["rows"]}
    row = bubble[("course CNN", 4, 16)]
    assert (row["theory"], row["measured"], row["difference_pp"]) == (15.8, 42.9, 27.1)
    assert bubble[("12 x Dense(512) Tanh", 3, 4)]["within_5_points"] is True
    mpi = {r["label"]: r for r in load("mpi")["rows"]}
    assert mpi["16 ranks x 1 thread"]["ms"] == 15.51
    assert mpi["16 ranks x 1 thread"]["vs_serial_approx"] == pytest.approx(158.72 / 15.51,
                                                                           abs=0.01)
    assert mpi["4 ranks x 4 threads"]["workers"] == 16
    hog = load("hogwild")["series"]
    assert hog[0]["threads"] == [1, 4, 16] and hog[0]["speedup"] == [1.15, 3.14, 4.91]
    assert all(hog[0]["valid"])
    for s in hog[1:]:                                       # the caveat, applied
        assert s["valid"] == [n < 8 for n in s["threads"]]
    pen = load("penalty")["rows"]
    assert [(r["batch"], r["env"], r["ratio"]) for r in pen] == [
        (256, "default", 0.78), (256, "arena1", 1.07), (1024, "default", 1.31),
        (1024, "arena1", 0.9)]
    assert [r["ratio"] for r in load("bench_nn")["rows"]] == [0.92, 0.96]
    torch = load("torch")["series"]
    assert [s["batch"] for s in torch] == [256, 1024] and torch[1]["ms"][-1] == 26.59
    assert len(load("sync_variants")["rows"]) == 40


def test_lookups_fail_clearly():
    with pytest.raises(ValueError, match="name must be one of"):
        load("nope")
    doc = load("sync_scaling")
    with pytest.raises(ValueError, match="series of 'sync_scaling' match"):
        series(doc, build="GIL")
    with pytest.raises(ValueError, match="no point at 3 threads"):
        at(doc["series"][0], 3)


def test_load_returns_a_fresh_copy():
    a = load("bubble")
    a["rows"].clear()
    assert load("bubble")["rows"]


def test_claims_are_computed_from_the_recordings():
    c = recorded.claims()
    assert set(c) == {"1", "2a", "2b", "3", "7a", "7b", "7c", "8"}
    assert c["2b"] == ("batch 256: 1.61x at 2 threads, peak 2.34x at 4, 0.92x at 16 "
                       "(GIL build)")
    assert "12.82x free-threaded vs 0.86x with the GIL" in c["8"]
    assert "~10x" in c["3"] and "9.79x" in c["3"]
    assert "43%" in c["7b"] and "formula 16%" in c["7b"]


# ---------------------------------------------------------------------------- figures


def texts(fig):
    ax = fig.axes[0]
    legend = ax.get_legend()
    return ([t.get_text() for t in legend.get_texts()] if legend else [],
            [t.get_text() for t in ax.texts])


def test_a_recorded_curve_is_dashed_grey_and_labelled_with_its_machine():
    curve = series(load("sync_scaling"), strategy="sync", build="GIL", model="cnn", batch=256)
    fig = figures.speedup_beside({"threads": [1, 2], "speedup": [1.0, 1.87], "cores": 2},
                                 curve, fits=("amdahl", "usl"))
    legend, notes = texts(fig)
    assert legend[0] == "measured here (2 logical CPUs)"
    assert "recorded: sync, GIL build (3.12), course CNN, batch 256" in legend
    assert any(t.startswith("Amdahl, s = ") and t.endswith("(fit to recorded)") for t in legend)
    assert any(t.startswith("USL, σ = ") for t in legend)
    assert any("16-core x86-64" in t and "not measured on this machine" in t for t in notes)
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    rec = lines["recorded: sync, GIL build (3.12), course CNN, batch 256"]
    assert rec.get_linestyle() == "--" and rec.get_color() in figures.RECORDED_COLORS
    assert lines["measured here (2 logical CPUs)"].get_linestyle() == "-"
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["1", "2", "4", "8", "16"]


def test_artefact_points_are_hollow_and_named_once():
    fig = figures.speedup_beside(None, load("hogwild")["series"])
    legend, _ = texts(fig)
    assert sum("artefact" in t for t in legend) == 1
    assert not any(t.startswith("measured here") for t in legend)


def test_speedup_beside_without_recordings_has_no_recorded_note():
    fig = figures.speedup_beside({"threads": [1, 2], "speedup": [1.0, 1.5]})
    assert texts(fig)[1] == []


def test_speedup_beside_checks_its_input():
    with pytest.raises(ValueError, match="nothing to draw"):
        figures.speedup_beside()
    with pytest.raises(TypeError, match="threads and speedup"):
        figures.speedup_beside(object())
    with pytest.raises(ValueError, match="fits"):
        figures.speedup_beside({"threads": [1, 2], "speedup": [1, 2]},
                               load("sync_scaling")["series"][0], fits=("gustafson",))


def test_gil_lab_beside_draws_mine_and_both_recorded_builds():
    class Result:                               # what bench.scaling returns, in short
        threads, speedup = [1, 2], [1.0, 0.97]
    fig = figures.gil_lab_beside({"python": Result(), "numpy": 1.9})
    legend, notes = texts(fig)
    assert legend == ["measured here (2 threads)", "recorded: GIL build, 16 threads",
                      "recorded: free-threaded, 16 threads"]
    heights = sorted(round(p.get_height(), 2) for p in fig.axes[0].patches)
    assert heights == sorted([0.97, 1.9, 0.86, 8.2, 12.82, 12.05])
    assert any("hatched grey" in t and "16-core" in t for t in notes)


def test_recorded_tables_carry_the_machine_in_their_caption():
    t = figures.recorded_table("bubble", where=lambda r: r["K"] >= 3)
    assert len(t.rows) == 16 and all(int(r[1]) >= 3 for r in t.rows)
    md = t._repr_markdown_()
    assert md.startswith("*16-core x86-64, CPython 3.12 / 3.13t, recorded 2026-11-29 — not "
                         "measured here")
    assert "| course CNN | 4 | 16 | 15.8% | 42.9% | +27.1 pp | 1.61 |" in md
    mpi = str(figures.recorded_table("mpi"))
    assert "16 ranks x 1 thread" in mpi and "10.23x" in mpi
    with pytest.raises(ValueError, match="curves"):
        figures.recorded_table("sync_scaling")


def test_the_verdict_table_adds_the_recorded_column():
    t = figures.verdict_table({"2b. synchronous multithreading": ("1.91x here", "05"),
                               "4. the steps": ("a sound plan", "all")})
    assert t.header[2] == "recorded on 16 cores (2026-11-29)"
    assert t.rows[0][2] == recorded.claims()["2b"] and t.rows[1][2] == "—"
    assert "another machine, not measured here" in t.caption
