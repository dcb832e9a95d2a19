"""Record the course's notebooks one at a time, each only once the machine is quiet.

    python tools/record_notebooks.py                      # every notebooks/*.ipynb, in order
    python tools/record_notebooks.py notebooks/05_*.ipynb # some of them
    python tools/record_notebooks.py --check              # only check the stored outputs

Before each notebook, ``mtlearn.course.calibrate()`` measures how much of the machine is
free; below ``--min-free`` (a share of an idle machine's capacity, default 0.85: 1.7 of 2
cores) it waits ``--wait`` seconds and measures again, up to ``--tries`` times, then
refuses — and says which notebooks were not recorded — rather than store timings from a
busy machine. Each notebook runs in its own fresh kernel (nbclient), alone; its outputs
are stored in place with the calibrations before and after it in the notebook's metadata
(``metadata.mtlearn.recording``). Learners' guesses are kept out: the kernel gets an empty
``MTLEARN_CACHE_DIR``, so every Predict step shows "no guess recorded".

After each notebook (and in ``--check`` mode, for the stored notebooks as they are), the
contradiction checks of ``mtlearn.course.outputs`` run: a stored verdict outside its
stated range on a quiet machine fails. Exit status: 0 all recorded and consistent, 1
contradictions or a failed notebook, 2 refused (machine busy).
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:                   # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

from mtlearn import course  # noqa: E402
from mtlearn.course import outputs  # noqa: E402
from mtlearn.runtime import checks  # noqa: E402

#: default share of an idle machine's capacity that must be free to record
MIN_FREE = 0.85


def wait_for_quiet(min_free: float = MIN_FREE, wait: float = 30.0, tries: int = 20, *,
                   calibrate=course.calibrate, sleep=time.sleep, say=print):
    """The first calibration with at least ``min_free`` of the capacity free (and not
    busy), measuring up to ``tries`` times ``wait`` seconds apart; None if none was."""
    for attempt in range(1, tries + 1):
        cal = calibrate()
        if cal.fraction >= min_free and not cal.busy:
            say(f"  quiet: {cal.short()}")
            return cal
        say(f"  busy: {cal.short()} (need {min_free * cal.capacity:.1f}); "
            + (f"waiting {wait:g} s ({attempt}/{tries})" if attempt < tries else
               f"gave up after {tries} tries"))
        if attempt < tries:
            sleep(wait)
    return None


def execute(path: Path, *, timeout: float = 900, kernel: str = "python3",
            before: dict | None = None, calibrate=course.calibrate) -> None:
    """Run ``path`` top to bottom in a fresh kernel and store its outputs in place, with
    the recording's facts in ``metadata.mtlearn.recording``. Raises if a cell fails (the
    file is then left as it was)."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    saved = os.environ.get(course.prediction.CACHE_ENV)
    with tempfile.TemporaryDirectory(prefix="mtlearn-record-") as empty:
        os.environ[course.prediction.CACHE_ENV] = empty       # no learner's guesses
        try:
            started = time.perf_counter()
            NotebookClient(nb, timeout=timeout, kernel_name=kernel,
                           resources={"metadata": {"path": str(path.parent)}}).execute()
            took = time.perf_counter() - started
        finally:
            if saved is None:
                os.environ.pop(course.prediction.CACHE_ENV, None)
            else:
                os.environ[course.prediction.CACHE_ENV] = saved
    after = calibrate()
    nb.metadata.setdefault("mtlearn", {})["recording"] = {
        "date": datetime.date.today().isoformat(), "seconds": round(took, 1),
        "calibration": before, "calibration_after": after.to_dict()}
    nbformat.write(nb, path)


def check(paths, say=print) -> int:
    """The contradiction checks on stored notebooks: 0 if none, else 1."""
    bad = 0
    for report in outputs.check_notebooks(paths):
        say(str(report))
        bad += len(report.problems)
    return 1 if bad else 0


def record(paths, *, min_free: float = MIN_FREE, wait: float = 30.0, tries: int = 20,
           timeout: float = 900, kernel: str = "python3", calibrate=course.calibrate,
           run=execute, sleep=time.sleep, say=print) -> int:
    """Record ``paths`` one at a time, each after :func:`wait_for_quiet`; returns the exit
    status (see the module docstring)."""
    status = 0
    for i, path in enumerate(paths):
        path = Path(path)
        say(f"{path.name}:")
        cal = wait_for_quiet(min_free, wait, tries, calibrate=calibrate, sleep=sleep, say=say)
        if cal is None:
            left = ", ".join(Path(p).name for p in paths[i:])
            say(f"refused: the machine stayed busy; not recorded: {left}")
            return 2
        try:
            run(path, timeout=timeout, kernel=kernel, before=cal.to_dict(),
                calibrate=calibrate)
        except Exception as exc:  # a failing notebook is reported, the others still run
            say(f"  FAILED, left as it was: {type(exc).__name__}: {str(exc)[:2000]}")
            status = 1
            continue
        report = outputs.check_notebook(path)
        say("  " + str(report).replace("\n", "\n  "))
        if report.problems:
            status = 1
    return status


def main(argv=None, **hooks) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="notebooks to record or check (default: notebooks/*.ipynb)")
    parser.add_argument("--check", action="store_true",
                        help="only check the stored outputs for contradictions")
    parser.add_argument("--min-free", type=checks.for_argparse(checks.number, min=0, max=1),
                        default=MIN_FREE, help="share of an idle machine's capacity that "
                        "must be free (default %(default)s)")
    parser.add_argument("--wait", type=checks.for_argparse(checks.number, min=0),
                        default=30.0, help="seconds between calibrations (default %(default)s)")
    parser.add_argument("--tries", type=checks.for_argparse(checks.integer, min=1), default=20,
                        help="calibrations before refusing (default %(default)s)")
    parser.add_argument("--timeout", type=checks.for_argparse(checks.number, min=1),
                        default=900.0, help="seconds one cell may run (default %(default)s)")
    parser.add_argument("--kernel", default="python3", help="Jupyter kernel name")
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb"))
    missing = [str(p) for p in paths if not Path(p).is_file()]
    if missing:
        parser.error(f"no such notebook: {', '.join(missing)}")
    if args.check:
        return check(paths, say=hooks.get("say", print))
    return record(paths, min_free=args.min_free, wait=args.wait, tries=args.tries,
                  timeout=args.timeout, kernel=args.kernel, **hooks)


if __name__ == "__main__":
    sys.exit(main())
