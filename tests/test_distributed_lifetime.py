"""``distributed.launch``: the job dies with its caller, cleans up only its own shared memory,
listens on no network interface, and refuses bad arguments before anything starts.

The jobs here are tiny scripts whose ranks write their pids and wait; every wait has a
timeout, so a hang fails a test instead of blocking CI.
"""

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from procs import alive, clean_up, descendants, needs_mpi, stat, wait_for

from mtlearn.distributed import LaunchError, launch, launcher

linux = pytest.mark.skipif(not os.path.isdir("/proc") or not os.path.isdir("/dev/shm"),
                           reason="reads /proc and /dev/shm (Linux)")
SHM = Path("/dev/shm")
DEADLINE = 5.0

# Each rank writes "pid-RANK" (its pid) and "shm-RANK" (the MPICH files it maps), prints
# "ready", then waits for the file "go" (or 60 s); rank FAIL (argv[2]) then aborts the job.
RANK = textwrap.dedent("""
    import os, sys, time
    from mpi4py import MPI
    folder, fail = sys.argv[1], int(sys.argv[2])
    comm = MPI.COMM_WORLD
    rank = comm.Get_rank()
    comm.Barrier()
    maps = open("/proc/self/maps").read().split()
    shm = sorted({os.path.basename(w) for w in maps if "/dev/shm/mpich_shm_" in w})
    with open(os.path.join(folder, f"shm-{rank}"), "w") as f:
        f.write("\\n".join(shm))
    with open(os.path.join(folder, f"pid-{rank}"), "w") as f:
        f.write(str(os.getpid()))
    print("ready", rank, flush=True)
    t0 = time.monotonic()
    while not os.path.exists(os.path.join(folder, "go")) and time.monotonic() - t0 < 60:
        time.sleep(0.01)
    if rank == fail:                                # what abort_on_error does
        print(f"rank {rank} fails on purpose", flush=True)
        comm.Abort(1)
    comm.Barrier()
""")




def job_files(folder: Path, ranks: int = 2) -> tuple[list[int], set[str]]:
    """The ranks' pids and the MPICH files they map, once every rank is ready."""
    wait_for(lambda: all((folder / f"pid-{r}").exists() for r in range(ranks)), 60,
             "every rank ready")
    time.sleep(0.05)                            # the files are written before the pid files
    pids = [int((folder / f"pid-{r}").read_text()) for r in range(ranks)]
    names = set()
    for r in range(ranks):
        names |= set((folder / f"shm-{r}").read_text().split())
    return pids, names


@pytest.fixture
def rank_script(tmp_path):
    script = tmp_path / "rank.py"
    script.write_text(RANK)
    folder = tmp_path / "job"
    folder.mkdir()
    return script, folder


CALLER = textwrap.dedent("""
    import sys
    from mtlearn.distributed import launch
    launch(2, program=[sys.argv[1], sys.argv[2], "-1"], echo=print, timeout=120)
""")


