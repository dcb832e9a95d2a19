"""What a training run measured, and how it was made: the ``History`` every strategy returns."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..runtime import info as info_module
from ..runtime.trace import Span


@dataclass
class History:
    """The record of one ``parallel.train`` call.

    Attributes
    ----------
    strategy, threads : what ran
    losses : list of float, the training loss of every optimizer step, in step order
    step_times : list of float, seconds since the start when each step's update finished
    wall_time : float, seconds for the whole call (threads started and joined included)
    trace : list of ``trace.Span`` ``(thread, kind, start, end, cpu)``, times relative to the
        start; kinds: ``load``, ``compute`` (forward + backward), ``forward``, ``backward``,
        ``wait``, ``reduce``, ``update``
    thread_cpu : dict thread name -> CPU seconds that thread used during the call
    info : dict of strategy-specific measurements (e.g. ``staleness`` for Hogwild)
    config : dict, how the run was made (``RunConfig.describe()``: strategy, threads, lr,
        batch_size, epochs, seed, optimizer, ...)
    machine : dict, where it ran (``mtlearn.info.machine_info()``: cores, Python build, GIL,
        numpy, BLAS)
    cancelled : bool, True when the caller's ``cancel`` event stopped the run early
    """

    strategy: str
    threads: int
    losses: list[float] = field(default_factory=list)
    step_times: list[float] = field(default_factory=list)
    wall_time: float = 0.0
    trace: list[Span] = field(default_factory=list)
    thread_cpu: dict[str, float] = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    machine: dict = field(default_factory=info_module.machine_info)
    cancelled: bool = False

    @property
    def steps(self) -> int:
        return len(self.losses)

    def time_by_kind(self) -> dict[str, float]:
        """Wall seconds summed over spans of each kind, all threads together."""
        out: dict[str, float] = {}
        for s in self.trace:
            out[s.kind] = out.get(s.kind, 0.0) + (s.end - s.start)
        return out

    def breakdown(self, window: tuple[float, float] | None = None
                  ) -> dict[str, dict[str, float]]:
        """Where each thread's time went: an X-ray of the run, from its trace.

        Returns ``{thread name: parts}`` for every thread in :attr:`trace` (in order of first
        appearance), ``parts`` a dict of seconds, in this order:

        ``compute_cpu``
            CPU time inside ``compute``, ``forward`` and ``backward`` spans: the thread ran.
        ``compute_wait``
            the rest of those spans' wall time (wall - CPU): the thread was ready to compute
            but not running — waiting for the GIL, or for a free core.
        ``wait``
            ``wait`` spans: barriers, locks, queues (waiting for the other threads).
        ``reduce``, ``update``, ``load``
            spans of those kinds (summing gradients, the optimizer step, loading batches).
        ``other``
            the rest of :attr:`wall_time` (of the window, when given): before the thread's
            first span and after its last (starting and joining threads), untraced code
            between spans, and spans of any other kind.

        The parts of every thread add up to ``wall_time``: spans are clipped to
        ``[0, wall_time]``, and where a thread's spans overlap the time is counted once,
        for the span that started first. ``window=(t0, t1)`` (seconds from the start, e.g.
        ``(step_times[0], step_times[-1])`` to leave out start-up and the first step) looks
        at that stretch only; the parts then add up to ``t1 - t0``. A run with
        ``trace=False`` has no threads here.
        """
        compute = ("compute", "forward", "backward")
        named = ("wait", "reduce", "update", "load")
        lo, hi = (0.0, self.wall_time) if window is None else map(float, window)
        order = list(dict.fromkeys(s.thread for s in self.trace))
        out = {}
        for thread in order:
            parts = dict.fromkeys(("compute_cpu", "compute_wait", *named, "other"), 0.0)
            covered = lo                      # time of this thread already counted
            for s in sorted((s for s in self.trace if s.thread == thread),
                            key=lambda s: s.start):
                start, end = max(s.start, covered), min(s.end, hi)
                if end <= start:
                    continue
                wall = end - start
                covered = end
                if s.kind in compute:
                    kept = wall / (s.end - s.start)       # the share of the span counted
                    cpu = min(max(s.cpu * kept, 0.0), wall)
                    parts["compute_cpu"] += cpu
                    parts["compute_wait"] += wall - cpu
                elif s.kind in named:
                    parts[s.kind] += wall
            parts["other"] = max(hi - lo - sum(parts.values()), 0.0)
            out[thread] = parts
        return out

    def summary(self) -> str:
        """A few lines: steps, time per step, loss first -> last, CPU per thread, span kinds."""
        n = self.steps
        lines = [f"{self.strategy} on {self.threads} thread(s): {n} steps in "
                 f"{self.wall_time:.3f} s ({1e3 * self.wall_time / max(n, 1):.2f} ms/step)"]
        if n:
            lines.append(f"loss {self.losses[0]:.4f} -> {self.losses[-1]:.4f}")
        if self.thread_cpu:
            cpu = ", ".join(f"{t} {c:.2f}s" for t, c in self.thread_cpu.items())
            lines.append(f"CPU per thread: {cpu} (wall {self.wall_time:.2f}s)")
        kinds = self.time_by_kind()
        if kinds:
            lines.append("time in spans: " + ", ".join(f"{k} {v:.3f}s" for k, v in kinds.items()))
        for k, v in self.info.items():
            if isinstance(v, (int, float, str)):
                lines.append(f"{k}: {v}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """Plain data (JSON-ready); :meth:`from_dict` reads it back."""
        return {"strategy": self.strategy, "threads": self.threads, "losses": self.losses,
                "step_times": self.step_times, "wall_time": self.wall_time,
                "trace": [list(s) for s in self.trace], "thread_cpu": self.thread_cpu,
                "info": {k: v for k, v in self.info.items()
                         if isinstance(v, int | float | str | list | dict | bool | None)},
                "config": self.config, "machine": self.machine, "cancelled": self.cancelled}

    @classmethod
    def from_dict(cls, d: dict) -> History:
        """The :class:`History` that :meth:`to_dict` wrote (e.g. after ``json.load``)."""
        return cls(strategy=d["strategy"], threads=d["threads"], losses=list(d["losses"]),
                   step_times=list(d["step_times"]), wall_time=d["wall_time"],
                   trace=[Span(*s) for s in d["trace"]], thread_cpu=dict(d["thread_cpu"]),
                   info=dict(d["info"]), config=dict(d.get("config", {})),
                   machine=dict(d.get("machine", {})), cancelled=d.get("cancelled", False))
