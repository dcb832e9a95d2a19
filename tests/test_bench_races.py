"""bench.races: lost updates with no lock, a lock and per-thread data; in another Python.

No test asserts that updates *are* lost (that depends on the build, the cores and the
load): only what must hold everywhere — locked and per-thread counts are exact, a race
never invents an update, every thread is joined, errors and bad arguments are reported.
"""

import importlib
import json
import sys
import threading

import pytest

from mtlearn import bench
from mtlearn.__main__ import main
from mtlearn.bench.interpreters import InterpreterError

# the module (``bench.races`` is the function of the same name)
races_module = importlib.import_module("mtlearn.bench.races")
SMALL = {"counter": 20_000, "array": 3}


@pytest.mark.parametrize("kind", races_module.KINDS)
@pytest.mark.parametrize("how", races_module.WAYS)
def test_lost_updates_counts(kind, how, no_thread_leak):
    r = bench.lost_updates(kind, how, threads=3, updates=SMALL[kind], size=1000)
    size = 1000 if kind == "array" else 1
    assert r.expected == 3 * SMALL[kind] * size and r.threads == 3
    assert 0 <= r.lost <= r.expected and r.seconds > 0
    if how != "shared":
        assert r.lost == 0


def test_bad_arguments_start_no_thread(monkeypatch):
    def refuse(self):
        raise AssertionError("a thread was started")
    monkeypatch.setattr(threading.Thread, "start", refuse)
    with pytest.raises(ValueError, match="kind"):
        bench.lost_updates("dict")
    with pytest.raises(ValueError, match="how"):
        bench.lost_updates("counter", "atomic")
    with pytest.raises(ValueError, match="threads"):
        bench.lost_updates("counter", threads=0)
    with pytest.raises(ValueError, match="updates"):
        bench.races(counter_updates=0)


def test_an_error_in_a_thread_reaches_the_caller(monkeypatch, no_thread_leak):
    def broken(*args):
        def task(i):
            if i == 1:
                raise ZeroDivisionError("worker 1")
        return task
    monkeypatch.setattr(races_module, "_counter_task", broken)
    with pytest.raises(ZeroDivisionError, match="worker 1"):
        bench.lost_updates("counter", "shared", threads=2)


def test_races_report_and_json_round_trip(no_thread_leak):
    r = bench.races(threads=2, repeats=2, counter_updates=1000, array_updates=2, size=600)
    assert len(r.results) == 2 * len(races_module.KINDS) * len(races_module.WAYS)
    assert r.lost("counter", "lock") == [0, 0] and r.lost("array", "own") == [0, 0]
    assert "/" not in r.info["executable"] and "GIL" in r.label
    text = r.table()
    assert "counter" in text and "array" in text and "lock" in text
    assert bench.Races.from_dict(json.loads(json.dumps(r.to_dict()))) == r
    with pytest.raises(ValueError, match="format"):
        bench.Races.from_dict({"format": "other"})


def test_races_in_another_interpreter():
    r = bench.races_in(sys.executable, repeats=1, counter_updates=1000, array_updates=1,
                       size=600, timeout=60)
    assert r.info["python"] and len(r.results) == len(races_module.KINDS) * len(races_module.WAYS)
    with pytest.raises(InterpreterError, match="no such interpreter"):
        bench.races_in("/nonexistent/python9.99t")


def test_command_line(capsys):
    assert main(["races", "--repeats", "1", "--counter-updates", "500", "--array-updates", "1",
                 "--size", "600", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert bench.Races.from_dict(d).results
    assert main(["races", "--threads", "0"]) == 2


def test_the_recorded_races_load():
    from mtlearn.bench import recorded

    about = recorded.about(recorded.RACES)
    found = recorded.races()
    assert list(found) == about["pythons"] and len(found) == 2
    builds = [r.info["free_threaded_build"] for r in found.values()]
    assert builds == [False, True]
    text = json.dumps(recorded.load(recorded.RACES))
    assert not any(root in text for root in ("/home/", "/root/", "/tmp/", "/work/"))
    for r in found.values():
        assert "/" not in r.info["executable"]
        assert all(x == 0 for how in ("lock", "own") for kind in races_module.KINDS
                   for x in r.lost(kind, how))