@needs_mpi
@linux
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_the_whole_job_ends_with_its_caller(sig, rank_script, tmp_path):
    script, folder = rank_script
    caller = subprocess.Popen([sys.executable, "-c", CALLER, str(script), str(folder)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    family, names = set(), set()
    try:
        pids, names = job_files(folder)
        family = descendants(caller.pid)       # keeper, mpiexec, ranks
        assert set(pids) <= family and len(family) >= 4
        assert names, "MPICH maps shared-memory files in /dev/shm"
        caller.send_signal(sig)
        took = wait_for(lambda: not any(map(alive, family)), DEADLINE,
                        f"every process of the job ended ({sorted(family)})")
        took += wait_for(lambda: not any((SHM / n).exists() for n in names), DEADLINE - took,
                         f"the job's shared memory removed ({sorted(names)})")
        print(f"caller killed by {sig.name}: {len(family)} processes and {len(names)} "
              f"shared-memory files gone {took:.3f} s later")
    finally:
        clean_up(caller, family, names)


def _in_thread(target):
    """Run ``target()`` in a thread; returns ``(thread, outcome)`` with outcome["error"]."""
    outcome = {}

    def run():
        try:
            outcome["result"] = target()
        except BaseException as exc:
            outcome["error"] = exc
    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


@needs_mpi
@linux
def test_clean_up_after_an_aborted_job_touches_only_its_own_files(rank_script):
    script, folder = rank_script
    thread, outcome = _in_thread(lambda: launch(2, program=[str(script), str(folder), "1"],
                                                echo=None, timeout=60))
    decoy = SHM / f"mpich_shm_mtlearntest{os.getpid()}_0"    # "another job's" file: new,
    try:                                                      # and mapped by no one
        pids, names = job_files(folder)
        decoy.write_bytes(b"\0" * 64)
        (folder / "go").touch()                 # rank 1 raises: MPI_Abort, no Finalize
        thread.join(30)
        assert not thread.is_alive()
        assert isinstance(outcome.get("error"), LaunchError)
        assert "fails on purpose" in outcome["error"].output
        assert names and not any((SHM / n).exists() for n in names), "the job's files stay"
        assert decoy.exists(), "a file that was not the job's was removed"
        assert not any(map(alive, pids))
    finally:
        (folder / "go").touch()
        thread.join(30)
        with contextlib.suppress(FileNotFoundError):
            decoy.unlink()


def _listening_sockets(pid: int) -> list[str]:
    """``host:port`` of every TCP/UDP socket process ``pid`` holds that listens or is bound
    for receiving (LISTEN, or an unconnected UDP socket)."""
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    found = []
    for table, listening in (("tcp", "0A"), ("tcp6", "0A"), ("udp", "07"), ("udp6", "07")):
        with contextlib.suppress(OSError), open(f"/proc/{pid}/net/{table}") as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[3] == listening and fields[9] in inodes:
                    found.append(f"{table} {fields[1]}")
    return found


def _loopback(entry: str) -> bool:
    table, address = entry.split()
    host = address.split(":")[0]
    if table.endswith("6"):
        return host == "00000000000000000000000001000000"          # ::1
    return host.endswith("7F")                                     # 127.x.x.x, little-endian


@needs_mpi
@linux
def test_a_local_job_listens_on_no_network_interface(rank_script):
    script, folder = rank_script
    thread, outcome = _in_thread(lambda: launch(2, program=[str(script), str(folder), "-1"],
                                                echo=None, timeout=60))
    try:
        pids, _ = job_files(folder)
        mpiexec = int(stat(pids[0])[1])       # gforker: the ranks' parent
        keeper = int(stat(mpiexec)[1])
        job = {keeper, mpiexec, *pids, *descendants(mpiexec)}
        exposed = {pid: [s for s in _listening_sockets(pid) if not _loopback(s)]
                   for pid in job}
        assert not any(exposed.values()), f"listening beyond loopback: {exposed}"
    finally:
        (folder / "go").touch()
        thread.join(30)
    assert "error" not in outcome, outcome.get("error")


# -- arguments, checked before anything starts -----------------------------------------------

@pytest.fixture
def nothing_starts(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a job was started")
    monkeypatch.setattr(launcher, "_run", refuse)


@pytest.mark.parametrize("kwargs, error, names", [
    ({"momentum": 1.5}, ValueError, "--momentum"),
    ({"lr": 0}, ValueError, "--lr"),
    ({"epochs": "abc"}, ValueError, "--epochs"),
    ({"epochs": 0}, ValueError, "--epochs"),
    ({"save_params": "/nonexistent/p.npy"}, ValueError, "--save-params"),
    ({"epoch": 2}, ValueError, "--epoch"),
    ({"epochs": object()}, TypeError, "epochs"),
    ({"timeout": -1}, ValueError, "timeout"),
    ({"timeout": "soon"}, TypeError, "timeout"),
    ({"echo": 5}, TypeError, "echo"),
    ({"env": {"A": 1}}, TypeError, "env"),
])
def test_launch_refuses_bad_arguments_before_anything_starts(kwargs, error, names,
                                                             nothing_starts):
    with pytest.raises(error, match=names):
        launch(2, "train", "cnn", **kwargs)


@pytest.mark.parametrize("ranks, error", [(0, ValueError), (2.5, TypeError), (10**5, ValueError),
                                          ("2", TypeError)])
def test_launch_refuses_a_bad_rank_count(ranks, error, nothing_starts):
    with pytest.raises(error, match="ranks"):
        launch(ranks, "train", "cnn")


CLI = textwrap.dedent("""
    import contextlib, io, os, sys
    from mtlearn.distributed.__main__ import main
    for argv in ([["--momentum", "1.5"], ["--lr", "0"], ["--epochs", "abc"],
                  ["--json", "/nonexistent/x"], ["--save-params", "/nonexistent/p.npy"]]):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            try:
                main(["train", "cnn", *argv])
                print("trained!")
            except SystemExit as exc:
                print(exc.code, err.getvalue().strip().splitlines()[-1])
    os.environ["PMI_RANK"] = "1"                   # under mpiexec, only rank 0 speaks
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            main(["train", "cnn", "--lr", "0"])
        except SystemExit as exc:
            print(exc.code, repr(err.getvalue()))
    print("mpi4py" in sys.modules)
""")


def test_command_line_refuses_bad_options_before_training():
    p = subprocess.run([sys.executable, "-c", CLI], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    for line, option in zip(lines, ["--momentum", "--lr", "--epochs", "--json",
                                    "--save-params"], strict=False):
        assert line.startswith("2 ") and f"argument {option}:" in line, line
    assert "--momentum: must be a finite number >= 0 and < 1, got 1.5" in lines[0]
    assert "no directory '/nonexistent'" in lines[3]
    assert lines[5] == "2 ''"
    assert lines[6] == "False", "MPI was started: the options were not checked first"


def test_keeper_alone_reports_the_command_exit_code():
    keeper = subprocess.Popen([sys.executable, "-I", "-S", str(launcher.GUARD),
                               sys.executable, "-c", "import sys; sys.exit(3)"],
                              stdin=subprocess.PIPE)    # the lifeline stays open
    try:
        assert keeper.wait(30) == 3
    finally:
        keeper.stdin.close()
        keeper.wait()
