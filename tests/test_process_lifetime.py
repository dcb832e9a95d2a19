"""The ``process`` strategy's workers die with their parent, under every start method.

A child Python process runs ``parallel.train(strategy="process")`` on a long run; the test
kills it (SIGKILL or SIGTERM) while its workers are mid-step — stuck in a 30 s step — or
still setting up (before the parent has removed the shared-memory names), then checks that
within 5 s no process the child started is alive and none of the run's shared-memory
segments is left.
"""

import multiprocessing as mp
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from procs import alive, clean_up, descendants, wait_for

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc") or not os.path.isdir("/dev/shm"),
                                reason="reads /proc and /dev/shm (Linux)")

METHODS = [m for m in ("fork", "forkserver", "spawn") if m in mp.get_all_start_methods()]
#: how long everything may take to go once the parent is killed
DEADLINE = 5.0

CHILD = textwrap.dedent("""
    import os, sys, time
    import numpy as np
    from mtlearn import data, nn, parallel
    from mtlearn.parallel import process_worker

    MARKS = sys.argv[3]
    PARENT = os.getpid()


    def mark(what):
        open(os.path.join(MARKS, f"{what}-{os.getpid()}"), "w").close()


    class Stuck(nn.ReLU):
        # In a worker, its first step never ends (30 s): the parent is killed mid-step.
        def __init__(self):
            super().__init__()
            self.parent = PARENT                    # pickled: a worker's PARENT is its own

        def forward(self, x):
            if os.getpid() != self.parent:
                mark("step")
                time.sleep(30)
            return super().forward(x)


    def slow_relu(parent):
        # Unpickled in a worker: setup takes 30 s, so the parent is killed during start-up.
        if os.getpid() != parent:
            mark("setup")
            time.sleep(30)
        return nn.ReLU()


    class SlowToSetUp(nn.ReLU):
        def __reduce__(self):
            return slow_relu, (PARENT,)


    if __name__ == "__main__":
        method, phase = sys.argv[1], sys.argv[2]
        create = process_worker.SharedArrays.create

        def recording(self, key, shape, dtype):     # tell the test the segments' names
            out = create(self, key, shape, dtype)
            with open(os.path.join(MARKS, "segments"), "a") as f:
                f.write(self.segments[key].name + "\\n")
            return out
        process_worker.SharedArrays.create = recording
        X, y = data.shapes(96, size=12, seed=3)
        layer = Stuck() if phase == "step" else SlowToSetUp()
        model = nn.Sequential(nn.Flatten(), nn.Dense(144, 8), layer, nn.Dense(8, 4),
                              dtype=np.float64)
        parallel.train(model, nn.SoftmaxCrossEntropy(), (X.astype(np.float64), y),
                       strategy="process", threads=2, epochs=100, batch_size=24,
                       start_method=method)
""")




@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("phase, sig", [("step", signal.SIGKILL), ("step", signal.SIGTERM),
                                        ("setup", signal.SIGKILL)],
                         ids=["step-SIGKILL", "step-SIGTERM", "setup-SIGKILL"])
def test_workers_and_shared_memory_go_when_the_parent_is_killed(method, phase, sig,
                                                                tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    marks = tmp_path / "marks"
    marks.mkdir()
    family, names = set(), []
    log = open(tmp_path / "child.log", "w")
    child = subprocess.Popen([sys.executable, str(script), method, phase, str(marks)],
                             stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        # Both workers are in their 30 s step (or setup) once both have left a mark.
        wait_for(lambda: child.poll() is not None
                 or len(list(marks.glob(f"{phase}-*"))) == 2, 60, "two workers busy")
        assert child.poll() is None, (tmp_path / "child.log").read_text()
        family = descendants(child.pid)
        names = (marks / "segments").read_text().split()
        assert len(names) == 4 and len(family) >= 2
        if phase == "setup":            # the names still exist: the workers must remove them
            assert all((Path("/dev/shm") / name).exists() for name in names)
        child.send_signal(sig)
        took = wait_for(lambda: not any(map(alive, family)), DEADLINE,
                        f"every process of the run ended ({sorted(family)})")
        took += wait_for(lambda: not any((Path("/dev/shm") / n).exists() for n in names),
                         DEADLINE - took, f"the run's segments removed ({names})")
        print(f"{method}, {phase}, {sig.name}: {len(family)} processes and {len(names)} "
              f"segments gone {took:.3f} s after the parent was killed")
    finally:                            # a failed test leaves nothing behind either
        clean_up(child, family, names)
        log.close()
    assert child.returncode == -sig
