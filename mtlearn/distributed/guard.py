"""The keeper of one MPI job started by :func:`~mtlearn.distributed.launch`: the whole job
ends with its caller, and the job's own shared memory goes with it.

    python -I -S guard.py mpiexec -n 2 python -m mtlearn.distributed train cnn ...

The keeper runs the command (``mpiexec``) as its child, in a process group of its own, and
waits for one of two things:

* the command ends: the job finished, or failed — then whatever is left of it is killed
  (an aborted job's ranks can outlive ``mpiexec`` for a moment);
* its standard input, the **lifeline**, reaches end of file. Only the caller holds the
  write end of that pipe and never writes to it; it closes it to stop the job (timeout,
  Ctrl-C), and the kernel closes it when the caller's process ends for any reason, SIGKILL
  included. The job's processes then get SIGTERM, and SIGKILL after :data:`GRACE`
  seconds (:meth:`Job.stop`).

Why a separate process: whatever cleans up after a killed caller must outlive it. The keeper
is started in a session of its own, so neither a terminal's Ctrl-C nor a signal to the
caller's process group reaches it; and on Linux ``mpiexec`` is started with
``prctl(PR_SET_PDEATHSIG, SIGTERM)``, so the kernel stops the job even if the keeper itself
is killed.

The job's processes are ``mpiexec``'s process group (MPICH's ``gforker`` keeps its ranks
there) and every descendant of ``mpiexec`` seen while it ran (``hydra`` gives its proxy and
each rank a session of their own). The job's shared memory: MPICH keeps the ranks' shared
memory in files ``/dev/shm/mpich_shm_*`` that ``MPI_Finalize`` removes — an aborted or
killed job never gets there. The keeper watches ``/dev/shm`` while the job runs and notes
each new file that one of the job's own processes maps (``/proc/PID/maps``); once the job's
processes are gone it removes those files, and only those: a concurrent job of the same user
is never touched. (A job that fails within the first ~0.1 s, before a look, may leave its
files; they are never guessed at.) Without ``/proc`` (macOS) the keeper still stops the job
with its caller but cannot tell which files are the job's, and leaves them.

With ``gforker`` the keeper also works around a race in it that could keep a finished job
waiting, and a core busy, for up to 2 s (see :meth:`Job._hold`).

Standard library only, run with ``python -I -S``: it starts in milliseconds and cannot be
broken by anything installed. Exit code: the command's (128 + N when signal N ended it).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time

#: seconds between SIGTERM and SIGKILL when the job is stopped
GRACE = 2.0
#: seconds between two looks at the lifeline, the command and /dev/shm
TICK = 0.05
SHM = "/dev/shm"
PREFIX = "mpich_shm_"
_PR_SET_PDEATHSIG = 1                          # from <linux/prctl.h>


def shm_files() -> set[str]:
    """Names of MPICH's shared-memory files now (empty where there is no /dev/shm)."""
    try:
        return {name for name in os.listdir(SHM) if name.startswith(PREFIX)}
    except OSError:
        return set()


def process_table() -> dict[int, tuple[int, int, int, str]]:
    """``pid -> (parent pid, process group, start time, state)`` of every process now, from
    ``/proc`` (empty without it)."""
    table = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return table
    for entry in entries:
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields is not None:
                table[int(entry)] = fields
    return table


