"""benchmarks/gil_held.py: the arithmetic on perf's probe times, and (where perf uprobes can
be added: Linux, root, a GIL build) a real run of a few small steps."""

import os

import pytest
from scripts import ROOT, load_script


def _load():
    return load_script("benchmarks/gil_held.py")


def _line(tid: int, t: float, fn: str) -> str:
    return (f"python  {tid} [001] {t:.6f}:    probe_libpython3:PyEval_{fn}: "
            f"(7f50bb44fcf0)")


def test_held_time_is_the_wall_time_between_releases():
    gh = _load()
    events = [(1.000, "SaveThread"), (1.100, "RestoreThread")]         # import: a 100 ms sleep
    # segment: Restore at 1.100, then held 2 ms, released 5 ms, held 1 ms, released 2 ms
    events += [(1.102, "SaveThread"), (1.107, "RestoreThread"),
               (1.108, "SaveThread"), (1.110, "RestoreThread"),
               (1.110, "SaveThread"), (1.160, "RestoreThread")]        # the 50 ms sleep after
    lines = [_line(7, t, fn) for t, fn in events]
    lines.insert(3, _line(8, 1.103, "RestoreThread"))                  # another thread: ignored
    rows = gh.parse("\n".join(lines), [("step", 2, 0.010)])
    (row,) = rows
    assert row["name"] == "step" and row["steps"] == 2
    assert row["span"] == pytest.approx(0.010)          # Restore 1.100 -> last Save 1.110
    assert row["held"] == pytest.approx(0.003)          # 2 ms + 1 ms
    assert row["releases"] == 2                         # not the one that opens the sleep
    table = "\n".join(gh.table(rows))
    assert "| step | 5.000 | 1.500 | 30.0% | 1 |" in table


def test_a_real_run_where_perf_can_probe(tmp_path):
    gh = _load()
    if gh.missing() is not None or os.geteuid() != 0:
        pytest.skip("needs Linux, perf, root and a GIL build")
    args = type("Args", (), dict(task="mlp", batch=[8], steps=3, layers=False))()
    rows = gh.measure(args, ROOT)
    (row,) = rows
    assert row["name"] == "step, batch 8" and row["steps"] == 3
    assert 0 < row["held"] <= row["span"] and row["releases"] >= 0
