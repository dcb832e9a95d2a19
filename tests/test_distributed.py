"""mtlearn.distributed: MPI ranks train exactly like ``sync`` and ``serial``; a failing rank
stops the whole job; ``launch`` streams, times out cleanly and returns results.

Every MPI job runs as a subprocess (``mpiexec -n 1, 2, 4``) on a tiny float64 CNN, with a
timeout, so a hang fails a test instead of blocking CI. Tests that need mpi4py and the
``mpiexec`` beside this Python are skipped without them (as on the free-threaded run).
"""

import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from procs import needs_mpi

from mtlearn import distributed, nn, parallel
from mtlearn.distributed import LaunchError, MPINotAvailable, guard, launch, launcher

JOB = {"n": 96, "image_size": 12, "channels": (4, 6), "seed": 3}          # the problem
RUN = {"epochs": 2, "batch_size": 24, "lr": 0.1, "momentum": 0.9}        # 8 steps
REL = 1e-10
TIMEOUT = 60


def reference(strategy: str, threads: int):
    """The same job in this process with ``parallel.train``: (losses, final params)."""
    model, loss, data = distributed.cnn_problem(**JOB, dtype=np.float64)
    def opt(p):
        return nn.SGD(p, lr=RUN["lr"], momentum=RUN["momentum"])
    h = parallel.train(model, loss, data, strategy=strategy, threads=threads,
                       epochs=RUN["epochs"], batch_size=RUN["batch_size"], seed=JOB["seed"],
                       optimizer=opt)
    return np.array(h.losses), model.params.copy()


@pytest.fixture(scope="module")
def refs():
    return {"serial": reference("serial", 1), "sync": reference("sync", 2)}


def mpi_run(ranks: int, tmp_path, threads: int = 1, name: str = "params"):
    """``mpiexec -n ranks python -m mtlearn.distributed train cnn ...``:
    (result dict, final params)."""
    path = tmp_path / f"{name}-{ranks}-{threads}.npy"
    result = launch(ranks, "train", "cnn", **JOB, **RUN, dtype="float64", threads=threads,
                    save_params=path, echo=None, timeout=TIMEOUT)
    return result, np.load(path)


def assert_close(a, b, what):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, what
    assert np.max(np.abs(a - b)) <= REL * np.max(np.abs(b)), f"{what}: differs"


@needs_mpi
@pytest.mark.parametrize("ranks, threads", [(1, 1), (2, 1), (4, 1), (1, 2), (2, 2)])
def test_ranks_equal_sync_and_serial(ranks, threads, refs, tmp_path):
    result, params = mpi_run(ranks, tmp_path, threads)
    assert result["info"]["ranks"] == ranks and result["threads"] == threads
    assert len(result["losses"]) == 8
    for name, (losses, ref_params) in refs.items():
        assert_close(result["losses"], losses, f"losses vs {name}")
        assert_close(params, ref_params, f"final parameters vs {name}")
    assert result["info"]["replicas_identical"]     # every rank ended with the same params


@needs_mpi
def test_deterministic_run_to_run(tmp_path):
    r1, p1 = mpi_run(2, tmp_path, name="first")
    r2, p2 = mpi_run(2, tmp_path, name="second")
    np.testing.assert_array_equal(r1["losses"], r2["losses"])     # bit for bit
    np.testing.assert_array_equal(p1, p2)


@needs_mpi
def test_history_has_every_rank(tmp_path, no_thread_leak):
    result, params = mpi_run(2, tmp_path, threads=2)
    assert result["strategy"] == "mpi"
    assert len(result["step_times"]) == len(result["losses"]) and result["wall_time"] > 0
    threads = {s[0] for s in result["trace"]}
    assert {"rank0/main", "rank1/main", "rank0/thread-0", "rank1/thread-1"} <= threads
    reduce_spans = [s for s in result["trace"] if s[0].endswith("/main") and s[1] == "reduce"]
    assert len(reduce_spans) == 2 * 8                    # one Allreduce per step per rank
    assert all(s[3] >= s[2] for s in result["trace"])
    assert {"rank0/main", "rank1/thread-0"} <= set(result["thread_cpu"])
    info = result["info"]
    assert info["allreduce_bytes"] == (params.size + 1) * 8   # gradient + loss, float64
    assert len(info["allreduce_s_per_rank"]) == 2
    assert "epoch 2/2" in result["output"]               # rank 0's log, once per epoch
    assert result["output"].count("epoch 1/2") == 1


FAILING = textwrap.dedent("""
    import sys
    import numpy as np
    from mpi4py import MPI
    from mtlearn import distributed, nn

    rank = MPI.COMM_WORLD.Get_rank()
    bad_rank, how, threads = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])

    class Failing(nn.ReLU):
        calls = 0
        def forward(self, x):
            Failing.calls += 1
            if rank == bad_rank and Failing.calls == 3:
                if how == "exit":
                    import os
                    os._exit(3)                          # dies without a word
                raise RuntimeError(f"boom on rank {rank}")
            return super().forward(x)

    model, loss, data = distributed.cnn_problem(96, image_size=12, channels=(4, 6),
                                                dtype=np.float64)
    model = nn.Sequential(Failing(), *model.layers, dtype=np.float64)
    distributed.train(model, loss, data, threads=threads, epochs=3, batch_size=24)
    print("rank", rank, "finished", flush=True)
""")


