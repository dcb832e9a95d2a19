"""The GIL lab: measure what the GIL does to each kind of work.

    from mtlearn import bench
    r = bench.scaling("python", threads=[1, 2, 4], repeats=3)
    r.threads, r.seconds, r.speedup, r.efficiency, r.cpu_wall, r.amdahl(), r.usl()
    bench.traced_run("mixed", threads=2)        # one run with spans, for viz.timeline
    bench.gil_enabled(), bench.build_info()
    with bench.blas_threads(1): ...
    bench.oversubscription(py_threads=[1, 2], blas_threads=[1, 2])
    bench.convoy(switch_intervals=[0.001, 0.005, 0.02])
    bench.compare_interpreters(["python3.13t"])
    bench.races(), bench.races_in("python3.13t"), bench.lost_updates("counter", "shared")
    bench.fit_amdahl(threads, speedup), bench.fit_usl(threads, speedup)

Imports no numpy until a numpy workload runs, so it also works in an interpreter without
numpy (the ``python``, ``io`` and ``mixed`` workloads).
"""

from ..runtime.laws import (
    AmdahlFit,
    USLFit,
    amdahl,
    fit_amdahl,
    fit_serial_fraction,
    fit_usl,
    gustafson,
    usl,
)
from ..runtime.trace import Span, Tracer
from .blas import OversubscriptionResult, blas_threads, current_blas_threads, oversubscription
from .convoy import ConvoyResult, convoy
from .interpreters import Comparison, compare_interpreters, find_interpreters
from .machine import build_info, gil_enabled
from .races import RaceResult, Races, lost_updates, races, races_in
from .runner import Run
from .scaling import ScalingResult, scaling, traced_run
from .suite import Suite, suite
from .workloads import WORKLOADS, Workload

__all__ = [
    "AmdahlFit", "Comparison", "ConvoyResult", "OversubscriptionResult", "RaceResult", "Races",
    "Run", "ScalingResult", "Span", "Suite", "Tracer", "USLFit", "WORKLOADS", "Workload",
    "amdahl", "blas_threads", "build_info", "compare_interpreters", "convoy",
    "current_blas_threads", "find_interpreters", "fit_amdahl", "fit_serial_fraction",
    "fit_usl", "gil_enabled", "gustafson", "lost_updates", "oversubscription", "races",
    "races_in", "scaling", "suite", "traced_run", "usl",
]
