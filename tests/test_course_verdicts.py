"""Verdicts: the sentence is computed from the measured value, the expected range and the
calibration; a busy machine explains only slow results; the marker reads back."""

import pytest

from mtlearn.course import calibration, markers, verdicts
from mtlearn.course.calibration import Calibration
from mtlearn.course.verdicts import fmt, spread, verdict

QUIET = Calibration.from_numbers(1.93, 2, load=0.3)
BUSY = Calibration.from_numbers(1.1, 2, load=3.3)
WHY = "on 2 idle cores: numpy and BLAS release the GIL"


@pytest.fixture(autouse=True)
def no_leftover_calibration():
    calibration.forget()
    yield
    calibration.forget()


def sync2(measured, cal=QUIET, **kw):
    return verdict("sync2", measured, (1.6, 1.95), WHY, label="sync on 2 threads",
                   calibration=cal, **kw)


def fields(v):
    [(kind, f)] = markers.find(str(v))
    assert kind == "verdict"
    return f


def test_as_expected_on_a_quiet_machine():
    v = sync2(1.87)
    assert v.ok and v.outcome == "ok" and not v.explained
    assert v.sentence() == ("sync on 2 threads: 1.87x (expected 1.60–1.95x on 2 idle cores: "
                            "numpy and BLAS release the GIL) — as expected")
    assert fields(v) == {"name": "sync2", "measured": 1.87, "lo": 1.6, "hi": 1.95, "unit": "x",
                         "better": "higher", "outcome": "ok", "calibration": 1.93,
                         "capacity": 2, "busy": 0}


def test_low_on_a_busy_machine_is_explained_by_the_calibration():
    v = sync2(1.08, BUSY)
    assert v.outcome == "low" and v.explained
    assert "1.08x" in str(v)
    assert "lower than expected: the machine was busy (calibration: 1.1 of 2 cores free)" in str(v)
    assert fields(v)["busy"] == 1 and fields(v)["outcome"] == "low"


def test_low_on_a_quiet_machine_is_not_explained():
    v = sync2(1.08)
    assert not v.explained
    assert "lower than expected on a quiet machine (calibration: 1.9 of 2 cores free)" in str(v)


def test_a_busy_machine_never_explains_a_faster_result():
    v = sync2(2.3, BUSY)
    assert v.outcome == "high" and not v.explained
    assert "higher than expected" in str(v)


def test_for_times_and_bubbles_the_slow_side_is_high():
    v = verdict("bubble", 45.0, (20, 30), "with K = 2, M = 4 on free cores", unit="%",
                better="lower", calibration=BUSY)
    assert v.outcome == "high" and v.explained and "45%" in str(v) and "20–30%" in str(v)
    w = verdict("bubble", 10.0, (20, 30), unit="%", better="lower", calibration=BUSY)
    assert w.outcome == "low" and not w.explained


def test_the_latest_calibration_is_used_by_default():
    calibration.remember(BUSY)
    v = verdict("x", 1.0, (1.6, 1.95))
    assert v.calibration is BUSY and v.explained and not v.recalibrated


def test_a_slow_result_without_a_busy_calibration_measures_the_machine_again(monkeypatch):
    calls = []

    def fake():
        calls.append(1)
        return BUSY
    monkeypatch.setattr(verdicts._cal, "calibrate", fake)
    calibration.remember(QUIET)
    v = verdict("x", 1.0, (1.6, 1.95))
    assert calls == [1] and v.recalibrated and v.explained
    assert "calibration now: 1.1 of 2 cores free" in str(v)
    calibration.forget()
    v = verdict("x", 1.0, (1.6, 1.95))                     # no calibration at all
    assert calls == [1, 1] and v.recalibrated
    verdict("x", 1.8, (1.6, 1.95))                         # as expected: nothing to check
    verdict("x", 2.5, (1.6, 1.95))                         # fast: a busy machine cannot explain
    verdict("x", 1.0, (1.6, 1.95), calibration=QUIET)      # given: used as it is
    assert calls == [1, 1]


def test_without_calibration_and_recheck_it_says_so():
    v = verdict("x", 1.0, (1.6, 1.95), recheck=False)
    assert v.calibration is None and not v.explained
    assert "no calibration" in str(v)
    assert fields(v)["calibration"] is None and fields(v)["busy"] is None


def test_repeats_use_the_median_and_show_the_spread():
    v = sync2([1.92, 1.51, 1.48, 1.55, 1.60])
    assert v.measured == 1.55
    assert "1.55x (median of 5, 1.48–1.92x)" in str(v)
    assert v.outcome == "low"                              # not the best of 5 (1.92x)
    import numpy as np
    assert sync2(np.array([1.8, 1.9, 1.7])).measured == 1.8        # an array of repeats
    assert sync2(np.float64(1.9)).measured == 1.9 and sync2(np.float64(1.9)).repeats == ()
    assert spread([2.0]) == "2.00x (one run)"
    assert spread([10, 12, 11], unit="ms") == "11.0 ms (median of 3, 10.0–12.0 ms)"


@pytest.mark.parametrize("value, unit, text", [
    (1.874, "x", "1.87x"), (24.4, "%", "24%"), (3.21, "pp", "+3.2 pp"),
    (-3.21, "points", "-3.2 points"), (12.34, "ms", "12.3 ms"), (0.5, "s", "0.50 s"),
])
def test_numbers_are_shown_with_their_unit(value, unit, text):
    assert fmt(value, unit) == text


def test_a_range_around_zero_reads_without_a_double_sign():
    v = verdict("diff", 3.2, (-5, 5), unit="pp", calibration=QUIET)
    assert "(expected -5.0 to +5.0 pp)" in str(v)


def test_html_shows_the_sentence_and_the_marker():
    html = sync2(1.87)._repr_html_()
    assert "1.87x" in html and "[verdict name=sync2" in html


def test_to_dict_is_plain():
    d = sync2(1.08, BUSY).to_dict()
    assert d["outcome"] == "low" and d["explained"] is True
    assert d["calibration"]["busy"] is True and d["text"].startswith("sync on 2 threads")


@pytest.mark.parametrize("kwargs, error, match", [
    ({"name": "sync 2"}, ValueError, "name"),
    ({"expected": (2.0, 1.0)}, ValueError, "lo <= hi"),
    ({"expected": "1-2"}, TypeError, "expected"),
    ({"expected": (1.0,)}, TypeError, "expected"),
    ({"measured": "1.8"}, TypeError, "measured"),
    ({"measured": []}, ValueError, "measured"),
    ({"better": "faster"}, ValueError, "better"),
    ({"calibration": 1.9}, TypeError, "calibration"),
    ({"unit": "x y"}, ValueError, "unit"),
])
def test_arguments_are_checked(kwargs, error, match):
    args = {"name": "sync2", "measured": 1.8, "expected": (1.6, 1.95), **kwargs}
    with pytest.raises(error, match=match):
        verdict(args.pop("name"), args.pop("measured"), args.pop("expected"), **args)


def test_a_stored_calibration_dict_is_accepted():
    v = sync2(1.08, BUSY.to_dict())
    assert v.explained


def test_either_side_is_explained_by_a_busy_machine():
    high = verdict("ratio", 1.3, (0.9, 1.1), better="either", calibration=BUSY)
    assert high.explained and "busy" in high.sentence()
    assert not verdict("ratio", 1.3, (0.9, 1.1), better="higher", calibration=BUSY).explained
    assert not verdict("ratio", 1.3, (0.9, 1.1), better="either", calibration=QUIET).explained