@needs_mpi
@pytest.mark.parametrize("threads", [1, 2])
def test_failing_rank_stops_the_job_with_its_error(threads, tmp_path, no_thread_leak):
    script = tmp_path / "failing.py"
    script.write_text(FAILING)
    segments = guard.shm_files()
    start = time.monotonic()
    with pytest.raises(LaunchError) as err:
        launch(2, "1", "raise", str(threads), program=[str(script)], echo=None, timeout=30)
    assert err.value.returncode != 0
    assert "boom on rank 1" in err.value.output
    assert "rank 1 of 2 failed" in err.value.output
    assert "finished" not in err.value.output
    assert time.monotonic() - start < 20
    assert guard.shm_files() <= segments      # no shared memory left behind


@needs_mpi
def test_rank_that_dies_stops_the_job(tmp_path):
    script = tmp_path / "failing.py"
    script.write_text(FAILING)
    with pytest.raises(LaunchError) as err:
        launch(2, "0", "exit", "1", program=[str(script)], echo=None, timeout=30)
    assert err.value.returncode != 0 and "finished" not in err.value.output


@needs_mpi
def test_launch_streams_lines_as_they_come(tmp_path, no_thread_leak):
    # The job waits until the test has *seen* its first line: without streaming it would
    # wait forever and the timeout would fail the test.
    flag = tmp_path / "seen"
    script = tmp_path / "waits.py"
    script.write_text(textwrap.dedent(f"""
        import os, time
        from mpi4py import MPI
        if MPI.COMM_WORLD.Get_rank() == 0:
            print("ready", flush=True)
            while not os.path.exists({str(flag)!r}):
                time.sleep(0.01)
            print("done", flush=True)
        MPI.COMM_WORLD.Barrier()
    """))
    seen = []

    def echo(line):
        seen.append(line)
        if line == "ready":
            flag.touch()

    result = launch(2, program=[str(script)], echo=echo, timeout=30)
    assert seen == ["ready", "done"] and result["output"] == "ready\ndone"
    assert result["elapsed_s"] > 0


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


@needs_mpi
@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc")
def test_timeout_stops_every_rank(tmp_path, no_thread_leak):
    script = tmp_path / "hangs.py"
    script.write_text(textwrap.dedent(f"""
        import os, time
        from mpi4py import MPI
        rank = MPI.COMM_WORLD.Get_rank()
        open(os.path.join({str(tmp_path)!r}, f"pid{{rank}}"), "w").write(str(os.getpid()))
        print("rank", rank, "waiting", flush=True)
        time.sleep(600)
    """))
    start = time.monotonic()
    with pytest.raises(TimeoutError, match="did not finish within 3"):
        launch(2, program=[str(script)], echo=None, timeout=3)
    assert time.monotonic() - start < 3 + 2 * launcher.GRACE + 2
    pids = [int((tmp_path / f"pid{r}").read_text()) for r in range(2)]
    deadline = time.monotonic() + 5
    while any(map(_alive, pids)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(map(_alive, pids)), "a rank outlived the timeout"


@needs_mpi
def test_bad_arguments_exit_2_on_every_rank():
    with pytest.raises(LaunchError) as err:
        launch(2, "train", "cnn", n=16, batch_size=1, echo=None, timeout=TIMEOUT)
    assert err.value.returncode == 2
    assert "ranks x threads" in err.value.output
    assert err.value.output.count("ranks x threads") == 1      # said once, by rank 0


@needs_mpi
def test_allreduce_timing_job():
    r = launch(2, "allreduce", sizes=(1000, 20000), repeats=3, echo=None, timeout=TIMEOUT)
    assert r["ranks"] == 2 and r["sizes"] == [1000, 20000] and r["bytes"] == [8000, 160000]
    assert len(r["seconds"]) == 2 and all(t > 0 for t in r["seconds"])


def test_without_mpi4py_import_works_and_says_how_to_install():
    code = textwrap.dedent("""
        import sys
        sys.modules["mpi4py"] = None          # importing mpi4py now raises ImportError
        import mtlearn.distributed as d
        assert not d.mpi_available()
        try:
            d.require_mpi()
        except ImportError as exc:
            print("require_mpi:", exc)
        from mtlearn.distributed.__main__ import main
        print("exit code", main(["train", "cnn"]))
    """)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr
    assert 'require_mpi: mtlearn.distributed needs mpi4py' in p.stdout
    assert "exit code 2" in p.stdout
    assert 'pip install "mtlearn[mpi]"' in p.stderr and "pip install mpi4py mpich" in p.stderr


def test_without_mpiexec_launch_says_how_to_install(monkeypatch):
    monkeypatch.setenv("MTLEARN_MPIEXEC", "/nonexistent/mpiexec")
    with pytest.raises(MPINotAvailable, match=r'mtlearn\[mpi\]'):
        launch(2, "train", "cnn", echo=None)
    with pytest.raises(ValueError, match="ranks"):
        distributed.command(0, "train", "cnn")


def test_ring_allreduce_cost_model():
    assert distributed.ring_allreduce_bytes(800, 1) == 0
    assert distributed.ring_allreduce_bytes(800, 2) == 800
    assert distributed.ring_allreduce_bytes(800, 4) == 1200       # 2 (N-1)/N of the size
    sizes = np.array([1e3, 1e4, 1e5, 1e6, 1e7])
    times = distributed.allreduce_time(sizes, 4, latency=5e-6, bandwidth=2e9)
    fit = distributed.fit_allreduce(sizes, times, 4)
    assert fit["latency"] == pytest.approx(5e-6, rel=1e-6)
    assert fit["bandwidth"] == pytest.approx(2e9, rel=1e-6)
    assert distributed.bus_bandwidth(sizes, times, 4)[-1] < 2e9   # latency costs a little
