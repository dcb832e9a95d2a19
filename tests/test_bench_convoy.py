"""mtlearn.bench.convoy: I/O latency against switch intervals; the interval is restored."""

import json
import sys

import pytest

from mtlearn import bench


def test_convoy_result_and_switch_interval_restored(no_thread_leak):
    before = sys.getswitchinterval()
    r = bench.convoy(switch_intervals=[0.001, 0.002], samples=3, wait=0.0005)
    assert sys.getswitchinterval() == before
    assert r.switch_intervals == [0.001, 0.002]
    for key in ("latency_median", "latency_p90", "latency_max", "latencies", "cpu_rate"):
        assert len(getattr(r, key)) == 2
    assert all(len(x) == 3 for x in r.latencies)
    assert all(m <= p <= mx for m, p, mx in zip(r.latency_median, r.latency_p90,
                                                 r.latency_max, strict=True))
    assert all(rate > 0 for rate in r.cpu_rate)
    assert r.default_interval == before and r.cpu_threads == 1
    assert bench.ConvoyResult.from_dict(json.loads(json.dumps(r.to_dict()))) == r
    assert "switch interval" in r.table()


def test_switch_interval_restored_when_stopped(no_thread_leak):
    before = sys.getswitchinterval()

    def progress(fraction, text):
        if fraction > 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        bench.convoy(switch_intervals=[0.001, 0.003], samples=2, wait=0.0, cpu_threads=2,
                     progress=progress)
    assert sys.getswitchinterval() == before
