"""The course's instruments: every notebook tells the truth about the machine it runs on.

    from mtlearn import course
    cal = course.calibrate()          # first cell: how much of the machine is free now
    cal                               # one line; a red banner when the machine is busy
    course.predict("With 2 threads, how many times faster?", key="05.sync2", unit="x")
    ...                               # the measurement
    course.reveal("05.sync2", speedup)
    course.verdict("sync2", speedup, expected=(1.6, 1.95), label="sync on 2 threads",
                   why="on 2 idle cores: the step is numpy and BLAS, which release the GIL")
    course.predictions("05.")         # the summary: guesses against measurements
    course.recorded.load("sync_scaling")          # what 16 cores measured, labelled
    course.figures.speedup_beside(scaling, recorded_curve)

* :mod:`.calibration` — :func:`calibrate`: free cores, load average, busy or quiet.
* :mod:`.verdicts` — :func:`verdict`: a sentence computed from the measurement, its
  expected range and the calibration (medians with their spread, never best-of-N).
* :mod:`.prediction` — :func:`predict`, :func:`reveal`, :func:`predictions`.
* :mod:`.recorded` — the 16-core recordings as plain Python, with their machine.
* :mod:`.figures` — recorded curves and tables beside the learner's, labelled.
* :mod:`.outputs` — finds contradictions in stored notebook outputs (tests, tools).

This package sits at the top of mtlearn beside ``widgets``: it may use every other part;
nothing else in mtlearn imports it.
"""

from . import calibration, figures, outputs, prediction, recorded, verdicts
from .calibration import Calibration, calibrate, last
from .prediction import Prediction, forget, predict, predictions, reveal
from .verdicts import Verdict, spread, verdict

__all__ = [
    "Calibration", "Prediction", "Verdict", "calibrate", "calibration", "figures", "forget",
    "last", "outputs", "predict", "prediction", "predictions", "recorded", "reveal", "spread",
    "verdict", "verdicts",
]
