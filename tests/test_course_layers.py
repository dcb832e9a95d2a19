"""Importing ``mtlearn.course`` starts nothing (its place in the layer order: test_layers.py)."""

import pathlib
import subprocess
import sys

import mtlearn

ROOT = pathlib.Path(mtlearn.__file__).parent


def test_importing_it_starts_no_thread_and_measures_nothing():
    code = ("import threading, mtlearn.course as c; "
            "print(threading.active_count(), c.last() is None)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["1", "True"]
