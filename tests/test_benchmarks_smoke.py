"""benchmarks/bench_parallel.py --quick runs end to end (a few seconds) and prints its
three tables; it records nothing without --record."""

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_parallel.py"


def _load():
    spec = importlib.util.spec_from_file_location("bench_parallel", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_parallel_quick(capsys, no_thread_leak):
    bench = _load()
    before = bench.RESULTS.read_text() if bench.RESULTS.exists() else None
    assert bench.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "### bench_parallel" in out and "(quick)" in out
    for strategy in bench.STRATEGIES:
        assert f"| {strategy} | 2 |" in out
    assert "Tracing overhead" in out and "threads, batch 32 |" in out
    assert "| course CNN | 2 | 4 | 20.0% |" in out
    assert "| 12 x Dense(512) Tanh | 2 | 1 | 50.0% |" in out
    after = bench.RESULTS.read_text() if bench.RESULTS.exists() else None
    assert after == before
