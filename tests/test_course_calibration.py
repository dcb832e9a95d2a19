"""Calibration: the capacity and busy threshold with given numbers, the printed line and
banner, the marker read back, and one real (short) measurement for its structure only."""

import json
import threading

import pytest

from mtlearn import info
from mtlearn.course import calibration, markers
from mtlearn.course.calibration import Calibration, calibrate, capacity, is_busy


@pytest.fixture(autouse=True)
def no_leftover_calibration():
    calibration.forget()
    yield
    calibration.forget()


# ------------------------------------------------------------------ threshold logic


@pytest.mark.parametrize("args, expected", [
    ((2,), 2.0),
    ((16, 8), 8.0),                  # SMT: 16 logical CPUs on 8 cores
    ((16, None, 2.0), 2.0),          # a container quota of 2 CPUs
    ((16, 8, 4.5), 4.5),
    ((4, 4, 0.5), 1.0),              # never below one core
    ((1,), 1.0),
])
def test_capacity_is_physical_cores_capped_by_quota(args, expected):
    assert capacity(*args) == expected


@pytest.mark.parametrize("free, cap, busy", [
    (1.93, 2, False), (1.5, 2, False), (1.49, 2, True), (1.1, 2, True),
    (12.0, 16, False), (11.9, 16, True), (0.8, 1, False), (0.7, 1, True),
])
def test_busy_below_three_quarters_of_capacity(free, cap, busy):
    assert calibration.QUIET_FRACTION == 0.75
    assert is_busy(free, cap) is busy


def test_busy_threshold_can_be_changed_and_arguments_are_checked():
    assert is_busy(1.6, 2, fraction=0.85) is True
    assert is_busy(1.6, 2, fraction=0.75) is False
    with pytest.raises(ValueError, match="capacity"):
        is_busy(1.0, 0)
    with pytest.raises(TypeError, match="free"):
        is_busy("1", 2)
    with pytest.raises(ValueError, match="cores"):
        capacity(0)


# ------------------------------------------------------------------ text and storing


def test_a_quiet_machine_prints_one_line_and_no_banner():
    cal = Calibration.from_numbers(1.93, 2, load=0.35)
    text = str(cal)
    assert "\n" not in text
    assert text.startswith("Calibration: 1.9 of 2 cores free")
    assert "quiet" in text and "load average 0.35" in text
    assert cal.banner() == ""
    assert "1.9 of 2 cores free" in cal._repr_html_()
    assert markers.find(text) == [("calibration", {"free": 1.93, "capacity": 2, "threads": 2,
                                                   "busy": 0, "load": 0.35})]


def test_a_busy_machine_shows_a_banner_saying_why():
    cal = Calibration.from_numbers(1.1, 2, load=3.3)
    assert cal.busy
    assert "BUSY" in str(cal) and "timings below will be low" in str(cal)
    banner = cal.banner()
    assert "busy" in banner and "1.1 of 2 cores" in banner and "3.30" in banner
    assert cal._repr_html_().startswith(banner)
    assert markers.find(str(cal))[0][1]["busy"] == 1


def test_smt_and_quota_are_named_in_the_line():
    smt = Calibration.from_numbers(9.5, 16, physical_cores=8)
    assert smt.capacity == 8 and not smt.busy
    assert "of 8 cores (16 logical CPUs)" in str(smt)
    quota = Calibration.from_numbers(1.9, 16, cpu_quota=2.0)
    assert "container quota" in str(quota)
    no_load = Calibration.from_numbers(1.9, 2, load=None)
    assert "load average" not in str(no_load)


def test_to_dict_is_plain_json_and_round_trips():
    cal = Calibration.from_numbers(1.2, 2, load=2.0)
    d = cal.to_dict()
    assert d["busy"] is True and d["fraction"] == pytest.approx(0.6)
    again = Calibration.from_dict(json.loads(json.dumps(d)))
    assert again == cal and again.busy


# ------------------------------------------------------------------ the measurement logic