def _stat(pid: int) -> tuple[int, int, int, str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()   # the name may hold spaces
    except (OSError, IndexError):
        return None
    # fields[0] is stat's 3rd field (state): ppid 4th, pgrp 5th, starttime 22nd
    return int(fields[1]), int(fields[2]), int(fields[19]), fields[0].decode()


def alive(pid: int, start: int) -> bool:
    """``pid`` still runs the process that started at ``start`` (not a zombie, not reused)."""
    fields = _stat(pid)
    return fields is not None and fields[2] == start and fields[3] not in ("Z", "X")


def mapped(pid: int, names: set[str]) -> set[str]:
    """Those of ``names`` (files in /dev/shm) that process ``pid`` maps now."""
    try:
        with open(f"/proc/{pid}/maps") as f:
            text = f.read()
    except OSError:
        return set()
    return {name for name in names if f"{SHM}/{name}" in text}


def _pdeathsig_preexec(sig: int):
    """A ``preexec_fn`` that asks the kernel to send ``sig`` to the child when this process
    ends (Linux), or None where that is not available."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
        if os.getppid() != parent:            # the keeper went before the request was made
            os._exit(1)
    return preexec


class Job:
    """The command, its processes (``members``: pid -> start time) and its shared-memory
    files (``segments``), as far as they have been seen."""

    def __init__(self, cmd: list[str]):
        self.before = shm_files()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, start_new_session=True,
                                     preexec_fn=_pdeathsig_preexec(int(signal.SIGTERM)))
        self.members: dict[int, int] = {}
        self.segments: set[str] = set()
        self._looked_at: set[str] = set()
        self._last_look = 0.0
        # gforker only (see _hold): rank pid -> (start time, our descriptor of its stdout)
        self.gforker = "gforker" in os.path.basename(cmd[0])
        self.held: dict[int, tuple[int, int]] = {}
        self._seen_ranks: set[int] = set()
        self._ranks = int(cmd[cmd.index("-n") + 1]) if "-n" in cmd[:-1] and \
            cmd[cmd.index("-n") + 1].isdigit() else None

    def tick(self) -> None:
        """What the keeper does every :data:`TICK` while the job runs."""
        if self.gforker:
            self._hold()
        new = shm_files() - self.before - self.segments
        # A new MPICH file: find whose it is (a full look costs ~1 ms, so not every tick
        # for a file that belongs to someone else).
        if new and (new != self._looked_at or time.monotonic() - self._last_look > 1.0):
            self.look()
            self._looked_at = new - self.segments

    def _hold(self) -> None:
        """Work around a race in MPICH's ``gforker``: once the ranks' pipes are closed it
        waits for their exit statuses in a loop that never recounts (``nactive`` is not
        reset in ``MPIE_WaitForProcesses``), so if its SIGCHLD handler has not yet reaped
        the last rank at that moment it spins, burning a core, until a 2-second bound:
        every other job took up to 2 s longer. The keeper opens a second write end of each
        rank's stdout pipe (``/proc/PID/fd/1``) and closes it only once that rank has been
        reaped: gforker then sees the end of the output after every exit status is in,
        and returns at once."""
        self._release_reaped()
        if self._ranks is not None and len(self._seen_ranks) >= self._ranks:
            return
        for pid, (ppid, _, start, state) in process_table().items():
            if ppid == self.proc.pid and pid not in self._seen_ranks and state != "Z":
                self._seen_ranks.add(pid)
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/1").startswith("pipe:"):
                        self.held[pid] = (start, os.open(f"/proc/{pid}/fd/1", os.O_WRONLY))

    def _release_reaped(self) -> None:
        for pid, (start, fd) in list(self.held.items()):
            fields = _stat(pid)
            if fields is None or fields[2] != start:       # reaped: its status is recorded
                os.close(fd)
                del self.held[pid]

    def release(self) -> None:
        """Close every descriptor :meth:`_hold` keeps (before waiting for mpiexec)."""
        for _, fd in self.held.values():
            os.close(fd)
        self.held.clear()
        self._ranks = 0                        # and hold no more

    def look(self) -> None:
        """Note the job's processes now, and the new shared-memory files they map."""
        self._last_look = time.monotonic()
        table = process_table()
        root = self.proc.pid
        children: dict[int, list[int]] = {}
        for pid, (ppid, _, _, _) in table.items():
            children.setdefault(ppid, []).append(pid)
        found = {pid for pid, fields in table.items() if fields[1] == root}   # its group
        frontier = [root, *self.members]
        while frontier:
            for child in children.get(frontier.pop(), []):
                if child not in found:
                    found.add(child)
                    frontier.append(child)
        found.add(root)
        new = shm_files() - self.before - self.segments
        for pid in found:
            if pid in table:
                self.members.setdefault(pid, table[pid][2])
                if new:
                    self.segments |= mapped(pid, new)

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the job's process group and to every member still running."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)
        for pid, start in self.members.items():
            if alive(pid, start):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, sig)

    def stop(self) -> None:
        """Stop the job: SIGTERM to its processes, SIGKILL to what is left after
        :data:`GRACE` seconds."""
        self.look()
        self.release()
        root = self.proc.pid
        if self.gforker:
            # gforker answers a rank ended by a signal by stopping the others one signal
            # a second (SIGINT, then SIGQUIT after 1 s, ...): 2 s for nothing, since the job
            # is being abandoned. It goes at once; its ranks get SIGTERM from here.
            with contextlib.suppress(ProcessLookupError):
                os.kill(root, signal.SIGKILL)
            for pid, start in self.members.items():
                if pid != root and alive(pid, start):
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, signal.SIGTERM)
        else:
            self.signal(signal.SIGTERM)
        deadline = time.monotonic() + GRACE
        while time.monotonic() < deadline and (self.proc.poll() is None or any(
                alive(pid, start) for pid, start in self.members.items() if pid != root)):
            time.sleep(0.01)
        self.kill()

    def kill(self) -> None:
        """SIGKILL to everything of the job that is still running."""
        self.release()
        self.signal(signal.SIGKILL)
        self.proc.wait()

    def clean_up(self, wait: float = 2.0) -> None:
        """Once every member has ended (up to ``wait`` seconds), remove the job's files."""
        self.release()
        deadline = time.monotonic() + wait
        while any(alive(pid, start) for pid, start in self.members.items()):
            if time.monotonic() > deadline:
                return                         # still mapped by a survivor: leave them
            time.sleep(0.02)
        for name in self.segments:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(SHM, name))


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -I -S guard.py COMMAND [ARGS...] (stdin: the lifeline)",
              file=sys.stderr)
        return 2
    stopping = []
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):   # stop the job, then exit
        signal.signal(sig, lambda signum, frame: stopping.append(signum))
    try:
        job = Job(argv)
    except OSError as exc:
        print(f"mtlearn.distributed: cannot run {argv[0]}: {exc}", file=sys.stderr)
        return 127
    lifeline = sys.stdin.fileno()
    while not stopping:
        ready, _, _ = select.select([lifeline], [], [], TICK)
        if ready:                              # EOF: the caller has gone, or asks to stop
            stopping.append("lifeline")
            break
        if job.proc.poll() is not None:
            break
        job.tick()
    if stopping or job.proc.poll() is None:
        job.stop()
    elif job.proc.returncode != 0:             # failed: its ranks may still be exiting
        job.look()
        job.kill()
    job.clean_up()
    code = job.proc.returncode
    return 128 - code if code < 0 else code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
