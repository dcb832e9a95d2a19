"""A pipeline's schedule, ideal and measured: which stage runs which micro-batch when.

``ideal_schedule`` plays the rules of :func:`mtlearn.parallel.pipeline.schedule` with equal
stage times (the world the bubble formula ``(K-1)/(M+K-1)`` lives in);
``measured_schedule`` reads the same ops back from a ``pipeline`` run's trace, so the two can
be drawn side by side (``viz.schedule_chart``).
"""

from __future__ import annotations

from .history import History
from .pipeline import SCHEDULES, schedule


def ideal_schedule(stages: int, micro_batches: int, kind: str = "gpipe", *,
                   forward: float = 1.0, backward: float = 2.0) -> list[tuple]:
    """When each stage would run each micro-batch's forward and backward if all stages took
    equally long and passing activations cost nothing.

    Stage k runs its ops in the order ``parallel.pipeline.schedule(k, K, M, kind)`` gives;
    an op starts once the stage is free and its input is there (the activation from stage
    k-1, or the gradient from stage k+1). Returns ``[(stage, "F" or "B", micro_batch,
    start, end)]`` in units of one forward pass; with these times every stage idles
    ``(K-1)/(M+K-1)`` of the step, whatever ``forward`` and ``backward`` are.
    """
    if kind not in SCHEDULES:
        raise ValueError(f"kind must be one of {SCHEDULES}, got {kind!r}")
    K, M = stages, micro_batches
    ops = [schedule(k, K, M, kind) for k in range(K)]
    done: dict[tuple, float] = {}
    free, pos, out = [0.0] * K, [0] * K, []
    while any(pos[k] < len(ops[k]) for k in range(K)):
        progressed = False
        for k in range(K):
            if pos[k] == len(ops[k]):
                continue
            op, i = ops[k][pos[k]]
            if op == "F":
                dep = ("F", k - 1, i) if k > 0 else None
            else:
                dep = ("B", k + 1, i) if k < K - 1 else None
            if dep is not None and dep not in done:
                continue                    # its input has not arrived yet
            start = max(free[k], done.get(dep, 0.0))
            end = start + (forward if op == "F" else backward)
            done[(op, k, i)] = free[k] = end
            pos[k] += 1
            progressed = True
            out.append((k, op, i, start, end))
        if not progressed:                  # pragma: no cover - schedule() never deadlocks
            raise RuntimeError("ideal_schedule: the schedule deadlocks")
    return sorted(out, key=lambda o: (o[3], o[0]))


def _step_ops(history: History, step: int) -> list[tuple]:
    """``[(stage, op, micro_batch, span)]`` of one step of a pipeline run (see
    :func:`measured_schedule`), spans as recorded (seconds from the start of the run)."""
    info = history.info
    if "micro_batches" not in info:
        raise ValueError("not a pipeline run: history.info has no micro_batches")
    K, M, kind = info["stages"], info["micro_batches"], info["schedule"]
    per_stage = [sorted((s for s in history.trace if s.thread == f"pipeline-{k}"
                         and s.kind in ("forward", "backward")), key=lambda s: s.start)
                 for k in range(K)]
    n_steps = min(len(spans) for spans in per_stage) // (2 * M)
    if n_steps == 0:
        raise ValueError("the trace has no complete step (was it run with trace=False?)")
    s = range(n_steps)[step]
    out = []
    for k, spans in enumerate(per_stage):
        chunk = spans[2 * M * s: 2 * M * (s + 1)]
        for (op, i), span in zip(schedule(k, K, M, kind), chunk, strict=True):
            if (op == "F") != (span.kind == "forward"):   # pragma: no cover - a bug if so
                raise ValueError("the trace does not follow the schedule")
            out.append((k, op, i, span))
    return out


def measured_schedule(history: History, step: int = -1) -> list[tuple]:
    """The forward and backward spans of one step of a ``pipeline`` run, labelled.

    Each stage thread runs its ops of a step in the order of ``schedule(...)``, so its
    ``forward``/``backward`` spans, taken in time order, can be matched to ``("F", i)`` /
    ``("B", i)``. Returns ``[(stage, "F" or "B", micro_batch, start, end)]`` with times in
    milliseconds from the step's first forward (``step`` counts like a list index).
    """
    ops = _step_ops(history, step)
    t0 = min(span.start for *_, span in ops)
    return [(k, op, i, 1e3 * (span.start - t0), 1e3 * (span.end - t0))
            for k, op, i, span in ops]


def step_window(history: History, step: int = -1) -> tuple[float, float]:
    """``(start, end)`` in seconds of one step of a pipeline run: its first forward to its
    last backward on any stage (the window its bubble is measured in)."""
    ops = _step_ops(history, step)
    return min(span.start for *_, span in ops), max(span.end for *_, span in ops)
