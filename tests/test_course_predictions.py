"""Predict, then reveal: guesses saved from the widget or code, kept in the kernel and in
a file (read back after a restart), shown against the measurement; nothing blocks when
no one answers."""

import json

import pytest

from mtlearn import course
from mtlearn.course import prediction
from mtlearn.course.prediction import predict, predictions, reveal

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """Each test gets its own guesses file and an empty kernel store."""
    monkeypatch.setenv(prediction.CACHE_ENV, str(tmp_path / "cache"))
    prediction._store.clear()
    yield tmp_path / "cache" / prediction.FILE_NAME
    prediction._store.clear()


def restart():
    """What a kernel restart does to the guesses: the kernel's store is gone."""
    prediction._store.clear()


def test_nobody_answers_no_guess_recorded(cache):
    p = predict("With 2 threads, how many times faster?", key="05.sync2", unit="x")
    assert p.guess is None
    assert repr(p) == ("Predict: With 2 threads, how many times faster? "
                       "[your guess: no guess recorded]")
    bundle = p._repr_mimebundle_()
    assert WIDGET_VIEW in bundle and bundle["text/plain"] == repr(p)
    r = reveal("05.sync2", 1.87)
    assert str(r) == "No guess recorded; measured: 1.87x."
    assert not cache.exists() or json.loads(cache.read_text())["predictions"]["05.sync2"][
        "guess"] is None


def test_the_save_button_stores_the_guess_in_the_kernel_and_the_file(cache):
    p = predict("How many times faster?", key="05.sync2", unit="x")
    p.input.value = " 1,5x "
    p.button.click()
    assert p.guess == 1.5 and "saved: 1.50x" in p.status.value
    stored = json.loads(cache.read_text())["predictions"]["05.sync2"]
    assert stored["guess"] == 1.5 and stored["question"] == "How many times faster?"
    r = reveal("05.sync2", 1.87)
    assert r.error == pytest.approx(-0.37)
    assert str(r) == "You guessed 1.50x; measured: 1.87x — 0.37x below the measurement (20%)."


def test_a_close_guess_is_said_to_be_close():
    predict("q", key="k").save(1.9)
    assert "within 5% of the measurement" in str(reveal("k", 1.87))
    predict("q", key="k2", unit="ms").save(30)
    assert str(reveal("k2", 20)).endswith("10.0 ms above the measurement (50%).")


def test_a_bad_answer_is_refused_in_the_widget_and_in_code():
    p = predict("q", key="k")
    p.input.value = "about two"
    p.button.click()
    assert p.guess is None and "not a number" in p.status.value
    with pytest.raises(ValueError, match="not a number"):
        p.save("lots")
    with pytest.raises(TypeError, match="guess"):
        p.save(True)


def test_guesses_survive_a_kernel_restart(cache):
    predict("How many times faster?", key="05.sync2", unit="x").save(1.6)
    reveal("05.sync2", 1.87)
    restart()
    table = predictions("05.")
    assert [(r["key"], r["guess"], r["measured"]) for r in table.rows] == [
        ("05.sync2", 1.6, 1.87)]
    restart()
    again = predict("How many times faster?", key="05.sync2", unit="x")  # the cell rerun
    assert again.guess == 1.6 and again.input.value == "1.6"
    assert "You guessed 1.60x" in str(reveal("05.sync2", 1.9))


def test_choices_use_a_dropdown():
    p = predict("Which is fastest with 2 workers?", ["sync", "asyncio", "process"],
                key="05.fastest")
    assert p.input.options == ("sync", "asyncio", "process") and p.input.value is None
    p.input.value = "process"
    p.button.click()
    assert p.guess == "process"
    assert str(reveal("05.fastest", "sync")) == ("You guessed process; measured: sync — "
                                                 "not this time.")
    assert str(reveal("05.fastest", "process")).endswith("— right.")
    with pytest.raises(ValueError, match="guess"):
        p.save("threads")


def test_a_guess_saved_after_the_measurement_says_so(monkeypatch):
    times = iter(["2026-01-01T10:00:00", "2026-01-01T10:00:05"])
    monkeypatch.setattr(prediction, "_now", lambda: next(times))
    p = predict("q", key="k")
    reveal("k", 2.0)                   # measured at 10:00:00
    p.save(2.0)                        # guessed at 10:00:05, after seeing it
    late = prediction.Reveal("k", prediction._store["k"], None)
    assert "You guessed 2.00 (saved after the measurement)" in str(late)


def test_reveal_without_its_predict_cell():
    assert str(reveal("nowhere", 3.0)) == ("No guess recorded (its Predict cell was not run); "
                                           "measured: 3.00.")


def test_the_summary_lists_guesses_against_measurements():
    predict("Speedup with 2 threads?", key="05.a", unit="x").save(1.5)
    reveal("05.a", 1.87)
    predict("Which is fastest?", ["sync", "process"], key="05.b").save("process")
    reveal("05.b", "sync")
    predict("Not yet measured?", key="05.c")
    predict("Another notebook", key="06.a")
    table = predictions("05.")
    assert [r["key"] for r in table.rows] == ["05.a", "05.b", "05.c"]
    text = str(table)
    assert "guess 1.50x · measured 1.87x · error -0.37x" in text
    assert "guess process · measured sync · error wrong" in text
    assert "guess — · measured not measured yet" in text
    html = table._repr_html_()
    assert "<table>" in html and "Speedup with 2 threads?" in html
    assert str(predictions("07.")) == "No predictions yet."
    assert course.predictions is predictions


def test_an_unwritable_cache_keeps_the_guess_in_the_kernel(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv(prediction.CACHE_ENV, str(blocker))
    p = predict("q", key="k")
    p.save(2.0)
    assert p.guess == 2.0 and "kept in this kernel only" in p.status.value


def test_forget_drops_guesses_by_prefix(cache):
    predict("q", key="05.a").save(1.0)
    predict("q", key="06.a").save(2.0)
    prediction.forget("05.")
    restart()
    assert [r["key"] for r in predictions().rows] == ["06.a"]


def test_cache_dir_follows_the_platform_conventions(monkeypatch, tmp_path):
    monkeypatch.setenv(prediction.CACHE_ENV, str(tmp_path / "x"))
    assert prediction.store_path() == tmp_path / "x" / "predictions.json"
    monkeypatch.delenv(prediction.CACHE_ENV)
    monkeypatch.setattr(prediction.sys, "platform", "linux")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert prediction.cache_dir() == tmp_path / "xdg" / "mtlearn"


@pytest.mark.parametrize("args, kwargs, error, match", [
    (("",), {}, TypeError, "question"),
    (("q", "float-ish"), {}, TypeError, "answer_kind"),
    (("q", ["only one"]), {}, ValueError, "answer_kind"),
    (("q", ["a", "a"]), {}, ValueError, "answer_kind"),
    (("q",), {"key": "has space"}, ValueError, "key"),
    (("q",), {"unit": "x y"}, ValueError, "unit"),
])
def test_predict_checks_its_arguments(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        predict(*args, **kwargs)


def test_a_default_key_comes_from_the_question():
    p = predict("With 4 threads, how fast?")
    assert p.key == "with-4-threads-how-fast"
