"""benchmarks/bench_parallel.py --quick runs end to end (a few seconds) and prints its
three tables, the machine and its load, and on request the X-ray and the machine's ceiling; it
records nothing without --record."""

from scripts import load_script


def _load():
    return load_script("benchmarks/bench_parallel.py")


def test_bench_parallel_quick(capsys, no_thread_leak):
    bench = _load()
    before = bench.RESULTS.read_text() if bench.RESULTS.exists() else None
    assert bench.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "### bench_parallel" in out and "(quick)" in out
    for strategy in bench.STRATEGIES:
        assert f"| {strategy} | 2 |" in out
    rows = {line.split("|")[1].strip(): line for line in out.splitlines()
            if line.startswith("| ") and "ms/" in line}
    assert "updates/s" in rows["hogwild"] and "ms/update" in rows["hogwild"]
    assert "steps/s" in rows["sync"] and "ms/step" in rows["sync"]
    assert "| hogwild: updates per run | | 1: 16, 2: 32 |" in out     # 16 per worker
    assert "USL σ = " in out and "Amdahl s = " in out
    assert "Load average (1, 5, 15 min) before: " in out and "Load average after: " in out
    assert "Tracing overhead" in out and "threads, batch 32 |" in out
    assert "| course CNN | 2 | 4 | 20.0% |" in out
    assert "| balanced MLP, 12 x Dense(576) ReLU | 2 | 1 | 50.0% |" in out
    assert bench.main(["--quick", "--parts", "xray"]) == 0
    out = capsys.readouterr().out
    assert "| serial x1 |" in out and "| sync x2 |" in out and "X-ray of `sync`" in out
    assert bench.main(["--quick", "--parts", "ceiling"]) == 0     # 2 worker processes
    out = capsys.readouterr().out
    assert "The machine's ceiling" in out
    if bench.info.cpu_count() >= 2:                # one row per count from 2 to the cores
        row = next(line for line in out.splitlines() if line.startswith("| 2 |"))
        serial, shard = (float(cell) for cell in row.split("|")[2:4])
        ceiling = float(row.split("**")[1].rstrip("x"))
        assert serial > 0 and shard > 0 and abs(ceiling - serial / shard) < 0.3
    after = bench.RESULTS.read_text() if bench.RESULTS.exists() else None
    assert after == before
