"""The bottom layer: what every other part of mtlearn builds on, with no numpy at import.

* :mod:`.checks` — the one argument checker (TypeError/ValueError naming the argument);
* :mod:`.threads` — the one :class:`~.threads.WorkerGroup` and Ctrl-C handling for threads;
* :mod:`.trace` — per-thread spans for timelines;
* :mod:`.info` — machine facts (cores, Python build, GIL, BLAS), gathered in one place.

Only the standard library is imported here (a test enforces DESIGN.md's layer order).
"""