def fake_machine(monkeypatch, cores=2, physical=None, quota=None):
    monkeypatch.setattr(calibration.info, "machine_info", lambda: {
        "cores": cores, "physical_cores": physical, "cpu_quota": quota})
    monkeypatch.setattr(calibration, "_size_workload", lambda np: (1024, 0.001))
    monkeypatch.setattr(calibration, "_arrays", lambda np, n, elements: [None] * n)


def fake_bursts(monkeypatch, frees):
    """One thread does 100 calls per CPU-second; each round of N threads then does
    ``free`` x 100 calls per second, taken in turn from ``frees``."""
    frees = iter(frees)
    seen = []

    def burst(np, arrays, seconds):
        n = len(arrays)
        seen.append(n)
        if n == 1:
            return [(10, 0.0, 0.2, 0.1)]             # 10 calls in 0.1 CPU-s: 100 per CPU-s
        total = next(frees) * 100 * 0.1               # calls in a 0.1 s span
        return [(total / n, 0.0, 0.1, 0.1)] * n
    monkeypatch.setattr(calibration, "_burst", burst)
    return seen


def test_free_is_the_median_round_over_one_threads_rate_per_cpu_second(monkeypatch):
    fake_machine(monkeypatch)
    seen = fake_bursts(monkeypatch, [1.9, 1.2, 1.95])
    cal = calibrate()
    assert seen == [1, 2, 2, 2]
    assert cal.rounds == [1.9, 1.2, 1.95]
    assert cal.free == 1.9 and not cal.busy            # one disturbed round does not decide
    assert calibration.last() is cal
    monkeypatch.undo()                                  # the real machine_info again
    assert "1.9 of 2 cores free" in info.machine_info()["notes"]["calibration"]


def test_near_the_line_two_more_rounds_are_measured(monkeypatch):
    fake_machine(monkeypatch)
    seen = fake_bursts(monkeypatch, [1.5, 1.45, 1.55, 1.7, 1.7])
    cal = calibrate()
    assert seen == [1, 2, 2, 2, 2, 2]                  # 3 + 2 rounds
    assert cal.free == 1.55 and not cal.busy


def test_far_from_the_line_three_rounds_suffice(monkeypatch):
    fake_machine(monkeypatch)
    seen = fake_bursts(monkeypatch, [0.9, 1.0, 1.1])
    cal = calibrate()
    assert len(seen) == 4 and cal.busy and cal.free == 1.0


def test_threads_follow_cores_and_the_quota(monkeypatch):
    fake_machine(monkeypatch, cores=16, physical=8, quota=3.5)
    seen = fake_bursts(monkeypatch, [3.4, 3.4, 3.4])
    cal = calibrate()
    assert seen[1:] == [4, 4, 4]                       # ceil(3.5)
    assert cal.capacity == 3.5 and cal.threads == 4 and not cal.busy


def test_without_a_fine_thread_clock_one_threads_wall_time_is_used(monkeypatch):
    fake_machine(monkeypatch)
    fake_bursts(monkeypatch, [1.0, 1.0, 1.0])
    monkeypatch.setattr(calibration, "_thread_clock_is_fine", lambda: False)
    cal = calibrate()
    assert cal.free == pytest.approx(2.0)              # 10 calls / 0.2 s wall = 50 per s


def test_calibrate_checks_its_arguments():
    with pytest.raises(ValueError, match="threads"):
        calibrate(threads=0)
    with pytest.raises(ValueError, match="seconds"):
        calibrate(seconds=0)
    with pytest.raises(TypeError, match="seconds"):
        calibrate(seconds="0.3")


# ------------------------------------------------------------------ a real measurement


def test_a_real_calibration_has_its_parts_and_leaves_no_thread(no_thread_leak):
    before = threading.active_count()
    cal = calibrate(seconds=0.1)
    assert threading.active_count() == before
    assert cal.threads == min(info.cpu_count(), calibration.MAX_THREADS)
    assert cal.free > 0 and len(cal.rounds) in (3, 5)
    assert cal.elements in calibration.ELEMENTS and cal.call_ms > 0
    assert cal.seconds < 5                               # "returns promptly", generously
    assert cal.when and calibration.last() is cal
    assert markers.find(str(cal))[0][0] == "calibration"
    json.dumps(cal.to_dict())
