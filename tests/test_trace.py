"""mtlearn.runtime.trace: per-thread spans, recorded exactly once, from any number of threads."""

import ast
import json
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest

from mtlearn.runtime.trace import Span, Tracer


def test_span_records_thread_kind_times_and_cpu():
    tracer = Tracer()
    with tracer.span("compute"):
        sum(range(10_000))
    (s,) = tracer.spans()
    assert isinstance(s, Span)
    assert s.thread == threading.current_thread().name and s.kind == "compute"
    assert 0 <= s.start <= s.end and s.cpu >= 0
    assert s.wall == s.end - s.start


def test_waiting_span_has_low_cpu_over_wall():
    tracer = Tracer()
    with tracer.span("io"):
        time.sleep(0.02)
    (s,) = tracer.spans()
    assert s.wall >= 0.015 and s.cpu_ratio < 0.5


def test_begin_end_decorator_and_add():
    tracer = Tracer()
    token = tracer.begin("load")
    tracer.end(token)

    @tracer.traced("forward")
    def forward(x):
        """Doubles x."""
        return 2 * x

    assert forward(21) == 42 and forward.__name__ == "forward"
    assert forward.__doc__ == "Doubles x."
    t = time.perf_counter()
    tracer.add("reduce", t, t + 0.5, cpu=0.25, thread="process-1")
    kinds = Counter(s.kind for s in tracer.spans())
    assert kinds == {"load": 1, "forward": 1, "reduce": 1}
    (r,) = [s for s in tracer.spans() if s.kind == "reduce"]
    assert r.thread == "process-1" and r.wall == pytest.approx(0.5) and r.cpu == 0.25
    tracer.add("reduce", t + 1, t + 2, thread="process-1")
    assert tracer.threads().count("process-1") == 1 and len(tracer) == 4


def test_nested_spans_and_errors_are_recorded():
    tracer = Tracer()
    with pytest.raises(KeyError):
        with tracer.span("outer"):
            with tracer.span("inner"):
                raise KeyError("boom")
    spans = {s.kind: s for s in tracer.spans()}
    assert set(spans) == {"outer", "inner"}
    assert spans["outer"].start <= spans["inner"].start <= spans["inner"].end <= spans["outer"].end


def test_disabled_tracer_records_nothing():
    tracer = Tracer(enabled=False)
    with tracer.span("compute"):
        pass
    tracer.end(tracer.begin("x"))
    tracer.add("y", 0.0, 1.0)
    assert tracer.spans() == [] and len(tracer) == 0


def test_every_span_recorded_exactly_once_under_concurrency(no_thread_leak):
    tracer = Tracer()
    n_threads, per_thread = 8, 400
    start = threading.Barrier(n_threads + 1)
    done = threading.Event()
    reads = []

    def worker(i):
        start.wait()
        for j in range(per_thread):
            if j % 2:
                with tracer.span(f"{i}:{j}"):
                    pass
            else:
                tracer.end(tracer.begin(f"{i}:{j}"))

    def reader():                      # reading while others record must not lose anything
        start.wait()
        while not done.is_set():
            reads.append(len(tracer.spans()))

    threads = [threading.Thread(target=worker, args=(i,), name=f"w{i}")
               for i in range(n_threads)] + [threading.Thread(target=reader)]
    for t in threads:
        t.start()
    try:
        for t in threads[:-1]:
            t.join()
    finally:
        done.set()
        threads[-1].join()
    spans = tracer.spans()
    assert len(spans) == len(tracer) == n_threads * per_thread
    assert Counter(s.kind for s in spans) == Counter(
        f"{i}:{j}" for i in range(n_threads) for j in range(per_thread))
    assert all(s.kind.split(":")[0] == s.thread[1:] for s in spans)   # in its own thread
    assert sorted(tracer.threads()) == sorted(f"w{i}" for i in range(n_threads))
    assert reads == sorted(reads)      # counts only grow


def test_spans_sorted_relative_and_json_round_trip():
    tracer = Tracer()
    for k in ("a", "b", "c"):
        with tracer.span(k):
            pass
    spans = tracer.spans()
    assert [s.kind for s in spans] == ["a", "b", "c"]
    raw = tracer.spans(relative=False)
    assert raw[0].start == pytest.approx(spans[0].start + tracer.origin)
    back = Tracer.spans_from_dict(json.loads(json.dumps(tracer.to_dict())))
    assert back == spans
    totals = tracer.totals()
    assert totals[(threading.current_thread().name, "a")]["count"] == 1
    tracer.clear()
    assert tracer.spans() == []


def test_trace_depends_on_nothing_else_in_mtlearn():
    code = ("import sys, mtlearn.runtime.trace; "
            "print(sorted(m for m in sys.modules if m.startswith(('mtlearn.', 'numpy'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    mods = ast.literal_eval(out)
    assert "mtlearn.runtime.trace" in mods
    assert all(m.startswith("mtlearn.runtime") for m in mods), mods
