"""Comparing interpreters (subprocesses, JSON back) and ``python -m mtlearn gil``."""

import json
import os
import stat
import sys
import time

import pytest

from mtlearn import bench
from mtlearn.__main__ import main
from mtlearn.bench import interpreters

QUICK = {"workloads": ["io"], "threads": [1, 2], "repeats": 1, "work": 0.05}


def fake_python(tmp_path, name, body):
    """An executable script standing in for a broken interpreter."""
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


posix_only = pytest.mark.skipif(os.name != "posix", reason="uses /bin/sh scripts")


def test_suite_and_json_round_trip(no_thread_leak):
    s = bench.suite(["io", "mixed"], threads=[2], repeats=1, work=0.05)
    assert list(s.results) == ["io", "mixed"] and not s.skipped
    assert s.info["python"] and "io" in s.table() and "GIL" in s.label
    back = bench.Suite.from_dict(json.loads(json.dumps(s.to_dict())))
    assert back == s
    with pytest.raises(ValueError, match="format"):
        bench.Suite.from_dict({"format": "something else"})


def test_another_interpreter_in_a_subprocess():
    c = bench.compare_interpreters([sys.executable], include_self=False, **QUICK)
    assert not c.errors and list(c.suites) == [sys.executable]
    (s,) = c.suites.values()
    assert s.results["io"].threads == [1, 2]
    rows = c.rows()
    assert len(rows) == 2 and {r["workload"] for r in rows} == {"io"}
    assert bench.Comparison.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    assert "io" in c.table()


@posix_only
def test_missing_broken_and_hanging_interpreters_are_reported(tmp_path):
    missing = str(tmp_path / "python9.99t")
    failing = fake_python(tmp_path, "failing", "echo 'no module named mtlearn' >&2; exit 3")
    garbled = fake_python(tmp_path, "garbled", "echo hello")
    hanging = fake_python(tmp_path, "hanging", "exec sleep 60")
    t0 = time.perf_counter()
    c = bench.compare_interpreters([missing, failing, garbled, hanging], include_self=False,
                                   timeout=1.0, **QUICK)
    assert time.perf_counter() - t0 < 15
    assert c.suites == {}
    assert "no such interpreter" in c.errors[missing]
    assert "status 3" in c.errors[failing] and "no module named mtlearn" in c.errors[failing]
    assert "JSON" in c.errors[garbled] and "hello" in c.errors[garbled]
    assert "no answer after 1 s" in c.errors[hanging]
    assert "not compared" in c.table()


def test_find_interpreters(tmp_path, monkeypatch):
    assert bench.find_interpreters(["a", "b", "a"]) == ["a", "b"]
    assert bench.find_interpreters("a b,c") == ["a", "b", "c"]
    other = tmp_path / "pythonX"
    other.write_text("")
    monkeypatch.setenv(interpreters.ENV_VAR, f"{other} {sys.executable} {tmp_path / 'gone'}")
    monkeypatch.setattr(interpreters, "KNOWN_NAMES", ())
    monkeypatch.setattr(interpreters, "CACHE_RECORD", tmp_path / "no-record")
    assert bench.find_interpreters() == [str(other)]    # not this one, not missing ones


def test_compare_checks_its_arguments():
    with pytest.raises(ValueError, match="timeout"):
        bench.compare_interpreters([], timeout=0)
    with pytest.raises(ValueError, match="threads"):
        bench.compare_interpreters([], threads=[])


# ---------------------------------------------------------------------------- the command


def test_cli_table(capsys, no_thread_leak):
    assert main(["gil", "--workloads", "io,python", "--threads", "1,2", "--repeats", "1",
                 "--work", "0.02"]) == 0
    out = capsys.readouterr().out
    assert "io" in out and "python" in out and "2 threads" in out


def test_cli_json(capsys):
    assert main(["gil", "--json", "--workloads", "io", "--threads", "2", "--repeats", "1",
                 "--work", "0.02"]) == 0
    s = bench.Suite.from_dict(json.loads(capsys.readouterr().out))
    assert s.results["io"].threads == [1, 2]


def test_cli_bad_arguments(capsys):
    assert main(["gil", "--threads", "1,x"]) == 2
    assert main(["gil", "--threads", "0"]) == 2
    assert main(["gil", "--workloads", "nope"]) == 2
    assert "mtlearn gil:" in capsys.readouterr().err


@posix_only
def test_cli_python_that_fails(tmp_path, capsys):
    bad = fake_python(tmp_path, "bad", "exit 1")
    assert main(["gil", "--python", bad, "--workloads", "io", "--threads", "2",
                 "--repeats", "1", "--work", "0.02"]) == 1
    assert "not compared" in capsys.readouterr().out
